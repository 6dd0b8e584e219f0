//! Helpers for integration tests: locate the workspace, its test data, the
//! Python tools and binaries, and run real servers on loopback ports chosen
//! at run time. Every helper panics with a message that says what to do,
//! because a missing prerequisite must fail a test, never skip it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long a server may take to print its `listening on ADDR` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Returns the workspace root (the folder holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("test-support lives two levels below the workspace root")
        .to_path_buf()
}

/// Returns the folder of independent test data (`DSQL_TESTDATA_DIR`, or the
/// `shared/testdata` folder beside the workspace).
pub fn testdata_dir() -> PathBuf {
    match std::env::var_os("DSQL_TESTDATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared/testdata"),
    }
}

/// Returns `DATABASE_URL`, the PostgreSQL that tests may use.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set; run the tests with scripts/test.sh, or set it to a \
             PostgreSQL URL such as postgres://postgres@127.0.0.1:5432/postgres"
        )
    })
}

/// Returns the path of a program in the test virtual environment
/// (`DSQL_TEST_VENV`, default `<root>/.venv`).
pub fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("DSQL_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"));
    let path = venv.join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing; run scripts/setup-python.sh (or scripts/test.sh) to create the test \
         virtual environment",
        path.display()
    );
    path
}

/// Returns the folder of the PostgreSQL server binaries (`initdb`,
/// `pg_ctl`): `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`, else the folder of `initdb` on `PATH`.
pub fn postgres_bindir() -> PathBuf {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").is_file() {
            return dir;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|dir| dir.join("initdb").is_file()));
    on_path.unwrap_or_else(|| {
        panic!("no PostgreSQL server binaries (initdb, pg_ctl) found; install Debian's postgresql package")
    })
}

/// Returns the target directory cargo builds into.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Builds a workspace binary (debug profile) once per test process and
/// returns its path, so a test never runs a stale binary.
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = format!("{package}/{bin}");
    if !built.contains(&key) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", package, "--bin", bin])
            .current_dir(workspace_root())
            .status()
            .unwrap_or_else(|error| panic!("cannot run cargo to build {bin}: {error}"));
        assert!(
            status.success(),
            "cargo build -p {package} --bin {bin} failed"
        );
        built.push(key);
    }
    target_dir().join("debug").join(bin)
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("cannot bind a loopback port")
}

/// A child process that printed `listening on ADDR`; killed when dropped.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    output: Arc<Mutex<String>>,
}

impl Server {
    /// Spawns `command` and waits until it prints `listening on ADDR` on
    /// standard output. All of its output is kept for [`Server::output`].
    pub fn start(command: Command) -> Server {
        Self::start_until(command, "listening on ")
    }

    /// Spawns `command` and waits for a standard output line that starts
    /// with `marker` followed by an address (`http://` before it is
    /// allowed), such as `ready: customer service on http://127.0.0.1:8080`.
    pub fn start_until(mut command: Command, marker: &str) -> Server {
        let description = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {description}: {error}"));

        let output = Arc::new(Mutex::new(String::new()));
        let (ready_sender, ready) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        collect(
            stdout,
            Arc::clone(&output),
            Some((marker.to_owned(), ready_sender)),
        );
        collect(stderr, Arc::clone(&output), None);

        let addr = match ready.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let output = output.lock().map(|text| text.clone()).unwrap_or_default();
                panic!("{description} did not print `{marker}ADDR`; its output:\n{output}");
            }
        };
        Server {
            child,
            addr,
            output,
        }
    }

    /// Returns the address from the `listening on` line.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns everything the process printed so far, both streams.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .map(|text| text.clone())
            .unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("cannot wait for the server")
    }

    /// Sends SIGINT, as Ctrl-C in a terminal would, and waits for the
    /// process to exit.
    pub fn interrupt(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("cannot wait for the server")
    }

    /// Sends SIGKILL and waits for the process to exit.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("cannot wait for the server")
    }

    /// Returns the exit status if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(
    stream: impl std::io::Read + Send + 'static,
    output: Arc<Mutex<String>>,
    ready: Option<(String, mpsc::Sender<SocketAddr>)>,
) {
    std::thread::spawn(move || {
        let mut ready = ready;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some((marker, sender)) = &ready
                && let Some(addr) = ready_addr(&line, marker)
            {
                let _ = sender.send(addr);
                ready = None;
            }
            if let Ok(mut text) = output.lock() {
                text.push_str(&line);
                text.push('\n');
            }
        }
    });
}

fn ready_addr(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix(marker)?;
    let rest = rest.strip_prefix("http://").unwrap_or(rest);
    rest.split_whitespace()
        .next()?
        .trim_end_matches('/')
        .parse()
        .ok()
}

/// The token-checking gateway (`dsql-secrets local gateway`) on a loopback
/// port, for hostname `localhost` and region `us-east-1`, logging at
/// `trace`.
pub struct Gateway {
    server: Server,
    ca_dir: tempfile::TempDir,
}

impl Gateway {
    /// Hostname the gateway serves; tokens must be signed for it.
    pub const HOSTNAME: &'static str = "localhost";
    /// Region the gateway serves.
    pub const REGION: &'static str = "us-east-1";

    /// Starts a gateway in front of `upstream_url` that accepts tokens signed
    /// by the given access key.
    pub fn start(upstream_url: &str, access_key_id: &str, secret_access_key: &str) -> Gateway {
        Self::start_with(upstream_url, access_key_id, secret_access_key, &[])
    }

    /// Like [`Gateway::start`], with extra command-line flags.
    pub fn start_with(
        upstream_url: &str,
        access_key_id: &str,
        secret_access_key: &str,
        extra_args: &[&str],
    ) -> Gateway {
        let ca_dir = tempfile::tempdir().expect("cannot create a temporary folder");
        let ca_file = ca_dir.path().join("gateway-ca.pem");
        let mut command = Command::new(cargo_bin("dsql-secrets", "dsql-secrets"));
        command
            .args(["local", "gateway", "--listen", "127.0.0.1:0"])
            .args(["--upstream", upstream_url])
            .args(["--hostname", Self::HOSTNAME, "--region", Self::REGION])
            .arg("--access-key")
            .arg(format!("{access_key_id}:{secret_access_key}"))
            .arg("--ca-out")
            .arg(&ca_file)
            .args(extra_args)
            // The most verbose level, so tests can check that no log line
            // at any level carries a secret.
            .env("RUST_LOG", "trace");
        let server = Server::start(command);
        Gateway { server, ca_dir }
    }

    /// Returns the gateway's address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Returns the PEM file of the CA that signed the gateway's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.ca_dir.path().join("gateway-ca.pem")
    }

    /// Returns the gateway process.
    pub fn server(&mut self) -> &mut Server {
        &mut self.server
    }

    /// Returns everything the gateway printed so far.
    pub fn output(&self) -> String {
        self.server.output()
    }
}
