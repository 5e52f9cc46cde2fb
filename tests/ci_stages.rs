//! The staged workflow `strata ci generate circleci` derives from the
//! graph, run end to end under `strata ci run` on a fixture with Heads's
//! shape (a toolchain every board needs, two coreboot-like forks with their
//! own toolchains, ten boards sharing most userspace modules), against a
//! config in Heads's current style (three whole-tree cache layers) on the
//! same fixture. Run with `--nocapture` for the table.

mod ci_support;
mod common;
mod heads_fixture;

use ci_support::{commit, stdout};
use common::*;
use std::collections::BTreeMap;
use std::time::Instant;

const USERSPACE: [&str; 6] = ["busybox", "cryptsetup", "lvm2", "gpg", "kexec", "flashrom"];

/// A module that "builds" `kib` KiB of incompressible output (like object
/// code) in `secs` seconds and installs it.
fn module(p: &TestProject, name: &str, kib: u32, secs: &str, extra: &str) {
    p.local_module(
        name,
        &[("README", &format!("{name} source\n"))],
        &format!(
            "{extra}\nbuild = \"sleep {secs} && head -c {} /dev/urandom > out.bin\"\ninstall = \"mkdir -p $STRATA_DESTDIR/lib/{name} && cp out.bin $STRATA_DESTDIR/lib/{name}/\"",
            kib * 1024
        ),
    );
}

/// The fixture: 10 boards, 31 module instances.
fn fleet() -> TestProject {
    let mut toml = String::from("[project]\nname = \"fleet\"\ncache-version = \"1\"\n\n");
    for fork in ["a", "b"] {
        for n in 1..=5 {
            let mut mods: Vec<String> = vec![format!("coreboot-{fork}"), "linux".into()];
            mods.extend(USERSPACE.iter().map(|m| m.to_string()));
            mods.push(if n <= 3 { "tpmtotp" } else { "hotp" }.into());
            let list: Vec<String> = mods.iter().map(|m| format!("\"{m}\"")).collect();
            toml.push_str(&format!(
                "[target.board-{fork}{n}]\nmodules = [{}]\nparams = {{ BOARD = \"{fork}{n}\" }}\n\n",
                list.join(", ")
            ));
        }
    }
    let p = TestProject::new(&toml);
    module(&p, "musl-cross", 1024, "2", "host = true");
    for fork in ["a", "b"] {
        module(
            &p,
            &format!("cb-toolchain-{fork}"),
            512,
            "1",
            "host = true\ndepends = [\"musl-cross\"]",
        );
        module(
            &p,
            &format!("coreboot-{fork}"),
            128,
            "0.2",
            &format!("params = [\"BOARD\"]\ndepends = [\"cb-toolchain-{fork}\"]"),
        );
    }
    module(
        &p,
        "linux",
        256,
        "0.3",
        "params = [\"BOARD\"]\ndepends = [\"musl-cross\"]",
    );
    for m in USERSPACE.iter().chain(&["tpmtotp", "hotp"]) {
        module(&p, m, 64, "0.2", "depends = [\"musl-cross\"]");
    }
    p.write(
        ".gitignore",
        "/packages/\n/build/\n/install/\n/.xdg-cache/\n/.ci-store/\n",
    );
    p
}

/// What one `strata ci run` did.
#[derive(Debug)]
struct Outcome {
    built: BTreeMap<String, usize>,
    saved_bytes: u64,
    restored_bytes: u64,
    secs: f64,
    jobs: usize,
}

