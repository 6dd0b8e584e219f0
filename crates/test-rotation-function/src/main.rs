//! A rotation function for the emulator's tests: a real `lambda_runtime`
//! binary that performs the four rotation steps on a JSON secret, adding 1
//! to its `generation` field on each rotation.
//!
//! Test controls, all optional: `TEST_ROTATION_FAIL_AT=STEP` or a
//! `"fail_at": "STEP"` field in the secret makes that step return an error;
//! `TEST_ROTATION_CRASH_AT=STEP` or a `"crash_at"` field makes the process
//! exit at that step;
//! `TEST_ROTATION_LOG=FILE` appends `STEP TOKEN` per invocation;
//! a `"sleep_after_finish_ms"` field makes finishSecret wait that long after
//! moving `AWSCURRENT`, so a test can act while the rotation still runs.

use std::io::Write;

use aws_sdk_secretsmanager::Client;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};

const PENDING: &str = "AWSPENDING";
const CURRENT: &str = "AWSCURRENT";

/// The event Secrets Manager sends to a rotation function.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationEvent {
    secret_id: String,
    client_request_token: String,
    step: String,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = Client::new(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<RotationEvent>| {
        let client = client.clone();
        async move { handle(&client, event.payload).await }
    }))
    .await
}

async fn handle(client: &Client, event: RotationEvent) -> Result<Value, Error> {
    let RotationEvent {
        secret_id,
        client_request_token: token,
        step,
    } = event;
    if let Ok(path) = std::env::var("TEST_ROTATION_LOG") {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(log, "{step} {token}")?;
    }
    let current = client
        .get_secret_value()
        .secret_id(&secret_id)
        .version_stage(CURRENT)
        .send()
        .await?;
    let mut value: Value = serde_json::from_str(current.secret_string().unwrap_or("{}"))?;
    let fail_at = std::env::var("TEST_ROTATION_FAIL_AT")
        .ok()
        .or_else(|| value["fail_at"].as_str().map(str::to_owned));
    let crash_at = std::env::var("TEST_ROTATION_CRASH_AT")
        .ok()
        .or_else(|| value["crash_at"].as_str().map(str::to_owned));
    if crash_at.as_deref() == Some(step.as_str()) {
        std::process::exit(3);
    }
    if fail_at.as_deref() == Some(step.as_str()) {
        return Err(format!("test function fails at {step} as configured").into());
    }

    match step.as_str() {
        "createSecret" => {
            let existing = client
                .get_secret_value()
                .secret_id(&secret_id)
                .version_id(&token)
                .version_stage(PENDING)
                .send()
                .await;
            if existing.is_err() {
                let generation = value["generation"].as_i64().unwrap_or(0) + 1;
                value["generation"] = json!(generation);
                client
                    .put_secret_value()
                    .secret_id(&secret_id)
                    .client_request_token(&token)
                    .secret_string(value.to_string())
                    .version_stages(PENDING)
                    .send()
                    .await?;
            }
        }
        "setSecret" => {}
        "testSecret" => {
            let pending = client
                .get_secret_value()
                .secret_id(&secret_id)
                .version_id(&token)
                .version_stage(PENDING)
                .send()
                .await?;
            serde_json::from_str::<Value>(pending.secret_string().unwrap_or(""))?;
        }
        "finishSecret" => {
            let described = client
                .describe_secret()
                .secret_id(&secret_id)
                .send()
                .await?;
            let current_version = described
                .version_ids_to_stages()
                .into_iter()
                .flatten()
                .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
                .map(|(id, _)| id.clone());
            if current_version.as_deref() != Some(token.as_str()) {
                client
                    .update_secret_version_stage()
                    .secret_id(&secret_id)
                    .version_stage(CURRENT)
                    .move_to_version_id(&token)
                    .set_remove_from_version_id(current_version)
                    .send()
                    .await?;
            }
        }
        other => return Err(format!("unknown rotation step {other}").into()),
    }
    if step == "finishSecret"
        && let Some(pause) = value["sleep_after_finish_ms"].as_u64()
    {
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }
    println!("rotation step {step} finished for version {token}");
    Ok(json!({}))
}
