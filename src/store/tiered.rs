//! The cache as the build sees it: the local store first, then an optional
//! remote, every hit verified (BLAKE3) before use and remote hits written
//! back to the local store. Remote trouble of any kind (down, slow, 5xx, bad
//! credentials, a corrupt object) is a warning and a miss, never a failure;
//! after three remote failures the remote is not asked again in this run
//! (a circuit breaker, as sccache and turborepo do).

use super::{LocalStore, Store};
use crate::artifact::{ArtifactInfo, blake3_file};
use crate::signing::{PublicKey, SecretKey};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

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

    fn remote_failed(&self, what: String, warn: &dyn Fn(&str)) {
        let n = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= BREAKER {
            warn(&what);
        }
        if n == BREAKER {
            warn("the remote cache failed 3 times; not using it for the rest of this run");
        }
    }

    /// A verified artifact for `key` (of module `module`), or None.
    pub fn find(&self, key: &str, module: &str, warn: &dyn Fn(&str)) -> Option<Hit> {
        match self.local.lookup(key) {
            Ok(Some(info)) => match self
                .local
                .archive(&info)
                .map(|p| (verify(&p, &info, module), p))
            {
                Ok((Ok(()), path)) => {
                    self.local.touch(key);
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
        let remote = self.remote()?;
        let info = match remote.lookup(key) {
            Ok(Some(info)) => info,
            Ok(None) => return None,
            Err(e) => {
                self.remote_failed(e.to_string(), warn);
                return None;
            }
        };
        let tmp_dir = self.local.root().join("tmp");
        if let Err(e) = std::fs::create_dir_all(&tmp_dir) {
            warn(&format!("{}: {e}", tmp_dir.display()));
            return None;
        }
        let tmp = tmp_dir.join(format!("{key}.{}.download", std::process::id()));
        let result = (|| {
            if let Err(e) = remote.fetch(&info, &tmp) {
                self.remote_failed(e.to_string(), warn);
                return None;
            }
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
            if let Err(e) = self.local.put(&info, &tmp) {
                warn(&e.to_string());
                return None;
            }
            // The local record may be another writer's (same key, other
            // bytes): use whatever the local store now says, verified.
            let info = self.local.lookup(key).ok().flatten()?;
            let archive = self.local.archive(&info).ok()?;
            verify(&archive, &info, module).ok()?;
            Some(Hit {
                archive,
                info,
                source: remote.describe(),
            })
        })();
        let _ = std::fs::remove_file(&tmp);
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
        if let Err(e) = self.local.put(info, archive) {
            warn(&format!("could not save to the local cache: {e}"));
        }
        if !self.push {
            return;
        }
        let Some(remote) = self.remote().filter(|r| r.writable()) else {
            return;
        };
        match remote.lookup(&info.key) {
            Ok(Some(_)) => {}
            Ok(None) => {
                if let Err(e) = remote.put(info, archive) {
                    self.remote_failed(e.to_string(), warn);
                }
            }
            Err(e) => self.remote_failed(e.to_string(), warn),
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