/// `strata --json ci run` with a fresh artifact store per job (as CI
/// machines have): what it built, saved and restored.
fn run(p: &TestProject, ci_store: &str) -> Outcome {
    let bin = assert_cmd::cargo::cargo_bin("strata");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let start = Instant::now();
    let out = p
        .strata()
        .env_remove("XDG_CACHE_HOME")
        .env("PATH", path)
        .env("STRATA_SANDBOX", "off")
        .env("STRATA_CI_STORE", p.path(ci_store))
        .args(["--json", "ci", "run", "--parallel", "4"])
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{so}\n{se}");
    let mut o = Outcome {
        built: BTreeMap::new(),
        saved_bytes: 0,
        restored_bytes: 0,
        secs,
        jobs: 0,
    };
    for v in so
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        let d = if v["data"].is_object() {
            &v["data"]
        } else {
            &v
        };
        match v["event"].as_str().or(v["type"].as_str()) {
            Some("save") if d["outcome"]["result"] == "new" => {
                o.saved_bytes += d["outcome"]["bytes"].as_u64().unwrap()
            }
            Some("restore") => o.restored_bytes += d["bytes"].as_u64().unwrap_or(0),
            Some("job-finished") => o.jobs += 1,
            _ => {}
        }
    }
    // strata's own lines in the jobs' logs: `Built <module> in …`.
    for l in se.lines() {
        if let Some(rest) = l.split_once("Built ").map(|x| x.1)
            && let Some((m, _)) = rest.split_once(" in ")
        {
            *o.built.entry(m.to_string()).or_default() += 1;
        }
    }
    o
}

/// Heads's current style on the same fixture: a toolchain job saving
/// layer 1, one seed job per fork (restoring layer 3, 2, then 1; building
/// its first board; saving layer 2 with the toolchains and layer 3 with the
/// whole packages/ and build/ trees; persisting the whole trees to the
/// workspace), then the fork's boards on that workspace. No artifact store.
fn heads_style_config() -> String {
    let mut c = String::from(
        "version: 2.1\njobs:\n  musl:\n    steps:\n      - checkout\n      - restore_cache:\n          keys: ['layer1-{{ checksum \"modules/musl-cross.toml\" }}']\n      - run: {command: strata --no-cache build musl-cross, no_output_timeout: 3h}\n      - persist_to_workspace: {root: ., paths: [packages, build]}\n      - save_cache:\n          key: 'layer1-{{ checksum \"modules/musl-cross.toml\" }}'\n          paths: [packages, build]\n",
    );
    for fork in ["a", "b"] {
        c.push_str(&format!(
            "  seed-{fork}:\n    steps:\n      - checkout\n      - attach_workspace: {{at: .}}\n      - run: cat modules/*.toml > .all && cat modules/musl-cross.toml modules/cb-toolchain-{fork}.toml > .tc\n      - restore_cache:\n          keys:\n            - 'layer3-{fork}-{{{{ checksum \".all\" }}}}'\n            - 'layer2-{fork}-{{{{ checksum \".tc\" }}}}'\n            - 'layer1-{{{{ checksum \"modules/musl-cross.toml\" }}}}'\n      - run: {{command: strata --no-cache build board-{fork}1, no_output_timeout: 3h}}\n      - persist_to_workspace: {{root: ., paths: [packages, build]}}\n      - save_cache:\n          key: 'layer3-{fork}-{{{{ checksum \".all\" }}}}'\n          paths: [packages, build]\n      - save_cache:\n          key: 'layer2-{fork}-{{{{ checksum \".tc\" }}}}'\n          paths: [packages, build/musl-cross-1.0, build/cb-toolchain-{fork}-1.0, build/.strata/modules/musl-cross-1.0, build/.strata/modules/cb-toolchain-{fork}-1.0]\n"
        ));
        for n in 2..=5 {
            c.push_str(&format!(
                "  board-{fork}{n}:\n    steps:\n      - checkout\n      - attach_workspace: {{at: .}}\n      - run: {{command: strata --no-cache build board-{fork}{n}, no_output_timeout: 3h}}\n      - store_artifacts: {{path: install}}\n"
            ));
        }
    }
    c.push_str("workflows:\n  build:\n    jobs:\n      - musl\n");
    for fork in ["a", "b"] {
        c.push_str(&format!("      - seed-{fork}: {{requires: [musl]}}\n"));
        for n in 2..=5 {
            c.push_str(&format!(
                "      - board-{fork}{n}: {{requires: [seed-{fork}]}}\n"
            ));
        }
    }
    c
}

