//! `dsql-secrets token generate|inspect`.

use std::io::Read;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use aws_credential_types::provider::ProvideCredentials;
use clap::{Args, Subcommand};
use dsql_token::{Action, TokenRequest, parse};
use serde::Serialize;

use crate::time_format::rfc3339;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Print a new auth token, signed with credentials from the standard AWS chain.
    Generate(GenerateArgs),
    /// Print a token's fields and remaining life; never its signature.
    Inspect(InspectArgs),
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Cluster endpoint, such as abc123.dsql.us-east-1.on.aws (no scheme or port).
    #[arg(long)]
    hostname: String,
    /// AWS region the cluster is in (default: from a `<id>.dsql.<region>.on.aws`
    /// hostname, else the AWS profile's region).
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// Database role: `admin` signs DbConnectAdmin, any other role DbConnect.
    #[arg(long, default_value = "admin")]
    role: String,
    /// Token lifetime in seconds, 1 to 604800.
    #[arg(long, default_value_t = 900)]
    expires_in: u64,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The token; `-` or nothing reads it from standard input, which keeps it
    /// out of the process list and shell history.
    token: Option<String>,
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Generate(args) => generate(args).await,
        TokenCommand::Inspect(args) => inspect(args),
    }
}

async fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = args
        .region
        .clone()
        .or_else(|| region_of_dsql_host(&args.hostname))
    {
        loader = loader.region(aws_config::Region::new(region));
    }
    let config = loader.load().await;
    let region = config.region().map(|region| region.to_string()).context(
        "no region: pass --region, set AWS_REGION, or use a <id>.dsql.<region>.on.aws hostname",
    )?;
    let request = TokenRequest::new(
        &args.hostname,
        &region,
        Action::for_role(&args.role),
        Duration::from_secs(args.expires_in),
    )?;

    let provider = config.credentials_provider().context(
        "no AWS credentials provider is configured; set AWS_PROFILE, or \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    )?;
    let credentials = provider.provide_credentials().await.context(
        "failed to load AWS credentials from the standard chain; set AWS_PROFILE, or \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    )?;

    let token = dsql_token::generate(&credentials, &request, SystemTime::now())?;
    tracing::debug!(token = %token.fingerprint(), hostname = %args.hostname, "generated auth token");
    println!("{}", token.expose_secret());
    Ok(())
}

/// Returns the region of a DSQL endpoint, `<id>.dsql.<region>.on.aws`.
fn region_of_dsql_host(hostname: &str) -> Option<String> {
    let labels: Vec<&str> = hostname.split('.').collect();
    match labels[..] {
        [_, "dsql", region, "on", "aws"] => Some(region.to_owned()),
        _ => None,
    }
}

#[derive(Serialize)]
struct TokenReport {
    fingerprint: String,
    hostname: String,
    region: String,
    action: &'static str,
    access_key_id: String,
    has_session_token: bool,
    signed_at: String,
    expires_at: String,
    lifetime_secs: u64,
    seconds_left: u64,
    expired: bool,
}

fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let text = match args.token.as_deref() {
        None | Some("-") => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("failed to read the token from standard input")?;
            input
        }
        Some(token) => token.to_owned(),
    };
    let text = text.trim();
    if text.is_empty() {
        bail!("no token given; pass it as an argument or on standard input");
    }
    let parsed = parse(text).context("not a valid DSQL auth token")?;

    let now = SystemTime::now();
    let report = TokenReport {
        fingerprint: parsed.fingerprint().to_string(),
        hostname: parsed.hostname().to_owned(),
        region: parsed.region().to_owned(),
        action: parsed.action().as_str(),
        access_key_id: parsed.access_key_id().to_owned(),
        has_session_token: parsed.has_session_token(),
        signed_at: rfc3339(parsed.signed_at()),
        expires_at: rfc3339(parsed.expires_at()),
        lifetime_secs: parsed.lifetime().as_secs(),
        seconds_left: parsed.remaining(now).as_secs(),
        expired: now > parsed.expires_at(),
    };

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("fingerprint:    {}", report.fingerprint);
    println!("hostname:       {}", report.hostname);
    println!("region:         {}", report.region);
    println!("action:         {}", report.action);
    println!("access key id:  {}", report.access_key_id);
    println!(
        "session token:  {}",
        if report.has_session_token {
            "yes"
        } else {
            "no"
        }
    );
    println!("signed at:      {}", report.signed_at);
    println!("expires at:     {}", report.expires_at);
    println!("lifetime:       {} s", report.lifetime_secs);
    if report.expired {
        println!("seconds left:   0 (expired)");
    } else {
        println!("seconds left:   {}", report.seconds_left);
    }
    Ok(())
}
