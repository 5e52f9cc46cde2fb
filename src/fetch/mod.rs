//! Sources into `packages/`, verified: the two kinds side by side,
//! [`tarball`] (downloads by URL with a sha256) and [`git`] (a commit of a
//! repository, archived by strata), and what they share here: options and
//! errors, the per-file locks, the quarantine, and the verified-file records.
//!
//! A file already present is trusted without re-hashing only while its size,
//! mtime and inode equal those recorded when it was last verified; the stat
//! record never decides correctness on its own, it only skips re-hashing.

pub mod git;
mod tarball;

pub(crate) use tarball::ensure_plain;
pub use tarball::{download_present, ensure_download};

use crate::fsutil::{sha256_file, write_atomic};
use crate::manifest::{Module, Project};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How downloads behave.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Never touch the network; fail naming the missing packages.
    pub offline: bool,
    /// Connect and read timeout per request.
    pub timeout: Duration,
    /// Attempts per URL for transient failures.
    pub attempts: u32,
    /// `fetch --update-lock`: replace `strata.lock` entries a file disagrees
    /// with instead of refusing it.
    pub update_lock: bool,
}

impl FetchOptions {
    /// Defaults, overridable with `STRATA_FETCH_TIMEOUT` (seconds) and
    /// `STRATA_FETCH_ATTEMPTS`.
    pub fn from_env(offline: bool) -> FetchOptions {
        let timeout = std::env::var("STRATA_FETCH_TIMEOUT")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .map_or(Duration::from_secs(30), Duration::from_secs_f64);
        let attempts = std::env::var("STRATA_FETCH_ATTEMPTS")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(3);
        FetchOptions {
            offline,
            timeout,
            attempts,
            update_lock: false,
        }
    }
}

/// Why a package could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "module {module}: package {} is missing and --offline forbids downloading it\n  hint: run `strata fetch` while online, or copy the file into {}",
        path.display(), path.parent().map(|p| p.display().to_string()).unwrap_or_default()
    )]
    Offline { module: String, path: PathBuf },
    #[error("module {module}: could not download {file} from any URL:\n{}\n  hint: check the URLs and sha256 in {manifest}, or add a mirror under [mirrors]",
        attempts.iter().map(|(u, why)| format!("    {u}: {why}")).collect::<Vec<_>>().join("\n"))]
    AllFailed {
        module: String,
        file: String,
        manifest: String,
        attempts: Vec<(String, String)>,
    },
    #[error(transparent)]
    Git(Box<git::GitError>),
    #[error(transparent)]
    Lock(Box<crate::lockfile::LockError>),
    #[error(transparent)]
    SourcePin(Box<crate::source_pins::SourcePinError>),
    #[error("module {module}: {path}: {source}")]
    Io {
        module: String,
        path: PathBuf,
        source: io::Error,
    },
}

impl FetchError {
    /// For `map_err`: an I/O error on `path` while providing `module`'s files.
    pub(crate) fn io(module: &str, path: &Path) -> impl FnOnce(io::Error) -> FetchError {
        let (module, path) = (module.to_string(), path.to_path_buf());
        move |source| FetchError::Io {
            module,
            path,
            source,
        }
    }
}

impl From<crate::source_pins::SourcePinError> for FetchError {
    fn from(e: crate::source_pins::SourcePinError) -> FetchError {
        FetchError::SourcePin(Box::new(e))
    }
}

