//! The cache as the build sees it: the local store first, then an optional
//! remote, every hit verified (BLAKE3) before use and remote hits written
//! back to the local store. Remote trouble of any kind (down, slow, 5xx, bad
//! credentials, a corrupt object) is a warning and a miss, never a failure.
//! A circuit breaker (as sccache and turborepo have) stops asking the remote
//! for the rest of the run: at once when it does not answer at all (refused,
//! timed out, closed without a reply, no credentials), since every later
//! request would cost the same timeout again; after three failures when it
//! answers with errors (5xx, 403), which may be passing.

use super::{LocalStore, Store, StoreError};
use crate::artifact::{ArtifactInfo, blake3_file};
use crate::signing::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const BREAKER: usize = 3;

/// A verified artifact, ready to extract from the local store.
pub struct Hit {
    pub archive: PathBuf,
    pub info: ArtifactInfo,
    /// Which store it came from, for messages.
    pub source: String,
}

/// Local store plus optional remote.
pub struct Cache {
    pub local: LocalStore,
    remote: Option<Box<dyn Store>>,
    push: bool,
    failures: AtomicUsize,
    signer: Option<SecretKey>,
    trusted: Vec<PublicKey>,
    counters: [AtomicU64; 6],
    /// How restores use the local store (see `materialise`).
    pub(super) restore: crate::manifest::RestoreMode,
}

/// What the cache did during one build (`strata cache stats`).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Stats {
    pub local_hits: u64,
    pub remote_hits: u64,
    pub misses: u64,
    pub bytes_downloaded: u64,
    pub bytes_uploaded: u64,
    pub artifacts_saved: u64,
}

impl Cache {
    pub fn new(local: LocalStore, remote: Option<Box<dyn Store>>, push: bool) -> Cache {
        Cache {
            local,
            remote,
            push,
            failures: AtomicUsize::new(0),
            signer: None,
            trusted: Vec::new(),
            counters: Default::default(),
            restore: crate::manifest::RestoreMode::Auto,
        }
    }

    /// Restores from the local store's trees (the default), copying only,
    /// or from archives alone (see `manifest::RestoreMode`).
    pub fn with_restore_mode(mut self, mode: crate::manifest::RestoreMode) -> Cache {
        self.restore = mode;
        self
    }

