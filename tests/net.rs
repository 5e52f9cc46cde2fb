//! Faults on the network, bounded: a remote cache that hangs, closes
//! without a reply or has no credentials costs one short timeout and one
//! warning, never a failed build; the instance metadata address is asked
//! only when `[cache] imds = true`; downloads go through the environment's
//! proxy unless `NO_PROXY` names the host. Every server here is a real TCP
//! listener on 127.0.0.1 started by the test.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a dead remote behaves.
#[derive(Clone, Copy)]
enum Dead {
    /// Accepts and never answers.
    Hangs,
    /// Accepts, reads the request, closes without a reply.
    Closes,
}

/// A TCP listener that misbehaves as told and counts connections.
struct DeadServer {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl DeadServer {
    fn start(how: Dead) -> DeadServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                match how {
                    // Kept open (and unread) until the test process ends.
                    Dead::Hangs => held.push(s),
                    Dead::Closes => {
                        let mut r = BufReader::new(s);
                        let mut line = String::new();
                        while r.read_line(&mut line).unwrap_or(0) > 2 {
                            line.clear();
                        }
                    }
                }
            }
        });
        DeadServer { port, connections }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// a → b → c, all from file:// tarballs, with `cache` as the [cache] table.
fn project(cache: &str) -> TestProject {
    let p = TestProject::new(&format!(
        "[project]\nname = \"t\"\n[cache]\n{cache}\n[target.default]\nmodules = [\"c\"]\n"
    ));
    for (m, dep) in [("a", ""), ("b", "a"), ("c", "b")] {
        let deps = if dep.is_empty() {
            String::new()
        } else {
            format!("depends = [\"{dep}\"]")
        };
        p.local_module(
            m,
            &[("f", m)],
            &format!(
                "{deps}\ninstall = \"mkdir -p $STRATA_DESTDIR/out && cp f $STRATA_DESTDIR/out/{m}\""
            ),
        );
    }
    p
}

/// `strata build` with test credentials (unless `creds` is false, then with
/// none anywhere); returns success, stderr and the wall time.
fn build(p: &TestProject, creds: bool, extra: &[(&str, String)]) -> (bool, String, Duration) {
    let mut c = p.strata();
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .env("HOME", p.path(".home"))
        .env("AWS_SHARED_CREDENTIALS_FILE", p.path(".home/no-such-file"));
    if creds {
        c.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
    }
    for (k, v) in extra {
        c.env(k, v);
    }
    let t = Instant::now();
    let out = c.arg("build").output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    )
}

fn assert_bounded(how: Dead) {
    let dead = DeadServer::start(how);
    let p = project(&format!(
        "remote = \"s3://strata/team\"\nendpoint = \"{}\"",
        dead.url()
    ));
    let (ok, err, took) = build(&p, true, &[]);
    assert!(ok, "a dead remote must not fail the build:\n{err}");
    assert_eq!(
        err.matches("not using the remote cache for the rest of this run")
            .count(),
        1,
        "one warning for the whole run:\n{err}"
    );
    assert!(
        err.contains(&dead.url()),
        "the warning names the endpoint:\n{err}"
    );
    assert_eq!(p.read("install/out/c"), "c");
    // Generous: the point is "one short timeout", not 30 s per request.
    assert!(took < Duration::from_secs(20), "took {took:?}:\n{err}");
    // One lookup per worker at most reached it before the breaker opened.
    assert!(
        dead.connections() <= 2,
        "{} connections",
        dead.connections()
    );
}

#[test]
fn a_remote_that_never_answers_costs_one_timeout_and_one_warning() {
    assert_bounded(Dead::Hangs);
}

#[test]
fn a_remote_that_closes_without_a_reply_is_skipped_for_the_run() {
    assert_bounded(Dead::Closes);
}

#[test]
fn a_hanging_http_mirror_is_skipped_for_the_run_too() {
    let dead = DeadServer::start(Dead::Hangs);
    let p = project(&format!("remote = \"{}/mirror\"", dead.url()));
    let (ok, err, took) = build(&p, false, &[]);
    assert!(ok, "{err}");
    assert!(err.contains("no answer in time"), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}:\n{err}");
}

