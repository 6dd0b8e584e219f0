//! Running one unit of database work: a pooled connection that is discarded
//! if the work is abandoned mid-statement, OCC-conflict retries with the
//! shared budget, the transaction timeout, and the mapping of database
//! failures to API errors. Logs name SQLSTATEs and kinds, never SQL text,
//! driver messages or tokens.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use secret_pool::{ClientWrapper, Connection, RetryError, discard, occ_conflict, retry};
use tokio_postgres::error::SqlState;

use crate::error::ApiError;
use crate::state::AppState;

/// A failure inside a unit of work.
#[derive(Debug)]
pub enum DbError {
    /// No connection could be had.
    Pool(secret_pool::Error),
    /// A statement failed.
    Postgres(tokio_postgres::Error),
    /// The work decided the request fails (not found, for example).
    Api(ApiError),
}

impl From<secret_pool::Error> for DbError {
    fn from(error: secret_pool::Error) -> Self {
        Self::Pool(error)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Postgres(error)
    }
}

impl From<ApiError> for DbError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

/// Returns why `error` is worth retrying with a new transaction, if it is:
/// an OCC conflict, or a connection the server closed (DSQL closes
/// connections at their maximum age).
pub fn retry_reason(error: &DbError) -> Option<&'static str> {
    match error {
        DbError::Postgres(error) => match occ_conflict(error) {
            Some(conflict) => Some(conflict.as_str()),
            None if error.is_closed() => Some("connection closed"),
            None => None,
        },
        DbError::Pool(_) | DbError::Api(_) => None,
    }
}

/// A pooled connection that is closed instead of returned to the pool when
/// dropped before [`Checkout::finish`], that is when the work using it was
/// cancelled by the transaction timeout and a statement may still run.
pub struct Checkout {
    connection: Option<Connection>,
}

impl Checkout {
    /// Takes a connection from the pool.
    pub async fn take(state: &AppState) -> Result<Self, DbError> {
        let connection = state.pool.get().await?;
        Ok(Self {
            connection: Some(connection),
        })
    }

    /// Returns the connection to the pool; call it once the work ended,
    /// whether it succeeded or not.
    pub fn finish(mut self) {
        drop(self.connection.take());
    }
}

impl Deref for Checkout {
    type Target = ClientWrapper;

    fn deref(&self) -> &ClientWrapper {
        // The connection is only taken out by `finish` and `drop`.
        self.connection
            .as_ref()
            .expect("checkout holds a connection")
    }
}

impl DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut ClientWrapper {
        self.connection
            .as_mut()
            .expect("checkout holds a connection")
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            tracing::warn!("closing a database connection whose work was abandoned");
            discard(connection);
        }
    }
}

/// Runs `work` on a pooled connection, retrying it on OCC conflicts, all
/// within the transaction timeout. `work` must run one whole transaction
/// each time it is called; it receives the attempt number, from 1.
pub async fn transact<T, Work, Fut>(state: &Arc<AppState>, mut work: Work) -> Result<T, ApiError>
where
    Work: FnMut(Arc<AppState>, u32) -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let retried = retry(
        &state.settings.retry_policy,
        &state.retry_budget,
        retry_reason,
        |attempt| {
            if attempt > 1 {
                state.metrics.record_retry();
            }
            work(state.clone(), attempt)
        },
    );
    match tokio::time::timeout(state.settings.transaction_timeout, retried).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(to_api_error(error)),
        Err(_) => {
            tracing::warn!(
                timeout_ms = state.settings.transaction_timeout.as_millis() as u64,
                "transaction timed out"
            );
            Err(ApiError::timeout())
        }
    }
}

fn to_api_error(error: RetryError<DbError>) -> ApiError {
    let exhausted = !matches!(error, RetryError::Permanent(_));
    match error.into_inner() {
        DbError::Api(error) => error,
        DbError::Pool(error) => {
            let (event, message) = pool_failure(&error);
            tracing::warn!(error = %error, "{event}");
            ApiError::unavailable(message)
        }
        DbError::Postgres(error) if exhausted => {
            tracing::warn!(kind = describe(&error), "transaction failed after retries");
            ApiError::unavailable("the database is busy; retry later")
        }
        DbError::Postgres(error) => postgres_error(&error),
    }
}

/// Returns the log event and the client message for a failure to get a
/// connection. Every connection being busy is not an outage.
fn pool_failure(error: &secret_pool::Error) -> (&'static str, &'static str) {
    match error {
        secret_pool::Error::AcquireTimeout => (
            "connection pool exhausted",
            "the database is busy; retry later",
        ),
        _ => (
            "database unavailable",
            "the database is unavailable; retry later",
        ),
    }
}

/// Maps a statement failure that was not retried to an API error.
pub fn postgres_error(error: &tokio_postgres::Error) -> ApiError {
    if let Some(db_error) = error.as_db_error()
        && *db_error.code() == SqlState::UNIQUE_VIOLATION
        && db_error
            .constraint()
            .is_some_and(|constraint| constraint.contains("email"))
    {
        return ApiError::duplicate_email();
    }
    if error.is_closed() || error.as_db_error().is_none() {
        tracing::warn!(kind = describe(error), "database connection failed");
        return ApiError::unavailable("the database is unavailable; retry later");
    }
    tracing::error!(kind = describe(error), "database statement failed");
    ApiError::internal()
}

/// Returns a description of `error` safe to log: its SQLSTATE or kind,
/// without the server's message, which may quote data or SQL.
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db_error) => format!("SQLSTATE {}", db_error.code().code()),
        None if error.is_closed() => "connection closed".to_owned(),
        None => "connection or protocol error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_exhaustion_is_not_logged_as_outage() {
        let (event, message) = pool_failure(&secret_pool::Error::AcquireTimeout);
        assert_eq!(event, "connection pool exhausted");
        assert_eq!(message, "the database is busy; retry later");
        let closed = pool_failure(&secret_pool::Error::PoolClosed);
        assert_eq!(closed.0, "database unavailable");
    }
}