    /// Counts a local hit (0), remote hit (1), miss (2), bytes down (3) and
    /// up (4), artifacts saved (5).
    pub(super) fn count(&self, which: usize, n: u64) {
        self.counters[which].fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a read of a local entry made outside a restore (`build
    /// --check` reads the cached artifacts it compares with): a local hit,
    /// or a miss when the entry is not there.
    pub fn note_local_read(&self, found: bool) {
        self.count(if found { 0 } else { 2 }, 1);
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let c = |i: usize| self.counters[i].load(Ordering::Relaxed);
        Stats {
            local_hits: c(0),
            remote_hits: c(1),
            misses: c(2),
            bytes_downloaded: c(3),
            bytes_uploaded: c(4),
            artifacts_saved: c(5),
        }
    }

    /// Whether there is a remote that accepts pushes.
    pub fn can_push(&self) -> bool {
        self.remote.as_deref().is_some_and(|r| r.writable())
    }

    /// Which store holds `key`, without downloading or verifying (for `plan`).
    pub fn locate(&self, key: &str) -> Option<String> {
        if let Ok(Some(_)) = self.local.lookup(key) {
            return Some(self.local.describe());
        }
        let remote = self.remote()?;
        match remote.lookup(key) {
            Ok(Some(_)) => Some(remote.describe()),
            Err(e @ StoreError::Unavailable { .. }) => {
                self.remote_failed(e, &|_| {});
                None
            }
            _ => None,
        }
    }

    /// Signs saved artifacts with `signer`; with `trusted` keys, remote
    /// artifacts need a valid signature from one of them.
    pub fn with_signing(mut self, signer: Option<SecretKey>, trusted: Vec<PublicKey>) -> Cache {
        self.signer = signer;
        self.trusted = trusted;
        self
    }

    fn remote(&self) -> Option<&dyn Store> {
        if self.failures.load(Ordering::SeqCst) >= BREAKER {
            return None;
        }
        self.remote.as_deref()
    }

    fn remote_failed(&self, e: StoreError, warn: &dyn Fn(&str)) {
        if matches!(e, StoreError::Unavailable { .. }) {
            // Open the breaker now; only the request that opened it warns.
            if self.failures.swap(BREAKER, Ordering::SeqCst) < BREAKER {
                warn(&format!(
                    "{e}; not using the remote cache for the rest of this run"
                ));
            }
            return;
        }
        let n = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= BREAKER {
            warn(&e.to_string());
        }
        if n == BREAKER {
            warn("the remote cache failed 3 times; not using it for the rest of this run");
        }
    }

    /// A verified artifact for `key` (of module `module`), or None.
    pub fn find(
        &self,
        key: &str,
        module: &str,
        warn: &dyn Fn(&str),
        progress: &dyn Fn(u64, u64),
    ) -> Option<Hit> {
        match self.local.lookup(key) {
            Ok(Some(info)) => match self
                .local
                .archive(&info)
                .map(|p| (verify(&p, &info, module), p))
            {
                Ok((Ok(()), path)) => {
                    self.local.touch(key);
                    self.count(0, 1);
                    return Some(Hit {
                        archive: path,
                        info,
                        source: self.local.describe(),
                    });
                }
                Ok((Err(why), _)) => {
                    let _ = self.local.quarantine(key);
                    warn(&format!(
                        "{} entry {key} is corrupt ({why}); it was quarantined",
                        self.local.describe()
                    ));
                }
                Err(e) => {
                    let _ = self.local.quarantine(key);
                    warn(&format!("{e}; it was quarantined"));
                }
            },
            Ok(None) => {}
            Err(e) => {
                let _ = self.local.quarantine(key);
                warn(&format!("{e}; it was quarantined"));
            }
        }
        let Some(remote) = self.remote() else {
            self.count(2, 1);
            return None;
        };
        let info = match remote.lookup(key) {
            Ok(Some(info)) => info,
            Ok(None) => {
                self.count(2, 1);
                return None;
            }
            Err(e) => {
                self.count(2, 1);
                self.remote_failed(e, warn);
                return None;
            }
        };
        let tmp_dir = self.local.root().join("tmp");
        if let Err(e) = std::fs::create_dir_all(&tmp_dir) {
            warn(&format!("{}: {e}", tmp_dir.display()));
            return None;
        }
        self.local.may_leave_leftovers();
        let tmp = tmp_dir.join(format!("{key}.{}.download", std::process::id()));
        let result = (|| {
            if let Err(e) = remote.fetch(&info, &tmp, &|done| progress(done, info.size)) {
                self.remote_failed(e, warn);
                return None;
            }
            self.count(3, std::fs::metadata(&tmp).map_or(0, |m| m.len()));
            if let Err(why) = verify(&tmp, &info, module) {
                warn(&format!(
                    "{} entry {key} is corrupt ({why}); not using it",
                    remote.describe()
                ));
                return None;
            }
            if !self.trusted.is_empty()
                && let Err(why) = crate::signing::check(&info, &self.trusted)
            {
                warn(&format!(
                    "{} entry {key} refused: {why} (trusted-keys is set)",
                    remote.describe()
                ));
                return None;
            }
            let created = match self.local.put(&info, &tmp) {
                Ok(c) => c,
                Err(e) => {
                    warn(&e.to_string());
                    return None;
                }
            };
            // If our create-only put won, the record names exactly the bytes
            // verified above. If it lost, the record is another writer's
            // (same key, possibly other bytes): use it only once verified.
            let info = if created {
                info
            } else {
                self.local.lookup(key).ok().flatten()?
            };
            let archive = self.local.archive(&info).ok()?;
            if !created {
                verify(&archive, &info, module).ok()?;
            }
            Some(Hit {
                archive,
                info,
                source: remote.describe(),
            })
        })();
        let _ = std::fs::remove_file(&tmp);
        self.count(if result.is_some() { 1 } else { 2 }, 1);
        result
    }

    /// Saves a packed artifact locally, then pushes it to the remote unless
    /// pushing is off or the remote already has the key (create-only).
    pub fn save(&self, info: &ArtifactInfo, archive: &std::path::Path, warn: &dyn Fn(&str)) {
        let signed;
        let info = match &self.signer {
            Some(k) => {
                let mut i = info.clone();
                i.signatures.push(k.sign(info));
                signed = i;
                &signed
            }
            None => info,
        };
        match self.local.put(info, archive) {
            Ok(_) => self.count(5, 1),
            Err(e) => warn(&format!("could not save to the local cache: {e}")),
        }
        if !self.push {
            return;
        }
        let Some(remote) = self.remote().filter(|r| r.writable()) else {
            return;
        };
        match remote.lookup(&info.key) {
            Ok(Some(_)) => {}
            Ok(None) => match remote.put(info, archive) {
                Ok(true) => self.count(4, info.size),
                Ok(false) => {}
                Err(e) => self.remote_failed(e, warn),
            },
            Err(e) => self.remote_failed(e, warn),
        }
    }
}

fn verify(path: &std::path::Path, info: &ArtifactInfo, module: &str) -> Result<(), String> {
    let actual = blake3_file(path).map_err(|e| e.to_string())?;
    if actual != info.blake3 {
        return Err(format!("BLAKE3 {actual}, recorded {}", info.blake3));
    }
    if info.module != module {
        return Err(format!("it holds module {}, not {module}", info.module));
    }
    Ok(())
}
