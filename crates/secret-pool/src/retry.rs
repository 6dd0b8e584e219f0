//! Retrying whole transactions after OCC conflicts, with exponential backoff,
//! full jitter, caps on attempts and total time, and a retry budget shared by
//! all callers so that a conflict storm does not multiply the load.
//!
//! DSQL reports every OCC conflict as SQLSTATE `40001`, with `OC000` (data)
//! or `OC001` (schema) in the message; PostgreSQL uses `40001` for
//! serialization failures and `40P01` for deadlocks. The helper retries the
//! caller's closure; it is the closure's job to run the transaction from
//! `BEGIN` to `COMMIT` each time.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio_postgres::error::SqlState;

/// What kind of conflict an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// DSQL `OC000`: another transaction changed the same rows.
    Data,
    /// DSQL `OC001`: the schema changed since the transaction started.
    Schema,
    /// PostgreSQL serialization failure (`40001` without a DSQL code).
    Serialization,
    /// PostgreSQL deadlock (`40P01`).
    Deadlock,
}

impl Conflict {
    /// Returns a short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Data => "OC000",
            Self::Schema => "OC001",
            Self::Serialization => "40001",
            Self::Deadlock => "40P01",
        }
    }
}

/// Returns the conflict `error` reports, or `None` if it is not one.
pub fn occ_conflict(error: &tokio_postgres::Error) -> Option<Conflict> {
    let db_error = error.as_db_error()?;
    if *db_error.code() == SqlState::T_R_DEADLOCK_DETECTED {
        return Some(Conflict::Deadlock);
    }
    if *db_error.code() != SqlState::T_R_SERIALIZATION_FAILURE {
        return None;
    }
    let message = db_error.message();
    if message.contains("OC001") {
        Some(Conflict::Schema)
    } else if message.contains("OC000") {
        Some(Conflict::Data)
    } else {
        Some(Conflict::Serialization)
    }
}

/// Limits of one retried operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry; it doubles per retry.
    pub initial_backoff: Duration,
    /// The largest backoff ceiling.
    pub max_backoff: Duration,
    /// No retry starts once this much time has passed since the first
    /// attempt began.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(500),
            max_elapsed: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Returns the backoff before retry number `retry` (1 for the first
    /// retry): a uniformly random delay up to the exponential ceiling.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(20);
        let ceiling = self
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.max_backoff);
        let ceiling_micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=ceiling_micros))
    }
}

/// A token bucket of retries shared by every caller of a service: each retry
/// takes one token and each first-attempt success returns a fraction, so
/// retries stay a bounded share of the traffic.
#[derive(Debug)]
pub struct RetryBudget {
    tokens: Mutex<f64>,
    capacity: f64,
    refill_per_success: f64,
}

impl RetryBudget {
    /// Creates a full budget of `capacity` retries, refilled by
    /// `refill_per_success` for each operation that succeeds.
    pub fn new(capacity: u32, refill_per_success: f64) -> Self {
        Self {
            tokens: Mutex::new(f64::from(capacity)),
            capacity: f64::from(capacity),
            refill_per_success,
        }
    }

    /// Takes one retry from the budget, or returns false when it is empty.
    pub fn try_withdraw(&self) -> bool {
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Returns part of a retry to the budget after a success.
    pub fn deposit(&self) {
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *tokens = (*tokens + self.refill_per_success).min(self.capacity);
    }

    /// Returns the retries left, rounded down.
    pub fn remaining(&self) -> u32 {
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The value lies in 0..=capacity, which came from a u32.
        tokens.floor() as u32
    }
}

impl Default for RetryBudget {
    /// 100 retries, refilled by one for every ten successes.
    fn default() -> Self {
        Self::new(100, 0.1)
    }
}

/// Why the retried operation finally failed.
#[derive(Debug)]
pub enum RetryError<E> {
    /// The error was not retryable.
    Permanent(E),
    /// Retryable, but the attempt or time cap was reached.
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: E,
    },
    /// Retryable, but the shared retry budget was empty.
    BudgetExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: E,
    },
}

impl<E> RetryError<E> {
    /// Returns the last attempt's error.
    pub fn into_inner(self) -> E {
        match self {
            Self::Permanent(error)
            | Self::Exhausted { last: error, .. }
            | Self::BudgetExhausted { last: error, .. } => error,
        }
    }
}

