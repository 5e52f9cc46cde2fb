//! End-to-end tests of the build engine, through the `strata` binary, on real
//! tarballs served over HTTP on 127.0.0.1 or from a file:// mirror.

mod common;

use common::*;
use predicates::str::contains;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

const LIB: &str =
    r#"install = "mkdir -p $STRATA_DESTDIR/share && cp lib.txt $STRATA_DESTDIR/share/lib.txt""#;

/// a → b → c (c depends on b depends on a), and d alone. Each module's
/// output includes its dependency's output, read from the sysroot.
fn chain_project() -> TestProject {
    let p = TestProject::with_default(&["c", "d"]);
    p.local_module(
        "a",
        &[("a.txt", "A\n")],
        r#"install = "mkdir -p $STRATA_DESTDIR/out && cp a.txt $STRATA_DESTDIR/out/a""#,
    );
    p.local_module(
        "b",
        &[("b.txt", "B\n")],
        "depends = [\"a\"]\nbuild = \"cat $STRATA_SYSROOT/out/a b.txt > b.out\"\ninstall = \"mkdir -p $STRATA_DESTDIR/out && cp b.out $STRATA_DESTDIR/out/b\"",
    );
    p.local_module(
        "c",
        &[("c.txt", "C\n")],
        "depends = [\"b\"]\nbuild = \"cat $STRATA_SYSROOT/out/b c.txt > c.out\"\ninstall = \"mkdir -p $STRATA_DESTDIR/out && cp c.out $STRATA_DESTDIR/out/c\"",
    );
    p.local_module(
        "d",
        &[("d.txt", "D\n")],
        r#"install = "mkdir -p $STRATA_DESTDIR/out && cp d.txt $STRATA_DESTDIR/out/d""#,
    );
    p.write(
        "patches/b-1.0/0001-b.patch",
        "--- a/b.txt\n+++ b/b.txt\n@@ -1 +1,2 @@\n B\n+patched\n",
    );
    p
}

#[test]
fn chain_builds_in_order_with_sysroots_and_install_tree() {
    let p = chain_project();
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["a", "b", "c", "d"]);
    assert_eq!(p.read("install/out/c"), "A\nB\npatched\nC\n");
    assert_eq!(p.read("install/out/d"), "D\n");
    // Logs and stamps live in the build dir.
    assert!(
        p.path("build/.strata/modules/c-1.0/stamps/install.stamp")
            .is_file()
    );
}

#[test]
fn changing_one_patch_rebuilds_exactly_that_module_and_its_dependents() {
    let p = chain_project();
    assert_eq!(p.build_json(&[]).0, 0);
    p.write(
        "patches/b-1.0/0001-b.patch",
        "--- a/b.txt\n+++ b/b.txt\n@@ -1 +1,2 @@\n B\n+patched again\n",
    );
    p.strata()
        .arg("why")
        .arg("b")
        .assert()
        .success()
        .stdout(contains("patch patches/b-1.0/0001-b.patch changed"));
    p.strata()
        .arg("why")
        .arg("c")
        .assert()
        .success()
        .stdout(contains(
            "dependency b changed: it is stale and builds first",
        ));
    p.strata()
        .arg("why")
        .arg("a")
        .assert()
        .success()
        .stdout(contains("is fresh"));
    p.strata()
        .arg("plan")
        .assert()
        .success()
        .stdout(contains("b 1.0: will run from unpack"))
        .stdout(contains("a 1.0: fresh"));
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["b", "c"]);
    assert_eq!(p.read("install/out/c"), "A\nB\npatched again\nC\n");
}

#[test]
fn cache_version_change_is_explained_and_rebuilds_everything() {
    let p = chain_project();
    assert_eq!(p.build_json(&[]).0, 0);
    let toml = p
        .read("strata.toml")
        .replace("cache-version = \"1\"", "cache-version = \"2\"");
    p.write("strata.toml", toml);
    p.strata()
        .arg("why")
        .arg("a")
        .assert()
        .success()
        .stdout(contains("cache-version 1 → 2"));
    assert_eq!(p.build_json(&[]).1, ["a", "b", "c", "d"]);
}

