//! CI caches with CircleCI semantics on strata's stores: `save` is
//! immutable (an existing key is never overwritten), `restore` tries keys in
//! order, each as a prefix, and among all caches the key is a prefix of the
//! most recently saved wins, even over one equal to the key (CircleCI's
//! documented rule, which strata once bent to prefer exact matches); the
//! first key with any match wins.
//!
//! An entry is an ordinary store entry whose storage key is the BLAKE3 of the
//! CI key, with the CI key and save time in its record, so the same local
//! directory, S3 bucket or HTTP mirror serves artifacts and CI caches alike,
//! with the same create-only puts and BLAKE3 checks.

use crate::artifact::{self, ArtifactInfo, CiLabel, Entries};
use crate::store::{Store, StoreError};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CiCacheError {
    #[error("cache key `{key}`: path {} does not exist\n  hint: save only paths an earlier step made; a missing path is never saved as an empty cache", path.display())]
    MissingPath { key: String, path: PathBuf },
    #[error("cache key `{key}`: path {} is outside {}\n  hint: cache paths must be inside the directory caches are restored into", path.display(), root.display())]
    Outside {
        key: String,
        path: PathBuf,
        root: PathBuf,
    },
    #[error("cache key `{key}`: {what}: {source}")]
    Io {
        key: String,
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cache key `{key}`: the entry is corrupt ({why}); not restored")]
    Corrupt { key: String, why: String },
    #[error("cache key `{key}`: cannot extract: {why}")]
    Extract { key: String, why: String },
}

/// How a restore matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Match {
    Exact,
    Prefix,
}

/// A restored cache.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    /// The key the user asked with.
    pub requested: String,
    /// The key of the entry restored.
    pub key: String,
    #[serde(rename = "match")]
    pub how: Match,
    pub bytes: u64,
    pub files: u64,
}

/// The result of a save.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Saved {
    /// The key already existed: nothing was written (caches are immutable).
    Skipped,
    New {
        bytes: u64,
        files: u64,
    },
}

impl Saved {
    /// One line for logs and summaries.
    pub fn describe(&self, key: &str) -> String {
        match self {
            Saved::Skipped => format!("`{key}` skipped: the key exists (caches are immutable)"),
            Saved::New { bytes, files } => format!(
                "`{key}` new ({}, {})",
                crate::report::human_bytes(*bytes),
                crate::report::count(*files, "file", "files")
            ),
        }
    }
}

