//! The deterministic archive of a commit's tree: `<name>-<rev>.tar.zst`.
//!
//! The same commit always gives the same bytes, so the archive's sha256 can
//! be recorded and pinned, and a mirror copy checked against it: entries are
//! sorted by path (each directory before its contents), every entry has the
//! commit's committer time as mtime, uid/gid 0 and no owner names, files are
//! 0644 or 0755 (git's executable bit), directories 0755, symlinks are kept
//! as symlinks, and nothing of `.git` is included: a tree that holds a
//! `.git` path component (git's plumbing can make one, `git add` cannot) is
//! refused, as the extractor refuses one in any source, and so is a symlink
//! whose target is longer than [`MAX_LINK`]. Submodules are archived at
//! the commits the tree pins when asked to, else they appear as empty
//! directories (as in a checkout without `--recurse-submodules`).
//!
//! The decision a reader may question: strata writes the tar itself instead
//! of running `git archive`, whose output is not specified to be stable
//! across git versions and which cannot include submodules. The encoding
//! (GNU tar headers, zstd level 3 in one thread) is fixed; changing it means
//! bumping [`FORMAT`], which enters the keys of git modules.

use super::repo::{Repo, RepoError, TreeEntry, os_path};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Version of the archive encoding; part of the fetch key of git modules.
pub const FORMAT: &str = "1";

/// zstd level of the archive. Fixed: the bytes must not depend on settings.
const LEVEL: i32 = 3;

const MODE_EXEC: u32 = 0o100755;
const MODE_LINK: u32 = 0o120000;
const MODE_GITLINK: u32 = 0o160000;

/// The longest symlink target archived (Linux's PATH_MAX): a blob is read
/// into memory to become one, so it is bounded.
pub const MAX_LINK: u64 = 4096;

enum Kind {
    Dir,
    File { oid: String, exec: bool },
    Link { oid: String },
}

/// Writes the archive of `rev` (with submodules when `submodules`, whose
/// commits must already be in `repo`) under the top directory `top` to
/// `out`, fsynced, and returns its sha256.
pub fn write(
    repo: &Repo,
    rev: &str,
    submodules: bool,
    top: &str,
    out: &Path,
) -> Result<String, RepoError> {
    let mtime = repo.commit_time(rev)?;
    let mut entries: Vec<(Vec<u8>, Kind)> = Vec::new();
    collect(repo, rev, b"", submodules, &mut entries)?;
    add_directories(&mut entries);
    // Each directory sorts as "path/" so it precedes its contents.
    entries.sort_by_cached_key(sort_key);
    let io_err = |source| RepoError::Io {
        path: out.to_path_buf(),
        source,
    };
    let file = File::create(out).map_err(io_err)?;
    let hashing = HashingWriter {
        inner: file,
        hash: Sha256::new(),
    };
    let zstd = zstd::stream::write::Encoder::new(hashing, LEVEL).map_err(io_err)?;
    let mut tar = tar::Builder::new(zstd);
    let mut blobs = repo.blobs()?;
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(size);
        h
    };
    let mut top_header = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut top_header, format!("{top}/"), io::empty())
        .map_err(io_err)?;
    for (path, kind) in &entries {
        let mut name = top.as_bytes().to_vec();
        name.push(b'/');
        name.extend_from_slice(path);
        match kind {
            Kind::Dir => {
                name.push(b'/');
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                tar.append_data(&mut h, os_path(&name), io::empty())
                    .map_err(io_err)?;
            }
            Kind::File { oid, exec } => {
                let mode = if *exec { 0o755 } else { 0o644 };
                blobs
                    .read(oid, |size, body| {
                        let mut h = header(tar::EntryType::Regular, mode, size);
                        tar.append_data(&mut h, os_path(&name), body)
                    })
                    .map_err(io_err)?;
            }
            Kind::Link { oid } => {
                let target = blobs
                    .read(oid, |size, body| {
                        if size > MAX_LINK {
                            return Ok(Err(size));
                        }
                        let mut t = Vec::new();
                        body.read_to_end(&mut t)?;
                        Ok(Ok(t))
                    })
                    .map_err(io_err)?
                    .map_err(|size| RepoError::Unsafe {
                        rev: rev.to_string(),
                        path: String::from_utf8_lossy(path).into_owned(),
                        why: format!(
                            "a symlink whose target is {size} bytes, more than {MAX_LINK} (PATH_MAX)"
                        ),
                    })?;
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                tar.append_link(&mut h, os_path(&name), os_path(&target))
                    .map_err(io_err)?;
            }
        }
    }
    drop(blobs);
    let zstd = tar.into_inner().map_err(io_err)?;
    let hashing = zstd.finish().map_err(io_err)?;
    let HashingWriter { inner, hash } = hashing;
    inner.sync_all().map_err(io_err)?;
    Ok(hex::encode(hash.finalize()))
}

