//! The cached connection secret: read with the AWS SDK, kept in memory, and
//! read again when its auth token nears expiry, when its TTL has passed, or
//! when the database rejected its token. Concurrent refreshes collapse into
//! one `GetSecretValue` call. This module does not connect to the database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use dsql_token::{Fingerprint, ParsedToken};

use crate::{ConnectionSecret, Error, SourceConfig};

/// One reading of the secret.
#[derive(Debug)]
pub struct SecretSnapshot {
    /// The connection parameters.
    pub secret: ConnectionSecret,
    /// The auth token's fields, or `None` when the password is not a DSQL
    /// token (a plain PostgreSQL password, for example); then only the TTL
    /// triggers a refresh.
    pub token: Option<ParsedToken>,
    /// The secret version this reading came from.
    pub version_id: Option<String>,
    /// When the secret was read.
    pub read_at: Instant,
}

impl SecretSnapshot {
    /// Returns the auth token's fingerprint, safe to log.
    pub fn fingerprint(&self) -> Fingerprint {
        self.secret.password.fingerprint()
    }

    /// Returns how long the auth token stays valid at `now`, or `None` when
    /// the password is not a DSQL token.
    pub fn token_remaining(&self, now: SystemTime) -> Option<Duration> {
        self.token.as_ref().map(|token| token.remaining(now))
    }
}

/// Counters of what a [`SecretSource`] did, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// `GetSecretValue` calls made.
    pub reads: u64,
    /// `GetSecretValue` calls that failed.
    pub read_failures: u64,
    /// Refreshes caused by the database rejecting a token.
    pub rejection_refreshes: u64,
    /// Readings whose auth token differed from the one before.
    pub token_changes: u64,
}

#[derive(Default)]
struct Counters {
    reads: AtomicU64,
    read_failures: AtomicU64,
    rejection_refreshes: AtomicU64,
    token_changes: AtomicU64,
}

/// Why a refresh was requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// The TTL passed or the token nears its expiry.
    Stale,
    /// The database rejected the token of this snapshot.
    Rejected,
}

/// A cached secret shared by all connections of a pool.
pub struct SecretSource {
    client: Client,
    secret_id: String,
    config: SourceConfig,
    cached: RwLock<Option<Arc<SecretSnapshot>>>,
    refresh_lock: tokio::sync::Mutex<()>,
    counters: Counters,
}

