//! The JSON request body extractor. Its rejections are our own messages:
//! syntax errors, non-object bodies and oversized bodies get one sentence,
//! and wrong types, unknown fields and missing fields are listed under
//! `errors` by field path. Neither serde's text nor a Rust type name ever
//! reaches the client.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldErrors, default_message};

/// A JSON object body whose parse errors become 4xx [`ApiError`]s: 400 for
/// malformed JSON, a non-object body, wrong types and unknown fields, 413
/// above the body limit, 415 without a JSON content type.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let value = match Json::<serde_json::Value>::from_request(request, state).await {
            Ok(Json(value)) => value,
            Err(rejection) => return Err(rejection_error(&rejection)),
        };

        // Derived structs also accept a JSON array of their fields in
        // order, which the API does not offer.
        if !value.is_object() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "request body must be a JSON object",
            ));
        }

        serde_path_to_error::deserialize(value)
            .map(Self)
            .map_err(|error| field_error(&error))
    }
}

/// Maps a rejection that happened before the body was valid JSON.
fn rejection_error(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(_) | JsonRejection::JsonDataError(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "request body is not valid JSON")
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request body must have the content type application/json",
        ),
        rejection => match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                default_message(StatusCode::PAYLOAD_TOO_LARGE),
            ),
            status if status.is_client_error() => {
                ApiError::new(StatusCode::BAD_REQUEST, "request body could not be read")
            }
            status => ApiError::new(status, default_message(status)),
        },
    }
}

/// Maps an error from deserializing a JSON object into the body type to a
/// 400 with the problem under the field's path.
fn field_error(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let message = error.inner().to_string();
    let mut path = error.path().to_string();
    if path == "." {
        path.clear();
    }

    // serde reports unknown and missing fields at the enclosing object, so
    // the field's own name is taken from the message and appended.
    let problem = field_problem(&message);
    if matches!(problem, "unknown field" | "is required")
        && let Some(field) = quoted_name(&message)
        && !path.ends_with(field)
    {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(field);
    }
    if path.is_empty() {
        path.push_str("body");
    }

    let mut errors = FieldErrors::new();
    errors.insert(path, vec![problem.to_owned()]);
    ApiError {
        errors,
        ..ApiError::new(StatusCode::BAD_REQUEST, "request body has invalid fields")
    }
}

/// Returns our description of a serde error message. It relies on the
/// fixed phrases of serde 1's `de::Error` constructors (`invalid type: X,
/// expected Y`, ``unknown field `F` ``, ``missing field `F` ``), because
/// `serde_json::Error` keeps no structured kind.
fn field_problem(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        return "unknown field";
    }
    if message.starts_with("missing field") {
        return "is required";
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let expected = rest.split_once(", expected ").map_or("", |(_, e)| e);
        return expected_kind(expected);
    }
    if message.contains("UUID") {
        return "must be a UUID such as 123e4567-e89b-12d3-a456-426614174000";
    }
    "has an invalid value"
}

/// Describes what serde's `expected` text asks for, without type names.
fn expected_kind(expected: &str) -> &'static str {
    if expected.starts_with("a string") {
        "must be a string"
    } else if expected.starts_with("a boolean") {
        "must be true or false"
    } else if expected.starts_with("a sequence") {
        "must be an array"
    } else if expected.starts_with("struct ") || expected.starts_with("a map") {
        "must be an object"
    } else if expected.contains("UUID") {
        "must be a UUID such as 123e4567-e89b-12d3-a456-426614174000"
    } else {
        "has the wrong type"
    }
}

/// Returns the name between the first pair of backticks.
fn quoted_name(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('`')?;
    let (name, _) = rest.split_once('`')?;
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CustomerInput;

    fn errors_of(body: serde_json::Value) -> FieldErrors {
        let error = serde_path_to_error::deserialize::<_, CustomerInput>(body)
            .expect_err("the body is invalid");
        field_error(&error).errors
    }

    #[test]
    fn wrong_type_is_keyed_by_field() {
        let errors = errors_of(serde_json::json!({"firstName": 5}));
        assert_eq!(errors["firstName"], vec!["must be a string"]);
    }

    #[test]
    fn unknown_field_is_keyed_by_its_name() {
        let errors = errors_of(serde_json::json!({"isAdmin": true}));
        assert_eq!(errors["isAdmin"], vec!["unknown field"]);
    }

    #[test]
    fn nested_problems_have_full_paths() {
        let errors = errors_of(serde_json::json!({"addresses": [{"floor": 3}]}));
        assert_eq!(errors["addresses[0].floor"], vec!["unknown field"]);
        let errors = errors_of(serde_json::json!({"addresses": [null]}));
        assert_eq!(errors["addresses[0]"], vec!["must be an object"]);
        let errors = errors_of(serde_json::json!({"addresses": [{"default": "yes"}]}));
        assert_eq!(
            errors["addresses[0].default"],
            vec!["must be true or false"]
        );
    }

    #[test]
    fn messages_name_no_rust_type() {
        let error = serde_path_to_error::deserialize::<_, CustomerInput>(
            serde_json::json!({"addresses": [1]}),
        )
        .expect_err("the body is invalid");
        let api_error = field_error(&error);
        let text = format!("{} {:?}", api_error.message, api_error.errors);
        assert!(!text.contains("AddressInput"), "{text}");
        assert!(!text.contains("expected"), "{text}");
    }
}
