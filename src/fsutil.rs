//! Filesystem helpers that make every write crash-safe.
//!
//! strata never writes a file in place: it writes a temporary file in the same
//! directory, fsyncs it, renames it over the target and fsyncs the directory
//! (uv's `write_atomic`). A run killed at any instant therefore leaves either
//! the old file or the new one, never a torn one, plus perhaps a `.tmp-*`
//! file that the next run holding the lock sweeps away.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The prefix of every temporary file strata creates beside its target.
/// A run killed before the rename leaves one behind; the next run that
/// takes the lock removes it ([`sweep_temp_files`]).
pub const TEMP_PREFIX: &str = ".tmp-";

/// A new temporary file `.tmp-XXXXXX` in `dir`, created with mode 0666
/// minus the umask (0644 under umask 022) like any file a user creates.
/// tempfile's own default is 0600, which made a shared cache directory
/// unreadable by the rest of a team. Secrets are never written through this.
pub fn temp_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
/// The file gets mode 0666 minus the umask.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    write_renamed(path, bytes)?;
    sync_dir(&dir)
}

/// [`write_atomic`], unless `path` already holds exactly `bytes`: a run
/// that changes nothing (a no-op build) then writes and fsyncs nothing.
/// Returns whether it wrote.
pub fn write_atomic_if_changed(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    write_atomic(path, bytes).map(|()| true)
}

/// Writes `bytes` to `path` through a temp file that is fsynced and renamed
/// over it, but leaves the directory unsynced: the rename is durable only
/// once the caller fsyncs `path`'s directory (or a later fsync of it does).
/// For a caller that writes several files and syncs their directories once.
pub fn write_renamed(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir)?;
    let mut tmp = temp_file_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Fsyncs a directory so that a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Fsyncs each of `paths` (files and directories), on up to 8 threads at
/// once: the filesystem then commits them together (ext4 and XFS fold
/// concurrent fsyncs into one journal commit), so `n` fsyncs cost about one
/// commit's latency, not `n`. Never a `syncfs`, which would also wait for
/// whatever any other process wrote. The error names the path.
pub fn sync_paths(paths: &[PathBuf]) -> io::Result<()> {
    let sync = |chunk: &[PathBuf]| {
        // Each batch's writeback is started first, so its blocks are
        // allocated and its data on the way before the first fsync: that
        // fsync's commit then covers the others' metadata too, and each
        // later one mostly finds its data written and its commit done.
        // (64 at a time: a big tree must not run out of descriptors.)
        chunk.chunks(64).try_for_each(|batch| {
            let files: Vec<File> = batch
                .iter()
                .map(|p| File::open(p).map_err(with_path(p)))
                .collect::<io::Result<_>>()?;
            files.iter().for_each(start_writeback);
            files
                .iter()
                .zip(batch)
                .try_for_each(|(f, p)| f.sync_all().map_err(with_path(p)))
        })
    };
    let threads = paths.len().div_ceil(4).clamp(1, 8);
    if threads == 1 {
        return sync(paths);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(paths.len().div_ceil(threads))
            .map(|chunk| s.spawn(move || sync(chunk)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })
}

/// Every regular file and directory under `dir`, and `dir` itself: what
/// makes a tree durable once fsynced (a symlink is part of its directory's
/// entry, synced with it). Never follows a symlink.
pub fn tree_paths(dir: &Path) -> io::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
        for e in fs::read_dir(dir).map_err(with_path(dir))? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                walk(&e.path(), out)?;
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
        out.push(dir.to_path_buf());
        Ok(())
    }
    let mut paths = Vec::new();
    walk(dir, &mut paths)?;
    Ok(paths)
}

/// Starts writing a file's dirty pages to the disk without waiting
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`; elsewhere a no-op). Only a
/// head start for a later fsync: it makes nothing durable by itself.
fn start_writeback(f: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the call reads no memory.
        unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = f;
}

/// Makes a tree this process just wrote durable: fsyncs each of its
/// [`tree_paths`] at once ([`sync_paths`]). What is not synced is `dir`'s
/// own entry in its parent: the caller renames `dir` into place and syncs
/// the parent. Costs what the tree holds, nothing of other writers.
pub fn sync_tree(dir: &Path) -> io::Result<()> {
    sync_paths(&tree_paths(dir)?)
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
        Ok(m) if m.is_dir() => match fs::remove_dir_all(path) {
            // Build tools leave read-only directories (Go's module cache is
            // 0555): make the tree's own directories writable, then retry.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                make_dirs_writable(path)?;
                fs::remove_dir_all(path)
            }
            r => r,
        },
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Adds u+rwx to every directory under `dir` (never following symlinks).
fn make_dirs_writable(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700))?;
    }
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            make_dirs_writable(&e.path())?;
        }
    }
    Ok(())
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

/// Removes `.tmp-*` files (and `.NAME.tmp-*` directories) left in `dir` by
/// a killed writer, descending at most `depth` levels into subdirectories
/// whose names are not in `skip`. Only call this while holding the lock
/// that every writer of `dir` holds, or a live writer's file could vanish.
/// Returns how many were removed.
pub fn sweep_temp_files(dir: &Path, depth: u32, skip: &[&str]) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_temp = name.starts_with(TEMP_PREFIX)
            || (name.starts_with('.') && (name.contains(".tmp-") || name.contains(".trash-")))
            || name.starts_with(".pack-");
        let ft = entry.file_type()?;
        if is_temp {
            remove_all(&entry.path())?;
            removed += 1;
        } else if ft.is_dir() && depth > 0 && !skip.contains(&name.as_ref()) {
            removed += sweep_temp_files(&entry.path(), depth - 1, skip)?;
        }
    }
    Ok(removed)
}
/// The sha256 of a file, as lower-case hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_lists_its_files_and_dirs_never_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("t");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("x"), "x").unwrap();
        fs::write(root.join("a/b/f"), "f").unwrap();
        fs::write(root.join("g"), "g").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let mut got: Vec<String> = tree_paths(&root)
            .unwrap()
            .iter()
            .map(|p| {
                p.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        got.sort();
        assert_eq!(got, ["", "a", "a/b", "a/b/f", "g"]);
        sync_tree(&root).unwrap();
        // Many paths go to several threads; an error names its path.
        let many: Vec<PathBuf> = (0..100).map(|_| root.join("g")).collect();
        sync_paths(&many).unwrap();
        let gone = root.join("gone");
        let err = sync_paths(&[root.join("g"), gone.clone()]).unwrap_err();
        assert!(
            err.to_string().contains(&gone.display().to_string()),
            "{err}"
        );
    }
}
