//! Artifact stores behind one small trait, so the build never knows which
//! backend it talks to (sccache's design): the local directory store, an
//! S3-compatible remote (signed by `rusty-s3`, sent by the one HTTP client,
//! `crate::net`), a read-only HTTP(S) mirror, or another directory (a
//! shared mount) as remote.
//! [`Cache`] layers them: local first, then remote, with write-back; the
//! local store also keeps each restored artifact unpacked (`tree`), and a
//! restore places those files (`materialise`, driven by `restore`).

mod http;
mod local;
pub mod materialise;
mod restore;
mod s3;
mod s3_auth;
mod tiered;
pub mod tree;

/// The setting lives in `manifest` (`[cache] restore`); named here too for the store's users.
pub use crate::manifest::RestoreMode;
pub use http::HttpStore;
pub use local::{EntryUse, LocalStore};
pub use restore::Restored;
pub use s3::S3Store;
pub use s3_auth::AuthOptions;
pub use tiered::{Cache, Hit, Stats};

use crate::artifact::ArtifactInfo;
use std::io;
use std::path::Path;

/// A store problem, naming the store and the entry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{store}: {what}: {source}")]
    Io {
        store: String,
        what: String,
        source: io::Error,
    },
    /// The store cannot be used: it did not answer (refused, timed out,
    /// closed without a reply) or there are no credentials for it. The
    /// cache stops asking it for the rest of the run.
    #[error("{store}: {what}: {why}")]
    Unavailable {
        store: String,
        what: String,
        why: String,
    },
    #[error("{store}: entry {key} is corrupt: {why}")]
    Corrupt {
        store: String,
        key: String,
        why: String,
    },
}

/// Opens the store a URL names: `s3://bucket/prefix` (with an optional
/// S3-compatible `endpoint`), `http(s)://…` (read-only), `file:///dir` or a path.
pub fn open(
    url: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
) -> Result<Box<dyn Store>, String> {
    open_with(url, endpoint, region, AuthOptions::default())
}

/// [`open`], with where S3 credentials may come from beyond the environment
/// and the credentials file (`[cache] imds`).
pub fn open_with(
    url: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    auth: AuthOptions,
) -> Result<Box<dyn Store>, String> {
    Ok(if url.starts_with("s3://") {
        Box::new(S3Store::new(url, endpoint, region)?.with_auth(auth))
    } else if url.starts_with("http://") || url.starts_with("https://") {
        Box::new(HttpStore::new(url))
    } else {
        Box::new(LocalStore::new(std::path::PathBuf::from(
            url.trim_start_matches("file://"),
        )))
    })
}

/// Called with the bytes moved so far during a transfer.
pub type Progress<'a> = &'a dyn Fn(u64);

/// Copies `from` to `to` in chunks, reporting progress; returns the bytes copied.
pub fn copy_with_progress(
    from: &mut dyn io::Read,
    to: &mut dyn io::Write,
    progress: Progress<'_>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(done),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        done += n as u64;
        progress(done);
    }
}

/// A content-addressed artifact store keyed by install key.
pub trait Store: Send + Sync {
    /// Where the store is, for messages.
    fn describe(&self) -> String;
    /// Whether artifacts can be pushed to it.
    fn writable(&self) -> bool {
        true
    }
    /// The record of `key`, if the store has a complete entry for it.
    fn lookup(&self, key: &str) -> Result<Option<ArtifactInfo>, StoreError>;
    /// Copies (or downloads) the archive described by `info` to `dest`,
    /// telling `progress` the bytes written so far as they arrive.
    fn fetch(
        &self,
        info: &ArtifactInfo,
        dest: &Path,
        progress: Progress<'_>,
    ) -> Result<(), StoreError>;
    /// Stores an entry unless one exists (create-only). Returns whether it was created.
    fn put(&self, info: &ArtifactInfo, archive: &Path) -> Result<bool, StoreError>;
    /// Moves a corrupt entry aside so it is never used again.
    fn quarantine(&self, key: &str) -> Result<(), StoreError>;
    /// Every complete entry.
    fn list(&self) -> Result<Vec<ArtifactInfo>, StoreError>;
    /// Deletes an entry: its record first (so it stops existing), then its archive.
    fn remove(&self, key: &str) -> Result<(), StoreError>;
}

/// Parses an entry's JSON record, refusing one that names another key or a
/// format this strata does not read (a future layout is never misread).
pub fn parse_record(store: &str, key: &str, bytes: &[u8]) -> Result<ArtifactInfo, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt {
        store: store.to_string(),
        key: key.to_string(),
        why,
    };
    let info: ArtifactInfo =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("unreadable record: {e}")))?;
    if info.key != key || info.format != crate::artifact::CACHE_FORMAT {
        return Err(corrupt(format!(
            "the record names key {} in format {}",
            info.key, info.format
        )));
    }
    Ok(info)
}
