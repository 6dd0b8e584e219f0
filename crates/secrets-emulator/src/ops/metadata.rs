//! Tags and resource policies. Policies are stored and returned as given;
//! the emulator does not evaluate them.

use serde::Deserialize;
use serde_json::{Value, json};

use super::secrets::{SecretIdInput, check_tags, required_secret_id};
use super::validate::Checks;
use super::{Context, Outcome, now, read_secret};
use crate::error::ApiError;
use crate::model::{Secret, Tag};

pub fn get_resource_policy(
    context: &Context<'_>,
    input: SecretIdInput,
) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    read_secret(context.store, &id, |secret| {
        let mut body = json!({"ARN": secret.arn, "Name": secret.name});
        if let Some(policy) = &secret.resource_policy {
            body["ResourcePolicy"] = json!(policy);
        }
        Ok(body.into())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutResourcePolicyInput {
    secret_id: Option<String>,
    resource_policy: Option<String>,
}

pub fn put_resource_policy(
    context: &Context<'_>,
    input: PutResourcePolicyInput,
) -> Result<Outcome, ApiError> {
    Checks::default()
        .required("resourcePolicy", &input.resource_policy)
        .length(
            "resourcePolicy",
            input.resource_policy.as_deref(),
            1,
            20_480,
        )
        .finish()?;
    let id = required_secret_id(input.secret_id)?;
    let policy = input.resource_policy.unwrap_or_default();
    if serde_json::from_str::<serde_json::Map<String, Value>>(&policy).is_err() {
        return Err(ApiError {
            kind: "MalformedPolicyDocumentException",
            message: String::from("This resource policy contains a syntax error."),
            status: axum::http::StatusCode::BAD_REQUEST,
        });
    }
    update(context, &id, |secret| secret.resource_policy = Some(policy))
}

pub fn delete_resource_policy(
    context: &Context<'_>,
    input: SecretIdInput,
) -> Result<Outcome, ApiError> {
    let id = required_secret_id(input.secret_id)?;
    update(context, &id, |secret| secret.resource_policy = None)
}

/// Applies `change` to a secret and returns its ARN and name.
fn update(
    context: &Context<'_>,
    id: &str,
    change: impl FnOnce(&mut Secret),
) -> Result<Outcome, ApiError> {
    let body = context.store.write(|state| {
        let secret = state.secret_mut(id)?;
        change(secret);
        secret.last_changed_date = now();
        Ok(json!({"ARN": secret.arn, "Name": secret.name}))
    })?;
    Ok(body.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    secret_id: Option<String>,
    tags: Option<Vec<Tag>>,
}

pub fn tag_resource(context: &Context<'_>, input: TagResourceInput) -> Result<Outcome, ApiError> {
    Checks::default().required("tags", &input.tags).finish()?;
    let id = required_secret_id(input.secret_id)?;
    let tags = input.tags.unwrap_or_default();
    check_tags(&tags)?;
    update(context, &id, |secret| {
        for tag in tags {
            match secret.tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value,
                None => secret.tags.push(tag),
            }
        }
    })?;
    Ok(json!({}).into())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    secret_id: Option<String>,
    tag_keys: Option<Vec<String>>,
}

pub fn untag_resource(
    context: &Context<'_>,
    input: UntagResourceInput,
) -> Result<Outcome, ApiError> {
    Checks::default()
        .required("tagKeys", &input.tag_keys)
        .finish()?;
    let id = required_secret_id(input.secret_id)?;
    let keys = input.tag_keys.unwrap_or_default();
    update(context, &id, |secret| {
        secret.tags.retain(|t| !keys.contains(&t.key))
    })?;
    Ok(json!({}).into())
}
