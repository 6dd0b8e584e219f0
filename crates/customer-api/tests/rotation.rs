//! Rotation is invisible: under steady load from concurrent clients, the
//! secret is rotated every 2 s with 5 s tokens while the gateway closes
//! connections older than 3 s. No request may fail, and the emulator's
//! count of `GetSecretValue` calls must follow the rotations and rejected
//! tokens, not the number of requests.
//!
//! The run lasts 30 s; `CUSTOMER_API_ROTATION_TEST_SECS` changes that.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Stack, StackOptions, customer_body};
use reqwest::StatusCode;
use serde_json::Value;

const CLIENTS: usize = 8;
const TOKEN_LIFETIME: Duration = Duration::from_secs(5);
const ROTATION_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    failures: AtomicU64,
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_under_load_fails_no_request() {
    let run_for = std::env::var("CUSTOMER_API_ROTATION_TEST_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_secs);
    let stack = Arc::new(
        Stack::start(StackOptions {
            gateway_args: vec!["--max-connection-age".into(), "3".into()],
            api_args: vec![
                "--max-connection-lifetime-ms".into(),
                "2000".into(),
                "--pool-size".into(),
                "8".into(),
            ],
            token_lifetime: TOKEN_LIFETIME,
            ..StackOptions::default()
        })
        .await,
    );

    let response = stack
        .http
        .post(stack.url("/api/v1/customers"))
        .json(&customer_body("rotation"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let path = format!("/api/v1/customers/{}", created["id"].as_str().unwrap());
    let reads_before = stack.emulator_requests("GetSecretValue").await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (stack, stop, tally, path) = (stack.clone(), stop.clone(), tally.clone(), path.clone());
        clients.push(tokio::spawn(async move {
            let mut iteration = 0u64;
            while !stop.load(Ordering::Relaxed) {
                iteration += 1;
                let request = if iteration.is_multiple_of(5) {
                    let body = customer_body(&format!("load{client}"));
                    stack.http.post(stack.url("/api/v1/customers")).json(&body)
                } else {
                    stack.http.get(stack.url(&path))
                };
                tally.requests.fetch_add(1, Ordering::Relaxed);
                match request.send().await {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => {
                        let status = response.status();
                        let body = response.text().await.unwrap_or_default();
                        println!("request failed: {status} {body}");
                        tally.failures.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        println!("request failed: {error}");
                        tally.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    let started = Instant::now();
    let mut rotations = 0u64;
    while started.elapsed() < run_for {
        tokio::time::sleep(ROTATION_INTERVAL).await;
        stack.rotate(TOKEN_LIFETIME).await;
        rotations += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    let requests = tally.requests.load(Ordering::Relaxed);
    let failures = tally.failures.load(Ordering::Relaxed);
    let reads = stack.emulator_requests("GetSecretValue").await - reads_before;
    let metrics = stack
        .http
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rejections = metric(&metrics, "db_credential_rejections_total");
    let opened = metric(&metrics, "db_connections_opened_total");
    println!(
        "rotation under load: requests={requests} failures={failures} rotations={rotations} \
         secret_reads={reads} rejections={rejections} connections_opened={opened}"
    );

    assert_eq!(failures, 0, "{}", stack.api_output());
    assert!(requests > 100, "the load was too light to mean anything");
    assert!(opened > rotations, "connections were not renewed: {opened}");
    assert!(
        reads <= rotations + rejections + 2,
        "secret reads {reads} exceed rotations {rotations} plus rejections {rejections}"
    );
    assert!(
        reads * 10 < requests,
        "secret reads follow the request count"
    );
}
