//! `dsql-secrets local up`: the whole system on one machine. PostgreSQL, the
//! token-checking gateway, the Secrets Manager emulator running the real
//! rotation function on a schedule, the secret (created, then rotated once),
//! and the customer service, which applies its schema at start.
//!
//! Each part runs as a child process with its log in `STATE/logs/`. Ctrl-C
//! stops them in reverse order. Ports, credentials and data are kept in the
//! state directory, so a second run continues with the same secret and data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use super::children::{Child, reuse_port};
use super::postgres::Postgres;
use super::stack_secret::{ensure_secret, rotate_now, secrets_client};
use crate::secret::{current_version, emulator_rotation_status, summarize_password};
use crate::state::{LocalStack, write_private};

pub(super) const REGION: &str = "us-east-1";
pub(super) const ACCOUNT_ID: &str = "123456789012";
pub(super) const GATEWAY_HOSTNAME: &str = "localhost";
pub(super) const SECRET_NAME: &str = "dsql-local/admin";
pub(super) const FUNCTION_NAME: &str = "dsql-rotation";

#[derive(Args)]
pub struct UpArgs {
    /// Rotate every minute with 3-minute tokens, so rotations can be watched.
    #[arg(long)]
    demo: bool,
    /// Folder for data, logs, credentials and the state file.
    #[arg(long, default_value = ".dsql-local")]
    state_dir: PathBuf,
    /// HTTP port of the customer service.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Folder holding the rotation-lambda and customer-api binaries
    /// (default: the folder of this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

/// Schedule and token lifetime of a run.
pub(super) struct Schedule {
    pub(super) expression: &'static str,
    interval_secs: u64,
    token_lifetime_secs: u64,
}

impl Schedule {
    fn for_mode(demo: bool) -> Self {
        if demo {
            Self {
                expression: "rate(1 minute)",
                interval_secs: 60,
                token_lifetime_secs: 180,
            }
        } else {
            Self {
                expression: "rate(4 hours)",
                interval_secs: 14_400,
                token_lifetime_secs: 28_800,
            }
        }
    }
}

/// The local access key, made once per state directory.
#[derive(Serialize, Deserialize)]
pub(super) struct LocalKey {
    pub(super) access_key_id: String,
    pub(super) secret_access_key: String,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(args.state_dir.join("logs"))
        .with_context(|| format!("cannot create {}", args.state_dir.display()))?;
    let state_dir = args.state_dir.canonicalize()?;
    let _lock = lock_state_dir(&state_dir)?;
    if std::net::TcpListener::bind(("127.0.0.1", args.port)).is_err() {
        anyhow::bail!(
            "port {} is in use on 127.0.0.1; stop what listens there or pass --port",
            args.port
        );
    }
    let logs = state_dir.join("logs");
    let previous = LocalStack::load(&state_dir).ok();
    let key = local_key(&state_dir)?;
    let schedule = Schedule::for_mode(args.demo);
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no parent folder")?
            .to_owned(),
    };
    let rotation_lambda = require_binary(&bin_dir, "rotation-lambda")?;
    let customer_api = require_binary(&bin_dir, "customer-api")?;

    let previous_pg_port = read_port_file(&state_dir.join("postgres.port"));
    let postgres = tokio::task::spawn_blocking({
        let state_dir = state_dir.clone();
        move || Postgres::start(&state_dir, previous_pg_port)
    })
    .await??;
    if let Some(port) = postgres.port() {
        std::fs::write(state_dir.join("postgres.port"), port.to_string())?;
    }
    progress(&format!("PostgreSQL ready ({})", postgres.description));

    let mut children: Vec<Child> = Vec::new();
    let shutdown = super::shutdown_signal();
    tokio::pin!(shutdown);
    let started = tokio::select! {
        started = start_parts(&args, &state_dir, &logs, &key, &schedule, &postgres, previous.as_ref(), &rotation_lambda, &customer_api, &mut children) => started,
        () = &mut shutdown => Err(anyhow::anyhow!("interrupted while starting")),
    };
    let stack = match started {
        Ok(stack) => stack,
        Err(error) => {
            stop_all(&mut children, &postgres).await;
            return Err(error);
        }
    };

