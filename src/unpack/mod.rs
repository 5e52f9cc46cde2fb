//! Safe extraction of source archives and artifacts.
//!
//! The format is detected from magic bytes, never from the file name. Every
//! entry is checked before anything is written: absolute paths, `..`
//! components, symlinks whose target leaves the tree, hardlinks to anything
//! outside, device nodes and fifos are refused; every write goes through a
//! directory handle and never through a symlink an earlier entry created
//! (see `tree` for why a lexical check is not enough). setuid, setgid and
//! sticky bits are dropped. Total bytes and entry count are capped
//! ([`Limits`]), so a decompression bomb ends with an error instead of a
//! full disk. The caller extracts into a fresh temporary directory and
//! renames it into place, so a refused or interrupted archive leaves nothing
//! behind under the real name. Every error names the archive and the entry.

mod tree;
pub(crate) use tree::normalize;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use tree::{Tree, TreeError};

/// Archive formats strata reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Xz,
    Bzip2,
    Zstd,
    Zip,
    Tar,
}

/// Caps on what one archive may unpack to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of file contents.
    pub max_bytes: u64,
    /// Entries of any kind (files, directories, links).
    pub max_entries: u64,
}

impl Default for Limits {
    /// Generous enough for linux and coreboot with their toolchains (a linux
    /// tarball unpacks to ~1.5 GiB and ~90k entries).
    fn default() -> Limits {
        Limits {
            max_bytes: 16 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// Environment variable overriding `[settings] unpack-max-bytes`.
pub const ENV_MAX_BYTES: &str = "STRATA_UNPACK_MAX_BYTES";
/// Environment variable overriding `[settings] unpack-max-entries`.
pub const ENV_MAX_ENTRIES: &str = "STRATA_UNPACK_MAX_ENTRIES";

impl Limits {
    /// These limits with `STRATA_UNPACK_MAX_BYTES` / `STRATA_UNPACK_MAX_ENTRIES`
    /// applied on top (the environment wins over strata.toml, as with cargo).
    pub fn with_env(self) -> Result<Limits, UnpackError> {
        let get = |name: &'static str, dflt: u64| match std::env::var(name) {
            Err(_) => Ok(dflt),
            Ok(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| UnpackError::BadLimit { name, value: v }),
        };
        Ok(Limits {
            max_bytes: get(ENV_MAX_BYTES, self.max_bytes)?,
            max_entries: get(ENV_MAX_ENTRIES, self.max_entries)?,
        })
    }
}

/// Why an archive could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("{}: unknown archive format (expected gzip, xz, bzip2, zstd, zip or tar)", archive.display())]
    UnknownFormat { archive: PathBuf },
    #[error("{}: refusing entry `{entry}`: {why}; nothing was extracted", archive.display())]
    Unsafe {
        archive: PathBuf,
        entry: String,
        why: String,
    },
    #[error("{}", limit_message(archive, entry, *limit, *bytes))]
    Limit {
        archive: PathBuf,
        entry: String,
        limit: u64,
        /// The byte limit (else the entry limit).
        bytes: bool,
    },
    #[error("{name}={value:?} is not a number; set it to a whole number or unset it")]
    BadLimit { name: &'static str, value: String },
    #[error("{}: {at}: {source}", archive.display())]
    Io {
        archive: PathBuf,
        /// `entry `x`` or `after entry `x`` or `before the first entry`.
        at: String,
        source: io::Error,
    },
}

impl UnpackError {
    /// Whether the archive itself is at fault (bad format, unsafe entry,
    /// undecodable data), as opposed to where it was being written (a full
    /// disk, a quota, permissions) or this project's limits. Only the
    /// former makes a cache entry worth quarantining.
    pub fn is_archive_fault(&self) -> bool {
        match self {
            UnpackError::UnknownFormat { .. } | UnpackError::Unsafe { .. } => true,
            UnpackError::Limit { .. } | UnpackError::BadLimit { .. } => false,
            UnpackError::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::StorageFull
                    | io::ErrorKind::QuotaExceeded
                    | io::ErrorKind::PermissionDenied
                    | io::ErrorKind::ReadOnlyFilesystem
                    | io::ErrorKind::FileTooLarge
                    | io::ErrorKind::Interrupted
            ),
        }
    }
}

fn limit_message(archive: &Path, entry: &str, limit: u64, bytes: bool) -> String {
    let (what, setting, env) = if bytes {
        ("bytes", "unpack-max-bytes", ENV_MAX_BYTES)
    } else {
        ("entries", "unpack-max-entries", ENV_MAX_ENTRIES)
    };
    format!(
        "{}: entry `{entry}`: the archive unpacks to more than {limit} {what}, strata's limit \
         (a decompression bomb?); nothing was extracted. If the archive is genuine, raise \
         `[settings] {setting}` in strata.toml or set {env}",
        archive.display()
    )
}

/// Detects the format from the first bytes of the file.
pub fn detect(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Format::Xz)
    } else if head.starts_with(b"BZh") {
        Some(Format::Bzip2)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Format::Zstd)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(Format::Tar)
    } else {
        None
    }
}

