//! Requests the service refuses: unsigned, unknown keys, bad or stale
//! signatures, malformed JSON, unknown operations, oversize values and
//! invalid names, each with the service's error type.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use common::{InProcess, KEY_ID, KEY_SECRET, api_headers, call, http, sdk_client, sdk_client_with};
use serde_json::json;

#[tokio::test]
async fn unsigned_request_is_refused() {
    let server = InProcess::start().await;
    let body = br#"{"Name":"s","SecretString":"v"}"#;
    let headers = api_headers(server.addr(), "CreateSecret", body, None, SystemTime::now());
    let response = http(server.addr(), "POST", "/", &headers, body).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.error_type(), "MissingAuthenticationTokenException");
    assert_eq!(
        common::request_count(server.addr(), "CreateSecret").await,
        1
    );
    let client = sdk_client(&server.endpoint()).await;
    assert!(
        client
            .list_secrets()
            .send()
            .await
            .unwrap()
            .secret_list()
            .is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn unknown_access_key_is_refused() {
    let server = InProcess::start().await;
    let client = sdk_client_with(&server.endpoint(), "AKIDUNKNOWN", KEY_SECRET).await;
    let error = client.list_secrets().send().await.unwrap_err();
    assert_eq!(error.code(), Some("UnrecognizedClientException"));
    assert_eq!(
        error.message(),
        Some("The security token included in the request is invalid.")
    );
}

#[tokio::test]
async fn wrong_secret_key_is_a_bad_signature() {
    let server = InProcess::start().await;
    let client = sdk_client_with(&server.endpoint(), KEY_ID, "not-the-secret").await;
    let error = client
        .create_secret()
        .name("s")
        .secret_string("v")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("InvalidSignatureException"));
    assert!(!format!("{error:?}").contains(KEY_SECRET));
}

#[tokio::test]
async fn body_changed_after_signing_is_a_bad_signature() {
    let server = InProcess::start().await;
    let signed = br#"{"Name":"a","SecretString":"v"}"#;
    let sent = br#"{"Name":"b","SecretString":"v"}"#;
    let headers = api_headers(
        server.addr(),
        "CreateSecret",
        signed,
        Some((KEY_ID, KEY_SECRET)),
        SystemTime::now(),
    );
    let response = http(server.addr(), "POST", "/", &headers, sent).await;
    assert_eq!(response.error_type(), "InvalidSignatureException");
}

#[tokio::test]
async fn stale_signature_is_expired() {
    let server = InProcess::start().await;
    let body = b"{}";
    let old = SystemTime::now() - Duration::from_secs(600);
    let headers = api_headers(
        server.addr(),
        "ListSecrets",
        body,
        Some((KEY_ID, KEY_SECRET)),
        old,
    );
    let response = http(server.addr(), "POST", "/", &headers, body).await;
    assert_eq!(response.error_type(), "InvalidSignatureException");
    let message = response.json()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("Signature expired: "), "{message}");
}

#[tokio::test]
async fn malformed_json_is_a_serialization_error() {
    let server = InProcess::start().await;
    let body = b"{\"Name\": ";
    let headers = api_headers(
        server.addr(),
        "CreateSecret",
        body,
        Some((KEY_ID, KEY_SECRET)),
        SystemTime::now(),
    );
    let response = http(server.addr(), "POST", "/", &headers, body).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.error_type(), "SerializationException");

    let wrong_type = call(server.addr(), "CreateSecret", &json!({"Name": 5})).await;
    assert_eq!(wrong_type.error_type(), "SerializationException");
    let secret_in_wrong_member = call(
        server.addr(),
        "DeleteSecret",
        &json!({"SecretId": "s", "RecoveryWindowInDays": "hunter2-password"}),
    )
    .await;
    assert_eq!(
        secret_in_wrong_member.error_type(),
        "SerializationException"
    );
    assert!(
        !secret_in_wrong_member.body.contains("hunter2"),
        "a mistyped value is never echoed: {}",
        secret_in_wrong_member.body
    );
}

#[tokio::test]
async fn unknown_operation_is_refused() {
    let server = InProcess::start().await;
    let response = call(server.addr(), "MakeCoffee", &json!({})).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.error_type(), "UnknownOperationException");
    assert_eq!(common::request_count(server.addr(), "unknown").await, 1);
}

#[tokio::test]
async fn oversize_value_is_a_validation_error() {
    let server = InProcess::start().await;
    let client = sdk_client(&server.endpoint()).await;
    let at_limit = "x".repeat(65_536);
    client
        .create_secret()
        .name("big")
        .secret_string(&at_limit)
        .send()
        .await
        .unwrap();

    let over = "y".repeat(65_537);
    let error = client
        .put_secret_value()
        .secret_id("big")
        .secret_string(&over)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ValidationException"));
    assert_eq!(
        error.message(),
        Some(
            "1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536"
        )
    );
    assert!(
        !error.message().unwrap().contains("yyyy"),
        "the value is never echoed"
    );
    let multibyte = "é".repeat(40_000);
    let error = client
        .create_secret()
        .name("wide")
        .secret_string(&multibyte)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some("ValidationException"),
        "the limit counts bytes"
    );
}

#[tokio::test]
async fn invalid_names_are_validation_errors() {
    let server = InProcess::start().await;
    let client = sdk_client(&server.endpoint()).await;
    let bad_chars = client
        .create_secret()
        .name("app dsql#1")
        .secret_string("v")
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad_chars.code(), Some("ValidationException"));
    assert_eq!(
        bad_chars.message(),
        Some(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
        )
    );
    let too_long = client
        .create_secret()
        .name("n".repeat(513))
        .secret_string("v")
        .send()
        .await
        .unwrap_err();
    assert_eq!(too_long.code(), Some("ValidationException"));

    let missing = call(server.addr(), "CreateSecret", &json!({"SecretString": "v"})).await;
    assert_eq!(missing.error_type(), "ValidationException");
    assert_eq!(
        missing.json()["message"],
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
    );
    let short_token = call(
        server.addr(),
        "PutSecretValue",
        &json!({"SecretId": "s", "SecretString": "v", "ClientRequestToken": "short"}),
    )
    .await;
    assert_eq!(short_token.error_type(), "ValidationException");
}

#[tokio::test]
async fn put_without_value_is_an_invalid_request() {
    let server = InProcess::start().await;
    let client = sdk_client(&server.endpoint()).await;
    client.create_secret().name("s").send().await.unwrap();
    let error = client
        .put_secret_value()
        .secret_id("s")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("InvalidRequestException"));
    let both = call(
        server.addr(),
        "PutSecretValue",
        &json!({"SecretId": "s", "SecretString": "v", "SecretBinary": "YQ=="}),
    )
    .await;
    assert_eq!(both.error_type(), "InvalidParameterException");
}
