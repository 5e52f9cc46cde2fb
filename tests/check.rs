//! `strata build --check`: rebuild in a scratch dir, compare bit for bit
//! with the cached artifact, touch nothing real.

mod common;
use common::{TestProject, snapshot};

fn example() -> TestProject {
    common::example_project()
}

/// (exit code, stdout, stderr) of `strata ARGS`.
fn run(p: &TestProject, args: &[&str]) -> (i32, String, String) {
    let out = p.strata().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The build dir without `.strata/cache-stats.json` (what the cache did in
/// the last run, a check's reads too), `.strata/lock` (whether its last
/// holder released it cleanly) and `.strata/noop-state` (what a no-op build
/// read, recorded once its inputs settled): none is build state.
fn build_state(p: &TestProject) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut s = snapshot(&p.path("build"));
    s.remove(".strata/cache-stats.json");
    s.remove(".strata/lock");
    s.remove(".strata/noop-state");
    s
}

/// The cache without the store's lock file (whether it was swept since its
/// last writer): the entries, their trees and metadata.
fn cache_state(p: &TestProject) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut s = snapshot(&p.path(".xdg-cache"));
    s.remove("strata/lock");
    s
}

/// Every stdout line as JSON (each must parse).
fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A module whose install writes the time (text) and random bytes (binary).
fn unreproducible() -> TestProject {
    let p = TestProject::with_default(&["stamp"]);
    p.local_module(
        "stamp",
        &[("README", "same every time\n")],
        r#"install = '''
mkdir -p $STRATA_DESTDIR/share
cp README $STRATA_DESTDIR/share/README
{ echo header; echo "built at $(date +%s%N)"; echo footer; } > $STRATA_DESTDIR/share/stamp.txt
head -c 64 /dev/urandom > $STRATA_DESTDIR/share/random.bin
'''"#,
    );
    p
}

#[test]
fn the_shipped_example_is_reproducible() {
    let p = example();
    let (code, _, err) = run(&p, &["build"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&p, &["build", "--check"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("4 of 4 modules reproducible"), "{err}");
    // The check read the cache: `cache stats` reports its reads, not the
    // zeros of a build that had nothing to do.
    let (code, stats, stats_err) = run(&p, &["cache", "stats"]);
    assert_eq!(code, 0, "{stats_err}");
    assert!(!stats.contains(": 0 local hits,"), "{stats}");
    for m in ["banner", "hello", "libgreet", "rootfs"] {
        assert!(err.contains(&format!("Reproducible {m}\n")), "{m}: {err}");
    }
    assert!(!p.path("build/.strata/check").exists(), "scratch dir left");
}

#[test]
fn a_time_and_random_bytes_make_check_fail_naming_the_files_and_touching_nothing() {
    let p = unreproducible();
    let (code, _, err) = run(&p, &["build"]);
    assert_eq!(code, 0, "{err}");
    let cache_before = cache_state(&p);
    let build_before = build_state(&p);
    let install_before = snapshot(&p.path("install"));
    assert!(!cache_before.is_empty());

    let (code, _, err) = run(&p, &["build", "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("stamp: 2 paths differ from the cached artifact"),
        "{err}"
    );
    assert!(
        err.contains("0 of 1 module reproducible; not reproducible: stamp"),
        "{err}"
    );
    // The text file: a unified diff of the changed line.
    assert!(
        err.contains(".strata/destdir/share/stamp.txt (content):"),
        "{err}"
    );
    assert!(
        err.contains("\n         header\n        -built at "),
        "{err}"
    );
    assert!(err.contains("\n        +built at "), "{err}");
    // The binary file: the first differing offset and bytes of each side.
    assert!(
        err.contains(".strata/destdir/share/random.bin (content): binary files differ (both 64 bytes); first difference at byte "),
        "{err}"
    );
    assert!(err.contains(" | rebuilt "), "{err}");
    // The unchanged file is not named.
    assert!(!err.contains("share/README"), "{err}");

    // Nothing real changed: the cache (same archive, same BLAKE3, no new
    // entry), the build dir with its stamps, the installed files.
    assert_eq!(cache_state(&p), cache_before);
    assert_eq!(build_state(&p), build_before);
    assert_eq!(snapshot(&p.path("install")), install_before);
    assert!(!p.path("build/.strata/check").exists(), "scratch dir left");
    // And a following build has nothing to do.
    let (code, out, err) = run(&p, &["--json", "build"]);
    assert_eq!(code, 0, "{err}");
    let ev = events(&out);
    assert!(
        ev.iter()
            .all(|e| e["type"] != "step-started" && e["type"] != "module-restored"),
        "{out}"
    );
    assert!(ev.iter().any(|e| e["type"] == "module-fresh"), "{out}");
}

#[test]
fn check_module_checks_only_that_module() {
    let p = example();
    let (code, _, err) = run(&p, &["build"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&p, &["--json", "build", "--check", "hello"]);
    assert_eq!(code, 0, "{err}");
    let checked: Vec<String> = events(&out)
        .iter()
        .filter(|e| e["type"] == "check")
        .map(|e| e["data"]["module"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(checked, ["hello"]);
    let (code, _, err) = run(&p, &["build", "--check", "libgreet"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 of 1 module reproducible"), "{err}");
    assert!(!err.contains("Reproducible hello"), "{err}");
}

#[test]
fn json_output_parses_line_by_line_and_carries_the_result() {
    let p = unreproducible();
    assert_eq!(run(&p, &["build"]).0, 0);
    let (code, out, err) = run(&p, &["--json", "build", "--check"]);
    assert_eq!(code, 1, "{err}");
    let ev = events(&out);
    assert!(ev.iter().all(|e| e["schema"] == 1), "{out}");
    let check: Vec<&serde_json::Value> = ev.iter().filter(|e| e["type"] == "check").collect();
    assert_eq!(check.len(), 1, "{out}");
    let data = &check[0]["data"];
    assert_eq!(data["module"], "stamp");
    assert_eq!(data["reproducible"], false);
    let diffs = data["differences"].as_array().unwrap();
    let paths: Vec<(&str, &str)> = diffs
        .iter()
        .map(|d| (d["path"].as_str().unwrap(), d["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        paths,
        [
            (".strata/destdir/share/random.bin", "content"),
            (".strata/destdir/share/stamp.txt", "content"),
        ]
    );
    assert!(
        diffs[1]["detail"]
            .as_str()
            .unwrap()
            .contains("\n-built at "),
        "{out}"
    );
    let summary: Vec<&serde_json::Value> =
        ev.iter().filter(|e| e["type"] == "check-summary").collect();
    assert_eq!(summary.len(), 1, "{out}");
    assert_eq!(summary[0]["data"]["checked"], 1);
    assert_eq!(summary[0]["data"]["reproducible"], 0);
    assert_eq!(summary[0]["data"]["not_reproducible"][0], "stamp");
}

#[test]
fn a_module_not_in_the_cache_is_reported_not_built() {
    let p = unreproducible();
    assert_eq!(run(&p, &["--no-cache", "build"]).0, 0);
    let build_before = build_state(&p);
    let (code, out, err) = run(&p, &["--json", "build", "--check"]);
    assert_eq!(code, 1, "{err}");
    let ev = events(&out);
    let check = ev
        .iter()
        .find(|e| e["type"] == "check")
        .expect("check event");
    let error = check["data"]["error"].as_str().unwrap();
    assert!(
        error.contains("module stamp: not in the cache")
            && error.contains("run `strata build` first"),
        "{error}"
    );
    assert!(ev.iter().all(|e| e["type"] != "step-started"), "{out}");
    assert_eq!(build_state(&p), build_before);
    // Nothing was saved either.
    assert!(
        snapshot(&p.path(".xdg-cache"))
            .keys()
            .all(|k| !k.ends_with(".tar.zst"))
    );
}

#[test]
fn a_rebuild_that_fails_is_reported_and_its_scratch_dir_removed() {
    let p = TestProject::with_default(&["picky"]);
    p.local_module(
        "picky",
        &[("f", "x\n")],
        r#"build = 'case "$(pwd)" in */.strata/check/*) echo "no scratch builds"; exit 3;; esac'"#,
    );
    assert_eq!(run(&p, &["build"]).0, 0);
    let (code, _, err) = run(&p, &["build", "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("not checked: module picky: build failed"),
        "{err}"
    );
    assert!(err.contains("not checked: picky"), "{err}");
    assert!(!p.path("build/.strata/check").exists(), "scratch dir left");
}

#[test]
fn a_killed_check_s_scratch_dir_is_swept_by_the_next_run() {
    let p = unreproducible();
    p.write("build/.strata/check/424242/build/stamp-1.0/half", "x");
    assert_eq!(run(&p, &["build"]).0, 0);
    assert!(
        !p.path("build/.strata/check").exists(),
        "leftover not swept"
    );
}

#[test]
fn board_variants_are_checked_each_with_its_params_and_host_tool() {
    let p = TestProject::new(
        r#"[project]
name = "boards"

[target.x230]
modules = ["rom"]
params = { CONFIG = { file = "config/x230.config" } }

[target.t430]
modules = ["rom"]
params = { CONFIG = { file = "config/t430.config" } }
"#,
    );
    p.write("config/x230.config", "BOARD=x230\n");
    p.write("config/t430.config", "BOARD=t430\n");
    p.local_module(
        "tool",
        &[("tool.sh", "#!/bin/sh\necho \"tool: $(cat \"$1\")\"\n")],
        "host = true\ninstall = \"mkdir -p $STRATA_DESTDIR/bin && cp tool.sh $STRATA_DESTDIR/bin/tool && chmod +x $STRATA_DESTDIR/bin/tool\"",
    );
    p.local_module(
        "rom",
        &[("src.txt", "rom source\n")],
        r#"depends = ["tool"]
params = ["CONFIG"]
configure = "cp $STRATA_PARAM_CONFIG .config"
build = "cat $STRATA_SOURCE_DIR/src.txt > rom.bin && tool .config >> rom.bin"
install = "mkdir -p $STRATA_DESTDIR && cp rom.bin $STRATA_DESTDIR/rom.bin""#,
    );
    p.write(
        "patches/rom-1.0/0001-src.patch",
        "--- a/src.txt\n+++ b/src.txt\n@@ -1 +1,2 @@\n rom source\n+patched once\n",
    );
    let (code, _, err) = run(&p, &["build", "x230", "t430"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&p, &["--json", "build", "--check", "x230", "t430"]);
    assert_eq!(code, 0, "{err}\n{out}");
    let ev = events(&out);
    let mut checked: Vec<String> = ev
        .iter()
        .filter(|e| e["type"] == "check" && e["data"]["reproducible"] == true)
        .map(|e| e["data"]["module"].as_str().unwrap().to_string())
        .collect();
    checked.sort();
    assert_eq!(checked.len(), 3, "{out}");
    assert_eq!(checked[2], "tool");
    assert!(checked[0].starts_with("rom@") && checked[1].starts_with("rom@"));
    assert_ne!(checked[0], checked[1]);
}

#[test]
fn kill_9_during_a_check_leaves_the_real_build_alone_and_the_next_run_sweeps() {
    let p = TestProject::with_default(&["slow"]);
    // Slow only in the check's scratch dir, and says when it got there.
    p.local_module(
        "slow",
        &[("f", "x\n")],
        r#"build = 'case "$(pwd)" in */.strata/check/*) touch in-scratch; sleep 3;; esac'
install = "mkdir -p $STRATA_DESTDIR && cp f $STRATA_DESTDIR/f""#,
    );
    assert_eq!(run(&p, &["build"]).0, 0);
    let build_before = build_state(&p);
    let cache_before = cache_state(&p);
    let mut child = p
        .raw()
        .args(["-q", "build", "--check"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let scratch = p.path(&format!("build/.strata/check/{}", child.id()));
    let marker = scratch.join("build/slow-1.0/in-scratch");
    let t = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            t.elapsed().as_secs() < 60,
            "the check never got to its build"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(scratch.is_dir(), "a killed check leaves its scratch dir");
    // The next run that takes the lock removes it; the real build is as it was.
    let (code, out, err) = run(&p, &["--json", "build"]);
    assert_eq!(code, 0, "{err}");
    assert!(!p.path("build/.strata/check").exists(), "not swept");
    assert!(
        events(&out).iter().all(|e| e["type"] != "step-started"),
        "{out}"
    );
    assert_eq!(build_state(&p), build_before);
    assert_eq!(cache_state(&p), cache_before);
}

#[test]
fn a_file_embedding_its_build_dir_is_named_not_relocatable() {
    let p = TestProject::with_default(&["where"]);
    p.local_module(
        "where",
        &[("f", "x\n")],
        r#"install = "mkdir -p $STRATA_DESTDIR && echo $STRATA_BUILD_DIR > $STRATA_DESTDIR/where""#,
    );
    assert_eq!(run(&p, &["build"]).0, 0);
    let (code, out, err) = run(&p, &["build", "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Checking where (rebuilding in "), "{err}");
    assert!(
        err.contains(
            ".strata/destdir/where (build-path):\n        embeds its build directory: not relocatable"
        ),
        "{err}"
    );
    let (_, out2, _) = run(&p, &["--json", "build", "--check"]);
    let ev = events(&out2);
    let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let at = |t: &str| {
        kinds
            .iter()
            .position(|k| *k == t)
            .unwrap_or_else(|| panic!("{t}: {out2}"))
    };
    assert!(at("check-started") < at("step-started"));
    assert!(at("step-started") < at("check"));
    assert!(at("check") < at("check-summary"));
    let check = &ev[at("check")]["data"];
    assert_eq!(check["differences"][0]["kind"], "build-path", "{out}");
}
