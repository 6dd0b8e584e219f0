//! Helpers shared by the emulator's integration tests: an emulator in
//! process or as the real `dsql-secrets` binary, SDK clients, raw signed
//! requests and moto.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use secrets_emulator::{AccessKey, Config, Emulator};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The test-only access key the emulators accept.
pub const KEY_ID: &str = "AKIDEMULATORTEST";
/// Its secret access key.
pub const KEY_SECRET: &str = "emulator-test-secret-key";
pub const REGION: &str = "us-east-1";

/// A `ClientRequestToken` of the required length, distinct per `n`.
pub fn token(n: u32) -> String {
    format!("{n:032}")
}

/// An emulator running inside the test process on a port chosen at run time.
pub struct InProcess {
    pub emulator: Emulator,
    pub state_dir: tempfile::TempDir,
}

impl InProcess {
    pub async fn start() -> InProcess {
        let state_dir = tempfile::tempdir().expect("temporary directory");
        let config = Config::new(
            "127.0.0.1:0".parse().unwrap(),
            state_dir.path().to_path_buf(),
            vec![AccessKey {
                id: KEY_ID.into(),
                secret: KEY_SECRET.into(),
            }],
        );
        let emulator = Emulator::start(config).await.expect("emulator starts");
        InProcess {
            emulator,
            state_dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.emulator.addr()
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }
}

/// A Rust SDK client for the endpoint, signing with `secret`.
pub async fn sdk_client_with(
    endpoint: &str,
    key_id: &str,
    secret: &str,
) -> aws_sdk_secretsmanager::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(key_id, secret, None, None, "test"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

/// A Rust SDK client with the test key.
pub async fn sdk_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    sdk_client_with(endpoint, KEY_ID, KEY_SECRET).await
}

/// An HTTP response: status and body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub body: String,
}

impl RawResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body))
    }

    pub fn error_type(&self) -> String {
        self.json()["__type"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Sends one HTTP/1.1 request and reads the whole response.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");

    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawResponse {
        status,
        body: body.to_owned(),
    }
}

/// The headers of a Secrets Manager request for `operation`, signed with
/// the key (`None`: unsigned).
pub fn api_headers(
    addr: SocketAddr,
    operation: &str,
    body: &[u8],
    key: Option<(&str, &str)>,
    time: SystemTime,
) -> Vec<(String, String)> {
    let mut headers = vec![
        (
            String::from("x-amz-target"),
            format!("secretsmanager.{operation}"),
        ),
        (
            String::from("content-type"),
            String::from("application/x-amz-json-1.1"),
        ),
    ];
    let Some((id, secret)) = key else {
        return headers;
    };
    let identity = Credentials::new(id, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("secretsmanager")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let url = format!("http://{addr}/");
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("signing").into_parts();
    for (name, value) in instructions.headers() {
        headers.push((name.to_owned(), value.to_owned()));
    }
    headers
}

/// Calls `operation` with a JSON body, signed with the test key.
pub async fn call(addr: SocketAddr, operation: &str, body: &Value) -> RawResponse {
    let body = body.to_string().into_bytes();
    let headers = api_headers(
        addr,
        operation,
        &body,
        Some((KEY_ID, KEY_SECRET)),
        SystemTime::now(),
    );
    http(addr, "POST", "/", &headers, &body).await
}

/// The count of `operation` requests in the emulator's metrics.
pub async fn request_count(addr: SocketAddr, operation: &str) -> u64 {
    let metrics = http(addr, "GET", "/metrics", &[], b"").await.body;
    let prefix = format!("secretsmanager_requests_total{{operation=\"{operation}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|n| n.parse().expect("counter"))
        .unwrap_or(0)
}

/// The emulator's rotation record for a secret.
pub async fn rotation_status(addr: SocketAddr, secret_id: &str) -> Value {
    http(
        addr,
        "GET",
        &format!("/_emulator/secrets/{secret_id}/rotation"),
        &[],
        b"",
    )
    .await
    .json()
}

/// Polls until `done` holds for the rotation record, or panics after `limit`.
pub async fn wait_for_rotation(
    addr: SocketAddr,
    secret_id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let status = rotation_status(addr, secret_id).await;
        if done(&status) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rotation of {secret_id} did not reach the expected state; last status: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `dsql-secrets` binary, built once per test process.
pub fn cli_binary() -> PathBuf {
    test_support::cargo_bin("dsql-secrets", "dsql-secrets")
}

/// The test rotation function binary, built once per test process.
pub fn rotation_function_binary() -> PathBuf {
    test_support::cargo_bin("test-rotation-function", "test-rotation-function")
}

/// `dsql-secrets local secrets` on port 0 with the test key, as the
/// acceptance checks call it; `extra` adds flags.
pub fn emulator_command(state_dir: &Path, extra: &[String]) -> Command {
    let mut command = Command::new(cli_binary());
    command
        .args(["local", "secrets", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state_dir)
        .args(["--access-key", &format!("{KEY_ID}:{KEY_SECRET}")])
        .args(extra)
        .env("RUST_LOG", "info");
    command
}

/// The environment for the AWS CLI and boto3 against an endpoint.
pub fn python_env(command: &mut Command, endpoint: &str) {
    command
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", KEY_SECRET)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "");
}

/// `moto_server` from the test virtual environment on a loopback port.
pub struct Moto {
    child: std::process::Child,
    pub addr: SocketAddr,
}

impl Moto {
    pub async fn start() -> Moto {
        let port = test_support::free_port();
        let child = Command::new(test_support::venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto_server did not start on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Moto { child, addr }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