/// One line for logs and summaries: what a restore of `keys` matched.
pub fn describe_restore(r: Option<&Restored>, keys: &[String]) -> String {
    match r {
        Some(r) => format!(
            "{} match `{}` for `{}` ({})",
            if r.how == Match::Exact {
                "exact"
            } else {
                "prefix"
            },
            r.key,
            r.requested,
            crate::report::human_bytes(r.bytes)
        ),
        None => format!(
            "miss for {}",
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// CI caches on one store.
pub struct CiCache {
    store: Box<dyn Store>,
    tmp: PathBuf,
}

/// The store key of a CI key: fixed length, any characters allowed in the CI key.
pub fn storage_key(key: &str) -> String {
    blake3::hash(format!("strata-ci-cache;1;{key}").as_bytes())
        .to_hex()
        .to_string()
}

impl CiCache {
    /// CI caches in `store`, with temp files in `tmp`.
    pub fn new(store: Box<dyn Store>, tmp: PathBuf) -> CiCache {
        CiCache { store, tmp }
    }

    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// The entry saved under exactly `key`.
    pub fn lookup(&self, key: &str) -> Result<Option<ArtifactInfo>, StoreError> {
        let info = self.store.lookup(&storage_key(key))?;
        Ok(info.filter(|i| i.ci.as_ref().is_some_and(|c| c.key == key)))
    }

    /// The entry `keys` select, by CircleCI's documented rule: keys are
    /// tried in order, each as a prefix; among all caches a key is a prefix
    /// of, the most recently saved wins, even when one of them equals the
    /// key. The first key with any match wins.
    pub fn find(
        &self,
        keys: &[String],
        accept: &dyn Fn(&str) -> bool,
    ) -> Result<Option<(String, ArtifactInfo, Match)>, StoreError> {
        // One listing serves every key. A store that cannot be listed (plain
        // HTTP) still serves exact matches; its listing error is reported
        // only if nothing matched at all.
        let listed: Result<Vec<ArtifactInfo>, StoreError> = self
            .store
            .list()
            .map(|v| v.into_iter().filter(|i| i.ci.is_some()).collect());
        for k in keys {
            let newest = match &listed {
                Ok(all) => newest_with_prefix(all, k, accept).cloned(),
                Err(_) => self.lookup(k)?.filter(|_| accept(k)),
            };
            if let Some(info) = newest {
                let how = if info.ci.as_ref().is_some_and(|c| &c.key == k) {
                    Match::Exact
                } else {
                    Match::Prefix
                };
                return Ok(Some((k.clone(), info, how)));
            }
        }
        match listed {
            Err(e) => Err(e),
            Ok(_) => Ok(None),
        }
    }

    /// Packs `paths` (relative to `root`, or absolute inside it) under `key`,
    /// unless `key` exists.
    pub fn save(&self, key: &str, root: &Path, paths: &[PathBuf]) -> Result<Saved, CiCacheError> {
        if self.lookup(key)?.is_some() {
            return Ok(Saved::Skipped);
        }
        let mut rels = Vec::new();
        for p in paths {
            let abs = if p.is_absolute() {
                p.clone()
            } else {
                root.join(p)
            };
            let rel = normalise(&abs)
                .strip_prefix(normalise(root))
                .map(Path::to_path_buf)
                .map_err(|_| CiCacheError::Outside {
                    key: key.into(),
                    path: p.clone(),
                    root: root.to_path_buf(),
                })?;
            if std::fs::symlink_metadata(&abs).is_err() {
                return Err(CiCacheError::MissingPath {
                    key: key.into(),
                    path: p.clone(),
                });
            }
            rels.push(rel);
        }
        let saved_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let info = ArtifactInfo {
            created: saved_ns / 1_000_000_000,
            ci: Some(CiLabel {
                key: key.into(),
                saved_ns,
            }),
            ..ArtifactInfo::to_pack("ci-cache", "", &storage_key(key))
        };
        let packed = artifact::pack_paths(root, &rels, info, &self.tmp, 2, Entries::Faithful)
            .map_err(|source| CiCacheError::Io {
                key: key.into(),
                what: "packing".into(),
                source,
            })?;
        // Create-only: a concurrent save of the same key that won is as good as ours.
        if self.store.put(&packed.info, packed.archive.path())? {
            Ok(Saved::New {
                bytes: packed.info.size,
                files: packed.info.files,
            })
        } else {
            Ok(Saved::Skipped)
        }
    }

    /// Restores the entry `keys` select into `root` (files are overwritten,
    /// others left alone, as CircleCI does). `None` on a miss.
    pub fn restore(
        &self,
        keys: &[String],
        root: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<Option<Restored>, CiCacheError> {
        self.restore_where(keys, root, progress, &|_| true)
    }

    /// [`CiCache::restore`], considering only entries whose key `accept`s.
    pub fn restore_where(
        &self,
        keys: &[String],
        root: &Path,
        progress: &dyn Fn(u64),
        accept: &dyn Fn(&str) -> bool,
    ) -> Result<Option<Restored>, CiCacheError> {
        let Some((requested, info, how)) = self.find(keys, accept)? else {
            return Ok(None);
        };
        let key = info.ci.as_ref().map(|c| c.key.clone()).unwrap_or_default();
        let io = |what: &str| {
            let key = key.clone();
            let what = what.to_string();
            move |source| CiCacheError::Io { key, what, source }
        };
        std::fs::create_dir_all(&self.tmp).map_err(io("creating a temp dir"))?;
        let tmp = tempfile::Builder::new()
            .prefix(".restore-")
            .tempfile_in(&self.tmp)
            .map_err(io("creating a temp file"))?;
        self.store.fetch(&info, tmp.path(), progress)?;
        let actual = artifact::blake3_file(tmp.path()).map_err(io("hashing"))?;
        if actual != info.blake3 {
            let _ = self.store.quarantine(&info.key);
            return Err(CiCacheError::Corrupt {
                key,
                why: format!("BLAKE3 {actual}, recorded {}", info.blake3),
            });
        }
        std::fs::create_dir_all(root).map_err(io("creating the restore dir"))?;
        let limits = crate::unpack::Limits::default();
        let r = crate::unpack::extract_packed(tmp.path(), root, limits, &|_, _| {});
        r.map_err(|e| CiCacheError::Extract {
            key: key.clone(),
            why: e.to_string(),
        })?;
        Ok(Some(Restored {
            requested,
            key,
            how,
            bytes: info.size,
            files: info.files,
        }))
    }
}

/// Among `all`, the newest save whose key starts with `prefix` (ties: the
/// greater key, so the choice never depends on listing order).
pub fn newest_with_prefix<'a>(
    all: &'a [ArtifactInfo],
    prefix: &str,
    accept: &dyn Fn(&str) -> bool,
) -> Option<&'a ArtifactInfo> {
    all.iter()
        .filter(|i| {
            i.ci.as_ref()
                .is_some_and(|c| c.key.starts_with(prefix) && accept(&c.key))
        })
        .max_by_key(|i| i.ci.as_ref().map(|c| (c.saved_ns, c.key.clone())))
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
