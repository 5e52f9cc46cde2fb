//! Safe extraction of source archives and artifacts.
//!
//! The format is detected from magic bytes, never from the file name. Every
//! entry is checked before anything is written: absolute paths, `..`
//! components, hardlinks to anything outside, device nodes and fifos are
//! refused; every write goes through a directory handle and never through a
//! symlink an earlier entry created (see `tree` for why a lexical check is
//! not enough). setuid, setgid and sticky bits are dropped. Total bytes
//! (file contents and extended headers) and entry count are capped
//! ([`Limits`]), and so is each entry's extended headers (see `headers`),
//! so a decompression bomb ends with an error instead of a full disk or
//! memory. The caller extracts into a fresh temporary directory and renames
//! it into place, so a refused or interrupted archive leaves nothing behind
//! under the real name. Every error names the archive and the entry.
//!
//! The decision a reader would question: two rule sets ([`Origin`]). An
//! upstream archive is untrusted input that ends up as a tree the user
//! works in, so it gets GNU tar's non-root rules plus more (no symlink
//! leaving the tree, no `.git`). An archive strata packed itself (a
//! module's artifact, a CI cache) must come back exactly as it was packed,
//! so its symlinks are data, kept whatever they point to: creating a
//! symlink is harmless, following one is what the rules above prevent.

mod headers;
mod limits;
pub mod peek;
mod place;
mod tree;

pub use limits::{ENV_MAX_BYTES, ENV_MAX_ENTRIES, Limits, UnpackError};
pub use place::place_file;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use tree::{Tree, TreeError};

/// Where an archive comes from, which decides the rules it is extracted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An upstream source archive (a tarball, a zip, a git archive):
    /// symlinks must stay inside the tree, `.git` path components are
    /// refused, and modes get the process umask, as GNU tar gives them to
    /// a non-root user.
    Source,
    /// An archive strata packed from a tree (a module artifact, a CI
    /// cache): symlinks are kept verbatim (absolute, dangling or leaving
    /// the tree), `.git` is a name like any other, and modes are kept as
    /// packed (minus setuid, setgid and sticky).
    Packed,
}

/// Whether a path component is one git takes for its own directory: `.git`
/// in any ASCII case (git refuses those on case-insensitive filesystems)
/// or `git~1`, its NTFS short name.
pub fn is_dot_git(component: &[u8]) -> bool {
    component.eq_ignore_ascii_case(b".git") || component.eq_ignore_ascii_case(b"git~1")
}

/// Why a source may not hold a `.git` path component.
pub const DOT_GIT_WHY: &str = "it has a `.git` path component: git would take the tree for a \
    repository and run what a planted config says (core.fsmonitor, hooks) at the user's next \
    `git status` in it";

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

/// Extracts the source archive `archive` into the existing directory
/// `into`, dropping the first `strip` path components of every entry, with
/// the default [`Limits`] and their environment overrides.
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
    extract_as(Origin::Source, archive, into, strip, limits, progress)
}

/// Extracts an archive strata packed (a module artifact, a CI cache) into
/// the existing directory `into` by the rules of [`Origin::Packed`].
pub fn extract_packed(
    archive: &Path,
    into: &Path,
    limits: Limits,
    progress: &dyn Fn(u64, u64),
) -> Result<(), UnpackError> {
    extract_as(Origin::Packed, archive, into, 0, limits, progress)
}

fn extract_as(
    origin: Origin,
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
        origin,
        strip,
        tree: Tree::open(into, origin).map_err(io_err)?,
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
    origin: Origin,
    strip: u32,
    tree: Tree,
    limits: Limits,
    /// File bytes written and extended header bytes read so far.
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

    /// Where the archive is between entries, for messages.
    fn between(&self) -> String {
        match &self.last {
            Some(e) => format!("after entry `{e}`"),
            None => "before the first entry".into(),
        }
    }

    /// An I/O error while reading the archive between entries.
    fn io_between(&self, source: io::Error) -> UnpackError {
        UnpackError::Io {
            archive: self.archive.to_path_buf(),
            at: self.between(),
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

    /// Counts `n` bytes other than file contents (extended headers, data
    /// of entries that are not files) against the byte limit.
    fn count_bytes(&mut self, raw: &Path, n: u64) -> Result<(), UnpackError> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.limits.max_bytes {
            return Err(self.limit(raw, true));
        }
        Ok(())
    }

    fn header_too_big(&self) -> UnpackError {
        UnpackError::HeaderTooBig {
            archive: self.archive.to_path_buf(),
            at: self.between(),
        }
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
        let kept = &parts[self.strip as usize..];
        if self.origin == Origin::Source && kept.iter().any(|p| is_dot_git(p.as_bytes())) {
            return Err(self.unsafe_entry(
                raw,
                format!(
                    "{DOT_GIT_WHY}. Use an archive without it (a release tarball, or a `git` \
                     module: strata's archive of a commit never holds `.git`)"
                ),
            ));
        }
        Ok(Some(kept.iter().collect()))
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
        let meter = std::rc::Rc::new(headers::Meter::default());
        let mut ar = tar::Archive::new(headers::Metered {
            inner: reader,
            meter: meter.clone(),
        });
        ar.set_unpack_xattrs(false);
        let mut entries = ar.entries().map_err(|e| self.io_between(e))?;
        loop {
            // Where the next header starts: the previous entry was read to
            // its end, only its padding is left.
            let start = meter.pos().next_multiple_of(512);
            meter.reading_headers();
            let next = entries.next();
            meter.entry_found();
            let Some(entry) = next else { break };
            let mut entry = entry.map_err(|e| {
                if meter.tripped() {
                    self.header_too_big()
                } else {
                    self.io_between(e)
                }
            })?;
            let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            // Extended headers before this entry's header, GNU sparse maps after it.
            let header_pos = entry.raw_header_position();
            let extra = header_pos.saturating_sub(start)
                + (entry.raw_file_position() - header_pos).saturating_sub(512);
            if matches!(
                kind,
                T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
            ) {
                // Only a global header (`g`) comes here: the others are
                // read by the tar reader, under the meter.
                if entry.size() > headers::MAX_HEADER {
                    return Err(self.header_too_big());
                }
                self.drain(&mut entry, &raw, extra)?;
                continue;
            }
            self.count(&raw)?;
            self.count_bytes(&raw, extra)?;
            let Some(rel) = self.sanitize(&raw)? else {
                self.drain(&mut entry, &raw, 0)?;
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
            self.drain(&mut entry, &raw, 0)?;
        }
        Ok(())
    }

    /// Reads what is left of an entry (data of an entry that is not a
    /// file, a file that was stripped away), counting it and `extra` more
    /// bytes against the byte limit, so that the next header is all the
    /// tar reader reads under the meter.
    fn drain(&mut self, entry: &mut impl Read, raw: &Path, extra: u64) -> Result<(), UnpackError> {
        self.count_bytes(raw, extra)?;
        let budget = self.limits.max_bytes - self.bytes;
        let n = io::copy(&mut entry.take(budget.saturating_add(1)), &mut io::sink()).map_err(
            |source| UnpackError::Io {
                archive: self.archive.to_path_buf(),
                at: format!("entry `{}`", raw.display()),
                source,
            },
        )?;
        self.count_bytes(raw, n)
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
