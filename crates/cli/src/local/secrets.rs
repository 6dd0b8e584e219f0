//! `dsql-secrets local secrets`: the Secrets Manager emulator, with the
//! Lambda runtime API for rotation functions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aws_credential_types::Credentials;
use clap::Args;
use secrets_emulator::{AccessKey, Config, Emulator, RotationFunction};

#[derive(Args)]
pub struct SecretsArgs {
    /// Address to listen on, such as 127.0.0.1:0 (port 0 picks a free port).
    #[arg(long)]
    listen: SocketAddr,
    /// Directory for the emulator's state; created when missing.
    #[arg(long)]
    state_dir: PathBuf,
    /// Access key whose signatures are accepted, as ID:SECRET; repeat for
    /// more keys. Rotation functions get the first.
    #[arg(
        long = "access-key",
        env = "DSQL_LOCAL_ACCESS_KEYS",
        value_delimiter = ',',
        required = true,
        hide_env_values = true,
        value_parser = super::parse_access_key
    )]
    access_keys: Vec<Credentials>,
    /// Rotation function as NAME=PATH: RotateSecret names it as
    /// arn:aws:lambda:REGION:ACCOUNT:function:NAME and the executable at
    /// PATH (a lambda_runtime binary) runs its steps. Repeat for more.
    #[arg(long = "rotation-function", value_parser = parse_rotation_function)]
    rotation_functions: Vec<RotationFunction>,
    /// Region that requests must be signed for and ARNs carry.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Account id in ARNs.
    #[arg(long, default_value = "123456789012")]
    account_id: String,
    /// Accept rotation schedules more frequent than every four hours (the
    /// service's minimum), down to rate(1 second). For tests and demos.
    #[arg(long)]
    allow_short_schedules: bool,
    /// Seconds one rotation step may take before its process is stopped.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=900))]
    step_timeout: u64,
}

fn parse_rotation_function(value: &str) -> Result<RotationFunction, String> {
    let (name, path) = value
        .split_once('=')
        .ok_or_else(|| String::from("expected NAME=PATH"))?;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_name {
        return Err(format!(
            "function name {name:?} is not valid; use 1 to 64 letters, digits, '-' or '_'"
        ));
    }
    let path = PathBuf::from(path);
    if !path.is_file() {
        return Err(format!(
            "{} is not a file; build the function first",
            path.display()
        ));
    }
    Ok(RotationFunction {
        name: name.to_owned(),
        path,
    })
}

pub async fn run(args: SecretsArgs) -> anyhow::Result<()> {
    let access_keys = args
        .access_keys
        .iter()
        .map(|key| AccessKey {
            id: key.access_key_id().to_owned(),
            secret: key.secret_access_key().to_owned(),
        })
        .collect();
    let mut config = Config::new(args.listen, args.state_dir, access_keys);
    config.region = args.region;
    config.account_id = args.account_id;
    config.rotation_functions = args.rotation_functions;
    config.allow_short_schedules = args.allow_short_schedules;
    config.invocation_timeout = Duration::from_secs(args.step_timeout);

    let emulator = Emulator::start(config).await?;
    let addr = emulator.addr();
    tracing::info!(%addr, "secrets manager emulator started");
    println!("listening on {addr}");

    super::shutdown_signal().await;
    tracing::info!("secrets manager emulator stopping");
    emulator.shutdown().await;
    Ok(())
}
