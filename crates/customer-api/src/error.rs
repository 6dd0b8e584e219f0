//! API errors and their JSON body,
//! `{"timestamp","status","message","errors":{"field":["..."]},"path"}`.
//!
//! A handler returns an [`ApiError`] without knowing the request path. The
//! `error_body` middleware adds the path, and it turns every other 4xx or
//! 5xx response (an unknown route, a wrong method) into the same shape. Nothing
//! here carries SQL text, driver messages or tokens: database failures are
//! described by SQLSTATE and kind only.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Field name to the messages about it.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// An error response before the request path is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A sentence for the client.
    pub message: String,
    /// Messages per request field; empty when no field is at fault.
    pub errors: FieldErrors,
    /// Seconds the client should wait before retrying, sent as `Retry-After`.
    pub retry_after_secs: Option<u32>,
}

impl ApiError {
    /// Creates an error with a status and a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            errors: FieldErrors::new(),
            retry_after_secs: None,
        }
    }

    /// Creates a 400 error for invalid fields.
    pub fn validation(errors: FieldErrors) -> Self {
        Self {
            errors,
            ..Self::new(StatusCode::BAD_REQUEST, "request validation failed")
        }
    }

    /// Creates a 404 error for a customer id.
    pub fn customer_not_found(id: uuid::Uuid) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("customer {id} not found"))
    }

    /// Creates a 409 error for an email that another customer has.
    pub fn duplicate_email() -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(
            "email".to_owned(),
            vec!["another customer already has this email".to_owned()],
        );
        Self {
            errors,
            ..Self::new(
                StatusCode::CONFLICT,
                "a customer with this email already exists",
            )
        }
    }

    /// Creates a 503 error asking the client to retry after a second.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after_secs: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// Creates a 504 error for a transaction that ran out of time.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "the database transaction timed out; retry later",
        )
    }

    /// Creates a 500 error that reveals nothing; the cause is logged.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the request id in the X-Request-Id header identifies it in the logs",
        )
    }
}

/// The JSON body of an error response.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorBody {
    /// When the error was produced, RFC 3339 in UTC.
    pub timestamp: String,
    /// The HTTP status code.
    pub status: u16,
    /// A sentence for the client.
    pub message: String,
    /// Messages per request field.
    pub errors: FieldErrors,
    /// The request path.
    pub path: String,
}

impl ErrorBody {
    /// Creates a body for `error` without a path; the middleware adds it.
    pub fn from_error(error: &ApiError) -> Self {
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Self {
            timestamp,
            status: error.status.as_u16(),
            message: error.message.clone(),
            errors: error.errors.clone(),
            path: String::new(),
        }
    }

    /// Renders the body as a JSON response with `status`.
    pub fn into_response_with(self, status: StatusCode, retry_after: Option<u32>) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        ErrorBody::from_error(&self).into_response_with(self.status, self.retry_after_secs)
    }
}

/// Returns the message for a status when no handler chose one (an unknown
/// route, a method the route does not allow, a rejected header).
pub fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "no such resource".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this resource".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "request body is larger than 1 MiB".to_owned(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "request headers are larger than 8 KiB".to_owned()
        }
        status => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    }
}
