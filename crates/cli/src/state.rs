//! The local stack's state file, `local-stack.json` in the state directory:
//! where each part listens and the credentials and secret id to use, so that
//! `secret` and `psql` commands need only `--state-dir`.
//!
//! The file holds the emulator's local access key, so it is written with
//! mode 0600. That key opens only the local emulator and gateway.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Name of the state file inside the state directory.
pub const FILE_NAME: &str = "local-stack.json";

/// Addresses, credentials and secret of a running (or the last) local stack.
#[derive(Clone, Serialize, Deserialize)]
pub struct LocalStack {
    /// Secrets Manager emulator, `http://127.0.0.1:PORT`.
    pub endpoint_url: String,
    /// Region of the emulator and the gateway.
    pub region: String,
    /// Access key id the emulator and gateway accept.
    pub access_key_id: String,
    /// Its secret access key.
    pub secret_access_key: String,
    /// The secret the stack rotates.
    pub secret_id: String,
    /// Gateway address.
    pub gateway_addr: SocketAddr,
    /// Hostname the gateway serves (tokens and SNI name it).
    pub gateway_hostname: String,
    /// CA file that signed the gateway's certificate.
    pub ca_file: PathBuf,
    /// Customer service address.
    pub api_addr: SocketAddr,
}

impl std::fmt::Debug for LocalStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStack")
            .field("endpoint_url", &self.endpoint_url)
            .field("secret_id", &self.secret_id)
            .field("gateway_addr", &self.gateway_addr)
            .field("api_addr", &self.api_addr)
            .finish_non_exhaustive()
    }
}

impl LocalStack {
    /// Reads the state file of `state_dir`.
    pub fn load(state_dir: &Path) -> anyhow::Result<Self> {
        let path = state_dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}; start the local stack with `dsql-secrets local up --state-dir {}` first",
                path.display(),
                state_dir.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid state file", path.display()))
    }

    /// Writes the state file atomically, readable only by its owner.
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        let path = state_dir.join(FILE_NAME);
        let temporary = state_dir.join(format!("{FILE_NAME}.tmp"));
        let text = serde_json::to_string_pretty(self)?;
        write_private(&temporary, text.as_bytes())?;
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Writes a file that only its owner may read.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}
