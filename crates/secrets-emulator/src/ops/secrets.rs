//! Operations on whole secrets: create, describe, list, delete, restore,
//! tags and resource policies.

use serde::Deserialize;
use serde_json::{Value, json};

use super::describe::{Form, describe};
use super::validate::{self, Checks};
use super::{Context, Outcome, now, read_secret};
use crate::error::ApiError;
use crate::model::{AWSCURRENT, Secret, Tag, Version};

const DEFAULT_RECOVERY_DAYS: i64 = 30;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecretInput {
    name: Option<String>,
    client_request_token: Option<String>,
    description: Option<String>,
    kms_key_id: Option<String>,
    secret_string: Option<String>,
    secret_binary: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    add_replica_regions: Vec<Value>,
}

pub fn create_secret(context: &Context<'_>, input: CreateSecretInput) -> Result<Outcome, ApiError> {
    Checks::default()
        .required("name", &input.name)
        .length("name", input.name.as_deref(), 1, 512)
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
    let name = input.name.unwrap_or_default();
    validate::secret_name(&name)?;
    check_tags(&input.tags)?;
    if !input.add_replica_regions.is_empty() {
        return Err(ApiError::invalid_request(
            "The dsql-secrets emulator does not replicate secrets to other regions.",
        ));
    }
    let value = validate::secret_value(input.secret_string, input.secret_binary)?;

    let body = context.store.write(|state| {
        if let Some(index) = state.find(&name) {
            let existing = &state.secrets[index];
            if existing.is_deleted() {
                return Err(ApiError::invalid_request(
                    "You can't create this secret because a secret with this name is already scheduled for deletion.",
                ));
            }
            // Repeating a create with the same token and value succeeds.
            let repeated = input.client_request_token.as_deref().and_then(|t| existing.version(t));
            return match repeated {
                Some(version) if version.value == value => Ok(created(existing, Some(&version.id))),
                Some(_) => Err(token_in_use(input.client_request_token.as_deref(), existing)),
                None => Err(ApiError::exists(format!(
                    "The operation failed because the secret {name} already exists."
                ))),
            };
        }

        let created_at = now();
        let mut secret = Secret {
            arn: format!(
                "arn:aws:secretsmanager:{}:{}:secret:{name}-{}",
                context.region,
                context.account_id,
                arn_suffix()
            ),
            name: name.clone(),
            description: input.description,
            kms_key_id: input.kms_key_id,
            tags: input.tags,
            created_date: created_at,
            last_changed_date: created_at,
            deleted_date: None,
            resource_policy: None,
            versions: Vec::new(),
            rotation: Default::default(),
        };
        let version_id = value.map(|value| {
            let id = input
                .client_request_token
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            secret.versions.push(Version {
                id: id.clone(),
                stages: vec![AWSCURRENT.to_owned()],
                created_date: created_at,
                value: Some(value),
            });
            id
        });
        let body = created(&secret, version_id.as_deref());
        state.secrets.push(secret);
        Ok(body)
    })?;
    Ok(body.into())
}

fn created(secret: &Secret, version_id: Option<&str>) -> Value {
    let mut body = json!({"ARN": secret.arn, "Name": secret.name});
    if let Some(id) = version_id {
        body["VersionId"] = json!(id);
    }
    body
}

/// `ResourceExistsException` for a `ClientRequestToken` already used for
/// another value (the text other emulators use; the service's is not
/// published).
pub(super) fn token_in_use(token: Option<&str>, secret: &Secret) -> ApiError {
    ApiError::exists(format!(
        "You can't use ClientRequestToken {} because that value is already in use for a version of secret {}.",
        token.unwrap_or_default(),
        secret.arn
    ))
}

/// Six random alphanumeric characters, as the service appends to ARNs.
fn arn_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uuid::Uuid::new_v4().as_bytes()[..6]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

pub(super) fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    let mut checks = Checks::default();
    for tag in tags {
        checks
            .length("tags.member.key", Some(&tag.key), 1, 128)
            .length("tags.member.value", Some(&tag.value), 0, 256);
    }
    checks.finish()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretIdInput {
    pub(super) secret_id: Option<String>,
}

pub(super) fn required_secret_id(secret_id: Option<String>) -> Result<String, ApiError> {
    Checks::default()
        .required("secretId", &secret_id)
        .length("secretId", secret_id.as_deref(), 1, 2048)
        .finish()?;
    Ok(secret_id.unwrap_or_default())
}

