//! The Secrets Manager rotation protocol for a secret whose password is an
//! Aurora DSQL auth token: createSecret, setSecret, testSecret and
//! finishSecret, each safe to repeat and to resume after a crash.
//!
//! Secrets Manager calls go through the AWS SDK client the caller builds, so
//! any endpoint works (AWS, the local emulator, moto). This crate reads no
//! environment variable and installs no logger: the `rotation-lambda` binary
//! does both and passes a checked [`RotationConfig`]. Each step emits one
//! `tracing` event with the secret ARN, version, step, outcome and the token's
//! fingerprint and expiry; no event, error or `Debug` output holds a token.
//!
//! ```no_run
//! use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
//! use dsql_rotation::{HostPolicy, RotationConfig, RotationEvent, Rotator, TokenSchedule, TrustRoots};
//!
//! # async fn example(client: aws_sdk_secretsmanager::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let config = RotationConfig::new(
//!     TokenSchedule::default(),
//!     HostPolicy::default(),
//!     &TrustRoots::amazon(),
//!     Some("us-east-1".to_owned()),
//! )?;
//! let credentials = SharedCredentialsProvider::new(Credentials::for_tests());
//! let rotator = Rotator::new(client, credentials, config);
//! let event = RotationEvent::new("app/dsql", "7f1a...", "createSecret")?;
//! rotator.run(&event).await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod connect;
mod event;
mod rotation;
mod secret;
mod secrets_manager;

pub use config::{
    ConfigError, HostPolicy, RotationConfig, TokenSchedule, TrustRoots, dsql_endpoint_region,
};
pub use event::{RotationEvent, Step};
pub use rotation::{Outcome, Rotator, StepReport, TokenSummary};
pub use secret::{DsqlSecret, SecretError};
pub use secrets_manager::{AWSCURRENT, AWSPENDING};

/// Why a rotation step failed. Messages name the secret, version and cause
/// and say what to do; none contains a token or password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The event's `Step` is not one of the four steps.
    #[error(
        "unknown rotation step {0:?}; expected createSecret, setSecret, testSecret or finishSecret"
    )]
    UnknownStep(String),
    /// The event lacks a field.
    #[error("rotation event has an empty {0}")]
    EmptyEventField(&'static str),
    /// Rotation is not enabled on the secret.
    #[error("secret {secret} does not have rotation enabled; enable rotation before rotating it")]
    RotationDisabled {
        /// The secret's ARN.
        secret: String,
    },
    /// The event's version does not exist.
    #[error(
        "secret {secret} has no version {version}; only Secrets Manager's RotateSecret should invoke this function"
    )]
    VersionNotFound {
        /// The secret's ARN.
        secret: String,
        /// The event's ClientRequestToken.
        version: String,
    },
    /// The event's version is neither current nor pending.
    #[error(
        "version {version} of secret {secret} is not AWSPENDING (staging labels: {stages:?}); it was discarded or superseded, so this rotation cannot continue; start a new rotation"
    )]
    VersionNotPending {
        /// The secret's ARN.
        secret: String,
        /// The event's ClientRequestToken.
        version: String,
        /// The version's staging labels.
        stages: Vec<String>,
    },
    /// A version that must have a value has none.
    #[error("the {stage} version of secret {secret} has no value")]
    NoValue {
        /// The secret's ARN.
        secret: String,
        /// The staging label read.
        stage: String,
    },
    /// A version holds binary data instead of a string.
    #[error(
        "the {stage} version of secret {secret} holds binary data; store the connection JSON as a string"
    )]
    BinarySecret {
        /// The secret's ARN.
        secret: String,
        /// The staging label read.
        stage: String,
    },
    /// A version's value is not a valid DSQL secret.
    #[error("the {stage} version of secret {secret} is invalid: {reason}")]
    InvalidSecret {
        /// The secret's ARN.
        secret: String,
        /// The staging label read.
        stage: String,
        /// What is wrong with the value.
        #[source]
        reason: SecretError,
    },
    /// The pending version's password is not a usable token.
    #[error("the pending version {version} of secret {secret} holds an unusable token ({reason})")]
    InvalidToken {
        /// The secret's ARN.
        secret: String,
        /// The pending version.
        version: String,
        /// What is wrong with the token.
        reason: String,
    },
    /// The pending version cannot become current: createSecret found a
    /// value from an earlier attempt that would not outlast the next
    /// rotation, or testSecret could not log in with it. Its AWSPENDING
    /// label was removed, so the next rotation starts with a new version.
    #[error(
        "the pending version {version} of secret {secret} is unusable: {reason}; its AWSPENDING label was removed so that the next rotation starts with a new token; fix the cause and rotate the secret again"
    )]
    PendingDiscarded {
        /// The secret's ARN.
        secret: String,
        /// The discarded version.
        version: String,
        /// Why it was discarded.
        reason: String,
    },
    /// The pending version cannot become current, and removing its
    /// AWSPENDING label failed too.
    #[error(
        "the pending version {version} of secret {secret} is unusable: {reason}; removing its AWSPENDING label failed as well, so remove it by hand (UpdateSecretVersionStage) and rotate again"
    )]
    PendingUnusable {
        /// The secret's ARN.
        secret: String,
        /// The unusable version.
        version: String,
        /// Why it is unusable.
        reason: String,
    },
    /// The AWS credentials for signing the token could not be loaded.
    #[error("loading AWS credentials to sign the auth token failed: {0}")]
    Credentials(String),
    /// The token could not be generated.
    #[error("generating the auth token failed: {0}")]
    Token(#[from] dsql_token::Error),
    /// A Secrets Manager call failed.
    #[error("Secrets Manager {operation} on {secret} failed: {message}")]
    SecretsManager {
        /// The API operation.
        operation: &'static str,
        /// The secret id or ARN.
        secret: String,
        /// The service's error code, such as `ResourceNotFoundException`.
        code: Option<String>,
        /// The SDK's description of the failure.
        message: String,
    },
    /// testSecret could not log in and run `SELECT 1`.
    #[error("testSecret could not log in to {host}:{port} as {user} over verified TLS: {message}")]
    TestConnection {
        /// The database host.
        host: String,
        /// The database port.
        port: u16,
        /// The database role.
        user: String,
        /// What failed.
        message: String,
    },
}
