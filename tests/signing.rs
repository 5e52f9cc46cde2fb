//! Signed artifacts: keygen, signing on push, and refusal of unsigned or
//! wrongly signed remote artifacts when trusted-keys is set. The remote here
//! is a file:// share (a shared mount); the S3 transport has its own tests.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn keygen(dir: &Path, name: &str) -> String {
    let out = assert_cmd::Command::cargo_bin("strata")
        .unwrap()
        .args(["cache", "keygen", name, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        std::fs::read_to_string(dir.join(format!("{name}.public")))
            .unwrap()
            .trim(),
        public
    );
    let mode = std::fs::metadata(dir.join(format!("{name}.secret")))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the secret key is private");
    public
}

/// A two-module project whose [cache] section is `cache`.
fn project(cache: &str) -> TestProject {
    let p = TestProject::new(&format!(
        "[project]\nname = \"t\"\n[cache]\n{cache}\n[target.default]\nmodules = [\"b\"]\n"
    ));
    p.local_module(
        "a",
        &[("a.txt", "A\n")],
        "install = \"mkdir -p $STRATA_DESTDIR/out && cp a.txt $STRATA_DESTDIR/out/a\"",
    );
    p.local_module(
        "b",
        &[("b.txt", "B\n")],
        "depends = [\"a\"]\ninstall = \"mkdir -p $STRATA_DESTDIR/out && cat $STRATA_SYSROOT/out/a b.txt > $STRATA_DESTDIR/out/b\"",
    );
    p
}

fn build(p: &TestProject) -> (String, Vec<String>, Vec<String>) {
    let out = p.strata().args(["--json", "build"]).output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{events}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = TestProject::modules_with(&events, "module-built");
    let restored = TestProject::modules_with(&events, "module-restored");
    (events, built, restored)
}

#[test]
fn signed_artifacts_are_trusted_and_unsigned_or_foreign_ones_refused() {
    let keys = tempfile::tempdir().unwrap();
    let share = tempfile::tempdir().unwrap();
    let ci = keygen(keys.path(), "ci");
    let other = keygen(keys.path(), "other");
    let remote = format!("remote = \"file://{}\"", share.path().display());

    // The CI writer signs what it pushes.
    let writer = project(&format!(
        "{remote}\nsign-key = \"{}\"",
        keys.path().join("ci.secret").display()
    ));
    assert_eq!(build(&writer).1, ["a", "b"]);

    // A reader trusting the CI key substitutes everything.
    let reader = project(&format!(
        "{remote}\npush = false\ntrusted-keys = [\"{ci}\"]"
    ));
    let (events, built, restored) = build(&reader);
    assert!(built.is_empty(), "{events}");
    assert_eq!(restored, ["a", "b"]);
    assert_eq!(reader.read("install/out/b"), "A\nB\n");

    // A reader trusting another key refuses them, with a warning, and builds.
    let wary = project(&format!(
        "{remote}\npush = false\ntrusted-keys = [\"{other}\"]"
    ));
    let (events, built, _) = build(&wary);
    assert_eq!(built, ["a", "b"]);
    assert!(
        events.contains("refused: no signature from a trusted key is valid"),
        "{events}"
    );
    assert_eq!(wary.read("install/out/b"), "A\nB\n");

    // Unsigned artifacts in a share are refused when trusted-keys is set.
    let share2 = tempfile::tempdir().unwrap();
    let remote2 = format!("remote = \"file://{}\"", share2.path().display());
    assert_eq!(build(&project(&remote2)).1, ["a", "b"]);
    let strict = project(&format!(
        "{remote2}\npush = false\ntrusted-keys = [\"{ci}\"]"
    ));
    let (events, built, _) = build(&strict);
    assert_eq!(built, ["a", "b"]);
    assert!(events.contains("refused: it is unsigned"), "{events}");
}

#[test]
fn a_bad_trusted_key_is_a_manifest_error() {
    let p = project("trusted-keys = [\"ci:not-base64!\"]");
    p.strata()
        .arg("build")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bad trusted key"));
}
