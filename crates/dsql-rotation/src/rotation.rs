//! The four rotation steps.
//!
//! Every step first describes the secret: rotation must be enabled and the
//! event's version must exist. A version that is already AWSCURRENT means the
//! rotation finished, so the step succeeds without doing anything; any other
//! version must be AWSPENDING. Each step then reads before it writes, so a
//! repeated or resumed step finds its own earlier work and changes nothing.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use dsql_token::{Action, AuthToken, Fingerprint, TokenRequest};

use crate::config::RotationConfig;
use crate::event::{RotationEvent, Step};
use crate::secret::DsqlSecret;
use crate::secrets_manager::{
    AWSCURRENT, AWSPENDING, SecretDescription, describe, get_value, move_stage, put_pending,
};
use crate::{Error, connect};

/// What a step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The version is already AWSCURRENT; nothing was done.
    AlreadyCurrent,
    /// createSecret stored a new token as the pending version.
    Created,
    /// createSecret found the pending version already holding a usable token.
    PendingKept,
    /// setSecret had nothing to set.
    Set,
    /// testSecret logged in with the pending version.
    Tested,
    /// finishSecret made the pending version current.
    Finished,
}

impl Outcome {
    /// Returns the outcome's name as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyCurrent => "already_current",
            Self::Created => "created",
            Self::PendingKept => "pending_kept",
            Self::Set => "set",
            Self::Tested => "tested",
            Self::Finished => "finished",
        }
    }
}

/// The non-secret facts of a token: fingerprint and expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenSummary {
    /// The token's fingerprint.
    pub fingerprint: Fingerprint,
    /// When the token expires.
    pub expires_at: SystemTime,
}

/// The result of a successful step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// What the step did.
    pub outcome: Outcome,
    /// The pending token the step handled, when it read one.
    pub token: Option<TokenSummary>,
}

impl StepReport {
    fn new(outcome: Outcome, token: Option<TokenSummary>) -> Self {
        Self { outcome, token }
    }
}

/// Runs rotation steps against one Secrets Manager endpoint.
#[derive(Clone, Debug)]
pub struct Rotator {
    client: Client,
    credentials: SharedCredentialsProvider,
    config: RotationConfig,
}

impl Rotator {
    /// Creates a rotator. `credentials` sign the auth tokens; they need
    /// `dsql:DbConnectAdmin` or `dsql:DbConnect` on the cluster.
    pub fn new(
        client: Client,
        credentials: SharedCredentialsProvider,
        config: RotationConfig,
    ) -> Self {
        Self {
            client,
            credentials,
            config,
        }
    }

    /// Runs one step and emits one event describing it: `info` on success,
    /// `error` on failure.
    pub async fn run(&self, event: &RotationEvent) -> Result<StepReport, Error> {
        let mut secret_arn = event.secret_id.clone();
        let result = self.run_step(event, &mut secret_arn).await;

        let version = event.client_request_token.as_str();
        let step = event.step.as_str();
        match &result {
            Ok(report) => {
                let (token, expires_at, expires_in_secs) = describe_token(report.token);
                tracing::info!(
                    secret = %secret_arn,
                    version,
                    step,
                    outcome = report.outcome.as_str(),
                    token = %token,
                    expires_at = %expires_at,
                    expires_in_secs,
                    "rotation step finished"
                );
            }
            Err(error) => {
                tracing::error!(
                    secret = %secret_arn,
                    version,
                    step,
                    outcome = "failed",
                    error = %error,
                    "rotation step failed"
                );
            }
        }
        result
    }

    async fn run_step(
        &self,
        event: &RotationEvent,
        secret_arn: &mut String,
    ) -> Result<StepReport, Error> {
        let description = describe(&self.client, &event.secret_id).await?;
        secret_arn.clone_from(&description.arn);
        let version = event.client_request_token.as_str();

        if !description.rotation_enabled {
            return Err(Error::RotationDisabled {
                secret: description.arn,
            });
        }
        let Some(stages) = description.versions.get(version) else {
            return Err(Error::VersionNotFound {
                secret: description.arn,
                version: version.to_owned(),
            });
        };
        if description.has_stage(version, AWSCURRENT) {
            return Ok(StepReport::new(Outcome::AlreadyCurrent, None));
        }
        if !description.has_stage(version, AWSPENDING) {
            return Err(Error::VersionNotPending {
                secret: description.arn.clone(),
                version: version.to_owned(),
                stages: stages.clone(),
            });
        }

        match event.step {
            Step::CreateSecret => self.create_secret(&description.arn, version).await,
            Step::SetSecret => {
                let (_, token) = self.read_pending(&description.arn, version).await?;
                Ok(StepReport::new(Outcome::Set, Some(token)))
            }
            Step::TestSecret => self.test_secret(&description.arn, version).await,
            Step::FinishSecret => self.finish_secret(&description, version).await,
        }
    }

