//! Rotation functions run as a real Lambda runs them: a child process that
//! long-polls the Lambda runtime API for invocations and posts back a
//! response or an error.
//!
//! One process per function, started on the first invocation and again
//! after it exits or times out; invocations are served one at a time. The
//! runtime API itself is in `runtime_api`.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{Notify, oneshot};

/// The failure of an invocation that returned no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    /// The function's `errorType`, or `Emulator.Timeout`,
    /// `Emulator.ProcessExited`, `Emulator.SpawnFailed`.
    pub error_type: String,
    /// The function's `errorMessage`, or the emulator's explanation.
    pub message: String,
}

/// An invocation waiting for, or being served by, the function's process.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// The event, JSON.
    pub payload: Vec<u8>,
    /// `Lambda-Runtime-Deadline-Ms`: epoch milliseconds.
    pub deadline_ms: u128,
}

type Reply = Result<Vec<u8>, InvokeError>;

/// A configured rotation function.
#[derive(Debug)]
pub struct Function {
    /// Its name, as in `arn:aws:lambda:...:function:NAME`.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    path: PathBuf,
    env: Vec<(String, String)>,
    timeout: Duration,
    queue: Mutex<VecDeque<Invocation>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    process: Mutex<Option<Process>>,
}

#[derive(Debug)]
struct Process {
    generation: u64,
    kill: oneshot::Sender<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Function {
    /// A function run from the executable at `path`, with `env` added to the
    /// emulator's own environment; each invocation may take `timeout`.
    pub fn new(
        name: String,
        arn: String,
        path: PathBuf,
        env: Vec<(String, String)>,
        timeout: Duration,
    ) -> Function {
        Function {
            name,
            arn,
            path,
            env,
            timeout,
            queue: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            waiting: Mutex::new(HashMap::new()),
            process: Mutex::new(None),
        }
    }

    /// Invokes the function with `payload` and waits for its response.
    pub async fn invoke(self: &Arc<Self>, payload: Vec<u8>) -> Result<Vec<u8>, InvokeError> {
        self.ensure_running()?;

        let request_id = uuid::Uuid::new_v4().to_string();
        let deadline = SystemTime::now() + self.timeout;
        let (reply_sender, reply) = oneshot::channel();
        lock(&self.waiting).insert(request_id.clone(), reply_sender);
        lock(&self.queue).push_back(Invocation {
            request_id: request_id.clone(),
            payload,
            deadline_ms: deadline
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        });
        self.queued.notify_one();

        match tokio::time::timeout(self.timeout, reply).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(InvokeError {
                error_type: String::from("Emulator.ProcessExited"),
                message: String::from("the function's process ended before it responded"),
            }),
            Err(_) => {
                lock(&self.waiting).remove(&request_id);
                lock(&self.queue).retain(|i| i.request_id != request_id);
                self.stop();
                Err(InvokeError {
                    error_type: String::from("Emulator.Timeout"),
                    message: format!(
                        "the function did not answer within {} s; its process was stopped",
                        self.timeout.as_secs()
                    ),
                })
            }
        }
    }

    /// Waits for the next invocation (the runtime API's long poll).
    pub async fn next_invocation(&self) -> Invocation {
        loop {
            let queued = self.queued.notified();
            if let Some(invocation) = lock(&self.queue).pop_front() {
                return invocation;
            }
            queued.await;
        }
    }

    /// Delivers the function's response to an invocation. Returns false
    /// when no invocation with that id is waiting.
    pub fn complete(&self, request_id: &str, reply: Reply) -> bool {
        match lock(&self.waiting).remove(request_id) {
            Some(sender) => sender.send(reply).is_ok(),
            None => false,
        }
    }

    /// Fails every waiting invocation, as when the process failed to start.
    pub fn fail_all(&self, error: &InvokeError) {
        lock(&self.queue).clear();
        for (_, sender) in lock(&self.waiting).drain() {
            let _ = sender.send(Err(error.clone()));
        }
    }

    /// Stops the function's process, if one runs.
    pub fn stop(&self) {
        let process = lock(&self.process).take();
        if let Some(process) = process {
            let _ = process.kill.send(());
        }
    }

    fn ensure_running(self: &Arc<Self>) -> Result<(), InvokeError> {
        let mut process = lock(&self.process);
        if process.is_some() {
            return Ok(());
        }
        let generation = rand_generation();

        let mut child = Command::new(&self.path)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| InvokeError {
                error_type: String::from("Emulator.SpawnFailed"),
                message: format!("cannot start {}: {error}", self.path.display()),
            })?;
        tracing::info!(function = %self.name, pid = child.id(), "rotation function started");

        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(pass_through(stdout, self.name.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(pass_through(stderr, self.name.clone()));
        }

        let (kill, killed) = oneshot::channel::<()>();
        let function = Arc::clone(self);
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = killed => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            function.process_exited(generation, status);
        });
        *process = Some(Process { generation, kill });
        Ok(())
    }

    fn process_exited(&self, generation: u64, status: std::io::Result<std::process::ExitStatus>) {
        let mut process = lock(&self.process);
        if process.as_ref().is_some_and(|p| p.generation == generation) {
            *process = None;
        }
        drop(process);

        let status = match status {
            Ok(status) => status.to_string(),
            Err(error) => error.to_string(),
        };
        tracing::info!(function = %self.name, %status, "rotation function exited");
        self.fail_all(&InvokeError {
            error_type: String::from("Emulator.ProcessExited"),
            message: format!("the function's process ended ({status}) before it responded"),
        });
    }
}

fn rand_generation() -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default())
}

/// Copies the function's output to the emulator's standard error, each line
/// prefixed with the function's name, so rotation logs show where users
/// look.
async fn pass_through(stream: impl AsyncRead + Unpin, name: String) {
    use std::io::Write;
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = writeln!(std::io::stderr(), "[function {name}] {line}");
    }
}
