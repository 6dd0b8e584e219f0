//! `dsql-secrets secret status|rotate|show`: a secret's rotation state,
//! triggering a rotation, and its value with the password redacted.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use aws_sdk_secretsmanager::Client;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;

use crate::aws::{SecretTarget, current_value, describe_sdk_error};
use crate::time_format::{age, rfc3339};

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

#[derive(Serialize)]
struct VersionReport {
    version_id: String,
    stages: Vec<String>,
    created: Option<String>,
    token: Option<TokenSummary>,
    note: Option<String>,
}

#[derive(Serialize)]
pub struct TokenSummary {
    pub fingerprint: String,
    pub action: &'static str,
    pub hostname: String,
    pub expires_at: String,
    pub seconds_left: u64,
}

#[derive(Serialize)]
struct StatusReport {
    arn: String,
    name: String,
    rotation_enabled: bool,
    rotation_function: Option<String>,
    schedule: Option<String>,
    last_rotated: Option<String>,
    next_rotation: Option<String>,
    versions: Vec<VersionReport>,
    /// `healthy`, `rotating`, `failed` or `not rotated`.
    state: String,
    last_failure: Option<Value>,
    warnings: Vec<String>,
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

/// The emulator's base URL when the target is (probably) the local emulator.
fn emulator_url(resolved: &crate::aws::Resolved, target: &SecretTarget) -> Option<String> {
    match (&resolved.local, &target.endpoint_url) {
        (Some(stack), _) => Some(stack.endpoint_url.clone()),
        (None, Some(endpoint)) => Some(endpoint.clone()),
        (None, None) => None,
    }
}

async fn build_status(
    client: &Client,
    secret_id: &str,
    emulator: Option<String>,
) -> anyhow::Result<StatusReport> {
    let described = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|error| anyhow::anyhow!(describe_sdk_error(&error)))
        .with_context(|| format!("cannot describe secret {secret_id:?}"))?;
    let arn = described.arn().unwrap_or_default().to_owned();
    let now = SystemTime::now();

    let mut versions = Vec::new();
    let stages = described
        .version_ids_to_stages()
        .cloned()
        .unwrap_or_default();
    let mut stage_list: Vec<_> = stages.into_iter().collect();
    stage_list.sort_by_key(|(_, labels)| stage_rank(labels));
    for (version_id, labels) in stage_list {
        versions.push(version_report(client, &arn, version_id, labels, now).await);
    }

    let current = versions
        .iter()
        .find(|v| v.stages.iter().any(|s| s == "AWSCURRENT"));
    let unfinished = versions.iter().find(|v| {
        v.stages.iter().any(|s| s == "AWSPENDING") && !v.stages.iter().any(|s| s == "AWSCURRENT")
    });

    let last_failure = match &emulator {
        Some(url) => emulator_rotation_status(url, &arn)
            .await
            .and_then(|status| {
                status
                    .get("lastFailure")
                    .filter(|failure| !failure.is_null())
                    .cloned()
            }),
        None => None,
    };
    let state = match (unfinished, &last_failure) {
        (Some(_), Some(_)) => "failed",
        (Some(_), None) => "rotating",
        (None, Some(_)) => "failed",
        (None, None) if described.last_rotated_date().is_some() => "healthy",
        (None, None) => "not rotated",
    };

    let mut warnings = Vec::new();
    if let (Some(token), Some(next)) = (
        current.and_then(|v| v.token.as_ref()),
        described.next_rotation_date(),
    ) {
        let next_rotation =
            SystemTime::UNIX_EPOCH + Duration::from_secs_f64(next.as_secs_f64().max(0.0));
        let expires_at = now + Duration::from_secs(token.seconds_left);
        if expires_at < next_rotation + Duration::from_secs(3600) {
            warnings.push(String::from(
                "the current token expires less than an hour after the next scheduled rotation; \
                 raise TOKEN_LIFETIME_SECS so clients keep working if a rotation fails",
            ));
        }
    }
    if unfinished.is_some() && last_failure.is_none() && emulator.is_none() {
        warnings.push(String::from(
            "a version is still AWSPENDING: a rotation is running or failed; the rotation \
             function's CloudWatch logs say why",
        ));
    }

    Ok(StatusReport {
        arn,
        name: described.name().unwrap_or_default().to_owned(),
        rotation_enabled: described.rotation_enabled().unwrap_or(false),
        rotation_function: described.rotation_lambda_arn().map(str::to_owned),
        schedule: described.rotation_rules().and_then(|rules| {
            rules.schedule_expression().map(str::to_owned).or_else(|| {
                rules
                    .automatically_after_days()
                    .map(|days| format!("every {days} days"))
            })
        }),
        last_rotated: described
            .last_rotated_date()
            .map(|date| date_text(date, now)),
        next_rotation: described
            .next_rotation_date()
            .map(|date| date_text(date, now)),
        versions,
        state: state.to_owned(),
        last_failure,
        warnings,
    })
}

