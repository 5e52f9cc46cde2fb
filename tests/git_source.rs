//! Git sources end to end: a real bare repository created here and served
//! over file://, fetched by the `git` program, archived deterministically,
//! unpacked, patched and built by the `strata` binary.

mod common;

use common::*;
use predicates::str::contains;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `git` isolated from the user's configuration, with a fixed identity and dates.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .env("GIT_ALLOW_PROTOCOL", "file")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A bare repository `<root>/repos/<name>.git` with one commit of `files`
/// (paths ending in `.sh` executable) plus a symlink `link -> hello.txt`.
/// Returns the commit id.
fn bare_repo(root: &Path, name: &str, files: &[(&str, &str)]) -> String {
    let work = root.join(format!("work-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    for (path, content) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    std::os::unix::fs::symlink("hello.txt", work.join("link")).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    let rev = git(&work, &["rev-parse", "HEAD"]);
    let bare = root.join("repos").join(format!("{name}.git"));
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    rev
}

const FILES: &[(&str, &str)] = &[
    ("hello.txt", "hello\n"),
    ("src/run.sh", "#!/bin/sh\necho run\n"),
    ("src/deep/a.c", "int a;\n"),
    // Longer than a tar header's 100-byte name field.
    (LONG, "long\n"),
];

const LONG: &str = "long-dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/x.txt";

fn git_module(p: &TestProject, name: &str, url: &str, rev: &str, extra: &str) {
    p.write(
        &format!("modules/{name}.toml"),
        format!(
            "name = \"{name}\"\nversion = \"1.0\"\ngit = \"{url}\"\nrev = \"{rev}\"\n{extra}\n"
        ),
    );
}

const INSTALL: &str = r#"install = "mkdir -p $STRATA_DESTDIR/out && cp hello.txt $STRATA_DESTDIR/out/ && test -x src/run.sh && test -L link && cp link $STRATA_DESTDIR/out/via-link""#;

/// The entries of a .tar.zst: (path, mode, uid, gid, mtime, kind, link target).
fn entries(archive: &Path) -> Vec<(String, u32, u64, u64, u64, u8, String)> {
    let f = std::fs::File::open(archive).unwrap();
    let mut t = tar::Archive::new(zstd::stream::read::Decoder::new(f).unwrap());
    t.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                h.entry_type().as_byte(),
                e.link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The bare mirrors under packages/.git.
fn mirrors(p: &TestProject) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(p.path("packages/.git"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn modules_from_one_repository_share_its_mirror() {
    // Heads's coreboot per board, its cbmem and its toolchain: three modules,
    // one repository, cloned once.
    let p = TestProject::with_default(&["fw", "fw-tools", "other"]);
    let rev = bare_repo(p.root(), "fw", FILES);
    let rev2 = bare_repo(p.root(), "other", FILES);
    git_module(&p, "fw", "file://repos/fw.git", &rev, INSTALL);
    git_module(
        &p,
        "fw-tools",
        "file://repos/fw.git",
        &rev,
        "install = \"true\"",
    );
    git_module(
        &p,
        "other",
        "file://repos/other.git",
        &rev2,
        "install = \"true\"",
    );
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built.len(), 3, "{built:?}");
    let names: Vec<String> = mirrors(&p)
        .iter()
        .map(|m| m.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "one mirror per repository: {names:?}");
    assert!(
        names[0].starts_with("fw-") && names[0].ends_with(".git"),
        "{names:?}"
    );
    assert!(names[1].starts_with("other-"), "{names:?}");
    for m in ["fw", "fw-tools"] {
        assert!(p.path(&format!("packages/{m}-{rev}.tar.zst")).is_file());
    }
}

#[test]
fn git_module_builds_end_to_end_with_a_patch() {
    let p = TestProject::with_default(&["fw"]);
    let rev = bare_repo(p.root(), "fw", FILES);
    git_module(&p, "fw", "file://repos/fw.git", &rev, INSTALL);
    p.write(
        "patches/fw-1.0.patch",
        "--- a/hello.txt\n+++ b/hello.txt\n@@ -1 +1,2 @@\n hello\n+patched\n",
    );
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["fw"]);
    assert_eq!(p.read("install/out/hello.txt"), "hello\npatched\n");
    assert_eq!(p.read("install/out/via-link"), "hello\npatched\n");
    assert!(p.path(&format!("packages/fw-{rev}.tar.zst")).is_file());
    assert_eq!(mirrors(&p).len(), 1);
    assert!(mirrors(&p)[0].join("HEAD").is_file());
    assert!(!p.path("build/fw-1.0/.git").exists());
    // A second build is a no-op.
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(built.is_empty(), "{built:?}");
    // A new commit: moving the pin says why, fetches it into the mirror and rebuilds.
    let work = p.path("work-fw");
    std::fs::write(work.join("hello.txt"), "hello again\n").unwrap();
    git(&work, &["commit", "-q", "-am", "two"]);
    git(
        &work,
        &[
            "push",
            "-q",
            p.path("repos/fw.git").to_str().unwrap(),
            "main",
        ],
    );
    let rev2 = git(&work, &["rev-parse", "HEAD"]);
    git_module(&p, "fw", "file://repos/fw.git", &rev2, INSTALL);
    p.write(
        "patches/fw-1.0.patch",
        "--- a/hello.txt\n+++ b/hello.txt\n@@ -1 +1,2 @@\n hello again\n+patched\n",
    );
    p.strata()
        .args(["why", "fw"])
        .assert()
        .success()
        .stdout(contains(format!("source rev {rev} → {rev2}")));
    let (code, built, err) = p.build_json(&[]);
    assert_eq!((code, built), (0, vec!["fw".to_string()]), "{err}");
    assert_eq!(p.read("install/out/hello.txt"), "hello again\npatched\n");
    // A cleaned module is rebuilt from the archive without the repository.
    std::fs::remove_dir_all(p.path("repos")).unwrap();
    p.strata().args(["clean", "fw"]).assert().success();
    let (code, built, err) = p.build_json(&["--no-cache"]);
    assert_eq!((code, built), (0, vec!["fw".to_string()]), "{err}");
    assert!(p.path(&format!("packages/fw-{rev2}.tar.zst")).is_file());
}

#[test]
fn archive_is_deterministic_and_normalised() {
    let p = TestProject::with_default(&["fw"]);
    let rev = bare_repo(p.root(), "fw", FILES);
    git_module(&p, "fw", "file://repos/fw.git", &rev, "");
    let archive = p.path(&format!("packages/fw-{rev}.tar.zst"));
    p.strata().arg("fetch").assert().success();
    let first = std::fs::read(&archive).unwrap();
    // Rewritten from the mirror: same bytes, accepted against the record;
    // the leftover of a killed run is removed.
    std::fs::remove_file(&archive).unwrap();
    let leftover = p.path(&format!("packages/.fw-{rev}.tar.zst.tmp-999999"));
    std::fs::write(&leftover, "partial").unwrap();
    p.strata().arg("fetch").assert().success();
    assert_eq!(std::fs::read(&archive).unwrap(), first);
    assert!(!leftover.exists());
    // From a fresh mirror in another project, at another time: same bytes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let q = TestProject::with_default(&["fw"]);
    let url = format!("file://{}", p.path("repos/fw.git").display());
    git_module(&q, "fw", &url, &rev, "");
    q.strata().arg("fetch").assert().success();
    let again = std::fs::read(q.path(&format!("packages/fw-{rev}.tar.zst"))).unwrap();
    assert_eq!(sha256(&again), sha256(&first));

    let top = format!("fw-{rev}");
    let got = entries(&archive);
    let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    let want: Vec<String> = [
        "/",
        "/hello.txt",
        "/link",
        "/src/",
        "/src/deep/",
        "/src/deep/a.c",
        "/src/run.sh",
    ]
    .iter()
    .map(|s| format!("{top}{s}"))
    .collect();
    let long_dir = LONG.trim_end_matches("x.txt");
    let mut want = want;
    want.insert(3, format!("{top}/{long_dir}"));
    want.insert(4, format!("{top}/{LONG}"));
    assert_eq!(names, want);
    for (path, mode, uid, gid, mtime, kind, link) in &got {
        assert_eq!((*uid, *gid, *mtime), (0, 0, 1_700_000_000), "{path}");
        let want_mode = match *kind {
            b'5' => 0o755,
            b'2' => 0o777,
            _ if path.ends_with(".sh") => 0o755,
            _ => 0o644,
        };
        assert_eq!(*mode, want_mode, "{path}");
        if *kind == b'2' {
            assert_eq!(link, "hello.txt");
        }
    }
    // The sum is recorded; a different archive of the same rev is refused.
    let record = p.read(&format!("packages/.strata/verified/fw-{rev}.tar.zst.json"));
    assert!(record.contains(&sha256(&first)), "{record}");
    let rec_path = p.path(&format!("packages/.strata/verified/fw-{rev}.tar.zst.json"));
    let forged = record.replace(&sha256(&first), &"0".repeat(64));
    std::fs::write(&rec_path, forged).unwrap();
    let lock = p.read("strata.lock");
    p.write(
        "strata.lock",
        lock.replace(&sha256(&first), &"0".repeat(64)),
    );
    std::fs::remove_file(&archive).unwrap();
    p.strata()
        .arg("fetch")
        .assert()
        .code(1)
        .stderr(contains("module fw: the archive of commit"))
        .stderr(contains(
            "strata.lock (or an earlier archive of the same commit) recorded",
        ))
        .stderr(contains("strata fetch --update-lock fw"));
    // When asked, the archive made from the repository is accepted again.
    p.strata()
        .args(["fetch", "--update-lock"])
        .assert()
        .success();
    assert_eq!(p.read("strata.lock"), lock);
}

#[test]
fn mirrors_serve_pinned_archives_and_offline_uses_packages_only() {
    // Produce the archive once, from the repository.
    let a = TestProject::with_default(&["fw"]);
    let rev = bare_repo(a.root(), "fw", FILES);
    git_module(&a, "fw", "file://repos/fw.git", &rev, "");
    a.strata().arg("fetch").assert().success();
    let file = format!("fw-{rev}.tar.zst");
    let bytes = std::fs::read(a.path(&format!("packages/{file}"))).unwrap();
    let sum = sha256(&bytes);

    // A machine that cannot reach the repository builds from the mirror.
    let b = TestProject::new(
        "[project]\nname = \"t\"\n[mirrors]\nbefore = [\"file://mirror/\"]\n[target.default]\nmodules = [\"fw\"]\n",
    );
    b.write(&format!("mirror/{file}"), &bytes);
    let pin = format!("sha256 = \"{sum}\"\n{INSTALL}");
    git_module(&b, "fw", "file:///nonexistent/fw.git", &rev, &pin);
    let (code, built, err) = b.build_json(&[]);
    assert_eq!((code, built), (0, vec!["fw".to_string()]), "{err}");
    assert!(!b.path("packages/.git").exists(), "git was not needed");
    // Offline, from packages/ only.
    b.strata().args(["clean", "--all"]).assert().success();
    let (code, _, err) = b.build_json(&["--offline", "--no-cache"]);
    assert_eq!(code, 0, "{err}");

    // Offline with nothing in packages/: a clear error naming the module.
    let c = TestProject::with_default(&["fw"]);
    git_module(&c, "fw", "file:///nonexistent/fw.git", &rev, &pin);
    c.strata()
        .args(["--offline", "fetch"])
        .assert()
        .code(1)
        .stderr(contains("module fw: package"))
        .stderr(contains("--offline forbids fetching commit"));

    // A corrupt mirror copy is refused against the pin.
    let d = TestProject::new(
        "[project]\nname = \"t\"\n[mirrors]\nbefore = [\"file://mirror/\"]\n[target.default]\nmodules = [\"fw\"]\n",
    );
    d.write(&format!("mirror/{file}"), b"not the archive");
    git_module(&d, "fw", "file:///nonexistent/fw.git", &rev, &pin);
    d.strata()
        .arg("fetch")
        .assert()
        .code(1)
        .stderr(contains("sha256 mismatch"))
        .stderr(contains(
            "repository file:///nonexistent/fw.git is unreachable",
        ));

    // Without a pin a mirror copy cannot be verified, so it is not used.
    let e = TestProject::new(
        "[project]\nname = \"t\"\n[mirrors]\nbefore = [\"file://mirror/\"]\n[target.default]\nmodules = [\"fw\"]\n",
    );
    e.write(&format!("mirror/{file}"), &bytes);
    git_module(&e, "fw", "file:///nonexistent/fw.git", &rev, "");
    e.strata()
        .arg("fetch")
        .assert()
        .code(1)
        .stderr(contains("cannot be verified without a sha256 pin"))
        .stderr(contains("is unreachable"));
}

#[test]
fn missing_commit_and_pin_mismatch_are_clear_errors() {
    let p = TestProject::with_default(&["fw"]);
    let rev = bare_repo(p.root(), "fw", FILES);
    let missing = "0123456789abcdef0123456789abcdef01234567";
    git_module(&p, "fw", "file://repos/fw.git", missing, "");
    p.strata()
        .arg("fetch")
        .assert()
        .code(1)
        .stderr(contains(format!(
            "module fw: commit {missing} does not exist in file://"
        )))
        .stderr(contains("check `rev` in modules/fw.toml"));
    git_module(
        &p,
        "fw",
        "file://repos/fw.git",
        &rev,
        &format!("sha256 = \"{}\"", "ab".repeat(32)),
    );
    p.strata()
        .arg("fetch")
        .assert()
        .code(1)
        .stderr(contains("but the module pins sha256"));
    assert!(!p.path(&format!("packages/fw-{rev}.tar.zst")).exists());
}

#[test]
fn manifest_refuses_moving_revs_and_mixed_sources() {
    let p = TestProject::with_default(&["fw"]);
    git_module(&p, "fw", "https://example.org/fw.git", "main", "");
    p.strata()
        .arg("plan")
        .assert()
        .code(2)
        .stderr(contains("modules/fw.toml:4"))
        .stderr(contains("rev must be a full 40-hex-digit commit id"))
        .stderr(contains("`main`"))
        .stderr(contains("branch and tag names"))
        .stderr(contains("must not move"));
    git_module(
        &p,
        "fw",
        "https://example.org/fw.git",
        &"a".repeat(40),
        "url = \"https://example.org/fw.tar.gz\"",
    );
    p.strata()
        .arg("plan")
        .assert()
        .code(2)
        .stderr(contains("modules/fw.toml:3"))
        .stderr(contains("has both a git source and url/urls"));
    p.write("modules/fw.toml", "name = \"fw\"\nversion = \"1\"\n");
    p.strata()
        .arg("plan")
        .assert()
        .code(2)
        .stderr(contains("module `fw` has no source"));
}

#[test]
fn submodules_are_archived_only_when_asked() {
    let p = TestProject::with_default(&["fw"]);
    bare_repo(p.root(), "lib", &[("hello.txt", "lib\n")]);
    let work = p.path("work-fw");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("hello.txt"), "top\n").unwrap();
    let lib_url = format!("file://{}", p.path("repos/lib.git").display());
    git(
        &work,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &lib_url,
            "vendor/lib",
        ],
    );
    // The superproject names its submodule relative to itself, as many do.
    std::fs::write(
        work.join(".gitmodules"),
        "[submodule \"vendor/lib\"]\n\tpath = vendor/lib\n\turl = ../lib.git\n",
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "with submodule"]);
    let rev = git(&work, &["rev-parse", "HEAD"]);
    let bare = p.path("repos/fw.git");
    git(
        p.root(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let archive: PathBuf = p.path(&format!("packages/fw-{rev}.tar.zst"));
    git_module(&p, "fw", "file://repos/fw.git", &rev, "");
    p.strata().arg("fetch").assert().success();
    let names: Vec<String> = entries(&archive).into_iter().map(|e| e.0).collect();
    assert!(
        names.contains(&format!("fw-{rev}/vendor/lib/")),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with("vendor/lib/hello.txt")));

    let q = TestProject::with_default(&["fw"]);
    let url = format!("file://{}", bare.display());
    git_module(&q, "fw", &url, &rev, "submodules = true");
    let dirs = q.strata().arg("prepare").output().unwrap();
    assert!(
        dirs.status.success(),
        "{}",
        String::from_utf8_lossy(&dirs.stderr)
    );
    assert_eq!(q.read("build/fw-1.0/vendor/lib/hello.txt"), "lib\n");
    let mut s = String::new();
    std::fs::File::open(q.path("build/fw-1.0/hello.txt"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "top\n");
}

#[test]
fn a_stalled_git_server_is_an_error_not_a_hang() {
    let server = Server::start();
    for path in [
        "/fw.git/info/refs?service=git-upload-pack",
        "/fw.git/info/refs",
    ] {
        server.route(path, Reply::Hang(std::time::Duration::from_secs(60)));
    }
    let p = TestProject::with_default(&["fw"]);
    git_module(&p, "fw", &server.url("/fw.git"), &"c".repeat(40), "");
    let t = std::time::Instant::now();
    p.strata()
        .arg("fetch")
        .assert()
        .code(1)
        .stderr(contains("module fw: repository http://127.0.0.1"))
        .stderr(contains("is unreachable"));
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
    assert!(!server.requests().is_empty());
}

/// `git` in `dir` with `input` on stdin (plumbing: hash-object, mktree).
fn git_stdin(dir: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A bare repository `<root>/repos/<name>.git` whose one commit has the tree
/// `entries` (mode, path, blob content), made with plumbing, since `git add`
/// refuses a `.git` path. Returns the commit id.
fn planted_repo(root: &Path, name: &str, entries: &[(&str, &str, &[u8])]) -> String {
    let bare = root.join("repos").join(format!("{name}.git"));
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare", "-b", "main"]);
    // Nested trees from the leaves up: path prefix → its `mktree` lines.
    let mut trees: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (mode, path, content) in entries {
        let blob = git_stdin(&bare, &["hash-object", "-w", "--stdin"], content);
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
        let kind = if *mode == "160000" { "commit" } else { "blob" };
        trees
            .entry(dir.to_string())
            .or_default()
            .push(format!("{mode} {kind} {blob}\t{file}"));
        let mut d = dir.to_string();
        while !d.is_empty() {
            let parent = d.rsplit_once('/').map_or("", |(p, _)| p).to_string();
            trees.entry(parent.clone()).or_default();
            d = parent;
        }
    }
    let mut dirs: Vec<String> = trees.keys().cloned().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count() + usize::from(!d.is_empty())));
    let mut made: std::collections::BTreeMap<String, String> = Default::default();
    for d in dirs {
        let mut lines = trees[&d].clone();
        for (sub, oid) in &made {
            let parent = sub.rsplit_once('/').map_or("", |(p, _)| p);
            if parent == d && !sub.is_empty() {
                let base = sub.rsplit_once('/').map_or(sub.as_str(), |(_, b)| b);
                lines.push(format!("040000 tree {oid}\t{base}"));
            }
        }
        let input = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        let oid = git_stdin(&bare, &["mktree"], input.as_bytes());
        made.insert(d, oid);
    }
    let commit = git(&bare, &["commit-tree", &made[""], "-m", "planted"]);
    git(&bare, &["update-ref", "refs/heads/main", &commit]);
    commit
}

#[test]
fn a_dot_git_in_a_commits_tree_is_refused_when_archiving() {
    for bad in ["x/.git/config", "x/.GIT/config", ".git"] {
        let p = TestProject::with_default(&["fw"]);
        let rev = planted_repo(
            p.root(),
            "fw",
            &[
                ("100644", "hello.txt", b"hello\n"),
                ("100644", bad, b"[core]\n\tfsmonitor = touch pwned\n"),
            ],
        );
        git_module(&p, "fw", "file://repos/fw.git", &rev, "");
        p.strata()
            .arg("build")
            .assert()
            .code(1)
            .stderr(contains("module fw"))
            .stderr(contains(format!("`{bad}`")))
            .stderr(contains("`.git`"));
        assert!(!p.path(&format!("packages/fw-{rev}.tar.zst")).exists());
        assert!(!p.path("build/fw-1.0").exists());
    }
}

#[test]
fn a_symlink_blob_longer_than_path_max_is_refused_when_archiving() {
    let p = TestProject::with_default(&["fw"]);
    let long = vec![b'a'; 1 << 20];
    let rev = planted_repo(
        p.root(),
        "fw",
        &[
            ("100644", "hello.txt", b"hello\n"),
            ("120000", "dir/link", &long),
        ],
    );
    git_module(&p, "fw", "file://repos/fw.git", &rev, "");
    p.strata()
        .arg("fetch")
        .assert()
        .code(1)
        .stderr(contains("module fw"))
        .stderr(contains("`dir/link`"))
        .stderr(contains("4096"));
    assert!(!p.path(&format!("packages/fw-{rev}.tar.zst")).exists());
}

/// A bare superproject `<root>/repos/<name>.git` whose tree pins a submodule
/// `vendor/lib` (at an arbitrary commit) that `.gitmodules` names by `url`.
/// Returns the commit id.
fn superproject(root: &Path, name: &str, url: &str) -> String {
    let work = root.join(format!("work-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("hello.txt"), "top\n").unwrap();
    std::fs::write(
        work.join(".gitmodules"),
        format!("[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = {url}\n"),
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    let pinned = format!("160000,{},vendor/lib", "1".repeat(40));
    git(&work, &["update-index", "--add", "--cacheinfo", &pinned]);
    git(&work, &["commit", "-q", "-m", "with submodule"]);
    let rev = git(&work, &["rev-parse", "HEAD"]);
    let bare = root.join("repos").join(format!("{name}.git"));
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    rev
}

/// Every path under `dir` whose file name is `name`.
fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        if e.file_name() == name {
            found.push(e.path());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(find_named(&e.path(), name));
        }
    }
    found
}

/// Issue 16: a submodule URL from `.gitmodules` reached `git fetch` and
/// `git ls-remote` unchecked and without `--`, so `--upload-pack=CMD` ran
/// CMD during `strata fetch`; `ext::` runs one wherever the user's git
/// configuration allows it.
#[test]
fn issue16_hostile_submodule_urls_never_run_a_command() {
    for url in ["--upload-pack=touch PWNED", "ext::sh -c touch% PWNED"] {
        let p = TestProject::with_default(&["fw"]);
        let rev = superproject(p.root(), "fw", url);
        git_module(&p, "fw", "file://repos/fw.git", &rev, "submodules = true");
        let cwd = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        p.strata()
            .arg("fetch")
            .current_dir(cwd.path())
            .env("TMPDIR", tmp.path())
            // A user whose git allows every transport: strata's own policy must hold.
            .env("GIT_CONFIG_COUNT", "2")
            .env("GIT_CONFIG_KEY_0", "protocol.ext.allow")
            .env("GIT_CONFIG_VALUE_0", "always")
            .env("GIT_CONFIG_KEY_1", "protocol.allow")
            .env("GIT_CONFIG_VALUE_1", "always")
            .assert()
            .code(1)
            .stderr(contains("module fw: submodule vendor/lib"))
            .stderr(contains(format!("`{url}`")))
            .stderr(contains("submodules = false"));
        for dir in [p.root(), cwd.path(), tmp.path()] {
            let pwned = find_named(dir, "PWNED");
            assert!(pwned.is_empty(), "{url}: {pwned:?}");
        }
    }
}

/// A relative submodule URL may not climb above its superproject's host, and
/// a file:// submodule of a remote superproject is refused.
#[test]
fn submodule_urls_stay_within_their_forms() {
    for (url, why) in [
        ("../../../../../../../../../../x.git", "climbs above"),
        ("https://h/x\\n", "control character"),
    ] {
        let p = TestProject::with_default(&["fw"]);
        let rev = superproject(p.root(), "fw", url);
        git_module(&p, "fw", "file://repos/fw.git", &rev, "submodules = true");
        p.strata()
            .arg("fetch")
            .assert()
            .code(1)
            .stderr(contains("module fw: submodule vendor/lib"))
            .stderr(contains(why));
    }
}

/// Issue 16: `ext::`, `<helper>::` and option-like URLs passed manifest
/// validation although docs/manifest.md lists the forms allowed.
#[test]
fn issue16_manifest_refuses_transport_helpers_and_options_as_git_urls() {
    let p = TestProject::with_default(&["fw"]);
    for url in [
        "ext::sh -c touch% PWNED",
        "fd::3",
        "foo::https://example.org/fw.git",
        "-oProxyCommand=touch PWNED:x",
        "ssh://-oProxyCommand=x/fw.git",
    ] {
        git_module(&p, "fw", url, &"a".repeat(40), "");
        let out = p.strata().arg("plan").output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        // Read the message, source line and hint as one line.
        let err: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(|l| l.trim_start().trim_start_matches("| ").to_string())
            .collect();
        let err = err.join(" ");
        for want in [
            "modules/fw.toml:3",
            "unsupported git URL",
            &format!("git = \"{url}\""),
            "use https://, http://, ssh://, git://, file:// or user@host:path",
            "hint: write the repository's URL as git clones it",
        ] {
            assert!(err.contains(want), "{url}: {want}\n{err}");
        }
    }
    assert!(find_named(p.root(), "PWNED").is_empty());
}

#[test]
fn the_lock_makes_a_dropped_in_archive_of_an_unpinned_git_module_trusted() {
    // The report: the offline hint says "copy fw-<rev>.tar.zst into
    // packages/", and doing so quarantined the file (no sha256 to check it
    // against). strata.lock now holds that sum.
    let p = TestProject::with_default(&["fw"]);
    let rev = bare_repo(p.root(), "fw", FILES);
    git_module(&p, "fw", "file://repos/fw.git", &rev, INSTALL);
    let (code, _, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    let file = format!("fw-{rev}.tar.zst");
    let archive = std::fs::read(p.path(&format!("packages/{file}"))).unwrap();
    let lock = p.read("strata.lock");
    assert!(
        lock.contains(&format!(
            "pin = \"git:{rev}:1\"\nsha256 = \"{}\"",
            sha256(&archive)
        )),
        "{lock}"
    );
    // Another machine: the module file and the lock, the archive dropped
    // into packages/, no repository at all.
    let q = checkout(&p, &["modules/fw.toml", "strata.lock"]);
    q.write(&format!("packages/{file}"), &archive);
    q.strata().args(["--offline", "build"]).assert().success();
    assert_eq!(q.read("install/out/hello.txt"), "hello\n");
    assert!(!q.path("packages/.quarantine").exists());
    // A different file under that name is still refused.
    let r = checkout(&p, &["modules/fw.toml", "strata.lock"]);
    r.write(&format!("packages/{file}"), b"not the archive");
    r.strata().args(["--offline", "build"]).assert().code(1);
    assert!(r.path("packages/.quarantine").is_dir());
}
