//! S3-compatible object storage (`s3://bucket/prefix`) over the one HTTP
//! client ([`crate::net`]): the same layout as the local store under the
//! prefix. Puts are create-only (`If-None-Match: *`), so two writers racing
//! on one key leave exactly one object.
//!
//! Requests are signed by `rusty-s3` (AWS Signature V4, sans-IO: it makes a
//! presigned URL, our blocking client sends it), not by code of our own. A
//! presigned URL does not sign the body, so every upload also carries its
//! `x-amz-checksum-sha256` as a signed header: the server still rejects a
//! body damaged in transit. Presigned URLs hold the signature and a session
//! token in their query, so messages name a request by method and path only.
//!
//! Five requests are all a cache needs (GET, conditional PUT, DELETE and a
//! paginated ListObjectsV2), so this is a few hundred lines on a blocking
//! client rather than an SDK with an async runtime. Timeouts are short and
//! nothing is retried here: a remote cache that is slow or down must degrade
//! to a local build, and [`super::Cache`] stops asking it after the first
//! request it does not answer.

use super::s3_auth::{self, AuthOptions};
use super::{Store, StoreError};
use crate::artifact::{ArtifactInfo, CACHE_FORMAT};
use base64::Engine as _;
use rusty_s3::actions::{DeleteObject, GetObject, PutObject};
use rusty_s3::{Bucket, Credentials, Method, S3Action, UrlStyle};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use ureq::http::Response;

/// How long a signed request stays valid: its upload must start within it.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(3600);

