//! End-to-end tests of the commands' sandbox (issue 19): no network, and
//! nothing writable outside the instance's build dir, destdir, HOME and
//! TMPDIR. CI runs as root, where the sandbox is always available; the
//! non-root path (a user namespace) is exercised as `nobody` when possible.

mod common;

use common::*;
use predicates::str::contains;
use std::path::{Path, PathBuf};

/// A project building one module `m` (from the file:// mirror) with the
/// given `[settings]` lines and module file lines.
fn project(settings: &str, module: &str) -> TestProject {
    let p = TestProject::new(&format!(
        "[project]\nname = \"t\"\n\n[settings]\n{settings}\n\n[target.default]\nmodules = [\"m\"]\n"
    ));
    p.local_module("m", &[("src.txt", "source\n")], module);
    p
}

/// `strata build` with no `STRATA_SANDBOX` from the caller's environment.
fn build(p: &TestProject) -> assert_cmd::assert::Assert {
    p.strata()
        .env_remove("STRATA_SANDBOX")
        .arg("build")
        .assert()
}

/// A path under /usr/bin no other test run uses.
fn unique_outside(dir: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Path::new(dir).join(format!("strata-sandbox-{}-{nanos}", std::process::id()))
}

/// A build command that fetches from the test server with bash's /dev/tcp:
/// in the sandbox, 127.0.0.1 is the namespace's own loopback, where
/// nothing listens.
fn download(srv: &Server) -> String {
    format!(
        "build = \"exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET /extra HTTP/1.0\\\\r\\\\n\\\\r\\\\n' >&3 && cat <&3 > got\"",
        port = srv.port
    )
}

#[test]
fn a_build_step_that_downloads_fails_in_the_sandbox_naming_module_step_and_the_fix() {
    let srv = Server::start();
    srv.route("/extra", Reply::Ok(b"extra file\n".to_vec()));
    let p = project("", &download(&srv));
    build(&p)
        .failure()
        .stderr(contains("module m: build failed"))
        .stderr(contains("Connection refused"))
        .stderr(contains("commands run without the network (sandbox)"))
        .stderr(contains("docs/manifest.md#the-sandbox"));
    assert!(srv.requests().is_empty(), "{:?}", srv.requests());
}

#[test]
fn sandbox_off_lets_the_same_step_download() {
    let srv = Server::start();
    srv.route("/extra", Reply::Ok(b"extra file\n".to_vec()));
    let p = project("sandbox = \"off\"", &download(&srv));
    build(&p).success();
    assert!(p.read("build/m-1.0/got").contains("extra file"));
    assert_eq!(srv.requests(), ["/extra"]);
    // The environment variable overrides the setting.
    let q = project("sandbox = \"off\"", &download(&srv));
    q.strata()
        .env("STRATA_SANDBOX", "require")
        .arg("build")
        .assert()
        .failure()
        .stderr(contains("commands run without the network"));
}

#[test]
fn an_install_writing_usr_bin_fails_and_leaves_it_alone() {
    let target = unique_outside("/usr/bin");
    let p = project("", &format!("install = \"echo x > {}\"", target.display()));
    let out = build(&p);
    let exists = target.exists();
    let _ = std::fs::remove_file(&target);
    assert!(!exists, "{} was written", target.display());
    out.failure()
        .stderr(contains("module m: install failed"))
        .stderr(contains("Read-only file system"))
        .stderr(contains(
            "only the build dir, $STRATA_DESTDIR, $HOME and $TMPDIR are writable",
        ));
}

#[test]
fn a_step_writing_beside_its_home_fails_and_nothing_outside_changes() {
    let p = project(
        "",
        "configure = \"echo x > $HOME/../x\"\nbuild = \"echo x > $STRATA_BUILD_DIR/../y\"",
    );
    let before = snapshot(&p.path("mirror"));
    build(&p)
        .failure()
        .stderr(contains("module m: configure failed"));
    assert!(!p.path("build/.strata/modules/m-1.0/x").exists());
    assert_eq!(snapshot(&p.path("mirror")), before);
    // The project root (the parent of build/) is read-only too.
    let p = project("", "configure = \"echo x > $STRATA_BUILD_DIR/../../z\"");
    build(&p).failure();
    assert!(!p.path("z").exists());
}

