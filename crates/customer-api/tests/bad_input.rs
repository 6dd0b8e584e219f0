//! Bad input never yields a 5xx or a crash: each case gets a clear 4xx with
//! the common error body, and the service keeps serving afterwards.

mod common;

use common::{Stack, StackOptions, customer_body};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PATH: &str = "/api/v1/customers";

async fn post_raw(stack: &Stack, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    let response = stack
        .http
        .post(stack.url(PATH))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn assert_client_error(status: StatusCode, body: &Value, case: &str) {
    assert!(status.is_client_error(), "{case}: {status} {body}");
    assert_eq!(body["status"], status.as_u16(), "{case}: {body}");
    assert_eq!(body["path"], PATH, "{case}: {body}");
    assert!(body["message"].is_string(), "{case}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_bodies_get_400() {
    let stack = Stack::start(StackOptions::default()).await;
    let valid = customer_body("valid").to_string();
    let cases: Vec<(&str, String)> = vec![
        ("empty body", String::new()),
        ("not JSON", "hello".into()),
        ("truncated JSON", valid[..valid.len() / 2].to_owned()),
        ("array", "[]".into()),
        ("null", "null".into()),
        ("string", "\"customer\"".into()),
        ("trailing garbage", format!("{valid} x")),
        (
            "invalid UTF-8",
            String::from_utf8_lossy(b"{\"firstName\":\"\xff\"}").into_owned(),
        ),
    ];
    for (case, body) in cases {
        let (status, body) = post_raw(&stack, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}");
        assert_client_error(status, &body, case);
    }

    let invalid_utf8 = b"{\"firstName\":\"\xff\xfe\"}".to_vec();
    let (status, body) = post_raw(&stack, invalid_utf8).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_client_error(status, &body, "raw invalid UTF-8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_types_nulls_and_unknown_fields_get_400() {
    let stack = Stack::start(StackOptions::default()).await;
    type Mutation = Box<dyn Fn(&mut Value)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "number name",
            Box::new(|body| body["firstName"] = json!(42)),
        ),
        (
            "null name",
            Box::new(|body| body["firstName"] = Value::Null),
        ),
        (
            "missing email",
            Box::new(|body| {
                body.as_object_mut().unwrap().remove("email");
            }),
        ),
        ("null email", Box::new(|body| body["email"] = Value::Null)),
        (
            "object email",
            Box::new(|body| body["email"] = json!({"a": 1})),
        ),
        (
            "addresses not a list",
            Box::new(|body| body["addresses"] = json!("x")),
        ),
        (
            "null addresses",
            Box::new(|body| body["addresses"] = Value::Null),
        ),
        (
            "no addresses",
            Box::new(|body| body["addresses"] = json!([])),
        ),
        (
            "six addresses",
            Box::new(|body| {
                let address = body["addresses"][0].clone();
                body["addresses"] = json!(vec![address; 6]);
            }),
        ),
        (
            "null street",
            Box::new(|body| body["addresses"][0]["street"] = Value::Null),
        ),
        (
            "blank city",
            Box::new(|body| body["addresses"][0]["city"] = json!("   ")),
        ),
        (
            "numeric postal code",
            Box::new(|body| body["addresses"][0]["postalCode"] = json!(12345)),
        ),
        (
            "string default",
            Box::new(|body| body["addresses"][0]["default"] = json!("yes")),
        ),
        (
            "unknown field",
            Box::new(|body| body["nickname"] = json!("x")),
        ),
        (
            "unknown address field",
            Box::new(|body| body["addresses"][0]["floor"] = json!(3)),
        ),
        (
            "invalid email",
            Box::new(|body| body["email"] = json!("no-at-sign")),
        ),
        (
            "one-letter name",
            Box::new(|body| body["firstName"] = json!("A")),
        ),
        (
            "NUL in name",
            Box::new(|body| body["firstName"] = json!("Ad\u{0}a")),
        ),
        (
            "NUL in street",
            Box::new(|body| body["addresses"][0]["street"] = json!("1\u{0} Main")),
        ),
        (
            "51 multi-byte characters",
            Box::new(|body| body["firstName"] = json!("é".repeat(51))),
        ),
        (
            "51-character last name",
            Box::new(|body| body["lastName"] = json!("ü".repeat(51))),
        ),
        (
            "invalid address id",
            Box::new(|body| body["addresses"][0]["id"] = json!("nope")),
        ),
        (
            "two defaults",
            Box::new(|body| {
                let mut address = body["addresses"][0].clone();
                address["default"] = json!(true);
                body["addresses"] = json!([address.clone(), address]);
            }),
        ),
    ];
    for (case, mutate) in mutations {
        let mut body = customer_body("types");
        mutate(&mut body);
        let (status, response) = post_raw(&stack, body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {response}");
        assert_client_error(status, &response, case);
    }

    let mut accepted = customer_body("fifty");
    accepted["firstName"] = json!("é".repeat(50));
    accepted["lastName"] = json!("日".repeat(50));
    let (status, response) = post_raw(&stack, accepted.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    assert_eq!(response["firstName"], "é".repeat(50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_body_and_headers_get_4xx() {
    let stack = Stack::start(StackOptions::default()).await;

    let limit = 1024 * 1024;
    let mut body = customer_body("big").to_string().into_bytes();
    body.truncate(body.len() - 1);
    let padding = limit + 1 - body.len() - 1;
    body.extend(std::iter::repeat_n(b' ', padding));
    body.push(b'}');
    assert_eq!(body.len(), limit + 1);
    let (status, response) = post_raw(&stack, body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{response}");
    assert_client_error(status, &response, "1 MiB + 1 byte");

    let response = stack
        .http
        .post(stack.url(PATH))
        .header("content-type", "text/plain")
        .body(customer_body("plain").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let response = stack
        .http
        .get(stack.url(PATH))
        .header("x-padding", "a".repeat(9 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 431);

    let live = stack
        .http
        .get(stack.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK, "service still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn responses_and_logs_leak_no_token_or_sql() {
    let stack = Stack::start(StackOptions {
        api_args: vec!["--transaction-timeout-ms".into(), "1000".into()],
        ..StackOptions::default()
    })
    .await;
    let first = customer_body("leak");
    let (status, _) = post_raw(&stack, first.to_string()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, conflict) = post_raw(&stack, first.to_string()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, malformed) = post_raw(&stack, "{\"firstName\":".to_owned()).await;
    let timeout = stack
        .http
        .get(stack.url("/api/v1/customers/simulate/timeout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let secret = stack
        .secrets
        .get_secret_value()
        .secret_id(common::SECRET_ID)
        .send()
        .await
        .unwrap();
    let secret: Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    let token = secret["password"].as_str().unwrap();
    let signature = token.rsplit("X-Amz-Signature=").next().unwrap();

    let responses = format!("{conflict}{malformed}{timeout}");
    let output = stack.api_output();
    for text in [&responses, &output] {
        assert!(!text.contains(signature), "signature leaked");
        assert!(!text.contains("X-Amz-Credential"), "token leaked");
        assert!(!text.contains(common::KEY_SECRET), "secret key leaked");
        for sql in ["INSERT INTO", "SELECT ", "UPDATE ", "duplicate key value"] {
            assert!(!text.contains(sql), "{sql:?} leaked in {text}");
        }
    }
    assert!(output.contains("fp:"), "tokens are logged by fingerprint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn body_errors_use_own_messages() {
    let stack = Stack::start(StackOptions::default()).await;
    let mut wrong_type = customer_body("wrongtype");
    wrong_type["firstName"] = json!(5);
    let mut unknown = customer_body("unknown");
    unknown["isAdmin"] = json!(true);
    let mut nested = customer_body("nested");
    nested["addresses"][0]["floor"] = json!(3);
    let array = json!([
        null,
        "Ar",
        "Ray",
        "ar@example.com",
        [[null, "1 Main St", "Springfield", "IL", "62701", "US", true]]
    ]);

    // (case, body, status, message, field path and problem in `errors`)
    type Case<'a> = (
        &'a str,
        String,
        StatusCode,
        &'a str,
        Option<(&'a str, &'a str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "syntax error",
            "{\"firstName\":".to_owned(),
            StatusCode::BAD_REQUEST,
            "request body is not valid JSON",
            None,
        ),
        (
            "wrong type",
            wrong_type.to_string(),
            StatusCode::BAD_REQUEST,
            "request body has invalid fields",
            Some(("firstName", "must be a string")),
        ),
        (
            "unknown field",
            unknown.to_string(),
            StatusCode::BAD_REQUEST,
            "request body has invalid fields",
            Some(("isAdmin", "unknown field")),
        ),
        (
            "unknown address field",
            nested.to_string(),
            StatusCode::BAD_REQUEST,
            "request body has invalid fields",
            Some(("addresses[0].floor", "unknown field")),
        ),
        (
            "null body",
            "null".to_owned(),
            StatusCode::BAD_REQUEST,
            "request body must be a JSON object",
            None,
        ),
        (
            "number body",
            "5".to_owned(),
            StatusCode::BAD_REQUEST,
            "request body must be a JSON object",
            None,
        ),
        (
            "array of the fields",
            array.to_string(),
            StatusCode::BAD_REQUEST,
            "request body must be a JSON object",
            None,
        ),
        (
            "2 MiB body",
            format!("{{\"firstName\":\"{}\"}}", "a".repeat(2 * 1024 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than 1 MiB",
            None,
        ),
    ];
    for (case, body, expected_status, expected_message, field) in cases {
        let (status, response) = post_raw(&stack, body).await;
        assert_eq!(status, expected_status, "{case}: {response}");
        assert_client_error(status, &response, case);
        assert_eq!(response["message"], expected_message, "{case}: {response}");
        match field {
            Some((key, problem)) => {
                assert_eq!(
                    response["errors"][key],
                    json!([problem]),
                    "{case}: {response}"
                );
            }
            None => assert_eq!(response["errors"], json!({}), "{case}: {response}"),
        }
        let text = response.to_string();
        for leak in [
            "expected struct",
            "CustomerInput",
            "Failed to",
            "line 1 column",
        ] {
            assert!(!text.contains(leak), "{case}: {leak:?} in {text}");
        }
    }
}
