//! `strata ci generate`: the configs install this exact version and cache
//! the artifact store pruned to the target's closure (or nothing, with a
//! remote), and what that saves against whole-tree layers on the example.

mod ci_support;
mod common;

use ci_support::{ci, commit, stdout};
use common::*;
use std::path::Path;
use std::process::Command;

#[test]
fn generated_configs_install_this_version_and_cache_the_pruned_store_or_nothing() {
    let p = TestProject::with_default(&["m"]);
    p.local_module("m", &[("a.txt", "a\n")], "");
    let circle = stdout(ci(&p).args(["generate", "circleci", "-o", ".circleci/config.yml"]));
    assert!(circle.is_empty());
    let cfg = p.read(".circleci/config.yml");
    let v = env!("CARGO_PKG_VERSION");
    assert!(
        cfg.contains(&format!(
            "cargo install --locked --root $HOME/.strata-bin strata-build --version ={v}"
        )),
        "{cfg}"
    );
    assert!(!cfg.contains("install --locked strata\""), "{cfg}");
    assert!(
        cfg.contains(&format!("key: strata-bin-v{v}-{{{{ arch }}}}-")),
        "{cfg}"
    );
    assert!(cfg.contains("- ~/.strata-bin\n"), "{cfg}");
    // One target: one job, which is its own stage.
    assert!(
        cfg.contains(
            "- strata-stage-<< parameters.stage >>-v1-{{ checksum \".strata-stage-key\" }}"
        ),
        "{cfg}"
    );
    assert!(
        cfg.contains("- strata-stage-<< parameters.stage >>-v1-\n"),
        "prefix fallback: {cfg}"
    );
    assert!(
        cfg.contains("strata ci stage prune << parameters.stage >>"),
        "{cfg}"
    );
    assert!(
        cfg.contains("strata ci stage build << parameters.stage >>"),
        "{cfg}"
    );
    assert!(
        cfg.contains("      - stage:\n          name: build-default\n          stage: build-default\n          target: true\n"),
        "{cfg}"
    );
    assert!(cfg.contains("- ~/.cache/strata\n"), "{cfg}");
    // Never the whole trees.
    assert!(
        !cfg.contains("- packages") && !cfg.contains("- build\n"),
        "{cfg}"
    );
    // One stage: nothing requires it, so it persists nothing.
    assert!(!cfg.contains("persist: true"), "{cfg}");
    // The generated config is one our runner reads.
    commit(p.root(), "generated");
    let dry = stdout(ci(&p).args(["run", "--dry-run"]));
    assert!(dry.contains("job build-default"), "{dry}");
    let gh = stdout(ci(&p).args(["generate", "github"]));
    assert!(
        gh.contains("restore-keys: strata-stage-build-default-v1-"),
        "{gh}"
    );
    assert!(gh.contains("uses: actions/cache/restore@v4"), "{gh}");
    assert!(
        gh.contains(
            "if: steps.store.outputs.cache-hit != 'true'\n        uses: actions/cache/save@v4"
        ),
        "save skipped on an exact hit: {gh}"
    );
    let doc: serde_norway::Value = serde_norway::from_str(&gh).unwrap();
    assert!(
        doc["jobs"]["build-default"]["steps"]
            .as_sequence()
            .unwrap()
            .len()
            > 5
    );
    // --install-cmd, else [ci] install: a team's own binary source, cached
    // under a key of its own.
    let own = stdout(ci(&p).args([
        "generate",
        "circleci",
        "--install-cmd",
        "curl -sSf https://example.invalid/strata -o $STRATA_BIN_DIR/strata",
    ]));
    assert!(
        own.contains("    curl -sSf https://example.invalid/strata -o $STRATA_BIN_DIR/strata\n"),
        "{own}"
    );
    assert!(!own.contains("cargo install"), "{own}");
    let key = |c: &str| {
        c.lines()
            .find(|l| l.contains("- strata-bin-v"))
            .unwrap()
            .to_string()
    };
    assert_ne!(key(&own), key(&cfg));
    let toml = p.read("strata.toml");
    p.write(
        "strata.toml",
        format!("{toml}\n[ci]\ninstall = \"cp /opt/strata $STRATA_BIN_DIR/\"\n"),
    );
    let set = stdout(ci(&p).args(["generate", "circleci"]));
    assert!(
        set.contains("    cp /opt/strata $STRATA_BIN_DIR/\n"),
        "{set}"
    );
    assert!(!set.contains("cargo install"), "{set}");
    p.write("strata.toml", &toml);

    // With a remote, the artifact cache serves every job: only the strata
    // binary is cached with CircleCI.
    let toml = p.read("strata.toml") + "\n[cache]\nremote = \"s3://bucket/prefix\"\n";
    p.write("strata.toml", toml);
    let cfg = stdout(ci(&p).args(["generate", "circleci"]));
    assert_eq!(cfg.matches("save_cache").count(), 1, "{cfg}");
    assert!(!cfg.contains("strata-stage-"), "{cfg}");
    assert!(
        cfg.contains("strata ci stage build << parameters.stage >>"),
        "{cfg}"
    );
}

