//! Request and rotation counters, rendered as Prometheus text on
//! `GET /metrics` so tests and users can count calls.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Counters keyed by metric name and label set.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
}

/// Requests per operation, whatever their outcome.
pub const REQUESTS: &str = "secretsmanager_requests_total";
/// Requests per operation and error type.
pub const ERRORS: &str = "secretsmanager_errors_total";
/// Rotation-function invocations per function and step.
pub const INVOCATIONS: &str = "secretsmanager_rotation_invocations_total";
/// Finished rotations per outcome (`succeeded`, `failed`).
pub const ROTATIONS: &str = "secretsmanager_rotations_total";

impl Metrics {
    /// Adds one to the counter `name` with these labels.
    pub fn increment(&self, name: &'static str, labels: &[(&str, &str)]) {
        let mut rendered = String::new();
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                rendered.push(',');
            }
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = write!(rendered, "{key}=\"{escaped}\"");
        }
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *counters.entry((name, rendered)).or_default() += 1;
    }

    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::new();
        let mut last_name = "";
        for ((name, labels), value) in counters.iter() {
            if *name != last_name {
                let _ = writeln!(text, "# TYPE {name} counter");
                last_name = name;
            }
            let _ = writeln!(text, "{name}{{{labels}}} {value}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let metrics = Metrics::default();
        metrics.increment(REQUESTS, &[("operation", "GetSecretValue")]);
        metrics.increment(REQUESTS, &[("operation", "GetSecretValue")]);
        let text = metrics.render();
        assert!(text.contains("# TYPE secretsmanager_requests_total counter\n"));
        assert!(text.contains("secretsmanager_requests_total{operation=\"GetSecretValue\"} 2\n"));
    }
}
