//! `dsql-secrets local up` as a user runs it: the README's curl examples,
//! a demo rotation seen by `secret status`, requests that keep succeeding
//! throughout, a clean Ctrl-C, data kept across a restart, and a failed
//! rotation that `secret status` explains.
//!
//! The stack uses its own database on the test PostgreSQL, so the customer
//! tables of other tests are not touched.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use test_support::{Server, cargo_bin, database_url, free_port, venv_bin, workspace_root};

const READY_MARKER: &str = "ready: customer service on ";

struct TestDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    fn create() -> Self {
        let admin_url = database_url();
        let name = format!("local_up_test_{}", std::process::id());
        let drop_sql = format!("drop database if exists {name}");
        let create_sql = format!("create database {name}");
        for sql in [drop_sql.as_str(), create_sql.as_str()] {
            let status = Command::new("psql")
                .args([admin_url.as_str(), "-XAtqc", sql])
                .status()
                .expect("psql runs");
            assert!(status.success(), "{sql} failed");
        }
        Self { admin_url, name }
    }

    fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("drop database if exists {} with (force)", self.name);
        let _ = Command::new("psql")
            .args([self.admin_url.as_str(), "-XAtqc", &sql])
            .status();
    }
}

fn local_up(state_dir: &Path, port: u16, database: &TestDatabase, demo: bool) -> Server {
    cargo_bin("rotation-lambda", "rotation-lambda");
    cargo_bin("customer-api", "customer-api");
    let mut command = Command::new(cargo_bin("dsql-secrets", "dsql-secrets"));
    command
        .args(["local", "up", "--port", &port.to_string()])
        .arg("--state-dir")
        .arg(state_dir)
        .env("DATABASE_URL", database.url());
    if demo {
        command.arg("--demo");
    }
    Server::start_until(command, READY_MARKER)
}

fn dsql_secrets(args: &[&str], state_dir: &Path) -> Output {
    Command::new(cargo_bin("dsql-secrets", "dsql-secrets"))
        .args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .expect("dsql-secrets runs")
}

fn status_json(state_dir: &Path) -> serde_json::Value {
    let output = dsql_secrets(&["secret", "status", "--json"], state_dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("status --json prints JSON")
}

fn current_version(status: &serde_json::Value) -> String {
    status["versions"]
        .as_array()
        .and_then(|versions| {
            versions.iter().find(|version| {
                version["stages"]
                    .as_array()
                    .is_some_and(|stages| stages.iter().any(|s| s == "AWSCURRENT"))
            })
        })
        .and_then(|version| version["version_id"].as_str())
        .expect("a version is AWSCURRENT")
        .to_owned()
}

/// The shell block under "## Try the API" in the README, pointed at `port`.
fn readme_curl_examples(port: u16) -> String {
    let readme =
        std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md exists");
    let section = readme
        .split("## Try the API")
        .nth(1)
        .expect("README has a Try the API section");
    let block = section
        .split("```sh")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block");
    assert!(block.contains("PORT=8080"), "the examples set PORT");
    block.replacen("PORT=8080", &format!("PORT={port}"), 1)
}

/// Sends requests until stopped, counting failures.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    worker: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let worker = {
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let urls = [
                    format!("http://127.0.0.1:{port}/api/v1/customers?page=0&size=5"),
                    format!("http://127.0.0.1:{port}/health/ready"),
                ];
                while !stop.load(Ordering::Relaxed) {
                    for url in &urls {
                        let output = Command::new("curl")
                            .args([
                                "-s",
                                "-o",
                                "/dev/null",
                                "-w",
                                "%{http_code}",
                                "-m",
                                "10",
                                url,
                            ])
                            .output()
                            .expect("curl runs");
                        sent.fetch_add(1, Ordering::Relaxed);
                        let code = String::from_utf8_lossy(&output.stdout).into_owned();
                        if code != "200" {
                            failures.push(format!("{url}: {code}"));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                failures
            })
        };
        Self {
            stop,
            sent,
            worker: Some(worker),
        }
    }

    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self
            .worker
            .take()
            .expect("worker")
            .join()
            .expect("load thread");
        (self.sent.load(Ordering::Relaxed), failures)
    }
}

