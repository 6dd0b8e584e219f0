//! A local AWS Secrets Manager: the service's JSON protocol with SigV4
//! verification, durable state, and rotation through real rotation
//! functions run as child processes over the Lambda runtime API.
//!
//! It covers the operations a rotation protocol needs (create, read, put,
//! move labels, list, delete, restore, rotate, cancel, tags and resource
//! policies). It does not replicate secrets, encrypt with KMS or evaluate
//! resource policies.
//!
//! ```no_run
//! # async fn example() -> Result<(), secrets_emulator::Error> {
//! use secrets_emulator::{AccessKey, Config, Emulator};
//!
//! let config = Config::new(
//!     "127.0.0.1:0".parse().unwrap(),
//!     "/tmp/secrets-state".into(),
//!     vec![AccessKey { id: "AKIDLOCAL".into(), secret: "local-secret".into() }],
//! );
//! let emulator = Emulator::start(config).await?;
//! println!("listening on {}", emulator.addr());
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod auth;
mod error;
mod lambda;
mod metrics;
mod model;
mod ops;
mod rotation;
mod runtime_api;
mod schedule;
mod server;
mod store;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use auth::AccessKey;
pub use error::{ApiError, Error};
pub use model::RotationFailure;
pub use rotation::STEPS as ROTATION_STEPS;

/// A rotation function: `NAME` in `arn:aws:lambda:REGION:ACCOUNT:function:NAME`
/// and the executable that implements it with `lambda_runtime`.
#[derive(Debug, Clone)]
pub struct RotationFunction {
    /// The function name.
    pub name: String,
    /// The executable.
    pub path: PathBuf,
}

/// The emulator's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the API listens; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the state is kept.
    pub state_dir: PathBuf,
    /// Access keys whose signatures are accepted; the first is handed to
    /// rotation functions.
    pub access_keys: Vec<AccessKey>,
    /// The region requests must be signed for and ARNs carry.
    pub region: String,
    /// The account id in ARNs.
    pub account_id: String,
    /// The rotation functions `RotateSecret` can name.
    pub rotation_functions: Vec<RotationFunction>,
    /// Accept rotation schedules under four hours, down to `rate(1 second)`.
    pub allow_short_schedules: bool,
    /// How long one rotation step may take (the service's template uses 60 s).
    pub invocation_timeout: Duration,
    /// How often the scheduler looks for due rotations.
    pub scheduler_tick: Duration,
}

impl Config {
    /// Settings with the defaults: region `us-east-1`, account
    /// `123456789012`, no rotation functions, the four-hour minimum
    /// schedule, 60 s per step, a scheduler tick of one second.
    pub fn new(listen: SocketAddr, state_dir: PathBuf, access_keys: Vec<AccessKey>) -> Config {
        Config {
            listen,
            state_dir,
            access_keys,
            region: String::from("us-east-1"),
            account_id: String::from("123456789012"),
            rotation_functions: Vec::new(),
            allow_short_schedules: false,
            invocation_timeout: Duration::from_secs(60),
            scheduler_tick: Duration::from_secs(1),
        }
    }
}

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    functions: Vec<Arc<lambda::Function>>,
}

impl Emulator {
    /// Loads the state, binds the listeners and starts serving.
    pub async fn start(config: Config) -> Result<Emulator, Error> {
        let Some(first_key) = config.access_keys.first().cloned() else {
            return Err(Error::Config(String::from(
                "at least one access key is needed; pass --access-key ID:SECRET",
            )));
        };
        let mut names: Vec<&str> = config
            .rotation_functions
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(Error::Config(format!(
                "rotation function {} is configured twice; give each function its own name",
                pair[0]
            )));
        }
        let store = Arc::new(Store::open(&config.state_dir)?);
        let metrics = Arc::new(metrics::Metrics::default());
        let listener = bind(config.listen).await?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let endpoint_host = if addr.ip().is_unspecified() {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        } else {
            addr
        };

        let mut background = Vec::new();
        let mut functions = HashMap::new();
        for spec in &config.rotation_functions {
            let runtime_listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
            let runtime_addr = runtime_listener
                .local_addr()
                .map_err(|source| Error::Bind {
                    addr: config.listen,
                    source,
                })?;
            let arn = format!(
                "arn:aws:lambda:{}:{}:function:{}",
                config.region, config.account_id, spec.name
            );
            let env = function_env(&config, &spec.name, &first_key, endpoint_host, runtime_addr);
            let function = Arc::new(lambda::Function::new(
                spec.name.clone(),
                arn,
                spec.path.clone(),
                env,
                config.invocation_timeout,
            ));
            let router = runtime_api::router(Arc::clone(&function));
            background.push(tokio::spawn(async move {
                if let Err(error) = axum::serve(runtime_listener, router).await {
                    tracing::error!(%error, "runtime API listener failed");
                }
            }));
            functions.insert(spec.name.clone(), function);
        }

        let rotator = Arc::new(rotation::Rotator::new(
            Arc::clone(&store),
            Arc::clone(&metrics),
            functions.clone(),
            config.allow_short_schedules,
        ));
        background.push(tokio::spawn(
            Arc::clone(&rotator).run_scheduler(config.scheduler_tick),
        ));

        let shared = Arc::new(server::Shared {
            store,
            metrics,
            verifier: auth::Verifier::new(&config.access_keys, &config.region),
            rotator,
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            allow_short_schedules: config.allow_short_schedules,
            function_names: functions.keys().cloned().collect(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let router = server::router(shared);
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "API listener failed");
            }
        });

        Ok(Emulator {
            addr,
            stop: Some(stop),
            server,
            background,
            functions: functions.into_values().collect(),
        })
    }

    /// The bound address of the API.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving, the scheduler and the rotation functions' processes.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for task in &self.background {
            task.abort();
        }
        for function in &self.functions {
            function.stop();
        }
        let _ = (&mut self.server).await;
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// The variables a rotation function gets on top of the emulator's own
/// environment, as Lambda sets them, plus the emulator's endpoint and key.
fn function_env(
    config: &Config,
    name: &str,
    key: &AccessKey,
    endpoint: SocketAddr,
    runtime_api: SocketAddr,
) -> Vec<(String, String)> {
    let stream = format!(
        "{}/[$LATEST]{}",
        time::OffsetDateTime::now_utc().date(),
        uuid::Uuid::new_v4().simple()
    );
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            format!("http://{endpoint}"),
        ),
        ("AWS_REGION", config.region.clone()),
        ("AWS_DEFAULT_REGION", config.region.clone()),
        ("AWS_ACCESS_KEY_ID", key.id.clone()),
        ("AWS_SECRET_ACCESS_KEY", key.secret.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", String::from("128")),
        ("AWS_LAMBDA_FUNCTION_VERSION", String::from("$LATEST")),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

use store::Store;