/// An S3 bucket (or prefix in one) used as a shared artifact store.
pub struct S3Store {
    agent: ureq::Agent,
    url: String,
    prefix: String,
    /// The bucket's address: path style at an endpoint, virtual-hosted at AWS.
    bucket: Bucket,
    auth: AuthOptions,
    creds: OnceLock<Result<Credentials, String>>,
    page_size: Option<u32>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl S3Store {
    /// Opens `s3://bucket/prefix`. `endpoint` selects an S3-compatible server
    /// (path-style addressing); without one, `AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL`, else AWS itself. Credentials are resolved on the
    /// first request (see [`s3_auth`]).
    pub fn new(url: &str, endpoint: Option<&str>, region: Option<&str>) -> Result<S3Store, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("`{url}` is not an s3:// URL"))?;
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(format!("`{url}` names no bucket"));
        }
        let region = region
            .map(str::to_string)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = endpoint
            .map(str::to_string)
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        let (base, style) = match &endpoint {
            Some(e) => (endpoint_url(e)?, UrlStyle::Path),
            None => {
                let aws = format!("https://s3.{region}.amazonaws.com");
                let aws = aws
                    .parse()
                    .map_err(|err| format!("region `{region}` makes no host name: {err}"))?;
                // Virtual-hosted style, except for names TLS cannot cover.
                let style = if name.contains('.') {
                    UrlStyle::Path
                } else {
                    UrlStyle::VirtualHost
                };
                (aws, style)
            }
        };
        let bucket = Bucket::new(base, style, name.to_string(), region.clone())
            .map_err(|err| format!("`{url}`: {err}"))?;
        Ok(S3Store {
            agent: crate::net::agent(crate::net::Timeouts::remote_store()),
            url: url.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            bucket,
            auth: AuthOptions::default(),
            creds: OnceLock::new(),
            page_size: None,
        })
    }

    /// Where credentials may come from beyond the environment and profile.
    pub fn with_auth(mut self, auth: AuthOptions) -> S3Store {
        self.auth = auth;
        self
    }

    /// Lists at most `n` keys per request (S3's default is 1000); for tests
    /// of pagination.
    pub fn with_page_size(mut self, n: u32) -> S3Store {
        self.page_size = Some(n);
        self
    }

    fn full_key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    fn key_path(&self, key: &str, ext: &str) -> String {
        let shard = key.get(..2).unwrap_or("00");
        self.full_key(&format!("{CACHE_FORMAT}/{shard}/{key}.{ext}"))
    }

    fn archive_key(&self, info: &ArtifactInfo) -> String {
        let shard = info.key.get(..2).unwrap_or("00");
        let name = crate::artifact::archive_name(info);
        self.full_key(&format!("{CACHE_FORMAT}/{shard}/{name}"))
    }

    fn unavailable(&self, what: &str, why: String) -> StoreError {
        StoreError::Unavailable {
            store: self.describe(),
            what: what.to_string(),
            why,
        }
    }

    fn failed(&self, what: &str, why: String) -> StoreError {
        StoreError::Io {
            store: self.describe(),
            what: what.to_string(),
            source: std::io::Error::other(why),
        }
    }

    /// The credentials of this run, resolved on first use.
    fn credentials(&self, what: &str) -> Result<&Credentials, StoreError> {
        self.creds
            .get_or_init(|| s3_auth::resolve(&self.auth))
            .as_ref()
            .map_err(|why| self.unavailable(what, why.clone()))
    }

    /// Sends one request of `action` with `headers`, which are signed and
    /// sent alike (one list, so the two never differ).
    fn send<'a, A: S3Action<'a>>(
        &self,
        mut action: A,
        headers: &[(&'a str, &'a str)],
        body: Payload<'_>,
        what: &str,
    ) -> Result<Response<ureq::Body>, StoreError> {
        for (k, v) in headers.iter().copied() {
            action.headers_mut().insert(k, v);
        }
        let signed = action.sign(SIGNATURE_LIFETIME);
        self.send_signed(A::METHOD, signed, headers, body, what)
    }

    /// Sends one presigned request.
    fn send_signed(
        &self,
        method: Method,
        signed: url::Url,
        headers: &[(&str, &str)],
        body: Payload<'_>,
        what: &str,
    ) -> Result<Response<ureq::Body>, StoreError> {
        let method = method.to_str();
        // The query holds the signature (and a session token): never shown.
        let shown = format!("{method} {}", redacted(&signed));
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(signed.as_str());
        for (k, v) in headers.iter().copied() {
            req = req.header(k, v);
        }
        let sent = match body {
            Payload::Empty => req.body(()).map(|r| self.agent.run(r)),
            Payload::Bytes(b) => req.body(b.to_vec()).map(|r| self.agent.run(r)),
            Payload::File(f) => req.body(f).map(|r| self.agent.run(r)),
        };
        match sent {
            Err(e) => Err(self.failed(what, format!("{shown}: {e}"))),
            Ok(Err(e)) if crate::net::is_unreachable(&e) => {
                Err(self.unavailable(what, format!("{shown}: {}", crate::net::describe(&e))))
            }
            Ok(Err(e)) => Err(self.failed(what, format!("{shown}: {e}"))),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// The error S3 answered with, as `HTTP 403 Code: Message`.
    fn answer_error(&self, what: &str, mut r: Response<ureq::Body>) -> StoreError {
        let status = r.status();
        let body = r
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let code = xml_text(&body, "Code").unwrap_or_default();
        let msg = xml_text(&body, "Message").unwrap_or_default();
        let mut why = format!("HTTP {status} {code}: {msg}");
        if status == 403 {
            why.push_str(" (check the credentials and that they may use this bucket)");
        }
        self.failed(what, why.trim_end_matches([' ', ':']).to_string())
    }

    /// The bytes of the object at `key` (a key in the bucket, the prefix
    /// included), or None if there is none.
    pub fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let what = format!("reading {key}");
        let Some(body) = self.get_body(key, &what)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        body.into_reader()
            .read_to_end(&mut out)
            .map_err(|e| self.unavailable(&what, e.to_string()))?;
        Ok(Some(out))
    }

    /// Writes (overwriting) the object at `key`; for tools and tests that
    /// repair or damage a bucket on purpose. The cache itself only creates.
    pub fn put_object(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let what = format!("writing {key}");
        let creds = self.credentials(&what)?;
        let sum = sha256_base64(&Sha256::digest(bytes));
        let put = PutObject::new(&self.bucket, Some(creds), key);
        let r = self.send(put, &[(CHECKSUM, &sum)], Payload::Bytes(bytes), &what)?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(self.answer_error(&what, r))
        }
    }

    fn get_body(&self, key: &str, what: &str) -> Result<Option<ureq::Body>, StoreError> {
        let creds = self.credentials(what)?;
        let get = GetObject::new(&self.bucket, Some(creds), key);
        let r = self.send(get, &[], Payload::Empty, what)?;
        match r.status().as_u16() {
            200..=299 => Ok(Some(r.into_body())),
            404 => Ok(None),
            _ => Err(self.answer_error(what, r)),
        }
    }

    /// Create-only PUT of a body whose SHA-256 is `sha256`: Ok(true) if
    /// created, Ok(false) if the key exists.
    fn put_new(
        &self,
        key: &str,
        body: Payload<'_>,
        sha256: &[u8],
        what: &str,
    ) -> Result<bool, StoreError> {
        let creds = self.credentials(what)?;
        let sum = sha256_base64(sha256);
        let put = PutObject::new(&self.bucket, Some(creds), key);
        let headers = [("if-none-match", "*"), (CHECKSUM, sum.as_str())];
        let r = self.send(put, &headers, body, what)?;
        match r.status().as_u16() {
            200..=299 => Ok(true),
            // 412: it exists; 409: another conditional write of it is in flight.
            409 | 412 => Ok(false),
            _ => Err(self.answer_error(what, r)),
        }
    }

    fn delete(&self, key: &str, what: &str) -> Result<(), StoreError> {
        let creds = self.credentials(what)?;
        let delete = DeleteObject::new(&self.bucket, Some(creds), key);
        let r = self.send(delete, &[], Payload::Empty, what)?;
        match r.status().as_u16() {
            200..=299 | 404 => Ok(()),
            _ => Err(self.answer_error(what, r)),
        }
    }

    /// Every key under `prefix`, following continuation tokens.
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        let creds = self.credentials("listing")?;
        let page = self.page_size.map(|n| n.to_string());
        loop {
            // rusty-s3's ListObjectsV2 comes with an XML parser (its `xml`
            // feature); the request alone is signed with its `sign`.
            // Sorted by name, as `sign` requires.
            let mut q: Vec<(&str, &str)> = Vec::new();
            if let Some(t) = &token {
                q.push(("continuation-token", t));
            }
            q.push(("list-type", "2"));
            if let Some(n) = &page {
                q.push(("max-keys", n));
            }
            q.push(("prefix", prefix));
            let signed = rusty_s3::signing::sign(
                &jiff::Timestamp::now(),
                Method::Get,
                self.bucket.base_url().clone(),
                creds.key(),
                creds.secret(),
                creds.token(),
                self.bucket.region(),
                SIGNATURE_LIFETIME.as_secs(),
                q.iter().copied(),
                std::iter::empty(),
            );
            let mut r = self.send_signed(Method::Get, signed, &[], Payload::Empty, "listing")?;
            if !r.status().is_success() {
                return Err(self.answer_error("listing", r));
            }
            let body = r
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .map_err(|e| self.unavailable("listing", e.to_string()))?;
            let page = parse_list(&body);
            keys.extend(page.keys);
            match page.next {
                Some(t) if page.truncated => token = Some(t),
                _ => return Ok(keys),
            }
        }
    }
}