#[test]
fn the_build_dir_destdir_home_and_tmpdir_stay_writable_and_loopback_is_up() {
    let p = project(
        "",
        r#"configure = "echo c > configured && echo h > $HOME/h && mktemp > tmpfile && test \"$TMPDIR\" != /tmp && touch $TMPDIR/t"
build = "echo b > built && echo 1 > /dev/null && cat /proc/self/net/dev | sed 1,2d | cut -d: -f1 | tr -d ' ' > ifaces && (exec 3<>/dev/tcp/127.0.0.1/1 || true) 2> loopback"
install = "cp configured built $STRATA_DESTDIR/ && cp $HOME/h $STRATA_DESTDIR/""#,
    );
    build(&p).success();
    assert_eq!(p.read("install/built"), "b\n");
    assert_eq!(p.read("install/h"), "h\n");
    let tmp = p.read("build/m-1.0/tmpfile");
    assert!(
        tmp.starts_with(&p.root().canonicalize().unwrap().display().to_string()),
        "{tmp}"
    );
    // A new network namespace: loopback only, up (a refused connection,
    // not an unreachable network).
    assert_eq!(p.read("build/m-1.0/ifaces"), "lo\n");
    assert!(
        p.read("build/m-1.0/loopback")
            .contains("Connection refused"),
        "{}",
        p.read("build/m-1.0/loopback")
    );
}

#[test]
fn a_variant_reads_but_never_writes_the_shared_source() {
    let p = TestProject::new(
        "[project]\nname = \"t\"\n\n[target.a]\nmodules = [\"m\"]\nparams = { P = \"a\" }\n",
    );
    p.local_module(
        "m",
        &[("src.txt", "source\n")],
        "params = [\"P\"]\nbuild = \"cat $STRATA_SOURCE_DIR/src.txt > out && echo x >> $STRATA_SOURCE_DIR/src.txt\"",
    );
    p.strata()
        .env_remove("STRATA_SANDBOX")
        .args(["build", "a"])
        .assert()
        .failure()
        .stderr(contains("Read-only file system"));
    assert_eq!(p.read("build/m-1.0/src.txt"), "source\n");
}

#[test]
fn the_example_builds_with_the_sandbox_required() {
    let p = example_project();
    p.strata()
        .env("STRATA_SANDBOX", "require")
        .arg("build")
        .assert()
        .success();
}

/// In a user namespace without a mapping for strata's user (`unshare -U`),
/// no further namespace can be made: `auto` warns once and runs the
/// commands anyway, `require` fails naming the module and step.
#[test]
fn without_namespaces_auto_warns_once_and_require_fails() {
    if std::process::Command::new("unshare")
        .args(["-U", "true"])
        .status()
        .map_or(true, |s| !s.success())
    {
        eprintln!("skipped: `unshare -U` is not available here");
        return;
    }
    let p =
        TestProject::new("[project]\nname = \"t\"\n\n[target.default]\nmodules = [\"a\", \"b\"]\n");
    for m in ["a", "b"] {
        p.local_module(m, &[("f", "f\n")], "build = \"echo ok > out\"");
    }
    let run = |mode: &str| {
        std::process::Command::new("unshare")
            .arg("-U")
            .arg(assert_cmd::cargo::cargo_bin("strata"))
            .arg("-C")
            .arg(p.root())
            .args(["-j1", "build"])
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
            .env("STRATA_SANDBOX", mode)
            .output()
            .unwrap()
    };
    let out = run("require");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("module a: build failed: cannot run the command in the sandbox: unshare("),
        "{err}"
    );
    let out = run("auto");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("commands run without the sandbox").count(),
        1,
        "{err}"
    );
}

/// The non-root path: strata run as `nobody` makes a user namespace.
#[test]
fn as_an_ordinary_user_the_sandbox_is_a_user_namespace() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = Path::new("/usr/bin/setpriv");
    if !root || !setpriv.exists() {
        eprintln!("skipped: needs root (to become nobody) and setpriv");
        return;
    }
    let p = project(
        "sandbox = \"require\"",
        "build = \"echo ok > out && id -u > uid\"\ninstall = \"cp out uid $STRATA_DESTDIR/ && (echo x > $HOME/../x || true)\"",
    );
    std::fs::set_permissions(p.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let st = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(p.root())
        .status()
        .unwrap();
    assert!(st.success());
    let out = std::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(assert_cmd::cargo::cargo_bin("strata"))
        .arg("-C")
        .arg(p.root())
        .arg("build")
        .env("NO_COLOR", "1")
        .env("HOME", p.root())
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .env_remove("STRATA_SANDBOX")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("unshare(CLONE_NEWUSER") {
        eprintln!("skipped: user namespaces are not allowed here: {err}");
        return;
    }
    assert!(out.status.success(), "{err}");
    assert_eq!(
        p.read("install/uid"),
        "65534\n",
        "the user, not root inside"
    );
    assert!(!p.path("build/.strata/modules/m-1.0/x").exists());
}
