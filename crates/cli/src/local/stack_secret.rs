//! The local stack's secret: created on first run, pointed at the gateway's
//! current port, and rotated once at every start through the emulator.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::RotationRulesType;

use super::up::{
    ACCOUNT_ID, FUNCTION_NAME, GATEWAY_HOSTNAME, LocalKey, REGION, SECRET_NAME, Schedule, progress,
};
use crate::aws::describe_sdk_error;
use crate::secret::{RotationOutcome, wait_for_rotation};

/// Creates the secret on first run; on later runs points it at the
/// gateway's current port if that changed.
pub async fn ensure_secret(client: &Client, gateway_addr: SocketAddr) -> anyhow::Result<String> {
    let port = gateway_addr.port().to_string();
    let existing = client
        .get_secret_value()
        .secret_id(SECRET_NAME)
        .send()
        .await;
    match existing {
        Ok(output) => {
            let arn = output.arn().unwrap_or(SECRET_NAME).to_owned();
            let mut value: serde_json::Value = serde_json::from_str(
                output.secret_string().unwrap_or("{}"),
            )
            .context("the local secret is not JSON; delete the state directory to start afresh")?;
            if value.get("port").and_then(|p| p.as_str()) != Some(port.as_str()) {
                value["port"] = serde_json::Value::String(port);
                client
                    .put_secret_value()
                    .secret_id(&arn)
                    .secret_string(value.to_string())
                    .send()
                    .await
                    .map_err(|error| anyhow::anyhow!(describe_sdk_error(&error)))
                    .context("cannot update the secret's port")?;
                progress("secret updated: the gateway's port changed");
            }
            Ok(arn)
        }
        Err(error) if describe_sdk_error(&error).starts_with("ResourceNotFoundException") => {
            let value = serde_json::json!({
                "username": "admin",
                "password": "placeholder-replaced-by-the-first-rotation",
                "host": GATEWAY_HOSTNAME,
                "engine": "postgres",
                "port": port,
                "dbname": "postgres",
                "region": REGION,
            });
            let created = client
                .create_secret()
                .name(SECRET_NAME)
                .description("DSQL admin credentials for the local stack, rotated by dsql-rotation")
                .secret_string(value.to_string())
                .send()
                .await
                .map_err(|error| anyhow::anyhow!(describe_sdk_error(&error)))
                .context("cannot create the secret")?;
            progress(&format!("secret {SECRET_NAME} created"));
            Ok(created.arn().unwrap_or(SECRET_NAME).to_owned())
        }
        Err(error) => {
            Err(anyhow::anyhow!(describe_sdk_error(&error))).context("cannot read the secret")
        }
    }
}

/// Configures the schedule and rotates once, waiting for the outcome.
pub async fn rotate_now(
    client: &Client,
    secret_id: &str,
    schedule: &Schedule,
    endpoint_url: &str,
) -> anyhow::Result<()> {
    let function_arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION_NAME}");
    let start = || {
        client
            .rotate_secret()
            .secret_id(secret_id)
            .rotation_lambda_arn(&function_arn)
            .rotation_rules(
                RotationRulesType::builder()
                    .schedule_expression(schedule.expression)
                    .build(),
            )
            .rotate_immediately(true)
            .send()
    };
    let rotation = match start().await {
        Ok(rotation) => rotation,
        Err(error) if describe_sdk_error(&error).contains("previous rotation isn't complete") => {
            // The last run stopped during a rotation. Clearing the unfinished
            // version's AWSPENDING label is the documented way to start over.
            clear_unfinished_rotation(client, secret_id).await?;
            start()
                .await
                .map_err(|error| anyhow::anyhow!(describe_sdk_error(&error)))
                .context("cannot start the first rotation")?
        }
        Err(error) => {
            return Err(anyhow::anyhow!(describe_sdk_error(&error)))
                .context("cannot start the first rotation");
        }
    };
    let pending = rotation.version_id().unwrap_or_default().to_owned();
    progress("rotating the secret once (createSecret, setSecret, testSecret, finishSecret)");

    match wait_for_rotation(
        client,
        secret_id,
        &pending,
        Some(endpoint_url),
        Duration::from_secs(120),
    )
    .await?
    {
        RotationOutcome::Finished { token } => {
            let detail = token
                .map(|token| format!(", token {} expires {}", token.fingerprint, token.expires_at))
                .unwrap_or_default();
            progress(&format!(
                "rotation finished: AWSCURRENT is {pending}{detail}"
            ));
            Ok(())
        }
        RotationOutcome::Failed { step, message } => {
            anyhow::bail!(
                "the first rotation failed at step {step}: {message}; see logs/secrets.log"
            )
        }
        RotationOutcome::TimedOut => {
            anyhow::bail!("the first rotation did not finish within 120 s; see logs/secrets.log")
        }
    }
}

/// Removes `AWSPENDING` from a version that is not `AWSCURRENT`.
async fn clear_unfinished_rotation(client: &Client, secret_id: &str) -> anyhow::Result<()> {
    let described = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|error| anyhow::anyhow!(describe_sdk_error(&error)))?;
    let unfinished = described.version_ids_to_stages().and_then(|stages| {
        stages
            .iter()
            .find(|(_, labels)| {
                labels.iter().any(|l| l == "AWSPENDING")
                    && !labels.iter().any(|l| l == "AWSCURRENT")
            })
            .map(|(id, _)| id.clone())
    });
    if let Some(version) = unfinished {
        progress(&format!(
            "clearing the unfinished rotation of version {version} left by the last run"
        ));
        client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage("AWSPENDING")
            .remove_from_version_id(version)
            .send()
            .await
            .map_err(|error| anyhow::anyhow!(describe_sdk_error(&error)))
            .context("cannot clear the unfinished rotation")?;
    }
    Ok(())
}

pub async fn secrets_client(endpoint_url: &str, key: &LocalKey) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_credential_types::Credentials::new(
            &key.access_key_id,
            &key.secret_access_key,
            None,
            None,
            "local-stack",
        ))
        .load()
        .await;
    Client::new(&config)
}
