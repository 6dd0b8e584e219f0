//! `dsql-secrets local ...`: run parts of the local stack in the foreground.

mod children;
mod gateway;
mod postgres;
mod secrets;
mod stack_secret;
mod up;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum LocalCommand {
    /// Run the whole system: PostgreSQL, gateway, Secrets Manager emulator
    /// with the rotation function, the secret, and the customer service.
    Up(up::UpArgs),
    /// Run the TLS PostgreSQL-wire gateway that checks DSQL auth tokens.
    Gateway(gateway::GatewayArgs),
    /// Run the Secrets Manager emulator (with the Lambda runtime API).
    Secrets(secrets::SecretsArgs),
}

pub async fn run(command: LocalCommand) -> anyhow::Result<()> {
    match command {
        LocalCommand::Up(args) => up::run(args).await,
        LocalCommand::Gateway(args) => gateway::run(args).await,
        LocalCommand::Secrets(args) => secrets::run(args).await,
    }
}

/// Parses `ID:SECRET` into static AWS credentials.
pub fn parse_access_key(value: &str) -> Result<aws_credential_types::Credentials, String> {
    let (id, secret) = value
        .split_once(':')
        .ok_or_else(|| String::from("expected ACCESS_KEY_ID:SECRET_ACCESS_KEY"))?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(String::from(
            "the access key id must be non-empty and alphanumeric",
        ));
    }
    if secret.is_empty() {
        return Err(String::from("the secret access key is empty"));
    }
    Ok(aws_credential_types::Credentials::new(
        id,
        secret,
        None,
        None,
        "command-line",
    ))
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops this");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
