//! The four Secrets Manager calls a rotation makes, through the AWS SDK
//! client. Errors keep the operation and the service's error code, never the
//! secret value.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::Error;

/// Staging label of the version applications read.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// Staging label of the version being rotated in.
pub const AWSPENDING: &str = "AWSPENDING";

/// What DescribeSecret returns that a rotation step needs.
#[derive(Clone, Debug)]
pub(crate) struct SecretDescription {
    pub arn: String,
    pub rotation_enabled: bool,
    pub versions: HashMap<String, Vec<String>>,
}

impl SecretDescription {
    /// Returns the id of the version labelled `stage`.
    pub fn version_with_stage(&self, stage: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|label| label == stage))
            .map(|(version, _)| version.as_str())
    }

    /// Returns whether `version` carries `stage`.
    pub fn has_stage(&self, version: &str, stage: &str) -> bool {
        self.versions
            .get(version)
            .is_some_and(|stages| stages.iter().any(|label| label == stage))
    }
}

pub(crate) async fn describe(client: &Client, secret_id: &str) -> Result<SecretDescription, Error> {
    let output = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|error| service_error("DescribeSecret", secret_id, error))?;
    Ok(SecretDescription {
        arn: output.arn().unwrap_or(secret_id).to_owned(),
        rotation_enabled: output.rotation_enabled().unwrap_or(false),
        versions: output.version_ids_to_stages().cloned().unwrap_or_default(),
    })
}

/// Reads the value of a version. Returns `Ok(None)` when the version exists
/// without a value, which is how RotateSecret leaves the pending version.
pub(crate) async fn get_value(
    client: &Client,
    arn: &str,
    version_id: Option<&str>,
    stage: &str,
) -> Result<Option<String>, Error> {
    let result = client
        .get_secret_value()
        .secret_id(arn)
        .set_version_id(version_id.map(str::to_owned))
        .version_stage(stage)
        .send()
        .await;
    match result {
        Ok(output) => match output.secret_string() {
            Some(text) => Ok(Some(text.to_owned())),
            None => Err(Error::BinarySecret {
                secret: arn.to_owned(),
                stage: stage.to_owned(),
            }),
        },
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(error) => Err(service_error("GetSecretValue", arn, error)),
    }
}

/// Stores `value` as the pending version `version_id`. Returns `Ok(false)`
/// when that version already holds a different value, which happens when
/// another invocation of createSecret won a race.
pub(crate) async fn put_pending(
    client: &Client,
    arn: &str,
    version_id: &str,
    value: &str,
) -> Result<bool, Error> {
    let result = client
        .put_secret_value()
        .secret_id(arn)
        .client_request_token(version_id)
        .secret_string(value)
        .version_stages(AWSPENDING)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_resource_exists_exception()) =>
        {
            Ok(false)
        }
        Err(error) => Err(service_error("PutSecretValue", arn, error)),
    }
}

/// Moves `stage` to `to_version`, removing it from `from_version`.
pub(crate) async fn move_stage(
    client: &Client,
    arn: &str,
    stage: &str,
    to_version: Option<&str>,
    from_version: Option<&str>,
) -> Result<(), Error> {
    client
        .update_secret_version_stage()
        .secret_id(arn)
        .version_stage(stage)
        .set_move_to_version_id(to_version.map(str::to_owned))
        .set_remove_from_version_id(from_version.map(str::to_owned))
        .send()
        .await
        .map_err(|error| service_error("UpdateSecretVersionStage", arn, error))?;
    Ok(())
}

fn service_error<E, R>(operation: &'static str, secret: &str, error: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = error.code().map(str::to_owned);
    Error::SecretsManager {
        operation,
        secret: secret.to_owned(),
        code,
        message: DisplayErrorContext(&error).to_string(),
    }
}
