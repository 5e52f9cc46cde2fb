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
        vec!["ci", "key", "nosuch"],
        vec!["build", "--check", "--timings"],
        vec!["--no-cache", "build", "--check"],
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

/// A manifest error has the layout of every other error (`error: …`, then
/// `  hint: …`), with the file, line and source snippet in between; not
/// miette's `strata::manifest` / `× …` report.
#[test]
fn a_manifest_error_renders_like_other_errors() {
    let p = ok_project();
    p.write("modules/b.toml", "name = \"b\"\nversoin = \"1\"\n");
    let (c, err) = code(&p, &["build"]);
    assert_eq!(c, 2, "{err}");
    assert_eq!(
        err,
        "error: unknown key `versoin`\n \
         --> modules/b.toml:2:1\n  \
         |\n\
         2 | versoin = \"1\"\n  \
         | ^^^^^^^ here\n  \
         hint: did you mean `version`? (see docs/manifest.md)\n"
    );

    // A usage error (exit 2) and a failure (exit 1) start the same way.
    let (c, err) = code(&ok_project(), &["build", "no-such-module"]);
    assert_eq!(c, 2, "{err}");
    assert!(err.starts_with("error: "), "{err}");
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
    // It ends with a summary line, as a successful fetch does.
    assert!(
        err.trim_end()
            .ends_with("Failed 0 packages verified, 1 failed: a"),
        "{err}"
    );
    let (c, err) = code(&p, &["build"]);
    assert_eq!(c, 1, "{err}");

    // A check that finds a difference, or has nothing to compare with.
    let p = TestProject::with_default(&["a"]);
    p.local_module(
        "a",
        &[("f", "x")],
        "install = \"date +%s%N > $STRATA_DESTDIR/t\"",
    );
    let (c, err) = code(&p, &["build", "--check"]);
    assert_eq!(c, 1, "not cached yet: {err}");
    assert_eq!(code(&p, &["build"]).0, 0);
    let (c, err) = code(&p, &["build", "--check"]);
    assert_eq!(c, 1, "not reproducible: {err}");
}

#[test]
fn success_exits_0() {
    let p = ok_project();
    assert_eq!(code(&p, &["build"]).0, 0);
    assert_eq!(code(&p, &["plan"]).0, 0);
    assert_eq!(code(&p, &["build", "--check"]).0, 0);
    assert_eq!(code(&p, &["--help"]).0, 0);
}

/// With `--json`, errors are JSON events too: every line parses.
#[test]
fn errors_are_json_events_with_json() {
    let p = ok_project();
    p.write("modules/b.toml", "name = \"b\"\nversoin = \"1\"\n");
    let out = p.strata().args(["--json", "build"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let err = events
        .iter()
        .find(|e| e["type"] == "error")
        .expect("error event");
    assert_eq!(err["schema"], 1);
    assert_eq!(err["data"]["kind"], "manifest");
    assert_eq!(err["data"]["file"], "modules/b.toml");
    assert_eq!(err["data"]["line"], 2);
    assert_eq!(err["data"]["exit_code"], 2);

    let p = ok_project();
    let out = p.strata().args(["--json", "cache", "gc"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["data"]["kind"], "usage");
}

/// A command that fails silently still gets a useful failure summary: the
/// log path and a line saying it printed nothing.
#[test]
fn a_silent_failing_command_says_it_printed_nothing() {
    let p = TestProject::with_default(&["a"]);
    p.local_module("a", &[("f", "x")], "build = \"false\"");
    let (c, err) = code(&p, &["build"]);
    assert_eq!(c, 1);
    assert!(err.contains("build.log"), "{err}");
    assert!(err.contains("(the command printed nothing)"), "{err}");
}

/// `ci run` on a config it cannot use, or asked for a workflow or job the
/// config does not have, is a usage error like a bad manifest.
#[test]
fn ci_config_and_selection_errors_exit_2() {
    let p = ok_project();
    p.write(
        ".circleci/config.yml",
        "version: 2.1\njobs:\n  build:\n    docker: [{image: x}]\n    steps: [{run: 'true'}]\nworkflows:\n  main:\n    jobs: [build]\n",
    );
    for args in [
        vec!["ci", "run", "--workflow", "nope", "--dry-run"],
        vec!["ci", "run", "--job", "nope", "--dry-run"],
        vec!["ci", "run", "--config", "missing.yml", "--dry-run"],
    ] {
        let (c, err) = code(&p, &args);
        assert_eq!(c, 2, "strata {args:?} exited {c}: {err}");
    }
    p.write(".circleci/config.yml", "version: 2.1\njobs: [unclosed\n");
    let (c, err) = code(&p, &["ci", "run", "--dry-run"]);
    assert_eq!(c, 2, "{err}");
    // The same config, valid, runs.
    p.write(
        ".circleci/config.yml",
        "version: 2.1\njobs:\n  build:\n    docker: [{image: x}]\n    steps: [{run: 'true'}]\nworkflows:\n  main:\n    jobs: [build]\n",
    );
    assert_eq!(code(&p, &["ci", "run", "--dry-run"]).0, 0);
}

/// `strata log` prints what a step's command wrote, for success and failure.
#[test]
fn log_prints_a_step_s_output() {
    let p = TestProject::with_default(&["a"]);
    p.local_module(
        "a",
        &[("f", "x")],
        "build = \"echo hello from the build\"\ninstall = \"echo installing; false\"",
    );
    assert_eq!(code(&p, &["build"]).0, 1);
    let out = p.strata().args(["log", "a", "build"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the build\n"
    );
    let out = p.strata().args(["log", "a"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("hello from the build") && text.contains("installing"),
        "{text}"
    );
    assert_eq!(code(&p, &["log", "a", "fetch"]).0, 2);
    // A step the module has no command for: said so, not "not run yet".
    let (c, err) = code(&p, &["log", "a", "configure"]);
    assert_eq!(c, 2, "{err}");
    assert!(
        err.contains("module a has no configure step: modules/a.toml sets no `configure` command"),
        "{err}"
    );
    assert!(
        err.contains("hint: the steps it runs: build, install"),
        "{err}"
    );
    assert!(!err.contains("has not run"), "{err}");
    assert_eq!(code(&p, &["log", "nosuch"]).0, 2);
}

/// `clean --json` reports what it removed as JSON Lines.
#[test]
fn clean_reports_json_events() {
    let p = ok_project();
    assert_eq!(code(&p, &["build"]).0, 0);
    let out = p.strata().args(["--json", "clean", "a"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["type"], "cleaned");
    assert_eq!(v["data"]["module"], "a");
    assert!(!p.path("build/a-1.0").exists());
}
