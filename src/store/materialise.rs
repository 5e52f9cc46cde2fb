//! Placing a tree's files (see `tree`) into a fresh directory: what a
//! restore does instead of extracting the archive.
//!
//! Each file is reflinked (`FICLONE`, btrfs and XFS: a private copy-on-write
//! copy, the same result as extracting, at the cost of a few metadata
//! writes), else copied (`copy_file_range` through `std::io::copy`).
//!
//! The decision a reader would question: never a hardlink, although
//! destdir files are "only read" by later builds. A build that writes into
//! a dependency's file anyway (`>> $STRATA_SYSROOT/lib/x.a`, `strip` or
//! `objcopy` in place) would, through a hardlink, change the store's tree
//! and every other checkout restored from it, at once and with no strata
//! running to notice; no check at the next restore can give those
//! checkouts their bytes back. With files of its own, such a write stays in
//! the checkout that made it. The price is the data copy (see
//! docs/cache.md, Restoring), still far below decompressing the archive.
//!
//! Directories, symlinks, modes and mtimes (1) come out as the safe
//! extractor makes them, so a restore is identical whichever way it went.
//! Every tree file is checked against the manifest before it is used
//! (type, size, mode, mtime 1, and inode + ctime, else its BLAKE3; see
//! `tree`); a mismatch or a missing file is [`MaterialiseError::Damaged`],
//! and the caller falls back to the archive.

use super::tree::{Entry, Kind, Tree, hash_file};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many files went which way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub reflinked: u64,
    pub copied: u64,
}

/// Why a tree could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum MaterialiseError {
    /// The tree no longer matches its manifest: it must not be used.
    #[error("{} {why}", path.display())]
    Damaged { path: PathBuf, why: String },
    /// Writing the destination failed (the tree may be fine).
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// What the filesystem allowed so far (a refusal is remembered for the
/// rest of the restore, so it costs one failed call, not one per file).
#[derive(Clone, Copy)]
struct Ways {
    reflink: bool,
}

