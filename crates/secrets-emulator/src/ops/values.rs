//! Operations on versions and their values: read, put, update, move
//! staging labels, list versions.

use serde::Deserialize;
use serde_json::{Value, json};

use super::secrets::{page, required_secret_id, token_in_use};
use super::validate::{self, Checks};
use super::{Context, Outcome, now, read_secret};
use crate::error::ApiError;
use crate::model::{AWSCURRENT, Secret, SecretValue, Version};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSecretValueInput {
    secret_id: Option<String>,
    version_id: Option<String>,
    version_stage: Option<String>,
}

pub fn get_secret_value(
    context: &Context<'_>,
    input: GetSecretValueInput,
) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    Checks::default()
        .length("versionId", input.version_id.as_deref(), 32, 64)
        .length("versionStage", input.version_stage.as_deref(), 1, 256)
        .finish()?;

    read_secret(context.store, &id, |secret| {
        secret.ensure_not_deleted()?;
        let version = find_version(
            secret,
            input.version_id.as_deref(),
            input.version_stage.as_deref(),
        )?;
        let mut body = json!({
            "ARN": secret.arn,
            "Name": secret.name,
            "VersionId": version.id,
            "VersionStages": version.stages,
            "CreatedDate": version.created_date,
        });
        match &version.value {
            Some(SecretValue::String(s)) => body["SecretString"] = json!(s),
            Some(SecretValue::Binary(b)) => body["SecretBinary"] = json!(b),
            None => unreachable!("find_version returns only versions with a value"),
        }
        Ok(body.into())
    })
}

/// The version a read names, by id, label or both (default `AWSCURRENT`);
/// a version without a value is reported as missing, as the service does.
fn find_version<'a>(
    secret: &'a Secret,
    version_id: Option<&str>,
    version_stage: Option<&str>,
) -> Result<&'a Version, ApiError> {
    let value_missing = |what: &str, name: &str| {
        ApiError::not_found(format!(
            "Secrets Manager can't find the specified secret value for {what}: {name}"
        ))
    };
    if let Some(id) = version_id {
        let version = secret
            .version(id)
            .filter(|v| v.value.is_some())
            .ok_or_else(|| value_missing("VersionId", id))?;
        if version_stage.is_some_and(|stage| !version.has_stage(stage)) {
            return Err(ApiError::invalid_request(
                "You provided a VersionStage that is not associated to the provided VersionId.",
            ));
        }
        return Ok(version);
    }
    let stage = version_stage.unwrap_or(AWSCURRENT);
    secret
        .version_with_stage(stage)
        .filter(|v| v.value.is_some())
        .ok_or_else(|| value_missing("staging label", stage))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutSecretValueInput {
    secret_id: Option<String>,
    client_request_token: Option<String>,
    secret_string: Option<String>,
    secret_binary: Option<String>,
    version_stages: Option<Vec<String>>,
}

pub fn put_secret_value(
    context: &Context<'_>,
    input: PutSecretValueInput,
) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    let mut checks = Checks::default();
    checks
        .length(
            "clientRequestToken",
            input.client_request_token.as_deref(),
            32,
            64,
        )
        .secret_value(
            input.secret_string.as_deref(),
            input.secret_binary.as_deref(),
        );
    for stage in input.version_stages.iter().flatten() {
        checks.length("versionStages.member", Some(stage), 1, 256);
    }
    checks.finish()?;
    let Some(value) = validate::secret_value(input.secret_string, input.secret_binary)? else {
        return Err(ApiError::invalid_request(
            "You must provide either SecretString or SecretBinary.",
        ));
    };
    let stages = input
        .version_stages
        .unwrap_or_else(|| vec![AWSCURRENT.to_owned()]);
    if stages.len() > 20 {
        return Err(ApiError::invalid_parameter(
            "A version can have at most 20 staging labels.",
        ));
    }
    let token = input
        .client_request_token
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let body = context.store.write(|state| {
        let secret = state.secret_mut(&id)?;
        secret.ensure_not_deleted()?;
        put_version(secret, &token, value, &stages)?;
        let version = secret
            .version(&token)
            .map(|v| v.stages.clone())
            .unwrap_or_default();
        Ok(json!({
            "ARN": secret.arn,
            "Name": secret.name,
            "VersionId": token,
            "VersionStages": version,
        }))
    })?;
    Ok(body.into())
}

