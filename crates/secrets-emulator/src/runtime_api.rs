//! The Lambda runtime API (version 2018-06-01) for one function: what an
//! unmodified `lambda_runtime` binary talks to through
//! `AWS_LAMBDA_RUNTIME_API`.
//!
//! Each function gets its own listener, because the runtime API's paths do
//! not name the function.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::lambda::{Function, InvokeError};

/// Builds the runtime API routes for `function`.
pub fn router(function: Arc<Function>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(function)
}

async fn next(State(function): State<Arc<Function>>) -> Response {
    let invocation = function.next_invocation().await;
    let trace_id = format!(
        "Root=1-{:08x}-{};Sampled=0",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    );
    let headers = [
        ("lambda-runtime-aws-request-id", invocation.request_id),
        (
            "lambda-runtime-deadline-ms",
            invocation.deadline_ms.to_string(),
        ),
        ("lambda-runtime-invoked-function-arn", function.arn.clone()),
        ("lambda-runtime-trace-id", trace_id),
        ("content-type", String::from("application/json")),
    ];
    let mut response = invocation.payload.into_response();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
    response
}

async fn response(
    State(function): State<Arc<Function>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    accepted(function.complete(&id, Ok(body.to_vec())))
}

/// The error document a runtime posts.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErrorDocument {
    #[serde(default)]
    error_type: String,
    #[serde(default)]
    error_message: String,
}

fn invoke_error(body: &[u8], default_type: &str) -> InvokeError {
    let document: ErrorDocument = serde_json::from_slice(body).unwrap_or_default();
    InvokeError {
        error_type: if document.error_type.is_empty() {
            default_type.to_owned()
        } else {
            document.error_type
        },
        message: document.error_message,
    }
}

async fn error(
    State(function): State<Arc<Function>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let error = invoke_error(&body, "Unhandled");
    tracing::info!(function = %function.name, request_id = %id, error_type = %error.error_type, "rotation function returned an error");
    accepted(function.complete(&id, Err(error)))
}

async fn init_error(State(function): State<Arc<Function>>, body: Bytes) -> StatusCode {
    let mut error = invoke_error(&body, "Runtime.InitError");
    error.message = format!("initialisation failed: {}", error.message);
    tracing::warn!(function = %function.name, error_type = %error.error_type, "rotation function failed to initialise");
    function.fail_all(&error);
    StatusCode::ACCEPTED
}

fn accepted(delivered: bool) -> StatusCode {
    if delivered {
        StatusCode::ACCEPTED
    } else {
        // The invocation timed out or was never made.
        StatusCode::BAD_REQUEST
    }
}