    print_summary(&stack, &state_dir, &postgres, &schedule);
    let outcome = watch(&stack, &mut children, shutdown).await;
    stop_all(&mut children, &postgres).await;
    progress("local stack stopped");
    outcome
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site, each argument a distinct part"
)]
async fn start_parts(
    args: &UpArgs,
    state_dir: &Path,
    logs: &Path,
    key: &LocalKey,
    schedule: &Schedule,
    postgres: &Postgres,
    previous: Option<&LocalStack>,
    rotation_lambda: &Path,
    customer_api: &Path,
    children: &mut Vec<Child>,
) -> anyhow::Result<LocalStack> {
    let this_binary = std::env::current_exe()?;
    // The key and the upstream URL (which may hold a password) go to the
    // children in their environment, not on the command line, where any
    // local user could read them.
    let access_key = format!("{}:{}", key.access_key_id, key.secret_access_key);
    let ca_file = state_dir.join("gateway-ca.pem");

    let gateway_port = reuse_port(previous.map(|stack| stack.gateway_addr.port()));
    let mut gateway = Command::new(&this_binary);
    gateway
        .args([
            "local",
            "gateway",
            "--listen",
            &format!("127.0.0.1:{gateway_port}"),
        ])
        .args(["--hostname", GATEWAY_HOSTNAME, "--region", REGION])
        .env("DSQL_GATEWAY_UPSTREAM", &postgres.url)
        .env("DSQL_LOCAL_ACCESS_KEYS", &access_key)
        .arg("--ca-out")
        .arg(&ca_file);
    let gateway = Child::start("gateway", gateway, &logs.join("gateway.log")).await?;
    let gateway_addr = gateway.addr;
    children.push(gateway);
    progress(&format!(
        "DSQL gateway listening on {GATEWAY_HOSTNAME}:{}",
        gateway_addr.port()
    ));

    let emulator_port = reuse_port(previous.and_then(|stack| endpoint_port(&stack.endpoint_url)));
    let mut emulator = Command::new(&this_binary);
    emulator
        .args([
            "local",
            "secrets",
            "--listen",
            &format!("127.0.0.1:{emulator_port}"),
        ])
        .arg("--state-dir")
        .arg(state_dir.join("secrets"))
        .env("DSQL_LOCAL_ACCESS_KEYS", &access_key)
        .args(["--region", REGION, "--account-id", ACCOUNT_ID])
        .arg("--rotation-function")
        .arg(format!("{FUNCTION_NAME}={}", rotation_lambda.display()))
        .arg("--allow-short-schedules")
        // The rotation function inherits the emulator's environment.
        .env("ROTATION_INTERVAL_SECS", schedule.interval_secs.to_string())
        .env(
            "TOKEN_LIFETIME_SECS",
            schedule.token_lifetime_secs.to_string(),
        )
        .env("DSQL_CA_FILE", &ca_file)
        .env("DSQL_ALLOWED_HOSTS", GATEWAY_HOSTNAME)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| String::from("info")),
        );
    let emulator = Child::start(
        "Secrets Manager emulator",
        emulator,
        &logs.join("secrets.log"),
    )
    .await?;
    let endpoint_url = format!("http://{}", emulator.addr);
    children.push(emulator);
    progress(&format!(
        "Secrets Manager emulator listening on {endpoint_url}"
    ));

    let client = secrets_client(&endpoint_url, key).await;
    let secret_id = ensure_secret(&client, gateway_addr).await?;
    rotate_now(&client, &secret_id, schedule, &endpoint_url).await?;

    let mut api = Command::new(customer_api);
    api.args([
        "--secret-id",
        &secret_id,
        "--listen",
        &format!("127.0.0.1:{}", args.port),
    ])
    .arg("--ca-file")
    .arg(&ca_file)
    .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &endpoint_url)
    .env("AWS_ACCESS_KEY_ID", &key.access_key_id)
    .env("AWS_SECRET_ACCESS_KEY", &key.secret_access_key)
    .env_remove("AWS_SESSION_TOKEN")
    .env_remove("AWS_PROFILE")
    .env("AWS_REGION", REGION)
    .env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| String::from("info")),
    );
    let api = Child::start("customer service", api, &logs.join("customer-api.log")).await?;
    let api_addr = api.addr;
    children.push(api);

    let stack = LocalStack {
        endpoint_url,
        region: String::from(REGION),
        access_key_id: key.access_key_id.clone(),
        secret_access_key: key.secret_access_key.clone(),
        secret_id,
        gateway_addr,
        gateway_hostname: String::from(GATEWAY_HOSTNAME),
        ca_file,
        api_addr,
    };
    stack.save(state_dir)?;
    Ok(stack)
}

