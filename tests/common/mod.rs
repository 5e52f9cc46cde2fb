//! Test helpers: a project in a temp dir, real tarballs, and a real HTTP
//! server on 127.0.0.1 whose behaviour per path is scripted.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server answers one path.
#[derive(Clone)]
pub enum Reply {
    Ok(Vec<u8>),
    Status(u16),
    /// Accept, then send nothing for this long.
    Hang(Duration),
    /// Declare the full length, send only `n` bytes, close.
    Truncate(Vec<u8>, usize),
    /// Send the body slowly: `chunk` bytes every `pause`.
    Slow(Vec<u8>, usize, Duration),
}

pub struct Server {
    pub port: u16,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Default::default();
        let log: Arc<Mutex<Vec<String>>> = Default::default();
        let (r, l) = (routes.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, l) = (r.clone(), l.clone());
                std::thread::spawn(move || serve(stream, &r, &l));
            }
        });
        Server { port, routes, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    /// The paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(mut s: TcpStream, routes: &Mutex<HashMap<String, Reply>>, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    log.lock().unwrap().push(path.clone());
    let reply = routes
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or(Reply::Status(404));
    let head = |code: u16, len: usize| {
        format!("HTTP/1.1 {code} X\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    let _ = match reply {
        Reply::Ok(b) => s
            .write_all(head(200, b.len()).as_bytes())
            .and_then(|_| s.write_all(&b)),
        Reply::Status(c) => s.write_all(head(c, 0).as_bytes()),
        Reply::Hang(d) => {
            std::thread::sleep(d);
            Ok(())
        }
        Reply::Truncate(b, n) => s
            .write_all(head(200, b.len()).as_bytes())
            .and_then(|_| s.write_all(&b[..n])),
        Reply::Slow(b, chunk, pause) => {
            let mut r = s.write_all(head(200, b.len()).as_bytes());
            for c in b.chunks(chunk) {
                if r.is_err() {
                    break;
                }
                r = s.write_all(c).and_then(|_| s.flush());
                std::thread::sleep(pause);
            }
            r
        }
    };
}

/// A gzipped tarball of `files` under a top directory `top/`.
pub fn tarball(top: &str, files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(if path.ends_with(".sh") { 0o755 } else { 0o644 });
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append_data(&mut h, format!("{top}/{path}"), content.as_bytes())
            .unwrap();
    }
    gzip(&b.into_inner().unwrap())
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A raw tar header block with an arbitrary name (no sanitising: for hostile archives).
pub fn raw_entry(name: &str, kind: u8, link: &str, content: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    let size = format!("{:011o}", content.len());
    h[124..135].copy_from_slice(size.as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

pub fn raw_tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A project in a temporary directory.
pub struct TestProject {
    pub tmp: tempfile::TempDir,
}

impl TestProject {
    pub fn new(strata_toml: &str) -> TestProject {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("strata.toml"), strata_toml).unwrap();
        std::fs::create_dir_all(tmp.path().join("modules")).unwrap();
        TestProject { tmp }
    }

    /// A project with target `default` = `targets`.
    pub fn with_default(targets: &[&str]) -> TestProject {
        let list = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        TestProject::new(&format!(
            "[project]\nname = \"t\"\ncache-version = \"1\"\n\n[target.default]\nmodules = [{list}]\n"
        ))
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Adds a module whose tarball is served at `url` (the caller serves it).
    pub fn module(&self, name: &str, url: &str, tarball: &[u8], extra: &str) {
        self.write(
            &format!("modules/{name}.toml"),
            format!(
                "name = \"{name}\"\nversion = \"1.0\"\nurl = \"{url}\"\nsha256 = \"{}\"\n{extra}\n",
                sha256(tarball)
            ),
        );
    }

    /// Adds a module served from a file:// mirror inside the project.
    pub fn local_module(&self, name: &str, files: &[(&str, &str)], extra: &str) {
        let tb = tarball(&format!("{name}-1.0"), files);
        self.write(&format!("mirror/{name}-1.0.tar.gz"), &tb);
        self.module(
            name,
            &format!("file://mirror/{name}-1.0.tar.gz"),
            &tb,
            extra,
        );
    }

    pub fn strata(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("strata").unwrap();
        c.arg("-C").arg(self.root());
        c.env("NO_COLOR", "1")
            .env("STRATA_FETCH_TIMEOUT", "1")
            .env("STRATA_FETCH_ATTEMPTS", "2")
            .env("XDG_CACHE_HOME", self.path(".xdg-cache"));
        c.timeout(Duration::from_secs(120));
        c
    }

    /// The binary as a plain process (for kill and signal tests), with this
    /// project's isolated cache.
    pub fn raw(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"));
        c.arg("-C").arg(self.root());
        c.env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", self.path(".xdg-cache"));
        c
    }

    /// The modules of the `--json` events of type `kind`, sorted.
    pub fn modules_with(events: &str, kind: &str) -> Vec<String> {
        let mut v: Vec<String> = events
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == kind)
            .map(|v| v["data"]["module"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    /// Runs `strata --json build ARGS` and returns (exit code, modules built, stderr).
    pub fn build_json(&self, args: &[&str]) -> (i32, Vec<String>, String) {
        let out = self
            .strata()
            .arg("--json")
            .arg("build")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut built: Vec<String> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "module-built")
            .map(|v| v["data"]["module"].as_str().unwrap().to_string())
            .collect();
        built.sort();
        (
            out.status.code().unwrap_or(-1),
            built,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The shipped example (`examples/firmware`), copied into a temp dir
/// without anything it built.
pub fn example_project() -> TestProject {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/firmware");
    let tmp = tempfile::tempdir().unwrap();
    for dir in ["modules", "patches", "mirror"] {
        let st = std::process::Command::new("cp")
            .arg("-r")
            .arg(src.join(dir))
            .arg(tmp.path())
            .status()
            .unwrap();
        assert!(st.success());
    }
    std::fs::copy(src.join("strata.toml"), tmp.path().join("strata.toml")).unwrap();
    TestProject { tmp }
}

/// A fresh checkout of `p`: its `strata.toml` and the listed files (paths
/// relative to the project), nothing built.
pub fn checkout(p: &TestProject, files: &[&str]) -> TestProject {
    let q = TestProject::new(&p.read("strata.toml"));
    for f in files {
        q.write(f, std::fs::read(p.path(f)).unwrap());
    }
    q
}

/// `strata --json build` in `q` with the artifact cache of `cache_of`:
/// (success, stdout events, stderr).
pub fn build_with_cache(q: &TestProject, cache_of: &TestProject) -> (bool, String, String) {
    let out = q
        .strata()
        .env("XDG_CACHE_HOME", cache_of.path(".xdg-cache"))
        .args(["--json", "build"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads all files under `dir` (relative path → bytes), skipping strata's own state.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(root: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else if e.file_type().unwrap().is_file() {
                let mut b = Vec::new();
                std::fs::File::open(&p)
                    .unwrap()
                    .read_to_end(&mut b)
                    .unwrap();
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), b);
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}