/// Extracts `archive` into the existing directory `into`, dropping the
/// first `strip` path components of every entry, with the default
/// [`Limits`] and their environment overrides.
pub fn extract(archive: &Path, into: &Path, strip: u32) -> Result<(), UnpackError> {
    extract_with(archive, into, strip, Limits::default())
}

/// [`extract`] with the given limits (environment overrides still apply).
pub fn extract_with(
    archive: &Path,
    into: &Path,
    strip: u32,
    limits: Limits,
) -> Result<(), UnpackError> {
    extract_reporting(archive, into, strip, limits, &|_, _| {})
}

/// Reads through `inner`, calling `progress(read so far, total)` about
/// every MiB: the archive's compressed bytes are the only measure known
/// before the end.
struct Counting<'p, R> {
    inner: R,
    read: u64,
    reported: u64,
    total: u64,
    progress: &'p dyn Fn(u64, u64),
}

impl<R: io::Seek> io::Seek for Counting<'_, R> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        // Zip reads its directory from the end first: report where it is.
        let at = self.inner.seek(pos)?;
        self.read = at;
        self.reported = self.reported.min(at);
        Ok(at)
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read - self.reported >= 1 << 20 || (n == 0 && self.read > self.reported) {
            self.reported = self.read;
            (self.progress)(self.read, self.total);
        }
        Ok(n)
    }
}

/// [`extract_with`], calling `progress(bytes of the archive read, its size)`
/// as it goes (for progress bars).
pub fn extract_reporting(
    archive: &Path,
    into: &Path,
    strip: u32,
    limits: Limits,
    progress: &dyn Fn(u64, u64),
) -> Result<(), UnpackError> {
    let limits = limits.with_env()?;
    let io_err = |source| UnpackError::Io {
        archive: archive.to_path_buf(),
        at: "before the first entry".into(),
        source,
    };
    let mut file = File::open(archive).map_err(io_err)?;
    let mut head = vec![0u8; 512];
    let n = read_full(&mut file, &mut head).map_err(io_err)?;
    head.truncate(n);
    file.rewind().map_err(io_err)?;
    let format = detect(&head).ok_or_else(|| UnpackError::UnknownFormat {
        archive: archive.to_path_buf(),
    })?;
    let total = file.metadata().map_err(io_err)?.len();
    let counted = Counting {
        inner: file,
        read: 0,
        reported: 0,
        total,
        progress,
    };
    let reader = BufReader::with_capacity(256 * 1024, counted);
    let mut x = Extractor {
        archive,
        strip,
        tree: Tree::open(into).map_err(io_err)?,
        limits,
        bytes: 0,
        entries: 0,
        last: None,
    };
    match format {
        Format::Gzip => x.tar(flate2::read::MultiGzDecoder::new(reader)),
        Format::Xz => x.tar(liblzma::read::XzDecoder::new_multi_decoder(reader)),
        Format::Bzip2 => x.tar(bzip2::read::MultiBzDecoder::new(reader)),
        Format::Zstd => x.tar(zstd::stream::read::Decoder::with_buffer(reader).map_err(io_err)?),
        Format::Tar => x.tar(reader),
        Format::Zip => x.zip(reader),
    }?;
    x.tree.finish().map_err(|(entry, why)| UnpackError::Unsafe {
        archive: archive.to_path_buf(),
        entry,
        why,
    })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

struct Extractor<'a> {
    archive: &'a Path,
    strip: u32,
    tree: Tree,
    limits: Limits,
    /// File bytes written so far.
    bytes: u64,
    /// Entries seen so far.
    entries: u64,
    /// The entry being extracted (or the last one), for error messages.
    last: Option<String>,
}