/// Prints each rotation until Ctrl-C, SIGTERM, or a part exits by itself.
async fn watch(
    stack: &LocalStack,
    children: &mut [Child],
    mut shutdown: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> anyhow::Result<()> {
    let key = LocalKey {
        access_key_id: stack.access_key_id.clone(),
        secret_access_key: stack.secret_access_key.clone(),
    };
    let client = secrets_client(&stack.endpoint_url, &key).await;
    let mut current = current_version(&client, &stack.secret_id)
        .await
        .unwrap_or_default();
    let mut last_failure_date = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(2));

    loop {
        tokio::select! {
            () = shutdown.as_mut() => return Ok(()),
            _ = ticker.tick() => {}
        }
        if let Some(child) = children
            .iter_mut()
            .find_map(|child| child.has_exited().then_some(child))
        {
            anyhow::bail!(
                "the {} exited unexpectedly; its log {} ends with:\n{}",
                child.name,
                child.log_path.display(),
                super::children::tail(&child.log_path, 15)
            );
        }
        if let Ok(version) = current_version(&client, &stack.secret_id).await
            && version != current
        {
            let token = client
                .get_secret_value()
                .secret_id(&stack.secret_id)
                .send()
                .await
                .ok()
                .and_then(|output| output.secret_string().map(summarize_password))
                .and_then(Result::ok);
            let detail = token
                .map(|token| format!(", token {} expires {}", token.fingerprint, token.expires_at))
                .unwrap_or_default();
            progress(&format!("rotated: AWSCURRENT is now {version}{detail}"));
            current = version;
        }
        let failure = emulator_rotation_status(&stack.endpoint_url, &stack.secret_id)
            .await
            .and_then(|status| status.get("lastFailure").cloned())
            .filter(|failure| !failure.is_null());
        if let Some(failure) = failure {
            let date = failure["date"].as_f64();
            if date != last_failure_date {
                progress(&format!(
                    "rotation FAILED at step {}: {}",
                    failure["step"].as_str().unwrap_or("?"),
                    failure["errorMessage"].as_str().unwrap_or("?")
                ));
                last_failure_date = date;
            }
        }
    }
}

async fn stop_all(children: &mut Vec<Child>, postgres: &Postgres) {
    while let Some(mut child) = children.pop() {
        progress(&format!("stopping the {}", child.name));
        child.stop(Duration::from_secs(15)).await;
    }
    postgres.stop();
}

fn local_key(state_dir: &Path) -> anyhow::Result<LocalKey> {
    let path = state_dir.join("credentials.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid", path.display()));
    }
    let id_suffix = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let key = LocalKey {
        access_key_id: format!("AKIDLOCAL{}", &id_suffix[..11]),
        secret_access_key: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
    };
    write_private(&path, serde_json::to_string_pretty(&key)?.as_bytes())?;
    Ok(key)
}

/// Takes an exclusive lock on the state directory for this run. The lock
/// is an advisory `flock`, so it goes away with the process, even a killed
/// one.
fn lock_state_dir(state_dir: &Path) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    let path = state_dir.join("local-up.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        anyhow::anyhow!(
            "{} is in use by another `local up`; stop it first or choose another --state-dir",
            state_dir.display()
        )
    })
}

fn require_binary(bin_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        anyhow::bail!(
            "{} is missing; build it with `cargo build --release` (or pass --bin-dir)",
            path.display()
        )
    }
}

fn read_port_file(path: &Path) -> Option<u16> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn endpoint_port(url: &str) -> Option<u16> {
    url.rsplit_once(':')?.1.trim_end_matches('/').parse().ok()
}

#[allow(clippy::print_stderr, reason = "progress of a foreground command")]
pub(super) fn progress(message: &str) {
    eprintln!("{message}");
}

fn print_summary(stack: &LocalStack, state_dir: &Path, postgres: &Postgres, schedule: &Schedule) {
    let api = format!("http://{}", stack.api_addr);
    let dir = state_dir.display();
    println!();
    println!("The local stack is running (state in {dir}):");
    println!("  PostgreSQL        {}", postgres.description);
    println!(
        "  DSQL gateway      {}:{} (TLS; CA in {})",
        stack.gateway_hostname,
        stack.gateway_addr.port(),
        stack.ca_file.display()
    );
    println!(
        "  Secrets Manager   {} (region {REGION}, key in {dir}/credentials.json)",
        stack.endpoint_url
    );
    println!(
        "  secret            {SECRET_NAME}, rotated {}, tokens live {} s",
        schedule.expression, schedule.token_lifetime_secs
    );
    println!("  customer service  {api}");
    println!();
    println!("Try:");
    println!("  curl -s '{api}/api/v1/customers?page=0&size=20'");
    println!(
        "  curl -s -X POST {api}/api/v1/customers -H 'Content-Type: application/json' \\\n    -d '{{\"firstName\":\"Ada\",\"lastName\":\"Lovelace\",\"email\":\"ada@example.com\",\"addresses\":[{{\"street\":\"12 St James Sq\",\"city\":\"London\",\"state\":\"LDN\",\"postalCode\":\"sw1y 4jh\",\"country\":\"UK\"}}]}}'"
    );
    println!("  curl -s {api}/health/ready");
    println!("  dsql-secrets secret status --state-dir {dir}");
    println!("  dsql-secrets secret show --state-dir {dir}");
    println!("  dsql-secrets psql --state-dir {dir} -- -c 'select count(*) from customers'");
    println!();
    println!("Logs are in {dir}/logs. Press Ctrl-C to stop.");
    println!("ready: customer service on {api}");
}
