//! Staging trees: the per-module sysroot (a hardlink farm of exactly the
//! module's dependencies' installed files) and the merged `install/` tree.
//! Two modules providing the same path is an error naming both.

use crate::fsutil::{remove_dir_atomic, sync_dir};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// How files are placed in the merged tree.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Hardlink (cheap; for sysroots, which builds only read).
    Link,
    /// Copy (for the user's install tree, which may be edited).
    Copy,
}

/// A merge problem.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(
        "modules {first} and {second} both install `{path}`\n  hint: remove the file from one module's install step"
    )]
    Conflict {
        path: String,
        first: String,
        second: String,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StageError + '_ {
    move |source| StageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Builds `dest` afresh from the staged trees `sources` (module name, dir).
/// The tree is assembled beside `dest` and renamed into place.
pub fn merge(sources: &[(String, PathBuf)], dest: &Path, place: Place) -> Result<(), StageError> {
    let parent = crate::fsutil::parent_dir(dest);
    fs::create_dir_all(&parent).map_err(io_at(&parent))?;
    let name = dest
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    crate::fsutil::remove_all(&tmp).map_err(io_at(&tmp))?;
    fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
    let mut owners: HashMap<PathBuf, String> = HashMap::new();
    for (module, src) in sources {
        if src.is_dir() {
            walk(src, src, &tmp, module, place, &mut owners)?;
        }
    }
    if place == Place::Copy {
        // A copy is recorded as done right after this (`install.json` for
        // `install/`, a stamp for an override's tree): its files must be on
        // disk before that record can be, or a power loss could leave empty
        // files that no run would redo. (A sysroot of links is rebuilt
        // before each configure that reads it.)
        crate::fsutil::sync_tree(&tmp).map_err(io_at(&tmp))?;
    }
    remove_dir_atomic(dest).map_err(io_at(dest))?;
    fs::rename(&tmp, dest).map_err(io_at(dest))?;
    sync_dir(&parent).map_err(io_at(&parent))
}

fn walk(
    root: &Path,
    dir: &Path,
    dest_root: &Path,
    module: &str,
    place: Place,
    owners: &mut HashMap<PathBuf, String>,
) -> Result<(), StageError> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_at(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_at(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path.strip_prefix(root).expect("under root").to_path_buf();
        let out = dest_root.join(&rel);
        let ft = e.file_type().map_err(io_at(&path))?;
        if ft.is_dir() {
            // Never `is_dir()`, which follows a symlink: a module installing
            // `lib -> /usr/lib` and another installing `lib/x` would put x
            // into /usr/lib. A directory where another module put a file or
            // a symlink is a conflict.
            match fs::symlink_metadata(&out) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(StageError::Conflict {
                        path: rel.display().to_string(),
                        first: owners.get(&rel).cloned().unwrap_or_default(),
                        second: module.to_string(),
                    });
                }
                Err(_) => fs::create_dir(&out).map_err(io_at(&out))?,
            }
            walk(root, &path, dest_root, module, place, owners)?;
            continue;
        }
        if let Some(first) = owners.get(&rel) {
            return Err(StageError::Conflict {
                path: rel.display().to_string(),
                first: first.clone(),
                second: module.to_string(),
            });
        }
        owners.insert(rel, module.to_string());
        if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_at(&path))?;
            std::os::unix::fs::symlink(target, &out).map_err(io_at(&out))?;
        } else if place == Place::Link {
            if fs::hard_link(&path, &out).is_err() {
                fs::copy(&path, &out).map_err(io_at(&out))?;
            }
        } else {
            fs::copy(&path, &out).map_err(io_at(&out))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_never_merges_through_another_modules_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let a = tmp.path().join("a");
        fs::create_dir(&a).unwrap();
        std::os::unix::fs::symlink(&outside, a.join("lib")).unwrap();
        let b = tmp.path().join("b");
        fs::create_dir_all(b.join("lib")).unwrap();
        fs::write(b.join("lib/x"), "x").unwrap();
        let sources = [("a".to_string(), a), ("b".to_string(), b)];
        for place in [Place::Link, Place::Copy] {
            let err = merge(&sources, &tmp.path().join("sysroot"), place).unwrap_err();
            assert!(
                matches!(&err, StageError::Conflict { path, first, second }
                    if path == "lib" && first == "a" && second == "b"),
                "{err}"
            );
            assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        }
    }
}
