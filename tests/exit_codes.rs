//! The exit-code table in README.md, enforced: every usage, manifest or
//! configuration error exits 2; every failed build, fetch or check exits 1.

mod common;
use common::TestProject;

fn code(p: &TestProject, args: &[&str]) -> (i32, String) {
    let out = p.strata().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok_project() -> TestProject {
    let p = TestProject::with_default(&["a"]);
    p.local_module("a", &[("f", "x")], "build = \"true\"");
    p
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    let p = ok_project();
    for args in [
        vec!["--no-such-flag", "build"],
        vec!["build", "no-such-module"],
        vec!["why", "no-such-module"],
        vec!["cache", "gc"],
        vec!["cache", "keygen", "../x"],
        vec!["cache", "push"],
        vec!["cache", "gc", "--remote", "--max-age", "1d"],
    ] {
        let (c, err) = code(&p, &args);
        assert_eq!(c, 2, "strata {args:?} exited {c}: {err}");
        assert!(!err.trim().is_empty(), "strata {args:?} said nothing");
    }
}

#[test]
fn a_bad_manifest_exits_2() {
    let p = ok_project();
    p.write("modules/b.toml", "name = \"b\"\nversoin = \"1\"\n");
    let (c, err) = code(&p, &["build"]);
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("modules/b.toml"), "{err}");
}

#[test]
fn failed_builds_and_fetches_exit_1() {
    let p = TestProject::with_default(&["a"]);
    p.local_module("a", &[("f", "x")], "build = \"false\"");
    let (c, err) = code(&p, &["build"]);
    assert_eq!(c, 1, "{err}");

    let p = TestProject::with_default(&["a"]);
    p.write(
        "modules/a.toml",
        format!(
            "name = \"a\"\nversion = \"1\"\nurl = \"file://missing.tar.gz\"\nsha256 = \"{}\"\n",
            "0".repeat(64)
        ),
    );
    let (c, err) = code(&p, &["fetch"]);
    assert_eq!(c, 1, "{err}");
    let (c, err) = code(&p, &["build"]);
    assert_eq!(c, 1, "{err}");
}

#[test]
fn success_exits_0() {
    let p = ok_project();
    assert_eq!(code(&p, &["build"]).0, 0);
    assert_eq!(code(&p, &["plan"]).0, 0);
    assert_eq!(code(&p, &["--help"]).0, 0);
}
