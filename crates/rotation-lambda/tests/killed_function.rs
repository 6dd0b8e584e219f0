//! The real `rotation-lambda` binary killed with SIGKILL between
//! `PutSecretValue` (createSecret) and finishSecret, then reattempted by the
//! emulator's schedule as the service would: the previous token works
//! throughout, and the rotation converges to one `AWSCURRENT` with a valid
//! token.
//!
//! The secret points at a loopback relay in front of the gateway. While the
//! relay keeps connections open without forwarding them, testSecret hangs,
//! and that is when the function is killed.

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::types::RotationRulesType;
use test_support::{Gateway, Server};

const ACCESS_KEY_ID: &str = "AKIAROTATIONKILL0001";
const SECRET_ACCESS_KEY: &str = "rotation-killed-function-secret-key";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:dsql-rotation";
const NAME: &str = "app/killed";
const LIMIT: Duration = Duration::from_secs(60);

/// A loopback relay that either forwards connections to `target` or keeps
/// them open without forwarding anything.
struct Relay {
    port: u16,
    forwarding: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
}

impl Relay {
    fn start(target: std::net::SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay binds");
        let port = listener.local_addr().expect("relay address").port();
        let forwarding = Arc::new(AtomicBool::new(true));
        let held = Arc::new(AtomicUsize::new(0));
        let (forward, count) = (Arc::clone(&forwarding), Arc::clone(&held));
        std::thread::spawn(move || {
            let mut holding = Vec::new();
            for client in listener.incoming().flatten() {
                if !forward.load(Ordering::SeqCst) {
                    holding.push(client);
                    count.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                holding.clear();
                let Ok(upstream) = TcpStream::connect(target) else {
                    continue;
                };
                pipe(&client, &upstream);
                pipe(&upstream, &client);
            }
        });
        Relay {
            port,
            forwarding,
            held,
        }
    }
}

fn pipe(from: &TcpStream, to: &TcpStream) {
    let (mut from, mut to) = (
        from.try_clone().expect("clone"),
        to.try_clone().expect("clone"),
    );
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

fn client(emulator: &Server) -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", emulator.addr()))
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "tests",
        ))
        .build();
    Client::from_conf(config)
}

async fn stages(client: &Client) -> Vec<(String, Vec<String>)> {
    let described = client
        .describe_secret()
        .secret_id(NAME)
        .send()
        .await
        .expect("describe");
    let mut versions: Vec<_> = described
        .version_ids_to_stages()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    versions.sort();
    versions
}

async fn version_with(client: &Client, stage: &str) -> Option<String> {
    stages(client)
        .await
        .into_iter()
        .find(|(_, labels)| labels.iter().any(|label| label == stage))
        .map(|(id, _)| id)
}

async fn password(client: &Client, version_id: &str) -> String {
    let value = client
        .get_secret_value()
        .secret_id(NAME)
        .version_id(version_id)
        .send()
        .await
        .expect("version has a value");
    let json: serde_json::Value =
        serde_json::from_str(value.secret_string().expect("string")).expect("JSON");
    json["password"].as_str().expect("password").to_owned()
}

fn psql_works(gateway: &Gateway, password: &str) -> bool {
    let connection = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=admin dbname=postgres sslmode=verify-full sslrootcert={}",
        gateway.addr().port(),
        gateway.ca_file().display()
    );
    Command::new("psql")
        .arg(connection)
        .args(["-XtAc", "SELECT 1"])
        .env("PGPASSWORD", password)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Process ids of `rotation-lambda` processes whose parent is `parent`.
