//! Extra downloads (`[[download]]`), SHA-1 pins, `strata.lock` and offline
//! builds from local mirrors, end to end over a real HTTP server on
//! 127.0.0.1: a toolchain-like module gets its packages from strata, so
//! its build downloads nothing itself.

mod common;

use common::*;
use predicates::str::contains;

fn sha1(bytes: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(bytes))
}

const GCC: &[u8] = b"pretend gcc tarball\n";
const BINUTILS: &[u8] = b"pretend binutils tarball\n";

/// A musl-cross-make-like module whose build expects its packages in
/// `sources/`: gcc pinned by sha1 (as upstream's `hashes/`), binutils by
/// sha256.
fn toolchain(server: &Server, gcc_sha1: &str) -> TestProject {
    let p = TestProject::with_default(&["tc"]);
    let tb = tarball(
        "tc-1.0",
        &[("Makefile", "all:\n\ttest -f sources/gcc.tar.xz\n")],
    );
    server.route("/tc-1.0.tar.gz", Reply::Ok(tb.clone()));
    server.route("/gcc.tar.xz", Reply::Ok(GCC.to_vec()));
    server.route("/binutils.tar.xz", Reply::Ok(BINUTILS.to_vec()));
    p.module(
        "tc",
        &server.url("/tc-1.0.tar.gz"),
        &tb,
        &format!(
            r#"build = "make"
install = "cat sources/gcc.tar.xz sources/binutils.tar.xz > $STRATA_DESTDIR/packages.txt"

[[download]]
url = "{}"
sha1 = "{gcc_sha1}"
dest = "sources"

[[download]]
url = "{}"
sha256 = "{}"
dest = "sources/"
"#,
            server.url("/gcc.tar.xz"),
            server.url("/binutils.tar.xz"),
            sha256(BINUTILS)
        ),
    );
    p
}

#[test]
fn extra_downloads_are_fetched_verified_placed_and_locked() {
    let server = Server::start();
    let p = toolchain(&server, &sha1(GCC));
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["tc"]);
    assert_eq!(
        p.read("install/packages.txt"),
        format!(
            "{}{}",
            String::from_utf8_lossy(GCC),
            String::from_utf8_lossy(BINUTILS)
        )
    );
    let lock = p.read("strata.lock");
    for (file, pin, sum) in [
        ("gcc.tar.xz", format!("sha1:{}", sha1(GCC)), sha256(GCC)),
        (
            "binutils.tar.xz",
            format!("sha256:{}", sha256(BINUTILS)),
            sha256(BINUTILS),
        ),
    ] {
        let entry = format!(
            "[[package]]\nmodule = \"tc\"\nfile = \"{file}\"\npin = \"{pin}\"\nsha256 = \"{sum}\"\n"
        );
        assert!(lock.contains(&entry), "{entry} not in\n{lock}");
    }
    assert!(lock.contains("file = \"tc-1.0.tar.gz\""), "{lock}");
    // A fresh checkout with the lock and a packages dir copied in builds
    // offline: nothing is downloaded again, and the lock is unchanged.
    let q = checkout(&p, &["modules/tc.toml", "strata.lock"]);
    std::process::Command::new("cp")
        .arg("-r")
        .arg(p.path("packages"))
        .arg(q.root())
        .status()
        .unwrap();
    let before = server.requests().len();
    q.strata().args(["--offline", "build"]).assert().success();
    assert_eq!(server.requests().len(), before);
    assert_eq!(q.read("strata.lock"), lock);
}

