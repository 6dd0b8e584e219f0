//! The Secrets Manager rotation function for Aurora DSQL auth tokens, as an
//! AWS Lambda on the `provided.al2023` runtime (cargo-lambda names the binary
//! `bootstrap`). It reads its settings from the environment, rejects bad ones
//! at start, installs the logger and hands each event to `dsql-rotation`.

mod logging;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use clap::Parser;
use dsql_rotation::{
    HostPolicy, RotationConfig, RotationEvent, Rotator, TokenSchedule, TrustRoots,
};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

/// Settings, read from environment variables (the flags exist for local use
/// and for `--help`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Settings {
    /// Seconds between scheduled rotations, as deployed (rate(4 hours) is
    /// 14400, the shortest schedule Secrets Manager accepts).
    #[arg(long, env = "ROTATION_INTERVAL_SECS", default_value_t = 14_400)]
    rotation_interval_secs: u64,

    /// Lifetime of each new auth token in seconds; must exceed the rotation
    /// interval plus the safety margin and be at most 604800 (one week).
    #[arg(long, env = "TOKEN_LIFETIME_SECS", default_value_t = 28_800)]
    token_lifetime_secs: u64,

    /// Seconds a token must outlive the next rotation by [default: half the
    /// rotation interval].
    #[arg(long, env = "ROTATION_MARGIN_SECS")]
    rotation_margin_secs: Option<u64>,

    /// PEM file of extra CA certificates that testSecret trusts besides
    /// Amazon Root CA 1 to 4, for example the local gateway's CA.
    #[arg(long, env = "DSQL_CA_FILE")]
    dsql_ca_file: Option<PathBuf>,

    /// Comma-separated hosts a secret may name besides DSQL cluster
    /// endpoints; an entry starting with "." allows a whole domain.
    #[arg(long, env = "DSQL_ALLOWED_HOSTS", value_delimiter = ',')]
    dsql_allowed_hosts: Vec<String>,

    /// Seconds testSecret allows for its connection and `SELECT 1`.
    #[arg(long, env = "DSQL_CONNECT_TIMEOUT_SECS", default_value_t = 10)]
    connect_timeout_secs: u64,
}

impl Settings {
    fn into_config(self, default_region: Option<String>) -> Result<RotationConfig, String> {
        let schedule = TokenSchedule::new(
            Duration::from_secs(self.rotation_interval_secs),
            Duration::from_secs(self.token_lifetime_secs),
            self.rotation_margin_secs.map(Duration::from_secs),
        )
        .map_err(|error| {
            format!("invalid TOKEN_LIFETIME_SECS, ROTATION_INTERVAL_SECS or ROTATION_MARGIN_SECS: {error}")
        })?;

        let mut hosts = HostPolicy::default();
        for entry in self
            .dsql_allowed_hosts
            .iter()
            .filter(|e| !e.trim().is_empty())
        {
            hosts = hosts
                .allow(entry)
                .map_err(|error| format!("invalid DSQL_ALLOWED_HOSTS: {error}"))?;
        }

        let mut roots = TrustRoots::amazon();
        if let Some(path) = &self.dsql_ca_file {
            let pem = std::fs::read(path).map_err(|error| {
                format!(
                    "invalid DSQL_CA_FILE: cannot read {}: {error}",
                    path.display()
                )
            })?;
            roots
                .add_pem(&pem, &path.display().to_string())
                .map_err(|error| format!("invalid DSQL_CA_FILE: {error}"))?;
        }

        if self.connect_timeout_secs == 0 {
            return Err("invalid DSQL_CONNECT_TIMEOUT_SECS: it must be at least 1".to_owned());
        }
        let config = RotationConfig::new(schedule, hosts, &roots, default_region)
            .map_err(|error| error.to_string())?
            .with_connect_timeout(Duration::from_secs(self.connect_timeout_secs));
        Ok(config)
    }
}

fn main() -> ExitCode {
    let settings = Settings::parse();
    logging::init();

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(error = %error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(error = %message, "rotation function stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let default_region = sdk_config.region().map(|region| region.to_string());
    let config = settings.into_config(default_region)?;
    let credentials = sdk_config.credentials_provider().ok_or(
        "no AWS credentials provider is configured; set the function's execution role or AWS credentials",
    )?;
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config);
    tracing::info!(
        token_lifetime_secs = config.schedule().token_lifetime().as_secs(),
        rotation_interval_secs = config.schedule().rotation_interval().as_secs(),
        "rotation function started"
    );

    let rotator = Rotator::new(client, credentials, config);
    let rotator = &rotator;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<SecretsManagerSecretRotationEvent>| async move {
            handle(rotator, event.payload).await
        },
    ))
    .await
    .map_err(|error| format!("the Lambda runtime API failed: {error}"))
}

async fn handle(
    rotator: &Rotator,
    payload: SecretsManagerSecretRotationEvent,
) -> Result<(), Diagnostic> {
    let event = RotationEvent::new(
        payload.secret_id,
        payload.client_request_token,
        &payload.step,
    )
    .map_err(diagnostic)?;
    rotator.run(&event).await.map_err(diagnostic)?;
    Ok(())
}

fn diagnostic(error: dsql_rotation::Error) -> Diagnostic {
    Diagnostic {
        error_type: "RotationError".to_owned(),
        error_message: error.to_string(),
    }
}
