//! `dsql-secrets secret status|rotate|show`: a secret's rotation state,
//! triggering a rotation, and its value with the password redacted.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_secretsmanager::Client;
use clap::{Args, Subcommand};
use serde_json::Value;

mod status;

use crate::aws::{SecretTarget, current_value, describe_sdk_error};
pub use status::{TokenSummary, emulator_rotation_status, summarize_password};
use status::{build_status, print_status};

#[derive(Subcommand)]
pub enum SecretCommand {
    /// Versions and staging labels, token fingerprints and time left, last
    /// and next rotation, and the last failure.
    Status(StatusArgs),
    /// Start a rotation now (RotateSecret) and, with --wait, report its outcome.
    Rotate(RotateArgs),
    /// Print the secret's JSON with the password redacted (unless --reveal).
    Show(ShowArgs),
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    target: SecretTarget,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RotateArgs {
    #[command(flatten)]
    target: SecretTarget,
    /// Wait up to this many seconds for the rotation to finish (0: do not wait).
    #[arg(long, default_value_t = 120)]
    wait: u64,
}

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    target: SecretTarget,
    /// Print the password too. It is a live database credential.
    #[arg(long)]
    reveal: bool,
}

pub async fn run(command: SecretCommand) -> anyhow::Result<()> {
    match command {
        SecretCommand::Status(args) => status(args).await,
        SecretCommand::Rotate(args) => rotate(args).await,
        SecretCommand::Show(args) => show(args).await,
    }
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let resolved = args.target.resolve().await?;
    let report = build_status(
        &resolved.client,
        &resolved.secret_id,
        emulator_url(&resolved, &args.target),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_status(&report);
    }
    Ok(())
}

/// Returns the emulator's base URL when the target is probably the local
/// emulator.
fn emulator_url(resolved: &crate::aws::Resolved, target: &SecretTarget) -> Option<String> {
    match (&resolved.local, &target.endpoint_url) {
        (Some(stack), _) => Some(stack.endpoint_url.clone()),
        (None, Some(endpoint)) => Some(endpoint.clone()),
        (None, None) => None,
    }
}

async fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let resolved = args.target.resolve().await?;
    let client = &resolved.client;
    let output = client
        .rotate_secret()
        .secret_id(&resolved.secret_id)
        .send()
        .await
        .map_err(|error| anyhow::anyhow!(describe_sdk_error(&error)))
        .with_context(|| format!("cannot start a rotation of {:?}", resolved.secret_id))?;
    let pending = output.version_id().unwrap_or_default().to_owned();
    println!("rotation started: pending version {pending}");
    if args.wait == 0 {
        return Ok(());
    }

    let emulator = emulator_url(&resolved, &args.target);
    let outcome = wait_for_rotation(
        client,
        &resolved.secret_id,
        &pending,
        emulator.as_deref(),
        Duration::from_secs(args.wait),
    )
    .await?;
    match outcome {
        RotationOutcome::Finished { token: Some(token) } => println!(
            "rotation finished: AWSCURRENT is {pending}, token {} expires {}",
            token.fingerprint, token.expires_at
        ),
        RotationOutcome::Finished { token: None } => {
            println!("rotation finished: AWSCURRENT is {pending}")
        }
        RotationOutcome::Failed { step, message } => {
            anyhow::bail!("rotation failed at step {step}: {message}")
        }
        RotationOutcome::TimedOut => anyhow::bail!(
            "rotation did not finish within {} s; check `dsql-secrets secret status`",
            args.wait
        ),
    }
    Ok(())
}

/// The outcome of a rotation.
pub enum RotationOutcome {
    /// The pending version became `AWSCURRENT`.
    Finished { token: Option<TokenSummary> },
    /// The emulator recorded a failure of this rotation.
    Failed { step: String, message: String },
    /// Neither happened in time.
    TimedOut,
}

/// Waits until `pending` becomes `AWSCURRENT`, or the emulator at
/// `emulator` records its failure, or `timeout` passes.
pub async fn wait_for_rotation(
    client: &Client,
    secret_id: &str,
    pending: &str,
    emulator: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<RotationOutcome> {
    let deadline = tokio::time::Instant::now() + timeout;
    let arn = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .ok()
        .and_then(|described| described.arn().map(str::to_owned))
        .unwrap_or_else(|| secret_id.to_owned());
    loop {
        if current_version(client, secret_id).await? == pending {
            let token = client
                .get_secret_value()
                .secret_id(secret_id)
                .send()
                .await
                .ok()
                .and_then(|output| output.secret_string().map(summarize_password))
                .and_then(Result::ok);
            return Ok(RotationOutcome::Finished { token });
        }
        if let Some(url) = emulator
            && let Some(failure) = emulator_rotation_status(url, &arn)
                .await
                .and_then(|status| status.get("lastFailure").cloned())
                .filter(|failure| failure["versionId"].as_str() == Some(pending))
        {
            return Ok(RotationOutcome::Failed {
                step: failure["step"].as_str().unwrap_or("?").to_owned(),
                message: failure["errorMessage"].as_str().unwrap_or("?").to_owned(),
            });
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(RotationOutcome::TimedOut);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn current_version(client: &Client, secret_id: &str) -> anyhow::Result<String> {
    let described = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|error| anyhow::anyhow!(describe_sdk_error(&error)))
        .with_context(|| format!("cannot describe secret {secret_id:?}"))?;
    described
        .version_ids_to_stages()
        .and_then(|stages| {
            stages
                .iter()
                .find(|(_, labels)| labels.iter().any(|l| l == "AWSCURRENT"))
                .map(|(id, _)| id.clone())
        })
        .with_context(|| format!("secret {secret_id:?} has no AWSCURRENT version"))
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let resolved = args.target.resolve().await?;
    let value = current_value(&resolved.client, &resolved.secret_id).await?;
    let Ok(mut json) = serde_json::from_str::<Value>(&value) else {
        if args.reveal {
            println!("{value}");
        } else {
            println!(
                "(the secret is not JSON; {} bytes; pass --reveal to print it)",
                value.len()
            );
        }
        return Ok(());
    };
    if !args.reveal {
        redact_password(&mut json);
    }
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

/// Replaces `password` with its fingerprint.
fn redact_password(json: &mut Value) {
    if let Some(password) = json.get_mut("password") {
        let text = match password.as_str() {
            Some(text) => format!("<redacted {}>", dsql_token::Fingerprint::of(text)),
            None => String::from("<redacted>"),
        };
        *password = Value::String(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_only_the_password() {
        let mut json = serde_json::json!({"username": "admin", "password": "host/?X-Amz-Signature=abc", "host": "h"});
        redact_password(&mut json);
        assert_eq!(json["username"], "admin");
        assert_eq!(json["host"], "h");
        let password = json["password"].as_str().unwrap();
        assert!(password.starts_with("<redacted fp:"), "{password}");
        assert!(!json.to_string().contains("abc"));
    }

    #[test]
    fn non_string_password_is_redacted_too() {
        let mut json = serde_json::json!({"password": 12345});
        redact_password(&mut json);
        assert_eq!(json["password"], "<redacted>");
    }
}