fn sort_key(entry: &(Vec<u8>, Kind)) -> Vec<u8> {
    let mut k = entry.0.clone();
    if matches!(entry.1, Kind::Dir) {
        k.push(b'/');
    }
    k
}

/// Lists the tree of `rev` under `prefix`, descending into submodules.
fn collect(
    repo: &Repo,
    rev: &str,
    prefix: &[u8],
    submodules: bool,
    out: &mut Vec<(Vec<u8>, Kind)>,
) -> Result<(), RepoError> {
    for TreeEntry { mode, oid, path } in repo.tree(rev)? {
        let mut full = prefix.to_vec();
        full.extend_from_slice(&path);
        if full.split(|b| *b == b'/').any(crate::unpack::is_dot_git) {
            return Err(RepoError::Unsafe {
                rev: rev.to_string(),
                path: String::from_utf8_lossy(&full).into_owned(),
                why: crate::unpack::DOT_GIT_WHY.to_string(),
            });
        }
        match mode {
            MODE_GITLINK if submodules => {
                let mut sub_prefix = full.clone();
                sub_prefix.push(b'/');
                out.push((full, Kind::Dir));
                collect(repo, &oid, &sub_prefix, submodules, out)?;
            }
            MODE_GITLINK => out.push((full, Kind::Dir)),
            MODE_LINK => out.push((full, Kind::Link { oid })),
            _ => out.push((
                full,
                Kind::File {
                    oid,
                    exec: mode == MODE_EXEC,
                },
            )),
        }
    }
    Ok(())
}

/// Adds an entry for every parent directory not listed yet.
fn add_directories(entries: &mut Vec<(Vec<u8>, Kind)>) {
    let mut dirs: std::collections::BTreeSet<Vec<u8>> = entries
        .iter()
        .filter(|(_, k)| matches!(k, Kind::Dir))
        .map(|(p, _)| p.clone())
        .collect();
    let mut missing = Vec::new();
    for (path, _) in entries.iter() {
        for (i, b) in path.iter().enumerate() {
            if *b == b'/' && dirs.insert(path[..i].to_vec()) {
                missing.push(path[..i].to_vec());
            }
        }
    }
    entries.extend(missing.into_iter().map(|p| (p, Kind::Dir)));
}

/// Hashes what it writes, so the archive is hashed without a second read.
struct HashingWriter {
    inner: File,
    hash: Sha256,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_precede_their_contents_and_are_added() {
        let mut e = vec![
            (
                b"a/b-c".to_vec(),
                Kind::File {
                    oid: String::new(),
                    exec: false,
                },
            ),
            (
                b"a/b/x".to_vec(),
                Kind::File {
                    oid: String::new(),
                    exec: false,
                },
            ),
        ];
        add_directories(&mut e);
        e.sort_by_cached_key(sort_key);
        let names: Vec<String> = e
            .iter()
            .map(|(p, _)| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert_eq!(names, ["a", "a/b-c", "a/b", "a/b/x"]);
    }
}
