//! `dsql-secrets`: make and inspect DSQL auth tokens, and run the local
//! stack's parts (the token-checking gateway, the Secrets Manager emulator).

mod aws;
mod local;
mod logging;
mod psql;
mod secret;
mod state;
mod time_format;
mod token;

use clap::{Parser, Subcommand};

/// Aurora DSQL credentials kept in AWS Secrets Manager, and a local stack
/// that runs the whole system without an AWS account.
#[derive(Parser)]
#[command(name = "dsql-secrets", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate or inspect DSQL auth tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Run the local stack, or one of its parts, in the foreground.
    #[command(subcommand)]
    Local(local::LocalCommand),
    /// Inspect a secret's rotation state, rotate it, or show it redacted.
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Run psql with the secret's credentials and TLS settings.
    Psql(psql::PsqlArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "failed to start the async runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Token(command) => token::run(command).await,
            Command::Local(command) => local::run(command).await,
            Command::Secret(command) => secret::run(command).await,
            Command::Psql(args) => psql::run(args).await,
        }
    });

    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints an error and its causes on standard error, one per line.
#[allow(
    clippy::print_stderr,
    reason = "the command's error report goes to standard error"
)]
fn report(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