#[test]
fn a_wrong_sha1_or_a_file_that_disagrees_with_the_lock_is_refused() {
    let server = Server::start();
    let p = toolchain(&server, &"0".repeat(40));
    p.strata()
        .arg("fetch")
        .assert()
        .code(1)
        .stderr(contains("gcc.tar.xz"))
        .stderr(contains(format!(
            "sha1 mismatch: expected {}",
            "0".repeat(40)
        )));

    // The right sha1, but the lock says the file's sha256 is another one
    // (upstream replaced the file: with SHA-1 alone that would pass).
    let p = toolchain(&server, &sha1(GCC));
    p.strata().arg("fetch").assert().success();
    let lock = p.read("strata.lock");
    let tampered = lock.replace(&sha256(GCC), &"e".repeat(64));
    p.write("strata.lock", &tampered);
    std::fs::remove_file(p.path("packages/gcc.tar.xz")).unwrap();
    p.strata()
        .arg("fetch")
        .assert()
        .code(1)
        .stderr(contains("sha1 matches the pin, but its sha256"))
        .stderr(contains("strata.lock"));
    assert_eq!(
        p.read("strata.lock"),
        tampered,
        "a refused fetch changed the lock"
    );
    // Only when asked.
    p.strata()
        .args(["fetch", "--update-lock"])
        .assert()
        .success();
    assert_eq!(p.read("strata.lock"), lock);
}

#[test]
fn a_changed_pin_rebuilds_and_why_names_the_download() {
    let server = Server::start();
    let p = toolchain(&server, &sha1(GCC));
    assert_eq!(p.build_json(&[]).0, 0);
    let gcc2 = b"pretend gcc 2\n";
    server.route("/gcc.tar.xz", Reply::Ok(gcc2.to_vec()));
    p.write(
        "modules/tc.toml",
        p.read("modules/tc.toml").replace(&sha1(GCC), &sha1(gcc2)),
    );
    let why = p.strata().args(["why", "tc"]).output().unwrap();
    let why = String::from_utf8_lossy(&why.stdout);
    assert!(why.contains("download sources/gcc.tar.xz"), "{why}");
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["tc"]);
    assert!(p.read("install/packages.txt").starts_with("pretend gcc 2"));
    let lock = p.read("strata.lock");
    assert!(
        lock.contains(&format!("pin = \"sha1:{}\"", sha1(gcc2))),
        "{lock}"
    );
    assert!(
        !lock.contains(&sha1(GCC)),
        "the old pin's entry stayed: {lock}"
    );
}

#[test]
fn offline_builds_read_local_mirrors_and_never_the_network() {
    let server = Server::start();
    let p = toolchain(&server, &sha1(GCC));
    // A Heads-style packages dir serves as a mirror as it is.
    for (name, bytes) in [("gcc.tar.xz", GCC), ("binutils.tar.xz", BINUTILS)] {
        p.write(&format!("heads-packages/{name}"), bytes);
    }
    let tb = tarball(
        "tc-1.0",
        &[("Makefile", "all:\n\ttest -f sources/gcc.tar.xz\n")],
    );
    p.write("heads-packages/tc-1.0.tar.gz", &tb);
    p.write(
        "strata.toml",
        format!(
            "{}\n[mirrors]\nafter = [\"file://heads-packages/\"]\n",
            p.read("strata.toml")
        ),
    );
    p.strata().args(["--offline", "build"]).assert().success();
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(p.read("strata.lock").contains("gcc.tar.xz"));
    // Without the mirror, offline names the missing package.
    let q = toolchain(&server, &sha1(GCC));
    q.strata()
        .args(["--offline", "build"])
        .assert()
        .code(1)
        .stderr(contains("--offline forbids downloading it"));
    assert!(server.requests().is_empty());
}