fn total(o: &Outcome) -> usize {
    o.built.values().sum()
}

#[test]
fn staged_workflow_builds_each_instance_once_cold_and_nothing_warm_against_whole_tree_layers() {
    let p = fleet();
    stdout(
        p.strata()
            .args(["ci", "generate", "circleci", "-o", ".circleci/config.yml"]),
    );
    let cfg = p.read(".circleci/config.yml");
    // The plan: the toolchain, the userspace all boards share, each fork's
    // toolchain, the modules some boards share, then the ten boards.
    let list = stdout(p.strata().args(["ci", "stage", "list"]));
    eprintln!("{list}");
    for line in [
        "seed-musl-cross: musl-cross (10 of 10 targets)",
        "seed-busybox-and-5 <- seed-musl-cross: busybox cryptsetup flashrom gpg kexec lvm2 (10 of 10 targets)",
        "seed-cb-toolchain-a <- seed-musl-cross: cb-toolchain-a (5 of 10 targets)",
        "seed-tpmtotp <- seed-musl-cross: tpmtotp (6 of 10 targets)",
        "build-board-a1 <- seed-busybox-and-5, seed-tpmtotp, seed-cb-toolchain-a: coreboot-a linux (1 of 10 targets)",
        "build-board-b5 <- seed-busybox-and-5, seed-cb-toolchain-b, seed-hotp: coreboot-b linux (1 of 10 targets)",
    ] {
        assert!(list.contains(line), "{line}\n{list}");
    }
    assert!(
        cfg.contains("          requires:\n            - seed-musl-cross\n"),
        "{cfg}"
    );
    assert!(cfg.contains("no_output_timeout: 30m"), "{cfg}");
    // GitHub: the same plan with `needs:`; no workspaces there, so a job
    // restores the caches of every stage it requires, directly or not.
    let gh = stdout(p.strata().args(["ci", "generate", "github"]));
    let a1 = gh.split("\n  build-board-a1:\n").nth(1).unwrap();
    let a1 = a1.split("\n\n").next().unwrap();
    assert!(
        a1.contains("needs: [seed-busybox-and-5, seed-tpmtotp, seed-cb-toolchain-a]"),
        "{a1}"
    );
    for seed in [
        "seed-musl-cross",
        "seed-busybox-and-5",
        "seed-tpmtotp",
        "seed-cb-toolchain-a",
    ] {
        assert!(
            a1.contains(&format!(
                "key: strata-stage-{seed}-v1-${{{{ hashFiles('.strata-stage-key-{seed}') }}}}"
            )),
            "{seed}: {a1}"
        );
    }
    assert!(!a1.contains("seed-cb-toolchain-b"), "{a1}");
    commit(p.root(), "fleet");

    let instances = 31;
    let cold = run(&p, ".ci-store");
    assert_eq!(cold.jobs, 16, "{cold:?}");
    assert_eq!(total(&cold), instances, "{cold:?}");
    assert!(
        cold.built.values().all(|&n| n == 1),
        "built twice: {cold:?}"
    );
    // Each artifact is in exactly one cache: the caches hold the distinct
    // artifacts (~3.8 MiB of random bytes) plus archive overhead.
    let distinct: u64 = (1024 + 2 * 512 + 10 * 128 + 10 * 256 + 8 * 64) * 1024;
    assert!(cold.saved_bytes >= distinct, "{cold:?}");
    assert!(
        cold.saved_bytes < distinct + distinct / 10,
        "{} saved for {distinct} of artifacts",
        cold.saved_bytes
    );
    let warm = run(&p, ".ci-store");
    assert_eq!(total(&warm), 0, "{warm:?}");
    assert_eq!(warm.saved_bytes, 0, "{warm:?}");

    // Heads's style on the same fixture and an empty store.
    p.write(".circleci/config.yml", heads_style_config());
    commit(p.root(), "heads style");
    let h_cold = run(&p, ".ci-store-heads");
    let h_warm = run(&p, ".ci-store-heads");
    // Both forks' seeds build the userspace every board shares.
    assert!(total(&h_cold) > instances, "{h_cold:?}");
    assert_eq!(h_cold.built["busybox"], 2, "{h_cold:?}");
    assert!(h_cold.saved_bytes > 2 * cold.saved_bytes, "{h_cold:?}");
    eprintln!(
        "| config | run | jobs | module builds | distinct built | cache bytes saved | cache bytes restored | wall s |\n|---|---|---|---|---|---|---|---|"
    );
    for (name, o) in [
        ("generated (staged)", &cold),
        ("generated (staged)", &warm),
        ("Heads style (3 whole-tree layers)", &h_cold),
        ("Heads style (3 whole-tree layers)", &h_warm),
    ] {
        eprintln!(
            "| {name} | {} | {} | {} | {} | {} | {} | {:.1} |",
            if std::ptr::eq(o, &cold) || std::ptr::eq(o, &h_cold) {
                "cold"
            } else {
                "warm"
            },
            o.jobs,
            total(o),
            o.built.len(),
            o.saved_bytes,
            o.restored_bytes,
            o.secs
        );
    }
}