/// A request body.
enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(std::fs::File),
}

/// The signed header that makes the server check an upload's bytes.
const CHECKSUM: &str = "x-amz-checksum-sha256";

/// A SHA-256 as `x-amz-checksum-sha256` wants it: base64.
fn sha256_base64(sum: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sum)
}

/// A request URL without its query (which holds the signature).
fn redacted(url: &url::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

/// An endpoint as a URL: `http(s)://host[:port][/path]`.
fn endpoint_url(e: &str) -> Result<url::Url, String> {
    let (scheme, _) = e
        .split_once("://")
        .ok_or_else(|| format!("endpoint `{e}` is not a URL: write it as http(s)://host[:port]"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("endpoint `{e}`: only http:// and https:// work"));
    }
    let url: url::Url = e.parse().map_err(|err| {
        format!("endpoint `{e}` is not a URL ({err}): write it as http(s)://host[:port]")
    })?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("endpoint `{e}` names no host"));
    }
    Ok(url)
}

/// One page of a ListObjectsV2 answer.
#[derive(Debug, PartialEq)]
struct ListPage {
    keys: Vec<String>,
    truncated: bool,
    next: Option<String>,
}

/// The text of the first `<tag>` element in `xml`, unescaped.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml_unescape(&xml[start..end]))
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn parse_list(xml: &str) -> ListPage {
    let mut keys = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<Contents>") {
        let after = &rest[i + "<Contents>".len()..];
        let end = after.find("</Contents>").unwrap_or(after.len());
        if let Some(k) = xml_text(&after[..end], "Key") {
            keys.push(k);
        }
        rest = &after[end..];
    }
    ListPage {
        keys,
        truncated: xml_text(xml, "IsTruncated").is_some_and(|t| t.trim() == "true"),
        next: xml_text(xml, "NextContinuationToken"),
    }
}

