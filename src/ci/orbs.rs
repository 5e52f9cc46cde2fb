//! Registry orbs (`ns/name@version`): where their source comes from, in
//! order: `.circleci/orbs/<ns>/<name>@<version>.yml` in the project (a
//! team pins or vendors orbs there), the per-version cache
//! (`<cache>/orbs/<ns>/<name>@<version>.yml`), then CircleCI's public orb
//! source API — a GraphQL `orbVersion { source }` query — at a configurable
//! base URL (`--orb-url`, `STRATA_CI_ORB_URL`), whose answer is cached.
//!
//! Only exact versions (`1.2.3`) are cached: `@volatile` or `@1` move on
//! CircleCI, so a cached copy would silently go stale.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// CircleCI's public GraphQL endpoint, which serves orb sources.
pub const DEFAULT_ORB_URL: &str = "https://circleci.com/graphql-unstable";

/// Where registry orbs are looked up.
pub struct Sources {
    project: PathBuf,
    cache: PathBuf,
    url: String,
    offline: bool,
}

impl Sources {
    pub fn new(project: &Path, url: Option<String>, offline: bool) -> Sources {
        Sources {
            project: project.to_path_buf(),
            cache: crate::store::LocalStore::default_root().join("orbs"),
            url: url
                .or_else(|| std::env::var("STRATA_CI_ORB_URL").ok())
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_ORB_URL.into()),
            offline,
        }
    }

    /// The YAML source of `reference` (`ns/name@version`), or why there is none.
    pub fn source(&self, reference: &str) -> Result<String, String> {
        let (path, version) = reference
            .split_once('@')
            .filter(|(p, v)| p.contains('/') && !v.is_empty())
            .ok_or_else(|| {
                format!("`{reference}` is not an orb reference `namespace/name@version`")
            })?;
        if path.contains("..") || version.contains('/') {
            return Err(format!("`{reference}` is not an orb reference"));
        }
        let file = format!("{path}@{version}.yml");
        let local = self.project.join(".circleci/orbs").join(&file);
        if let Ok(text) = std::fs::read_to_string(&local) {
            return Ok(text);
        }
        let exact =
            version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u64>().is_ok());
        let cached = self.cache.join(&file);
        if exact && let Ok(text) = std::fs::read_to_string(&cached) {
            return Ok(text);
        }
        let hint = format!(
            "\n  hint: put its source in {} (e.g. `circleci orb source {reference}`), or run online once so strata caches it",
            local.display()
        );
        if self.offline {
            return Err(format!(
                "not in {} nor in the cache, and --offline forbids fetching it{hint}",
                local.display()
            ));
        }
        let text = self
            .fetch(reference)
            .map_err(|e| format!("fetching it from {} failed: {e}{hint}", self.url))?;
        if exact {
            if let Some(dir) = cached.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            // A cache that cannot be written only costs a later fetch.
            let _ = crate::fsutil::write_atomic(&cached, text.as_bytes());
        }
        Ok(text)
    }

    fn fetch(&self, reference: &str) -> Result<String, String> {
        let agent = crate::net::agent(crate::net::Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(30),
            idle: Duration::from_secs(30),
        });
        let body = serde_json::json!({
            "query": "query($orbVersionRef: String!) { orbVersion(orbVersionRef: $orbVersionRef) { source } }",
            "variables": { "orbVersionRef": reference },
        });
        let mut resp = agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(|e| crate::net::describe(&e))?;
        if !resp.status().is_success() {
            return Err(format!("{} answered HTTP {}", self.url, resp.status()));
        }
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| crate::net::describe(&e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
        v["data"]["orbVersion"]["source"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("the registry knows no orb `{reference}`"))
    }
}
