//! The caps an unpack runs under ([`Limits`], from strata.toml and the
//! environment) and why an unpack fails ([`UnpackError`]).

use std::io;
use std::path::{Path, PathBuf};

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
    #[error(
        "{}: {at}: a tar extended header (PAX, or a GNU long name or link) is larger than 1 MiB, \
         strata's limit (a header bomb?); nothing was extracted. The archive is damaged or \
         hostile: check where it comes from",
        archive.display()
    )]
    HeaderTooBig { archive: PathBuf, at: String },
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
            UnpackError::UnknownFormat { .. }
            | UnpackError::Unsafe { .. }
            | UnpackError::HeaderTooBig { .. } => true,
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
