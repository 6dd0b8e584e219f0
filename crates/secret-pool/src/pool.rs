//! The connection pool: deadpool over tokio-postgres, where every new
//! connection takes the secret's current auth token, a rejected token makes
//! the secret be read again once, and connections are retired before DSQL's
//! one-hour limit. Statements are cached per connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool::managed::{self, Metrics, Pool, PoolError, RecycleError, RecycleResult, Timeouts};
use deadpool_postgres::ClientWrapper;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::rejection::credential_rejection;
use crate::source::{SecretSnapshot, SecretSource};
use crate::{Error, PoolConfig, TlsMode};

/// A pooled connection; it returns to the pool when dropped. It dereferences
/// to [`deadpool_postgres::ClientWrapper`], a `tokio_postgres::Client` with
/// `prepare_cached`.
pub type Connection = managed::Object<ConnectionManager>;

/// Closes a connection instead of returning it to the pool, for one whose
/// state is unknown because work on it was abandoned mid-statement.
pub fn discard(connection: Connection) {
    drop(managed::Object::take(connection));
}

/// Counters of what the pool did, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections opened.
    pub connections_opened: u64,
    /// Connection attempts that failed, rejections included.
    pub connect_failures: u64,
    /// Connection attempts the database rejected for their credentials.
    pub credential_rejections: u64,
    /// Connections closed because they reached the maximum lifetime.
    pub lifetime_retirements: u64,
    /// Connections open now.
    pub size: usize,
    /// Open connections not in use now.
    pub idle: usize,
    /// Callers waiting for a connection now.
    pub waiting: usize,
}

#[derive(Default)]
struct Counters {
    connections_opened: AtomicU64,
    connect_failures: AtomicU64,
    credential_rejections: AtomicU64,
    lifetime_retirements: AtomicU64,
}

/// Opens and recycles connections for [`SecretPool`]; not used directly.
pub struct ConnectionManager {
    source: Arc<SecretSource>,
    config: PoolConfig,
    tls: Option<MakeRustlsConnect>,
    counters: Counters,
}

impl ConnectionManager {
    async fn connect(&self, snapshot: &SecretSnapshot) -> Result<ClientWrapper, Error> {
        let secret = &snapshot.secret;
        let mut config = Config::new();
        config
            .host(&secret.host)
            .port(secret.port)
            .user(&secret.username)
            .password(secret.password.expose_secret())
            .dbname(&secret.dbname)
            .application_name("secret-pool")
            .connect_timeout(self.config.connect_timeout);

        let connecting = async {
            match &self.tls {
                Some(tls) => {
                    config.ssl_mode(SslMode::Require);
                    let (client, connection) = config.connect(tls.clone()).await?;
                    Ok((client, tokio::spawn(drive(connection))))
                }
                None => {
                    config.ssl_mode(SslMode::Disable);
                    let (client, connection) = config.connect(NoTls).await?;
                    Ok((client, tokio::spawn(drive(connection))))
                }
            }
        };
        let connected = tokio::time::timeout(self.config.connect_timeout, connecting)
            .await
            .map_err(|_| Error::ConnectTimeout {
                host: secret.host.clone(),
                port: secret.port,
            })?;

        match connected {
            Ok((client, task)) => {
                self.counters
                    .connections_opened
                    .fetch_add(1, Ordering::Relaxed);
                Ok(ClientWrapper::new(client, task))
            }
            Err(source) => {
                self.counters
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                match credential_rejection(&source) {
                    Some(rejection) => {
                        self.counters
                            .credential_rejections
                            .fetch_add(1, Ordering::Relaxed);
                        Err(Error::Rejected {
                            host: secret.host.clone(),
                            user: secret.username.clone(),
                            token: snapshot.fingerprint(),
                            expired: rejection.expired,
                        })
                    }
                    None => Err(Error::Connect {
                        host: secret.host.clone(),
                        port: secret.port,
                        source,
                    }),
                }
            }
        }
    }
}

async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(error) = connection.await {
        tracing::debug!(error = %error, "database connection ended with an error");
    }
}

impl managed::Manager for ConnectionManager {
    type Type = ClientWrapper;
    type Error = Error;

