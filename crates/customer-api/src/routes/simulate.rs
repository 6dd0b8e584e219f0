//! `/api/v1/customers/simulate/*`: endpoints that show how the service
//! behaves under a real OCC conflict and under a transaction that cannot
//! finish in time. Both update one row of `simulation_counters`. A second
//! connection updates the same row while the first transaction is open,
//! which PostgreSQL reports as SQLSTATE `40001` and DSQL as `OC000`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use secret_pool::{RetryBudget, RetryPolicy, retry};
use serde::Serialize;
use tokio_postgres::IsolationLevel;

use crate::db::{Checkout, DbError, retry_reason, transact};
use crate::error::ApiError;
use crate::state::AppState;

/// Outcome of a simulation.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulationReport {
    /// Transaction attempts, the successful one included.
    pub attempts: u32,
    /// Attempts that ended in an OCC conflict.
    pub conflicts: u32,
    /// The counter's value after the successful attempt.
    pub counter: i64,
}

/// `GET /api/v1/customers/simulate/locking`: the first attempt meets a real
/// conflict, the retry succeeds.
pub async fn locking(
    State(state): State<Arc<AppState>>,
) -> Result<Json<SimulationReport>, ApiError> {
    let (attempts, counter) = transact(&state, |state, attempt| async move {
        let counter = increment_counter(&state, attempt == 1).await?;
        Ok((attempt, counter))
    })
    .await?;
    Ok(Json(SimulationReport {
        attempts,
        conflicts: attempts - 1,
        counter,
    }))
}

/// `GET /api/v1/customers/simulate/timeout`: every attempt meets a real
/// conflict and is retried with backoff until the transaction timeout ends
/// the request with 504. It has its own retry budget, so it cannot drain
/// the one real requests share.
pub async fn timeout(
    State(state): State<Arc<AppState>>,
) -> Result<Json<SimulationReport>, ApiError> {
    let policy = RetryPolicy {
        max_attempts: u32::MAX,
        max_elapsed: state.settings.transaction_timeout * 2,
        ..state.settings.retry_policy.clone()
    };
    let budget = RetryBudget::new(u32::MAX, 0.0);
    let retried = retry(&policy, &budget, retry_reason, |_| {
        let state = state.clone();
        async move { increment_counter(&state, true).await }
    });
    match tokio::time::timeout(state.settings.transaction_timeout, retried).await {
        Ok(Ok(counter)) => Ok(Json(SimulationReport {
            attempts: 1,
            conflicts: 0,
            counter,
        })),
        Ok(Err(error)) => {
            tracing::warn!(error = ?retry_reason(&error.into_inner()), "simulated transaction failed");
            Err(ApiError::unavailable(
                "the simulated transaction failed; retry later",
            ))
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = state.settings.transaction_timeout.as_millis() as u64,
                "transaction timed out"
            );
            Err(ApiError::timeout())
        }
    }
}

/// Increments the counter in one transaction; with `interfere`, a second
/// connection updates the same row first, so the transaction conflicts.
async fn increment_counter(state: &Arc<AppState>, interfere: bool) -> Result<i64, DbError> {
    let mut connection = Checkout::take(state).await?;
    let result = async {
        let transaction = connection
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
            .await?;
        let select = transaction
            .prepare_cached("SELECT value FROM simulation_counters WHERE id = 1")
            .await?;
        let value: i64 = transaction.query_one(&select, &[]).await?.get(0);

        if interfere {
            let other = Checkout::take(state).await?;
            let outcome = other
                .execute(
                    "UPDATE simulation_counters SET value = value + 1 WHERE id = 1",
                    &[],
                )
                .await;
            other.finish();
            outcome?;
        }

        let update = transaction
            .prepare_cached("UPDATE simulation_counters SET value = $1 WHERE id = 1")
            .await?;
        transaction.execute(&update, &[&(value + 1)]).await?;
        transaction.commit().await?;
        Ok(value + 1)
    }
    .await;
    connection.finish();
    result
}