fn stage_rank(labels: &[String]) -> u8 {
    if labels.iter().any(|l| l == "AWSCURRENT") {
        0
    } else if labels.iter().any(|l| l == "AWSPENDING") {
        1
    } else if labels.iter().any(|l| l == "AWSPREVIOUS") {
        2
    } else {
        3
    }
}

async fn version_report(
    client: &Client,
    arn: &str,
    version_id: String,
    stages: Vec<String>,
    now: SystemTime,
) -> VersionReport {
    let value = client
        .get_secret_value()
        .secret_id(arn)
        .version_id(&version_id)
        .send()
        .await;
    let (created, token, note) = match value {
        Ok(output) => {
            let created = output.created_date().map(|date| date_text(date, now));
            match output.secret_string().map(summarize_password) {
                Some(Ok(token)) => (created, Some(token), None),
                Some(Err(note)) => (created, None, Some(note)),
                None => (created, None, Some(String::from("binary secret"))),
            }
        }
        Err(error) => {
            let text = describe_sdk_error(&error);
            let note = if text.starts_with("ResourceNotFoundException") {
                String::from("no value yet")
            } else {
                text
            };
            (None, None, Some(note))
        }
    };
    VersionReport {
        version_id,
        stages,
        created,
        token,
        note,
    }
}

pub fn summarize_password(secret: &str) -> Result<TokenSummary, String> {
    let json: Value =
        serde_json::from_str(secret).map_err(|_| String::from("value is not JSON"))?;
    let password = json
        .get("password")
        .and_then(Value::as_str)
        .ok_or_else(|| String::from("value has no password"))?;
    let parsed = dsql_token::parse(password).map_err(|_| {
        format!(
            "password is not a DSQL auth token ({})",
            dsql_token::Fingerprint::of(password)
        )
    })?;
    Ok(TokenSummary {
        fingerprint: parsed.fingerprint().to_string(),
        action: parsed.action().as_str(),
        hostname: parsed.hostname().to_owned(),
        expires_at: rfc3339(parsed.expires_at()),
        seconds_left: parsed.remaining(SystemTime::now()).as_secs(),
    })
}

fn date_text(date: &aws_sdk_secretsmanager::primitives::DateTime, now: SystemTime) -> String {
    let instant = SystemTime::try_from(*date).unwrap_or(SystemTime::UNIX_EPOCH);
    format!("{} ({})", rfc3339(instant), age(instant, now))
}

/// Reads the emulator's rotation record (not part of the AWS API).
pub async fn emulator_rotation_status(endpoint: &str, arn: &str) -> Option<Value> {
    let url = format!(
        "{}/_emulator/secrets/{}/rotation",
        endpoint.trim_end_matches('/'),
        arn
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

fn print_status(report: &StatusReport) {
    println!("secret:         {}", report.arn);
    let state = match report.state.as_str() {
        "failed" => "LAST ROTATION FAILED",
        other => other,
    };
    println!("state:          {state}");
    let rotation = if report.rotation_enabled {
        "enabled"
    } else {
        "disabled"
    };
    println!(
        "rotation:       {rotation}{}{}",
        report
            .schedule
            .as_deref()
            .map(|s| format!(", {s}"))
            .unwrap_or_default(),
        report
            .rotation_function
            .as_deref()
            .map(|f| format!(", {f}"))
            .unwrap_or_default()
    );
    println!(
        "last rotated:   {}",
        report.last_rotated.as_deref().unwrap_or("never")
    );
    println!(
        "next rotation:  {}",
        report.next_rotation.as_deref().unwrap_or("not scheduled")
    );
    println!("versions:");
    for version in &report.versions {
        let labels = if version.stages.is_empty() {
            String::from("(no label)")
        } else {
            version.stages.join(",")
        };
        let detail = match (&version.token, &version.note) {
            (Some(token), _) => format!(
                "token {} {} expires {} ({} s left)",
                token.fingerprint, token.action, token.expires_at, token.seconds_left
            ),
            (None, Some(note)) => note.clone(),
            (None, None) => String::new(),
        };
        println!("  {labels:<24} {}  {detail}", version.version_id);
    }
    match &report.last_failure {
        Some(failure) => {
            let field = |name: &str| {
                failure
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned()
            };
            println!(
                "last failure:   step {} of version {}: {}: {}",
                field("step"),
                field("versionId"),
                field("errorType"),
                field("errorMessage")
            );
        }
        None => println!("last failure:   none recorded"),
    }
    for warning in &report.warnings {
        println!("warning:        {warning}");
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

/// How a rotation ended.
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
