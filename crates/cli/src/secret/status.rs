//! The report behind `secret status`: versions and staging labels, each
//! version's token fingerprint and expiry, rotation dates, and the last
//! failure, which only the local emulator records.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use aws_sdk_secretsmanager::Client;
use serde::Serialize;
use serde_json::Value;

use crate::aws::describe_sdk_error;
use crate::time_format::{age, rfc3339};

#[derive(Serialize)]
pub struct VersionReport {
    pub version_id: String,
    pub stages: Vec<String>,
    pub created: Option<String>,
    pub token: Option<TokenSummary>,
    pub note: Option<String>,
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
pub struct StatusReport {
    pub arn: String,
    pub name: String,
    pub rotation_enabled: bool,
    pub rotation_function: Option<String>,
    pub schedule: Option<String>,
    pub last_rotated: Option<String>,
    pub next_rotation: Option<String>,
    pub versions: Vec<VersionReport>,
    /// `healthy`, `rotating`, `failed` or `not rotated`.
    pub state: String,
    pub last_failure: Option<Value>,
    pub warnings: Vec<String>,
}

pub async fn build_status(
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
        // A failed rotation is retried at the next scheduled time, so the
        // token should outlive the next rotation by a safety margin: an
        // hour, or half the interval for schedules shorter than two hours.
        let interval = described.last_rotated_date().map(|last| {
            Duration::from_secs_f64((next.as_secs_f64() - last.as_secs_f64()).max(0.0))
        });
        let margin = interval.map_or(Duration::from_secs(3600), |interval| {
            (interval / 2).min(Duration::from_secs(3600))
        });
        if expires_at < next_rotation + margin {
            warnings.push(format!(
                "the current token expires less than {} s after the next scheduled rotation; \
                 raise TOKEN_LIFETIME_SECS so clients keep working if a rotation fails",
                margin.as_secs()
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

pub fn print_status(report: &StatusReport) {
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