impl Store for S3Store {
    fn describe(&self) -> String {
        format!("remote store {}", self.url)
    }

    fn lookup(&self, key: &str) -> Result<Option<ArtifactInfo>, StoreError> {
        let Some(bytes) = self.get_object(&self.key_path(key, "json"))? else {
            return Ok(None);
        };
        super::parse_record(&self.describe(), key, &bytes).map(Some)
    }

    fn fetch(
        &self,
        info: &ArtifactInfo,
        dest: &Path,
        progress: super::Progress<'_>,
    ) -> Result<(), StoreError> {
        let what = format!("downloading entry {}", info.key);
        let body = self
            .get_body(&self.archive_key(info), &what)?
            .ok_or_else(|| StoreError::Corrupt {
                store: self.describe(),
                key: info.key.clone(),
                why: "the archive is missing".into(),
            })?;
        let io = |e| StoreError::Io {
            store: self.describe(),
            what: format!("writing {}", dest.display()),
            source: e,
        };
        let mut f = std::fs::File::create(dest).map_err(io)?;
        // Streamed: a large artifact never sits in memory.
        let mut reader = body.into_reader();
        let mut sink = ErrorSide {
            inner: &mut f,
            failed: None,
        };
        match super::copy_with_progress(&mut reader, &mut sink, progress) {
            Ok(_) => f.sync_all().map_err(io),
            Err(e) => match sink.failed.take() {
                Some(write_err) => Err(io(write_err)),
                None => Err(self.unavailable(&what, e.to_string())),
            },
        }
    }

    fn put(&self, info: &ArtifactInfo, archive: &Path) -> Result<bool, StoreError> {
        let key = &info.key;
        let what = format!("uploading entry {key}");
        let read_err = |e| StoreError::Io {
            store: self.describe(),
            what: format!("reading {}", archive.display()),
            source: e,
        };
        let sum = crate::fsutil::sha256_file(archive).map_err(read_err)?;
        let sum = hex::decode(sum).expect("sha256_file writes hex");
        let file = std::fs::File::open(archive).map_err(read_err)?;
        let json = serde_json::to_vec_pretty(info).expect("serialisable");
        // Archive first (named by content), record last and create-only: a
        // record always points at a complete archive with its own bytes.
        self.put_new(&self.archive_key(info), Payload::File(file), &sum, &what)?;
        let json_sum = Sha256::digest(&json);
        self.put_new(
            &self.key_path(key, "json"),
            Payload::Bytes(&json),
            &json_sum,
            &what,
        )
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
        let what = format!("removing entry {key}");
        self.delete(&self.key_path(key, "json"), &what)?;
        self.delete(&self.archive_key(&info), &what)
    }

