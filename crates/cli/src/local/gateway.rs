//! `dsql-secrets local gateway`: the token-checking PostgreSQL gateway.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use aws_credential_types::Credentials;
use clap::Args;
use dsql_gateway::{Config, Gateway, TlsIdentity, UpstreamConfig};
use dsql_token::Verifier;

#[derive(Args)]
pub struct GatewayArgs {
    /// Address to listen on, such as 127.0.0.1:0 (port 0 picks a free port).
    #[arg(long)]
    listen: SocketAddr,
    /// PostgreSQL to relay to: postgres://USER[:PASSWORD]@HOST[:PORT][/DATABASE].
    #[arg(long, env = "DSQL_GATEWAY_UPSTREAM", hide_env_values = true)]
    upstream: String,
    /// Endpoint hostname that tokens and the client's TLS SNI must name.
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// Region that tokens must be signed for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Access key allowed to sign tokens, as ID:SECRET; repeat for more keys.
    #[arg(
        long = "access-key",
        env = "DSQL_LOCAL_ACCESS_KEYS",
        value_delimiter = ',',
        required = true,
        hide_env_values = true,
        value_parser = super::parse_access_key
    )]
    access_keys: Vec<Credentials>,
    /// Close sessions older than this many seconds, once idle (DSQL: 3600).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    max_connection_age: u64,
    /// Write the PEM of the CA that signed the gateway's certificate here.
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// PEM certificate chain to serve instead of a generated one (needs --key).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Accept TLS connections without SNI (DSQL rejects them).
    #[arg(long)]
    allow_missing_sni: bool,
    /// Seconds a client has from connecting to being authenticated.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    startup_timeout: u64,
    /// Seconds sessions may take to finish their work after Ctrl-C or SIGTERM.
    #[arg(long, default_value_t = 5)]
    shutdown_grace: u64,
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let request = dsql_token::TokenRequest::new(
        &args.hostname,
        &args.region,
        dsql_token::Action::DbConnectAdmin,
        Duration::from_secs(1),
    );
    if let Err(error) = request {
        anyhow::bail!("invalid --hostname or --region: {error}");
    }

    let tls = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => TlsIdentity::from_pem_files(cert, key)?,
        _ => TlsIdentity::generate(&args.hostname)?,
    };
    if let Some(path) = &args.ca_out {
        let pem = tls.ca_pem().context(
            "--ca-out needs a generated certificate; with --cert, give clients your own CA",
        )?;
        std::fs::write(path, pem)
            .with_context(|| format!("cannot write the CA to {}", path.display()))?;
    }

    let config = Config {
        listen: args.listen,
        upstream: UpstreamConfig::from_url(&args.upstream)?,
        verifier: Verifier::new(&args.hostname, &args.region, args.access_keys),
        tls,
        max_connection_age: Duration::from_secs(args.max_connection_age),
        require_sni: !args.allow_missing_sni,
        startup_timeout: Duration::from_secs(args.startup_timeout),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
    };
    let gateway = Gateway::bind(config).await?;
    let addr = gateway.local_addr();
    tracing::info!(%addr, hostname = args.hostname, region = args.region, "gateway started");
    println!("listening on {addr}");
    gateway.serve(super::shutdown_signal()).await?;
    Ok(())
}