/// Process ids whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
    {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl").args(args).output().expect("curl runs");
    assert!(output.status.success(), "curl {args:?} failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn local_up_serves_rotates_stops_and_restarts() {
    let database = TestDatabase::create();
    let state = tempfile::tempdir().expect("temporary folder");
    let state_dir = state.path().join("state");
    let port = free_port();

    let mut up = local_up(&state_dir, port, &database, true);
    let load = Load::start(port);

    // Every README curl example works as written.
    let examples = readme_curl_examples(port);
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &examples])
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "README examples failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("grace.hopper@example.com"),
        "email is trimmed and lower-cased:\n{stdout}"
    );
    assert!(
        stdout.contains("\"postalCode\":\"22202\""),
        "postal code white space is removed:\n{stdout}"
    );
    assert!(
        stdout.contains("504"),
        "simulate/timeout answers 504:\n{stdout}"
    );
    assert!(stdout.contains("204"), "delete answers 204:\n{stdout}");
    assert!(
        stdout.contains("404"),
        "a deleted customer is not found:\n{stdout}"
    );

    // A demo rotation makes a new AWSCURRENT within 90 s.
    let first = current_version(&status_json(&state_dir));
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut rotated = false;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(3));
        if current_version(&status_json(&state_dir)) != first {
            rotated = true;
            break;
        }
    }
    assert!(
        rotated,
        "no new AWSCURRENT within 90 s; output:\n{}",
        up.output()
    );
    let printed = (0..20).any(|_| {
        std::thread::sleep(Duration::from_millis(500));
        up.output().contains("rotated: AWSCURRENT is now")
    });
    assert!(printed, "each rotation is printed:\n{}", up.output());

    // The password stays hidden unless asked for.
    let shown = dsql_secrets(&["secret", "show"], &state_dir);
    let shown_text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success());
    assert!(shown_text.contains("<redacted fp:"), "{shown_text}");
    assert!(!shown_text.contains("X-Amz-Signature"), "{shown_text}");
    let revealed = dsql_secrets(&["secret", "show", "--reveal"], &state_dir);
    let revealed_text = String::from_utf8_lossy(&revealed.stdout).into_owned();
    assert!(revealed_text.contains("X-Amz-Signature"));

    // Neither the stack's output nor any part's log shows the token.
    let signature = revealed_text
        .split("X-Amz-Signature=")
        .nth(1)
        .map(|rest| rest.chars().take(64).collect::<String>())
        .expect("the revealed password has a signature");
    let mut logs = up.output();
    for entry in std::fs::read_dir(state_dir.join("logs"))
        .expect("logs folder")
        .flatten()
    {
        logs.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    assert!(
        !logs.contains(&signature),
        "a log contains the token's signature"
    );
    assert!(logs.contains("fp:"), "logs name tokens by fingerprint");

    let psql = Command::new(cargo_bin("dsql-secrets", "dsql-secrets"))
        .arg("psql")
        .arg("--state-dir")
        .arg(&state_dir)
        .args(["--", "-XAtc", "select 1"])
        .output()
        .expect("dsql-secrets psql runs");
    assert_eq!(
        String::from_utf8_lossy(&psql.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );

    let (sent, failures) = load.finish();
    assert!(sent > 20, "only {sent} requests were sent");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:?}",
        failures.len()
    );

    let kept = curl(&[
        "-sf",
        "-X",
        "POST",
        &format!("http://127.0.0.1:{port}/api/v1/customers"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"firstName":"Kept","email":"kept@example.com","addresses":[{"street":"1 Main St","city":"Springfield","state":"IL","postalCode":"62701","country":"US"}]}"#,
    ]);
    assert!(kept.contains("kept@example.com"));

    // Ctrl-C stops every process the stack started.
    let status = up.interrupt();
    assert!(
        status.success(),
        "local up exited with {status:?}:\n{}",
        up.output()
    );
    let state_text = state_dir.display().to_string();
    let left = processes_mentioning(&state_text);
    assert!(left.is_empty(), "processes left running: {left:?}");

    // A second run keeps the data and the secret.
    let mut again = local_up(&state_dir, port, &database, false);
    let customers = curl(&[
        "-sf",
        &format!("http://127.0.0.1:{port}/api/v1/customers?page=0&size=100"),
    ]);
    assert!(customers.contains("kept@example.com"), "{customers}");

    // A rotation that fails is reported with its reason.
    let stack: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state_dir.join("local-stack.json")).expect("state file exists"),
    )
    .expect("state file is JSON");
    let bad_secret = r#"{"username":"admin","password":"x","host":"db.example.com","engine":"postgres","port":"5432","dbname":"postgres"}"#;
    let put = Command::new(venv_bin("aws"))
        .args([
            "secretsmanager",
            "put-secret-value",
            "--secret-id",
            "dsql-local/admin",
        ])
        .args(["--secret-string", bad_secret])
        .args([
            "--endpoint-url",
            stack["endpoint_url"].as_str().expect("endpoint"),
        ])
        .env(
            "AWS_ACCESS_KEY_ID",
            stack["access_key_id"].as_str().expect("key id"),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            stack["secret_access_key"].as_str().expect("secret key"),
        )
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("aws runs");
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );

    let rotate = dsql_secrets(&["secret", "rotate", "--wait", "60"], &state_dir);
    assert!(
        !rotate.status.success(),
        "rotation of a secret for another host succeeded"
    );
    let rotate_error = String::from_utf8_lossy(&rotate.stderr);
    assert!(
        rotate_error.contains("rotation failed at step createSecret"),
        "{rotate_error}"
    );

    let status = dsql_secrets(&["secret", "status"], &state_dir);
    let status_text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status_text.contains("LAST ROTATION FAILED"),
        "{status_text}"
    );
    assert!(
        status_text.contains("db.example.com"),
        "the reason names the host:\n{status_text}"
    );

    let status = again.interrupt();
    assert!(status.success(), "{}", again.output());
}