#[test]
fn touching_every_file_rebuilds_nothing() {
    let p = chain_project();
    assert_eq!(p.build_json(&[]).0, 0);
    let later = filetime::FileTime::from_unix_time(2_000_000_000, 0);
    for entry in walk(p.root()) {
        let _ = filetime::set_symlink_file_times(&entry, later, later);
    }
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(built.is_empty(), "rebuilt {built:?}");
}

#[test]
fn copying_the_project_elsewhere_rebuilds_nothing() {
    let p = chain_project();
    assert_eq!(p.build_json(&[]).0, 0);
    let copy = tempfile::tempdir().unwrap();
    // cp -r without -p: new mtimes everywhere, as a CI cache restore gives.
    let st = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", p.root().display()))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(st.success());
    let q = TestProject { tmp: copy };
    let (code, built, err) = q.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(built.is_empty(), "rebuilt {built:?}");
    q.strata()
        .arg("plan")
        .assert()
        .success()
        .stdout(contains("0 of 4 modules stale"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn failing_command_prints_log_tail_and_leaves_no_stamp() {
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("f", "x")],
        "build = \"echo compiling; echo 'fatal: broken' >&2; exit 3\"",
    );
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("module m: build failed"))
        .stderr(contains("fatal: broken"))
        .stderr(contains("build/.strata/modules/m-1.0/logs/build.log"));
    assert!(
        !p.path("build/.strata/modules/m-1.0/stamps/build.stamp")
            .exists()
    );
    assert!(
        p.path("build/.strata/modules/m-1.0/stamps/configure.stamp")
            .exists()
    );
}

#[test]
fn a_failure_stops_dependents_and_keep_going_builds_the_rest() {
    let p = TestProject::with_default(&["app", "other"]);
    p.local_module("bad", &[("f", "x")], "build = \"exit 1\"");
    p.local_module("app", &[("f", "x")], "depends = [\"bad\"]");
    p.local_module("other", &[("f", "x")], LIB.replace("lib.txt", "f").as_str());
    let (code, built, err) = p.build_json(&["--keep-going", "-j", "1"]);
    assert_eq!(code, 1);
    assert_eq!(built, ["other"], "{err}");
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("app: dependency bad failed"));
}

#[test]
fn undeclared_dependencies_are_not_in_the_sysroot() {
    let p = TestProject::with_default(&["app"]);
    p.local_module("lib", &[("lib.txt", "L")], LIB);
    p.local_module(
        "app",
        &[("f", "x")],
        "build = \"cat $STRATA_SYSROOT/share/lib.txt\"",
    );
    // app does not declare lib: the build must fail even though lib exists.
    p.strata().arg("build").arg("lib").assert().success();
    p.strata()
        .arg("build")
        .arg("app")
        .assert()
        .code(1)
        .stderr(contains("No such file"));
}

#[test]
fn two_modules_installing_the_same_path_is_an_error_naming_both() {
    let p = TestProject::with_default(&["x", "y"]);
    p.local_module("x", &[("lib.txt", "1")], LIB);
    p.local_module("y", &[("lib.txt", "2")], LIB);
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("modules x and y both install `share/lib.txt`"));
}

