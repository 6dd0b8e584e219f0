//! `/health` (liveness), `/health/ready` (readiness: `SELECT 1` succeeds and
//! the auth token, refreshed first when stale, has not expired) and
//! `/metrics`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::Checkout;
use crate::state::AppState;

/// How long the readiness check waits for `SELECT 1`, and separately for
/// a refresh of the secret.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The readiness report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `UP` or `DOWN`.
    pub status: &'static str,
    /// `UP` when `SELECT 1` succeeded in time.
    pub database: &'static str,
    /// Seconds of life left in the current auth token; absent when the
    /// password is not a DSQL token.
    pub token_expires_in_seconds: Option<u64>,
}

/// `GET /health`: the process is alive.
pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "UP" }))
}

/// `GET /health/ready`: 200 when requests can be served, else 503.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let check = async {
        let connection = Checkout::take(&state).await.ok()?;
        let result = connection.simple_query("SELECT 1").await;
        connection.finish();
        result.ok()
    };
    let database_up = matches!(
        tokio::time::timeout(READY_CHECK_TIMEOUT, check).await,
        Ok(Some(_))
    );

    // A stale cache is refreshed through the source's collapsing refresh,
    // the same one the pool uses, so probes read only when the token nears
    // expiry or the TTL passed. A failed or slow read leaves the cached
    // token to judge, and an expired one makes the service not ready.
    // NOTE: a failed read does not reset the minimum refresh interval, so
    // while Secrets Manager fails and the token is stale, each probe reads.
    let source = state.pool.source();
    let snapshot = match tokio::time::timeout(READY_CHECK_TIMEOUT, source.current()).await {
        Ok(Ok(snapshot)) => Some(snapshot),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness check could not refresh the secret");
            source.cached()
        }
        Err(_) => {
            tracing::warn!("readiness check timed out refreshing the secret");
            source.cached()
        }
    };
    let token_left = snapshot.and_then(|snapshot| snapshot.token_remaining(SystemTime::now()));
    let token_valid = token_left.is_none_or(|left| !left.is_zero());

    let ready = database_up && token_valid;
    let report = Readiness {
        status: if ready { "UP" } else { "DOWN" },
        database: if database_up { "UP" } else { "DOWN" },
        token_expires_in_seconds: token_left.map(|left| left.as_secs()),
    };
    if ready {
        return Json(report).into_response();
    }
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(report)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let body = state.metrics.render(&state.pool);
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}
