//! The whole local stack for the service's integration tests: a database of
//! its own on the real PostgreSQL, the token-checking gateway in front of
//! it, the Secrets Manager emulator holding the connection secret, and the
//! `customer-api` binary reading that secret, all on loopback ports chosen
//! at run time.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use dsql_token::{Action, TokenRequest};
use test_support::Server;

/// Access key the gateway and the emulator accept in these tests.
pub const KEY_ID: &str = "AKIDCUSTOMERAPITEST";
/// Its secret access key.
pub const KEY_SECRET: &str = "customer-api-test-secret-key";
/// Region of the emulator and of the tokens.
pub const REGION: &str = "us-east-1";
/// Name of the connection secret.
pub const SECRET_ID: &str = "customer-api/dsql";

/// What to vary between stacks.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Extra flags for the gateway.
    pub gateway_args: Vec<String>,
    /// Extra flags for the service.
    pub api_args: Vec<String>,
    /// Lifetime of the token stored in the secret at start.
    pub token_lifetime: Duration,
    /// The upstream PostgreSQL URL; a new database on `DATABASE_URL` when
    /// `None`.
    pub upstream: Option<String>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            gateway_args: Vec::new(),
            api_args: Vec::new(),
            token_lifetime: Duration::from_secs(900),
            upstream: None,
        }
    }
}

/// The running stack; every process stops when it is dropped.
pub struct Stack {
    pub api: Server,
    pub gateway: Gateway,
    pub emulator: Server,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub http: reqwest::Client,
    database: Option<TestDatabase>,
    _state_dir: tempfile::TempDir,
}

impl Stack {
    /// Starts the stack and waits until the service listens.
    pub async fn start(options: StackOptions) -> Stack {
        let database = match &options.upstream {
            Some(_) => None,
            None => Some(TestDatabase::create().await),
        };
        let upstream = options
            .upstream
            .clone()
            .or_else(|| database.as_ref().map(|database| database.url.clone()))
            .expect("an upstream database");

        let gateway = Gateway::start(&upstream, &options.gateway_args);

        let state_dir = tempfile::tempdir().expect("temporary directory");
        let mut command = Command::new(binary("dsql-secrets", "dsql-secrets"));
        command
            .args(["local", "secrets", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir.path())
            .arg("--access-key")
            .arg(format!("{KEY_ID}:{KEY_SECRET}"));
        let emulator = Server::start(command);
        let endpoint = format!("http://{}", emulator.addr());
        let secrets = secrets_client(&endpoint).await;

        let token = make_token(options.token_lifetime);
        secrets
            .create_secret()
            .name(SECRET_ID)
            .secret_string(secret_json(&gateway, &token))
            .send()
            .await
            .expect("CreateSecret succeeds");

        let api = start_api(&gateway, &endpoint, &options.api_args);
        Stack {
            api,
            gateway,
            emulator,
            secrets,
            http: reqwest::Client::new(),
            database,
            _state_dir: state_dir,
        }
    }

    /// Returns the service's URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api.addr())
    }

    /// Rotates the secret as the rotation function does: puts a new token
    /// as the pending version, then moves `AWSCURRENT` to it.
    pub async fn rotate(&self, lifetime: Duration) {
        let described = self
            .secrets
            .describe_secret()
            .secret_id(SECRET_ID)
            .send()
            .await
            .expect("DescribeSecret succeeds");
        let current_version = described
            .version_ids_to_stages()
            .into_iter()
            .flatten()
            .find(|(_, stages)| stages.iter().any(|stage| stage == "AWSCURRENT"))
            .map(|(version, _)| version.clone())
            .expect("a current version");

        let pending_version = uuid::Uuid::new_v4().to_string();
        self.secrets
            .put_secret_value()
            .secret_id(SECRET_ID)
            .client_request_token(&pending_version)
            .secret_string(secret_json(&self.gateway, &make_token(lifetime)))
            .version_stages("AWSPENDING")
            .send()
            .await
            .expect("PutSecretValue succeeds");
        self.secrets
            .update_secret_version_stage()
            .secret_id(SECRET_ID)
            .version_stage("AWSCURRENT")
            .move_to_version_id(&pending_version)
            .remove_from_version_id(&current_version)
            .send()
            .await
            .expect("UpdateSecretVersionStage succeeds");
    }