#[test]
fn without_credentials_it_says_how_to_set_them_and_asks_no_metadata_service() {
    let dead = DeadServer::start(Dead::Hangs);
    let imds = DeadServer::start(Dead::Hangs);
    let p = project(&format!(
        "remote = \"s3://strata/team\"\nendpoint = \"{}\"",
        dead.url()
    ));
    let (ok, err, _) = build(
        &p,
        false,
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url())],
    );
    assert!(ok, "{err}");
    for hint in ["AWS_ACCESS_KEY_ID", "~/.aws/credentials", "imds = true"] {
        assert!(err.contains(hint), "missing `{hint}`:\n{err}");
    }
    assert_eq!(err.matches("no S3 credentials").count(), 1, "{err}");
    assert_eq!(dead.connections(), 0, "no unsigned request is sent");
    assert_eq!(imds.connections(), 0, "the metadata service is not asked");
}

#[test]
fn credentials_come_from_the_named_profile_of_the_credentials_file() {
    // The profile's key reaches the server in the request's signature (the
    // X-Amz-Credential of a presigned URL, its `/` percent-encoded).
    let seen = Arc::new(Mutex::new(String::new()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && !line.ends_with("\r\n\r\n") {}
            s.lock().unwrap().push_str(&line);
            let _ = (&stream).write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let p = project(&format!(
        "remote = \"s3://strata/team\"\nendpoint = \"http://127.0.0.1:{port}\"\npush = false"
    ));
    p.write(
        ".home/creds",
        "[default]\naws_access_key_id = WRONG\naws_secret_access_key = x\n\
         [team]\naws_access_key_id = TEAMKEY\naws_secret_access_key = y\n",
    );
    let (ok, err, _) = build(
        &p,
        false,
        &[
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                p.path(".home/creds").display().to_string(),
            ),
            ("AWS_PROFILE", "team".into()),
        ],
    );
    assert!(ok, "{err}");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains("X-Amz-Credential=TEAMKEY%2F"), "{seen}");
    assert!(!seen.contains("WRONG"), "{seen}");
    assert!(!err.contains("warning"), "404s are misses:\n{err}");
}

/// An HTTP proxy as ureq speaks to one (a `CONNECT host:port` tunnel, for
/// http:// targets too) that answers the tunnelled request itself with
/// `body`; it logs each CONNECT target and tunnelled request line.
fn tunnel_proxy(body: Vec<u8>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Arc<Mutex<Vec<String>>> = Default::default();
    let l = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            let head = |r: &mut BufReader<TcpStream>| {
                let mut first = String::new();
                r.read_line(&mut first).ok()?;
                let mut h = String::new();
                while r.read_line(&mut h).unwrap_or(0) > 2 {
                    h.clear();
                }
                Some(first.trim().to_string())
            };
            let Some(connect) = head(&mut r) else {
                continue;
            };
            l.lock().unwrap().push(connect);
            let _ = w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            let Some(get) = head(&mut r) else { continue };
            l.lock().unwrap().push(get);
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = w.write_all(&body);
        }
    });
    (port, log)
}

#[test]
fn downloads_go_through_http_proxy_unless_no_proxy_names_the_host() {
    let tb = tarball("a-1.0", &[("f", "a")]);
    let (port, log) = tunnel_proxy(tb.clone());
    // A host that does not resolve: only the proxy can answer for it.
    let p = TestProject::with_default(&["a"]);
    p.module("a", "http://strata-test.invalid/a.tar.gz", &tb, "");
    p.strata()
        .env("HTTP_PROXY", format!("http://127.0.0.1:{port}"))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .arg("fetch")
        .assert()
        .success();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "CONNECT strata-test.invalid:80 HTTP/1.1",
            "GET /a.tar.gz HTTP/1.1"
        ]
    );

    // NO_PROXY: the origin is asked directly, the (dead) proxy never.
    let origin = Server::start();
    origin.route("/b.tar.gz", Reply::Ok(tb.clone()));
    let dead_proxy = DeadServer::start(Dead::Hangs);
    let q = TestProject::with_default(&["b"]);
    q.module("b", &origin.url("/b.tar.gz"), &tb, "");
    q.strata()
        .env("HTTP_PROXY", dead_proxy.url())
        .env("NO_PROXY", "localhost,127.0.0.1")
        .arg("fetch")
        .assert()
        .success();
    assert_eq!(origin.requests(), ["/b.tar.gz"]);
    assert_eq!(dead_proxy.connections(), 0);
}
