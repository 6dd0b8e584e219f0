//! State shared by every handler: the pool, the retry settings and budget,
//! the transaction timeout and the metrics.

use std::time::Duration;

use secret_pool::{RetryBudget, RetryPolicy, SecretPool};

use crate::metrics::Metrics;

/// Settings the handlers read.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Maximum time one request's database work may take, retries included.
    pub transaction_timeout: Duration,
    /// Retry limits for OCC conflicts.
    pub retry_policy: RetryPolicy,
}

/// Shared state of the service.
pub struct AppState {
    /// The database pool.
    pub pool: SecretPool,
    /// Handler settings.
    pub settings: Settings,
    /// Retries left for the whole service.
    pub retry_budget: RetryBudget,
    /// Request and database counters.
    pub metrics: Metrics,
}
