//! The real `rotation-lambda` binary run by the Secrets Manager emulator
//! through the Lambda runtime API, rotating a secret for the gateway.

use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use dsql_token::{Action, AuthToken};
use test_support::{Gateway, Server};

const ACCESS_KEY_ID: &str = "AKIAROTATIONE2E00001";
const SECRET_ACCESS_KEY: &str = "rotation-end-to-end-secret-key";
const FUNCTION: &str = "dsql-rotation";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:dsql-rotation";
const PLACEHOLDER: &str = "placeholder-replaced-by-the-first-rotation";

struct LocalStack {
    gateway: Gateway,
    emulator: Server,
    _state_dir: tempfile::TempDir,
}

impl LocalStack {
    fn start() -> LocalStack {
        let gateway = Gateway::start(
            &test_support::database_url(),
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
        );
        let function = test_support::cargo_bin("rotation-lambda", "rotation-lambda");
        let state_dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(test_support::cargo_bin("dsql-secrets", "dsql-secrets"));
        command
            .args(["local", "secrets", "--listen", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(state_dir.path())
            .arg("--access-key")
            .arg(format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}"))
            .arg("--rotation-function")
            .arg(format!("{FUNCTION}={}", function.display()))
            // The function inherits these from the emulator.
            .env("DSQL_CA_FILE", gateway.ca_file())
            .env("DSQL_ALLOWED_HOSTS", "localhost")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("RUST_LOG", "trace")
            .env_remove("AWS_LAMBDA_LOG_LEVEL")
            .env_remove("TOKEN_LIFETIME_SECS")
            .env_remove("ROTATION_INTERVAL_SECS");
        let emulator = Server::start(command);
        LocalStack {
            gateway,
            emulator,
            _state_dir: state_dir,
        }
    }

    fn client(&self) -> Client {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://{}", self.emulator.addr()))
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

    fn secret_value(&self, password: &str) -> String {
        serde_json::json!({
            "username": "admin",
            "password": password,
            "host": "localhost",
            "engine": "postgres",
            "port": self.gateway.addr().port().to_string(),
            "dbname": "postgres",
        })
        .to_string()
    }

    /// Runs `psql` with `password` over verify-full TLS and returns whether
    /// `SELECT 1` succeeded, with its output.
    fn psql(&self, password: &str) -> (bool, String) {
        let connection = format!(
            "host=localhost port={} user=admin dbname=postgres sslmode=verify-full sslrootcert={}",
            self.gateway.addr().port(),
            self.gateway.ca_file().display()
        );
        let output = Command::new("psql")
            .arg(connection)
            .args(["-tAc", "SELECT 1"])
            .env("PGPASSWORD", password)
            .output()
            .expect("psql runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }
}

async fn stages(client: &Client, name: &str) -> Vec<(String, Vec<String>)> {
    let output = client
        .describe_secret()
        .secret_id(name)
        .send()
        .await
        .unwrap();
    let mut versions: Vec<_> = output
        .version_ids_to_stages()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    versions.sort();
    versions
}

async fn value(client: &Client, name: &str, stage: &str) -> String {
    client
        .get_secret_value()
        .secret_id(name)
        .version_stage(stage)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned()
}

fn password_of(value: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(value).unwrap();
    json["password"].as_str().unwrap().to_owned()
}

/// Waits until no version is AWSPENDING: the emulator removes the label
/// from the new current version when it records the rotation as finished,
/// and leaves it on the pending version when a step failed.
async fn wait_for_rotation(client: &Client, name: &str) {
    for _ in 0..600 {
        let versions = stages(client, name).await;
        let pending = versions
            .iter()
            .any(|(_, labels)| labels.iter().any(|l| l == "AWSPENDING"));
        if !pending {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("rotation of {name} did not end within 60 s");
}

#[tokio::test]
async fn emulator_rotates_secret_with_real_binary() {
    let stack = LocalStack::start();
    let client = stack.client();
    let initial = stack.secret_value(PLACEHOLDER);
    client
        .create_secret()
        .name("app/dsql")
        .secret_string(&initial)
        .send()
        .await
        .unwrap();
    let (placeholder_ok, _) = stack.psql(PLACEHOLDER);
    assert!(!placeholder_ok, "the gateway accepted the placeholder");

    client
        .rotate_secret()
        .secret_id("app/dsql")
        .rotation_lambda_arn(FUNCTION_ARN)
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .schedule_expression("rate(4 hours)")
                .build(),
        )
        .send()
        .await
        .unwrap();
    wait_for_rotation(&client, "app/dsql").await;

    let versions = stages(&client, "app/dsql").await;
    let current: Vec<_> = versions
        .iter()
        .filter(|(_, labels)| labels.iter().any(|l| l == "AWSCURRENT"))
        .collect();
    assert_eq!(current.len(), 1, "{versions:?}");
    assert_eq!(value(&client, "app/dsql", "AWSPREVIOUS").await, initial);

    let token = AuthToken::new(password_of(&value(&client, "app/dsql", "AWSCURRENT").await));
    let parsed = token.parse().expect("AWSCURRENT holds a DSQL token");
    assert_eq!(parsed.hostname(), "localhost");
    assert_eq!(parsed.region(), "us-east-1");
    assert_eq!(parsed.action(), Action::DbConnectAdmin);
    assert_eq!(parsed.lifetime(), Duration::from_secs(28_800));
    assert!(parsed.expires_at() > SystemTime::now() + Duration::from_secs(28_000));
    let (connected, output) = stack.psql(token.expose_secret());
    assert!(connected, "psql with the rotated token failed: {output}");

    // A second rotation replaces the token again; the first one goes to
    // AWSPREVIOUS.
    client
        .rotate_secret()
        .secret_id("app/dsql")
        .send()
        .await
        .unwrap();
    wait_for_rotation(&client, "app/dsql").await;
    let second = password_of(&value(&client, "app/dsql", "AWSCURRENT").await);
    let previous = password_of(&value(&client, "app/dsql", "AWSPREVIOUS").await);
    assert_eq!(
        dsql_token::Fingerprint::of(&previous),
        token.fingerprint(),
        "AWSPREVIOUS holds the first token"
    );
    let (connected, output) = stack.psql(&second);
    assert!(connected, "psql with the second token failed: {output}");

    // Everything the function printed, at the most verbose level.
    let logs = stack.emulator.output();
    let function_lines: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains(&format!("[function {FUNCTION}]")))
        .collect();
    assert!(!function_lines.is_empty(), "no function output captured");
    for secret in [token.expose_secret(), second.as_str()] {
        let signature = secret.rsplit("X-Amz-Signature=").next().unwrap();
        assert!(!logs.contains(secret), "a token was logged");
        assert!(!logs.contains(signature), "a signature was logged");
    }
    assert!(
        !logs.contains("X-Amz-Security-Token"),
        "a session token was logged"
    );
    assert!(
        !logs.contains(SECRET_ACCESS_KEY),
        "the secret access key was logged"
    );
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let step_lines = function_lines
            .iter()
            .filter(|line| line.contains("rotation step finished"))
            .filter(|line| line.contains(&format!("\"step\":\"{step}\"")))
            .count();
        assert_eq!(step_lines, 2, "{step}: one line per rotation expected");
    }
    assert!(
        function_lines
            .iter()
            .any(|line| line.contains("\"token\":\"fp:") && line.contains("expires_at")),
        "step lines carry the token fingerprint and expiry"
    );
}

fn run_with_settings(settings: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(test_support::cargo_bin(
        "rotation-lambda",
        "rotation-lambda",
    ));
    command
        .env_remove("TOKEN_LIFETIME_SECS")
        .env_remove("ROTATION_INTERVAL_SECS")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("AWS_REGION", "us-east-1");
    for (name, value) in settings {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn bad_settings_stop_the_function_at_start() {
    let cases = [
        (
            vec![("TOKEN_LIFETIME_SECS", "3600")],
            "choose a lifetime above 21600 s",
        ),
        (
            vec![("TOKEN_LIFETIME_SECS", "604801")],
            "above the maximum of 604800 s",
        ),
        (
            vec![("ROTATION_INTERVAL_SECS", "28800")],
            "choose a lifetime above 43200 s",
        ),
        (vec![("TOKEN_LIFETIME_SECS", "8h")], "TOKEN_LIFETIME_SECS"),
        (
            vec![("DSQL_CA_FILE", "/nonexistent/ca.pem")],
            "invalid DSQL_CA_FILE",
        ),
        (
            vec![("DSQL_ALLOWED_HOSTS", "localhost,https://x")],
            "invalid DSQL_ALLOWED_HOSTS",
        ),
    ];
    for (settings, expected) in cases {
        let (succeeded, output) = run_with_settings(&settings);
        assert!(!succeeded, "{settings:?} was accepted");
        assert!(output.contains(expected), "{settings:?}: {output}");
    }
}