impl SecretSource {
    /// Creates a source for `secret_id` (a name or ARN). Nothing is read
    /// until the first call to [`SecretSource::current`].
    pub fn new(client: Client, secret_id: impl Into<String>, config: SourceConfig) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            config,
            cached: RwLock::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
        }
    }

    /// Returns the secret id this source reads.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// Returns the cached snapshot without reading the secret, if any.
    pub fn cached(&self) -> Option<Arc<SecretSnapshot>> {
        match self.cached.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Returns counters of reads and refreshes so far.
    pub fn stats(&self) -> SourceStats {
        SourceStats {
            reads: self.counters.reads.load(Ordering::Relaxed),
            read_failures: self.counters.read_failures.load(Ordering::Relaxed),
            rejection_refreshes: self.counters.rejection_refreshes.load(Ordering::Relaxed),
            token_changes: self.counters.token_changes.load(Ordering::Relaxed),
        }
    }

    /// Returns the current secret, reading it first when nothing is cached,
    /// the TTL has passed, or the auth token nears its expiry.
    pub async fn current(&self) -> Result<Arc<SecretSnapshot>, Error> {
        if let Some(snapshot) = self.cached()
            && !self.is_stale(&snapshot)
        {
            return Ok(snapshot);
        }
        self.refresh(Trigger::Stale, None).await
    }

    /// Reads the secret again after the database rejected the token of
    /// `rejected`. Returns the new snapshot when its token differs, or
    /// `None` when the secret still holds the rejected token (a fresh read
    /// cannot cure the rejection, so the caller must not retry).
    pub async fn refresh_after_rejection(
        &self,
        rejected: &SecretSnapshot,
    ) -> Result<Option<Arc<SecretSnapshot>>, Error> {
        self.counters
            .rejection_refreshes
            .fetch_add(1, Ordering::Relaxed);
        let snapshot = self.refresh(Trigger::Rejected, Some(rejected)).await?;
        if snapshot.secret.password == rejected.secret.password {
            Ok(None)
        } else {
            Ok(Some(snapshot))
        }
    }

    fn is_stale(&self, snapshot: &SecretSnapshot) -> bool {
        let age = snapshot.read_at.elapsed();
        if age >= self.config.ttl {
            return true;
        }
        if age < self.config.min_refresh_interval {
            return false;
        }
        match &snapshot.token {
            Some(token) => {
                let margin = self.config.refresh_before_expiry.min(token.lifetime() / 2);
                token.remaining(SystemTime::now()) <= margin
            }
            None => false,
        }
    }

    /// Reads the secret unless another task did while this one waited for
    /// the refresh lock, so a burst of callers costs one read.
    async fn refresh(
        &self,
        trigger: Trigger,
        rejected: Option<&SecretSnapshot>,
    ) -> Result<Arc<SecretSnapshot>, Error> {
        let _refreshing = self.refresh_lock.lock().await;

        let previous = self.cached();
        if let Some(snapshot) = &previous {
            let recently_read = snapshot.read_at.elapsed() < self.config.min_refresh_interval;
            let usable = match trigger {
                Trigger::Stale => !self.is_stale(snapshot),
                // Another task already replaced the rejected token, or the
                // same token was read moments ago and reading again would
                // return it again.
                Trigger::Rejected => rejected.is_some_and(|rejected| {
                    snapshot.secret.password != rejected.secret.password || recently_read
                }),
            };
            if usable {
                return Ok(snapshot.clone());
            }
        }

        match self.read().await {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                self.log_change(previous.as_deref(), &snapshot, trigger);
                match self.cached.write() {
                    Ok(mut guard) => *guard = Some(snapshot.clone()),
                    Err(poisoned) => *poisoned.into_inner() = Some(snapshot.clone()),
                }
                Ok(snapshot)
            }
            Err(error) => {
                // A failed read keeps serving a cached token that is still
                // valid, so a Secrets Manager outage alone breaks nothing.
                let still_valid = previous.filter(|snapshot| {
                    trigger == Trigger::Stale
                        && snapshot
                            .token_remaining(SystemTime::now())
                            .is_none_or(|remaining| remaining > Duration::ZERO)
                });
                match still_valid {
                    Some(snapshot) => {
                        tracing::warn!(
                            secret = %self.secret_id,
                            error = %error,
                            token = %snapshot.fingerprint(),
                            "secret read failed; keeping the cached token"
                        );
                        Ok(snapshot)
                    }
                    None => Err(error),
                }
            }
        }
    }

    async fn read(&self) -> Result<SecretSnapshot, Error> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|error| {
                self.counters.read_failures.fetch_add(1, Ordering::Relaxed);
                Error::SecretRead {
                    secret_id: self.secret_id.clone(),
                    message: DisplayErrorContext(&error).to_string(),
                }
            })?;

        let text = output.secret_string().ok_or_else(|| Error::InvalidSecret {
            secret_id: self.secret_id.clone(),
            reason: "it has no SecretString; store the connection JSON as a string".to_owned(),
        })?;
        let secret = ConnectionSecret::from_json(&self.secret_id, text)?;
        let token = secret.password.parse().ok();
        Ok(SecretSnapshot {
            secret,
            token,
            version_id: output.version_id().map(str::to_owned),
            read_at: Instant::now(),
        })
    }

    fn log_change(
        &self,
        previous: Option<&SecretSnapshot>,
        next: &SecretSnapshot,
        trigger: Trigger,
    ) {
        let changed =
            previous.is_none_or(|previous| previous.secret.password != next.secret.password);
        if changed {
            self.counters.token_changes.fetch_add(1, Ordering::Relaxed);
        }
        let expires_in = next
            .token_remaining(SystemTime::now())
            .map(|remaining| format!("{}s", remaining.as_secs()));
        tracing::info!(
            secret = %self.secret_id,
            version = next.version_id.as_deref().unwrap_or("-"),
            token = %next.fingerprint(),
            expires_in = expires_in.as_deref().unwrap_or("unknown"),
            trigger = ?trigger,
            changed,
            "secret read"
        );
    }
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSource")
            .field("secret_id", &self.secret_id)
            .field("config", &self.config)
            .field("cached", &self.cached())
            .finish_non_exhaustive()
    }
}
