//! Counters for `GET /metrics`, rendered in the Prometheus text format:
//! requests by route and status with a latency histogram, OCC retries, and
//! the pool's and the secret cache's own counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secret_pool::SecretPool;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct RouteStats {
    count: u64,
    bucket_counts: [u64; BUCKETS.len()],
    seconds_total: f64,
}

/// Service metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), RouteStats>>,
    retries: AtomicU64,
}

impl Metrics {
    /// Records one finished request; `route` is the route template, so ids
    /// in paths do not create new series.
    pub fn record_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let stats = requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        let seconds = latency.as_secs_f64();
        stats.count += 1;
        stats.seconds_total += seconds;
        for (bound, count) in BUCKETS.iter().zip(stats.bucket_counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
    }

    /// Records one transaction retry.
    pub fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self, pool: &SecretPool) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);

        let pool_stats = pool.stats();
        let source_stats = pool.source().stats();
        let counters = [
            (
                "transaction_retries_total",
                "OCC conflict and closed-connection retries.",
                self.retries.load(Ordering::Relaxed),
            ),
            (
                "db_connections_opened_total",
                "Database connections opened.",
                pool_stats.connections_opened,
            ),
            (
                "db_connect_failures_total",
                "Failed connection attempts.",
                pool_stats.connect_failures,
            ),
            (
                "db_credential_rejections_total",
                "Connection attempts rejected for their auth token.",
                pool_stats.credential_rejections,
            ),
            (
                "db_connections_retired_total",
                "Connections closed at their maximum lifetime.",
                pool_stats.lifetime_retirements,
            ),
            (
                "secret_reads_total",
                "GetSecretValue calls.",
                source_stats.reads,
            ),
            (
                "secret_read_failures_total",
                "Failed GetSecretValue calls.",
                source_stats.read_failures,
            ),
            (
                "secret_token_changes_total",
                "Secret reads that returned a new auth token.",
                source_stats.token_changes,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let gauges = [
            (
                "db_pool_connections",
                "Open database connections.",
                pool_stats.size,
            ),
            (
                "db_pool_idle_connections",
                "Open connections not in use.",
                pool_stats.idle,
            ),
            (
                "db_pool_waiting_requests",
                "Requests waiting for a connection.",
                pool_stats.waiting,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        if let Some(remaining) = pool
            .source()
            .cached()
            .and_then(|snapshot| snapshot.token_remaining(std::time::SystemTime::now()))
        {
            let name = "auth_token_remaining_seconds";
            let _ = writeln!(
                out,
                "# HELP {name} Life left in the cached auth token.\n# TYPE {name} gauge\n{name} {}",
                remaining.as_secs()
            );
        }
        out
    }

    fn render_requests(&self, out: &mut String) {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let name = "http_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} HTTP requests by route and status.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for ((method, route, status), stats) in requests.iter() {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{status}\"",
                escape(method),
                escape(route)
            );
            for (bound, count) in BUCKETS.iter().zip(stats.bucket_counts) {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", stats.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", stats.seconds_total);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", stats.count);
        }
    }
}

/// Escapes a label value as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
