//! Writing (or, with `--check`, only comparing) the generated project.
//!
//! Only files that start with the import's marker line are ever replaced or
//! removed; anything else in the output directory, hand-written modules
//! included, is left alone and named in the report. A file whose bytes are
//! already right is not rewritten (its mtime stays), and every write goes
//! through `fsutil::write_atomic`, so a killed import leaves either the old
//! or the new file.

use super::error::ImportError;
use super::render::MARKER;
use super::report::FileChange;
use crate::fsutil::write_atomic;
use std::collections::BTreeMap;
use std::path::Path;

fn generated(path: &Path) -> Option<bool> {
    let bytes = std::fs::read(path).ok()?;
    Some(bytes.starts_with(MARKER.as_bytes()))
}

/// Compares `files` (relative path → content) with what `out` holds and,
/// unless `check`, brings `out` in line. Returns one entry per file touched
/// or considered.
pub fn sync(
    out: &Path,
    files: &BTreeMap<String, String>,
    check: bool,
) -> Result<Vec<FileChange>, ImportError> {
    let mut changes = Vec::new();
    for (rel, content) in files {
        let path = out.join(rel);
        let change = match std::fs::read(&path) {
            Ok(old) if old == content.as_bytes() => "unchanged",
            Ok(old) if !old.starts_with(MARKER.as_bytes()) => "left alone (not written by strata)",
            Ok(_) => "changed",
            Err(_) => "new",
        };
        if !check && (change == "changed" || change == "new") {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(ImportError::io(dir))?;
            }
            write_atomic(&path, content.as_bytes()).map_err(ImportError::io(&path))?;
        }
        changes.push(FileChange {
            path: rel.clone(),
            change: change.to_string(),
        });
    }
    // Generated module files no board builds any more.
    let dir = out.join("modules");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut stale = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("modules/{name}");
            if name.ends_with(".toml")
                && !files.contains_key(&rel)
                && generated(&e.path()) == Some(true)
            {
                stale.push((rel, e.path()));
            }
        }
        stale.sort();
        for (rel, path) in stale {
            if !check {
                std::fs::remove_file(&path).map_err(ImportError::io(&path))?;
                crate::fsutil::sync_dir(&dir).map_err(ImportError::io(&dir))?;
            }
            changes.push(FileChange {
                path: rel,
                change: "removed".to_string(),
            });
        }
    }
    Ok(changes)
}

/// Did anything change (for `--check`)?
pub fn drifted(changes: &[FileChange]) -> bool {
    changes
        .iter()
        .any(|c| matches!(c.change.as_str(), "new" | "changed" | "removed"))
}
