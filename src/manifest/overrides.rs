//! `strata.local.toml`: a developer's own, uncommitted replacements of
//! modules. `prebuilt = "DIR"` uses DIR as the module's installed output
//! (Buildroot's external toolchain, Yocto's `EXTERNAL_TOOLCHAIN`);
//! `source = "DIR"` builds the module from a local tree instead of its
//! download (Buildroot's `OVERRIDE_SRCDIR`, Yocto's `externalsrc`).
//! `[mirrors]` adds this machine's package mirrors (a local directory of
//! packages) to the project's: they hold files pinned by sha256, so they
//! change no key, and a generated `strata.toml` (`strata import`) that is
//! rewritten keeps them.
//!
//! The decision a reader may question: the directory's *content* (paths,
//! kinds, modes, bytes, link targets) is hashed into the module's keys, and
//! through them into every dependent's, so an override can never pass off
//! its output as the download's in any cache. Hashing a toolchain on every
//! run would be slow, so the digest is kept with a stat fingerprint of the
//! tree (path, size, mtime, inode, mode of every entry) and reused while
//! that is unchanged: the stat record only skips re-hashing.

use super::error::{ManifestError, from_toml};
use super::source::resolve_url;
use super::{Module, Override, OverrideKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file's name, beside `strata.toml`.
pub const FILE_NAME: &str = "strata.local.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "override")]
    overrides: BTreeMap<String, RawOverride>,
    #[serde(default)]
    mirrors: RawMirrors,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMirrors {
    #[serde(default)]
    before: Vec<String>,
    #[serde(default)]
    after: Vec<String>,
}

/// This machine's mirrors from `strata.local.toml`, URLs resolved.
#[derive(Default)]
pub(super) struct LocalMirrors {
    /// Tried before the project's `[mirrors] before`.
    pub before: Vec<String>,
    /// Tried after the project's `[mirrors] after`.
    pub after: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    prebuilt: Option<String>,
    source: Option<String>,
}

/// Reads `strata.local.toml` (if any), sets the overrides of `modules`
/// (sorted by name), digests included, and returns its mirrors. `state` is
/// where digests are cached.
pub(super) fn apply(
    root: &Path,
    state: &Path,
    modules: &mut [Module],
) -> Result<LocalMirrors, ManifestError> {
    let rel = Path::new(FILE_NAME);
    let text = match fs::read_to_string(root.join(FILE_NAME)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LocalMirrors::default()),
        Err(e) => return Err(ManifestError::new(rel, format!("cannot read: {e}"))),
    };
    let raw: RawFile = toml::from_str(&text).map_err(|e| from_toml(rel, &text, &e))?;
    let resolve = |list: &[String]| -> Result<Vec<String>, ManifestError> {
        list.iter()
            .map(|u| {
                resolve_url(root, u).map_err(|msg| {
                    ManifestError::new(rel, format!("[mirrors]: {msg}")).help(
                        "a mirror is a base URL: file:///dir/ (or file://dir/, relative to the project), http:// or https://",
                    )
                })
            })
            .collect()
    };
    let mirrors = LocalMirrors {
        before: resolve(&raw.mirrors.before)?,
        after: resolve(&raw.mirrors.after)?,
    };
    for (name, o) in raw.overrides {
        let err = |msg: String| ManifestError::new(rel, format!("[override.{name}]: {msg}"));
        let Ok(i) = modules.binary_search_by(|m| m.name.as_str().cmp(&name)) else {
            let names = modules.iter().map(|m| m.name.as_str());
            let e = err("no module of that name".into());
            return Err(match super::closest(&name, names) {
                Some(b) => e.help(format!("did you mean `{b}`?")),
                None => e.help("`strata graph` lists the modules"),
            });
        };
        let (kind, dir) = match (o.prebuilt, o.source) {
            (Some(d), None) => (OverrideKind::Prebuilt, d),
            (None, Some(d)) => (OverrideKind::Source, d),
            _ => {
                return Err(
                    err("set exactly one of `prebuilt` and `source`".into()).help(
                        "prebuilt = \"DIR\": DIR is the module's installed output; \
                     source = \"DIR\": build from DIR instead of the download",
                    ),
                );
            }
        };
        let dir = root.join(dir);
        if !dir.is_dir() {
            return Err(err(format!("not a directory: {}", dir.display()))
                .help("point the override at an existing directory (relative to the project)"));
        }
        let digest = cached_digest(&dir, &state.join("overrides").join(format!("{name}.json")))
            .map_err(|e| err(format!("cannot read {}: {e}", dir.display())))?;
        modules[i].overridden = Some(Override { kind, dir, digest });
    }
    Ok(mirrors)
}

/// One entry of a tree, as hashed.
struct Entry {
    rel: PathBuf,
    meta: fs::Metadata,
}

