//! `dsql-secrets psql`: run `psql` with the secret's credentials. The token
//! goes to psql through `PGPASSWORD` in its environment, never on its
//! command line, where other users could read it.

use std::process::Command;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use crate::aws::{SecretTarget, current_value};

#[derive(Args)]
pub struct PsqlArgs {
    #[command(flatten)]
    target: SecretTarget,
    /// libpq sslmode (default: verify-full; with psql older than 16 against
    /// a remote host, require, because those cannot use the system's CAs).
    #[arg(long)]
    sslmode: Option<String>,
    /// CA file for verify-full (default: the local stack's gateway CA, or the
    /// system's CAs).
    #[arg(long)]
    sslrootcert: Option<String>,
    /// Arguments passed to psql, after `--`.
    #[arg(last = true)]
    psql_args: Vec<String>,
}

pub async fn run(args: PsqlArgs) -> anyhow::Result<()> {
    let resolved = args.target.resolve().await?;
    let value = current_value(&resolved.client, &resolved.secret_id).await?;
    let secret: Value = serde_json::from_str(&value)
        .with_context(|| format!("secret {:?} is not JSON", resolved.secret_id))?;
    let field = |name: &str| -> anyhow::Result<String> {
        match secret.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(Value::Number(number)) => Ok(number.to_string()),
            _ => anyhow::bail!("secret {:?} has no {name:?} field", resolved.secret_id),
        }
    };
    let host = field("host")?;
    let user = field("username")?;
    let password = field("password")?;
    let port = field("port").unwrap_or_else(|_| String::from("5432"));
    let dbname = field("dbname").unwrap_or_else(|_| String::from("postgres"));

    let mut command = Command::new("psql");
    command
        .env("PGHOST", &host)
        .env("PGPORT", &port)
        .env("PGUSER", &user)
        .env("PGDATABASE", &dbname)
        .env("PGPASSWORD", &password);

    match &resolved.local {
        Some(stack) => {
            command
                .env("PGHOSTADDR", stack.gateway_addr.ip().to_string())
                .env(
                    "PGSSLMODE",
                    args.sslmode.as_deref().unwrap_or("verify-full"),
                )
                .env(
                    "PGSSLROOTCERT",
                    args.sslrootcert
                        .clone()
                        .unwrap_or_else(|| stack.ca_file.display().to_string()),
                );
        }
        None => {
            let (sslmode, rootcert) = match (&args.sslmode, &args.sslrootcert) {
                (Some(mode), root) => (mode.clone(), root.clone()),
                (None, Some(root)) => (String::from("verify-full"), Some(root.clone())),
                (None, None) if psql_major_version().is_some_and(|major| major >= 16) => {
                    (String::from("verify-full"), Some(String::from("system")))
                }
                (None, None) => {
                    tracing::warn!(
                        "psql is older than 16 and cannot use the system's CAs; using sslmode=require"
                    );
                    (String::from("require"), None)
                }
            };
            command.env("PGSSLMODE", sslmode);
            if let Some(root) = rootcert {
                command.env("PGSSLROOTCERT", root);
            }
        }
    }

    let status = command
        .args(&args.psql_args)
        .status()
        .context("cannot run psql; install the PostgreSQL client (Debian: postgresql-client)")?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

fn psql_major_version() -> Option<u32> {
    let output = Command::new("psql").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text
        .split_whitespace()
        .find(|word| word.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    version.split('.').next()?.parse().ok()
}