#[test]
fn bad_download_entries_are_manifest_errors() {
    let server = Server::start();
    for (entry, want) in [
        ("url = \"http://h/x.tar\"\n", "has no pin"),
        (
            "url = \"http://h/x.tar\"\nsha1 = \"abc\"\n",
            "download pin `abc`",
        ),
        (
            &*format!(
                "url = \"http://h/x.tar\"\nsha256 = \"{}\"\ndest = \"../up\"\n",
                "a".repeat(64)
            ),
            "of the download x.tar",
        ),
        (
            &*format!(
                "url = \"http://h/x.tar\"\nsha256 = \"{}\"\ndest = \"a/.git\"\n",
                "a".repeat(64)
            ),
            "of the download x.tar",
        ),
        (
            &*format!(
                "url = \"http://h/tc-1.0.tar.gz\"\nsha256 = \"{}\"\n",
                "a".repeat(64)
            ),
            "the file `tc-1.0.tar.gz`",
        ),
        (
            "url = \"http://h/{file}\"\nsha1-from = \"sum/*.cksum\"\nsha1 = \"abc\"\n",
            "has sha1-from and another pin",
        ),
        (
            "url = \"http://h/x.tar\"\nvars-from = \"Makefile\"\nsha1 = \"abc\"\n",
            "vars-from without sha1-from",
        ),
        (
            "url = \"http://h/{file}\"\nsha1-from = \"../sum/*.cksum\"\n",
            "sha1-from `../sum/*.cksum` is not a path inside the source tree",
        ),
        (
            "url = \"{SITE}/{file}\"\nsha1-from = \"sum/*.cksum\"\nvars-from = \"/etc/passwd\"\n",
            "vars-from `/etc/passwd` is not a path inside the source tree",
        ),
    ] {
        let p = toolchain(&server, &sha1(GCC));
        p.write(
            "modules/tc.toml",
            format!("{}\n[[download]]\n{entry}", p.read("modules/tc.toml")),
        );
        p.strata()
            .arg("plan")
            .assert()
            .code(2)
            .stderr(contains("modules/tc.toml"))
            .stderr(contains(want));
    }
}

/// A musl-cross-make-shaped source: its Makefile names the versions, its
/// `hashes/` holds upstream's SHA-1 of each tarball it fetches.
fn source_pinned(server: &Server, gcc: &[u8]) -> TestProject {
    let p = TestProject::with_default(&["mcm"]);
    let tb = tarball(
        "mcm-1.0",
        &[
            (
                "Makefile",
                "GNU_SITE = https://ftp.gnu.org.invalid/gnu\nGCC_SITE = $(GNU_SITE)/gcc\nGCC_VER = 9.4.0\n\
                 all:\n\ttest -f sources/gcc-$(GCC_VER).tar.xz\n",
            ),
            (
                "hashes/gcc-9.4.0.tar.xz.sha1",
                &format!("{}  gcc-9.4.0.tar.xz\n", sha1(gcc)),
            ),
            (
                "hashes/gcc-9.2.0.tar.xz.sha1",
                &format!("{}  gcc-9.2.0.tar.xz\n", "0".repeat(40)),
            ),
        ],
    );
    server.route("/mcm-1.0.tar.gz", Reply::Ok(tb.clone()));
    server.route(
        "/gnu/gcc/gcc-9.4.0/gcc-9.4.0.tar.xz",
        Reply::Ok(GCC.to_vec()),
    );
    p.module(
        "mcm",
        &server.url("/mcm-1.0.tar.gz"),
        &tb,
        &format!(
            r#"build = "make"
install = "cp sources/gcc-9.4.0.tar.xz $STRATA_DESTDIR/"

[[download]]
sha1-from = "hashes/gcc-{{GCC_VER}}.tar.*.sha1"
vars-from = "Makefile"
urls = ["{{GCC_SITE}}/gcc-{{GCC_VER}}/{{file}}", "{}/gcc/gcc-{{GCC_VER}}/{{file}}"]
dest = "sources"
"#,
            server.url("/gnu")
        ),
    );
    p
}

