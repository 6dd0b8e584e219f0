//! The pool against the token-checking gateway, with the secret kept in
//! moto's Secrets Manager (an independent implementation): a rejected token
//! is replaced by reading the secret again, a rejection a new read cannot
//! cure fails at once without looping, and concurrent first reads collapse
//! into one `GetSecretValue` call.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use dsql_token::{Action, TokenRequest};
use secret_pool::{Error, PoolConfig, SecretPool, SecretSource, SourceConfig, TlsMode};
use test_support::Gateway;

const KEY_ID: &str = "AKIDSECRETPOOLTEST";
const KEY_SECRET: &str = "secret-pool-test-key";
const WRONG_SECRET: &str = "not-the-gateway-key";

/// moto's server on a loopback port; killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let port = test_support::free_port();
        let child = Command::new(test_support::venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        // Dropping `moto` kills and reaps the process, also on panic.
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        // moto prints no ready line of its own, so readiness is the port
        // accepting connections, tried for up to 30 s.
        for _ in 0..300 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not accept connections on port {port}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

fn token(secret_key: &str, signed_at: SystemTime, lifetime: Duration) -> String {
    let credentials = Credentials::new(KEY_ID, secret_key, None, None, "test");
    let request = TokenRequest::new(
        Gateway::HOSTNAME,
        Gateway::REGION,
        Action::DbConnectAdmin,
        lifetime,
    )
    .unwrap();
    dsql_token::generate(&credentials, &request, signed_at)
        .unwrap()
        .expose_secret()
        .to_owned()
}

fn secret_json(gateway: &Gateway, token: &str) -> String {
    serde_json::json!({
        "username": "admin", "password": token, "host": Gateway::HOSTNAME,
        "engine": "postgres", "port": gateway.addr().port(), "dbname": "postgres"
    })
    .to_string()
}

struct Setup {
    _moto: Moto,
    gateway: Gateway,
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

async fn setup(first_token: &str) -> Setup {
    let moto = Moto::start();
    let gateway = Gateway::start(&test_support::database_url(), KEY_ID, KEY_SECRET);
    let client = secrets_client(&moto.endpoint).await;
    let secret_id = "secret-pool/test".to_owned();
    client
        .create_secret()
        .name(&secret_id)
        .secret_string(secret_json(&gateway, first_token))
        .send()
        .await
        .expect("CreateSecret succeeds on moto");
    Setup {
        _moto: moto,
        gateway,
        client,
        secret_id,
    }
}

fn pool(setup: &Setup, source_config: SourceConfig) -> SecretPool {
    let source = Arc::new(SecretSource::new(
        setup.client.clone(),
        &setup.secret_id,
        source_config,
    ));
    let config = PoolConfig {
        tls: TlsMode::VerifyFull {
            ca_file: Some(setup.gateway.ca_file()),
        },
        ..PoolConfig::default()
    };
    SecretPool::new(source, config).unwrap()
}

/// A cache that only a rejection refreshes: a long TTL and no refresh
/// before expiry.
fn rejection_only() -> SourceConfig {
    SourceConfig {
        ttl: Duration::from_secs(600),
        refresh_before_expiry: Duration::ZERO,
        min_refresh_interval: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_token_is_replaced_by_rotated_one() {
    let now = SystemTime::now();
    let wrong = token(WRONG_SECRET, now, Duration::from_secs(900));
    let setup = setup(&wrong).await;
    let pool = pool(
        &setup,
        SourceConfig {
            min_refresh_interval: Duration::ZERO,
            ..rejection_only()
        },
    );
    pool.source().current().await.unwrap();

    let good = token(KEY_SECRET, now, Duration::from_secs(900));
    setup
        .client
        .put_secret_value()
        .secret_id(&setup.secret_id)
        .secret_string(secret_json(&setup.gateway, &good))
        .send()
        .await
        .unwrap();

    let connection = pool.get().await.expect("the pool reads the rotated token");
    let row = connection.query_one("SELECT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);

    let stats = pool.source().stats();
    assert_eq!(stats.reads, 2);
    assert_eq!(stats.rejection_refreshes, 1);
    assert_eq!(pool.stats().credential_rejections, 1);
    assert_eq!(pool.stats().connections_opened, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_fails_without_rereading_in_a_loop() {
    let wrong = token(WRONG_SECRET, SystemTime::now(), Duration::from_secs(900));
    let setup = setup(&wrong).await;
    let pool = pool(&setup, rejection_only());

    for _ in 0..5 {
        let error = pool.get().await.err().expect("the wrong token is rejected");
        assert!(
            matches!(error, Error::Rejected { expired: false, .. }),
            "{error}"
        );
        let message = error.to_string();
        assert!(message.contains("fp:"), "{message}");
        assert!(!message.contains("X-Amz-Signature"), "{message}");
    }
    assert_eq!(pool.source().stats().reads, 1);
    assert_eq!(pool.stats().credential_rejections, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_reported_as_expired() {
    let signed_at = SystemTime::now() - Duration::from_secs(120);
    let expired = token(KEY_SECRET, signed_at, Duration::from_secs(60));
    let setup = setup(&expired).await;
    let pool = pool(&setup, rejection_only());

    let error = pool
        .get()
        .await
        .err()
        .expect("the expired token is rejected");
    assert!(
        matches!(error, Error::Rejected { expired: true, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("expired"), "{error}");
    assert_eq!(pool.source().stats().reads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_reads_collapse_into_one() {
    let good = token(KEY_SECRET, SystemTime::now(), Duration::from_secs(900));
    let setup = setup(&good).await;
    let source = Arc::new(SecretSource::new(
        setup.client.clone(),
        &setup.secret_id,
        SourceConfig::default(),
    ));

    let mut readers = Vec::new();
    for _ in 0..20 {
        let source = source.clone();
        readers.push(tokio::spawn(async move {
            source.current().await.map(|s| s.fingerprint())
        }));
    }
    let mut fingerprints = Vec::new();
    for reader in readers {
        fingerprints.push(reader.await.unwrap().unwrap());
    }
    assert!(fingerprints.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(source.stats().reads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_error_names_it() {
    let good = token(KEY_SECRET, SystemTime::now(), Duration::from_secs(900));
    let setup = setup(&good).await;
    let source = SecretSource::new(
        setup.client.clone(),
        "no/such/secret",
        SourceConfig::default(),
    );
    let message = source.current().await.unwrap_err().to_string();
    assert!(message.contains("no/such/secret"), "{message}");
    assert!(message.contains("ResourceNotFoundException"), "{message}");
}
