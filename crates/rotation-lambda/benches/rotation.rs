//! Prints figures for the release `rotation-lambda` binary: its size, the
//! time from process start to its first handled invocation, the time of a
//! whole rotation on the local stack (emulator, gateway, PostgreSQL) and the
//! function's peak memory.
//!
//! Run with `cargo bench -p rotation-lambda` and `DATABASE_URL` set. The
//! figures are single measurements on whatever machine runs them, not
//! statistics.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use test_support::{Gateway, Server};

const FUNCTION: &str = env!("CARGO_BIN_EXE_rotation-lambda");
const ACCESS_KEY_ID: &str = "AKIAROTATIONBENCH001";
const SECRET_ACCESS_KEY: &str = "rotation-bench-secret-key";

fn main() {
    let size = std::fs::metadata(FUNCTION).expect("binary exists").len();
    println!("binary: {FUNCTION}");
    println!("size: {:.2} MiB ({size} bytes)", size as f64 / 1_048_576.0);

    let (first_invocation, start_memory_kib) = time_to_first_invocation();
    println!(
        "start to first invocation handled: {:.1} ms (peak memory {start_memory_kib} KiB)",
        first_invocation.as_secs_f64() * 1000.0
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(rotations_on_local_stack());
}

/// Serves a minimal Lambda runtime API on loopback with one event whose
/// step is unknown, so the handler returns an error at once without any
/// network call, and measures until the function posts that error.
fn time_to_first_invocation() -> (Duration, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let started = Instant::now();
    let mut child = Command::new(FUNCTION)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_LEVEL", "ERROR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let event = r#"{"SecretId":"bench","ClientRequestToken":"bench-0000000000000000000000000000000","Step":"benchSecret"}"#;
    let mut handled = None;
    'connections: for stream in listener.incoming() {
        let mut stream = stream.unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                break;
            }
            let mut content_length = 0usize;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    content_length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body).unwrap();

            if request_line.contains("/invocation/next") && handled.is_none() {
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: bench-1\r\nLambda-Runtime-Deadline-Ms: 9999999999999\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\nContent-Length: {}\r\n\r\n{event}",
                    event.len()
                );
                stream.write_all(response.as_bytes()).unwrap();
            } else if request_line.contains("/invocation/bench-1/") {
                handled = Some(started.elapsed());
                let reply = "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}";
                stream.write_all(reply.as_bytes()).unwrap();
                break 'connections;
            } else {
                // The next poll after the error: leave it open until the end.
                break 'connections;
            }
        }
    }
    let peak = peak_memory_kib(child.id()).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    (
        handled.expect("the function posted a result for the invocation"),
        peak,
    )
}

/// Returns a process's peak resident memory (`VmHWM`) in KiB.
fn peak_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Returns the pids of a process's children.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // The parent pid is the second field after the command in brackets.
        let after_command = stat.rsplit(')').next().unwrap_or("");
        let parent = after_command.split_whitespace().nth(1);
        if parent == Some(&pid.to_string()) {
            found.push(child);
        }
    }
    found
}

async fn rotations_on_local_stack() {
    let gateway = Gateway::start(
        &test_support::database_url(),
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
    );
    let state_dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(test_support::cargo_bin("dsql-secrets", "dsql-secrets"));
    command
        .args(["local", "secrets", "--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(state_dir.path())
        .arg("--access-key")
        .arg(format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}"))
        .arg("--rotation-function")
        .arg(format!("bench={FUNCTION}"))
        .env("DSQL_CA_FILE", gateway.ca_file())
        .env("DSQL_ALLOWED_HOSTS", "localhost")
        .env("RUST_LOG", "info");
    let emulator = Server::start(command);

    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", emulator.addr()))
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "bench",
        ))
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(config);
    let value = serde_json::json!({
        "username": "admin", "password": "placeholder", "host": "localhost",
        "engine": "postgres", "port": gateway.addr().port().to_string(), "dbname": "postgres",
    });
    client
        .create_secret()
        .name("bench")
        .secret_string(value.to_string())
        .send()
        .await
        .unwrap();

    for (round, label) in [
        (0, "first (cold start)"),
        (1, "second (warm)"),
        (2, "third (warm)"),
    ] {
        let started = Instant::now();
        let mut request = client.rotate_secret().secret_id("bench");
        if round == 0 {
            request = request
                .rotation_lambda_arn("arn:aws:lambda:us-east-1:123456789012:function:bench")
                .rotation_rules(
                    aws_sdk_secretsmanager::types::RotationRulesType::builder()
                        .schedule_expression("rate(4 hours)")
                        .build(),
                );
        }
        let version = request
            .send()
            .await
            .unwrap()
            .version_id()
            .unwrap()
            .to_owned();
        loop {
            let described = client
                .describe_secret()
                .secret_id("bench")
                .send()
                .await
                .unwrap();
            let stages = described
                .version_ids_to_stages()
                .cloned()
                .unwrap_or_default();
            // The emulator removes AWSPENDING from the new current version
            // when it records the rotation as finished.
            let labels = &stages[&version];
            let current = labels.iter().any(|label| label == "AWSCURRENT");
            let pending = labels.iter().any(|label| label == "AWSPENDING");
            if current && !pending {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "rotation did not finish: {stages:?}\n{}",
                emulator.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "rotation {label}: {:.1} ms (RotateSecret until the emulator records it finished, polled every 20 ms)",
            started.elapsed().as_secs_f64() * 1000.0
        );
    }

    for pid in children(emulator.pid()) {
        if let Some(peak) = peak_memory_kib(pid) {
            println!("function peak memory after 3 rotations (pid {pid}): {peak} KiB");
        }
    }
}