#[test]
fn bad_manifests_exit_2_with_clear_errors() {
    let p = TestProject::with_default(&["a"]);
    p.local_module("a", &[("f", "x")], "depends = [\"b\"]");
    p.local_module("b", &[("f", "x")], "depends = [\"c\"]");
    p.local_module("c", &[("f", "x")], "depends = [\"a\"]");
    p.strata()
        .arg("build")
        .assert()
        .code(2)
        .stderr(contains("dependency cycle: a → b → c → a"));

    let p = TestProject::with_default(&["a"]);
    p.local_module("libgreet", &[("f", "x")], "");
    p.local_module("a", &[("f", "x")], "depends = [\"libgret\"]");
    p.strata()
        .arg("build")
        .assert()
        .code(2)
        .stderr(contains("unknown module `libgret`"))
        .stderr(contains("did you mean `libgreet`?"))
        .stderr(contains("modules/a.toml:5"));

    let p = TestProject::with_default(&["a"]);
    p.local_module("a", &[("f", "x")], "dependz = []");
    p.strata()
        .arg("build")
        .assert()
        .code(2)
        .stderr(contains("unknown key `dependz`"))
        .stderr(contains("did you mean `depends`?"))
        .stderr(contains("modules/a.toml"));

    let p = TestProject::with_default(&["a"]);
    p.write(
        "modules/a.toml",
        "name = \"a\"\nversion = \"1\"\nurl = \"file:///x.tar.gz\"\n",
    );
    p.strata()
        .arg("build")
        .assert()
        .code(2)
        .stderr(contains("module `a` has no sha256"));

    let p = TestProject::with_default(&["a"]);
    p.write(
        "modules/a.toml",
        "name = \"a\"\nversion = \"1\"\nurl = \"file:///x.tar.gz\"\nsha256 = \"xyz\"\n",
    );
    p.strata()
        .arg("build")
        .assert()
        .code(2)
        .stderr(contains("64 hexadecimal digits"));

    let p = TestProject::with_default(&["a"]);
    p.local_module("a", &[("f", "x")], "");
    p.write("modules/a2.toml", p.read("modules/a.toml"));
    p.strata()
        .arg("build")
        .assert()
        .code(2)
        .stderr(contains("duplicate module `a`"));

    let p = TestProject::with_default(&["a"]);
    p.local_module("a", &[("f", "x")], "");
    p.strata()
        .arg("build")
        .arg("nope")
        .assert()
        .code(2)
        .stderr(contains("neither a target nor a module"));
    p.strata().arg("frobnicate").assert().code(2);
}

#[test]
fn graph_prints_dot() {
    let p = chain_project();
    p.strata()
        .arg("graph")
        .assert()
        .success()
        .stdout(contains("\"c\" -> \"b\""))
        .stdout(contains("digraph"));
}

#[test]
fn clean_removes_a_module_and_the_next_build_restores_it() {
    let p = chain_project();
    assert_eq!(p.build_json(&[]).0, 0);
    p.strata().arg("clean").arg("d").assert().success();
    assert!(!p.path("build/d-1.0").exists());
    // The artifact cache restores it instead of building it again.
    let out = p.strata().args(["--json", "build"]).output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(TestProject::modules_with(&events, "module-restored"), ["d"]);
    assert!(TestProject::modules_with(&events, "module-built").is_empty());
    assert_eq!(p.read("install/out/d"), "D\n");
    // Without the cache it is built.
    p.strata().arg("clean").arg("d").assert().success();
    assert_eq!(p.build_json(&["--no-cache"]).1, ["d"]);
    p.strata().arg("clean").arg("--all").assert().success();
    assert!(!p.path("install").exists());
}