    async fn create_secret(&self, arn: &str, version: &str) -> Result<StepReport, Error> {
        let current_text = get_value(&self.client, arn, None, AWSCURRENT)
            .await?
            .ok_or_else(|| no_value(arn, AWSCURRENT))?;
        let current = self.parse_secret(arn, AWSCURRENT, &current_text)?;

        if let Some(pending_text) = get_value(&self.client, arn, Some(version), AWSPENDING).await? {
            return self
                .keep_or_discard_pending(arn, version, &pending_text)
                .await;
        }

        let token = self.generate_token(&current).await?;
        let summary = self.check_token(arn, version, &current.with_token(&token))?;
        let value = current.to_json_with_password(&token);
        let stored = put_pending(&self.client, arn, version, &value).await?;
        if !stored {
            // Another invocation stored a value for this version first.
            let pending_text = get_value(&self.client, arn, Some(version), AWSPENDING)
                .await?
                .ok_or_else(|| no_value(arn, AWSPENDING))?;
            return self
                .keep_or_discard_pending(arn, version, &pending_text)
                .await;
        }
        Ok(StepReport::new(Outcome::Created, Some(summary)))
    }

    /// Keeps a pending value left by an earlier attempt when its token will
    /// outlast the next rotation. Otherwise it removes the version's
    /// AWSPENDING label and fails, because a version's value cannot be
    /// replaced and resuming would promote a dying token. The next rotation
    /// then starts with a fresh version.
    async fn keep_or_discard_pending(
        &self,
        arn: &str,
        version: &str,
        pending_text: &str,
    ) -> Result<StepReport, Error> {
        let checked = self
            .parse_secret(arn, AWSPENDING, pending_text)
            .and_then(|pending| self.check_token(arn, version, &pending));
        let reason = match checked {
            Ok(summary) => {
                let remaining = remaining(summary.expires_at);
                if remaining > self.config.schedule.minimum_remaining() {
                    return Ok(StepReport::new(Outcome::PendingKept, Some(summary)));
                }
                format!(
                    "its token expires in {} s, less than the rotation interval plus margin of {} s",
                    remaining.as_secs(),
                    self.config.schedule.minimum_remaining().as_secs()
                )
            }
            Err(error) => error.to_string(),
        };

        Err(self.discard_pending(arn, version, reason).await)
    }

    async fn test_secret(&self, arn: &str, version: &str) -> Result<StepReport, Error> {
        let (pending, token) = match self.read_pending(arn, version).await {
            Ok(pending) => pending,
            Err(error @ (Error::InvalidSecret { .. } | Error::InvalidToken { .. })) => {
                return Err(self.discard_pending(arn, version, error.to_string()).await);
            }
            Err(error) => return Err(error),
        };
        let login =
            connect::check_login(&pending, &self.config.tls, self.config.connect_timeout).await;
        if let Err(error) = login {
            return Err(self.discard_pending(arn, version, error.to_string()).await);
        }
        Ok(StepReport::new(Outcome::Tested, Some(token)))
    }

    /// Removes the AWSPENDING label from a version that must not become
    /// current. A version's value cannot be replaced, so retrying the same
    /// version could never succeed; without the label, the next rotation
    /// creates a new version. Returns the error the step fails with.
    async fn discard_pending(&self, arn: &str, version: &str, reason: String) -> Error {
        match move_stage(&self.client, arn, AWSPENDING, None, Some(version)).await {
            Ok(()) => Error::PendingDiscarded {
                secret: arn.to_owned(),
                version: version.to_owned(),
                reason,
            },
            Err(error) => {
                tracing::warn!(
                    secret = %arn,
                    version,
                    error = %error,
                    "removing the AWSPENDING label from an unusable version failed"
                );
                Error::PendingUnusable {
                    secret: arn.to_owned(),
                    version: version.to_owned(),
                    reason,
                }
            }
        }
    }