/// Stores `value` as version `token` with `stages`: a repeat with the same
/// value does nothing, another value fails, a pending version without a
/// value gets it. The first version of a secret is always `AWSCURRENT`.
fn put_version(
    secret: &mut Secret,
    token: &str,
    value: SecretValue,
    stages: &[String],
) -> Result<(), ApiError> {
    match secret.version(token) {
        Some(existing) if existing.value.as_ref() == Some(&value) => return Ok(()),
        Some(existing) if existing.value.is_some() => {
            return Err(token_in_use(Some(token), secret));
        }
        Some(_) => {}
        None => secret.versions.push(Version {
            id: token.to_owned(),
            stages: Vec::new(),
            created_date: now(),
            value: None,
        }),
    }

    let first_value = secret.versions.iter().all(|v| v.value.is_none());
    if let Some(version) = secret.version_mut(token) {
        version.value = Some(value);
    }
    for stage in stages {
        secret.attach_stage(stage, token);
    }
    if first_value && secret.version_with_stage(AWSCURRENT).is_none() {
        secret.attach_stage(AWSCURRENT, token);
    }
    secret.last_changed_date = now();
    secret.prune_deprecated_versions();
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSecretInput {
    secret_id: Option<String>,
    client_request_token: Option<String>,
    description: Option<String>,
    kms_key_id: Option<String>,
    secret_string: Option<String>,
    secret_binary: Option<String>,
}

pub fn update_secret(context: &Context<'_>, input: UpdateSecretInput) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    Checks::default()
        .length(
            "clientRequestToken",
            input.client_request_token.as_deref(),
            32,
            64,
        )
        .length("description", input.description.as_deref(), 0, 2048)
        .secret_value(
            input.secret_string.as_deref(),
            input.secret_binary.as_deref(),
        )
        .finish()?;
    let value = validate::secret_value(input.secret_string, input.secret_binary)?;
    let token = input
        .client_request_token
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let body = context.store.write(|state| {
        let secret = state.secret_mut(&id)?;
        secret.ensure_not_deleted()?;
        if let Some(description) = input.description {
            secret.description = Some(description);
        }
        if let Some(kms_key_id) = input.kms_key_id {
            secret.kms_key_id = Some(kms_key_id);
        }
        secret.last_changed_date = now();
        let mut body = json!({"ARN": secret.arn, "Name": secret.name});
        if let Some(value) = value {
            if secret.unfinished_rotation().is_some() {
                return Err(ApiError::invalid_request(
                    "A previous rotation isn't complete. That rotation will be reattempted.",
                ));
            }
            put_version(secret, &token, value, &[AWSCURRENT.to_owned()])?;
            body["VersionId"] = json!(token);
        }
        Ok(body)
    })?;
    Ok(body.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSecretVersionStageInput {
    secret_id: Option<String>,
    version_stage: Option<String>,
    remove_from_version_id: Option<String>,
    move_to_version_id: Option<String>,
}

pub fn update_secret_version_stage(
    context: &Context<'_>,
    input: UpdateSecretVersionStageInput,
) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    Checks::default()
        .required("versionStage", &input.version_stage)
        .length("versionStage", input.version_stage.as_deref(), 1, 256)
        .length(
            "removeFromVersionId",
            input.remove_from_version_id.as_deref(),
            32,
            64,
        )
        .length(
            "moveToVersionId",
            input.move_to_version_id.as_deref(),
            32,
            64,
        )
        .finish()?;
    let stage = input.version_stage.unwrap_or_default();

    let body = context.store.write(|state| {
        let secret = state.secret_mut(&id)?;
        secret.ensure_not_deleted()?;
        move_stage(
            secret,
            &stage,
            input.remove_from_version_id.as_deref(),
            input.move_to_version_id.as_deref(),
        )?;
        secret.last_changed_date = now();
        Ok(json!({"ARN": secret.arn, "Name": secret.name}))
    })?;
    Ok(body.into())
}

fn move_stage(
    secret: &mut Secret,
    stage: &str,
    remove_from: Option<&str>,
    move_to: Option<&str>,
) -> Result<(), ApiError> {
    for version_id in [remove_from, move_to].into_iter().flatten() {
        if secret.version(version_id).is_none() {
            return Err(ApiError::invalid_parameter(format!(
                "Not a valid version: {version_id}"
            )));
        }
    }
    let holder = secret.version_with_stage(stage).map(|v| v.id.clone());

    match (holder.as_deref(), remove_from) {
        (Some(holder), Some(remove_from)) if holder != remove_from => {
            return Err(wrong_remove_from(stage));
        }
        (None, Some(_)) => return Err(wrong_remove_from(stage)),
        (Some(holder), None) if Some(holder) != move_to => {
            return Err(ApiError::invalid_parameter(format!(
                "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version {holder}, so you must explicitly reference that version in RemoveFromVersionId."
            )));
        }
        _ => {}
    }

    match move_to {
        Some(target) => {
            if secret.version(target).is_some_and(|v| v.value.is_none()) && stage == AWSCURRENT {
                return Err(ApiError::invalid_request(format!(
                    "Version {target} has no value; put a value before labelling it {AWSCURRENT}."
                )));
            }
            secret.attach_stage(stage, target);
        }
        None if stage == AWSCURRENT => {
            return Err(ApiError::invalid_parameter(
                "You can't remove the staging label AWSCURRENT without specifying MoveToVersionId.",
            ));
        }
        None => {
            for version in &mut secret.versions {
                version.stages.retain(|s| s != stage);
            }
        }
    }
    // A pending version left without labels by a move is no longer pending.
    secret
        .versions
        .retain(|v| v.value.is_some() || !v.stages.is_empty());
    secret.prune_deprecated_versions();
    Ok(())
}

fn wrong_remove_from(stage: &str) -> ApiError {
    ApiError::invalid_parameter(format!(
        "When you move staging label {stage}, if you specify RemoveFromVersionId, it must be set to the version that currently has the staging label {stage}."
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretVersionIdsInput {
    secret_id: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    #[serde(default)]
    include_deprecated: bool,
}

pub fn list_secret_version_ids(
    context: &Context<'_>,
    input: ListSecretVersionIdsInput,
) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    Checks::default()
        .range("maxResults", input.max_results, 1, 100)
        .finish()?;
    let (arn, name, versions) = read_secret(context.store, &id, |secret| {
        let versions: Vec<Value> = secret
            .versions
            .iter()
            .filter(|v| input.include_deprecated || !v.stages.is_empty())
            .map(|v| json!({"VersionId": v.id, "VersionStages": v.stages, "CreatedDate": v.created_date}))
            .collect();
        Ok((secret.arn.clone(), secret.name.clone(), versions))
    })?;
    let mut outcome = page(versions, input.max_results, input.next_token, "Versions")?;
    outcome.body["ARN"] = json!(arn);
    outcome.body["Name"] = json!(name);
    Ok(outcome)
}
