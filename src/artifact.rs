//! Module artifacts: a module's staged install tree plus its `keep` paths,
//! packed as a deterministic tar + zstd archive and described by a small
//! JSON record.
//!
//! Determinism: entries are sorted, owners are 0, mtimes are fixed at 1 (as
//! Nix does) and modes are reduced to 0644/0755, so the same files always
//! give the same bytes. The archive's BLAKE3 is recorded and checked on every
//! restore; restoring goes through the same safe extractor as source
//! archives, so an artifact can never write outside its module's build dir.

use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Layout version of the artifact store. A store path always includes it, so
/// a future format can never misread an old entry.
pub const CACHE_FORMAT: &str = "v1";

/// The record stored beside each archive.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct ArtifactInfo {
    pub format: String,
    pub module: String,
    pub version: String,
    /// The module's install key.
    pub key: String,
    pub strata_version: String,
    /// Size of the archive in bytes.
    pub size: u64,
    pub files: u64,
    /// BLAKE3 of the archive bytes.
    pub blake3: String,
    /// Unix seconds.
    pub created: u64,
    #[serde(default)]
    pub signatures: Vec<String>,
    /// Set on CI cache entries (`strata ci save`): the key as the user wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiLabel>,
}

impl ArtifactInfo {
    /// The record of an archive about to be packed: `pack` fills in its
    /// size, file count and BLAKE3. Created now, by this strata.
    pub fn to_pack(module: &str, version: &str, key: &str) -> ArtifactInfo {
        ArtifactInfo {
            format: CACHE_FORMAT.to_string(),
            module: module.to_string(),
            version: version.to_string(),
            key: key.to_string(),
            strata_version: env!("CARGO_PKG_VERSION").to_string(),
            size: 0,
            files: 0,
            blake3: String::new(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            signatures: Vec::new(),
            ci: None,
        }
    }
}

/// What a CI cache entry was saved as.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct CiLabel {
    /// The cache key, matched exactly or as a prefix by `strata ci restore`.
    pub key: String,
    /// Unix nanoseconds of the save: the newest prefix match wins.
    pub saved_ns: u64,
}

/// A packed artifact waiting to be stored (the archive is a temp file).
pub struct Packed {
    pub info: ArtifactInfo,
    pub archive: tempfile::NamedTempFile,
}

struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Packs a module's install tree (`destdir`, stored as `.strata/destdir`,
/// the layout artifacts have always had) and its keep paths (relative to
/// `build_dir`) into a temp file in `tmp_dir`.
pub fn pack(
    destdir: &Path,
    build_dir: &Path,
    keep: &[String],
    info: ArtifactInfo,
    tmp_dir: &Path,
    threads: u32,
) -> io::Result<Packed> {
    pack_reporting(destdir, build_dir, keep, info, tmp_dir, threads, &|_| {})
}

/// [`pack`], calling `progress(bytes of files packed so far)` as it goes.
pub fn pack_reporting(
    destdir: &Path,
    build_dir: &Path,
    keep: &[String],
    info: ArtifactInfo,
    tmp_dir: &Path,
    threads: u32,
    progress: &dyn Fn(u64),
) -> io::Result<Packed> {
    let mut roots: Vec<(PathBuf, PathBuf)> = Vec::new();
    if fs::symlink_metadata(destdir).is_ok() {
        roots.push((destdir.to_path_buf(), PathBuf::from(".strata/destdir")));
    }
    for k in keep {
        let abs = build_dir.join(k);
        if fs::symlink_metadata(&abs).is_ok() {
            roots.push((abs, PathBuf::from(k)));
        }
    }
    pack_roots(
        &roots,
        info,
        tmp_dir,
        threads,
        Entries::Normalised,
        progress,
    )
}

/// How file metadata goes into an archive.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    /// Owner 0, mtime 1, modes 0644/0755: same files, same bytes (artifacts).
    Normalised,
    /// Real modes and mtimes, owner 0: what a CI cache must give back, since
    /// Makefile builds judge stamps by mtime.
    Faithful,
}

