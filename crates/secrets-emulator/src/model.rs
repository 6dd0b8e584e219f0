//! The emulator's state: secrets, their versions and staging labels, and
//! their rotation settings. Plain data, serialised as the state file.
//!
//! Rules that need the whole secret (moving labels, finding versions) live
//! here; the request-level checks live in `ops`.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The label of the version that clients read by default.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The label of the version a rotation is creating.
pub const AWSPENDING: &str = "AWSPENDING";
/// The label of the version that was `AWSCURRENT` before the last move.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// How many versions without a staging label are kept per secret; older ones
/// are removed, as the service removes deprecated versions.
pub const MAX_DEPRECATED_VERSIONS: usize = 100;

/// Everything the emulator stores.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Secrets in creation order.
    pub secrets: Vec<Secret>,
}

/// A key/value tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    #[serde(default)]
    pub value: String,
}

/// One secret and all its versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    /// `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`.
    pub arn: String,
    /// The secret's name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The KMS key id given at creation, stored and echoed only.
    pub kms_key_id: Option<String>,
    /// Tags in insertion order.
    pub tags: Vec<Tag>,
    /// Epoch seconds.
    pub created_date: f64,
    /// Epoch seconds of the last change to the secret or its versions.
    pub last_changed_date: f64,
    /// Epoch seconds when the deletion takes effect, while scheduled.
    pub deleted_date: Option<f64>,
    /// The resource policy document, as given.
    pub resource_policy: Option<String>,
    /// Versions in creation order.
    pub versions: Vec<Version>,
    /// Rotation settings and results.
    pub rotation: Rotation,
}

/// One version of a secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    /// The version id (a `ClientRequestToken`).
    pub id: String,
    /// Its staging labels.
    pub stages: Vec<String>,
    /// Epoch seconds.
    pub created_date: f64,
    /// The value; `None` for a pending version created by `RotateSecret`.
    pub value: Option<SecretValue>,
}

/// A secret value: a string, or binary data kept base64-encoded as it
/// travels in the JSON protocol.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretValue {
    /// `SecretString`.
    String(String),
    /// `SecretBinary`, base64.
    Binary(String),
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretValue::String(_) => f.write_str("SecretString(<redacted>)"),
            SecretValue::Binary(_) => f.write_str("SecretBinary(<redacted>)"),
        }
    }
}

/// `RotationRules` as the API carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationRules {
    /// Rotate every N days (1 to 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatically_after_days: Option<i64>,
    /// The rotation window, for example `3h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// `rate(...)` or `cron(...)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
}

/// Rotation settings and the outcome of the last rotation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rotation {
    /// Whether `RotateSecret` was ever called: the rotation fields appear in
    /// `DescribeSecret` only from then on.
    pub requested: bool,
    /// Whether scheduled rotation is on.
    pub enabled: bool,
    /// The rotation function's ARN.
    pub lambda_arn: Option<String>,
    /// The schedule.
    pub rules: Option<RotationRules>,
    /// Epoch seconds of the last successful rotation.
    pub last_rotated_date: Option<f64>,
    /// Epoch seconds of the next scheduled rotation.
    pub next_rotation_date: Option<f64>,
    /// The last failed rotation, cleared by a successful one.
    pub last_failure: Option<RotationFailure>,
}

/// Why a rotation failed. The real service reports this only in the
/// function's CloudWatch logs; the emulator keeps it for `secret status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationFailure {
    /// The rotation step that failed, for example `testSecret`.
    pub step: String,
    /// The pending version's id.
    pub version_id: String,
    /// The function's `errorType`, or the emulator's reason.
    pub error_type: String,
    /// The function's `errorMessage`.
    pub error_message: String,
    /// Epoch seconds.
    pub date: f64,
}

impl State {
    /// Finds a secret by name, full ARN or partial ARN (the ARN without its
    /// six-character suffix).
    pub fn find(&self, secret_id: &str) -> Option<usize> {
        self.secrets.iter().position(|s| s.matches(secret_id))
    }

    /// Like [`State::find`], with the service's error when nothing matches.
    pub fn secret_mut(&mut self, secret_id: &str) -> Result<&mut Secret, ApiError> {
        let index = self
            .find(secret_id)
            .ok_or_else(ApiError::secret_not_found)?;
        Ok(&mut self.secrets[index])
    }

    /// Like [`State::secret_mut`], read only.
    pub fn secret(&self, secret_id: &str) -> Result<&Secret, ApiError> {
        let index = self
            .find(secret_id)
            .ok_or_else(ApiError::secret_not_found)?;
        Ok(&self.secrets[index])
    }
}

impl Secret {
    fn matches(&self, secret_id: &str) -> bool {
        if secret_id == self.name || secret_id == self.arn {
            return true;
        }
        // A partial ARN is the full ARN less "-" and six characters.
        let partial = &self.arn[..self.arn.len().saturating_sub(7)];
        secret_id.starts_with("arn:") && secret_id == partial
    }

    /// Whether the secret is scheduled for deletion.
    pub fn is_deleted(&self) -> bool {
        self.deleted_date.is_some()
    }

    /// Fails with the service's error when the secret is scheduled for deletion.
    pub fn ensure_not_deleted(&self) -> Result<(), ApiError> {
        if self.is_deleted() {
            return Err(ApiError::marked_for_deletion());
        }
        Ok(())
    }

    /// The version with this id.
    pub fn version(&self, version_id: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == version_id)
    }

    /// The version with this id, mutable.
    pub fn version_mut(&mut self, version_id: &str) -> Option<&mut Version> {
        self.versions.iter_mut().find(|v| v.id == version_id)
    }

    /// The version carrying this staging label.
    pub fn version_with_stage(&self, stage: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.has_stage(stage))
    }

    /// Attaches `stage` to `version_id`, removing it from every other version.
    /// Moving `AWSCURRENT` labels the version it leaves `AWSPREVIOUS`, as the
    /// service does.
    pub fn attach_stage(&mut self, stage: &str, version_id: &str) {
        let previous_holder = self
            .version_with_stage(stage)
            .map(|v| v.id.clone())
            .filter(|id| id != version_id);
        for version in &mut self.versions {
            if version.id != version_id {
                version.stages.retain(|s| s != stage);
            } else if !version.has_stage(stage) {
                version.stages.push(stage.to_owned());
            }
        }

        if stage == AWSCURRENT {
            if let Some(previous_id) = previous_holder {
                self.attach_stage(AWSPREVIOUS, &previous_id);
            }
            if let Some(version) = self.version_mut(version_id) {
                version.stages.retain(|s| s != AWSPREVIOUS);
            }
        }
    }

    /// Removes versions without staging labels beyond
    /// [`MAX_DEPRECATED_VERSIONS`], oldest first.
    pub fn prune_deprecated_versions(&mut self) {
        let deprecated = self.versions.iter().filter(|v| v.stages.is_empty()).count();
        let mut excess = deprecated.saturating_sub(MAX_DEPRECATED_VERSIONS);
        self.versions.retain(|v| {
            if excess > 0 && v.stages.is_empty() {
                excess -= 1;
                return false;
            }
            true
        });
    }

    /// The id of the version a rotation left behind: `AWSPENDING` on a version
    /// that is not `AWSCURRENT`.
    pub fn unfinished_rotation(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.has_stage(AWSPENDING) && !v.has_stage(AWSCURRENT))
            .map(|v| v.id.as_str())
    }
}

impl Version {
    /// Whether this version carries the staging label.
    pub fn has_stage(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }
}
