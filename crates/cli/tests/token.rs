//! `dsql-secrets token generate|inspect`, run as a user would run them.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use test_support::cargo_bin;

const KEY_ID: &str = "AKIDTOKENCLI";
const SECRET: &str = "token-cli-test-secret";

fn dsql_secrets(args: &[&str]) -> Command {
    let mut command = Command::new(cargo_bin("dsql-secrets", "dsql-secrets"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

fn run(args: &[&str]) -> Output {
    dsql_secrets(args).output().expect("dsql-secrets runs")
}

fn generate(extra: &[&str]) -> String {
    let mut args = vec![
        "token",
        "generate",
        "--hostname",
        "abc.dsql.us-east-1.on.aws",
        "--region",
        "us-east-1",
    ];
    args.extend_from_slice(extra);
    let output = run(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("token is UTF-8")
        .trim()
        .to_owned()
}

fn inspect_json(token: &str) -> serde_json::Value {
    let mut child = dsql_secrets(&["token", "inspect", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dsql-secrets runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(token.as_bytes())
        .expect("token is written");
    let output = child.wait_with_output().expect("inspect finishes");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("inspect --json prints JSON")
}

#[test]
fn generated_admin_token_inspects_to_its_fields() {
    let token = generate(&["--expires-in", "3600"]);
    assert!(
        token.starts_with("abc.dsql.us-east-1.on.aws/?Action=DbConnectAdmin&"),
        "{token}"
    );

    let report = inspect_json(&token);
    assert_eq!(report["hostname"], "abc.dsql.us-east-1.on.aws");
    assert_eq!(report["region"], "us-east-1");
    assert_eq!(report["action"], "DbConnectAdmin");
    assert_eq!(report["access_key_id"], KEY_ID);
    assert_eq!(report["lifetime_secs"], 3600);
    assert_eq!(report["expired"], false);
    let seconds_left = report["seconds_left"]
        .as_u64()
        .expect("seconds_left is a number");
    assert!((3500..=3600).contains(&seconds_left), "{seconds_left}");
}

#[test]
fn custom_role_gets_a_db_connect_token() {
    let token = generate(&["--role", "app_user"]);
    let report = inspect_json(&token);
    assert_eq!(report["action"], "DbConnect");
    assert_eq!(report["lifetime_secs"], 900);
}

#[test]
fn inspect_never_prints_the_signature() {
    let token = generate(&[]);
    let signature = token.rsplit_once("X-Amz-Signature=").expect("signature").1;

    let text = run(&["token", "inspect", &token]);
    assert!(text.status.success());
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("DbConnectAdmin"), "{stdout}");
    assert!(!stdout.contains(signature), "{stdout}");
    assert!(!inspect_json(&token).to_string().contains(signature));
}

#[test]
fn lifetime_outside_one_week_is_an_error() {
    for lifetime in ["0", "604801"] {
        let output = run(&[
            "token",
            "generate",
            "--hostname",
            "abc.dsql.us-east-1.on.aws",
            "--region",
            "us-east-1",
            "--expires-in",
            lifetime,
        ]);
        assert!(!output.status.success(), "lifetime {lifetime} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("choose between 1 and 604800 seconds"),
            "{stderr}"
        );
    }
}

#[test]
fn missing_credentials_are_reported() {
    let output = Command::new(cargo_bin("dsql-secrets", "dsql-secrets"))
        .args([
            "token",
            "generate",
            "--hostname",
            "abc.dsql.us-east-1.on.aws",
            "--region",
            "us-east-1",
        ])
        .env_clear()
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("dsql-secrets runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("failed to load AWS credentials"),
        "{stderr}"
    );
}

#[test]
fn malformed_token_is_a_clear_error_without_echo() {
    let garbage = "https://example.com/?X-Amz-Signature=deadbeefsecret";
    let output = run(&["token", "inspect", garbage]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a valid DSQL auth token"), "{stderr}");
    assert!(!stderr.contains("deadbeefsecret"), "{stderr}");
}

#[test]
fn region_defaults_to_the_one_in_a_dsql_hostname() {
    let output = run(&[
        "token",
        "generate",
        "--hostname",
        "abc.dsql.eu-west-1.on.aws",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(inspect_json(&token)["region"], "eu-west-1");
}

#[test]
fn missing_region_is_reported() {
    let output = run(&["token", "generate", "--hostname", "localhost"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no region: pass --region"), "{stderr}");
}