    async fn create(&self) -> Result<ClientWrapper, Error> {
        let snapshot = self.source.current().await?;
        let error = match self.connect(&snapshot).await {
            Ok(client) => return Ok(client),
            Err(error @ Error::Rejected { .. }) => error,
            Err(error) => return Err(error),
        };

        // The token may have been rotated or have expired: read the secret
        // again and retry once, only if that yields a different token.
        tracing::warn!(error = %error, "database rejected the auth token; reading the secret again");
        match self.source.refresh_after_rejection(&snapshot).await? {
            Some(fresh) => self.connect(&fresh).await,
            None => Err(error),
        }
    }

    async fn recycle(&self, client: &mut ClientWrapper, metrics: &Metrics) -> RecycleResult<Error> {
        if client.is_closed() {
            return Err(RecycleError::message("connection closed by the server"));
        }
        if metrics.age() >= self.config.max_lifetime {
            self.counters
                .lifetime_retirements
                .fetch_add(1, Ordering::Relaxed);
            return Err(RecycleError::message(
                "connection reached its maximum lifetime",
            ));
        }
        if metrics.last_used() >= self.config.health_check_after_idle {
            let check =
                tokio::time::timeout(self.config.connect_timeout, client.simple_query("SELECT 1"));
            match check.await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => {
                    return Err(RecycleError::message("connection failed its health check"));
                }
            }
        }
        Ok(())
    }
}

/// A PostgreSQL pool whose connections use the secret's current token.
pub struct SecretPool {
    pool: Pool<ConnectionManager>,
    source: Arc<SecretSource>,
}

impl SecretPool {
    /// Builds the pool. No connection is opened until the first
    /// [`SecretPool::get`].
    pub fn new(source: Arc<SecretSource>, config: PoolConfig) -> Result<Self, Error> {
        config.validate()?;
        let tls = match &config.tls {
            TlsMode::VerifyFull { ca_file } => Some(crate::tls::connector(ca_file.as_deref())?),
            TlsMode::Disable => {
                tracing::warn!("TLS is disabled; use this only with a local PostgreSQL");
                None
            }
        };
        let timeouts = Timeouts {
            wait: Some(config.acquire_timeout),
            // Opening covers a secret read and up to two connection attempts.
            create: Some(config.connect_timeout * 3),
            recycle: Some(config.connect_timeout),
        };
        let manager = ConnectionManager {
            source: source.clone(),
            config: config.clone(),
            tls,
            counters: Counters::default(),
        };
        let pool = Pool::builder(manager)
            .max_size(config.max_size)
            .timeouts(timeouts)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|error| Error::InvalidConfig(format!("pool cannot be built: {error}")))?;
        Ok(Self { pool, source })
    }

    /// Takes a connection from the pool, opening one if none is idle.
    pub async fn get(&self) -> Result<Connection, Error> {
        // Opening a connection is a large future (TLS and authentication
        // state); boxing it keeps every caller's future small.
        Box::pin(self.pool.get())
            .await
            .map_err(|error| match error {
                PoolError::Backend(error) => error,
                PoolError::Timeout(_) => Error::AcquireTimeout,
                PoolError::Closed => Error::PoolClosed,
                other => Error::InvalidConfig(format!("pool failed: {other}")),
            })
    }

    /// Returns the secret source the pool reads credentials from.
    pub fn source(&self) -> &Arc<SecretSource> {
        &self.source
    }

    /// Returns counters and the pool's current size.
    pub fn stats(&self) -> PoolStats {
        let counters = &self.pool.manager().counters;
        let status = self.pool.status();
        PoolStats {
            connections_opened: counters.connections_opened.load(Ordering::Relaxed),
            connect_failures: counters.connect_failures.load(Ordering::Relaxed),
            credential_rejections: counters.credential_rejections.load(Ordering::Relaxed),
            lifetime_retirements: counters.lifetime_retirements.load(Ordering::Relaxed),
            size: status.size,
            idle: status.available,
            waiting: status.waiting,
        }
    }

    /// Closes the pool: idle connections close now, connections in use
    /// close when returned, and later calls to `get` fail.
    pub fn close(&self) {
        self.pool.close();
    }
}

impl std::fmt::Debug for SecretPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretPool")
            .field("source", &self.source)
            .field("stats", &self.stats())
            .finish()
    }
}
