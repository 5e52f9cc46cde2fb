//! A read-only HTTP(S) store (`https://host/prefix`), like Nix substituters
//! or Yocto's SSTATE_MIRRORS: plain GETs of the same layout a local or S3
//! store has, so any web server in front of a store directory serves it.

use super::{Store, StoreError, parse_record};
use crate::artifact::{ArtifactInfo, CACHE_FORMAT, archive_name};
use std::io;
use std::path::Path;

/// A store served over HTTP(S), read-only.
pub struct HttpStore {
    base: String,
    agent: ureq::Agent,
}

impl HttpStore {
    pub fn new(base: &str) -> HttpStore {
        HttpStore {
            base: base.trim_end_matches('/').to_string(),
            agent: crate::net::agent(crate::net::Timeouts::remote_store()),
        }
    }

    fn url(&self, key: &str, name: &str) -> String {
        let shard = key.get(..2).unwrap_or("00");
        format!("{}/{CACHE_FORMAT}/{shard}/{name}", self.base)
    }

    /// GET; `Ok(None)` for 404.
    fn get(&self, url: &str) -> Result<Option<ureq::Body>, StoreError> {
        match self.agent.get(url).call() {
            Ok(r) if r.status().is_success() => Ok(Some(r.into_body())),
            Ok(r) if r.status() == 404 => Ok(None),
            Ok(r) => Err(StoreError::Io {
                store: self.describe(),
                what: format!("GET {url}"),
                source: io::Error::other(format!("HTTP {}", r.status())),
            }),
            Err(e) => Err(StoreError::Unavailable {
                store: self.describe(),
                what: format!("GET {url}"),
                why: crate::net::describe(&e),
            }),
        }
    }

    fn io(&self, what: String) -> impl FnOnce(io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            store: self.describe(),
            what,
            source,
        }
    }
}

impl Store for HttpStore {
    fn describe(&self) -> String {
        format!("remote store {}", self.base)
    }

    fn writable(&self) -> bool {
        false
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        Err(StoreError::Io {
            store: self.describe(),
            what: format!("removing entry {key}"),
            source: io::Error::new(
                io::ErrorKind::Unsupported,
                "an HTTP(S) store is read-only; prune it where it is served from",
            ),
        })
    }

    fn lookup(&self, key: &str) -> Result<Option<ArtifactInfo>, StoreError> {
        let url = self.url(key, &format!("{key}.json"));
        let Some(resp) = self.get(&url)? else {
            return Ok(None);
        };
        let mut body = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(resp.into_reader(), 1 << 20), &mut body)
            .map_err(|e| StoreError::Unavailable {
                store: self.describe(),
                what: format!("GET {url}"),
                why: e.to_string(),
            })?;
        parse_record(&self.describe(), key, &body).map(Some)
    }

    fn fetch(
        &self,
        info: &ArtifactInfo,
        dest: &Path,
        progress: super::Progress<'_>,
    ) -> Result<(), StoreError> {
        let url = self.url(&info.key, &archive_name(info));
        let resp = self.get(&url)?.ok_or_else(|| StoreError::Corrupt {
            store: self.describe(),
            key: info.key.clone(),
            why: "the archive is missing".into(),
        })?;
        let mut f =
            std::fs::File::create(dest).map_err(self.io(format!("writing {}", dest.display())))?;
        super::copy_with_progress(&mut resp.into_reader(), &mut f, progress)
            .map_err(self.io(format!("GET {url}")))?;
        f.sync_all()
            .map_err(self.io(format!("writing {}", dest.display())))
    }

    fn put(&self, info: &ArtifactInfo, _archive: &Path) -> Result<bool, StoreError> {
        Err(StoreError::Io {
            store: self.describe(),
            what: format!("storing entry {}", info.key),
            source: io::Error::other("an HTTP store is read-only; use s3:// or file:// to push"),
        })
    }

    fn quarantine(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn list(&self) -> Result<Vec<ArtifactInfo>, StoreError> {
        Err(StoreError::Io {
            store: self.describe(),
            what: "listing".into(),
            source: io::Error::other("an HTTP store cannot be listed"),
        })
    }
}