/// Places the files of `tree` into the existing empty directory `into`.
///
/// The work is metadata-bound in the kernel (on ext4 a `mkdir` or a file
/// creation costs far more than a `link`), so it is spread over a few
/// threads: directories level by level (a level's parents exist), then the
/// files and symlinks, each thread taking a run of consecutive entries,
/// which mostly lie in directories of their own.
pub fn materialise(tree: &Tree, into: &Path) -> Result<Counts, MaterialiseError> {
    let root = tree.root();
    let ways = Ways { reflink: true };
    let mut levels: Vec<Vec<&Entry>> = Vec::new();
    let mut rest = Vec::new();
    for e in &tree.manifest.entries {
        if e.kind == Kind::Dir {
            let depth = e.path.components().count().max(1);
            if levels.len() < depth {
                levels.resize_with(depth, Vec::new);
            }
            levels[depth - 1].push(e);
        } else {
            rest.push(e);
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut counts = Counts::default();
    for batch in levels.iter().chain(std::iter::once(&rest)) {
        let c = in_parallel(
            batch,
            threads,
            |e, ways, counts| place(e, &root, into, ways, counts),
            ways,
        )?;
        counts.reflinked += c.reflinked;
        counts.copied += c.copied;
    }
    Ok(counts)
}

/// Runs `f` over `items` in up to `threads` runs of consecutive items; the
/// first error stops the others.
fn in_parallel<'a>(
    items: &[&'a Entry],
    threads: usize,
    f: impl Fn(&'a Entry, &mut Ways, &mut Counts) -> Result<(), MaterialiseError> + Sync,
    ways: Ways,
) -> Result<Counts, MaterialiseError> {
    let failed = std::sync::atomic::AtomicBool::new(false);
    let run = |chunk: &[&'a Entry]| {
        let (mut ways, mut counts) = (ways, Counts::default());
        for e in chunk {
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            if let Err(err) = f(e, &mut ways, &mut counts) {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(err);
            }
        }
        Ok(counts)
    };
    // Below a few hundred entries a thread costs more than it saves.
    if threads < 2 || items.len() < 256 {
        return run(items);
    }
    let results: Vec<Result<Counts, MaterialiseError>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|chunk| s.spawn(|| run(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut total = Counts::default();
    for r in results {
        let c = r?;
        total.reflinked += c.reflinked;
        total.copied += c.copied;
    }
    Ok(total)
}

/// Places one entry (its parent exists).
fn place(
    e: &Entry,
    root: &Path,
    into: &Path,
    ways: &mut Ways,
    counts: &mut Counts,
) -> Result<(), MaterialiseError> {
    let src = root.join(&e.path);
    let dst = into.join(&e.path);
    let out = |source| MaterialiseError::Io {
        path: dst.clone(),
        source,
    };
    let damaged = |why: String| MaterialiseError::Damaged {
        path: src.clone(),
        why,
    };
    match &e.kind {
        Kind::Dir => {
            fs::create_dir(&dst).map_err(out)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(e.mode)).map_err(out)?;
        }
        Kind::Symlink(target) => {
            let actual = fs::read_link(&src).map_err(|e| damaged(e.to_string()))?;
            if actual.as_os_str() != target {
                return Err(damaged(format!(
                    "points to {}, recorded {}",
                    actual.display(),
                    Path::new(target).display()
                )));
            }
            std::os::unix::fs::symlink(target, &dst).map_err(out)?;
        }
        Kind::File => {
            let meta = fs::symlink_metadata(&src).map_err(|e| damaged(e.to_string()))?;
            check(&src, &meta, e, false).map_err(damaged)?;
            let fail = |err| match err {
                Placing::Source(err) => damaged(err.to_string()),
                Placing::Short(n) => damaged(format!("gave {n} bytes, recorded {}", e.size)),
                Placing::Dest(err) => out(err),
            };
            if ways.reflink {
                if clone_file(&src, &dst, e.mode).map_err(fail)? {
                    counts.reflinked += 1;
                    return Ok(());
                }
                ways.reflink = false;
            }
            copy_file(&src, &dst, e.mode, e.size).map_err(fail)?;
            counts.copied += 1;
        }
    }
    Ok(())
}

/// Checks every file and symlink of `tree` against its manifest, hashing
/// every file, placing nothing (`strata cache verify`: the deep check).
pub fn verify(tree: &Tree) -> Result<(), MaterialiseError> {
    let root = tree.root();
    for e in &tree.manifest.entries {
        let path = root.join(&e.path);
        let damaged = |why: String| MaterialiseError::Damaged {
            path: path.clone(),
            why,
        };
        match &e.kind {
            Kind::Dir => {}
            Kind::Symlink(target) => {
                let actual = fs::read_link(&path).map_err(|e| damaged(e.to_string()))?;
                if actual.as_os_str() != target {
                    return Err(damaged(format!("points to {}", actual.display())));
                }
            }
            Kind::File => {
                let meta = fs::symlink_metadata(&path).map_err(|e| damaged(e.to_string()))?;
                check(&path, &meta, e, true).map_err(damaged)?;
            }
        }
    }
    Ok(())
}

/// Whether the tree file `path` still is what the manifest recorded in `e`:
/// type, size, mode and mtime 1; then, unless it is the very inode with the
/// very ctime it had when the tree was made (or `deep`), its BLAKE3.
fn check(path: &Path, meta: &fs::Metadata, e: &Entry, deep: bool) -> Result<(), String> {
    let (mode, size) = (e.mode, e.size);
    if !meta.is_file() {
        return Err("is no longer a regular file".into());
    }
    if meta.len() != size {
        return Err(format!("has {} bytes, recorded {size}", meta.len()));
    }
    if meta.mode() & 0o7777 != mode {
        return Err(format!(
            "has mode {:o}, recorded {mode:o}",
            meta.mode() & 0o7777
        ));
    }
    if meta.mtime() != 1 || meta.mtime_nsec() != 0 {
        return Err(format!(
            "was modified (mtime {}, artifacts have 1)",
            meta.mtime()
        ));
    }
    let Some(id) = &e.id else {
        return Ok(());
    };
    if !deep && id.unchanged(meta) {
        return Ok(());
    }
    match hash_file(path) {
        Ok(h) if h == id.blake3 => Ok(()),
        Ok(_) => Err("was written in place (its content differs from the manifest's)".into()),
        Err(err) => Err(err.to_string()),
    }
}

enum Placing {
    Source(io::Error),
    Short(u64),
    Dest(io::Error),
}

fn create(dst: &Path) -> Result<File, Placing> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(Placing::Dest)
}

/// Mode `mode` and mtime 1, as the extractor leaves a file.
fn finish(to: &File, mode: u32) -> Result<(), Placing> {
    to.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(Placing::Dest)?;
    let one = filetime::FileTime::from_unix_time(1, 0);
    filetime::set_file_handle_times(to, Some(one), Some(one)).map_err(Placing::Dest)
}

/// Creates `dst` as a reflink of `src`. Returns false (and leaves no
/// `dst`) when the filesystem cannot.
fn clone_file(src: &Path, dst: &Path, mode: u32) -> Result<bool, Placing> {
    let from = File::open(src).map_err(Placing::Source)?;
    let to = create(dst)?;
    if reflink(&from, &to).is_err() {
        drop(to);
        fs::remove_file(dst).map_err(Placing::Dest)?;
        return Ok(false);
    }
    finish(&to, mode)?;
    Ok(true)
}

/// Creates `dst` as a copy of `src` (`copy_file_range` under `io::copy`).
fn copy_file(src: &Path, dst: &Path, mode: u32, size: u64) -> Result<(), Placing> {
    let mut from = File::open(src).map_err(Placing::Source)?;
    let mut to = create(dst)?;
    let n = io::copy(&mut from, &mut to).map_err(Placing::Dest)?;
    if n != size {
        return Err(Placing::Short(n));
    }
    finish(&to, mode)
}

/// Reflinks need Linux's `FICLONE` (macOS's `clonefile` works on paths).
#[cfg(not(target_os = "linux"))]
fn reflink(_from: &File, _to: &File) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// `ioctl(FICLONE)`: `to` shares `from`'s extents, copy-on-write.
#[cfg(target_os = "linux")]
fn reflink(from: &File, to: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // FICLONE = _IOW(0x94, 9, int) on every Linux architecture.
    const FICLONE: libc::c_ulong = 0x4004_9409;
    // SAFETY: both descriptors are open for the duration of the call, and
    // FICLONE takes the source descriptor as its integer argument.
    let r = unsafe { libc::ioctl(to.as_raw_fd(), FICLONE as _, from.as_raw_fd()) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::Manifest;
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn file(root: &Path, rel: &str, body: &[u8], mode: u32) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        let one = filetime::FileTime::from_unix_time(1, 0);
        filetime::set_file_times(&p, one, one).unwrap();
    }

    fn tree(dir: &Path) -> Tree {
        let root = dir.join("root");
        file(&root, ".strata/destdir/bin/tool", b"#!/bin/sh\n", 0o755);
        file(&root, ".strata/destdir/lib/libx.a", b"archive", 0o644);
        file(&root, "out/obj.o", b"object", 0o644);
        std::os::unix::fs::symlink("libx.a", root.join(".strata/destdir/lib/libx.so")).unwrap();
        Tree {
            dir: dir.to_path_buf(),
            manifest: Manifest::scan(&root).unwrap(),
        }
    }

    #[test]
    fn every_file_gets_its_own_inode() {
        let t = tempfile::tempdir().unwrap();
        let tr = tree(&t.path().join("tree"));
        let into = t.path().join("into");
        fs::create_dir(&into).unwrap();
        let c = materialise(&tr, &into).unwrap();
        assert_eq!(c.reflinked + c.copied, 3);
        for rel in [
            ".strata/destdir/bin/tool",
            ".strata/destdir/lib/libx.a",
            "out/obj.o",
        ] {
            let (a, b) = (
                fs::metadata(tr.root().join(rel)).unwrap(),
                fs::metadata(into.join(rel)).unwrap(),
            );
            assert_ne!(a.ino(), b.ino(), "{rel}");
            assert_eq!((a.nlink(), b.nlink()), (1, 1), "{rel}");
        }
        let m = fs::metadata(into.join("out/obj.o")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime()), (0o644, 1));
        assert_eq!(fs::read(into.join("out/obj.o")).unwrap(), b"object");
        let m = fs::metadata(into.join(".strata/destdir/bin/tool")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755);
        assert_eq!(
            fs::read_link(into.join(".strata/destdir/lib/libx.so")).unwrap(),
            Path::new("libx.a")
        );
    }

    #[test]
    fn a_big_tree_is_placed_in_parallel_exactly() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("tree/root");
        for i in 0..600 {
            let top = if i % 5 == 0 { "out" } else { ".strata/destdir" };
            let rel = format!("{top}/d{}/e{}/f{i}", i % 40, i % 3);
            file(
                &root,
                &rel,
                format!("{i}\n").as_bytes(),
                0o644 | ((i % 2) * 0o111),
            );
        }
        let tr = Tree {
            dir: t.path().join("tree"),
            manifest: Manifest::scan(&root).unwrap(),
        };
        let into = t.path().join("into");
        fs::create_dir(&into).unwrap();
        let c = materialise(&tr, &into).unwrap();
        assert_eq!(c.reflinked + c.copied, 600);
        let shape = |m: Manifest| -> Vec<_> {
            m.entries
                .into_iter()
                .map(|e| (e.path, e.kind, e.mode, e.size, e.id.map(|i| i.blake3)))
                .collect()
        };
        assert_eq!(
            shape(Manifest::scan(&into).unwrap()),
            shape(tr.manifest.clone())
        );
        for e in &tr.manifest.entries {
            if e.kind == Kind::File {
                let m = fs::metadata(into.join(&e.path)).unwrap();
                assert_eq!(m.mtime(), 1);
                assert_eq!(
                    fs::read(into.join(&e.path)).unwrap(),
                    fs::read(root.join(&e.path)).unwrap()
                );
            }
        }
        // Damage deep in the list stops every thread with that error.
        let victim = root.join(".strata/destdir/d39/e2/f599");
        fs::write(&victim, "changed\n").unwrap();
        let again = t.path().join("again");
        fs::create_dir(&again).unwrap();
        let err = materialise(&tr, &again).unwrap_err();
        assert!(
            matches!(&err, MaterialiseError::Damaged { path, .. } if path == &victim),
            "{err}"
        );
    }

    #[test]
    fn a_changed_or_missing_tree_file_is_damage() {
        for change in [
            "append",
            "chmod",
            "touch",
            "same size, mtime set back",
            "remove",
        ] {
            let t = tempfile::tempdir().unwrap();
            let tr = tree(&t.path().join("tree"));
            let victim = tr.root().join(".strata/destdir/lib/libx.a");
            match change {
                "append" => fs::write(&victim, b"archive+").unwrap(),
                "chmod" => fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap(),
                "touch" => filetime::set_file_mtime(&victim, filetime::FileTime::now()).unwrap(),
                "same size, mtime set back" => {
                    fs::write(&victim, b"ARCHIVE").unwrap();
                    let one = filetime::FileTime::from_unix_time(1, 0);
                    filetime::set_file_times(&victim, one, one).unwrap();
                }
                _ => fs::remove_file(&victim).unwrap(),
            }
            let into = t.path().join("into");
            fs::create_dir(&into).unwrap();
            let err = materialise(&tr, &into).unwrap_err();
            assert!(
                matches!(&err, MaterialiseError::Damaged { path, .. } if path == &victim),
                "{change}: {err}"
            );
        }
    }
}