/// Bytes of the regular files under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                todo.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

/// `strata ci --json save` of `paths` under `dir`: the bytes saved.
fn saved_bytes(p: &TestProject, key: &str, dir: &Path, paths: &[&str]) -> u64 {
    let out = stdout(
        ci(p)
            .args(["--json", "save", "--key", key, "--dir"])
            .arg(dir)
            .args(paths),
    );
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    v["data"]["outcome"]["bytes"].as_u64().unwrap()
}

#[test]
fn generated_config_caches_the_pruned_store_not_whole_trees_for_the_shipped_example() {
    let p = example_project();
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built.len(), 4, "{err}");
    // A stale entry of another key, which the prune must drop.
    let before = p.read("modules/hello.toml");
    p.write(
        "modules/hello.toml",
        before.replace(
            "build = \"make SYSROOT=$STRATA_SYSROOT\"",
            "build = \"make SYSROOT=$STRATA_SYSROOT && true\"",
        ),
    );
    assert_ne!(p.read("modules/hello.toml"), before);
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(built.contains(&"hello".to_string()), "{built:?}");
    p.write("modules/hello.toml", &before);
    let (code, _, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");

    // What Heads-style layers save: the whole packages/ and build/ trees.
    let whole = saved_bytes(&p, "whole-trees", p.root(), &["packages", "build"]);
    let whole_disk = disk_bytes(&p.path("packages")) + disk_bytes(&p.path("build"));
    // What the generated config saves: the store pruned to the closure.
    let store_dir = p.path(".xdg-cache");
    let unpruned = saved_bytes(&p, "unpruned-store", &store_dir, &["strata"]);
    let pruned = stdout(p.strata().args(["--json", "ci", "prune-store", "default"]));
    let v: serde_json::Value = serde_json::from_str(pruned.lines().last().unwrap()).unwrap();
    assert_eq!(v["data"]["kept"], 4, "{v}");
    assert!(v["data"]["removed"].as_u64().unwrap() >= 1, "{v}");
    let store = saved_bytes(&p, "pruned-store", &store_dir, &["strata"]);
    let store_disk = disk_bytes(&store_dir.join("strata"));
    eprintln!(
        "examples/firmware: whole packages/+build/ layer: {whole} bytes saved ({whole_disk} on disk); \
         artifact store before prune: {unpruned} bytes saved; \
         pruned store (what the generated config saves and restores): {store} bytes saved ({store_disk} on disk)"
    );
    assert!(
        store < unpruned,
        "the prune dropped nothing: {store} >= {unpruned}"
    );

    // The restored store alone rebuilds nothing: every module comes back
    // from its artifact.
    for d in ["packages", "build", "install", ".xdg-cache"] {
        let _ = std::fs::remove_dir_all(p.path(d));
    }
    let out = stdout(
        ci(&p)
            .args(["restore", "--key", "pruned-store", "--dir"])
            .arg(&store_dir),
    );
    assert!(out.contains("Restored cache `pruned-store`"), "{out}");
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(built.is_empty(), "rebuilt {built:?}: {err}");
    let out = Command::new(p.path("install/bin/hello")).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from libgreet\n"
    );
}

#[test]
fn a_config_generated_for_a_project_in_a_subdirectory_runs_end_to_end() {
    // The Heads import writes the project into `strata/` of the Heads
    // repository: the generated commands must run it there.
    let ex = example_project();
    let repo = TestProject::new("");
    std::fs::remove_file(repo.path("strata.toml")).unwrap();
    let st = std::process::Command::new("cp")
        .arg("-r")
        .arg(ex.root())
        .arg(repo.path("strata"))
        .status()
        .unwrap();
    assert!(st.success());
    repo.write("README", "heads-like repository\n");
    ci_support::commit(repo.root(), "init");
    let out = assert_cmd::Command::cargo_bin("strata")
        .unwrap()
        .env("XDG_CACHE_HOME", repo.path(".xdg-cache"))
        .arg("-C")
        .arg(repo.path("strata"))
        .args([
            "ci",
            "generate",
            "circleci",
            "--output",
            "../.circleci/config.yml",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = repo.read(".circleci/config.yml");
    assert!(
        cfg.contains("command: \"strata -C strata ci stage build << parameters.stage >>\""),
        "{cfg}"
    );
    assert!(
        cfg.contains(
            "command: \"strata -C strata ci stage key << parameters.stage >> > .strata-stage-key\""
        ),
        "{cfg}"
    );
    assert!(cfg.contains("path: strata/install"), "{cfg}");
    ci_support::commit(repo.root(), "ci");
    // strata is already on PATH (no ~/.cargo/bin to cache): the job runs.
    let bin = assert_cmd::cargo::cargo_bin("strata");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = repo
        .strata()
        .env("PATH", path)
        .env("STRATA_CI_STORE", repo.path(".ci-store"))
        .args(["ci", "run"])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("could not find path"),
        "{stdout}\n{stderr}"
    );
}
