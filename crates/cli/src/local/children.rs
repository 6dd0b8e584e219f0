//! Child processes of `local up`: started in their own process group (so
//! Ctrl-C reaches only `local up`, which stops them in order), their output
//! appended to a log file, and their `listening on ADDR` line awaited.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{Mutex, oneshot};

/// How long a child may take to print `listening on ADDR`.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A running child that printed its address.
pub struct Child {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
    process: tokio::process::Child,
}

impl Child {
    /// Starts `command`, logging to `log_path`, and waits for its address.
    pub async fn start(
        name: &'static str,
        mut command: Command,
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .await
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let log = std::sync::Arc::new(Mutex::new(log));

        let mut process = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the {name}"))?;

        let (ready_sender, ready) = oneshot::channel();
        let stdout = process.stdout.take().context("stdout is piped")?;
        let stderr = process.stderr.take().context("stderr is piped")?;
        tokio::spawn(copy_lines(
            stdout,
            std::sync::Arc::clone(&log),
            Some(ready_sender),
        ));
        tokio::spawn(copy_lines(stderr, log, None));

        let addr = tokio::select! {
            addr = ready => addr.ok(),
            () = tokio::time::sleep(START_TIMEOUT) => None,
            _ = process.wait() => None,
        };
        let Some(addr) = addr else {
            let _ = process.start_kill();
            anyhow::bail!(
                "the {name} did not start; its log {} ends with:\n{}",
                log_path.display(),
                tail(log_path, 15)
            );
        };
        Ok(Self {
            name,
            addr,
            log_path: log_path.to_owned(),
            process,
        })
    }

    /// Returns whether the child has exited.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.process.try_wait(), Ok(None))
    }

    /// Sends SIGTERM, waits up to `grace`, then kills.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(pid) = self.process.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        if tokio::time::timeout(grace, self.process.wait())
            .await
            .is_err()
        {
            tracing::warn!(child = self.name, "did not stop after SIGTERM; killing it");
            let _ = self.process.kill().await;
        }
    }
}

async fn copy_lines(
    stream: impl tokio::io::AsyncRead + Unpin,
    log: std::sync::Arc<Mutex<tokio::fs::File>>,
    mut ready: Option<oneshot::Sender<SocketAddr>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(addr) = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.trim().parse().ok())
            && let Some(sender) = ready.take()
        {
            let _ = sender.send(addr);
        }
        let mut file = log.lock().await;
        let _ = file.write_all(line.as_bytes()).await;
        let _ = file.write_all(b"\n").await;
    }
}

/// Returns the last `count` lines of a file.
pub fn tail(path: &Path, count: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Returns `port` if it can be bound on 127.0.0.1 now, else 0 (any port).
pub fn reuse_port(port: Option<u16>) -> u16 {
    match port {
        Some(port) if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() => port,
        _ => 0,
    }
}
