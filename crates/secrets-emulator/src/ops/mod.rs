//! The Secrets Manager operations: request parsing, the service's checks
//! and error messages, and the changes to the state.
//!
//! Each operation is a synchronous function over the store; the server runs
//! it on a blocking thread because a write waits for the disk.

mod describe;
mod metadata;
mod rotation;
mod secrets;
mod validate;
mod values;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::model::State;
use crate::store::Store;

pub use rotation::{RotationJob, start_scheduled_rotation};
pub use secrets::purge_expired;

/// The server-wide settings and state that every operation reads.
#[derive(Debug)]
pub struct Context<'a> {
    /// The durable state.
    pub store: &'a Store,
    /// The region in ARNs.
    pub region: &'a str,
    /// The account id in ARNs.
    pub account_id: &'a str,
    /// Whether rotation schedules under four hours are accepted.
    pub allow_short_schedules: bool,
    /// Names of the configured rotation functions.
    pub function_names: &'a [String],
}

/// An operation's response body and, for `RotateSecret`, the rotation to run
/// once the response is sent.
#[derive(Debug)]
pub struct Outcome {
    /// The JSON response.
    pub body: Value,
    /// The rotation this request started.
    pub rotation: Option<RotationJob>,
}

impl From<Value> for Outcome {
    fn from(body: Value) -> Self {
        Outcome {
            body,
            rotation: None,
        }
    }
}

/// Operations the real service has that the emulator does not implement;
/// they get `InvalidRequestException` rather than `UnknownOperationException`.
const NOT_IMPLEMENTED: &[&str] = &[
    "BatchGetSecretValue",
    "GetRandomPassword",
    "RemoveRegionsFromReplication",
    "ReplicateSecretToRegions",
    "StopReplicationToReplica",
    "ValidateResourcePolicy",
];

/// Returns whether the emulator implements `operation`.
pub fn is_known(operation: &str) -> bool {
    OPERATIONS.contains(&operation)
}

/// The operations the emulator implements.
pub const OPERATIONS: &[&str] = &[
    "CancelRotateSecret",
    "CreateSecret",
    "DeleteResourcePolicy",
    "DeleteSecret",
    "DescribeSecret",
    "GetResourcePolicy",
    "GetSecretValue",
    "ListSecretVersionIds",
    "ListSecrets",
    "PutResourcePolicy",
    "PutSecretValue",
    "RestoreSecret",
    "RotateSecret",
    "TagResource",
    "UntagResource",
    "UpdateSecret",
    "UpdateSecretVersionStage",
];

/// Runs `operation` with the JSON `body`.
pub fn dispatch(context: &Context<'_>, operation: &str, body: &[u8]) -> Result<Outcome, ApiError> {
    if NOT_IMPLEMENTED.contains(&operation) {
        return Err(ApiError::invalid_request(format!(
            "The dsql-secrets emulator does not implement {operation}."
        )));
    }
    let value = parse_body(body)?;
    match operation {
        "CancelRotateSecret" => rotation::cancel_rotate_secret(context, input(value)?),
        "CreateSecret" => secrets::create_secret(context, input(value)?),
        "DeleteResourcePolicy" => metadata::delete_resource_policy(context, input(value)?),
        "DeleteSecret" => secrets::delete_secret(context, input(value)?),
        "DescribeSecret" => secrets::describe_secret(context, input(value)?),
        "GetResourcePolicy" => metadata::get_resource_policy(context, input(value)?),
        "GetSecretValue" => values::get_secret_value(context, input(value)?),
        "ListSecretVersionIds" => values::list_secret_version_ids(context, input(value)?),
        "ListSecrets" => secrets::list_secrets(context, input(value)?),
        "PutResourcePolicy" => metadata::put_resource_policy(context, input(value)?),
        "PutSecretValue" => values::put_secret_value(context, input(value)?),
        "RestoreSecret" => secrets::restore_secret(context, input(value)?),
        "RotateSecret" => rotation::rotate_secret(context, input(value)?),
        "TagResource" => metadata::tag_resource(context, input(value)?),
        "UntagResource" => metadata::untag_resource(context, input(value)?),
        "UpdateSecret" => values::update_secret(context, input(value)?),
        "UpdateSecretVersionStage" => values::update_secret_version_stage(context, input(value)?),
        _ => Err(ApiError::unknown_operation()),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::serialization("The request body is not valid JSON."))?;
    if !value.is_object() {
        return Err(ApiError::serialization(
            "The request body must be a JSON object.",
        ));
    }
    Ok(value)
}

fn input<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    // serde's message can quote the offending value, which may be a secret,
    // so the response carries a fixed text.
    serde_json::from_value(value)
        .map_err(|_| ApiError::serialization("A member of the request has the wrong JSON type."))
}

/// The current time in epoch seconds, millisecond precision as the service
/// returns it.
pub fn now() -> f64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since_epoch.as_millis() as f64) / 1000.0
}

/// Reads a secret, failing as the service does when it is missing.
fn read_secret<R>(
    store: &Store,
    secret_id: &str,
    read: impl FnOnce(&crate::model::Secret) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    store.read(|state: &State| read(state.secret(secret_id)?))
}
