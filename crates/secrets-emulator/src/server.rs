//! The HTTP front: the Secrets Manager JSON protocol on `POST /`
//! (`X-Amz-Target: secretsmanager.<Operation>`), Prometheus counters on
//! `GET /metrics`, and the emulator's own rotation status on
//! `GET /_emulator/secrets/{secret-id}/rotation`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::auth::Verifier;
use crate::error::ApiError;
use crate::metrics::{ERRORS, Metrics, REQUESTS};
use crate::ops::{self, Context};
use crate::rotation::Rotator;
use crate::store::Store;

const TARGET_PREFIX: &str = "secretsmanager.";
/// The largest request body accepted; a 64 KiB secret value fits with room.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every request handler shares.
#[derive(Debug)]
pub struct Shared {
    /// The durable state.
    pub store: Arc<Store>,
    /// The request counters.
    pub metrics: Arc<Metrics>,
    /// Signature checks.
    pub verifier: Verifier,
    /// The rotation runner.
    pub rotator: Arc<Rotator>,
    /// The region in ARNs.
    pub region: String,
    /// The account id in ARNs.
    pub account_id: String,
    /// Whether schedules under four hours are accepted.
    pub allow_short_schedules: bool,
    /// Names of the configured rotation functions.
    pub function_names: Vec<String>,
}

/// The emulator's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", post(api))
        .route("/metrics", get(metrics))
        .route("/_emulator/secrets/{*rest}", get(rotation_status))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let operation = target
        .strip_prefix(TARGET_PREFIX)
        .filter(|op| ops::is_known(op))
        .unwrap_or("unknown")
        .to_owned();
    shared
        .metrics
        .increment(REQUESTS, &[("operation", &operation)]);
    let request_id = uuid::Uuid::new_v4().to_string();

    let result = handle(&shared, &method, &uri, &headers, body, target).await;
    let mut response = match result {
        Ok(body) => (
            [("content-type", "application/x-amz-json-1.1")],
            body.to_string(),
        )
            .into_response(),
        Err(error) => {
            shared
                .metrics
                .increment(ERRORS, &[("operation", &operation), ("type", error.kind)]);
            tracing::info!(%operation, error_type = error.kind, %request_id, "request refused");
            error.into_response()
        }
    };
    if let Ok(value) = request_id.parse() {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

async fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    target: &str,
) -> Result<serde_json::Value, ApiError> {
    shared
        .verifier
        .verify(method, uri, headers, &body, SystemTime::now())?;
    let operation = target
        .strip_prefix(TARGET_PREFIX)
        .filter(|op| !op.is_empty())
        .ok_or_else(ApiError::unknown_operation)?
        .to_owned();

    let worker = Arc::clone(shared);
    let outcome = tokio::task::spawn_blocking(move || {
        let context = Context {
            store: &worker.store,
            region: &worker.region,
            account_id: &worker.account_id,
            allow_short_schedules: worker.allow_short_schedules,
            function_names: &worker.function_names,
        };
        ops::dispatch(&context, &operation, &body)
    })
    .await
    .map_err(|_| ApiError::internal("The operation failed unexpectedly; nothing was changed."))??;

    if let Some(job) = outcome.rotation {
        shared.rotator.spawn(job);
    }
    Ok(outcome.body)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
}

/// The last rotation's outcome for one secret; the real service keeps this
/// only in the function's logs. Contains no secret value.
async fn rotation_status(State(shared): State<Arc<Shared>>, Path(rest): Path<String>) -> Response {
    let Some(secret_id) = rest.strip_suffix("/rotation") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let status = shared.store.read(|state| {
        let secret = state.secret(secret_id)?;
        let rotation = &secret.rotation;
        Ok::<_, ApiError>(json!({
            "arn": secret.arn,
            "name": secret.name,
            "rotationEnabled": rotation.enabled,
            "rotationLambdaArn": rotation.lambda_arn,
            "rotationRules": rotation.rules,
            "rotating": shared.rotator.is_running(&secret.arn),
            "pendingVersionId": secret.unfinished_rotation(),
            "lastRotatedDate": rotation.last_rotated_date,
            "nextRotationDate": rotation.next_rotation_date,
            "lastFailure": rotation.last_failure,
        }))
    });
    match status {
        Ok(body) => ([("content-type", "application/json")], body.to_string()).into_response(),
        Err(error) => {
            let mut response = error.into_response();
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}
