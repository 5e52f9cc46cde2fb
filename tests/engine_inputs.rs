//! What the engine takes in, end to end through the binary: patches
//! (applied once, pre-applied and conflicting ones refused), downloads
//! (sha256, quarantine, mirrors, failures) and archives (hostile entries
//! refused, formats detected by content).

mod common;

use common::*;
use predicates::str::contains;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

#[test]
fn a_patch_that_creates_a_file_applies_once_and_never_again() {
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("main.c", "int x;\n")],
        r#"build = "test -f new.h && ! test -f new.h.orig"
install = "mkdir -p $STRATA_DESTDIR/inc && cp new.h $STRATA_DESTDIR/inc/""#,
    );
    p.write(
        "patches/m-1.0/0001-new.patch",
        "diff --git a/new.h b/new.h\nnew file mode 100644\n--- /dev/null\n+++ b/new.h\n@@ -0,0 +1 @@\n+#define NEW 1\n",
    );
    assert_eq!(p.build_json(&[]).0, 0);
    assert_eq!(p.read("install/inc/new.h"), "#define NEW 1\n");
    let out = p.strata().arg("--json").arg("build").output().unwrap();
    assert!(out.status.success());
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(
        !events.contains("\"step\":\"patch\""),
        "patched again: {events}"
    );
    assert!(events.contains("module-fresh"));
}

#[test]
fn a_tarball_that_already_contains_a_patch_is_an_error_naming_the_patch() {
    let p = TestProject::with_default(&["m"]);
    p.local_module("m", &[("new.h", "#define NEW 1\n")], "");
    p.write(
        "patches/m-1.0/0001-new.patch",
        "diff --git a/new.h b/new.h\nnew file mode 100644\n--- /dev/null\n+++ b/new.h\n@@ -0,0 +1 @@\n+#define NEW 1\n",
    );
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("patches/m-1.0/0001-new.patch"))
        .stderr(contains("Reversed (or previously applied) patch detected"));
}

