//! Git sources: a module pinned to a commit (`git` + `rev`) becomes a
//! package like any other, `packages/<name>-<rev>.tar.zst`, and from there
//! unpack, patch, keys and the artifact cache treat it like a tarball.
//!
//! How the package is provided, in order:
//! 1. the archive in `packages/`, if it matches the expected sha256: the
//!    module's `sha256` pin, else the sum recorded when strata first wrote
//!    the archive (`packages/.strata/verified/<file>.json`);
//! 2. `[mirrors]` (`before` and `after`) serving `<name>-<rev>.tar.zst`,
//!    through the ordinary verified download, **only when an expected sum
//!    is known**;
//! 3. the bare mirror `packages/.git/<repo>-<url hash>.git` (one per repository): `git fetch` of the commit
//!    when it is missing, then a deterministic archive of its tree
//!    ([`archive`]), written aside and renamed in. A new archive whose sum
//!    differs from the expected one is an error, never silently accepted.
//!
//! The decision a reader may question: a mirror copy is used only against a
//! known sum. The commit id authenticates the tree only while strata reads
//! it from git; an archive from a mirror carries no commit id we could
//! check, and unpacking it proves nothing about its content. So an unpinned
//! module is fetched from its repository on a clean machine, and a module
//! that must build from mirrors (CI, offline machines) pins
//! `sha256 = "<sum of the archive>"` next to `rev`; `strata prepare` prints
//! that sum. An archive present in `packages/` with neither a pin nor a
//! record is likewise unverifiable: it is moved to quarantine and rewritten.

mod archive;
mod repo;

pub use archive::FORMAT;
pub use repo::RepoError;

use super::{self as fetch, FetchError, FetchOptions, Fetched};
use crate::manifest::{GitSource, Module, Project};
use std::fs;
use std::path::{Path, PathBuf};