/// Runs `operation` until it succeeds, fails with an error `retryable` does
/// not accept, or a cap is reached. The closure receives the attempt number,
/// starting at 1. Every retry is logged with its reason and delay.
pub async fn retry<T, E, Op, Fut>(
    policy: &RetryPolicy,
    budget: &RetryBudget,
    retryable: impl Fn(&E) -> Option<&'static str>,
    mut operation: Op,
) -> Result<T, RetryError<E>>
where
    Op: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut attempt = 1;
    loop {
        let error = match operation(attempt).await {
            Ok(value) => {
                if attempt == 1 {
                    budget.deposit();
                }
                return Ok(value);
            }
            Err(error) => error,
        };
        let Some(reason) = retryable(&error) else {
            return Err(RetryError::Permanent(error));
        };

        let delay = policy.backoff(attempt);
        if attempt >= policy.max_attempts || started.elapsed() + delay >= policy.max_elapsed {
            tracing::warn!(
                reason,
                attempts = attempt,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "transaction retries exhausted"
            );
            return Err(RetryError::Exhausted {
                attempts: attempt,
                last: error,
            });
        }
        if !budget.try_withdraw() {
            tracing::warn!(
                reason,
                attempts = attempt,
                "retry budget exhausted; not retrying"
            );
            return Err(RetryError::BudgetExhausted {
                attempts: attempt,
                last: error,
            });
        }

        tracing::info!(
            reason,
            attempt = %attempt_label(attempt + 1, policy.max_attempts),
            delay_ms = delay.as_millis() as u64,
            "retrying transaction"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// Formats an attempt number and its cap for logs, such as `2/5`; a cap of
/// `u32::MAX` means there is none and shows as `2/unlimited`.
fn attempt_label(attempt: u32, max_attempts: u32) -> String {
    if max_attempts == u32::MAX {
        format!("{attempt}/unlimited")
    } else {
        format!("{attempt}/{max_attempts}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_label_shows_missing_cap_as_unlimited() {
        assert_eq!(attempt_label(2, 5), "2/5");
        assert_eq!(attempt_label(2, u32::MAX), "2/unlimited");
    }

    fn fast_policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_elapsed: Duration::from_secs(60),
        }
    }

    fn always_retryable(_: &&str) -> Option<&'static str> {
        Some("test")
    }

    #[tokio::test]
    async fn retried_operation_succeeds_on_third_attempt() {
        let budget = RetryBudget::default();
        let result = retry(
            &fast_policy(5),
            &budget,
            always_retryable,
            |attempt| async move {
                if attempt < 3 {
                    Err("conflict")
                } else {
                    Ok(attempt)
                }
            },
        )
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(budget.remaining(), 98);
    }

    #[tokio::test]
    async fn attempts_stop_at_the_cap() {
        let budget = RetryBudget::default();
        let result: Result<(), _> = retry(&fast_policy(3), &budget, always_retryable, |_| async {
            Err("conflict")
        })
        .await;
        assert!(matches!(
            result,
            Err(RetryError::Exhausted { attempts: 3, .. })
        ));
    }

    #[tokio::test]
    async fn permanent_error_is_not_retried() {
        let budget = RetryBudget::default();
        let mut calls = 0;
        let result: Result<(), _> = retry(
            &fast_policy(5),
            &budget,
            |_| None,
            |_| {
                calls += 1;
                async { Err("bad input") }
            },
        )
        .await;
        assert!(matches!(result, Err(RetryError::Permanent("bad input"))));
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn empty_budget_stops_retries() {
        let budget = RetryBudget::new(1, 0.0);
        let result: Result<(), _> = retry(&fast_policy(5), &budget, always_retryable, |_| async {
            Err("conflict")
        })
        .await;
        assert!(matches!(
            result,
            Err(RetryError::BudgetExhausted { attempts: 2, .. })
        ));
        assert_eq!(budget.remaining(), 0);
    }

    #[tokio::test]
    async fn time_cap_stops_retries() {
        let policy = RetryPolicy {
            max_elapsed: Duration::ZERO,
            ..fast_policy(5)
        };
        let result: Result<(), _> = retry(
            &policy,
            &RetryBudget::default(),
            always_retryable,
            |_| async { Err("conflict") },
        )
        .await;
        assert!(matches!(
            result,
            Err(RetryError::Exhausted { attempts: 1, .. })
        ));
    }

    #[test]
    fn backoff_stays_under_its_ceiling() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..RetryPolicy::default()
        };
        for retry in 1..30 {
            assert!(policy.backoff(retry) <= Duration::from_millis(50));
        }
        for _ in 0..100 {
            assert!(policy.backoff(1) <= Duration::from_millis(10));
        }
    }

    #[test]
    fn success_refills_budget_up_to_capacity() {
        let budget = RetryBudget::new(2, 0.5);
        assert!(budget.try_withdraw());
        budget.deposit();
        budget.deposit();
        budget.deposit();
        assert_eq!(budget.remaining(), 2);
    }
}
