//! Throughput and latency of the service, printed as figures (not a timed
//! test). With 32 concurrent clients it measures GET by id and POST over
//! HTTP, the same reads done directly through the pool in this process
//! (the ratio shows the HTTP layer's cost), and GET by id while the secret
//! is rotated every 2 s with 5 s tokens and the gateway closes connections
//! older than 3 s.
//!
//! Run with `cargo bench -p customer-api --bench throughput`; it needs
//! `DATABASE_URL`. Binaries are release builds. Each phase lasts
//! `CUSTOMER_API_BENCH_SECS` seconds (default 15). The load generator, the
//! service, the gateway, the emulator and PostgreSQL share one machine, so
//! the figures are for comparing runs on the same machine.

#[path = "../tests/common/mod.rs"]
mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Stack, StackOptions, customer_body};
use secret_pool::{PoolConfig, SecretPool, SecretSource, SourceConfig, TlsMode};
use serde_json::Value;
use tokio_postgres::IsolationLevel;

const CLIENTS: usize = 32;

struct Figures {
    requests: usize,
    failures: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

impl Figures {
    fn print(&self, name: &str) {
        println!(
            "{name:<34} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests, {} failed)",
            self.per_second,
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            self.requests,
            self.failures
        );
    }
}

/// Runs `operation` from `CLIENTS` tasks for `duration` and measures it.
async fn load<Op, Fut>(duration: Duration, operation: Op) -> Figures
where
    Op: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let operation = operation.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            while started.elapsed() < duration {
                let request_started = Instant::now();
                if !operation().await {
                    failures += 1;
                }
                latencies.push(request_started.elapsed());
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (task_latencies, task_failures) = task.await.expect("load task ends");
        latencies.extend(task_latencies);
        failures += task_failures;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |fraction: f64| {
        let index = ((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1);
        latencies[index]
    };
    Figures {
        requests: latencies.len(),
        failures,
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
    }
}

async fn create_customers(stack: &Stack, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for index in 0..count {
        let created: Value = stack
            .http
            .post(stack.url("/api/v1/customers"))
            .json(&customer_body(&format!("bench{index}")))
            .send()
            .await
            .expect("POST answers")
            .json()
            .await
            .expect("POST returns JSON");
        ids.push(created["id"].as_str().expect("an id").to_owned());
    }
    ids
}

fn get_by_id(
    stack: &Arc<Stack>,
    ids: &Arc<Vec<String>>,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Clone + Send + 'static {
    let (stack, ids) = (stack.clone(), ids.clone());
    move || {
        let (stack, ids) = (stack.clone(), ids.clone());
        Box::pin(async move {
            let id = &ids[rand::random_range(0..ids.len())];
            let url = stack.url(&format!("/api/v1/customers/{id}"));
            matches!(stack.http.get(url).send().await, Ok(response) if response.status().is_success())
        })
    }
}

/// The reads `GET /api/v1/customers/{id}` makes, without HTTP.
async fn read_directly(
    pool: &SecretPool,
    id: uuid::Uuid,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut connection = pool.get().await?;
    let transaction = connection
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let customer = transaction
        .prepare_cached("SELECT id, first_name, last_name, email FROM customers WHERE id = $1")
        .await?;
    transaction.query_one(&customer, &[&id]).await?;
    let addresses = transaction
        .prepare_cached(
            "SELECT id, customer_id, street, city, state, postal_code, country, is_default \
             FROM addresses WHERE customer_id = ANY($1) ORDER BY customer_id, sort_order",
        )
        .await?;
    transaction.query(&addresses, &[&vec![id]]).await?;
    transaction.commit().await?;
    Ok(())
}

async fn direct_pool(stack: &Stack) -> SecretPool {
    let endpoint = format!("http://{}", stack.emulator.addr());
    let client = common::secrets_client(&endpoint).await;
    let source = Arc::new(SecretSource::new(
        client,
        common::SECRET_ID,
        SourceConfig::default(),
    ));
    let config = PoolConfig {
        max_size: 16,
        tls: TlsMode::VerifyFull {
            ca_file: Some(stack.gateway.ca_file()),
        },
        ..PoolConfig::default()
    };
    SecretPool::new(source, config).expect("pool builds")
}

fn main() {
    if std::env::var_os("CUSTOMER_API_RELEASE_BINARIES").is_none() {
        println!(
            "set CUSTOMER_API_RELEASE_BINARIES=1 to benchmark release builds; using debug builds"
        );
    }
    let duration = std::env::var("CUSTOMER_API_BENCH_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .map_or(Duration::from_secs(15), Duration::from_secs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime starts");
    runtime.block_on(run(duration));
}

async fn run(duration: Duration) {
    println!(
        "{CLIENTS} concurrent clients, {} s per phase",
        duration.as_secs()
    );
    let stack = Arc::new(
        Stack::start(StackOptions {
            api_args: vec!["--pool-size".into(), "16".into()],
            ..StackOptions::default()
        })
        .await,
    );
    let ids = Arc::new(create_customers(&stack, 200).await);

    let http_get = load(duration, get_by_id(&stack, &ids)).await;
    http_get.print("GET /api/v1/customers/{id}");

    let post_stack = stack.clone();
    let http_post = load(duration, move || {
        let stack = post_stack.clone();
        async move {
            let request = stack
                .http
                .post(stack.url("/api/v1/customers"))
                .json(&customer_body("benchpost"));
            matches!(request.send().await, Ok(response) if response.status().is_success())
        }
    })
    .await;
    http_post.print("POST /api/v1/customers");

    let pool = Arc::new(direct_pool(&stack).await);
    let uuids: Arc<Vec<uuid::Uuid>> =
        Arc::new(ids.iter().map(|id| id.parse().expect("a UUID")).collect());
    let direct = load(duration, move || {
        let (pool, uuids) = (pool.clone(), uuids.clone());
        async move {
            let id = uuids[rand::random_range(0..uuids.len())];
            read_directly(&pool, id).await.is_ok()
        }
    })
    .await;
    direct.print("same reads through the pool");
    println!(
        "HTTP GET / direct pool: throughput {:.2}, p50 latency {:.2}",
        http_get.per_second / direct.per_second,
        http_get.p50.as_secs_f64() / direct.p50.as_secs_f64()
    );
    drop(stack);

    let rotating = Arc::new(
        Stack::start(StackOptions {
            gateway_args: vec!["--max-connection-age".into(), "3".into()],
            api_args: vec![
                "--pool-size".into(),
                "16".into(),
                "--max-connection-lifetime-ms".into(),
                "2000".into(),
            ],
            token_lifetime: Duration::from_secs(5),
            ..StackOptions::default()
        })
        .await,
    );
    let ids = Arc::new(create_customers(&rotating, 200).await);
    let stop = Arc::new(AtomicBool::new(false));
    let rotator = {
        let (rotating, stop) = (rotating.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rotations = 0;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                rotating.rotate(Duration::from_secs(5)).await;
                rotations += 1;
            }
            rotations
        })
    };
    let while_rotating = load(duration, get_by_id(&rotating, &ids)).await;
    stop.store(true, Ordering::Relaxed);
    let rotations = rotator.await.expect("rotator ends");
    while_rotating.print("GET by id while rotating");
    println!(
        "rotations {rotations}, GetSecretValue calls {}",
        rotating.emulator_requests("GetSecretValue").await
    );
}
