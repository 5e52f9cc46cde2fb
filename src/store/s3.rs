//! S3-compatible object storage (`s3://bucket/prefix`), through the
//! object_store crate: the same layout as the local store under the prefix.
//! Puts are create-only (`If-None-Match: *`), so two writers racing on one
//! key leave exactly one object. Timeouts and retries are short: a remote
//! cache that is slow must degrade to a local build, not stall it.

use super::{Store, StoreError};
use crate::artifact::{ArtifactInfo, CACHE_FORMAT};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// An S3 bucket (or prefix in one) used as a shared artifact store.
pub struct S3Store {
    rt: tokio::runtime::Runtime,
    store: AmazonS3,
    url: String,
    prefix: String,
}

impl S3Store {
    /// Opens `s3://bucket/prefix`. Credentials come from the standard
    /// `AWS_*` variables; `endpoint` selects an S3-compatible server.
    pub fn new(url: &str, endpoint: Option<&str>, region: Option<&str>) -> Result<S3Store, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("`{url}` is not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("`{url}` names no bucket"));
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(region.unwrap_or("us-east-1"))
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_secs(30))
                    .with_connect_timeout(Duration::from_secs(3)),
            )
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
                ..RetryConfig::default()
            });
        // The AWS SDKs' standard variable, for stores opened without a manifest
        // (`strata ci … --store s3://…`).
        let from_env = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|e| !e.is_empty());
        if let Some(e) = endpoint.or(from_env.as_deref()) {
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = b.build().map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(S3Store {
            rt,
            store,
            url: url.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    fn path(&self, key: &str, ext: &str) -> ObjPath {
        let shard = key.get(..2).unwrap_or("00");
        let p = format!("{CACHE_FORMAT}/{shard}/{key}.{ext}");
        if self.prefix.is_empty() {
            ObjPath::from(p)
        } else {
            ObjPath::from(format!("{}/{p}", self.prefix))
        }
    }

    fn archive_path(&self, info: &ArtifactInfo) -> ObjPath {
        let shard = info.key.get(..2).unwrap_or("00");
        let name = crate::artifact::archive_name(info);
        if self.prefix.is_empty() {
            ObjPath::from(format!("{CACHE_FORMAT}/{shard}/{name}"))
        } else {
            ObjPath::from(format!("{}/{CACHE_FORMAT}/{shard}/{name}", self.prefix))
        }
    }

    fn err(&self, what: String, e: object_store::Error) -> StoreError {
        StoreError::Io {
            store: self.describe(),
            what,
            source: std::io::Error::other(e.to_string()),
        }
    }

    fn get_bytes(&self, path: &ObjPath) -> Result<Option<bytes::Bytes>, object_store::Error> {
        self.rt.block_on(async {
            match self.store.get(path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }
}

impl Store for S3Store {
    fn describe(&self) -> String {
        format!("remote store {}", self.url)
    }

    fn lookup(&self, key: &str) -> Result<Option<ArtifactInfo>, StoreError> {
        let path = self.path(key, "json");
        let Some(bytes) = self
            .get_bytes(&path)
            .map_err(|e| self.err(format!("reading entry {key}"), e))?
        else {
            return Ok(None);
        };
        let info = super::parse_record(&self.describe(), key, &bytes)?;
        Ok(Some(info))
    }

    fn fetch(
        &self,
        info: &ArtifactInfo,
        dest: &Path,
        progress: super::Progress<'_>,
    ) -> Result<(), StoreError> {
        use futures::StreamExt;
        let key = &info.key;
        let path = self.archive_path(info);
        let io = |e| StoreError::Io {
            store: self.describe(),
            what: format!("writing {}", dest.display()),
            source: e,
        };
        let mut f = std::fs::File::create(dest).map_err(io)?;
        // Streamed chunk by chunk: a large artifact never sits in memory.
        let streamed = self.rt.block_on(async {
            let mut stream = match self.store.get(&path).await {
                Ok(r) => r.into_stream(),
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(Err(e)),
            };
            let mut done = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(Err)?;
                f.write_all(&chunk).map_err(Ok)?;
                done += chunk.len() as u64;
                progress(done);
            }
            Ok(true)
        });
        match streamed {
            Ok(true) => f.sync_all().map_err(io),
            Ok(false) => Err(StoreError::Corrupt {
                store: self.describe(),
                key: key.to_string(),
                why: "the archive is missing".into(),
            }),
            Err(Ok(e)) => Err(io(e)),
            Err(Err(e)) => Err(self.err(format!("downloading entry {key}"), e)),
        }
    }

    fn put(&self, info: &ArtifactInfo, archive: &Path) -> Result<bool, StoreError> {
        let key = &info.key;
        let data = std::fs::read(archive).map_err(|e| StoreError::Io {
            store: self.describe(),
            what: format!("reading {}", archive.display()),
            source: e,
        })?;
        let json = serde_json::to_vec_pretty(info).expect("serialisable");
        let create = PutOptions::from(PutMode::Create);
        // Archive first (named by content), record last and create-only: a
        // record always points at a complete archive with its own bytes.
        let r = self.rt.block_on(async {
            match self
                .store
                .put_opts(
                    &self.archive_path(info),
                    PutPayload::from(data),
                    create.clone(),
                )
                .await
            {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            match self
                .store
                .put_opts(&self.path(key, "json"), PutPayload::from(json), create)
                .await
            {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        });
        r.map_err(|e| self.err(format!("uploading entry {key}"), e))
    }

    fn quarantine(&self, _key: &str) -> Result<(), StoreError> {
        // A shared remote entry is never deleted by a client: it is reported,
        // skipped for this run, and left for `strata cache verify` on the server side.
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        let Some(info) = self.lookup(key)? else {
            return Ok(());
        };
        self.rt
            .block_on(async {
                match self.store.delete(&self.path(key, "json")).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
                match self.store.delete(&self.archive_path(&info)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .map_err(|e| self.err(format!("removing entry {key}"), e))
    }

    fn list(&self) -> Result<Vec<ArtifactInfo>, StoreError> {
        use futures::TryStreamExt;
        let prefix = if self.prefix.is_empty() {
            ObjPath::from(CACHE_FORMAT)
        } else {
            ObjPath::from(format!("{}/{CACHE_FORMAT}", self.prefix))
        };
        let metas: Vec<_> = self
            .rt
            .block_on(self.store.list(Some(&prefix)).try_collect())
            .map_err(|e| self.err("listing".into(), e))?;
        let mut out = Vec::new();
        for m in metas {
            let name = m.location.filename().unwrap_or_default().to_string();
            if let Some(key) = name.strip_suffix(".json")
                && let Ok(Some(info)) = self.lookup(key)
            {
                out.push(info);
            }
        }
        Ok(out)
    }
}
