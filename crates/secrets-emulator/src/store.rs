//! Durable state: the whole state is one JSON file, replaced atomically
//! (write a temporary file, fsync it, rename it over the old one, fsync the
//! directory) before a write is acknowledged.
//!
//! A crash at any point leaves either the old or the new file whole. Writes
//! are serialised by one lock; the state of a local emulator is small, so
//! rewriting it whole costs less than a journal's complexity.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{ApiError, Error};
use crate::model::State;

const STATE_FILE: &str = "secrets.json";
const TEMP_FILE: &str = "secrets.json.tmp";

/// The state and the directory it is persisted to.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    state: Mutex<State>,
}

impl Store {
    /// Opens the state directory, creating it when missing, and loads the
    /// state saved there.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let state_error = |action, source| Error::State {
            path: dir.to_path_buf(),
            action,
            source,
        };
        fs::create_dir_all(dir).map_err(|e| state_error("create", e))?;

        let path = dir.join(STATE_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| Error::CorruptState { path, source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(state_error("read", e)),
        };

        // A temporary file left by a crash was never acknowledged.
        let _ = fs::remove_file(dir.join(TEMP_FILE));
        Ok(Store {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change:
        // writes apply to a copy, so the state behind a poisoned lock is whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `read` on the current state.
    pub fn read<R>(&self, read: impl FnOnce(&State) -> R) -> R {
        read(&self.lock())
    }

    /// Applies `change` to a copy of the state, persists the copy and only then
    /// makes it current. When `change` or the persisting fails, nothing
    /// changes. Blocks on disk I/O: call it from a blocking context.
    pub fn write<R>(
        &self,
        change: impl FnOnce(&mut State) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut current = self.lock();
        let mut next = current.clone();
        let result = change(&mut next)?;

        if let Err(error) = self.persist(&next) {
            tracing::error!(%error, dir = %self.dir.display(), "failed to persist the state");
            return Err(ApiError::internal(
                "The emulator could not save its state; the request changed nothing.",
            ));
        }
        *current = next;
        Ok(result)
    }

    fn persist(&self, state: &State) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
        let temp = self.dir.join(TEMP_FILE);

        let mut file = File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);

        fs::rename(&temp, self.dir.join(STATE_FILE))?;
        File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Secret;

    fn secret(name: &str) -> Secret {
        Secret {
            arn: format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-abcdef"),
            name: name.to_owned(),
            description: None,
            kms_key_id: None,
            tags: Vec::new(),
            created_date: 0.0,
            last_changed_date: 0.0,
            deleted_date: None,
            resource_policy: None,
            versions: Vec::new(),
            rotation: Default::default(),
        }
    }

    #[test]
    fn written_state_is_loaded_by_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|state| {
                state.secrets.push(secret("app/dsql"));
                Ok(())
            })
            .unwrap();

        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.read(|s| s.secrets.len()), 1);
    }

    #[test]
    fn failed_change_leaves_state_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let result: Result<(), _> = store.write(|state| {
            state.secrets.push(secret("half"));
            Err(ApiError::secret_not_found())
        });

        assert!(result.is_err());
        assert_eq!(store.read(|s| s.secrets.len()), 0);
        assert_eq!(
            Store::open(dir.path()).unwrap().read(|s| s.secrets.len()),
            0
        );
    }

    #[test]
    fn corrupt_state_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
        let error = Store::open(dir.path()).unwrap_err();
        assert!(matches!(error, Error::CorruptState { .. }), "{error}");
    }
}
