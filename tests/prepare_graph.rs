//! `strata prepare` (fetch, verify, unpack, patch, stop) and
//! `strata graph --json` (the schema of docs/json.md), through the binary.

mod common;

use common::*;
use predicates::str::contains;

/// a ← b (patched) ← c, where c is in target `default` and `other` holds a only.
fn project() -> TestProject {
    let p = TestProject::new(
        "[project]\nname = \"t\"\n[target.default]\nmodules = [\"c\"]\n[target.other]\nmodules = [\"a\"]\n",
    );
    p.local_module(
        "a",
        &[("a.txt", "A\n")],
        "host = true\ninstall = \"mkdir -p $STRATA_DESTDIR && cp a.txt $STRATA_DESTDIR/\"",
    );
    p.local_module(
        "b",
        &[("b.txt", "B\n")],
        "depends = [\"a\"]\nbuild = \"cat $STRATA_HOST/a.txt b.txt > b.out\"\ninstall = \"mkdir -p $STRATA_DESTDIR && cp b.out $STRATA_DESTDIR/\"",
    );
    p.local_module("c", &[("c.txt", "C\n")], "depends = [\"b\"]");
    p.write(
        "patches/b-1.0/0001-b.patch",
        "--- a/b.txt\n+++ b/b.txt\n@@ -1 +1,2 @@\n B\n+patched\n",
    );
    p
}

#[test]
fn prepare_unpacks_and_patches_then_stops() {
    let p = project();
    let out = p.strata().args(["prepare", "b"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = p.path("build/b-1.0");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        tree.display().to_string()
    );
    assert_eq!(p.read("build/b-1.0/b.txt"), "B\npatched\n");
    // Stopped after patch: nothing configured, built or installed, and the
    // dependency was not prepared.
    let state = p.path("build/.strata/modules/b-1.0/stamps");
    assert!(state.join("patch.stamp").is_file());
    assert!(!state.join("configure.stamp").exists());
    assert!(!tree.join("b.out").exists());
    assert!(!p.path("build/a-1.0").exists());
    // A prepared tree is left alone (work in progress survives).
    p.write("build/b-1.0/new.c", "wip\n");
    p.strata().args(["prepare", "b"]).assert().success();
    assert_eq!(p.read("build/b-1.0/new.c"), "wip\n");
    // The build goes on from there.
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["a", "b", "c"]);
    assert_eq!(p.read("build/b-1.0/b.out"), "A\nB\npatched\n");

    // Without names: every module of the default target, in order.
    let q = project();
    let out = q.strata().arg("prepare").output().unwrap();
    assert!(out.status.success());
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let want: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|m| q.path(&format!("build/{m}-1.0")).display().to_string())
        .collect();
    assert_eq!(lines, want);

    // A patch that does not apply fails, naming the module.
    let r = project();
    r.write(
        "patches/b-1.0/0001-b.patch",
        "--- a/b.txt\n+++ b/b.txt\n@@ -1 +1,2 @@\n X\n+patched\n",
    );
    r.strata()
        .args(["prepare", "b"])
        .assert()
        .code(1)
        .stderr(contains("module b"));
}

#[test]
fn graph_json_lists_the_target_closure() {
    let p = project();
    p.write(
        "modules/g.toml",
        format!(
            "name = \"g\"\nversion = \"2\"\ngit = \"https://example.org/g.git\"\nrev = \"{}\"\n",
            "ab".repeat(20)
        ),
    );
    p.write(
        "strata.toml",
        "[project]\nname = \"t\"\n[target.default]\nmodules = [\"c\", \"g\"]\n[target.other]\nmodules = [\"a\"]\n",
    );
    let out = p.strata().args(["graph", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One document on one line, as `cargo metadata` prints it.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["target"], "default");
    let mods = v["modules"].as_array().unwrap();
    let names: Vec<&str> = mods.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4);
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("a") < pos("b") && pos("b") < pos("c"), "{names:?}");
    let m = |n: &str| &mods[pos(n)];
    assert_eq!(m("a")["host"], true);
    assert_eq!(m("b")["host"], false);
    assert_eq!(m("b")["version"], "1.0");
    assert!(m("b")["variant"].is_null());
    assert_eq!(m("b")["depends"], serde_json::json!(["a"]));
    assert_eq!(
        m("b")["patches"],
        serde_json::json!(["patches/b-1.0/0001-b.patch"])
    );
    let tarball = tarball("b-1.0", &[("b.txt", "B\n")]);
    assert_eq!(m("b")["source"]["sha256"], sha256(&tarball));
    let urls = m("b")["source"]["urls"].as_array().unwrap();
    assert_eq!(urls.len(), 1);
    assert!(urls[0].as_str().unwrap().ends_with("/mirror/b-1.0.tar.gz"));
    assert_eq!(m("g")["source"]["git"], "https://example.org/g.git");
    assert_eq!(m("g")["source"]["rev"], "ab".repeat(20));
    assert!(m("g")["source"].get("urls").is_none());
    assert!(m("g")["depends"].as_array().unwrap().is_empty());

    // Another target: only its closure.
    let out = p
        .strata()
        .args(["graph", "--json", "other"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["target"], "other");
    assert_eq!(v["modules"].as_array().unwrap().len(), 1);
    // DOT stays the default.
    p.strata()
        .arg("graph")
        .assert()
        .success()
        .stdout(contains("digraph"));
}
