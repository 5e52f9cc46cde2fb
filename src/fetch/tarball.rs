//! Verified downloads into `packages/`: a module's source archive and its
//! `[[download]]` extras.
//!
//! A package is downloaded to `packages/<file>.part` while its sha256 is
//! computed on the fly, then fsynced and renamed into place only if the sum
//! matches: a file under its final name in `packages/` has always been
//! verified. URLs are tried in order (`before` mirrors, the module's own
//! URLs, `after` mirrors); transient failures (connection errors, timeouts,
//! 5xx, truncated bodies) are retried with backoff, then the next URL is
//! tried. A wrong sum is never retried on the same URL.

use super::{
    FetchError, FetchOptions, Fetched, file_lock, is_verified, quarantine, record_verified,
};
use crate::fsutil::sync_dir;
use crate::manifest::{Module, Project};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The URLs a fetch may use: all of them, or offline only local mirrors
/// (`file://`), which never reach the network.
fn usable_urls(urls: Vec<String>, opts: &FetchOptions) -> Vec<String> {
    if opts.offline {
        urls.into_iter()
            .filter(|u| u.starts_with("file://"))
            .collect()
    } else {
        urls
    }
}

/// [`ensure_package`] for a module's archive with its `sha256`, without the
/// lock (a git module's archive is locked by its commit instead).
pub(crate) fn ensure_plain(
    project: &Project,
    m: &Module,
    opts: &FetchOptions,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Fetched, FetchError> {
    let packages = &project.settings.packages_dir;
    let path = packages.join(&m.file);
    let lock = file_lock(&path);
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let mut quarantined = Vec::new();
    match is_verified(packages, &m.file, &m.sha256).map_err(FetchError::io(&m.name, &path))? {
        Some(true) => {
            return Ok(Fetched { path, quarantined });
        }
        Some(false) => {
            quarantined.push(quarantine(packages, &path).map_err(FetchError::io(&m.name, &path))?)
        }
        None => {}
    }
    let urls = usable_urls(project.download_urls(m), opts);
    if urls.is_empty() && opts.offline {
        return Err(FetchError::Offline {
            module: m.name.clone(),
            path,
        });
    }
    let mut attempts = Vec::new();
    let check = |sha256: &str, _: &str| {
        if sha256 == m.sha256 {
            Ok(())
        } else {
            Err(format!(
                "sha256 mismatch: expected {}, got {sha256}",
                m.sha256
            ))
        }
    };
    let got = download_first(
        packages,
        &m.file,
        urls,
        opts,
        progress,
        &check,
        &mut attempts,
    )
    .map_err(|(p, e)| FetchError::io(&m.name, &p)(e))?;
    quarantined.extend(attempts.iter().filter_map(|a| a.2.clone()));
    if got.is_some() {
        return Ok(Fetched { path, quarantined });
    }
    let attempts = attempts.into_iter().map(|(u, why, _)| (u, why)).collect();
    Err(FetchError::AllFailed {
        module: m.name.clone(),
        file: m.file.clone(),
        manifest: m.manifest_path.display().to_string(),
        attempts,
    })
}

/// One URL tried: the URL, why it failed, and where a refused file was
/// quarantined.
type Attempt = (String, String, Option<PathBuf>);

/// Tries `urls` in order (retrying transient failures) until one serves a
/// file that `check(sha256, sha1)` accepts: it is renamed to
/// `packages/<file>`, recorded as verified, and its sha256 returned. A
/// refused file is quarantined; every failure is pushed to `attempts`.
fn download_first(
    packages: &Path,
    file: &str,
    urls: Vec<String>,
    opts: &FetchOptions,
    progress: &dyn Fn(u64, Option<u64>),
    check: &dyn Fn(&str, &str) -> Result<(), String>,
    attempts: &mut Vec<Attempt>,
) -> Result<Option<String>, (PathBuf, io::Error)> {
    let at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| (p, e)
    };
    fs::create_dir_all(packages).map_err(at(packages))?;
    let path = packages.join(file);
    let part = packages.join(format!("{file}.part"));
    let agent = crate::net::agent(crate::net::Timeouts::uniform(opts.timeout));
    for url in urls {
        let mut tries = 0;
        loop {
            tries += 1;
            match download(&agent, &url, &part, progress) {
                Ok((s256, s1)) => match check(&s256, &s1) {
                    Ok(()) => {
                        fs::rename(&part, &path).map_err(at(&path))?;
                        sync_dir(packages).map_err(at(packages))?;
                        record_verified(packages, file, &s256).map_err(at(&path))?;
                        return Ok(Some(s256));
                    }
                    Err(why) => {
                        let q = quarantine(packages, &part).map_err(at(&part))?;
                        let why = format!("{why} (kept as {})", q.display());
                        attempts.push((url.clone(), why, Some(q)));
                        break;
                    }
                },
                Err(Failure { transient, why }) => {
                    let _ = fs::remove_file(&part);
                    if transient && tries < opts.attempts {
                        std::thread::sleep(Duration::from_millis(200 << (tries - 1)));
                        continue;
                    }
                    let why = if tries > 1 {
                        format!("{why} (after {tries} attempts)")
                    } else {
                        why
                    };
                    attempts.push((url.clone(), why, None));
                    break;
                }
            }
        }
    }
    Ok(None)
}