fn walk(root: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let mut names: Vec<_> = fs::read_dir(root.join(&rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for n in names.into_iter().rev() {
            let r = rel.join(n);
            let meta = fs::symlink_metadata(root.join(&r))?;
            if meta.is_dir() {
                todo.push(r.clone());
            }
            out.push(Entry { rel: r, meta });
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

#[derive(Serialize, Deserialize)]
struct Cached {
    stat: String,
    digest: String,
}

/// The content digest of the tree at `dir`, reusing the one recorded in
/// `cache` while the tree's stat fingerprint is unchanged.
fn cached_digest(dir: &Path, cache: &Path) -> io::Result<String> {
    let started = std::time::SystemTime::now();
    let entries = walk(dir)?;
    let mut stat = blake3::Hasher::new();
    for e in &entries {
        stat.update(e.rel.as_os_str().as_encoded_bytes());
        for n in [
            e.meta.len(),
            e.meta.mtime() as u64,
            e.meta.mtime_nsec() as u64,
            e.meta.ctime() as u64,
            e.meta.ctime_nsec() as u64,
            e.meta.dev(),
            e.meta.ino(),
            e.meta.mode() as u64,
        ] {
            stat.update(&n.to_le_bytes());
        }
    }
    let stat = stat.finalize().to_hex().to_string();
    if let Ok(text) = fs::read(cache)
        && let Ok(c) = serde_json::from_slice::<Cached>(&text)
        && c.stat == stat
    {
        return Ok(c.digest);
    }
    let digest = content_digest(dir, &entries)?;
    // Git's racy-clean rule: an entry changed within the clock's
    // granularity of this read could change again with the same stat
    // signature, so a tree that recent is hashed again next time.
    if entries.iter().any(|e| recently_changed(&e.meta, started)) {
        return Ok(digest);
    }
    if let Some(parent) = cache.parent() {
        // Only a shortcut: a cache that cannot be written is recomputed.
        let _ = fs::create_dir_all(parent).and_then(|_| {
            let json = serde_json::to_vec(&Cached {
                stat,
                digest: digest.clone(),
            })
            .map_err(io::Error::other)?;
            crate::fsutil::write_atomic(cache, &json)
        });
    }
    Ok(digest)
}

/// Whether `meta` changed less than a second before `now` (or after it).
fn recently_changed(meta: &fs::Metadata, now: std::time::SystemTime) -> bool {
    let changed = std::time::UNIX_EPOCH
        + std::time::Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec() as u32);
    now.duration_since(changed)
        .is_ok_and(|age| age < std::time::Duration::from_secs(1))
        || changed > now
}

/// The content digest of the tree at `dir` (a `{ dir = … }` param).
pub(crate) fn tree_digest(dir: &Path) -> io::Result<String> {
    content_digest(dir, &walk(dir)?)
}

/// BLAKE3 over every entry's path, kind, permission bits and content (a
/// symlink's target): what a build reading the tree can see.
fn content_digest(dir: &Path, entries: &[Entry]) -> io::Result<String> {
    let mut h = blake3::Hasher::new();
    let mut field = |b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(b"strata-override-tree-1");
    for e in entries {
        field(e.rel.as_os_str().as_encoded_bytes());
        let mode = (e.meta.permissions().mode() & 0o7777).to_le_bytes();
        if e.meta.is_dir() {
            field(b"d");
            field(&mode);
        } else if e.meta.file_type().is_symlink() {
            field(b"l");
            field(
                fs::read_link(dir.join(&e.rel))?
                    .as_os_str()
                    .as_encoded_bytes(),
            );
        } else if e.meta.is_file() {
            field(b"f");
            field(&mode);
            let mut fh = blake3::Hasher::new();
            let mut f = fs::File::open(dir.join(&e.rel))?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                fh.update(&buf[..n]);
            }
            field(fh.finalize().as_bytes());
        } else {
            field(b"o");
        }
    }
    Ok(h.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_follows_content_and_the_stat_cache_never_hides_a_change() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tc");
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::write(dir.join("bin/gcc"), "v1").unwrap();
        std::os::unix::fs::symlink("gcc", dir.join("bin/cc")).unwrap();
        let cache = tmp.path().join("cache.json");
        let d1 = cached_digest(&dir, &cache).unwrap();
        assert_eq!(cached_digest(&dir, &cache).unwrap(), d1);
        // Same size, another content: the stat fingerprint moves (mtime or
        // inode), so the digest is recomputed.
        fs::remove_file(dir.join("bin/gcc")).unwrap();
        fs::write(dir.join("bin/gcc"), "v2").unwrap();
        let d2 = cached_digest(&dir, &cache).unwrap();
        assert_ne!(d1, d2);
        // A copy elsewhere with the same content has the same digest.
        let copy = tmp.path().join("copy");
        fs::create_dir_all(copy.join("bin")).unwrap();
        fs::write(copy.join("bin/gcc"), "v2").unwrap();
        std::os::unix::fs::symlink("gcc", copy.join("bin/cc")).unwrap();
        assert_eq!(
            cached_digest(&copy, &tmp.path().join("c2.json")).unwrap(),
            d2
        );
        fs::set_permissions(copy.join("bin/gcc"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(
            cached_digest(&copy, &tmp.path().join("c2.json")).unwrap(),
            d2
        );
    }
}
