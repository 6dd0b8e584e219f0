//! Command-line flags, each with an environment variable as fallback, and
//! their translation into the typed settings of the pool and handlers.
//! The Secrets Manager endpoint, region and credentials come from the AWS
//! SDK's standard environment (`AWS_ENDPOINT_URL_SECRETS_MANAGER`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use secret_pool::{PoolConfig, RetryPolicy, SourceConfig, TlsMode};

use crate::state::Settings;

/// TLS mode of database connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TlsFlag {
    /// Verify the server certificate and hostname.
    VerifyFull,
    /// Plain connections, for a local PostgreSQL without the gateway only.
    Disable,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Reference REST service for customers on Aurora DSQL, reading its
/// database credentials from a rotated Secrets Manager secret.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// Name or ARN of the secret with the connection JSON.
    #[arg(long, env = "CUSTOMER_API_SECRET_ID")]
    pub secret_id: String,

    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "CUSTOMER_API_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// PEM file of CAs to trust for the database instead of the bundled roots.
    #[arg(long, env = "DSQL_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// TLS mode of database connections.
    #[arg(
        long,
        env = "CUSTOMER_API_DB_TLS",
        value_enum,
        default_value = "verify-full"
    )]
    pub db_tls: TlsFlag,

    /// Maximum number of database connections (at least 2: the locking
    /// simulation uses two at once).
    #[arg(long, env = "CUSTOMER_API_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,

    /// Milliseconds a request waits for a free database connection.
    #[arg(long, env = "CUSTOMER_API_ACQUIRE_TIMEOUT_MS", default_value_t = 5_000)]
    pub acquire_timeout_ms: u64,

    /// Milliseconds opening one database connection may take.
    #[arg(long, env = "CUSTOMER_API_CONNECT_TIMEOUT_MS", default_value_t = 5_000)]
    pub connect_timeout_ms: u64,

    /// Milliseconds after which a connection is closed instead of reused;
    /// below 3600000, DSQL's one-hour limit.
    #[arg(
        long,
        env = "CUSTOMER_API_MAX_CONNECTION_LIFETIME_MS",
        default_value_t = 3_300_000
    )]
    pub max_connection_lifetime_ms: u64,

    /// Milliseconds one request's database work may take, retries included.
    #[arg(
        long,
        env = "CUSTOMER_API_TRANSACTION_TIMEOUT_MS",
        default_value_t = 15_000
    )]
    pub transaction_timeout_ms: u64,

    /// Attempts per transaction when OCC conflicts occur, the first included.
    #[arg(long, env = "CUSTOMER_API_RETRY_MAX_ATTEMPTS", default_value_t = 5)]
    pub retry_max_attempts: u32,

    /// Milliseconds after which the cached secret is read again.
    #[arg(long, env = "CUSTOMER_API_SECRET_TTL_MS", default_value_t = 300_000)]
    pub secret_ttl_ms: u64,

    /// Read the secret again when the auth token has this many milliseconds
    /// left (or half its lifetime, if that is less).
    #[arg(
        long,
        env = "CUSTOMER_API_SECRET_REFRESH_BEFORE_EXPIRY_MS",
        default_value_t = 300_000
    )]
    pub secret_refresh_before_expiry_ms: u64,

    /// Minimum milliseconds between two reads caused by an expiring or
    /// rejected token.
    #[arg(
        long,
        env = "CUSTOMER_API_SECRET_MIN_REFRESH_INTERVAL_MS",
        default_value_t = 1_000
    )]
    pub secret_min_refresh_interval_ms: u64,

    /// Milliseconds that shutdown waits for running requests.
    #[arg(
        long,
        env = "CUSTOMER_API_SHUTDOWN_TIMEOUT_MS",
        default_value_t = 20_000
    )]
    pub shutdown_timeout_ms: u64,

    /// Log line format; the level comes from RUST_LOG (default info).
    #[arg(
        long,
        env = "CUSTOMER_API_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,
}

impl Cli {
    /// Returns the pool settings, checked.
    pub fn pool_config(&self) -> anyhow::Result<PoolConfig> {
        anyhow::ensure!(
            self.pool_size >= 2,
            "--pool-size must be at least 2, because the locking simulation holds two connections"
        );
        let tls = match self.db_tls {
            TlsFlag::VerifyFull => TlsMode::VerifyFull {
                ca_file: self.ca_file.clone(),
            },
            TlsFlag::Disable => TlsMode::Disable,
        };
        let config = PoolConfig {
            max_size: self.pool_size,
            acquire_timeout: Duration::from_millis(self.acquire_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            max_lifetime: Duration::from_millis(self.max_connection_lifetime_ms),
            tls,
            ..PoolConfig::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// Returns the secret cache settings, checked.
    pub fn source_config(&self) -> anyhow::Result<SourceConfig> {
        let config = SourceConfig {
            ttl: Duration::from_millis(self.secret_ttl_ms),
            refresh_before_expiry: Duration::from_millis(self.secret_refresh_before_expiry_ms),
            min_refresh_interval: Duration::from_millis(self.secret_min_refresh_interval_ms),
        };
        config.validate()?;
        Ok(config)
    }

    /// Returns the handler settings, checked.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        anyhow::ensure!(
            self.transaction_timeout_ms > 0,
            "--transaction-timeout-ms must be above zero"
        );
        anyhow::ensure!(
            self.retry_max_attempts > 0,
            "--retry-max-attempts must be at least 1"
        );
        let transaction_timeout = Duration::from_millis(self.transaction_timeout_ms);
        Ok(Settings {
            transaction_timeout,
            retry_policy: RetryPolicy {
                max_attempts: self.retry_max_attempts,
                max_elapsed: transaction_timeout,
                ..RetryPolicy::default()
            },
        })
    }
}