struct Failure {
    transient: bool,
    why: String,
}

impl Failure {
    fn transient(why: impl Into<String>) -> Failure {
        Failure {
            transient: true,
            why: why.into(),
        }
    }
    fn permanent(why: impl Into<String>) -> Failure {
        Failure {
            transient: false,
            why: why.into(),
        }
    }
}

/// Downloads `url` into `part`, returning the sha256 and the sha1 of what
/// was written.
fn download(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<(String, String), Failure> {
    let (mut reader, expected_len): (Box<dyn Read>, Option<u64>) =
        if let Some(path) = url.strip_prefix("file://") {
            let f = File::open(path).map_err(|e| Failure::permanent(e.to_string()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len)
        } else {
            match agent.get(url).call() {
                Ok(resp) if resp.status().is_success() => {
                    let len = resp
                        .headers()
                        .get("content-length")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    (Box::new(resp.into_body().into_reader()), len)
                }
                Ok(resp) => {
                    let s = resp.status();
                    let code = s.as_u16();
                    let why = format!("HTTP {code} {}", s.canonical_reason().unwrap_or(""));
                    return Err(if code >= 500 || code == 408 || code == 429 {
                        Failure::transient(why.trim_end())
                    } else {
                        Failure::permanent(why.trim_end())
                    });
                }
                Err(e) => return Err(Failure::transient(crate::net::describe(&e))),
            }
        };
    let io_fail = |e: io::Error| Failure::permanent(format!("{}: {e}", part.display()));
    let mut out = File::create(part).map_err(io_fail)?;
    let mut hasher = Sha256::new();
    let mut sha1 = sha1::Sha1::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Failure::transient(format!(
                    "transfer failed after {total} bytes: {e}"
                )));
            }
        };
        hasher.update(&buf[..n]);
        sha1.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_fail)?;
        total += n as u64;
        progress(total, expected_len);
    }
    if let Some(len) = expected_len
        && total != len
    {
        return Err(Failure::transient(format!(
            "truncated body: got {total} of {len} bytes"
        )));
    }
    out.sync_all().map_err(io_fail)?;
    Ok((hex::encode(hasher.finalize()), hex::encode(sha1.finalize())))
}

/// Whether the extra download `d` of `m` is in `packages/` and verified,
/// without downloading: a sha1-pinned file counts only once `strata.lock`
/// holds its sha256.
pub fn download_present(project: &Project, m: &Module, d: &crate::manifest::Download) -> bool {
    let sum = match &d.pin {
        crate::manifest::Pin::Sha256(h) => Some(h.clone()),
        crate::manifest::Pin::Sha1(_) => crate::lockfile::Lock::new(&project.root, false)
            .sha256(&m.name, &d.file, &d.pin.label())
            .ok()
            .flatten(),
        // Not resolved yet (see `resolved_downloads`).
        crate::manifest::Pin::Sha1From(_) => None,
    };
    sum.is_some_and(|sum| {
        matches!(
            is_verified(&project.settings.packages_dir, &d.file, &sum),
            Ok(Some(true))
        )
    })
}

/// The sha256 and the sha1 of a file, as lower-case hex.
fn sums_of_file(path: &Path) -> io::Result<(String, String)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut h1 = sha1::Sha1::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        h1.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), hex::encode(h1.finalize())))
}