#[test]
fn a_conflicting_patch_fails_at_once_without_reading_stdin() {
    let p = TestProject::with_default(&["m"]);
    p.local_module("m", &[("f.c", "one\ntwo\nthree\n")], "");
    p.write(
        "patches/m-1.0.patch",
        "--- a/f.c\n+++ b/f.c\n@@ -1,3 +1,3 @@\n one\n-TWO\n+2\n three\n",
    );
    let started = Instant::now();
    // stdin is an open pipe nobody writes to: a prompt would hang here.
    let mut child = p
        .raw()
        .args(["build"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait_timeout(Duration::from_secs(60)).unwrap();
    let Some(status) = status else {
        child.kill().unwrap();
        panic!("strata waited on stdin for a conflicting patch");
    };
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("patches/m-1.0.patch") && err.contains("f.c") && err.contains("hunk #1"),
        "{err}"
    );
    assert!(err.contains("- TWO") && err.contains("+ two"), "{err}");
    assert!(
        !p.path("build/.strata/modules/m-1.0/stamps/patch.stamp")
            .exists()
    );
    eprintln!("conflicting patch reported after {:?}", started.elapsed());
}

#[test]
fn hash_mismatch_is_quarantined_and_nothing_is_unpacked() {
    let srv = Server::start();
    let p = TestProject::with_default(&["m"]);
    let good = tarball("m-1.0", &[("f", "good\n")]);
    let evil = tarball("m-1.0", &[("f", "evil\n")]);
    srv.route("/m.tar.gz", Reply::Ok(evil));
    p.module("m", &srv.url("/m.tar.gz"), &good, "");
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("module m"))
        .stderr(contains("sha256 mismatch"))
        .stderr(contains(srv.url("/m.tar.gz")));
    assert!(!p.path("packages/m.tar.gz").exists());
    assert_eq!(
        std::fs::read_dir(p.path("packages/.quarantine"))
            .unwrap()
            .count(),
        1
    );
    assert!(!p.path("build/m-1.0").exists());
    // A wrong file placed by hand is quarantined too, then fetched again.
    srv.route("/m.tar.gz", Reply::Ok(good));
    p.write("packages/m.tar.gz", b"garbage");
    p.strata()
        .arg("build")
        .assert()
        .success()
        .stderr(contains("wrong sha256"));
    assert_eq!(p.read("build/m-1.0/f"), "good\n");
    assert_eq!(
        std::fs::read_dir(p.path("packages/.quarantine"))
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn mirrors_fall_back_after_404_500_timeout_and_truncation() {
    let srv = Server::start();
    let tb = tarball("m-1.0", &[("f", "ok\n")]);
    srv.route("/e500/m.tar.gz", Reply::Status(500));
    srv.route("/hang/m.tar.gz", Reply::Hang(Duration::from_secs(5)));
    srv.route("/trunc/m.tar.gz", Reply::Truncate(tb.clone(), tb.len() / 2));
    srv.route("/up/m.tar.gz", Reply::Ok(tb.clone()));
    let p = TestProject::new(&format!(
        "[project]\nname = \"t\"\n[mirrors]\nbefore = [\"{}\", \"{}\", \"{}\", \"{}\"]\n[target.default]\nmodules = [\"m\"]\n",
        srv.url("/e404/"),
        srv.url("/e500/"),
        srv.url("/hang/"),
        srv.url("/trunc/")
    ));
    p.module("m", &srv.url("/up/m.tar.gz"), &tb, "");
    p.strata().arg("build").assert().success();
    assert_eq!(p.read("build/m-1.0/f"), "ok\n");
    let reqs = srv.requests();
    let count = |path: &str| reqs.iter().filter(|r| *r == path).count();
    assert_eq!(count("/e404/m.tar.gz"), 1, "404 is not retried: {reqs:?}");
    assert_eq!(count("/e500/m.tar.gz"), 2, "500 is retried: {reqs:?}");
    assert_eq!(count("/hang/m.tar.gz"), 2, "{reqs:?}");
    assert_eq!(count("/trunc/m.tar.gz"), 2, "{reqs:?}");
    assert_eq!(reqs.last().map(String::as_str), Some("/up/m.tar.gz"));
}

#[test]
fn total_download_failure_lists_every_url_and_why() {
    let srv = Server::start();
    let tb = tarball("m-1.0", &[("f", "ok\n")]);
    srv.route("/b/m.tar.gz", Reply::Status(503));
    let p = TestProject::with_default(&["m"]);
    p.write(
        "modules/m.toml",
        format!(
            "name = \"m\"\nversion = \"1.0\"\nurls = [\"{}\", \"{}\"]\nsha256 = \"{}\"\n",
            srv.url("/a/m.tar.gz"),
            srv.url("/b/m.tar.gz"),
            sha256(&tb)
        ),
    );
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains(format!("{}: HTTP 404", srv.url("/a/m.tar.gz"))))
        .stderr(contains(format!("{}: HTTP 503", srv.url("/b/m.tar.gz"))));
    // --offline names the missing package and asks for nothing.
    let before = srv.requests().len();
    p.strata()
        .arg("build")
        .arg("--offline")
        .assert()
        .code(1)
        .stderr(contains("--offline"))
        .stderr(contains("m.tar.gz"));
    assert_eq!(srv.requests().len(), before);
}

#[test]
fn hostile_archives_are_refused_and_nothing_is_written_outside() {
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "dotdot",
            vec![raw_entry("m-1.0/../../evil.txt", b'0', "", b"x")],
        ),
        (
            "absolute",
            vec![raw_entry(
                "/tmp/strata-test-absolute-evil.txt",
                b'0',
                "",
                b"x",
            )],
        ),
        (
            "symlink-out",
            vec![
                raw_entry("m-1.0/link", b'2', "../../..", b""),
                raw_entry("m-1.0/link/evil.txt", b'0', "", b"x"),
            ],
        ),
        (
            "symlink-abs",
            vec![raw_entry("m-1.0/link", b'2', "/etc", b"")],
        ),
        (
            "through-symlink",
            vec![
                raw_entry("m-1.0/s", b'2', ".", b""),
                raw_entry("m-1.0/s/t", b'2', "..", b""),
                raw_entry("m-1.0/s/t/evil.txt", b'0', "", b"x"),
            ],
        ),
        (
            "hardlink-out",
            vec![raw_entry("m-1.0/h", b'1', "m-1.0/../../../evil.txt", b"")],
        ),
        (
            "hardlink-abs",
            vec![raw_entry("m-1.0/h", b'1', "/etc/passwd", b"")],
        ),
        ("device", vec![raw_entry("m-1.0/dev", b'3', "", b"")]),
        ("fifo", vec![raw_entry("m-1.0/fifo", b'6', "", b"")]),
    ];
    for (name, entries) in cases {
        let p = TestProject::with_default(&["m"]);
        let tb = gzip(&raw_tar(&entries));
        p.write("mirror/m.tar.gz", &tb);
        p.module("m", "file://mirror/m.tar.gz", &tb, "");
        p.strata()
            .arg("build")
            .assert()
            .code(1)
            .stderr(contains("refusing entry"));
        assert!(!p.path("build/m-1.0").exists(), "{name}: build dir created");
        assert!(
            !p.path("evil.txt").exists() && !p.path("../evil.txt").exists(),
            "{name}: wrote outside"
        );
        assert!(!std::path::Path::new("/tmp/strata-test-absolute-evil.txt").exists());
        let leftovers: Vec<_> = std::fs::read_dir(p.path("build"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != ".strata")
            .collect();
        assert!(leftovers.is_empty(), "{name}: left {leftovers:?}");
    }
}

#[test]
fn xz_zstd_bzip2_and_plain_tar_are_detected_by_content() {
    let raw = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "m-1.0/f", &b"ok\n"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let compress = |cmd: &str| {
        let mut c = Command::new(cmd)
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut c.stdin.take().unwrap(), &raw).unwrap();
        c.wait_with_output().unwrap().stdout
    };
    let zip = {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("m-1.0/f", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut w, b"ok\n").unwrap();
        w.finish().unwrap().into_inner()
    };
    for (fmt, bytes) in [
        ("zip", zip),
        ("xz", compress("xz")),
        ("zst", compress("zstd")),
        ("bz2", compress("bzip2")),
        ("tar", raw.clone()),
    ] {
        let p = TestProject::with_default(&["m"]);
        // A misleading name: detection must not trust it.
        p.write("mirror/m.tar.gz", &bytes);
        p.module("m", "file://mirror/m.tar.gz", &bytes, "");
        p.strata().arg("build").assert().success();
        assert_eq!(p.read("build/m-1.0/f"), "ok\n", "{fmt}");
    }
}
