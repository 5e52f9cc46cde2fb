//! `strata.lock`: the sha256 of every file a build downloads or archives,
//! recorded on first fetch and checked from then on (as `Cargo.lock` and
//! `flake.lock` pin what a manifest only names). Committed with the project.
//!
//! Each entry is keyed by module and file and records the manifest's pin it
//! was taken for (`sha256:…`, `sha1:…`, or `git:<rev>` for the archive of a
//! commit). A pin that changes in the manifest makes its old entry obsolete:
//! the next fetch records the new one. A file whose sha256 disagrees with an
//! entry *for the same pin* is refused: for a sha1 pin that is what the lock
//! is for, and for a git archive it means the repository served another
//! tree. `strata fetch --update-lock` is the one way to replace such an entry.
//!
//! Entries are written as they are learnt (under a process-wide mutex: the
//! project lock keeps other processes out), temp file + rename.

use crate::fsutil::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The lock file's name, beside `strata.toml`.
pub const FILE_NAME: &str = "strata.lock";

/// Version of the lock file layout.
const FORMAT: u32 = 1;

/// One locked file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub module: String,
    pub file: String,
    /// The manifest's pin this sum was recorded for.
    pub pin: String,
    pub sha256: String,
}

#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    #[serde(default, rename = "package")]
    packages: Vec<Entry>,
}

/// A problem with the lock file.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{}: {why}\n  hint: fix or delete the file; `strata fetch` writes it again from the verified packages",
        path.display()
    )]
    Invalid { path: PathBuf, why: String },
    #[error(
        "module {}: {} has sha256 {}, but {} locks {} for the same pin ({})\n  hint: the upstream file changed under the same pin; inspect it, then run `strata fetch --update-lock {}` to accept it",
        .0.module, .0.file, .0.got, .0.path.display(), .0.locked, .0.pin, .0.module
    )]
    Mismatch(Box<Mismatch>),
}

/// A file whose sha256 is not the one locked for its pin.
#[derive(Debug)]
pub struct Mismatch {
    pub module: String,
    pub file: String,
    pub pin: String,
    pub locked: String,
    pub got: String,
    pub path: PathBuf,
}

/// The lock of the project at `root`.
#[derive(Clone, Debug)]
pub struct Lock {
    path: PathBuf,
    /// Replace entries that disagree instead of refusing (`--update-lock`).
    update: bool,
}

fn guard() -> std::sync::MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lock {
    pub fn new(root: &Path, update: bool) -> Lock {
        Lock {
            path: root.join(FILE_NAME),
            update,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<BTreeMap<(String, String), Entry>, LockError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => {
                return Err(LockError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let invalid = |why: String| LockError::Invalid {
            path: self.path.clone(),
            why,
        };
        let doc: Document = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if doc.version != FORMAT {
            return Err(invalid(format!(
                "lock file version {} is not {FORMAT}, the one this strata reads",
                doc.version
            )));
        }
        let mut out = BTreeMap::new();
        for e in doc.packages {
            if e.sha256.len() != 64 || !e.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(format!(
                    "the sha256 of {} ({}) is not 64 hex digits",
                    e.file, e.module
                )));
            }
            out.insert((e.module.clone(), e.file.clone()), e);
        }
        Ok(out)
    }

    /// The sha256 locked for `file` of `module` under `pin`, if any.
    pub fn sha256(&self, module: &str, file: &str, pin: &str) -> Result<Option<String>, LockError> {
        let _g = guard();
        Ok(self
            .read()?
            .remove(&(module.to_string(), file.to_string()))
            .filter(|e| e.pin == pin)
            .map(|e| e.sha256))
    }

    /// Records that `file` of `module`, pinned by `pin`, has `sha256`.
    /// Refuses a different sum for the same pin unless updating.
    pub fn record(
        &self,
        module: &str,
        file: &str,
        pin: &str,
        sha256: &str,
    ) -> Result<(), LockError> {
        let _g = guard();
        let mut all = self.read()?;
        let key = (module.to_string(), file.to_string());
        if let Some(e) = all.get(&key)
            && e.pin == pin
        {
            if e.sha256 == sha256 {
                return Ok(());
            }
            if !self.update {
                return Err(LockError::Mismatch(Box::new(Mismatch {
                    module: module.into(),
                    file: file.into(),
                    pin: pin.into(),
                    locked: e.sha256.clone(),
                    got: sha256.into(),
                    path: self.path.clone(),
                })));
            }
        }
        all.insert(
            key,
            Entry {
                module: module.into(),
                file: file.into(),
                pin: pin.into(),
                sha256: sha256.into(),
            },
        );
        let doc = Document {
            version: FORMAT,
            packages: all.into_values().collect(),
        };
        let body = toml::to_string(&doc).map_err(|e| LockError::Io {
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        let text = format!(
            "# strata.lock: the sha256 of every file the build downloads or archives, written by\n\
             # `strata fetch` and `strata build`. Commit it. See docs/manifest.md#strata-lock.\n{body}"
        );
        write_atomic(&self.path, text.as_bytes()).map_err(|source| LockError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_recorded_checked_and_replaced_only_when_updating() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::new(dir.path(), false);
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        assert_eq!(lock.sha256("m", "f.tar", "sha1:1").unwrap(), None);
        lock.record("m", "f.tar", "sha1:1", &a).unwrap();
        lock.record("m", "f.tar", "sha1:1", &a).unwrap();
        assert_eq!(
            lock.sha256("m", "f.tar", "sha1:1").unwrap(),
            Some(a.clone())
        );
        // Another pin: not this entry's sum, and the new pin replaces it.
        assert_eq!(lock.sha256("m", "f.tar", "sha1:2").unwrap(), None);
        let err = lock.record("m", "f.tar", "sha1:1", &b).unwrap_err();
        assert!(err.to_string().contains("--update-lock m"), "{err}");
        Lock::new(dir.path(), true)
            .record("m", "f.tar", "sha1:1", &b)
            .unwrap();
        assert_eq!(
            lock.sha256("m", "f.tar", "sha1:1").unwrap(),
            Some(b.clone())
        );
        lock.record("m", "f.tar", "sha1:2", &a).unwrap();
        assert_eq!(lock.sha256("m", "f.tar", "sha1:1").unwrap(), None);
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(text.starts_with("# strata.lock"), "{text}");
        assert!(text.contains("[[package]]"), "{text}");
        std::fs::write(dir.path().join(FILE_NAME), "version = 1\n[[package]]\nmodule = \"m\"\nfile = \"f\"\npin = \"x\"\nsha256 = \"zz\"\n").unwrap();
        let err = lock.sha256("m", "f", "x").unwrap_err();
        assert!(err.to_string().contains("not 64 hex digits"), "{err}");
    }
}
