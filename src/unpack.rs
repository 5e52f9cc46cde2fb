//! Safe extraction of source archives.
//!
//! The format is detected from magic bytes, never from the file name. Every
//! entry is checked before anything is written: absolute paths, `..`
//! components, symlinks whose target leaves the tree, hardlinks to anything
//! outside, device nodes and fifos are refused, and no entry is ever written
//! *through* a symlink that an earlier entry created (the classic
//! `link -> /etc` then `link/passwd` attack). The caller extracts into a
//! fresh temporary directory and renames it into place, so a refused or
//! interrupted archive leaves nothing behind under the real name.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

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
    #[error("{}: {source}", archive.display())]
    Io { archive: PathBuf, source: io::Error },
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

/// Extracts `archive` into the existing empty directory `into`, dropping the
/// first `strip` path components of every entry.
pub fn extract(archive: &Path, into: &Path, strip: u32) -> Result<(), UnpackError> {
    let io_err = |source| UnpackError::Io {
        archive: archive.to_path_buf(),
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
    let reader = BufReader::with_capacity(256 * 1024, file);
    let mut x = Extractor {
        archive,
        into,
        strip,
        dirs: HashSet::new(),
    };
    match format {
        Format::Gzip => x.tar(flate2::read::MultiGzDecoder::new(reader)),
        Format::Xz => x.tar(liblzma::read::XzDecoder::new_multi_decoder(reader)),
        Format::Bzip2 => x.tar(bzip2::read::MultiBzDecoder::new(reader)),
        Format::Zstd => x.tar(zstd::stream::read::Decoder::with_buffer(reader).map_err(io_err)?),
        Format::Tar => x.tar(reader),
        Format::Zip => x.zip(reader),
    }
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
    into: &'a Path,
    strip: u32,
    /// Directories this run created (known real directories, not symlinks).
    dirs: HashSet<PathBuf>,
}

impl Extractor<'_> {
    fn unsafe_entry(&self, entry: &Path, why: impl Into<String>) -> UnpackError {
        UnpackError::Unsafe {
            archive: self.archive.to_path_buf(),
            entry: entry.display().to_string(),
            why: why.into(),
        }
    }

    fn io(&self, source: io::Error) -> UnpackError {
        UnpackError::Io {
            archive: self.archive.to_path_buf(),
            source,
        }
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

    /// Creates the parent directories of `rel`, refusing to pass through a symlink.
    fn prepare_parent(&mut self, rel: &Path, entry: &Path) -> Result<(), UnpackError> {
        let mut cur = self.into.to_path_buf();
        let parent: Vec<_> = rel
            .parent()
            .map(|p| p.components().collect())
            .unwrap_or_default();
        for c in parent {
            cur.push(c);
            if self.dirs.contains(&cur) {
                continue;
            }
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self.unsafe_entry(
                        entry,
                        format!(
                            "it would be written through the symlink `{}`",
                            cur.strip_prefix(self.into).unwrap_or(&cur).display()
                        ),
                    ));
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(self.unsafe_entry(entry, "a parent of it is a regular file"));
                }
                Err(_) => {
                    fs::create_dir(&cur).map_err(|e| self.io(e))?;
                }
            }
            self.dirs.insert(cur.clone());
        }
        Ok(())
    }

    /// Removes whatever non-directory sits at `dest`, so nothing is written through a link.
    /// Writes a regular file's bytes, mode and mtime through one descriptor:
    /// `O_CREAT|O_EXCL` (never follows a symlink planted at `dest`), then
    /// `fchmod` and `futimens`. Something already at `dest` (an earlier
    /// entry of the same name) is removed first, as GNU tar does.
    fn write_file(
        &self,
        dest: &Path,
        data: &mut impl Read,
        mode: u32,
        mtime: u64,
    ) -> Result<(), UnpackError> {
        use std::os::unix::fs::OpenOptionsExt;
        let open = || {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dest)
        };
        let mut file = match open() {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.clear(dest)?;
                open().map_err(|e| self.io(e))?
            }
            Err(e) => return Err(self.io(e)),
        };
        io::copy(data, &mut file).map_err(|e| self.io(e))?;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| self.io(e))?;
        let t = filetime::FileTime::from_unix_time(mtime as i64, 0);
        filetime::set_file_handle_times(&file, Some(t), Some(t)).map_err(|e| self.io(e))
    }

    fn clear(&self, dest: &Path) -> Result<(), UnpackError> {
        match fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(dest).map_err(|e| self.io(e)),
            Ok(_) => fs::remove_file(dest).map_err(|e| self.io(e)),
            Err(_) => Ok(()),
        }
    }

    fn make_dir(&mut self, rel: &Path, entry: &Path, mode: u32) -> Result<(), UnpackError> {
        self.prepare_parent(rel, entry)?;
        let dest = self.into.join(rel);
        match fs::symlink_metadata(&dest) {
            Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {}
            Ok(_) => {
                self.clear(&dest)?;
                fs::create_dir(&dest).map_err(|e| self.io(e))?;
            }
            Err(_) => fs::create_dir(&dest).map_err(|e| self.io(e))?,
        }
        // Keep the owner able to write, or later entries could not be created.
        fs::set_permissions(&dest, fs::Permissions::from_mode((mode & 0o7777) | 0o700))
            .map_err(|e| self.io(e))?;
        self.dirs.insert(dest);
        Ok(())
    }

    fn make_symlink(&mut self, rel: &Path, entry: &Path, target: &Path) -> Result<(), UnpackError> {
        if target.is_absolute() {
            return Err(self.unsafe_entry(
                entry,
                format!("symlink to absolute path `{}`", target.display()),
            ));
        }
        let joined = rel.parent().unwrap_or(Path::new("")).join(target);
        if normalize(&joined).is_none() {
            return Err(self.unsafe_entry(
                entry,
                format!("symlink to `{}` points outside the tree", target.display()),
            ));
        }
        self.prepare_parent(rel, entry)?;
        let dest = self.into.join(rel);
        self.clear(&dest)?;
        std::os::unix::fs::symlink(target, &dest).map_err(|e| self.io(e))
    }

    fn make_hardlink(
        &mut self,
        rel: &Path,
        entry: &Path,
        target: &Path,
    ) -> Result<(), UnpackError> {
        let Some(target_rel) = self.sanitize(target).map_err(|_| {
            self.unsafe_entry(
                entry,
                format!("hardlink to `{}` points outside the tree", target.display()),
            )
        })?
        else {
            return Err(self.unsafe_entry(entry, "hardlink to a stripped path"));
        };
        // The link target must be an entry already extracted, reached without symlinks.
        let mut cur = self.into.to_path_buf();
        let comps: Vec<_> = target_rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            let meta = fs::symlink_metadata(&cur).map_err(|_| {
                self.unsafe_entry(
                    entry,
                    format!(
                        "hardlink to `{}`, which is not in the archive before it",
                        target.display()
                    ),
                )
            })?;
            if meta.file_type().is_symlink() && i + 1 < comps.len() {
                return Err(self.unsafe_entry(entry, "hardlink through a symlink"));
            }
        }
        self.prepare_parent(rel, entry)?;
        let dest = self.into.join(rel);
        self.clear(&dest)?;
        fs::hard_link(&cur, &dest).map_err(|e| self.io(e))
    }

    fn tar(&mut self, reader: impl Read) -> Result<(), UnpackError> {
        use tar::EntryType as T;
        let mut ar = tar::Archive::new(reader);
        ar.set_preserve_permissions(true);
        ar.set_preserve_mtime(true);
        ar.set_unpack_xattrs(false);
        for entry in ar.entries().map_err(|e| self.io(e))? {
            let mut entry = entry.map_err(|e| self.io(e))?;
            let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            if matches!(
                kind,
                T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
            ) {
                continue;
            }
            let Some(rel) = self.sanitize(&raw)? else {
                continue;
            };
            let mode = entry.header().mode().unwrap_or(0o644);
            match kind {
                T::Directory => self.make_dir(&rel, &raw, mode)?,
                T::Regular | T::Continuous => {
                    self.prepare_parent(&rel, &raw)?;
                    let dest = self.into.join(&rel);
                    let mtime = entry.header().mtime().unwrap_or(0);
                    self.write_file(&dest, &mut entry, mode, mtime)?;
                }
                T::GNUSparse => {
                    self.prepare_parent(&rel, &raw)?;
                    let dest = self.into.join(&rel);
                    self.clear(&dest)?;
                    entry.unpack(&dest).map_err(|e| self.io(e))?;
                }
                T::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(|e| self.io(e))?
                        .ok_or_else(|| self.unsafe_entry(&raw, "symlink without a target"))?
                        .into_owned();
                    self.make_symlink(&rel, &raw, &target)?;
                }
                T::Link => {
                    let target = entry
                        .link_name()
                        .map_err(|e| self.io(e))?
                        .ok_or_else(|| self.unsafe_entry(&raw, "hardlink without a target"))?
                        .into_owned();
                    self.make_hardlink(&rel, &raw, &target)?;
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
        let mut z = zip::ZipArchive::new(reader).map_err(|e| self.io(zerr(e)))?;
        for i in 0..z.len() {
            let mut f = z.by_index(i).map_err(|e| self.io(zerr(e)))?;
            let raw = PathBuf::from(f.name().map_err(|e| self.io(zerr(e)))?.into_owned());
            let Some(rel) = self.sanitize(&raw)? else {
                continue;
            };
            let mode = f.unix_mode().unwrap_or(0o644);
            if f.is_dir() {
                self.make_dir(&rel, &raw, mode)?;
            } else if mode & 0o170000 == 0o120000 {
                let mut target = Vec::new();
                f.read_to_end(&mut target).map_err(|e| self.io(e))?;
                let target = PathBuf::from(OsStr::from_bytes(&target));
                self.make_symlink(&rel, &raw, &target)?;
            } else {
                self.prepare_parent(&rel, &raw)?;
                let dest = self.into.join(&rel);
                self.clear(&dest)?;
                let mut out = File::create(&dest).map_err(|e| self.io(e))?;
                io::copy(&mut f, &mut out).map_err(|e| self.io(e))?;
                fs::set_permissions(&dest, fs::Permissions::from_mode(mode & 0o777))
                    .map_err(|e| self.io(e))?;
            }
        }
        Ok(())
    }
}

/// Lexically resolves `..` in a relative path; `None` if it climbs above the start.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out.iter().collect())
}

#[cfg(test)]
mod tests {
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
