//! A module restore as the build asks for it: the artifact of an install
//! key placed into an empty directory, from the fastest trustworthy source.
//!
//! Order: the local store's tree of the entry (no archive read, no hash:
//! the tree is checked file by file instead, see `tree`), else the verified
//! archive (local, or remote and written back): extracted into place at the
//! entry's first restore, and from its second on made into the tree, which
//! is then placed. A damaged tree is discarded with one warning and
//! the restore goes on from the archive; a store that cannot hold a tree
//! (read-only, full) restores from the archive as before. With
//! `RestoreMode::Archive` trees are neither made nor used.

use super::materialise::{Counts, MaterialiseError, materialise};
use super::tree::TreeError;
use super::{Cache, Store};
use crate::artifact::ArtifactInfo;
use crate::manifest::RestoreMode;
use std::fs;
use std::path::Path;

/// A restored artifact.
pub struct Restored {
    /// Which store it came from, for messages.
    pub source: String,
    pub info: ArtifactInfo,
    /// How its files were placed; None when extracted from the archive.
    pub counts: Option<Counts>,
}

impl Cache {
    /// Restores the artifact of `key` (of module `module`) into the empty
    /// directory `into`. `Ok(None)`: no store has it. `Err`: it was found but
    /// could not be restored (a corrupt archive is quarantined first); the
    /// caller builds the module instead. `into` is then in any state.
    pub fn restore_into(
        &self,
        key: &str,
        module: &str,
        into: &Path,
        limits: crate::unpack::Limits,
        warn: &dyn Fn(&str),
        progress: &dyn Fn(&str, u64, u64),
    ) -> Result<Option<Restored>, String> {
        let store = self.local.describe();
        let mut tree_ok = true;
        if self.restore != RestoreMode::Archive
            && let Ok(Some(info)) = self.local.lookup(key)
            && info.module == module
        {
            let dir = self.local.tree_path(&info);
            let placed = match self.local.open_tree(&info) {
                Ok(Some(tree)) => Some(materialise(&tree, into)),
                Ok(None) => None,
                Err(e) => Some(Err(MaterialiseError::Damaged {
                    path: dir.clone(),
                    why: e.to_string(),
                })),
            };
            match placed {
                None => {}
                Some(Ok(counts)) => {
                    self.local.touch(key);
                    self.count(0, 1);
                    return Ok(Some(Restored {
                        source: store,
                        info,
                        counts: Some(counts),
                    }));
                }
                Some(Err(MaterialiseError::Damaged { path, why })) => {
                    warn(&format!(
                        "the unpacked copy {} of entry {key} in the {store} is damaged ({}: {why}); \
                         it was discarded, restoring from the archive",
                        dir.display(),
                        path.strip_prefix(&dir).unwrap_or(&path).display(),
                    ));
                    if let Err(e) = self.local.discard_tree(&info) {
                        // A store this user cannot write (a team's shared
                        // one): the verified archive still serves.
                        warn(&format!(
                            "cannot discard {} ({e}); restoring from the archive without a tree",
                            dir.display()
                        ));
                        tree_ok = false;
                    }
                    empty(into)?;
                }
                Some(Err(e)) => return Err(format!("restoring from {}: {e}", dir.display())),
            }
        }
        let downloading = |done, total| progress("download", done, total);
        let unpacking = |done, total| progress("unpack", done, total);
        let Some(hit) = self.find(key, module, warn, &downloading) else {
            return Ok(None);
        };
        // Only an archive at fault is quarantined: a full disk or this
        // project's lower limits say nothing about the entry.
        let corrupt = |e: &crate::unpack::UnpackError| {
            if e.is_archive_fault() {
                let _ = self.local.quarantine(key);
                format!("cache entry {key} does not extract ({e}); it was quarantined")
            } else {
                format!("cache entry {key} could not be extracted here ({e})")
            }
        };
        let from_archive = || {
            crate::unpack::extract_packed(&hit.archive, into, limits, &unpacking)
                .map_err(|e| corrupt(&e))?;
            Ok(Some(Restored {
                source: hit.source.clone(),
                info: hit.info.clone(),
                counts: None,
            }))
        };
        if self.restore == RestoreMode::Archive || !tree_ok {
            return from_archive();
        }
        // A tree pays for itself from an entry's second restore on. The
        // first (every CI job's, from a store it just downloaded) extracts
        // the archive straight into place and only notes that it happened:
        // no tree to write, hash, fsync and then copy from.
        if !self.local.restored_before(&hit.info) {
            let restored = from_archive()?;
            self.local.note_restored(&hit.info);
            return Ok(restored);
        }
        let tree = match self
            .local
            .make_tree(&hit.info, &hit.archive, limits, &unpacking)
        {
            Ok(t) => t,
            Err(TreeError::Unpack(e)) if e.is_archive_fault() => return Err(corrupt(&e)),
            Err(e) => {
                warn(&format!(
                    "cannot keep an unpacked copy in the {store} ({e}); restoring from the \
                     archive (`[cache] restore = \"archive\"` stops trying)"
                ));
                return from_archive();
            }
        };
        let counts = materialise(&tree, into)
            .map_err(|e| format!("restoring from {}: {e}", tree.dir.display()))?;
        Ok(Some(Restored {
            source: hit.source,
            info: hit.info,
            counts: Some(counts),
        }))
    }
}

/// Makes `dir` an empty directory again.
fn empty(dir: &Path) -> Result<(), String> {
    crate::fsutil::remove_all(dir)
        .and_then(|()| fs::create_dir(dir))
        .map_err(|e| format!("{}: {e}", dir.display()))
}