    /// Returns the emulator's request counter for one operation.
    pub async fn emulator_requests(&self, operation: &str) -> u64 {
        let text = reqwest::get(format!("http://{}/metrics", self.emulator.addr()))
            .await
            .expect("emulator metrics answer")
            .text()
            .await
            .expect("emulator metrics body");
        let prefix = format!("secretsmanager_requests_total{{operation=\"{operation}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |value| value.trim().parse().expect("a counter value"))
    }

    /// Returns everything the service printed so far.
    pub fn api_output(&self) -> String {
        self.api.output()
    }
}

/// Starts the service against the gateway and the emulator.
pub fn start_api(gateway: &Gateway, endpoint: &str, extra_args: &[String]) -> Server {
    let mut command = Command::new(binary("customer-api", "customer-api"));
    command
        .args([
            "--secret-id",
            SECRET_ID,
            "--listen",
            "127.0.0.1:0",
            "--ca-file",
        ])
        .arg(gateway.ca_file())
        .args(extra_args)
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", KEY_SECRET)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("RUST_LOG", "info");
    Server::start(command)
}

/// Returns the path of a workspace binary: the debug build, or the release
/// build when `CUSTOMER_API_RELEASE_BINARIES` is set (for benchmarks).
pub fn binary(package: &str, bin: &str) -> PathBuf {
    if std::env::var_os("CUSTOMER_API_RELEASE_BINARIES").is_none() {
        return test_support::cargo_bin(package, bin);
    }
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !built.iter().any(|name| name == bin) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--release", "-p", package, "--bin", bin])
            .current_dir(test_support::workspace_root())
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "cargo build --release -p {package} failed"
        );
        built.push(bin.to_owned());
    }
    test_support::target_dir().join("release").join(bin)
}

/// The token-checking gateway (`dsql-secrets local gateway`) for hostname
/// `localhost` in `us-east-1`, logging at info level.
pub struct Gateway {
    server: Server,
    ca_dir: tempfile::TempDir,
}

impl Gateway {
    /// Hostname that tokens and TLS SNI must name.
    pub const HOSTNAME: &'static str = "localhost";

    /// Starts the gateway in front of `upstream` with extra flags.
    pub fn start(upstream: &str, extra_args: &[String]) -> Gateway {
        let ca_dir = tempfile::tempdir().expect("temporary folder");
        let mut command = Command::new(binary("dsql-secrets", "dsql-secrets"));
        command
            .args([
                "local",
                "gateway",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                upstream,
            ])
            .args(["--hostname", Self::HOSTNAME, "--region", REGION])
            .arg("--access-key")
            .arg(format!("{KEY_ID}:{KEY_SECRET}"))
            .arg("--ca-out")
            .arg(ca_dir.path().join("gateway-ca.pem"))
            .args(extra_args)
            .env("RUST_LOG", "info");
        Gateway {
            server: Server::start(command),
            ca_dir,
        }
    }

    /// Returns the gateway's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// Returns the PEM file of the CA that signed the gateway's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.ca_dir.path().join("gateway-ca.pem")
    }
}

/// Returns a Secrets Manager client for the emulator with the test key.
pub async fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(KEY_ID, KEY_SECRET, None, None, "test"))
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

/// Returns a fresh admin token for the gateway's hostname.
pub fn make_token(lifetime: Duration) -> String {
    let credentials = Credentials::new(KEY_ID, KEY_SECRET, None, None, "test");
    let request = TokenRequest::new(Gateway::HOSTNAME, REGION, Action::DbConnectAdmin, lifetime)
        .expect("a valid token request");
    dsql_token::generate(&credentials, &request, SystemTime::now())
        .expect("token generation succeeds")
        .expose_secret()
        .to_owned()
}

/// Returns the connection JSON for the gateway with `token`.
pub fn secret_json(gateway: &Gateway, token: &str) -> String {
    serde_json::json!({
        "username": "admin",
        "password": token,
        "host": Gateway::HOSTNAME,
        "engine": "postgres",
        "port": gateway.addr().port().to_string(),
        "dbname": "postgres",
    })
    .to_string()
}

/// A database of its own on `DATABASE_URL`, dropped with the stack.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name.
    pub async fn create() -> TestDatabase {
        let admin_url = test_support::database_url();
        let name = format!("customer_api_{}", uuid::Uuid::new_v4().simple());
        let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .expect("DATABASE_URL accepts connections");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE succeeds");
        let mut url = url::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
        url.set_path(&name);
        TestDatabase {
            name,
            url: url.to_string(),
            admin_url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs outside async code, so the drop gets a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                        .await
                        .ok()?;
                tokio::spawn(connection);
                client.batch_execute(&statement).await.ok()
            })
        })
        .join();
    }
}

/// A valid customer body with a unique email.
pub fn customer_body(tag: &str) -> serde_json::Value {
    serde_json::json!({
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": format!("ada.{tag}.{}@example.com", uuid::Uuid::new_v4().simple()),
        "addresses": [{
            "street": "12 St James's Square",
            "city": "London",
            "state": "London",
            "postalCode": "sw1y 4lb",
            "country": "UK"
        }]
    })
}
