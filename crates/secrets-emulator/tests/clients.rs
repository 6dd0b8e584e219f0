//! The AWS CLI and boto3, pointed at `dsql-secrets local secrets` by
//! endpoint URL, run the acceptance scenario.

mod common;

use std::process::Command;

use common::{emulator_command, python_env, token};
use serde_json::Value;
use test_support::Server;

fn start_emulator() -> (Server, tempfile::TempDir) {
    let state_dir = tempfile::tempdir().unwrap();
    let server = Server::start(emulator_command(state_dir.path(), &[]));
    (server, state_dir)
}

/// Runs `aws secretsmanager ARGS`; returns the parsed output, or the error
/// text when the command fails.
fn aws(endpoint: &str, args: &[&str]) -> Result<Value, String> {
    let mut command = Command::new(test_support::venv_bin("aws"));
    python_env(&mut command, endpoint);
    let output = command
        .args(["--output", "json", "secretsmanager"])
        .args(args)
        .output()
        .expect("aws runs");
    if output.status.success() {
        let stdout = String::from_utf8_lossy(&output.stdout);
        Ok(if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).expect("aws prints JSON")
        })
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn aws_cli_runs_the_scenario() {
    let (server, _state) = start_emulator();
    let endpoint = format!("http://{}", server.addr());
    let (t1, t2) = (token(1), token(2));

    let created = aws(
        &endpoint,
        &[
            "create-secret",
            "--name",
            "cli/app",
            "--secret-string",
            "v1",
            "--client-request-token",
            &t1,
        ],
    )
    .unwrap();
    assert_eq!(created["VersionId"], t1.as_str());
    let by_label = aws(
        &endpoint,
        &[
            "get-secret-value",
            "--secret-id",
            "cli/app",
            "--version-stage",
            "AWSCURRENT",
        ],
    )
    .unwrap();
    assert_eq!(by_label["SecretString"], "v1");
    let by_version = aws(
        &endpoint,
        &[
            "get-secret-value",
            "--secret-id",
            created["ARN"].as_str().unwrap(),
            "--version-id",
            &t1,
        ],
    )
    .unwrap();
    assert_eq!(by_version["SecretString"], "v1");

    let put = aws(
        &endpoint,
        &[
            "put-secret-value",
            "--secret-id",
            "cli/app",
            "--secret-string",
            "v2",
            "--client-request-token",
            &t2,
        ],
    )
    .unwrap();
    assert_eq!(put["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    aws(
        &endpoint,
        &[
            "put-secret-value",
            "--secret-id",
            "cli/app",
            "--secret-string",
            "v2",
            "--client-request-token",
            &t2,
        ],
    )
    .unwrap();
    let conflict = aws(
        &endpoint,
        &[
            "put-secret-value",
            "--secret-id",
            "cli/app",
            "--secret-string",
            "v3",
            "--client-request-token",
            &t2,
        ],
    )
    .unwrap_err();
    assert!(conflict.contains("(ResourceExistsException)"), "{conflict}");
    let untokened = aws(
        &endpoint,
        &[
            "put-secret-value",
            "--secret-id",
            "cli/app",
            "--secret-string",
            "v3",
        ],
    )
    .unwrap();
    let untokened_id = untokened["VersionId"].as_str().unwrap().to_owned();

    let refused = aws(
        &endpoint,
        &[
            "update-secret-version-stage",
            "--secret-id",
            "cli/app",
            "--version-stage",
            "AWSCURRENT",
            "--move-to-version-id",
            &t2,
        ],
    )
    .unwrap_err();
    assert!(refused.contains("(InvalidParameterException)"), "{refused}");
    aws(
        &endpoint,
        &[
            "update-secret-version-stage",
            "--secret-id",
            "cli/app",
            "--version-stage",
            "AWSCURRENT",
            "--move-to-version-id",
            &t2,
            "--remove-from-version-id",
            &untokened_id,
        ],
    )
    .unwrap();
    let versions = aws(
        &endpoint,
        &["list-secret-version-ids", "--secret-id", "cli/app"],
    )
    .unwrap();
    let stages_of = |id: &str| {
        versions["Versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["VersionId"] == id)
            .map(|v| v["VersionStages"].clone())
    };
    assert_eq!(stages_of(&t2), Some(serde_json::json!(["AWSCURRENT"])));
    assert_eq!(
        stages_of(&untokened_id),
        Some(serde_json::json!(["AWSPREVIOUS"]))
    );

    aws(
        &endpoint,
        &[
            "delete-secret",
            "--secret-id",
            "cli/app",
            "--recovery-window-in-days",
            "7",
        ],
    )
    .unwrap();
    let unreadable = aws(&endpoint, &["get-secret-value", "--secret-id", "cli/app"]).unwrap_err();
    assert!(
        unreadable.contains("(InvalidRequestException)"),
        "{unreadable}"
    );
    aws(&endpoint, &["restore-secret", "--secret-id", "cli/app"]).unwrap();
    let restored = aws(&endpoint, &["get-secret-value", "--secret-id", "cli/app"]).unwrap();
    assert_eq!(restored["SecretString"], "v2");

    assert!(
        !server.output().contains(common::KEY_SECRET),
        "the emulator never logs the secret key"
    );
    assert!(
        !server.output().contains("\"v2\""),
        "the emulator never logs secret values"
    );
}

#[test]
fn boto3_runs_the_scenario() {
    let (server, _state) = start_emulator();
    let endpoint = format!("http://{}", server.addr());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/boto3_scenario.py");
    let mut command = Command::new(test_support::venv_bin("python"));
    python_env(&mut command, &endpoint);
    let output = command.arg(script).output().expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "boto3 scenario failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("boto3 scenario passed"));
}
