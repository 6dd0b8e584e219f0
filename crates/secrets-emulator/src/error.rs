//! Errors: the service's own error responses (`__type` and `message` in a
//! JSON body) and the emulator's start-up errors.
//!
//! Messages follow the real service where its text is known; each
//! constructor names its source when that is not the AWS documentation.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error returned to an SDK the way Secrets Manager returns it: HTTP 400
/// (500 for internal failures) and a JSON body with `__type` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The error code, for example `ResourceNotFoundException`.
    pub kind: &'static str,
    /// The human-readable message.
    pub message: String,
    /// The HTTP status.
    pub status: StatusCode,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
}

impl ApiError {
    fn client(kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// `ResourceNotFoundException` with the given message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::client("ResourceNotFoundException", message)
    }

    /// `ResourceNotFoundException` for a secret id that matches no secret.
    pub fn secret_not_found() -> Self {
        Self::not_found("Secrets Manager can't find the specified secret.")
    }

    /// `InvalidParameterException` with the given message.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::client("InvalidParameterException", message)
    }

    /// `InvalidRequestException` with the given message.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::client("InvalidRequestException", message)
    }

    /// `InvalidRequestException` for a secret scheduled for deletion.
    pub fn marked_for_deletion() -> Self {
        Self::invalid_request(
            "You can't perform this operation on the secret because it was marked for deletion.",
        )
    }

    /// `ResourceExistsException` with the given message.
    pub fn exists(message: impl Into<String>) -> Self {
        Self::client("ResourceExistsException", message)
    }

    /// `ValidationException` with the given message.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::client("ValidationException", message)
    }

    /// `SerializationException`: the body is not JSON of the expected shape.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
    }

    /// `UnknownOperationException`: the `X-Amz-Target` names no operation.
    pub fn unknown_operation() -> Self {
        Self::client("UnknownOperationException", "")
    }

    /// `MissingAuthenticationTokenException`: the request is not signed.
    pub fn missing_authentication() -> Self {
        Self::client(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    }

    /// `IncompleteSignatureException`: the `Authorization` header lacks a part.
    pub fn incomplete_signature(message: impl Into<String>) -> Self {
        Self::client("IncompleteSignatureException", message)
    }

    /// `UnrecognizedClientException`: the access key id is not configured.
    pub fn unrecognized_client() -> Self {
        Self::client(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }

    /// `InvalidSignatureException` with the given message.
    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::client("InvalidSignatureException", message)
    }

    /// `InternalServiceError`: the emulator could not do what it acknowledged
    /// it would, for example persist the state. The request changed nothing.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            kind: "InternalServiceError",
            message: message.into(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            kind: self.kind,
            message: &self.message,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        (
            self.status,
            [
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amzn-errortype", self.kind),
            ],
            json,
        )
            .into_response()
    }
}

/// Errors that stop the emulator from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The state directory cannot be created, read or written.
    #[error("state directory {path}: {action} failed")]
    State {
        /// The file or directory involved.
        path: std::path::PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying cause.
        #[source]
        source: std::io::Error,
    },
    /// The state file exists but is not a state this emulator wrote.
    #[error("state file {path} is not valid; move it away to start with an empty state")]
    CorruptState {
        /// The state file.
        path: std::path::PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The listener cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The requested address.
        addr: std::net::SocketAddr,
        /// The underlying cause.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
}