/// Makes sure the extra download `d` of module `m` is in `packages/`,
/// verified against its pin and `strata.lock`, downloading it if needed.
/// A sha1-pinned file's sha256 is recorded in the lock on first fetch and
/// required from then on.
pub fn ensure_download(
    project: &Project,
    m: &Module,
    d: &crate::manifest::Download,
    opts: &FetchOptions,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Fetched, FetchError> {
    use crate::manifest::Pin;
    let packages = &project.settings.packages_dir;
    let path = packages.join(&d.file);
    let lock_file = crate::lockfile::Lock::new(&project.root, opts.update_lock);
    let pin = d.pin.label();
    if let Pin::Sha1From(p) = &d.pin {
        // A caller's bug: `resolved_downloads` turns these into sha1 pins.
        return Err(FetchError::Io {
            module: m.name.clone(),
            path: PathBuf::from(&p.path),
            source: io::Error::other("a sha1-from download must be resolved from the source first"),
        });
    }
    let flock = file_lock(&path);
    let _guard = flock.lock().unwrap_or_else(|e| e.into_inner());
    // The sha256 the file must have, when known: the pin itself, or what
    // the lock recorded for a sha1 pin (not when updating the lock).
    let locked = match &d.pin {
        Pin::Sha256(h) => Some(h.clone()),
        Pin::Sha1(_) | Pin::Sha1From(_) if opts.update_lock => None,
        Pin::Sha1(_) | Pin::Sha1From(_) => lock_file.sha256(&m.name, &d.file, &pin)?,
    };
    let accept = |sha256: &str, sha1: &str| match &d.pin {
        Pin::Sha256(h) => sha256 == h,
        Pin::Sha1(h) => sha1 == h && locked.as_deref().is_none_or(|l| l == sha256),
        Pin::Sha1From(_) => false,
    };
    let mut quarantined = Vec::new();
    let present = match &locked {
        Some(sum) => is_verified(packages, &d.file, sum).map_err(FetchError::io(&m.name, &path))?,
        None if path.is_file() => {
            let (s256, s1) = sums_of_file(&path).map_err(FetchError::io(&m.name, &path))?;
            if accept(&s256, &s1) {
                record_verified(packages, &d.file, &s256)
                    .map_err(FetchError::io(&m.name, &path))?;
                lock_file.record(&m.name, &d.file, &pin, &s256)?;
            }
            Some(accept(&s256, &s1))
        }
        None => None,
    };
    match present {
        Some(true) => {
            if let Some(sum) = &locked {
                lock_file.record(&m.name, &d.file, &pin, sum)?;
            }
            return Ok(Fetched { path, quarantined });
        }
        Some(false) => {
            quarantined.push(quarantine(packages, &path).map_err(FetchError::io(&m.name, &path))?)
        }
        None => {}
    }
    let urls = usable_urls(project.urls_for(&d.file, &d.urls), opts);
    if urls.is_empty() && opts.offline {
        return Err(FetchError::Offline {
            module: m.name.clone(),
            path,
        });
    }
    let mut attempts = Vec::new();
    let check = |s256: &str, s1: &str| {
        if accept(s256, s1) {
            return Ok(());
        }
        Err(match (&d.pin, &locked) {
            (Pin::Sha1(h), Some(l)) if s1 == h => format!(
                "sha1 matches the pin, but its sha256 {s256} is not the {l} that {} locks",
                crate::lockfile::FILE_NAME
            ),
            (Pin::Sha1(h), _) => format!("sha1 mismatch: expected {h}, got {s1}"),
            (Pin::Sha256(h), _) => format!("sha256 mismatch: expected {h}, got {s256}"),
            (Pin::Sha1From(_), _) => "unresolved sha1-from pin".to_string(),
        })
    };
    let got = download_first(
        packages,
        &d.file,
        urls,
        opts,
        progress,
        &check,
        &mut attempts,
    )
    .map_err(|(p, e)| FetchError::io(&m.name, &p)(e))?;
    quarantined.extend(attempts.iter().filter_map(|a| a.2.clone()));
    if let Some(s256) = got {
        lock_file.record(&m.name, &d.file, &pin, &s256)?;
        return Ok(Fetched { path, quarantined });
    }
    let attempts = attempts.into_iter().map(|(u, why, _)| (u, why)).collect();
    Err(FetchError::AllFailed {
        module: m.name.clone(),
        file: d.file.clone(),
        manifest: m.manifest_path.display().to_string(),
        attempts,
    })
}