pub fn describe_secret(context: &Context<'_>, input: SecretIdInput) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    read_secret(context.store, &id, |secret| {
        Ok(describe(secret, Form::Describe).into())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretsInput {
    max_results: Option<i64>,
    next_token: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    #[serde(default)]
    include_planned_deletion: bool,
    sort_order: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    key: String,
    #[serde(default)]
    values: Vec<String>,
}

pub fn list_secrets(context: &Context<'_>, input: ListSecretsInput) -> Result<Outcome, ApiError> {
    Checks::default()
        .range("maxResults", input.max_results, 1, 100)
        .finish()?;
    for filter in &input.filters {
        if !["name", "description", "tag-key", "tag-value", "all"].contains(&filter.key.as_str()) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{}' at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set: [all, name, tag-key, description, tag-value, primary-region, owning-service]",
                filter.key
            )));
        }
    }

    let mut listed: Vec<Value> = context.store.read(|state| {
        state
            .secrets
            .iter()
            .filter(|s| input.include_planned_deletion || !s.is_deleted())
            .filter(|s| input.filters.iter().all(|f| filter_matches(f, s)))
            .map(|s| describe(s, Form::List))
            .collect()
    });
    if input.sort_order.as_deref() == Some("desc") {
        listed.reverse();
    }
    page(listed, input.max_results, input.next_token, "SecretList")
}

fn filter_matches(filter: &Filter, secret: &Secret) -> bool {
    filter.values.iter().any(|value| {
        let (negated, prefix) = match value.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, value.as_str()),
        };
        let starts = |field: &str| field.starts_with(prefix);
        let description = secret.description.as_deref().unwrap_or("");
        let found = match filter.key.as_str() {
            "name" => starts(&secret.name),
            "description" => starts(description),
            "tag-key" => secret.tags.iter().any(|t| starts(&t.key)),
            "tag-value" => secret.tags.iter().any(|t| starts(&t.value)),
            _ => {
                starts(&secret.name)
                    || starts(description)
                    || secret
                        .tags
                        .iter()
                        .any(|t| starts(&t.key) || starts(&t.value))
            }
        };
        found != negated
    })
}

/// Returns one page of `items` under `key`, with the next page's token.
pub(super) fn page(
    items: Vec<Value>,
    max_results: Option<i64>,
    next_token: Option<String>,
    key: &str,
) -> Result<Outcome, ApiError> {
    let start: usize = match next_token.as_deref() {
        None | Some("") => 0,
        Some(token) => token.parse().map_err(|_| ApiError {
            kind: "InvalidNextTokenException",
            message: String::from("The NextToken value is invalid."),
            status: axum::http::StatusCode::BAD_REQUEST,
        })?,
    };
    let size = max_results.unwrap_or(100).clamp(1, 100) as usize;
    let end = (start + size).min(items.len());
    let mut body = json!({ key: items.get(start..end).unwrap_or_default() });
    if end < items.len() {
        body["NextToken"] = json!(end.to_string());
    }
    Ok(body.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecretInput {
    secret_id: Option<String>,
    recovery_window_in_days: Option<i64>,
    force_delete_without_recovery: Option<bool>,
}

pub fn delete_secret(context: &Context<'_>, input: DeleteSecretInput) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    let force = input.force_delete_without_recovery.unwrap_or(false);
    if force && input.recovery_window_in_days.is_some() {
        return Err(ApiError::invalid_parameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
        ));
    }
    let days = input
        .recovery_window_in_days
        .unwrap_or(DEFAULT_RECOVERY_DAYS);
    if !(7..=30).contains(&days) {
        return Err(ApiError::invalid_parameter(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
        ));
    }

    let body = context.store.write(|state| {
        let Some(index) = state.find(&id) else {
            return Err(ApiError::secret_not_found());
        };
        let deletion_date = now() + if force { 0.0 } else { days as f64 * 86_400.0 };
        let secret = &mut state.secrets[index];
        let body = json!({"ARN": secret.arn, "Name": secret.name, "DeletionDate": deletion_date});
        if force {
            state.secrets.remove(index);
        } else {
            secret.ensure_not_deleted()?;
            secret.deleted_date = Some(deletion_date);
        }
        Ok(body)
    })?;
    Ok(body.into())
}

pub fn restore_secret(context: &Context<'_>, input: SecretIdInput) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    let body = context.store.write(|state| {
        let secret = state.secret_mut(&id)?;
        secret.deleted_date = None;
        Ok(json!({"ARN": secret.arn, "Name": secret.name}))
    })?;
    Ok(body.into())
}

/// Purges secrets whose recovery window has passed; returns their names.
pub fn purge_expired(state: &mut crate::model::State, now: f64) -> Vec<String> {
    let (expired, kept): (Vec<Secret>, Vec<Secret>) = std::mem::take(&mut state.secrets)
        .into_iter()
        .partition(|s| s.deleted_date.is_some_and(|d| d <= now));
    state.secrets = kept;
    expired.into_iter().map(|s| s.name).collect()
}
