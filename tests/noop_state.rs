//! The no-op state file (`build/.strata/noop-state`): a build in which
//! nothing changed is answered from it, and every kind of input change is
//! still seen through it (and rebuilds what it should).

mod common;

use common::*;
use std::time::Duration;

/// What `-v build` says when the state file answered.
const ANSWERED: &str = "Unchanged";

/// Runs `strata --json build ARGS`: (exit code, modules built or
/// restored, without their variant ids, stderr).
fn build(p: &TestProject, args: &[&str]) -> (i32, Vec<String>, String) {
    let out = p
        .strata()
        .args(["--json", "build"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut done = TestProject::modules_with(&stdout, "module-built");
    done.extend(TestProject::modules_with(&stdout, "module-restored"));
    let mut done: Vec<String> = done
        .into_iter()
        .map(|m| m.split('@').next().unwrap().to_string())
        .collect();
    done.sort();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), done, stderr)
}

/// `-v build` (human output): (exit code, whether the state file answered).
fn answered(p: &TestProject, args: &[&str]) -> (i32, bool, String) {
    let out = p
        .strata()
        .args(["-v", "build"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.code().unwrap_or(-1),
        stderr.contains(ANSWERED),
        stderr,
    )
}

/// Builds until the state file answers a no-op: the build that changed
/// something, then (after the filesystem clock moved on) the full no-op
/// that records the state, then one it answers.
fn prime(p: &TestProject, args: &[&str]) {
    let (code, _, err) = build(p, args);
    assert_eq!(code, 0, "{err}");
    std::thread::sleep(Duration::from_millis(150));
    let (code, used, err) = answered(p, args);
    assert_eq!(code, 0, "{err}");
    assert!(!used, "nothing recorded yet, yet answered: {err}");
    assert!(p.path("build/.strata/noop-state").is_file());
    let (code, used, err) = answered(p, args);
    assert_eq!(code, 0, "{err}");
    assert!(used, "the state file did not answer a no-op: {err}");
}

/// a (a patch dir, a file param, a dir param) ← b; pass-env V.
fn project() -> TestProject {
    let p = TestProject::new(
        "[project]\nname = \"t\"\n[settings]\npass-env = [\"NOOP_V\"]\n\
         [target.default]\nmodules = [\"b\"]\n\
         params = { CFG = { file = \"cfg/board.cfg\" }, TREE = { dir = \"cfg/tree\" } }\n",
    );
    p.local_module(
        "a",
        &[("a.c", "one\n")],
        "params = [\"CFG\", \"TREE\"]\n\
         install = \"mkdir -p $STRATA_DESTDIR && cp $STRATA_SOURCE_DIR/a.c $STRATA_DESTDIR/\"",
    );
    p.local_module(
        "b",
        &[("b.c", "b\n")],
        "depends = [\"a\"]\nconfigure = \"echo 1\"\n\
         install = \"mkdir -p $STRATA_DESTDIR && cp $STRATA_SOURCE_DIR/b.c $STRATA_DESTDIR/\"",
    );
    p.write("patches/a-1.0/0001.patch", patch("one", "two"));
    p.write("cfg/board.cfg", "X=1\n");
    p.write("cfg/tree/sub/f", "f\n");
    p
}

fn patch(from: &str, to: &str) -> String {
    format!("--- a/a.c\n+++ b/a.c\n@@ -1 +1 @@\n-{from}\n+{to}\n")
}

/// Each change, made after a primed no-op: what it must rebuild.
#[test]
fn every_input_change_is_seen_through_the_state_file() {
    let p = project();
    let both = vec!["a".to_string(), "b".to_string()];
    let b_only = vec!["b".to_string()];
    type Change = Box<dyn Fn(&TestProject)>;
    let changes: Vec<(&str, Change, &Vec<String>)> = vec![
        (
            "a module file",
            Box::new(|p| {
                let t = p.read("modules/b.toml").replace("echo 1", "echo 22");
                p.write("modules/b.toml", t)
            }),
            &b_only,
        ),
        (
            "a patch",
            Box::new(|p| p.write("patches/a-1.0/0001.patch", patch("one", "three"))),
            &both,
        ),
        (
            "a patch added",
            Box::new(|p| {
                p.write(
                    "patches/a-1.0/0002.patch",
                    "--- a/a.c\n+++ b/a.c\n@@ -1 +1 @@\n-three\n+four\n",
                )
            }),
            &both,
        ),
        (
            "a file param",
            Box::new(|p| p.write("cfg/board.cfg", "X=2\n")),
            &both,
        ),
        (
            "a dir param (a file deep inside)",
            Box::new(|p| p.write("cfg/tree/sub/f", "g\n")),
            &both,
        ),
        (
            "a dir param (a file added)",
            Box::new(|p| p.write("cfg/tree/new", "")),
            &both,
        ),
        (
            "strata.local.toml (an override)",
            Box::new(|p| {
                p.write("over/a.c", "local\n");
                p.write("strata.local.toml", "[override.a]\nsource = \"over\"\n");
            }),
            &both,
        ),
        (
            "an override's content",
            Box::new(|p| p.write("over/a.c", "local 2\n")),
            &both,
        ),
        (
            "a build dir deleted by hand",
            Box::new(|p| {
                // Every variant's (the changes above made several).
                for e in std::fs::read_dir(p.path("build")).unwrap().flatten() {
                    if e.file_name().to_string_lossy().starts_with("b-1.0@") {
                        std::fs::remove_dir_all(e.path()).unwrap();
                    }
                }
            }),
            &b_only,
        ),
    ];
    prime(&p, &[]);
    for (what, change, expected) in &changes {
        change(&p);
        let (code, done, err) = build(&p, &[]);
        assert_eq!(code, 0, "{what}: {err}");
        assert_eq!(&done, *expected, "{what}");
        prime(&p, &[]);
    }
}

#[test]
fn a_pass_env_value_is_compared_as_a_value() {
    let p = project();
    let with = |v: Option<&str>| {
        let mut c = p.strata();
        c.args(["-v", "build"]);
        match v {
            Some(v) => c.env("NOOP_V", v),
            None => c.env_remove("NOOP_V"),
        };
        let out = c.output().unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (err.contains(ANSWERED), err.contains("Built"))
    };
    assert_eq!(with(None), (false, true));
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(with(None), (false, false), "records");
    assert_eq!(with(None), (true, false), "answers");
    // Set (even empty) differs from unset: both rebuild everything.
    assert_eq!(with(Some("")), (false, true));
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(with(Some("")), (false, false));
    assert_eq!(with(Some("")), (true, false));
    assert_eq!(with(Some("x")), (false, true));
}

#[test]
fn a_same_size_edit_with_the_old_mtime_put_back_is_seen_by_its_ctime() {
    let p = project();
    prime(&p, &[]);
    let path = p.path("modules/b.toml");
    let old = filetime::FileTime::from_last_modification_time(&std::fs::metadata(&path).unwrap());
    let text = p.read("modules/b.toml").replace("echo 1", "echo 2");
    p.write("modules/b.toml", text);
    filetime::set_file_mtime(&path, old).unwrap();
    let (code, done, err) = build(&p, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(done, ["b"]);
}

#[test]
fn a_touch_without_a_change_stays_a_noop_and_is_recorded_again() {
    let p = project();
    prime(&p, &[]);
    for f in [
        "modules/a.toml",
        "patches/a-1.0/0001.patch",
        "cfg/board.cfg",
    ] {
        filetime::set_file_mtime(p.path(f), filetime::FileTime::now()).unwrap();
    }
    let (code, used, err) = answered(&p, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!used, "a touched file was trusted: {err}");
    assert!(!err.contains("Built"), "{err}");
    std::thread::sleep(Duration::from_millis(150));
    assert!(!answered(&p, &[]).1, "records the new signatures");
    assert!(answered(&p, &[]).1, "then answers again");
}

#[test]
fn a_damaged_or_foreign_state_file_is_ignored_and_rewritten() {
    let p = project();
    prime(&p, &[]);
    let state = p.path("build/.strata/noop-state");
    let good = std::fs::read_to_string(&state).unwrap();
    let damaged = [
        good[..good.len() / 2].to_string(),
        good.replace("fresh", "frisk"),
        good.replacen("strata-noop-state 1", "strata-noop-state 99", 1),
        String::from("\0\0garbage"),
        String::new(),
    ];
    for bad in damaged {
        std::fs::write(&state, &bad).unwrap();
        let (code, used, err) = answered(&p, &[]);
        assert_eq!(code, 0, "{err}");
        assert!(!used, "a damaged state answered: {bad:?}");
        assert!(!err.contains("Built"), "{err}");
        assert!(err.contains("2 fresh"), "{err}");
        // Repaired by that full no-op (its entries are long settled).
        assert!(answered(&p, &[]).1, "not repaired after {bad:?}");
    }
}

#[test]
fn other_names_or_a_broken_module_file_take_the_full_path() {
    let p = project();
    p.local_module("c", &[("c.c", "c\n")], "");
    prime(&p, &[]);
    // Another request is not this state's answer.
    let (code, used, err) = answered(&p, &["c"]);
    assert_eq!((code, used), (0, false), "{err}");
    assert!(err.contains("Built"), "{err}");
    // c's build merged install/ for c alone: the state of `default` no
    // longer holds, and its full no-op merges install/ again.
    assert!(!answered(&p, &[]).1);
    std::thread::sleep(Duration::from_millis(150));
    assert!(!answered(&p, &[]).1, "records");
    assert!(answered(&p, &[]).1);
    // A module outside the target, now invalid: the load fails as before.
    p.write("modules/c.toml", "name = \"c\"\nversion = \n");
    p.strata()
        .arg("build")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("modules/c.toml"));
    // The state's check took the project lock; the failed load wrote
    // nothing under it, so it is released clean (no sweep next time).
    assert_eq!(p.read("build/.strata/lock"), "released clean\n");
}

#[test]
fn the_json_events_of_an_answered_noop_are_those_of_a_full_one() {
    let p = project();
    prime(&p, &[]);
    let events = |p: &TestProject, args: &[&str]| {
        let out = p
            .strata()
            .args(["--json", "build"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                // Durations differ from run to run.
                if let Some(d) = v.get_mut("data").and_then(|d| d.as_object_mut()) {
                    d.remove("seconds");
                }
                v.to_string()
            })
            .collect::<Vec<_>>()
    };
    let answered_events = events(&p, &[]);
    // --no-cache is no other request: the same answer, without the cache.
    assert!(answered(&p, &["--no-cache"]).1);
    assert_eq!(events(&p, &["--no-cache"]), answered_events);
    std::fs::remove_file(p.path("build/.strata/noop-state")).unwrap();
    let full_events = events(&p, &[]);
    assert_eq!(answered_events, full_events);
    assert!(answered_events.iter().any(|e| e.contains("module-fresh")));
}