/// Packs the trees `rels` (relative to `base`, in the order given, each
/// sorted inside) as tar + zstd into a temp file in `tmp_dir`, hashing it.
pub fn pack_paths(
    base: &Path,
    rels: &[PathBuf],
    info: ArtifactInfo,
    tmp_dir: &Path,
    threads: u32,
    entries: Entries,
) -> io::Result<Packed> {
    let roots: Vec<(PathBuf, PathBuf)> = rels.iter().map(|r| (base.join(r), r.clone())).collect();
    pack_roots(&roots, info, tmp_dir, threads, entries, &|_| {})
}

/// Packs the trees `roots` (on-disk path, name in the archive), in the
/// order given, each sorted inside.
fn pack_roots(
    roots: &[(PathBuf, PathBuf)],
    info: ArtifactInfo,
    tmp_dir: &Path,
    threads: u32,
    entries: Entries,
    progress: &dyn Fn(u64),
) -> io::Result<Packed> {
    fs::create_dir_all(tmp_dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(".pack-")
        .tempfile_in(tmp_dir)?;
    let writer = HashingWriter {
        inner: io::BufWriter::new(tmp.as_file().try_clone()?),
        hasher: blake3::Hasher::new(),
        written: 0,
    };
    let mut enc = zstd::stream::write::Encoder::new(writer, 3)?;
    if threads > 1 {
        enc.multithread(threads)?;
    }
    // tar writes in 512-byte headers and 8 KiB body chunks; batching them
    // makes each call into the compressor worth its overhead.
    let mut tar = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, enc));
    tar.follow_symlinks(false);
    let mut walk = Walk {
        files: 0,
        bytes: 0,
        reported: 0,
        entries,
        progress,
    };
    for (abs, rel) in roots {
        add_tree(&mut tar, abs, rel, &mut walk)?;
    }
    (walk.progress)(walk.bytes);
    let files = walk.files;
    let enc = tar.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    let mut writer = enc.finish()?;
    writer.flush()?;
    writer.inner.get_ref().sync_all()?;
    let mut info = info;
    info.size = writer.written;
    info.files = files;
    info.blake3 = writer.hasher.finalize().to_hex().to_string();
    Ok(Packed { info, archive: tmp })
}

/// What one pack has walked so far.
struct Walk<'p> {
    files: u64,
    bytes: u64,
    reported: u64,
    entries: Entries,
    progress: &'p dyn Fn(u64),
}

fn add_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    abs: &Path,
    rel: &Path,
    walk: &mut Walk<'_>,
) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(abs)?;
    let faithful = walk.entries == Entries::Faithful;
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(if faithful {
        meta.mtime().max(0) as u64
    } else {
        1
    });
    let ft = meta.file_type();
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(if faithful {
            meta.mode() & 0o7777
        } else {
            0o755
        });
        h.set_size(0);
        tar.append_data(&mut h, rel, io::empty())?;
        let mut names: Vec<_> = fs::read_dir(abs)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for n in names {
            add_tree(tar, &abs.join(&n), &rel.join(&n), walk)?;
        }
    } else if ft.is_symlink() {
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        tar.append_link(&mut h, rel, fs::read_link(abs)?)?;
        walk.files += 1;
    } else if ft.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        let exec = meta.permissions().mode() & 0o111 != 0;
        h.set_mode(match (faithful, exec) {
            (true, _) => meta.mode() & 0o7777,
            (false, true) => 0o755,
            (false, false) => 0o644,
        });
        h.set_size(meta.len());
        tar.append_data(&mut h, rel, File::open(abs)?)?;
        walk.files += 1;
        walk.bytes += meta.len();
        if walk.bytes - walk.reported >= 4 << 20 {
            walk.reported = walk.bytes;
            (walk.progress)(walk.bytes);
        }
    }
    Ok(())
}

/// The archive's file name in a store: `<key>-<first 16 hex of BLAKE3>.tar.zst`.
/// Naming archives by content makes the JSON record the only thing writers
/// race on, and it is written create-only: two writers of one key can never
/// pair one's record with the other's bytes.
pub fn archive_name(info: &ArtifactInfo) -> String {
    format!(
        "{}-{}.tar.zst",
        info.key,
        info.blake3.get(..16).unwrap_or("")
    )
}

/// The BLAKE3 of a file, as hex.
pub fn blake3_file(path: &Path) -> io::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_reader(File::open(path)?)?;
    Ok(h.finalize().to_hex().to_string())
}