/// Every extra download of `m`, `sha1-from` pins read out of its source
/// package (fetched and verified first when it is not here): what
/// [`ensure_download`] takes.
pub fn resolved_downloads(
    project: &Project,
    m: &Module,
    opts: &FetchOptions,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Vec<crate::manifest::Download>, FetchError> {
    if !crate::source_pins::needs_source(m) || m.overridden.is_some() {
        return Ok(m.downloads.clone());
    }
    let f = ensure_package(project, m, opts, progress)?;
    Ok(crate::source_pins::resolve(m, &f.path)?)
}

/// [`resolved_downloads`] without fetching: None when a `sha1-from` pin
/// needs a source package that is not here and verified.
pub fn resolved_downloads_present(
    project: &Project,
    m: &Module,
) -> Option<Vec<crate::manifest::Download>> {
    if !crate::source_pins::needs_source(m) {
        return Some(m.downloads.clone());
    }
    let sum = expected_sha256(project, m)?;
    if !matches!(
        is_verified(&project.settings.packages_dir, &m.file, &sum),
        Ok(Some(true))
    ) {
        return None;
    }
    crate::source_pins::resolve(m, &project.settings.packages_dir.join(&m.file)).ok()
}

impl From<crate::lockfile::LockError> for FetchError {
    fn from(e: crate::lockfile::LockError) -> FetchError {
        FetchError::Lock(Box::new(e))
    }
}

/// What [`ensure_package`] did.
#[derive(Debug)]
pub struct Fetched {
    /// The verified package.
    pub path: PathBuf,
    /// Packages that were present with a wrong sum and moved to quarantine.
    pub quarantined: Vec<PathBuf>,
}

#[derive(Serialize, Deserialize, PartialEq)]
struct Verified {
    sha256: String,
    size: u64,
    mtime_ns: i128,
    inode: u64,
}

impl Verified {
    fn of(sha256: &str, meta: &fs::Metadata) -> Verified {
        Verified {
            sha256: sha256.to_string(),
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            inode: meta.ino(),
        }
    }
}

/// Where the verification record of `file` lives.
pub fn record_path(packages: &Path, file: &str) -> PathBuf {
    packages
        .join(".strata")
        .join("verified")
        .join(format!("{file}.json"))
}

/// Per-file lock so two modules of one run sharing a package never write the
/// same `.part` file.
pub(crate) fn file_lock(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}

/// Whether `path` exists and holds exactly the bytes with sum `sha256`.
/// Returns `Ok(false)` for a missing file, `Err` only for I/O problems.
pub fn is_verified(packages: &Path, file: &str, sha256: &str) -> io::Result<Option<bool>> {
    let path = packages.join(file);
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let record = record_path(packages, file);
    if let Ok(text) = fs::read(&record)
        && let Ok(v) = serde_json::from_slice::<Verified>(&text)
        && v == Verified::of(sha256, &meta)
    {
        return Ok(Some(true));
    }
    let actual = sha256_file(&path)?;
    if actual == sha256 {
        let v = Verified::of(sha256, &meta);
        write_atomic(&record, &serde_json::to_vec(&v).map_err(io::Error::other)?)?;
        Ok(Some(true))
    } else {
        Ok(Some(false))
    }
}

/// The sha256 recorded when `file` was last verified, if any (for a git
/// module without a pin, the sum of the archive strata wrote).
pub fn recorded_sha256(packages: &Path, file: &str) -> Option<String> {
    let text = fs::read(record_path(packages, file)).ok()?;
    serde_json::from_slice::<Verified>(&text)
        .ok()
        .map(|v| v.sha256)
}

/// The sha256 a module's package must have: its `sha256`, or for a git
/// module without one, the sum recorded when strata wrote its archive.
pub fn expected_sha256(project: &Project, m: &Module) -> Option<String> {
    match &m.git {
        Some(_) => git::expected_sha256(project, m),
        None => Some(m.sha256.clone()),
    }
}

/// Records that `packages/<file>`, as it is now, has sum `sha256`.
pub fn record_verified(packages: &Path, file: &str, sha256: &str) -> io::Result<()> {
    let meta = fs::metadata(packages.join(file))?;
    let rec = serde_json::to_vec(&Verified::of(sha256, &meta)).map_err(io::Error::other)?;
    write_atomic(&record_path(packages, file), &rec)
}

/// Whether a package is present and verified, trusting only the stat record
/// (no hashing): used by `strata plan` to describe, never to decide.
pub fn looks_verified(packages: &Path, file: &str, sha256: &str) -> bool {
    let Ok(meta) = fs::metadata(packages.join(file)) else {
        return false;
    };
    fs::read(record_path(packages, file))
        .ok()
        .and_then(|t| serde_json::from_slice::<Verified>(&t).ok())
        .is_some_and(|v| v == Verified::of(sha256, &meta))
}

/// Makes sure the module's package is in `packages/` and verified,
/// downloading it if needed, and that `strata.lock` records it.
pub fn ensure_package(
    project: &Project,
    m: &Module,
    opts: &FetchOptions,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Fetched, FetchError> {
    if let Some(git) = &m.git {
        return git::ensure_archive(project, m, git, opts, progress);
    }
    let f = ensure_plain(project, m, opts, progress)?;
    crate::lockfile::Lock::new(&project.root, opts.update_lock).record(
        &m.name,
        &m.file,
        &crate::manifest::Pin::Sha256(m.sha256.clone()).label(),
        &m.sha256,
    )?;
    Ok(f)
}

/// Moves a bad file to `packages/.quarantine/` (kept for inspection, never used).
pub(crate) fn quarantine(packages: &Path, path: &Path) -> io::Result<PathBuf> {
    let dir = packages.join(".quarantine");
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.trim_end_matches(".part");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dest = dir.join(format!("{name}.{stamp}"));
    fs::rename(path, &dest)?;
    Ok(dest)
}