fn function_processes(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, tail)) = stat.rsplit_once(") ") else {
            continue;
        };
        let parent_pid = tail
            .split_whitespace()
            .nth(1)
            .and_then(|field| field.parse::<u32>().ok());
        if head.ends_with("(rotation-lambda")
            && parent_pid == Some(parent)
            && let Ok(pid) = entry.file_name().to_string_lossy().parse()
        {
            found.push(pid);
        }
    }
    found
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + LIMIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_between_put_and_finish_converges_on_reattempt() {
    let gateway = Gateway::start(
        &test_support::database_url(),
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
    );
    let relay = Relay::start(gateway.addr());
    let state_dir = tempfile::tempdir().expect("temporary folder");
    let function = test_support::cargo_bin("rotation-lambda", "rotation-lambda");
    let mut command = Command::new(test_support::cargo_bin("dsql-secrets", "dsql-secrets"));
    command
        .args([
            "local",
            "secrets",
            "--listen",
            "127.0.0.1:0",
            "--allow-short-schedules",
        ])
        .arg("--state-dir")
        .arg(state_dir.path())
        .arg("--access-key")
        .arg(format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}"))
        .arg("--rotation-function")
        .arg(format!("dsql-rotation={}", function.display()))
        .env("DSQL_CA_FILE", gateway.ca_file())
        .env("DSQL_ALLOWED_HOSTS", "localhost")
        .env("ROTATION_INTERVAL_SECS", "10")
        .env("TOKEN_LIFETIME_SECS", "3600")
        .env("DSQL_CONNECT_TIMEOUT_SECS", "30");
    let emulator = Server::start(command);
    let client = client(&emulator);

    let secret = serde_json::json!({
        "username": "admin", "password": "placeholder", "host": "localhost",
        "engine": "postgres", "port": relay.port.to_string(), "dbname": "postgres",
    });
    client
        .create_secret()
        .name(NAME)
        .secret_string(secret.to_string())
        .send()
        .await
        .expect("create");

    // A first rotation succeeds and gives a real token.
    let first = client
        .rotate_secret()
        .secret_id(NAME)
        .rotation_lambda_arn(FUNCTION_ARN)
        .send()
        .await
        .expect("first rotation starts");
    let first_version = first.version_id().expect("version").to_owned();
    wait_until("the first rotation finishes", || async {
        version_with(&client, "AWSCURRENT").await.as_deref() == Some(first_version.as_str())
    })
    .await;
    let first_token = password(&client, &first_version).await;
    assert!(psql_works(&gateway, &first_token), "the first token works");

    // Tokens signed in the same second with the same key are identical, so
    // the second rotation waits for the clock to move on.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The second rotation hangs in testSecret; the function is killed there.
    relay.forwarding.store(false, Ordering::SeqCst);
    let second = client
        .rotate_secret()
        .secret_id(NAME)
        .rotation_rules(
            RotationRulesType::builder()
                .schedule_expression("rate(10 seconds)")
                .build(),
        )
        .send()
        .await
        .expect("second rotation starts");
    let pending_version = second.version_id().expect("version").to_owned();
    wait_until("testSecret connects", || async {
        relay.held.load(Ordering::SeqCst) > 0
    })
    .await;

    // createSecret has put the new token; compare fingerprints, never text.
    let pending_token = password(&client, &pending_version).await;
    let pending_parsed =
        dsql_token::parse(&pending_token).expect("the pending password is a token");
    assert_ne!(
        pending_parsed.fingerprint(),
        dsql_token::Fingerprint::of(&first_token),
        "the pending token differs from the current one"
    );
    let killed = function_processes(emulator.pid());
    assert_eq!(killed.len(), 1, "one function process runs: {killed:?}");
    let status = Command::new("kill")
        .args(["-KILL", &killed[0].to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());

    // The previous token stays current and keeps working.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        version_with(&client, "AWSCURRENT").await.as_deref(),
        Some(first_version.as_str())
    );
    assert!(
        psql_works(&gateway, &first_token),
        "the previous token works after the kill"
    );

    // The schedule reattempts the rotation; with the database reachable
    // again it converges.
    relay.forwarding.store(true, Ordering::SeqCst);
    wait_until("the reattempt makes a new version current", || async {
        version_with(&client, "AWSCURRENT")
            .await
            .is_some_and(|current| current != first_version)
    })
    .await;
    client
        .cancel_rotate_secret()
        .secret_id(NAME)
        .send()
        .await
        .expect("schedule stops");

    let versions = stages(&client).await;
    let current: Vec<_> = versions
        .iter()
        .filter(|(_, labels)| labels.iter().any(|l| l == "AWSCURRENT"))
        .collect();
    assert_eq!(current.len(), 1, "exactly one AWSCURRENT: {versions:?}");
    let current_version = current[0].0.clone();
    for (version, labels) in &versions {
        if labels.iter().any(|l| l == "AWSPENDING") {
            assert_eq!(
                version, &current_version,
                "AWSPENDING only on AWSCURRENT: {versions:?}"
            );
        }
    }

    let current_token = password(&client, &current_version).await;
    let parsed = dsql_token::parse(&current_token).expect("current password is a token");
    assert!(parsed.remaining(SystemTime::now()) > Duration::from_secs(3000));
    assert!(psql_works(&gateway, &current_token), "the new token works");
    assert!(
        emulator.output().contains("rotation failed")
            || emulator.output().contains("outcome=\"failed\""),
        "the killed attempt was recorded as failed"
    );
}
