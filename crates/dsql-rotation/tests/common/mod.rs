//! The test stack for the rotation steps: moto as the Secrets Manager, the
//! token-checking gateway in front of the real PostgreSQL, and the AWS SDK
//! client between them.
//!
//! moto never runs a rotation function by itself, so [`Stack::begin_rotation`]
//! leaves the secret as RotateSecret does on AWS (an AWSPENDING version with
//! no value) and [`Stack::rotate`] then invokes the four steps in the
//! service's order.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Intercept, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use dsql_rotation::{
    AWSCURRENT, AWSPENDING, HostPolicy, RotationConfig, RotationEvent, Rotator, Step,
    TokenSchedule, TrustRoots,
};
use dsql_token::{Action, AuthToken, TokenRequest};
use test_support::Gateway;

pub const ACCESS_KEY_ID: &str = "AKIAROTATIONTEST0001";
pub const SECRET_ACCESS_KEY: &str = "rotation-test-secret-access-key";
pub const REGION: &str = "us-east-1";

/// moto's Secrets Manager on a loopback port; killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = test_support::free_port();
        let child = Command::new(test_support::venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start moto_server");
        // Wait for the port to accept connections; moto prints no line we
        // could wait for that is stable across versions.
        let address = format!("127.0.0.1:{port}");
        let mut waited = Duration::ZERO;
        while TcpStream::connect(&address).is_err() {
            assert!(
                waited < Duration::from_secs(60),
                "moto_server did not listen on {address} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
            waited += Duration::from_millis(100);
        }
        Moto {
            child,
            endpoint: format!("http://{address}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// When a [`FailingCall`] interceptor makes a call fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// The request never reaches Secrets Manager.
    BeforeSend,
    /// Secrets Manager handles the request but its response is lost.
    AfterSend,
}

/// An SDK interceptor that fails the `nth` call (1-based) of a client, for
/// faults that cannot be caused for real: a network failure on one call.
#[derive(Debug)]
pub struct FailingCall {
    nth: usize,
    point: FaultPoint,
    calls: Arc<AtomicUsize>,
}

impl FailingCall {
    fn fails(&self, point: FaultPoint) -> bool {
        self.point == point && self.calls.load(Ordering::SeqCst) == self.nth
    }
}

impl Intercept for FailingCall {
    fn name(&self) -> &'static str {
        "FailingCall"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fails(FaultPoint::BeforeSend) {
            return Err("simulated network failure before sending".into());
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.fails(FaultPoint::AfterSend) {
            return Err("simulated loss of the response".into());
        }
        Ok(())
    }
}

/// moto, the gateway and clients for both.
pub struct Stack {
    pub moto: Moto,
    pub gateway: Gateway,
}

impl Stack {
    pub fn start() -> Stack {
        let moto = Moto::start();
        let gateway = Gateway::start(
            &test_support::database_url(),
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
        );
        Stack { moto, gateway }
    }

    pub fn credentials() -> Credentials {
        Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "rotation-tests",
        )
    }

    fn client_config(&self) -> aws_sdk_secretsmanager::config::Builder {
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.moto.endpoint)
            .credentials_provider(Self::credentials())
            .retry_config(RetryConfig::disabled())
    }

    pub fn client(&self) -> Client {
        Client::from_conf(self.client_config().build())
    }

    /// Returns a client whose `nth` call fails at `point`, and the counter
    /// of calls it made.
    pub fn failing_client(&self, nth: usize, point: FaultPoint) -> (Client, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let interceptor = FailingCall {
            nth,
            point,
            calls: calls.clone(),
        };
        let config = self.client_config().interceptor(interceptor).build();
        (Client::from_conf(config), calls)
    }

    /// The rotation configuration for the gateway: `localhost` allowed, the
    /// gateway's CA trusted, 8-hour tokens.
    pub fn config(&self) -> RotationConfig {
        let mut roots = TrustRoots::amazon();
        let pem = std::fs::read(self.gateway.ca_file()).expect("gateway CA file is readable");
        roots
            .add_pem(&pem, "gateway CA")
            .expect("gateway CA is valid");
        self.config_with_roots(&roots)
    }

    pub fn config_with_roots(&self, roots: &TrustRoots) -> RotationConfig {
        let hosts = HostPolicy::default()
            .allow("localhost")
            .unwrap()
            .allow("127.0.0.1")
            .unwrap();
        RotationConfig::new(
            TokenSchedule::default(),
            hosts,
            roots,
            Some(REGION.to_owned()),
        )
        .unwrap()
    }

    pub fn rotator(&self, client: Client) -> Rotator {
        Rotator::new(
            client,
            SharedCredentialsProvider::new(Self::credentials()),
            self.config(),
        )
    }

    /// The secret value for the gateway with `password`.
    pub fn secret_value(&self, password: &str) -> String {
        serde_json::json!({
            "username": "admin",
            "password": password,
            "host": "localhost",
            "engine": "postgres",
            "port": self.gateway.addr().port().to_string(),
            "dbname": "postgres",
        })
        .to_string()
    }

    /// Creates a secret holding `value`, with rotation enabled. Returns its
    /// ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> String {
        let client = self.client();
        let arn = client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("CreateSecret")
            .arn()
            .expect("CreateSecret returns the ARN")
            .to_owned();
        // moto enables rotation only through RotateSecret with rules; it
        // then moves AWSCURRENT to a new empty version at once, so put the
        // value back as the current version.
        client
            .rotate_secret()
            .secret_id(&arn)
            .rotation_rules(
                aws_sdk_secretsmanager::types::RotationRulesType::builder()
                    .automatically_after_days(1)
                    .build(),
            )
            .send()
            .await
            .expect("RotateSecret to enable rotation");
        client
            .put_secret_value()
            .secret_id(&arn)
            .secret_string(value)
            .send()
            .await
            .expect("PutSecretValue of the initial value");
        arn
    }

    /// Leaves the secret as RotateSecret does before it invokes the
    /// function: a new version `version` labelled AWSPENDING, without a
    /// value. The current version stays AWSCURRENT.
    pub async fn begin_rotation(&self, arn: &str, version: &str) {
        let client = self.client();
        let current = self
            .version_with(arn, AWSCURRENT)
            .await
            .expect("a current version");
        client
            .rotate_secret()
            .secret_id(arn)
            .client_request_token(version)
            .send()
            .await
            .expect("RotateSecret");

        // moto has now labelled the empty version AWSCURRENT, and it takes
        // the label from its own idea of the default version, which may
        // not be the current one. Put the labels back as AWS leaves them.
        let stages = self.stages(arn).await;
        let current_kept = stages[&current].iter().any(|label| label == AWSCURRENT);
        let update = |stage: &'static str| {
            client
                .update_secret_version_stage()
                .secret_id(arn)
                .version_stage(stage)
        };
        if current_kept {
            update(AWSCURRENT)
                .remove_from_version_id(version)
                .send()
                .await
                .expect("remove AWSCURRENT from the new version");
        } else {
            update(AWSCURRENT)
                .move_to_version_id(&current)
                .remove_from_version_id(version)
                .send()
                .await
                .expect("move AWSCURRENT back");
        }
        let stages = self.stages(arn).await;
        for (other, labels) in &stages {
            if labels.iter().any(|label| label == "AWSPREVIOUS")
                && (other == version || other == &current)
            {
                update("AWSPREVIOUS")
                    .remove_from_version_id(other)
                    .send()
                    .await
                    .expect("remove AWSPREVIOUS");
            }
        }
        let pending = self.version_with(arn, AWSPENDING).await;
        update(AWSPENDING)
            .move_to_version_id(version)
            .set_remove_from_version_id(pending)
            .send()
            .await
            .expect("label the new version AWSPENDING");
        let stages = self.stages(arn).await;
        assert_eq!(stages[version], vec![AWSPENDING.to_owned()], "{stages:?}");
        assert_eq!(stages[&current], vec![AWSCURRENT.to_owned()], "{stages:?}");
    }

    /// Runs the four steps in order, as Secrets Manager does, and stops at
    /// the first failure.
    pub async fn rotate(
        &self,
        rotator: &Rotator,
        arn: &str,
        version: &str,
    ) -> Result<(), dsql_rotation::Error> {
        for step in [
            Step::CreateSecret,
            Step::SetSecret,
            Step::TestSecret,
            Step::FinishSecret,
        ] {
            let event = RotationEvent::new(arn, version, step.as_str())?;
            rotator.run(&event).await?;
        }
        Ok(())
    }

    pub async fn stages(&self, arn: &str) -> HashMap<String, Vec<String>> {
        self.client()
            .describe_secret()
            .secret_id(arn)
            .send()
            .await
            .expect("DescribeSecret")
            .version_ids_to_stages()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn version_with(&self, arn: &str, stage: &str) -> Option<String> {
        self.stages(arn)
            .await
            .into_iter()
            .find(|(_, stages)| stages.iter().any(|label| label == stage))
            .map(|(version, _)| version)
    }

    /// Returns the value of the version labelled `stage`, or `None`.
    pub async fn value(&self, arn: &str, stage: &str) -> Option<String> {
        self.client()
            .get_secret_value()
            .secret_id(arn)
            .version_stage(stage)
            .send()
            .await
            .ok()
            .and_then(|output| output.secret_string().map(str::to_owned))
    }

    pub async fn password(&self, arn: &str, stage: &str) -> AuthToken {
        let value = self
            .value(arn, stage)
            .await
            .expect("the version has a value");
        let json: serde_json::Value = serde_json::from_str(&value).unwrap();
        AuthToken::new(json["password"].as_str().expect("password is a string"))
    }

    /// Makes a token for the gateway signed at `signed_at`.
    pub fn token_signed_at(&self, signed_at: SystemTime, lifetime: Duration) -> AuthToken {
        let request =
            TokenRequest::new("localhost", REGION, Action::DbConnectAdmin, lifetime).unwrap();
        dsql_token::generate(&Self::credentials(), &request, signed_at).unwrap()
    }

    /// Logs in through the gateway with `token` over verified TLS and runs
    /// `SELECT 1`; returns the error text on failure.
    pub async fn login(&self, token: &AuthToken) -> Result<(), String> {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(self.gateway.ca_file()).unwrap();
        for certificate in rustls_pemfile::certs(&mut &pem[..]) {
            roots.add(certificate.unwrap()).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut config = tokio_postgres::Config::new();
        config
            .host("localhost")
            .port(self.gateway.addr().port())
            .user("admin")
            .dbname("postgres")
            .password(token.expose_secret())
            .ssl_mode(tokio_postgres::config::SslMode::Require);
        let (client, connection) = config
            .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
            .await
            .map_err(|error| format!("{error:?}"))?;
        tokio::spawn(connection);
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|error| error.to_string())?;
        Ok(())
    }
}

/// A buffer that collects everything the `tracing` subscriber prints.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Returns a version id in the form Secrets Manager uses (32 to 64
/// characters).
pub fn new_version_id(label: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{label}-{n:04}-{:032}", std::process::id())
}
