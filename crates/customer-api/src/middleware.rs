//! Per-request layers: a request id, a header size limit, one log line and
//! one metrics sample per request, and the common JSON body for every error
//! response.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::{ApiError, ErrorBody, default_message};
use crate::state::AppState;

/// Largest total size of request headers, names and values together.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

const REQUEST_ID: &str = "x-request-id";

/// Assigns a request id (the client's `X-Request-Id` when it is short and
/// plain, else a new UUID), rejects oversized headers, and logs and counts
/// the request when it ends.
pub async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_plain_id(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);

    let span = tracing::info_span!("request", request_id = %request_id);
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let mut response = if header_bytes > MAX_HEADER_BYTES {
        let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        ApiError::new(status, default_message(status)).into_response()
    } else {
        next.run(request).instrument(span.clone()).await
    };

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let latency = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .record_request(method.as_str(), &route, status, latency);
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %path,
            status,
            latency_ms = format_args!("{:.2}", latency.as_secs_f64() * 1000.0),
            "request finished"
        );
    });
    response
}

/// Copies the matched route template into the response, where [`observe`],
/// which runs before routing, can read it.
pub async fn tag_route(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}

fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Gives every 4xx and 5xx response the JSON error body with the request
/// path: handler errors get the path added, others (an unknown route, a
/// wrong method) get a body made from their status.
pub async fn error_body(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }

    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    let (mut parts, body) = response.into_parts();
    let mut error_body = match parts.extensions.remove::<ErrorBody>() {
        Some(error_body) => error_body,
        // A handler's own JSON (the readiness report) is kept as it is.
        None if is_json => return Response::from_parts(parts, body),
        None => ErrorBody::from_error(&ApiError::new(status, default_message(status))),
    };
    error_body.path = path;
    drop(body);

    let bytes = serde_json::to_vec(&error_body).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}