/// Why a git module's package could not be provided. Every message names
/// the module and what to do.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("module {module}: {source}{tried}\n  hint: {hint}")]
    Repo {
        module: String,
        source: RepoError,
        tried: String,
        hint: String,
    },
    #[error(
        "module {module}: the archive of commit {rev} has sha256 {got}, but {what} {expected} (kept as {})\n  hint: {hint}",
        kept.display()
    )]
    Mismatch {
        module: String,
        rev: String,
        got: String,
        what: &'static str,
        expected: String,
        kept: PathBuf,
        hint: String,
    },
    #[error(
        "module {module}: package {} is missing and --offline forbids fetching commit {rev} from {url}\n  hint: run `strata fetch {module}` while online, or copy {file} into {}",
        path.display(), path.parent().map(|p| p.display().to_string()).unwrap_or_default()
    )]
    Offline {
        module: String,
        rev: String,
        url: String,
        file: String,
        path: PathBuf,
    },
    #[error("module {module}: {}: {source}", path.display())]
    Io {
        module: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<GitError> for FetchError {
    fn from(e: GitError) -> FetchError {
        FetchError::Git(Box::new(e))
    }
}

/// The bare mirror of a git module's repository, one per URL: modules
/// building from the same repository (Heads's coreboot per board, its cbmem
/// and its toolchain) share one clone. `<last path segment>-<BLAKE3 of the
/// URL, 12 hex>.git`; the in-process lock on this path serialises them.
pub fn mirror_dir(packages: &Path, m: &Module) -> PathBuf {
    let url = m.git.as_ref().map_or(m.name.as_str(), |g| g.url.as_str());
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default();
    let stem: String = last
        .trim_end_matches(".git")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let stem = stem.trim_start_matches('.');
    let stem = if stem.is_empty() { "repo" } else { stem };
    let hash = blake3::hash(url.as_bytes()).to_hex();
    packages
        .join(".git")
        .join(format!("{stem}-{}.git", &hash[..12]))
}

/// The sha256 the module's archive must have: its pin, else the sum
/// recorded when the archive was first written here.
pub fn expected_sha256(project: &Project, m: &Module) -> Option<String> {
    let packages = &project.settings.packages_dir;
    m.pinned_sha256()
        .map(str::to_string)
        .or_else(|| {
            let git = m.git.as_ref()?;
            crate::lockfile::Lock::new(&project.root, false)
                .sha256(&m.name, &m.file, &lock_pin(git))
                .ok()
                .flatten()
        })
        .or_else(|| fetch::recorded_sha256(packages, &m.file))
}

/// How `strata.lock` names the archive of a commit: the commit, whether
/// submodules are in it, and the archive format (a new format is a new pin).
pub fn lock_pin(git: &GitSource) -> String {
    let subs = if git.submodules { "+submodules" } else { "" };
    format!("git:{}{subs}:{}", git.rev, FORMAT)
}

/// Makes sure the archive of a git module is in `packages/` and verified,
/// and that `strata.lock` records its sha256: with the lock, a mirror copy
/// or a dropped-in archive is trusted without a `sha256` in the manifest.
pub fn ensure_archive(
    project: &Project,
    m: &Module,
    git: &GitSource,
    opts: &FetchOptions,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Fetched, FetchError> {
    let f = provide_archive(project, m, git, opts, progress)?;
    let packages = &project.settings.packages_dir;
    if let Some(sum) = fetch::recorded_sha256(packages, &m.file) {
        crate::lockfile::Lock::new(&project.root, opts.update_lock).record(
            &m.name,
            &m.file,
            &lock_pin(git),
            &sum,
        )?;
    }
    Ok(f)
}

fn provide_archive(
    project: &Project,
    m: &Module,
    git: &GitSource,
    opts: &FetchOptions,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Fetched, FetchError> {
    let packages = &project.settings.packages_dir;
    let mirror = mirror_dir(packages, m);
    let lock = fetch::file_lock(&mirror);
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let path = packages.join(&m.file);
    let io_err = |p: &Path| {
        let (module, path) = (m.name.clone(), p.to_path_buf());
        move |source| GitError::Io {
            module,
            path,
            source,
        }
    };
    let offline = || GitError::Offline {
        module: m.name.clone(),
        rev: git.rev.clone(),
        url: git.url.clone(),
        file: m.file.clone(),
        path: path.clone(),
    };
    let expected = if opts.update_lock {
        m.pinned_sha256().map(str::to_string)
    } else {
        expected_sha256(project, m)
    };
    let mut quarantined = Vec::new();
    let mut tried = String::new();
    match &expected {
        Some(sum) => {
            // The ordinary verified download: packages/ first, then mirrors.
            let mut plain = m.clone();
            plain.git = None;
            plain.sha256 = sum.clone();
            match fetch::ensure_plain(project, &plain, opts, progress) {
                Ok(f) => return Ok(f),
                Err(FetchError::Offline { .. }) => return Err(offline().into()),
                Err(FetchError::AllFailed { attempts, .. }) => {
                    for (url, why) in attempts {
                        tried.push_str(&format!("\n    mirror {url}: {why}"));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        None => {
            if path.exists() {
                let q = fetch::quarantine(packages, &path).map_err(io_err(&path))?;
                quarantined.push(q);
            }
            if opts.offline {
                return Err(offline().into());
            }
            if !project.mirrors_before.is_empty() || !project.mirrors_after.is_empty() {
                tried.push_str(
                    "\n    mirrors: skipped, a mirror copy cannot be verified without a sha256 pin",
                );
            }
        }
    }
    let repo_err = |source: RepoError| {
        let hint = repo_hint(m, git, packages, &source);
        GitError::Repo {
            module: m.name.clone(),
            source,
            tried: tried.clone(),
            hint,
        }
    };
    let local = git.url.starts_with("file://");
    let repo = repo::Repo::open_or_init(&mirror, local).map_err(repo_err)?;
    let stall = opts.timeout.as_secs();
    fetch_commit(&repo, &git.url, &git.rev, git.submodules, stall).map_err(repo_err)?;
    fs::create_dir_all(packages).map_err(io_err(packages))?;
    // A run killed while archiving left `.<file>.tmp-<pid>` (the project
    // lock is held, so no live run owns one).
    crate::fsutil::remove_leftovers(packages, &m.file).map_err(io_err(packages))?;
    let tmp = packages.join(format!(".{}.tmp-{}", m.file, std::process::id()));
    let top = format!("{}-{}", m.name, git.rev);
    let sum = match archive::write(&repo, &git.rev, git.submodules, &top, &tmp) {
        Ok(sum) => sum,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(repo_err(e).into());
        }
    };
    if let Some(want) = &expected
        && *want != sum
    {
        let kept = fetch::quarantine(packages, &tmp).map_err(io_err(&tmp))?;
        return Err(mismatch(m, git, sum, want, kept).into());
    }
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    crate::fsutil::sync_dir(packages).map_err(io_err(packages))?;
    fetch::record_verified(packages, &m.file, &sum).map_err(io_err(&path))?;
    Ok(Fetched { path, quarantined })
}

/// What to do about a failure of the mirror, by its kind.
fn repo_hint(m: &Module, git: &GitSource, packages: &Path, source: &RepoError) -> String {
    match source {
        RepoError::Unreachable { .. } => format!(
            "check `git` in {} and your network or credentials (`git ls-remote {}` shows the same); \
             a machine without access needs {} in packages/ or on a [mirrors] URL with `sha256` pinned",
            m.manifest_path.display(),
            git.url,
            m.file
        ),
        RepoError::NoSuchCommit { .. } => format!(
            "check `rev` in {}: the commit must be reachable from a branch or tag of the repository",
            m.manifest_path.display()
        ),
        RepoError::Unsafe { .. } => format!(
            "strata refuses it in every source: pin a commit without it (`rev` in {})",
            m.manifest_path.display()
        ),
        RepoError::BadSubmoduleUrl { .. } => format!(
            "strata fetches submodules only from {} URLs (file:// and local paths only when \
             `git` itself is a local path); fix .gitmodules upstream and pin the new commit, \
             or set `submodules = false` in {}",
            crate::manifest::GIT_URL_FORMS,
            m.manifest_path.display()
        ),
        _ => format!(
            "remove {} to start the mirror afresh",
            mirror_dir(packages, m).display()
        ),
    }
}

/// The archive of `git.rev` is not the one the pin or the lock recorded.
fn mismatch(m: &Module, git: &GitSource, sum: String, want: &str, kept: PathBuf) -> GitError {
    let pinned = m.pinned_sha256().is_some();
    GitError::Mismatch {
        module: m.name.clone(),
        rev: git.rev.clone(),
        got: sum,
        what: if pinned {
            "the module pins sha256"
        } else {
            "strata.lock (or an earlier archive of the same commit) recorded"
        },
        expected: want.to_string(),
        kept,
        hint: if pinned {
            format!(
                "the pin in {} does not describe this commit's archive; if you changed `rev`, update or remove `sha256`",
                m.manifest_path.display()
            )
        } else {
            format!(
                "the repository served a different tree for this commit, or strata's archive format changed; \
                 inspect it, then run `strata fetch --update-lock {}` to accept the new archive",
                m.name
            )
        },
    }
}

/// Fetches `rev` into the mirror when missing, then the commits of its
/// submodules (recursively) when asked to.
fn fetch_commit(
    repo: &repo::Repo,
    url: &str,
    rev: &str,
    submodules: bool,
    stall: u64,
) -> Result<(), RepoError> {
    if !repo.has_commit(rev) {
        repo.fetch(url, rev, stall)?;
    }
    if !submodules {
        return Ok(());
    }
    let urls = repo.submodule_urls(rev)?;
    for entry in repo.tree(rev)? {
        if entry.mode != 0o160000 {
            continue;
        }
        let Some(sub_url) = urls.get(&entry.path) else {
            return Err(RepoError::Git {
                cmd: format!("config --blob {rev}:.gitmodules"),
                dir: PathBuf::from(url),
                stderr: format!(
                    "    submodule {} has no url in .gitmodules",
                    String::from_utf8_lossy(&entry.path)
                ),
            });
        };
        let sub_url = checked_submodule_url(repo.allows_file(), url, rev, &entry.path, sub_url)?;
        fetch_commit(repo, &sub_url, &entry.oid, true, stall)?;
    }
    Ok(())
}

/// The URL a submodule is fetched from: its `.gitmodules` URL resolved
/// against the superproject's (`url`), refused as `git submodule` refuses
/// it (a leading `-`, a relative URL climbing above the host) and unless it
/// is one of the forms a manifest may name, `file://` and absolute local
/// paths only when the module's own repository is local (`local`).
fn checked_submodule_url(
    local: bool,
    url: &str,
    rev: &str,
    path: &[u8],
    sub_url: &str,
) -> Result<String, RepoError> {
    let refuse = |why: String| RepoError::BadSubmoduleUrl {
        path: String::from_utf8_lossy(path).into_owned(),
        url: sub_url.to_string(),
        rev: rev.to_string(),
        why,
    };
    if sub_url.starts_with('-') {
        return Err(refuse(
            "it starts with `-`, which git would read as an option".into(),
        ));
    }
    let resolved = repo::submodule_url(url, sub_url).map_err(refuse)?;
    let is_local = resolved.starts_with("file://") || resolved.starts_with('/');
    if is_local && !local {
        return Err(refuse(format!(
            "it resolves to the local path {resolved}, and the superproject {url} is not local"
        )));
    }
    if resolved.starts_with('/') {
        if resolved.chars().any(char::is_control) {
            return Err(refuse("it holds a control character".into()));
        }
        return Ok(resolved);
    }
    crate::manifest::check_git_url(&resolved).map_err(refuse)?;
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::checked_submodule_url;

    #[test]
    fn submodule_urls_are_checked_as_git_submodule_checks_them() {
        let check = |local, base: &str, url: &str| {
            checked_submodule_url(local, base, "r", b"sub", url).map_err(|e| e.to_string())
        };
        assert_eq!(
            check(false, "https://h/org/a.git", "../b.git").unwrap(),
            "https://h/org/b.git"
        );
        assert_eq!(
            check(true, "file:///r/a.git", "../b.git").unwrap(),
            "file:///r/b.git"
        );
        assert_eq!(
            check(true, "file:///r/a.git", "/srv/b.git").unwrap(),
            "/srv/b.git"
        );
        for (local, base, url, why) in [
            (
                true,
                "file:///r/a.git",
                "--upload-pack=touch x",
                "starts with `-`",
            ),
            (
                true,
                "file:///r/a.git",
                "ext::sh -c touch% x",
                "transport helper",
            ),
            (false, "https://h/a", "fd::3", "transport helper"),
            (false, "https://h/a", "file:///etc/x", "is not local"),
            (false, "https://h/a", "/srv/b.git", "is not local"),
            (false, "https://h/a", "../../x", "climbs above"),
            (
                false,
                "https://h/a",
                "ssh://-oProxyCommand=x/y",
                "host starts with `-`",
            ),
        ] {
            let e = check(local, base, url).unwrap_err();
            assert!(
                e.contains("submodule sub has url") && e.contains(why),
                "{url}: {e}"
            );
        }
    }
}
