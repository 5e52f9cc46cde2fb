//! `--json` on every command that reports something: each prints JSON
//! Lines (`{"schema": 1, "type", "data"}`) and nothing else on stdout, and
//! the event types are the ones docs/json.md documents. (`graph --json` and
//! a `ci run --dry-run --json` print one document; `completions` and `man`
//! print a script and a page, which are their data.)

mod common;
use common::TestProject;

fn project() -> TestProject {
    let p = TestProject::new(
        "[project]\nname = \"t\"\ncache-version = \"1\"\n\n[target.default]\nmodules = [\"b\"]\n\n[layer.base]\nmodules = [\"a\"]\n",
    );
    p.local_module(
        "a",
        &[("a.txt", "A\n")],
        "build = \"echo building a; cp a.txt a.out\"\ninstall = \"mkdir -p $STRATA_DESTDIR && cp a.out $STRATA_DESTDIR/a\"",
    );
    p.local_module(
        "b",
        &[("b.txt", "B\n")],
        "depends = [\"a\"]\ninstall = \"mkdir -p $STRATA_DESTDIR && cp b.txt $STRATA_DESTDIR/b\"",
    );
    p
}

/// Runs `strata --json ARGS`: every stdout line parsed; (exit code, events).
fn json_lines(p: &TestProject, args: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let out = p.strata().arg("--json").args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.trim().is_empty(), "{args:?} printed nothing");
    let events = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: `{l}`: {e}"));
            assert_eq!(v["schema"], 1, "{args:?}: {l}");
            assert!(
                v["type"].is_string() && v["data"].is_object(),
                "{args:?}: {l}"
            );
            v
        })
        .collect();
    (out.status.code().unwrap_or(-1), events)
}

fn types(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[test]
fn every_command_prints_json_lines_with_json() {
    let p = project();
    let keys = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let keys_dir = keys.path().to_str().unwrap();
    let init_dir = other.path().to_str().unwrap();
    // (arguments, expected exit code, an event type it must print)
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["fetch"], 0, "step-finished"),
        (vec!["build"], 0, "summary"),
        (vec!["plan"], 0, "plan-module"),
        (vec!["why", "a"], 0, "why"),
        (vec!["log", "a", "build"], 0, "log"),
        (vec!["build", "--check"], 0, "check-summary"),
        (vec!["cache", "ls"], 0, "cache-summary"),
        (vec!["cache", "stats"], 0, "cache-stats"),
        (vec!["cache", "verify"], 0, "cache-verified"),
        (vec!["cache", "gc", "--max-size", "1G"], 0, "cache-gc"),
        (vec!["cache", "keygen", "k", "--dir", keys_dir], 0, "keygen"),
        (vec!["ci", "key", "base"], 0, "ci-key"),
        (vec!["ci", "render", "v1-{{ arch }}"], 0, "ci-render"),
        (vec!["ci", "prune-store", "default"], 0, "ci-prune-store"),
        (vec!["clean", "a"], 0, "cleaned"),
        (vec!["prepare", "a"], 0, "step-finished"),
        // Errors: ours, and clap's.
        (vec!["why", "nope"], 2, "error"),
        (vec!["cache", "gc"], 2, "error"),
        (vec!["buidl"], 2, "error"),
    ];
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"),
    )
    .unwrap();
    for (args, code, want) in cases {
        let (got, events) = json_lines(&p, &args);
        assert_eq!(got, code, "{args:?}: {events:?}");
        assert!(types(&events).contains(&want), "{args:?}: {events:?}");
        if want == "log" {
            // The log event carries the log itself.
            let text = events[0]["data"]["text"].as_str().unwrap_or_default();
            assert!(text.contains("building a"), "{events:?}");
        }
        for t in types(&events) {
            assert!(
                docs.contains(&format!("`{t}`")),
                "{args:?}: event type `{t}` is not in docs/json.md"
            );
        }
    }
    // `init` makes a project in another directory.
    let out = assert_cmd::Command::cargo_bin("strata")
        .unwrap()
        .args(["--json", "-C", init_dir, "init"])
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "init");
    assert!(docs.contains("`init`"));
    // A usage error from the command line names what was wrong.
    let (_, events) = json_lines(&p, &["buidl"]);
    assert_eq!(events[0]["data"]["kind"], "usage");
    assert!(
        events[0]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("buidl"),
        "{events:?}"
    );
}