#[test]
fn concurrent_builds_on_one_project_both_end_correctly() {
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("lib.txt", "x\n")],
        &format!("build = \"sleep 1\"\n{LIB}"),
    );
    let spawn = || {
        p.raw()
            .args(["--json", "build"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let built = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .matches("module-built")
            .count()
    };
    assert_eq!(
        built(&a) + built(&b),
        1,
        "the module was built exactly once"
    );
    let waited = String::from_utf8_lossy(&a.stderr).contains("Blocking")
        || String::from_utf8_lossy(&b.stderr).contains("Blocking");
    assert!(waited, "one of the two runs waited for the lock");
    assert_eq!(p.read("install/share/lib.txt"), "x\n");
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn kill_9_during_fetch_then_rerun_completes() {
    let srv = Server::start();
    let body: String = (0..40_000).map(|i| format!("line {i}\n")).collect();
    let tb = tarball("m-1.0", &[("f", &body)]);
    srv.route(
        "/m.tar.gz",
        Reply::Slow(tb.clone(), 1024, Duration::from_millis(20)),
    );
    let p = TestProject::with_default(&["m"]);
    p.module("m", &srv.url("/m.tar.gz"), &tb, "");
    let mut child = p
        .raw()
        .args(["-q", "build"])
        .env("STRATA_FETCH_TIMEOUT", "30")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(".part file", || {
        std::fs::metadata(p.path("packages/m.tar.gz.part")).is_ok_and(|m| m.len() > 0)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !p.path("packages/m.tar.gz").exists(),
        "a partial download was published"
    );
    srv.route("/m.tar.gz", Reply::Ok(tb));
    p.strata().arg("build").assert().success();
    assert_eq!(p.read("build/m-1.0/f"), body);
}

#[test]
fn kill_9_during_unpack_then_rerun_completes() {
    let files: Vec<(String, String)> = (0..20_000)
        .map(|i| (format!("d{}/f{i}", i % 100), format!("{i}\n")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = TestProject::with_default(&["m"]);
    p.local_module("m", &refs, "");
    p.strata().arg("fetch").assert().success();
    let mut child = p
        .raw()
        .args(["-q", "build"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the temporary unpack dir", || {
        std::fs::read_dir(p.path("build")).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".m-1.0.tmp-"))
        })
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !p.path("build/.strata/modules/m-1.0/stamps/unpack.stamp")
            .exists()
    );
    p.strata().arg("build").assert().success();
    let snap = snapshot(&p.path("build/m-1.0"));
    let sources = snap.keys().filter(|k| !k.starts_with(".strata")).count();
    assert_eq!(sources, 20_000);
    assert_eq!(snap["d7/f1207"], b"1207\n");
    let left: Vec<_> = std::fs::read_dir(p.path("build"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "leftovers {left:?}");
}

#[test]
fn the_shipped_example_builds_and_runs() {
    let p = example_project();
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["banner", "hello", "libgreet", "rootfs"]);
    let out = Command::new(p.path("install/bin/hello")).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from libgreet\n"
    );
    let out = Command::new(p.path("install/bin/banner")).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "== banner 2.1-strata ==\n"
    );
    assert!(p.path("install/images/rootfs.tar").is_file());
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(built.is_empty(), "{built:?}");
}

/// After Ctrl-C the running module says `Interrupted` (once, not `Skipped
/// …: interrupted`), one not started says so, and the last line says the run
/// was interrupted, not `Finished`.
#[test]
fn ctrl_c_reports_running_modules_as_interrupted_once() {
    let p = TestProject::with_default(&["n"]);
    p.local_module(
        "m",
        &[("lib.txt", "x\n")],
        &format!("build = \"touch started; sleep 30\"\n{LIB}"),
    );
    p.local_module("n", &[("lib.txt", "y\n")], "depends = [\"m\"]");
    let child = p
        .raw()
        .arg("build")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the build command to start", || {
        p.path("build/m-1.0/started").exists()
    });
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("Interrupted m\n").count(), 1, "{err}");
    assert!(!err.contains("Skipped m"), "{err}");
    assert!(
        err.contains("Skipped n: not started: the run was interrupted"),
        "{err}"
    );
    let last = err.lines().last().unwrap_or_default().trim_start();
    assert!(
        last.starts_with(
            "Interrupted 0 built, 0 restored, 0 fresh, 0 failed, 1 interrupted, 1 skipped"
        ),
        "{err}"
    );
}

#[test]
fn ctrl_c_stops_the_build_leaves_no_stamp_and_the_rerun_completes() {
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("lib.txt", "x\n")],
        &format!("build = \"touch started; sleep 30; touch finished\"\n{LIB}"),
    );
    let mut child = p
        .raw()
        .args(["-q", "build"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the build command to start", || {
        p.path("build/m-1.0/started").exists()
    });
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child
        .wait_timeout(Duration::from_secs(20))
        .unwrap()
        .expect("strata stopped after Ctrl-C");
    assert_eq!(status.code(), Some(130));
    assert!(
        !p.path("build/m-1.0/finished").exists(),
        "the command kept running"
    );
    assert!(
        !p.path("build/.strata/modules/m-1.0/stamps/build.stamp")
            .exists()
    );
    p.write(
        "modules/m.toml",
        p.read("modules/m.toml").replace("sleep 30; ", ""),
    );
    p.strata().arg("build").assert().success();
    assert_eq!(p.read("install/share/lib.txt"), "x\n");
}