#[test]
fn ci_install_setting_installs_strata_once_and_the_cached_binary_serves_the_next_run() {
    let bin = assert_cmd::cargo::cargo_bin("strata");
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("a.txt", "a\n")],
        "install = \"cp a.txt $STRATA_DESTDIR/\"",
    );
    let toml = p.read("strata.toml");
    p.write(
        "strata.toml",
        format!(
            "{toml}\n[ci]\ninstall = \"echo installing $STRATA_VERSION && cp {} $STRATA_BIN_DIR/strata\"\n",
            bin.display()
        ),
    );
    p.write(
        ".gitignore",
        "/packages/\n/build/\n/install/\n/.xdg-cache/\n/.ci-store/\n",
    );
    stdout(
        p.strata()
            .args(["ci", "generate", "circleci", "-o", ".circleci/config.yml"]),
    );
    commit(p.root(), "init");
    // strata is not on PATH: the job installs it with the setting's command.
    let run = || ci_run_ok(p.strata(), &p.path(".ci-store"), 300);
    let v = env!("CARGO_PKG_VERSION");
    let first = run();
    assert!(first.contains(&format!("installing {v}")), "{first}");
    assert!(first.contains(&format!("strata {v}")), "{first}");
    // The next run restores the binary from its cache: no install.
    let second = run();
    assert!(!second.contains("installing"), "{second}");
    assert!(second.contains(&format!("strata {v}")), "{second}");
}