    fn list(&self) -> Result<Vec<ArtifactInfo>, StoreError> {
        let prefix = self.full_key(&format!("{CACHE_FORMAT}/"));
        let mut out = Vec::new();
        for k in self.list_keys(&prefix)? {
            let name = k.rsplit('/').next().unwrap_or_default();
            if let Some(key) = name.strip_suffix(".json")
                && let Ok(Some(info)) = self.lookup(key)
            {
                out.push(info);
            }
        }
        Ok(out)
    }
}

/// A writer that remembers its own error, so a failed local write is told
/// apart from a failed network read in a copy.
struct ErrorSide<'a, W: std::io::Write> {
    inner: &'a mut W,
    failed: Option<std::io::Error>,
}

impl<W: std::io::Write> std::io::Write for ErrorSide<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| {
            self.failed = Some(std::io::Error::new(e.kind(), e.to_string()));
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list_page_with_escapes_and_a_token() {
        let xml = "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name>\
            <IsTruncated>true</IsTruncated><Contents><Key>p/a&amp;b.json</Key>\
            <Size>3</Size></Contents><Contents><Key>p/c.json</Key></Contents>\
            <NextContinuationToken>t/1=</NextContinuationToken></ListBucketResult>";
        assert_eq!(
            parse_list(xml),
            ListPage {
                keys: vec!["p/a&b.json".into(), "p/c.json".into()],
                truncated: true,
                next: Some("t/1=".into()),
            }
        );
        let last =
            parse_list("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
        assert_eq!((last.keys.len(), last.truncated), (0, false));
    }

    #[test]
    fn endpoints_are_path_style_and_aws_is_virtual_hosted() {
        let base = |s: &S3Store| s.bucket.base_url().to_string();
        let s = S3Store::new("s3://b/p", Some("http://127.0.0.1:9000/"), Some("r")).unwrap();
        assert_eq!(base(&s), "http://127.0.0.1:9000/b/");
        let s = S3Store::new("s3://b", Some("https://minio.example:443/s3"), None).unwrap();
        assert_eq!(base(&s), "https://minio.example/s3/b/");
        let s = S3Store::new("s3://b/p", None, Some("eu-west-1")).unwrap();
        assert_eq!(base(&s), "https://b.s3.eu-west-1.amazonaws.com/");
        let s = S3Store::new("s3://a.b", None, Some("eu-west-1")).unwrap();
        assert_eq!(base(&s), "https://s3.eu-west-1.amazonaws.com/a.b/");
        assert!(S3Store::new("s3://b", Some("minio:9000"), None).is_err());
        assert!(S3Store::new("s3://b", Some("ftp://minio:9000"), None).is_err());
    }

    #[test]
    fn a_create_only_put_signs_its_condition_and_checksum_and_messages_hide_the_signature() {
        let s = S3Store::new("s3://b/p", Some("http://127.0.0.1:9000"), Some("r")).unwrap();
        let creds = Credentials::new_with_token("AKID", "SECRET", "TOKEN");
        let mut put = PutObject::new(&s.bucket, Some(&creds), "p/v1/ab/k.json");
        put.headers_mut().insert("if-none-match", "*");
        put.headers_mut()
            .insert(CHECKSUM, sha256_base64(&Sha256::digest(b"x")));
        let url = put.sign(SIGNATURE_LIFETIME);
        let query: std::collections::HashMap<_, _> = url.query_pairs().collect();
        assert_eq!(
            query["X-Amz-SignedHeaders"],
            "host;if-none-match;x-amz-checksum-sha256"
        );
        assert_eq!(query["X-Amz-Security-Token"], "TOKEN");
        assert_eq!(url.path(), "/b/p/v1/ab/k.json");
        let shown = redacted(&url);
        assert_eq!(shown, "http://127.0.0.1:9000/b/p/v1/ab/k.json");
        assert!(!shown.contains("TOKEN") && !shown.contains("Signature"));
    }
}