    async fn finish_secret(
        &self,
        description: &SecretDescription,
        version: &str,
    ) -> Result<StepReport, Error> {
        let arn = description.arn.as_str();
        // Never promote a version without a live token, even if this step
        // is invoked by hand before testSecret.
        let (_, token) = self.read_pending(arn, version).await?;

        let current_version = description.version_with_stage(AWSCURRENT);
        move_stage(
            &self.client,
            arn,
            AWSCURRENT,
            Some(version),
            current_version,
        )
        .await?;
        Ok(StepReport::new(Outcome::Finished, Some(token)))
    }

    /// Reads and checks the pending version: a valid secret whose token is
    /// for its host and not expired.
    async fn read_pending(
        &self,
        arn: &str,
        version: &str,
    ) -> Result<(DsqlSecret, TokenSummary), Error> {
        let text = get_value(&self.client, arn, Some(version), AWSPENDING)
            .await?
            .ok_or_else(|| no_value(arn, AWSPENDING))?;
        let pending = self.parse_secret(arn, AWSPENDING, &text)?;
        let token = self.check_token(arn, version, &pending)?;
        Ok((pending, token))
    }

    fn parse_secret(&self, arn: &str, stage: &str, text: &str) -> Result<DsqlSecret, Error> {
        DsqlSecret::parse(
            text,
            &self.config.hosts,
            self.config.default_region.as_deref(),
        )
        .map_err(|reason| Error::InvalidSecret {
            secret: arn.to_owned(),
            stage: stage.to_owned(),
            reason,
        })
    }

    /// Checks that a secret's password is a token for its host, region and
    /// role that has not expired.
    fn check_token(
        &self,
        arn: &str,
        version: &str,
        secret: &DsqlSecret,
    ) -> Result<TokenSummary, Error> {
        let invalid = |reason: String| Error::InvalidToken {
            secret: arn.to_owned(),
            version: version.to_owned(),
            reason,
        };
        let parsed = secret
            .password()
            .parse()
            .map_err(|error| invalid(error.to_string()))?;
        if !parsed.hostname().eq_ignore_ascii_case(secret.host()) {
            return Err(invalid(format!(
                "it is signed for host {:?}, not {:?}",
                parsed.hostname(),
                secret.host()
            )));
        }
        if parsed.region() != secret.region() {
            return Err(invalid(format!(
                "it is signed for region {}, not {}",
                parsed.region(),
                secret.region()
            )));
        }
        let expected_action = Action::for_role(secret.username());
        if parsed.action() != expected_action {
            return Err(invalid(format!(
                "it grants {} but role {:?} needs {}",
                parsed.action(),
                secret.username(),
                expected_action
            )));
        }
        if parsed.expires_at() <= SystemTime::now() {
            return Err(invalid(format!(
                "it expired at {}",
                format_instant(parsed.expires_at())
            )));
        }
        Ok(TokenSummary {
            fingerprint: parsed.fingerprint(),
            expires_at: parsed.expires_at(),
        })
    }

    async fn generate_token(&self, secret: &DsqlSecret) -> Result<AuthToken, Error> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|error| Error::Credentials(DisplayErrorContext(&error).to_string()))?;
        let request = TokenRequest::new(
            secret.host(),
            secret.region(),
            Action::for_role(secret.username()),
            self.config.schedule.token_lifetime(),
        )?;
        Ok(dsql_token::generate(
            &credentials,
            &request,
            SystemTime::now(),
        )?)
    }
}

fn no_value(arn: &str, stage: &str) -> Error {
    Error::NoValue {
        secret: arn.to_owned(),
        stage: stage.to_owned(),
    }
}

fn remaining(expires_at: SystemTime) -> Duration {
    expires_at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

fn describe_token(token: Option<TokenSummary>) -> (String, String, u64) {
    match token {
        Some(summary) => (
            summary.fingerprint.to_string(),
            format_instant(summary.expires_at),
            remaining(summary.expires_at).as_secs(),
        ),
        None => ("none".to_owned(), "none".to_owned(), 0),
    }
}

fn format_instant(instant: SystemTime) -> String {
    time::OffsetDateTime::from(instant)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "invalid-time".to_owned())
}