#[test]
fn stage_commands_name_an_unknown_stage_and_warn_about_an_older_plan() {
    let p = TestProject::with_default(&["m"]);
    p.local_module("m", &[("a.txt", "a\n")], "");
    let out = p
        .strata()
        .args(["ci", "stage", "build", "build-defualt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no stage `build-defualt`"), "{err}");
    assert!(err.contains("did you mean `build-default`?"), "{err}");
    let out = p
        .strata()
        .args([
            "--json",
            "ci",
            "stage",
            "--plan",
            "0123456789abcdef",
            "list",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("generated for stage plan 0123456789abcdef"),
        "{err}"
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(v["data"]["stages"][0]["name"], "build-default", "{v}");
    assert_eq!(v["data"]["stages"][0]["modules"][0], "m", "{v}");
    // The same plan as the config's: no warning.
    let plan = v["data"]["plan"].as_str().unwrap().to_string();
    let out = p
        .strata()
        .env("STRATA_CI_PLAN", &plan)
        .args(["ci", "stage", "key", "build-default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("build-default-"));
}

#[test]
fn the_config_generated_for_an_imported_heads_tree_runs_in_the_heads_checkout() {
    // `strata import heads` writes the project into the tree's `strata/`;
    // the config goes to the tree's .circleci/ and runs from the top.
    let h = heads_fixture::Heads::new();
    let top = h.heads();
    let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .arg("import")
        .arg("heads")
        .arg(&top)
        .env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", h.tmp.path().join(".xdg-cache"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", heads_fixture::text(&o));
    // The mirror a Heads checkout behind a firewall names: musl-cross-make's
    // config.sub (savannah) is not served here.
    let toml = top.join("strata/strata.toml");
    let t = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!(
            "{}\n\n[mirrors]\nbefore = [\"{}\"]\n",
            t.trim_end(),
            h.server.url("/mirror/")
        ),
    )
    .unwrap();
    let strata = |args: &[&str]| {
        let mut c = assert_cmd::Command::cargo_bin("strata").unwrap();
        c.arg("-C").arg(top.join("strata")).args(args);
        c.env("XDG_CACHE_HOME", h.tmp.path().join(".xdg-cache"));
        stdout(&mut c)
    };
    std::fs::write(
        top.join(".gitignore"),
        "/strata/packages/\n/strata/build/\n/strata/install/\n",
    )
    .unwrap();
    // A Heads checkout is a git repository: its top is where jobs start.
    commit(&top, "heads with its strata import");
    strata(&[
        "ci",
        "generate",
        "circleci",
        "-o",
        "../.circleci/config.yml",
    ]);
    let list = strata(&["ci", "stage", "list"]);
    assert!(list.contains("build-alpha <- "), "{list}");
    assert!(list.contains("seed-"), "both boards share modules: {list}");
    let cfg = std::fs::read_to_string(top.join(".circleci/config.yml")).unwrap();
    assert!(
        cfg.contains("strata -C strata ci stage build << parameters.stage >>"),
        "{cfg}"
    );
    // Valid against CircleCI's published schema (check-jsonschema, which
    // scripts/test.sh installs; skipped without it outside CI).
    match std::process::Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.circle-ci"])
        .arg(top.join(".circleci/config.yml"))
        .output()
    {
        Ok(o) => assert!(o.status.success(), "{}\n{cfg}", heads_fixture::text(&o)),
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "check-jsonschema is not on PATH; run ./scripts/test.sh"
        ),
    }
    commit(&top, "the generated config");
    let bin = assert_cmd::cargo::cargo_bin("strata");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = assert_cmd::Command::cargo_bin("strata").unwrap();
    c.arg("-C")
        .arg(&top)
        .env("NO_COLOR", "1")
        .env("PATH", path)
        .env("HOME", h.tmp.path());
    let all = ci_run_ok(c, &h.tmp.path().join(".ci-store"), 600);
    // Each board's job built its own instances only; shared ones came from
    // the seeds' workspace.
    for board in ["alpha", "beta"] {
        let line = all
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("build-{board} ")))
            .unwrap_or_else(|| panic!("{all}"));
        assert!(line.contains("success"), "{line}");
    }
    let mut built: Vec<&str> = all
        .lines()
        .filter_map(|l| l.split_once("Built ").map(|x| x.1))
        .filter_map(|r| r.split_once(" in ").map(|x| x.0))
        .collect();
    let n = built.len();
    built.sort_unstable();
    built.dedup();
    assert_eq!(built.len(), n, "an instance was built twice: {all}");
    assert!(built.contains(&"musl-cross-make"), "{all}");
    assert!(n >= 6, "{all}");
    eprintln!("heads fixture: {n} instances built once each: {built:?}");
}

/// `strata ci run` with `store` as the CI store, the sandbox off and no
/// test cache dir (the jobs use their own): must succeed; its whole output.
fn ci_run_ok(mut c: assert_cmd::Command, store: &std::path::Path, secs: u64) -> String {
    let out = c
        .env_remove("XDG_CACHE_HOME")
        .env("STRATA_SANDBOX", "off")
        .env("STRATA_CI_STORE", store)
        .args(["ci", "run"])
        .timeout(std::time::Duration::from_secs(secs))
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    all
}
