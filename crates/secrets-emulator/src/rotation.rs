//! Running rotations: the four steps in order through the rotation
//! function, recording the outcome, and the scheduler that starts
//! rotations when they are due.
//!
//! A failed step stops the rotation and leaves the pending version and its
//! `AWSPENDING` label in place, as the service does. The failure (step,
//! error type, message) is kept in the secret's rotation record. The next
//! attempt is made at the next scheduled time, reusing the pending version.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::error::ApiError;
use crate::lambda::{Function, InvokeError};
use crate::metrics::{INVOCATIONS, Metrics, ROTATIONS};
use crate::model::{AWSCURRENT, AWSPENDING, RotationFailure, Secret};
use crate::ops::{self, RotationJob};
use crate::schedule::Schedule;
use crate::store::Store;

/// The rotation steps, in the order the service calls them.
pub const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// Runs rotations and remembers which are in progress. A rotation asked
/// for while another of the same secret runs waits for it, so no
/// `RotateSecret` the API accepted is ever dropped.
#[derive(Debug)]
pub struct Rotator {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    functions: HashMap<String, Arc<Function>>,
    /// Secrets with a rotation in progress, each with the rotations queued
    /// behind it.
    running: Mutex<HashMap<String, VecDeque<RotationJob>>>,
    allow_short_schedules: bool,
}

impl Rotator {
    /// Creates a rotator over `store` that calls `functions` by name.
    pub fn new(
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        functions: HashMap<String, Arc<Function>>,
        allow_short_schedules: bool,
    ) -> Rotator {
        Rotator {
            store,
            metrics,
            functions,
            running: Mutex::new(HashMap::new()),
            allow_short_schedules,
        }
    }

    /// Returns whether a rotation of the secret with this ARN is in progress.
    pub fn is_running(&self, secret_arn: &str) -> bool {
        self.running_set().contains_key(secret_arn)
    }

    fn running_set(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<RotationJob>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `job` in the background, or queues it behind the rotation of
    /// the same secret that is in progress.
    pub fn spawn(self: &Arc<Self>, job: RotationJob) {
        {
            let mut running = self.running_set();
            if let Some(queue) = running.get_mut(&job.secret_arn) {
                tracing::info!(
                    secret = %job.secret_arn,
                    version = %job.version_id,
                    "rotation queued behind the one in progress"
                );
                queue.push_back(job);
                return;
            }
            running.insert(job.secret_arn.clone(), VecDeque::new());
        }
        let rotator = Arc::clone(self);
        tokio::spawn(async move {
            let arn = job.secret_arn.clone();
            let mut next = Some(job);
            while let Some(job) = next {
                rotator.run(job).await;
                let mut running = rotator.running_set();
                next = running.get_mut(&arn).and_then(VecDeque::pop_front);
                if next.is_none() {
                    running.remove(&arn);
                }
            }
        });
    }

    async fn run(&self, job: RotationJob) {
        let Some(function) = self.functions.get(&job.function_name).cloned() else {
            let error = InvokeError {
                error_type: String::from("Emulator.FunctionNotConfigured"),
                message: format!(
                    "no rotation function named {} is configured",
                    job.function_name
                ),
            };
            return self.finish(job, Err((STEPS[0], error))).await;
        };

        for step in STEPS {
            let event = json!({
                "Step": step,
                "SecretId": job.secret_arn,
                "ClientRequestToken": job.version_id,
            });
            self.metrics
                .increment(INVOCATIONS, &[("function", &function.name), ("step", step)]);
            let result = function.invoke(event.to_string().into_bytes()).await;
            tracing::info!(
                secret = %job.secret_arn,
                version = %job.version_id,
                step,
                outcome = if result.is_ok() { "succeeded" } else { "failed" },
                "rotation step finished"
            );
            if let Err(error) = result {
                return self.finish(job, Err((step, error))).await;
            }
        }
        self.finish(job, Ok(())).await;
    }

    /// Records the outcome. A rotation whose steps all succeeded but that
    /// left `AWSCURRENT` elsewhere failed at `finishSecret`.
    async fn finish(&self, job: RotationJob, outcome: Result<(), (&'static str, InvokeError)>) {
        let store = Arc::clone(&self.store);
        let allow_short = self.allow_short_schedules;
        let job_for_write = job.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            store.write(|state| {
                let secret = state.secret_mut(&job_for_write.secret_arn)?;
                Ok(record_outcome(secret, &job_for_write, outcome, allow_short))
            })
        })
        .await;

        let succeeded = match recorded {
            Ok(Ok(succeeded)) => succeeded,
            Ok(Err(error)) => {
                tracing::warn!(secret = %job.secret_arn, %error, "rotation outcome not recorded");
                false
            }
            Err(error) => {
                tracing::error!(secret = %job.secret_arn, %error, "rotation outcome not recorded");
                false
            }
        };
        let outcome = if succeeded { "succeeded" } else { "failed" };
        self.metrics.increment(ROTATIONS, &[("outcome", outcome)]);
        tracing::info!(secret = %job.secret_arn, version = %job.version_id, outcome, "rotation finished");
    }

