//! Typed settings for the secret cache and the pool, checked once when the
//! pool is built. Reading them from flags or the environment is the
//! binary's job.

use std::path::PathBuf;
use std::time::Duration;

use crate::Error;

/// DSQL ends every connection after one hour; pooled connections must be
/// retired before that.
pub const DSQL_MAX_CONNECTION_AGE: Duration = Duration::from_secs(60 * 60);

/// When the cached secret is read again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceConfig {
    /// Read the secret again after this long even if its token is fresh, so
    /// a rotation is picked up before the old token nears expiry.
    pub ttl: Duration,
    /// Read the secret again once the token has this little life left. A
    /// token's half-life is used instead when it is shorter.
    pub refresh_before_expiry: Duration,
    /// Minimum time between two reads caused by an expiring or rejected
    /// token. It bounds the reads when the secret was not rotated in time.
    pub min_refresh_interval: Duration,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            refresh_before_expiry: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(1),
        }
    }
}

/// TLS setting of the connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS with certificate and hostname verification (`verify-full`),
    /// trusting the PEM file's CAs or, without one, the bundled Mozilla
    /// roots, which include Amazon's.
    VerifyFull {
        /// PEM file of the CAs to trust instead of the bundled roots.
        ca_file: Option<PathBuf>,
    },
    /// No TLS. Only for a local PostgreSQL without the gateway; DSQL
    /// rejects such connections.
    Disable,
}

/// Pool sizes and timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Maximum number of open connections.
    pub max_size: usize,
    /// How long a caller waits for a free connection.
    pub acquire_timeout: Duration,
    /// How long opening one connection (TCP, TLS, authentication) may take.
    pub connect_timeout: Duration,
    /// Connections older than this are closed instead of reused; must be
    /// below DSQL's one-hour limit.
    pub max_lifetime: Duration,
    /// A connection idle for longer than this runs `SELECT 1` before reuse.
    pub health_check_after_idle: Duration,
    /// TLS settings.
    pub tls: TlsMode,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_size: 16,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_lifetime: Duration::from_secs(55 * 60),
            health_check_after_idle: Duration::from_secs(30),
            tls: TlsMode::VerifyFull { ca_file: None },
        }
    }
}

impl PoolConfig {
    /// Checks every value, and explains how to fix a bad one.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |message: &str| Err(Error::InvalidConfig(message.to_owned()));
        if self.max_size == 0 {
            return invalid("pool size must be at least 1");
        }
        if self.acquire_timeout.is_zero() || self.connect_timeout.is_zero() {
            return invalid("acquire and connect timeouts must be above zero");
        }
        if self.max_lifetime.is_zero() || self.max_lifetime >= DSQL_MAX_CONNECTION_AGE {
            return invalid(
                "connection lifetime must be above zero and below 60 minutes, DSQL's limit",
            );
        }
        Ok(())
    }
}

impl SourceConfig {
    /// Checks every value, and explains how to fix a bad one.
    pub fn validate(&self) -> Result<(), Error> {
        if self.ttl.is_zero() {
            return Err(Error::InvalidConfig(
                "secret cache TTL must be above zero".to_owned(),
            ));
        }
        if self.min_refresh_interval > self.ttl {
            return Err(Error::InvalidConfig(
                "minimum refresh interval must not exceed the secret cache TTL".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(PoolConfig::default().validate().is_ok());
        assert!(SourceConfig::default().validate().is_ok());
    }

    #[test]
    fn lifetime_of_an_hour_is_rejected() {
        let config = PoolConfig {
            max_lifetime: DSQL_MAX_CONNECTION_AGE,
            ..PoolConfig::default()
        };
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("60 minutes"), "{message}");
    }

    #[test]
    fn empty_pool_is_rejected() {
        let config = PoolConfig {
            max_size: 0,
            ..PoolConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
