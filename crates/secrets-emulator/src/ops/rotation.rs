//! `RotateSecret` and `CancelRotateSecret`: the checks and state changes
//! that start or stop a rotation. Running the rotation function is the
//! `rotation` module's job.

use serde::Deserialize;
use serde_json::json;

use super::secrets::{required_secret_id, token_in_use};
use super::validate::Checks;
use super::{Context, Outcome, now};
use crate::error::ApiError;
use crate::model::{AWSPENDING, RotationRules, Secret, Version};
use crate::schedule::Schedule;

/// A rotation to run: the function's four steps for one pending version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationJob {
    /// The secret's ARN, passed to the function as `SecretId`.
    pub secret_arn: String,
    /// The pending version, passed as `ClientRequestToken`.
    pub version_id: String,
    /// The configured function that runs the steps.
    pub function_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotateSecretInput {
    secret_id: Option<String>,
    client_request_token: Option<String>,
    #[serde(rename = "RotationLambdaARN")]
    rotation_lambda_arn: Option<String>,
    rotation_rules: Option<RotationRules>,
    rotate_immediately: Option<bool>,
}

pub fn rotate_secret(context: &Context<'_>, input: RotateSecretInput) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    Checks::default()
        .length(
            "clientRequestToken",
            input.client_request_token.as_deref(),
            32,
            64,
        )
        .length(
            "rotationLambdaARN",
            input.rotation_lambda_arn.as_deref(),
            0,
            2048,
        )
        .finish()?;
    let schedule = input
        .rotation_rules
        .as_ref()
        .map(|rules| Schedule::from_rules(rules, context.allow_short_schedules))
        .transpose()?;
    let rotate_immediately = input.rotate_immediately.unwrap_or(true);

    let (body, job) = context.store.write(|state| {
        let secret = state.secret_mut(&id)?;
        secret.ensure_not_deleted()?;
        let lambda_arn = input
            .rotation_lambda_arn
            .clone()
            .or_else(|| secret.rotation.lambda_arn.clone())
            .ok_or_else(no_function_configured)?;
        if rotate_immediately && secret.unfinished_rotation().is_some() {
            return Err(ApiError::invalid_request(
                "A previous rotation isn't complete. That rotation will be reattempted.",
            ));
        }
        let function_name = function_name(&lambda_arn, context.function_names)?;

        let rotation = &mut secret.rotation;
        rotation.requested = true;
        rotation.lambda_arn = Some(lambda_arn);
        if let Some(rules) = input.rotation_rules {
            rotation.rules = Some(rules);
        }
        // A rotation function is configured from now on, so rotation is on;
        // without rules it runs only when asked.
        rotation.enabled = true;
        if let Some(schedule) = &schedule {
            rotation.next_rotation_date = Some(schedule.next_after(now()));
        }
        secret.last_changed_date = now();

        let mut body = json!({"ARN": secret.arn, "Name": secret.name});
        if !rotate_immediately {
            return Ok((body, None));
        }
        let version_id = input
            .client_request_token
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if secret.version(&version_id).is_some() {
            return Err(token_in_use(Some(&version_id), secret));
        }
        add_pending_version(secret, &version_id);
        body["VersionId"] = json!(version_id);
        let job = RotationJob {
            secret_arn: secret.arn.clone(),
            version_id,
            function_name,
        };
        Ok((body, Some(job)))
    })?;
    Ok(Outcome {
        body,
        rotation: job,
    })
}

fn no_function_configured() -> ApiError {
    ApiError::invalid_request(
        "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.",
    )
}

/// The configured function an ARN `arn:aws:lambda:REGION:ACCOUNT:function:NAME`
/// names.
fn function_name(lambda_arn: &str, configured: &[String]) -> Result<String, ApiError> {
    let name = lambda_arn
        .split(':')
        .collect::<Vec<_>>()
        .get(6)
        .filter(|_| lambda_arn.starts_with("arn:aws:lambda:"))
        .map(|name| name.to_string());
    match name {
        Some(name) if configured.contains(&name) => Ok(name),
        _ => Err(ApiError::not_found(format!(
            "Resource not found for ARN '{lambda_arn}'."
        ))),
    }
}

/// Adds a version with no value labelled `AWSPENDING`, as the service does
/// before it calls the function's `createSecret` step.
fn add_pending_version(secret: &mut Secret, version_id: &str) {
    secret.versions.push(Version {
        id: version_id.to_owned(),
        stages: Vec::new(),
        created_date: now(),
        value: None,
    });
    secret.attach_stage(AWSPENDING, version_id);
}

/// Starts the scheduled rotation of the secret at `index`: reattempts an
/// unfinished rotation with its pending version, or adds a new one.
pub fn start_scheduled_rotation(
    secret: &mut Secret,
    function_names: &[String],
) -> Result<RotationJob, ApiError> {
    let lambda_arn = secret
        .rotation
        .lambda_arn
        .clone()
        .ok_or_else(no_function_configured)?;
    let function_name = function_name(&lambda_arn, function_names)?;
    let version_id = match secret.unfinished_rotation() {
        Some(pending) => pending.to_owned(),
        None => {
            let version_id = uuid::Uuid::new_v4().to_string();
            add_pending_version(secret, &version_id);
            version_id
        }
    };
    Ok(RotationJob {
        secret_arn: secret.arn.clone(),
        version_id,
        function_name,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelRotateSecretInput {
    secret_id: Option<String>,
}

pub fn cancel_rotate_secret(
    context: &Context<'_>,
    input: CancelRotateSecretInput,
) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    let body = context.store.write(|state| {
        let secret = state.secret_mut(&id)?;
        secret.ensure_not_deleted()?;
        if secret.rotation.lambda_arn.is_none() {
            return Err(no_function_configured());
        }
        secret.rotation.enabled = false;
        secret.rotation.next_rotation_date = None;
        secret.last_changed_date = now();

        let mut body = json!({"ARN": secret.arn, "Name": secret.name});
        if let Some(pending) = secret.unfinished_rotation() {
            body["VersionId"] = json!(pending);
        }
        Ok(body)
    })?;
    Ok(body.into())
}
