//! Starting and stopping the service: build the pool, apply the schema,
//! serve until SIGTERM or Ctrl-C, then drain running requests for at most
//! the shutdown timeout.

use std::sync::Arc;
use std::time::Duration;

use secret_pool::{RetryBudget, SecretPool, SecretSource};

use crate::config::Cli;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::{migrate, routes};

/// Runs the service until SIGTERM or Ctrl-C.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let pool_config = cli.pool_config()?;
    let source_config = cli.source_config()?;
    let settings = cli.settings()?;

    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config);
    let source = Arc::new(SecretSource::new(client, &cli.secret_id, source_config));
    let pool = SecretPool::new(source, pool_config)?;
    let state = Arc::new(AppState {
        pool,
        settings,
        retry_budget: RetryBudget::default(),
        metrics: Metrics::default(),
    });

    migrate::apply(&state)
        .await
        .map_err(|message| anyhow::anyhow!("applying the schema failed: {message}"))?;

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {}: {error}", cli.listen))?;
    let address = listener.local_addr()?;
    let app = routes::router(state.clone());

    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
    let mut server = tokio::spawn(async move {
        let mut stop_receiver = stop_receiver;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_receiver.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(address = %address, secret = %cli.secret_id, "customer API started");
    println!("listening on {address}");

    tokio::select! {
        result = &mut server => {
            result??;
            return Ok(());
        }
        () = shutdown_signal() => {}
    }

    tracing::info!("shutting down; draining running requests");
    let _ = stop_sender.send(true);
    let drain = Duration::from_millis(cli.shutdown_timeout_ms);
    match tokio::time::timeout(drain, &mut server).await {
        Ok(result) => result??,
        Err(_) => {
            tracing::warn!(
                timeout_ms = cli.shutdown_timeout_ms,
                "requests still running at the shutdown timeout"
            );
            server.abort();
        }
    }
    state.pool.close();
    tracing::info!("customer API stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = match tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::terminate(),
    ) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::warn!(error = %error, "cannot listen for SIGTERM; only Ctrl-C stops the service");
            let _ = interrupt.await;
            return;
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}
