//! Every row of the endpoint table against the running service, on real
//! PostgreSQL behind the token-checking gateway, with the credentials read
//! from the secret in the Secrets Manager emulator.

mod common;

use common::{Stack, StackOptions, customer_body};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn stack() -> Stack {
    Stack::start(StackOptions {
        api_args: vec!["--transaction-timeout-ms".into(), "2000".into()],
        ..StackOptions::default()
    })
    .await
}

async fn create(stack: &Stack, body: &Value) -> Value {
    let response = stack
        .http
        .post(stack.url("/api/v1/customers"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

fn assert_error_shape(body: &Value, status: u16, path: &str) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["path"], path, "{body}");
    assert!(body["timestamp"].is_string(), "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert!(body["errors"].is_object(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_read_replace_delete_round_trip() {
    let stack = stack().await;
    let body = customer_body("crud");

    let response = stack
        .http
        .post(stack.url("/api/v1/customers"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/customers/{id}"));
    assert_eq!(created["firstName"], "Ada");
    assert_eq!(created["addresses"][0]["postalCode"], "SW1Y4LB");
    assert_eq!(created["addresses"][0]["default"], true);

    let read: Value = stack
        .http
        .get(stack.url(&location))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, created);

    let replacement = json!({
        "firstName": "Augusta",
        "email": body["email"],
        "addresses": [
            {"street": "1 A St", "city": "Bath", "state": "Somerset", "postalCode": "ba1 1aa", "country": "UK"},
            {"street": "2 B St", "city": "Leeds", "state": "Yorkshire", "postalCode": "ls1", "country": "UK", "isDefault": true}
        ]
    });
    let response = stack
        .http
        .put(stack.url(&location))
        .json(&replacement)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["firstName"], "Augusta");
    assert_eq!(replaced["lastName"], Value::Null);
    assert_eq!(replaced["addresses"].as_array().unwrap().len(), 2);
    assert_eq!(replaced["addresses"][0]["default"], false);
    assert_eq!(replaced["addresses"][1]["default"], true);
    let reread: Value = stack
        .http
        .get(stack.url(&location))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reread, replaced);

    let response = stack
        .http
        .delete(stack.url(&location))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = stack.http.get(stack.url(&location)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = stack
        .http
        .delete(stack.url(&location))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_error_shape(&body, 404, &location);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_pages_in_stable_order_with_addresses() {
    let stack = stack().await;
    let mut ids = Vec::new();
    for index in 0..5 {
        let created = create(&stack, &customer_body(&format!("list{index}"))).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }

    let mut listed = Vec::new();
    for page in 0..3 {
        let url = stack.url(&format!("/api/v1/customers?page={page}&size=2"));
        let response = stack.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let customers: Vec<Value> = response.json().await.unwrap();
        assert!(customers.len() <= 2);
        for customer in customers {
            assert_eq!(customer["addresses"].as_array().unwrap().len(), 1);
            listed.push(customer["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(listed, ids);

    let default_page: Vec<Value> = stack
        .http
        .get(stack.url("/api/v1/customers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(default_page.len(), 5);

    for query in ["size=0", "size=101", "page=-1", "page=x", "size=1.5"] {
        let response = stack
            .http
            .get(stack.url(&format!("/api/v1/customers?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_error_shape(&body, 400, "/api/v1/customers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_and_malformed_ids_get_404_and_400() {
    let stack = stack().await;
    let unknown = uuid::Uuid::new_v4();
    let body = customer_body("missing");
    for (method, status) in [
        (reqwest::Method::GET, StatusCode::NOT_FOUND),
        (reqwest::Method::PUT, StatusCode::NOT_FOUND),
        (reqwest::Method::DELETE, StatusCode::NOT_FOUND),
    ] {
        let response = stack
            .http
            .request(
                method.clone(),
                stack.url(&format!("/api/v1/customers/{unknown}")),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method}");
    }
    for bad in ["not-a-uuid", "123", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"] {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let response = stack
                .http
                .request(
                    method.clone(),
                    stack.url(&format!("/api/v1/customers/{bad}")),
                )
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{method} {bad}");
            let error: Value = response.json().await.unwrap();
            assert!(error["errors"]["id"].is_array(), "{error}");
        }
    }

    let created = create(&stack, &body).await;
    let upper = created["id"].as_str().unwrap().to_uppercase();
    let response = stack
        .http
        .get(stack.url(&format!("/api/v1/customers/{upper}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_email_gets_409_on_create_and_replace() {
    let stack = stack().await;
    let first = customer_body("dup");
    create(&stack, &first).await;

    let mut same_email_other_case = customer_body("dup2");
    let shouted = first["email"].as_str().unwrap().to_uppercase();
    same_email_other_case["email"] = json!(format!("  {shouted} "));
    let response = stack
        .http
        .post(stack.url("/api/v1/customers"))
        .json(&same_email_other_case)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert_error_shape(&body, 409, "/api/v1/customers");
    assert!(body["errors"]["email"].is_array(), "{body}");

    let second = create(&stack, &customer_body("dup3")).await;
    let path = format!("/api/v1/customers/{}", second["id"].as_str().unwrap());
    let response = stack
        .http
        .put(stack.url(&path))
        .json(&same_email_other_case)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locking_simulation_retries_a_real_conflict() {
    let stack = stack().await;
    let response = stack
        .http
        .get(stack.url("/api/v1/customers/simulate/locking"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["attempts"], 2, "{report}");
    assert_eq!(report["conflicts"], 1, "{report}");

    let metrics = stack
        .http
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("transaction_retries_total 1"), "{metrics}");
    let output = stack.api_output();
    assert!(output.contains("retrying transaction"), "{output}");
    assert!(output.contains("40001"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeout_simulation_answers_504_after_retries() {
    let stack = stack().await;
    let response = stack
        .http
        .get(stack.url("/api/v1/customers/simulate/timeout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: Value = response.json().await.unwrap();
    assert_error_shape(&body, 504, "/api/v1/customers/simulate/timeout");
    let output = stack.api_output();
    assert!(output.contains("retrying transaction"), "{output}");
    assert!(output.contains("transaction timed out"), "{output}");

    let response = stack
        .http
        .get(stack.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "pool recovers after the timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_metrics_and_openapi_answer() {
    let stack = stack().await;
    let live = stack.http.get(stack.url("/health")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);

    let ready = stack
        .http
        .get(stack.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let report: Value = ready.json().await.unwrap();
    assert_eq!(report["database"], "UP");
    let left = report["tokenExpiresInSeconds"].as_u64().unwrap();
    assert!(left > 0 && left <= 900, "{report}");

    let metrics = stack.http.get(stack.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(text.contains("http_request_duration_seconds_count{method=\"GET\",route=\"/health/ready\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("secret_reads_total 1"), "{text}");
    assert!(text.contains("db_connections_opened_total"), "{text}");

    let openapi: Value = stack
        .http
        .get(stack.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.0.3");
    for path in [
        "/api/v1/customers",
        "/api/v1/customers/{id}",
        "/api/v1/customers/simulate/locking",
        "/api/v1/customers/simulate/timeout",
        "/health",
        "/health/ready",
        "/metrics",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} missing");
    }

    let unknown = stack.http.get(stack.url("/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await.unwrap();
    assert_error_shape(&body, 404, "/nope");
    let wrong_method = stack
        .http
        .patch(stack.url("/api/v1/customers"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_refreshes_expired_token() {
    let token_lifetime = std::time::Duration::from_secs(5);
    let stack = Stack::start(StackOptions {
        token_lifetime,
        ..StackOptions::default()
    })
    .await;
    let ready = stack
        .http
        .get(stack.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let metrics_url = stack.url("/metrics");
    let metrics = stack.http.get(&metrics_url).send().await.unwrap();
    let opened_before = metric(
        &metrics.text().await.unwrap(),
        "db_connections_opened_total",
    );

    // The pooled connection stays open, so only readiness can pick up the
    // rotated secret once the first token has expired.
    stack.rotate(std::time::Duration::from_secs(900)).await;
    tokio::time::sleep(token_lifetime + std::time::Duration::from_secs(1)).await;
    let reads_before = stack.emulator_requests("GetSecretValue").await;

    let probes = 10;
    for probe in 0..probes {
        let ready = stack
            .http
            .get(stack.url("/health/ready"))
            .send()
            .await
            .unwrap();
        let status = ready.status();
        let report: Value = ready.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "probe {probe}: {report}");
        assert_eq!(report["status"], "UP", "probe {probe}: {report}");
        let left = report["tokenExpiresInSeconds"].as_u64().unwrap();
        assert!(left > 0, "probe {probe}: {report}");
    }

    let reads = stack.emulator_requests("GetSecretValue").await - reads_before;
    assert!(reads >= 1, "readiness never read the rotated secret");
    assert!(reads <= 2, "{probes} probes caused {reads} secret reads");
    let metrics = stack.http.get(&metrics_url).send().await.unwrap();
    let opened_after = metric(
        &metrics.text().await.unwrap(),
        "db_connections_opened_total",
    );
    assert_eq!(opened_after, opened_before, "a new connection was opened");
}
