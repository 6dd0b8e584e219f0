//! The schema, applied at start. Every step is idempotent (`IF NOT EXISTS`,
//! `ON CONFLICT DO NOTHING`) and never drops data, and each runs in its own
//! transaction because DSQL allows one DDL statement per transaction and no
//! mix of DDL and data changes. There are no foreign keys (DSQL has none)
//! and indexes are built with `CREATE INDEX ASYNC`, DSQL's only form, so the
//! schema is applied through DSQL or the local gateway, not a bare
//! PostgreSQL.

use std::sync::Arc;

use crate::db::{DbError, describe, retry_reason};
use crate::state::AppState;

/// The migration steps, in order.
pub const STEPS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS customers (\
        id uuid PRIMARY KEY, \
        first_name varchar(50) NOT NULL, \
        last_name varchar(50), \
        email varchar(254) NOT NULL, \
        is_active boolean NOT NULL DEFAULT true, \
        created_at timestamptz NOT NULL DEFAULT now(), \
        updated_at timestamptz NOT NULL DEFAULT now(), \
        CONSTRAINT customers_email_key UNIQUE (email))",
    "CREATE TABLE IF NOT EXISTS addresses (\
        id uuid PRIMARY KEY, \
        customer_id uuid NOT NULL, \
        street varchar(200) NOT NULL, \
        city varchar(100) NOT NULL, \
        state varchar(100) NOT NULL, \
        postal_code varchar(20) NOT NULL, \
        country varchar(100) NOT NULL, \
        is_default boolean NOT NULL DEFAULT false, \
        sort_order smallint NOT NULL DEFAULT 0)",
    "CREATE INDEX ASYNC IF NOT EXISTS addresses_customer_id_idx ON addresses (customer_id)",
    "CREATE INDEX ASYNC IF NOT EXISTS customers_first_name_idx ON customers (first_name)",
    "CREATE INDEX ASYNC IF NOT EXISTS customers_last_name_idx ON customers (last_name)",
    "CREATE INDEX ASYNC IF NOT EXISTS addresses_city_idx ON addresses (city)",
    "CREATE INDEX ASYNC IF NOT EXISTS customers_created_at_idx ON customers (created_at, id)",
    "CREATE TABLE IF NOT EXISTS simulation_counters (id integer PRIMARY KEY, value bigint NOT NULL)",
    "INSERT INTO simulation_counters (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
];

/// Applies every step, retrying OCC conflicts (another instance migrating
/// at the same time causes `OC001`). Returns the number of the failed step
/// and a description without SQL text on failure.
pub async fn apply(state: &Arc<AppState>) -> Result<(), String> {
    for (index, step) in STEPS.iter().enumerate() {
        let number = index + 1;
        let result = secret_pool::retry(
            &state.settings.retry_policy,
            &state.retry_budget,
            retry_reason,
            |_| async move {
                let client = state.pool.get().await?;
                client.batch_execute(step).await.map_err(DbError::from)
            },
        )
        .await;
        match result.map_err(secret_pool::RetryError::into_inner) {
            Ok(()) => tracing::debug!(step = number, "migration step applied"),
            Err(DbError::Postgres(error)) => {
                return Err(format!(
                    "migration step {number} of {} failed with {}",
                    STEPS.len(),
                    describe(&error)
                ));
            }
            Err(DbError::Pool(error)) => {
                return Err(format!(
                    "migration step {number} could not connect: {error}"
                ));
            }
            Err(DbError::Api(error)) => return Err(error.message),
        }
    }
    tracing::info!(steps = STEPS.len(), "schema is up to date");
    Ok(())
}
