//! The check after a fixed-output module's install: `$STRATA_DESTDIR` must
//! hold exactly the files `outputs` pins, each with its sha256.
//!
//! A fixed-output module's key is its pins, not its commands (see
//! `fingerprint::fixed_output_keys`), and it may reach the network, so this
//! check is what makes its artifact trustworthy: a file that differs, is
//! missing, or was not declared fails the module before anything is saved
//! to a cache, stamped or merged into `install/`, and the destdir is
//! emptied. Undeclared files are refused rather than ignored: they would
//! be cached under a key that does not describe them.

use crate::manifest::Module;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a fixed-output module's install does not match its pins.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "output {file} has sha256 {actual}, but {} pins {expected}\n  hint: nothing was cached or \
         installed; if upstream really changed these bytes (check why), put the new sum in \
         `outputs`",
        manifest.display()
    )]
    Mismatch {
        file: String,
        expected: String,
        actual: String,
        manifest: PathBuf,
    },
    #[error(
        "output {file} (pinned by {}) was not installed into $STRATA_DESTDIR\n  hint: install it \
         there, or fix its path in `outputs`",
        manifest.display()
    )]
    Missing { file: String, manifest: PathBuf },
    #[error(
        "installed {file}, which {} does not pin in `outputs`\n  hint: a fixed-output module \
         installs exactly its pinned files: pin it, or do not install it",
        manifest.display()
    )]
    Undeclared { file: String, manifest: PathBuf },
    #[error("cannot check its outputs in {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Checks `destdir` against `m.outputs`; on any difference empties it.
pub fn verify(m: &Module, destdir: &Path) -> Result<(), OutputError> {
    let r = check(m, destdir);
    if r.is_err() {
        // Nothing of a failed fixed-output install is left to be used.
        let _ = crate::fsutil::remove_all(destdir);
        let _ = fs::create_dir_all(destdir);
    }
    r
}

fn check(m: &Module, destdir: &Path) -> Result<(), OutputError> {
    let mut found = BTreeMap::new();
    files(destdir, "", &mut found)?;
    let manifest = m.manifest_path.clone();
    for (file, kind_ok) in &found {
        if !m.outputs.contains_key(file) || !kind_ok {
            return Err(OutputError::Undeclared {
                file: file.clone(),
                manifest,
            });
        }
    }
    for (file, expected) in &m.outputs {
        if !found.contains_key(file) {
            return Err(OutputError::Missing {
                file: file.clone(),
                manifest,
            });
        }
        let path = destdir.join(file);
        let actual =
            crate::fsutil::sha256_file(&path).map_err(|source| OutputError::Io { path, source })?;
        if &actual != expected {
            return Err(OutputError::Mismatch {
                file: file.clone(),
                expected: expected.clone(),
                actual,
                manifest,
            });
        }
    }
    Ok(())
}

/// Every non-directory under `dir`, by its path relative to the destdir,
/// with whether it is a regular file (a symlink or special file is not).
fn files(dir: &Path, rel: &str, out: &mut BTreeMap<String, bool>) -> Result<(), OutputError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type().map_err(io_err(&entry.path()))?;
        if kind.is_dir() {
            files(&entry.path(), &rel, out)?;
        } else {
            out.insert(rel, kind.is_file());
        }
    }
    Ok(())
}
