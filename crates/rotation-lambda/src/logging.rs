//! The logger: JSON lines when Lambda's log format is JSON, text otherwise;
//! the level from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`.
//!
//! Other crates' events are capped at `debug`: at `trace` the AWS SDK and the
//! HTTP stack print request and response bodies, which hold the secret value.

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

const OWN_TARGETS: [&str; 2] = ["dsql_rotation", "rotation_lambda"];

/// Installs the global logger. Does not install a `log` bridge, so crates
/// that log through `log` (tokio-postgres, rustls) stay silent.
pub fn init() {
    let directives = lambda_log_level()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "info".to_owned());
    let env_filter = EnvFilter::builder().parse_lossy(directives);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .is_ok_and(|format| format.eq_ignore_ascii_case("json"));

    let fmt_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::io::stdout);
    let fmt_layer = if json {
        fmt_layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed()
    } else {
        fmt_layer.boxed()
    };
    let subscriber = Registry::default().with(
        fmt_layer
            .with_filter(filter_fn(is_safe_to_print))
            .with_filter(env_filter),
    );
    // A second logger can only be installed by a test harness; the first one
    // stays in place then, which is fine.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Maps Lambda's log levels (`TRACE` to `FATAL`) to a filter directive.
fn lambda_log_level() -> Option<String> {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok()?;
    let directive = match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    };
    Some(directive.to_owned())
}

fn is_safe_to_print(metadata: &Metadata<'_>) -> bool {
    let own = OWN_TARGETS
        .iter()
        .any(|target| metadata.target().starts_with(target));
    own || *metadata.level() <= Level::DEBUG
}
