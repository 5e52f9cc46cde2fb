//! Artifact stores behind one small trait, so the build never knows which
//! backend it talks to (sccache's design). This release has the local
//! directory store; remote backends plug in behind the same trait.

mod local;

pub use local::LocalStore;

use crate::artifact::ArtifactInfo;
use std::io;
use std::path::{Path, PathBuf};

/// A store problem, naming the store and the entry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{store}: {what}: {source}")]
    Io {
        store: String,
        what: String,
        source: io::Error,
    },
    #[error("{store}: entry {key} is corrupt: {why}")]
    Corrupt {
        store: String,
        key: String,
        why: String,
    },
}

/// A content-addressed artifact store keyed by install key.
pub trait Store: Send + Sync {
    /// Where the store is, for messages.
    fn describe(&self) -> String;
    /// The record of `key`, if the store has a complete entry for it.
    fn lookup(&self, key: &str) -> Result<Option<ArtifactInfo>, StoreError>;
    /// A local file holding the archive of `key` (fetched if remote).
    fn archive(&self, key: &str) -> Result<PathBuf, StoreError>;
    /// Stores an entry unless one exists (create-only). Returns whether it was created.
    fn put(&self, info: &ArtifactInfo, archive: &Path) -> Result<bool, StoreError>;
    /// Moves a corrupt entry aside so it is never used again.
    fn quarantine(&self, key: &str) -> Result<(), StoreError>;
    /// Every complete entry.
    fn list(&self) -> Result<Vec<ArtifactInfo>, StoreError>;
}