#[test]
fn a_sha1_from_download_takes_its_pin_and_name_from_the_source() {
    let server = Server::start();
    let p = source_pinned(&server, GCC);
    // Before anything is fetched the list names the pattern.
    let o = p.strata().args(["fetch", "--dry-run"]).output().unwrap();
    assert!(o.status.success());
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(
        list.contains("download mcm                      sources/<hashes/gcc-{GCC_VER}.tar.*.sha1> sha1-from:hashes/gcc-{GCC_VER}.tar.*.sha1 vars-from:Makefile"),
        "{list}"
    );
    assert!(
        list.contains(
            "2 files: 1 module tarball, 0 git sources, 1 extra download (1 pinned by a file"
        ),
        "{list}"
    );
    assert!(server.requests().is_empty(), "the dry run downloaded");
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["mcm"]);
    assert_eq!(p.read("install/gcc-9.4.0.tar.xz").as_bytes(), GCC);
    let lock = p.read("strata.lock");
    let entry = format!(
        "[[package]]\nmodule = \"mcm\"\nfile = \"gcc-9.4.0.tar.xz\"\npin = \"sha1:{}\"\nsha256 = \"{}\"\n",
        sha1(GCC),
        sha256(GCC)
    );
    assert!(lock.contains(&entry), "{entry} not in\n{lock}");
    // Once the source is here, the list is resolved: file, sha1, URL.
    let o = p
        .strata()
        .args(["--json", "fetch", "--dry-run"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let d = &v["files"][1];
    assert_eq!(d["file"], "sources/gcc-9.4.0.tar.xz", "{v}");
    assert_eq!(d["pin"], format!("sha1:{}", sha1(GCC)));
    assert_eq!(
        d["urls"][0],
        "https://ftp.gnu.org.invalid/gnu/gcc/gcc-9.4.0/gcc-9.4.0.tar.xz"
    );
    assert_eq!(d["from_source"], "hashes/gcc-{GCC_VER}.tar.*.sha1");
    assert_eq!(v["counts"]["download"], 1);
}

#[test]
fn a_sha1_from_download_that_does_not_match_its_source_pin_is_refused() {
    let server = Server::start();
    // The source pins other bytes than the server serves.
    let p = source_pinned(&server, b"what upstream released\n");
    p.strata()
        .arg("build")
        .assert()
        .failure()
        .stderr(contains("sha1 mismatch"));
    // A pattern matching nothing names the module and the pattern.
    let t = p
        .read("modules/mcm.toml")
        .replace("gcc-{GCC_VER}", "gcc-{GCC_VER}-nope");
    p.write("modules/mcm.toml", t);
    p.strata()
        .args(["fetch"])
        .assert()
        .failure()
        .stderr(contains("module mcm: no file of its source matches sha1-from `hashes/gcc-9.4.0-nope.tar.*.sha1`"));
}

#[test]
fn a_sha1_from_download_reads_the_archive_of_a_git_source() {
    // coreboot 25.09 and the Dasharo forks are git sources: the sum file is
    // read out of the archive strata writes for the commit.
    let p = TestProject::with_default(&["cb"]);
    let repo = p.path("repo");
    std::fs::create_dir_all(repo.join("util/crossgcc/sum")).unwrap();
    let pkg = b"pretend gmp tarball\n";
    p.write("mirror/gmp-6.3.0.tar.xz", pkg);
    p.write(
        "repo/util/crossgcc/sum/gmp-6.3.0.tar.xz.cksum",
        format!("{}  tarballs/gmp-6.3.0.tar.xz\n", sha1(pkg)),
    );
    p.write(
        "repo/Makefile",
        "all:\n\tcmp util/crossgcc/tarballs/gmp-6.3.0.tar.xz ../../mirror/gmp-6.3.0.tar.xz\n",
    );
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git")
            .current_dir(&repo)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "x"]);
    let rev = git(&["rev-parse", "HEAD"]);
    p.write(
        "modules/cb.toml",
        format!(
            "name = \"cb\"\nversion = \"1\"\ngit = \"file://repo\"\nrev = \"{rev}\"\nbuild = \"make\"\n\n\
             [[download]]\nsha1-from = \"util/crossgcc/sum/gmp-*.cksum\"\n\
             url = \"file://mirror/{{file}}\"\ndest = \"util/crossgcc/tarballs\"\n"
        ),
    );
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["cb"]);
    let o = p.strata().args(["fetch", "--dry-run"]).output().unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(
        list.contains(&format!(
            "util/crossgcc/tarballs/gmp-6.3.0.tar.xz sha1:{}",
            sha1(pkg)
        )),
        "{list}"
    );
    assert!(
        list.contains("0 module tarballs, 1 git source, 1 extra download"),
        "{list}"
    );
}
