//! Filesystem helpers that make every write crash-safe.
//!
//! strata never writes a file in place: it writes a temporary file in the same
//! directory, fsyncs it, renames it over the target and fsyncs the directory
//! (uv's `write_atomic`). A run killed at any instant therefore leaves either
//! the old file or the new one, never a torn one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(&dir)
}

/// Fsyncs a directory so that a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory that holds `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes a file or a directory tree; a missing path is not an error.
pub fn remove_all(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes a directory tree by first renaming it aside, so that a run killed
/// half-way never leaves a half-deleted tree under the original name.
pub fn remove_dir_atomic(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = parent_dir(path).join(format!(".{name}.trash-{}", std::process::id()));
    remove_all(&aside)?;
    fs::rename(path, &aside)?;
    remove_all(&aside)
}

/// Removes leftovers (`.NAME.tmp-*`, `.NAME.trash-*`) of an interrupted run.
pub fn remove_leftovers(dir: &Path, name: &str) -> io::Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    let tmp = format!(".{name}.tmp-");
    let trash = format!(".{name}.trash-");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with(&tmp) || file_name.starts_with(&trash) {
            remove_all(&entry.path())?;
        }
    }
    Ok(())
}

/// Attaches the path to an io::Error's message.
pub fn with_path(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
