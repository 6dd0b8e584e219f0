//! A PostgreSQL pool for Aurora DSQL whose credentials live in a rotated
//! AWS Secrets Manager secret, so that rotations never fail a request.
//!
//! - [`SecretSource`] reads the secret with the AWS SDK and caches it. It
//!   reads again when the cached auth token nears its own expiry (parsed from
//!   the token), when the TTL passes, and when the database rejects the
//!   token; concurrent refreshes collapse into one `GetSecretValue` call. A
//!   rejection that a fresh read cannot cure (the secret still holds the
//!   rejected token) fails at once instead of looping.
//! - [`SecretPool`] opens every new connection with the current token, over
//!   TLS with full certificate and hostname verification by default, retires
//!   connections before DSQL's one-hour limit and checks idle ones.
//! - [`retry()`] reruns whole transactions after OCC conflicts with
//!   backoff, jitter, attempt and time caps, and a shared [`RetryBudget`].
//!
//! The cache is written here rather than taken from the official
//! `aws_secretsmanager_caching` crate (2.1) for two reasons. That crate
//! enables the SDK's default features, which bring a second TLS stack
//! (hyper 0.14 with rustls 0.21 on ring) next to the aws-lc-rs one every
//! other crate here uses. Its errors are `Box<dyn Error>` without `Send`,
//! so callers must downcast to tell a missing secret from a network fault.
//! Its forced refresh (`refresh_now`) also does not collapse concurrent
//! callers, which this crate needs when many connections see the same
//! rejected token at once.
//!
//! Not done here: generating a token directly from IAM credentials when the
//! secret cannot be read. A library never reads the environment; callers
//! pass the SDK client and typed settings.
//!
//! ```no_run
//! use std::sync::Arc;
//! use secret_pool::{PoolConfig, SecretPool, SecretSource, SourceConfig};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let client = aws_sdk_secretsmanager::Client::new(&sdk_config);
//! let source = Arc::new(SecretSource::new(client, "app/dsql", SourceConfig::default()));
//! let pool = SecretPool::new(source, PoolConfig::default())?;
//! let connection = pool.get().await?;
//! let row = connection.query_one("SELECT 1", &[]).await?;
//! assert_eq!(row.get::<_, i32>(0), 1);
//! # Ok(())
//! # }
//! ```

mod config;
mod pool;
mod rejection;
mod retry;
mod secret;
mod source;
mod tls;

pub use config::{DSQL_MAX_CONNECTION_AGE, PoolConfig, SourceConfig, TlsMode};
pub use deadpool_postgres::{ClientWrapper, Transaction};
pub use pool::{Connection, ConnectionManager, PoolStats, SecretPool, discard};
pub use rejection::{Rejection, credential_rejection};
pub use retry::{Conflict, RetryBudget, RetryError, RetryPolicy, occ_conflict, retry};
pub use secret::ConnectionSecret;
pub use source::{SecretSnapshot, SecretSource, SourceStats};

use dsql_token::Fingerprint;

/// Errors of this crate. Messages never contain an auth token; they name a
/// token by its fingerprint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `GetSecretValue` failed.
    #[error("reading secret {secret_id:?} failed: {message}")]
    SecretRead {
        /// The secret name or ARN.
        secret_id: String,
        /// The SDK's description of the failure.
        message: String,
    },
    /// The secret's value is not usable connection JSON.
    #[error("secret {secret_id:?} is invalid: {reason}")]
    InvalidSecret {
        /// The secret name or ARN.
        secret_id: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid pool setting: {0}")]
    InvalidConfig(String),
    /// The TLS configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The database rejected the credentials and the secret holds no newer
    /// token.
    #[error(
        "database at {host} rejected user {user:?} with token {token}{}",
        if *expired { " because the token expired; the secret was not rotated in time, check its rotation function" } else { "; the secret's token is wrong for this cluster, region or role, and reading it again did not help" }
    )]
    Rejected {
        /// The database host.
        host: String,
        /// The database role.
        user: String,
        /// Fingerprint of the rejected token.
        token: Fingerprint,
        /// The server's hint said the signature expired.
        expired: bool,
    },
    /// Opening a connection failed for a reason other than credentials.
    #[error("connecting to {host}:{port} failed: {source}")]
    Connect {
        /// The database host.
        host: String,
        /// The database port.
        port: u16,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Opening a connection took longer than the connect timeout.
    #[error("connecting to {host}:{port} timed out")]
    ConnectTimeout {
        /// The database host.
        host: String,
        /// The database port.
        port: u16,
    },
    /// No connection became free within the acquire timeout.
    #[error("no database connection became free within the acquire timeout")]
    AcquireTimeout,
    /// The pool was closed.
    #[error("the connection pool is closed")]
    PoolClosed,
}

impl Error {
    /// Returns whether the database could not be reached or was busy, as
    /// opposed to a configuration or credential problem.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::ConnectTimeout { .. } | Self::AcquireTimeout
        )
    }
}