    /// Starts every rotation that is due and purges secrets whose recovery
    /// window has passed. Called by the scheduler on each tick.
    pub fn start_due_rotations(self: &Arc<Self>) -> Result<(), ApiError> {
        let function_names: Vec<String> = self.functions.keys().cloned().collect();
        let running: HashSet<String> = self.running_set().keys().cloned().collect();
        let now = ops::now();

        let jobs = self.store.write(|state| {
            for name in ops::purge_expired(state, now) {
                tracing::info!(secret = %name, "secret deleted at the end of its recovery window");
            }
            let mut jobs = Vec::new();
            for secret in &mut state.secrets {
                let due = secret.rotation.enabled
                    && !secret.is_deleted()
                    && !running.contains(&secret.arn)
                    && secret
                        .rotation
                        .next_rotation_date
                        .is_some_and(|at| at <= now);
                if !due {
                    continue;
                }
                match ops::start_scheduled_rotation(secret, &function_names) {
                    Ok(job) => jobs.push(job),
                    Err(error) => {
                        secret.rotation.last_failure = Some(RotationFailure {
                            step: STEPS[0].to_owned(),
                            version_id: String::new(),
                            error_type: error.kind.to_owned(),
                            error_message: error.message,
                            date: now,
                        });
                        schedule_next(secret, now, self.allow_short_schedules);
                    }
                }
            }
            Ok(jobs)
        })?;
        for job in jobs {
            tracing::info!(secret = %job.secret_arn, version = %job.version_id, "scheduled rotation started");
            self.spawn(job);
        }
        Ok(())
    }

    /// Runs [`Rotator::start_due_rotations`] every `tick` until the task is
    /// dropped.
    pub async fn run_scheduler(self: Arc<Self>, tick: Duration) {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let rotator = Arc::clone(&self);
            let result = tokio::task::spawn_blocking(move || rotator.start_due_rotations()).await;
            if let Ok(Err(error)) = result {
                tracing::warn!(%error, "scheduler tick failed");
            }
        }
    }
}

fn record_outcome(
    secret: &mut Secret,
    job: &RotationJob,
    outcome: Result<(), (&'static str, InvokeError)>,
    allow_short: bool,
) -> bool {
    let now = ops::now();
    let finished = secret
        .version(&job.version_id)
        .is_some_and(|v| v.has_stage(AWSCURRENT));
    let failure = match outcome {
        Ok(()) if finished => None,
        Ok(()) => Some((
            "finishSecret",
            InvokeError {
                error_type: String::from("Emulator.RotationNotFinished"),
                message: format!(
                    "every step succeeded but {AWSCURRENT} is not on the pending version {}",
                    job.version_id
                ),
            },
        )),
        Err(failure) => Some(failure),
    };

    match failure {
        None => {
            // The service removes a leftover AWSPENDING from the new current
            // version after a successful rotation.
            if let Some(version) = secret.version_mut(&job.version_id) {
                version.stages.retain(|s| s != AWSPENDING);
            }
            secret.rotation.last_rotated_date = Some(now);
            secret.rotation.last_failure = None;
        }
        Some((step, error)) => {
            tracing::warn!(
                secret = %job.secret_arn,
                version = %job.version_id,
                step,
                error_type = %error.error_type,
                "rotation failed"
            );
            secret.rotation.last_failure = Some(RotationFailure {
                step: step.to_owned(),
                version_id: job.version_id.clone(),
                error_type: error.error_type,
                error_message: error.message,
                date: now,
            });
        }
    }
    schedule_next(secret, now, allow_short);
    secret.last_changed_date = now;
    secret.rotation.last_failure.is_none()
}

fn schedule_next(secret: &mut Secret, now: f64, allow_short: bool) {
    let schedule = secret
        .rotation
        .rules
        .as_ref()
        .and_then(|rules| Schedule::from_rules(rules, allow_short).ok());
    secret.rotation.next_rotation_date = match (secret.rotation.enabled, schedule) {
        (true, Some(schedule)) => Some(schedule.next_after(now)),
        _ => None,
    };
}
