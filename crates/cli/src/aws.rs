//! Secrets Manager clients for the `secret` and `psql` commands: against AWS
//! with the standard credential chain, against any endpoint with
//! `--endpoint-url`, or against a local stack with `--state-dir`.

use std::path::PathBuf;

use anyhow::Context;
use aws_sdk_secretsmanager::Client;
use clap::Args;

use crate::state::LocalStack;

/// The secret's id and the endpoint and credentials that reach it.
#[derive(Args, Clone)]
pub struct SecretTarget {
    /// Secret name or ARN (default with --state-dir: the local stack's secret).
    #[arg(long)]
    pub secret_id: Option<String>,
    /// Secrets Manager endpoint, for example a local emulator.
    #[arg(long, env = "AWS_ENDPOINT_URL_SECRETS_MANAGER")]
    pub endpoint_url: Option<String>,
    /// AWS region (default: the standard chain's).
    #[arg(long)]
    pub region: Option<String>,
    /// A local stack's state directory: its endpoint, credentials and secret.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// A resolved target: client, secret id, and the local stack if any.
pub struct Resolved {
    pub client: Client,
    pub secret_id: String,
    pub local: Option<LocalStack>,
}

impl SecretTarget {
    /// Builds the client and picks the secret id.
    pub async fn resolve(&self) -> anyhow::Result<Resolved> {
        let local = match &self.state_dir {
            Some(dir) => Some(LocalStack::load(dir)?),
            None => None,
        };

        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(stack) = &local {
            loader = loader
                .endpoint_url(&stack.endpoint_url)
                .region(aws_config::Region::new(stack.region.clone()))
                .credentials_provider(aws_credential_types::Credentials::new(
                    &stack.access_key_id,
                    &stack.secret_access_key,
                    None,
                    None,
                    "local-stack",
                ));
        }
        if let Some(endpoint) = &self.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let config = loader.load().await;
        if config.region().is_none() {
            anyhow::bail!("no AWS region is configured; pass --region or set AWS_REGION");
        }

        let secret_id = match (&self.secret_id, &local) {
            (Some(id), _) => id.clone(),
            (None, Some(stack)) => stack.secret_id.clone(),
            (None, None) => anyhow::bail!("pass --secret-id (or --state-dir of a local stack)"),
        };
        Ok(Resolved {
            client: Client::new(&config),
            secret_id,
            local,
        })
    }
}

/// Reads the `AWSCURRENT` value of a secret.
pub async fn current_value(client: &Client, secret_id: &str) -> anyhow::Result<String> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|error| anyhow::anyhow!(describe_sdk_error(&error)))
        .with_context(|| format!("cannot read secret {secret_id:?}"))?;
    output
        .secret_string()
        .map(str::to_owned)
        .with_context(|| format!("secret {secret_id:?} has no SecretString"))
}

/// Formats an SDK error as `Code: message`, which the SDK's `Display` hides.
pub fn describe_sdk_error<E, R>(error: &aws_sdk_secretsmanager::error::SdkError<E, R>) -> String
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("(no message)")
        ),
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}
