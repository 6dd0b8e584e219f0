//! The PostgreSQL behind the local gateway: `DATABASE_URL` when set, else a
//! cluster of the local stack's own, made with the system's `initdb` and
//! kept between runs. `initdb` refuses to run as root, so as root the
//! cluster runs as the unprivileged user `nobody`; its files then live where
//! `nobody` can reach them, which the state directory may not be.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The user that runs the cluster when `local up` runs as root.
const UNPRIVILEGED_USER: &str = "nobody";

/// A PostgreSQL the stack may use.
pub struct Postgres {
    /// URL for the gateway's upstream.
    pub url: String,
    /// Human-readable origin, for the summary.
    pub description: String,
    cluster: Option<Cluster>,
}

struct Cluster {
    bindir: PathBuf,
    data_dir: PathBuf,
    run_as: Option<&'static str>,
}

impl Postgres {
    /// Uses `DATABASE_URL`, or starts (creating if needed) the stack's cluster.
    pub fn start(state_dir: &Path, preferred_port: Option<u16>) -> anyhow::Result<Self> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Ok(Self {
                url,
                description: String::from("DATABASE_URL"),
                cluster: None,
            });
        }

        let bindir = find_bindir()?;
        let run_as = is_root().then_some(UNPRIVILEGED_USER);
        let cluster_dir = cluster_dir(state_dir, run_as)?;
        let data_dir = cluster_dir.join("data");
        let cluster = Cluster {
            bindir,
            data_dir: data_dir.clone(),
            run_as,
        };

        if !data_dir.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&cluster_dir)
                .with_context(|| format!("cannot create {}", cluster_dir.display()))?;
            if let Some(user) = run_as {
                chown(&cluster_dir, user)?;
            }
            eprintln_progress(&format!(
                "creating a PostgreSQL cluster in {}",
                data_dir.display()
            ));
            cluster.run(
                "initdb",
                &[
                    "-D".as_ref(),
                    data_dir.as_os_str(),
                    "-U".as_ref(),
                    "postgres".as_ref(),
                    "-A".as_ref(),
                    "trust".as_ref(),
                ],
            )?;
        }

        // A cluster left running by a run that was killed is stopped first,
        // so that it restarts on the port chosen now.
        let _ = cluster.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data_dir.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "stop".as_ref(),
            ],
        );

        let port = super::children::reuse_port(preferred_port.or(Some(55432)));
        let port = if port == 0 { free_port()? } else { port };
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=200",
            cluster_dir.display()
        );
        let log = cluster_dir.join("server.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data_dir.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-o".as_ref(),
                options.as_ref(),
                "start".as_ref(),
            ],
        )?;
        Ok(Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            description: format!("cluster in {}", data_dir.display()),
            cluster: Some(cluster),
        })
    }

    /// Returns the port of the stack's own cluster.
    pub fn port(&self) -> Option<u16> {
        self.cluster.as_ref()?;
        self.url.rsplit_once(':')?.1.split('/').next()?.parse().ok()
    }

    /// Stops the stack's own cluster; a `DATABASE_URL` server is left alone.
    pub fn stop(&self) {
        if let Some(cluster) = &self.cluster {
            let data = cluster.data_dir.as_os_str();
            if let Err(error) = cluster.run(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data,
                    "-m".as_ref(),
                    "fast".as_ref(),
                    "-w".as_ref(),
                    "stop".as_ref(),
                ],
            ) {
                tracing::warn!(%error, "cannot stop the PostgreSQL cluster");
            }
        }
    }
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
        let output = self
            .command(program)
            .args(args)
            .current_dir("/")
            .output()
            .with_context(|| format!("cannot run {program}"))?;
        if !output.status.success() {
            bail!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

/// Where the cluster lives: `STATE/postgres`, unless the unprivileged user
/// cannot reach it, then a folder under `/var/tmp` named after the state
/// directory.
fn cluster_dir(state_dir: &Path, run_as: Option<&str>) -> anyhow::Result<PathBuf> {
    let preferred = state_dir.join("postgres");
    let Some(user) = run_as else {
        return Ok(preferred);
    };
    let reachable = Command::new("runuser")
        .args(["-u", user, "--", "test", "-x"])
        .arg(state_dir)
        .status()
        .is_ok_and(|status| status.success());
    if reachable {
        return Ok(preferred);
    }
    let digest = dsql_token::Fingerprint::of(&state_dir.display().to_string()).to_string();
    let name = digest.trim_start_matches("fp:");
    Ok(PathBuf::from("/var/tmp/dsql-secrets")
        .join(name)
        .join("postgres"))
}

fn find_bindir() -> anyhow::Result<PathBuf> {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").is_file() {
            return Ok(dir);
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
        return Ok(bin);
    }
    bail!(
        "no PostgreSQL server binaries (initdb, pg_ctl) found; install them (Debian: \
         apt-get install postgresql) or set DATABASE_URL to a PostgreSQL the stack may use"
    )
}

fn chown(path: &Path, user: &str) -> anyhow::Result<()> {
    let status = Command::new("chown")
        .arg(user)
        .arg(path)
        .status()
        .context("cannot run chown")?;
    if !status.success() {
        bail!("cannot give {} to user {user}", path.display());
    }
    Ok(())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

#[allow(clippy::print_stderr, reason = "progress of a foreground command")]
fn eprintln_progress(message: &str) {
    eprintln!("{message}");
}
