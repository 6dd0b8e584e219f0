//! Log setup for every subcommand: `tracing` to standard error, filtered by
//! `RUST_LOG` (default `info`, with the AWS SDK's own lines at `error`), as
//! JSON when `DSQL_LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    // The AWS SDK's own warnings (profile files, instance metadata) repeat
    // what the command's error says, so they show only with RUST_LOG.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config=error,aws_smithy_runtime=error"));
    let json = std::env::var("DSQL_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