impl Extractor<'_> {
    fn unsafe_entry(&self, entry: &Path, why: impl Into<String>) -> UnpackError {
        UnpackError::Unsafe {
            archive: self.archive.to_path_buf(),
            entry: entry.display().to_string(),
            why: why.into(),
        }
    }

    /// An I/O error while reading the archive between entries.
    fn io_between(&self, source: io::Error) -> UnpackError {
        UnpackError::Io {
            archive: self.archive.to_path_buf(),
            at: match &self.last {
                Some(e) => format!("after entry `{e}`"),
                None => "before the first entry".into(),
            },
            source,
        }
    }

    fn limit(&self, entry: &Path, bytes: bool) -> UnpackError {
        UnpackError::Limit {
            archive: self.archive.to_path_buf(),
            entry: entry.display().to_string(),
            limit: if bytes {
                self.limits.max_bytes
            } else {
                self.limits.max_entries
            },
            bytes,
        }
    }

    /// Maps an error of the tree to an error naming the archive and `entry`.
    fn tree_err(&self, entry: &Path) -> impl FnOnce(TreeError) -> UnpackError + '_ {
        let entry = entry.to_path_buf();
        move |e| match e {
            TreeError::Unsafe(why) => self.unsafe_entry(&entry, why),
            TreeError::TooBig => self.limit(&entry, true),
            TreeError::Io(source) => UnpackError::Io {
                archive: self.archive.to_path_buf(),
                at: format!("entry `{}`", entry.display()),
                source,
            },
        }
    }

    /// Counts one entry against the limit.
    fn count(&mut self, raw: &Path) -> Result<(), UnpackError> {
        self.last = Some(raw.display().to_string());
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.limit(raw, false));
        }
        Ok(())
    }

    fn write_file(
        &mut self,
        rel: &Path,
        raw: &Path,
        data: &mut impl Read,
        mode: u32,
        mtime: Option<u64>,
    ) -> Result<(), UnpackError> {
        let budget = self.limits.max_bytes.saturating_sub(self.bytes);
        let r = self.tree.file(rel, data, mode, mtime, budget);
        let written = r.map_err(self.tree_err(raw))?;
        self.bytes += written;
        Ok(())
    }

    /// Checks an entry name and strips components. `None`: stripped away.
    fn sanitize(&self, raw: &Path) -> Result<Option<PathBuf>, UnpackError> {
        let mut parts = Vec::new();
        for c in raw.components() {
            match c {
                Component::Normal(p) => parts.push(p),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.unsafe_entry(raw, "it contains a `..` component"));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.unsafe_entry(raw, "it is an absolute path"));
                }
            }
        }
        if parts.len() <= self.strip as usize {
            return Ok(None);
        }
        Ok(Some(parts[self.strip as usize..].iter().collect()))
    }

    fn hardlink(&mut self, rel: &Path, raw: &Path, target: &Path) -> Result<(), UnpackError> {
        let Some(target_rel) = self.sanitize(target).map_err(|_| {
            self.unsafe_entry(
                raw,
                format!("hardlink to `{}` points outside the tree", target.display()),
            )
        })?
        else {
            return Err(self.unsafe_entry(raw, "hardlink to a stripped path"));
        };
        let r = self
            .tree
            .hard_link(rel, &target_rel, target, &raw.display().to_string());
        r.map_err(self.tree_err(raw))
    }

    fn tar(&mut self, reader: impl Read) -> Result<(), UnpackError> {
        use tar::EntryType as T;
        let mut ar = tar::Archive::new(reader);
        ar.set_unpack_xattrs(false);
        for entry in ar.entries().map_err(|e| self.io_between(e))? {
            let mut entry = entry.map_err(|e| self.io_between(e))?;
            let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            if matches!(
                kind,
                T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
            ) {
                continue;
            }
            self.count(&raw)?;
            let Some(rel) = self.sanitize(&raw)? else {
                continue;
            };
            let mode = entry.header().mode().unwrap_or(0o644);
            let link = |entry: &tar::Entry<_>, what: &str| -> Result<PathBuf, UnpackError> {
                let at = |source| UnpackError::Io {
                    archive: self.archive.to_path_buf(),
                    at: format!("entry `{}`", raw.display()),
                    source,
                };
                entry
                    .link_name()
                    .map_err(at)?
                    .map(|l| l.into_owned())
                    .ok_or_else(|| self.unsafe_entry(&raw, format!("{what} without a target")))
            };
            match kind {
                T::Directory => {
                    let r = self.tree.dir(&rel, mode);
                    r.map_err(self.tree_err(&raw))?;
                }
                // Sparse files are read with their holes filled: correct, if not sparse.
                T::Regular | T::Continuous | T::GNUSparse => {
                    let mtime = entry.header().mtime().ok();
                    self.write_file(&rel, &raw, &mut entry, mode, mtime)?;
                }
                T::Symlink => {
                    let target = link(&entry, "symlink")?;
                    let r = self.tree.symlink(&rel, &target, &raw.display().to_string());
                    r.map_err(self.tree_err(&raw))?;
                }
                T::Link => {
                    let target = link(&entry, "hardlink")?;
                    self.hardlink(&rel, &raw, &target)?;
                }
                T::Char | T::Block => return Err(self.unsafe_entry(&raw, "device node")),
                T::Fifo => return Err(self.unsafe_entry(&raw, "fifo")),
                other => {
                    return Err(
                        self.unsafe_entry(&raw, format!("unsupported entry type {other:?}"))
                    );
                }
            }
        }
        Ok(())
    }

    fn zip(&mut self, reader: impl Read + Seek) -> Result<(), UnpackError> {
        let zerr = |e: zip::result::ZipError| io::Error::other(e.to_string());
        let mut z = zip::ZipArchive::new(reader).map_err(|e| self.io_between(zerr(e)))?;
        for i in 0..z.len() {
            let mut f = z.by_index(i).map_err(|e| self.io_between(zerr(e)))?;
            let raw = PathBuf::from(f.name().map_err(|e| self.io_between(zerr(e)))?.into_owned());
            self.count(&raw)?;
            let Some(rel) = self.sanitize(&raw)? else {
                continue;
            };
            let mode = f.unix_mode().unwrap_or(0o644);
            if f.is_dir() {
                let r = self.tree.dir(&rel, mode);
                r.map_err(self.tree_err(&raw))?;
            } else if mode & 0o170000 == 0o120000 {
                let mut target = Vec::new();
                (&mut f)
                    .take(4096)
                    .read_to_end(&mut target)
                    .map_err(|e| self.tree_err(&raw)(TreeError::Io(e)))?;
                let target = PathBuf::from(OsStr::from_bytes(&target));
                let r = self.tree.symlink(&rel, &target, &raw.display().to_string());
                r.map_err(self.tree_err(&raw))?;
            } else {
                self.write_file(&rel, &raw, &mut f, mode, None)?;
            }
        }
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::tree::normalize;
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Some(Format::Gzip));
        assert_eq!(detect(b"\xfd7zXZ\0rest"), Some(Format::Xz));
        assert_eq!(detect(b"BZh91AY"), Some(Format::Bzip2));
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(Format::Zstd));
        assert_eq!(detect(b"PK\x03\x04"), Some(Format::Zip));
        assert_eq!(detect(b"hello"), None);
    }

    #[test]
    fn normalize_refuses_escapes() {
        assert_eq!(normalize(Path::new("a/../b")), Some(PathBuf::from("b")));
        assert_eq!(normalize(Path::new("a/../../b")), None);
        assert_eq!(normalize(Path::new("/etc")), None);
    }
}
