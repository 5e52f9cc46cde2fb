//! `strata ci`: CircleCI key templates, cache semantics, workspaces and the
//! local runner, end to end through the binary.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// A git repository in a temp dir with `files` committed.
fn repo(files: &[(&str, &str)]) -> TestProject {
    let p = TestProject::new("");
    std::fs::remove_file(p.path("strata.toml")).unwrap();
    for (f, c) in files {
        p.write(f, c);
    }
    commit(p.root(), "init");
    p
}

fn commit(dir: &Path, msg: &str) {
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            msg,
        ],
    ] {
        if args[0] == "init" && dir.join(".git").exists() {
            continue;
        }
        let st = Command::new("git")
            .args(&args)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    }
}

/// `strata ci …` in `p` with its own CI store.
fn ci(p: &TestProject) -> assert_cmd::Command {
    let mut c = p.strata();
    c.env("STRATA_CI_STORE", p.path(".ci-store")).arg("ci");
    c
}

fn stdout(c: &mut assert_cmd::Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn checksum_is_bit_exact_with_circleci() {
    let p = repo(&[("Cargo.lock", "some lock file\nwith two lines\n")]);
    let ours = stdout(ci(&p).args(["render", "v1-{{ checksum \"Cargo.lock\" }}-{{ .Branch }}"]));
    let theirs = Command::new("bash")
        .args(["-c", "sha256sum < Cargo.lock | xxd -r -p | base64"])
        .current_dir(p.root())
        .output()
        .unwrap();
    assert!(theirs.status.success());
    assert_eq!(
        ours.trim(),
        format!("v1-{}-main", String::from_utf8_lossy(&theirs.stdout).trim())
    );
    // Unknown templates name the key and the position.
    ci(&p)
        .args(["render", "k-{{ .Nope }}"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "unknown template `{{ .Nope }}` at position 3",
        ));
    ci(&p)
        .args(["render", &"k".repeat(901)])
        .assert()
        .failure()
        .stderr(predicates::str::contains("at most 900"));
}

#[test]
fn restore_takes_the_newest_cache_each_key_prefixes_and_save_is_immutable() {
    let p = repo(&[("d/a.txt", "one\n")]);
    let save = |key: &str, content: &str| {
        p.write("d/a.txt", content);
        stdout(ci(&p).args(["save", "--key", key, "d"]))
    };
    // Modes, mtimes and symlinks come back as they were.
    std::os::unix::fs::symlink("a.txt", p.path("d/link")).unwrap();
    p.write("d/tool.sh", "#!/bin/sh\n");
    std::fs::set_permissions(
        p.path("d/tool.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    let old = filetime::FileTime::from_unix_time(1_500_000_000, 0);
    filetime::set_file_mtime(p.path("d/tool.sh"), old).unwrap();
    assert!(save("deps-1", "one\n").contains("Saved cache `deps-1`"));
    assert!(save("deps-2", "two\n").contains("Saved cache `deps-2`"));
    assert!(save("deps-3-old", "three\n").contains("Saved cache"));
    // Immutable: saving an existing key does nothing and says so.
    let again = save("deps-1", "changed\n");
    assert!(
        again.contains("Skipping cache save: key `deps-1` already exists"),
        "{again}"
    );

    let restore = |keys: &[&str]| {
        std::fs::remove_dir_all(p.path("d")).unwrap();
        let mut c = ci(&p);
        c.arg("--json").arg("restore");
        for k in keys {
            c.args(["--key", k]);
        }
        let out = stdout(&mut c);
        let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        (
            v["data"].clone(),
            std::fs::read_to_string(p.path("d/a.txt")).ok(),
        )
    };
    // A key only itself starts with: that cache.
    let (v, content) = restore(&["deps-1"]);
    assert_eq!(
        (v["match"].as_str(), v["key"].as_str()),
        (Some("exact"), Some("deps-1"))
    );
    assert_eq!(
        content.as_deref(),
        Some("one\n"),
        "the skipped save did not overwrite"
    );
    assert_eq!(
        std::fs::read_link(p.path("d/link")).unwrap(),
        Path::new("a.txt")
    );
    let meta = std::fs::metadata(p.path("d/tool.sh")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o750
    );
    assert_eq!(filetime::FileTime::from_last_modification_time(&meta), old);
    // A prefix picks the newest save among its matches.
    let (v, content) = restore(&["deps-"]);
    assert_eq!(
        (v["match"].as_str(), v["key"].as_str()),
        (Some("prefix"), Some("deps-3-old"))
    );
    assert_eq!(content.as_deref(), Some("three\n"));
    // The first key with any match wins.
    let (v, _) = restore(&["nothing", "deps-2", "deps-"]);
    assert_eq!(
        (v["match"].as_str(), v["key"].as_str()),
        (Some("exact"), Some("deps-2"))
    );
    // CircleCI's rule: the most recent cache the key is a prefix of wins,
    // even over the cache whose key equals it.
    assert!(save("deps-2-newer", "four\n").contains("Saved cache"));
    let (v, content) = restore(&["nothing", "deps-2", "deps-"]);
    assert_eq!(
        (v["match"].as_str(), v["key"].as_str()),
        (Some("prefix"), Some("deps-2-newer"))
    );
    assert_eq!(content.as_deref(), Some("four\n"));
    // A miss is exit 0 unless --fail-on-miss.
    ci(&p)
        .args(["restore", "--key", "nope"])
        .assert()
        .success()
        .stdout(predicates::str::contains("No cache found"));
    ci(&p)
        .args(["restore", "--key", "nope", "--fail-on-miss"])
        .assert()
        .code(1);
    // A missing path is an error, not an empty cache.
    ci(&p)
        .args(["save", "--key", "k2", "no-such-dir"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("no-such-dir does not exist"));
    ci(&p)
        .args(["restore", "--key", "k2", "--fail-on-miss"])
        .assert()
        .code(1);
}

const RUNNER_CONFIG: &str = r#"
version: 2.1
commands:
  say:
    parameters:
      what: {type: string}
    steps:
      - run: echo "<< parameters.what >> from $CIRCLE_JOB on $CIRCLE_BRANCH" | tee -a ~/said
jobs:
  make:
    parameters:
      part: {type: string}
    steps:
      - checkout
      - say: {what: "<< parameters.part >>"}
      - run: mkdir -p out && echo << parameters.part >> > out/<< parameters.part >>.txt && sleep 1
      - persist_to_workspace: {root: out, paths: ["*.txt"]}
  join:
    steps:
      - attach_workspace: {at: ws}
      - run: cat ws/left.txt ws/right.txt > joined && test "$(cat joined)" = "$(printf 'left\nright')"
      - store_artifacts: {path: joined}
  broken:
    steps:
      - run: {name: fails, command: "echo before; exit 3"}
      - run: {name: skipped on failure, command: "touch ~/never"}
      - run: {name: cleanup, command: "echo cleaning up", when: always}
      - run: {name: only on failure, command: "echo it failed", when: on_fail}
  stalls:
    steps:
      - run: {name: stall, command: "echo start; sleep 30; echo never", no_output_timeout: 2s}
workflows:
  main:
    jobs:
      - make: {name: left, part: left}
      - make: {name: right, part: right}
      - join: {requires: [left, right]}
      - broken
      - stalls
"#;

#[test]
fn ci_run_runs_parallel_jobs_workspaces_when_always_and_no_output_timeout() {
    let p = repo(&[(".circleci/config.yml", RUNNER_CONFIG), ("README", "x\n")]);
    let t = std::time::Instant::now();
    let out = ci(&p).args(["run", "-j", "4"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(25),
        "the stalled step was not ended"
    );
    // Parallel fan-out, then a fan-in through the workspace.
    assert!(err.contains("[left]   left from left on main"), "{err}");
    assert!(err.contains("[right]   right from right on main"), "{err}");
    let summary = err.split("summary").nth(1).unwrap();
    let status = |job: &str| {
        summary
            .lines()
            .find(|l| l.split_whitespace().next() == Some(job))
            .unwrap_or_else(|| panic!("{job} not in {summary}"))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(status("left"), "success");
    assert_eq!(status("join"), "success");
    assert_eq!(status("broken"), "failed");
    assert_eq!(status("stalls"), "failed");
    // when: always and on_fail ran after the failure; the on_success step did not.
    assert!(err.contains("[broken]   cleaning up"), "{err}");
    assert!(err.contains("[broken]   it failed"), "{err}");
    assert!(!err.contains("▸ skipped on failure"), "{err}");
    assert!(
        err.contains("Too long with no output (exceeded 2s)"),
        "{err}"
    );
    assert!(!err.contains("never"), "{err}");
    // store_artifacts kept the joined file.
    let runs: Vec<_> = std::fs::read_dir(p.path(".strata/ci"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(runs.len(), 1);
    let joined = runs[0].path().join("artifacts/join/joined");
    assert_eq!(std::fs::read_to_string(joined).unwrap(), "left\nright\n");
}

#[test]
fn concurrent_upstream_jobs_persisting_one_file_fail_the_attach_naming_both() {
    let cfg = r#"
version: 2.1
jobs:
  a:
    steps:
      - run: mkdir -p o && echo a > o/same.txt
      - persist_to_workspace: {root: o, paths: [same.txt]}
  b:
    steps:
      - run: mkdir -p o && echo b > o/same.txt
      - persist_to_workspace: {root: o, paths: [same.txt]}
  c:
    steps:
      - attach_workspace: {at: ws}
workflows:
  w:
    jobs: [a, b, {c: {requires: [a, b]}}]
"#;
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let out = ci(&p).args(["run"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Concurrent upstream jobs persisted the same file(s) into the workspace: 'same.txt' (jobs `a` and `b`)"),
        "{err}"
    );
}

#[test]
fn dry_run_prints_the_dag_steps_and_keys() {
    let cfg = "version: 2.1\njobs:\n  j:\n    docker: [{image: debian:12}]\n    steps:\n      - restore_cache: {keys: ['v1-{{ checksum \"lock\" }}', 'v1-']}\n      - run: echo hi\nworkflows:\n  w:\n    jobs: [j, {k: {requires: [j]}}]\n";
    let cfg = cfg.replace("{k: {requires: [j]}}", "{j: {name: k, requires: [j]}}");
    let p = repo(&[(".circleci/config.yml", &cfg), ("lock", "abc\n")]);
    let out = stdout(ci(&p).args(["run", "--dry-run"]));
    assert!(out.contains("job k (requires j)"), "{out}");
    assert!(out.contains("docker executor (debian:12) noted"), "{out}");
    assert!(out.contains("key v1-"), "{out}");
    assert!(out.contains("- echo hi"), "{out}");
    assert!(
        !p.path(".strata/ci")
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.path().is_dir()),
        "dry run ran something"
    );
}

// ---------------------------------------------------------------------------
// The seed scenario: Heads-style three-layer caching, where only layer 3
// holds packages/. Run, change one module, run again so that layer 2 is
// restored.

const PATCH_ADDS_FILE: &str = "--- /dev/null\n+++ b/extra.txt\n@@ -0,0 +1 @@\n+extra\n";

/// Serves alpha, beta and gamma tarballs; returns them too.
fn upstream(srv: &Server) -> Vec<(&'static str, Vec<u8>)> {
    ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|m| {
            let tb = tarball(
                &format!("{m}-1.0"),
                &[("src.txt", &format!("{m} source\n"))],
            );
            srv.route(&format!("/{m}-1.0.tar.gz"), Reply::Ok(tb.clone()));
            (m, tb)
        })
        .collect()
}

/// Heads-style: explicit per-module rules made with define/eval, empty
/// stamp files judged by mtime, and `_verify` markers in packages/.
const MAKEFILE: &str = r#"MODULES := alpha beta gamma
all: $(foreach m,$(MODULES),build/$(m)-1.0/.build)

define module
packages/$(1)-1.0.tar.gz:
	mkdir -p packages
	curl -fsS -o $$@ $$(MIRROR)/$(1)-1.0.tar.gz

packages/.$(1)-1.0_verify: packages/$(1)-1.0.tar.gz
	grep " $(1)-1.0.tar.gz" hashes | (cd packages && sha256sum -c --quiet -)
	touch $$@

build/$(1)-1.0/.canary: packages/.$(1)-1.0_verify
	mkdir -p build
	tar -xzf packages/$(1)-1.0.tar.gz -C build
	for p in patches/$(1)-1.0/*.patch; do [ -e "$$$$p" ] || continue; echo "patching $$$$p"; patch -p1 -d build/$(1)-1.0 < "$$$$p"; done
	touch $$@

build/$(1)-1.0/.configured: build/$(1)-1.0/.canary
	touch $$@

build/$(1)-1.0/.build: build/$(1)-1.0/.configured config/$(1).conf
	cat build/$(1)-1.0/*.txt config/$(1).conf > build/$(1)-1.0/out
	touch $$@
endef
$(foreach m,$(MODULES),$(eval $(call module,$(m))))
"#;

const MAKE_CONFIG: &str = r#"version: 2.1
jobs:
  build:
    steps:
      - checkout
      - run:
          name: Layer keys
          command: |
            cat config/alpha.conf patches/alpha-1.0/* > .key1
            cat .key1 config/beta.conf > .key2
            cat .key2 config/gamma.conf > .key3
      - restore_cache:
          keys:
            - layer3-{{ checksum ".key3" }}
            - layer2-{{ checksum ".key2" }}
            - layer1-{{ checksum ".key1" }}
      - run: {name: make, command: "make MIRROR=$MIRROR", no_output_timeout: 10s}
      - save_cache: {key: 'layer1-{{ checksum ".key1" }}', paths: [build/alpha-1.0]}
      - save_cache: {key: 'layer2-{{ checksum ".key2" }}', paths: [build/alpha-1.0, build/beta-1.0]}
      - save_cache: {key: 'layer3-{{ checksum ".key3" }}', paths: [packages, build]}
workflows:
  main:
    jobs: [build]
"#;

fn strata_bin_path() -> String {
    let bin = assert_cmd::cargo::cargo_bin("strata");
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn ci_run(p: &TestProject, srv: &Server) -> (i32, String, f64) {
    let t = std::time::Instant::now();
    let out = ci(p)
        .env("PATH", strata_bin_path())
        .args(["run", "--env", &format!("MIRROR={}", srv.url(""))])
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("---- strata ci run ({secs:.2}s) ----\n{err}");
    (out.status.code().unwrap_or(-1), err, secs)
}

#[test]
fn seed_scenario_makefile_layers_repatch_and_the_runner_ends_the_step() {
    let srv = Server::start();
    let tarballs = upstream(&srv);
    let hashes: String = tarballs
        .iter()
        .map(|(m, tb)| format!("{}  {m}-1.0.tar.gz\n", sha256(tb)))
        .collect();
    let p = repo(&[
        (".circleci/config.yml", MAKE_CONFIG),
        ("Makefile", MAKEFILE),
        ("hashes", &hashes),
        ("patches/alpha-1.0/0001-add-extra.patch", PATCH_ADDS_FILE),
        ("config/alpha.conf", "a=1\n"),
        ("config/beta.conf", "b=1\n"),
        ("config/gamma.conf", "g=1\n"),
    ]);
    let (code, first, _) = ci_run(&p, &srv);
    assert_eq!(code, 0, "{first}");
    let saved = first
        .lines()
        .filter(|l| l.starts_with("[build]   ok") && l.contains("new ("))
        .count();
    assert_eq!(saved, 3, "three layers saved: {first}");

    // Change one module (gamma): layer 3 misses, layer 2 hits exactly.
    p.write("config/gamma.conf", "g=2\n");
    commit(p.root(), "change gamma");
    let (code, second, secs) = ci_run(&p, &srv);
    assert_eq!(code, 1, "{second}");
    assert!(second.contains("exact match `layer2-"), "{second}");
    // Re-downloaded (packages/ was not in layer 2), re-extracted over the
    // restored tree, re-patched: GNU patch finds the file its patch creates
    // and asks the seed's question. (For a patch that modifies a file it says
    // "Reversed (or previously applied) patch detected! Assume -R? [n]".)
    assert!(
        second.contains("curl -fsS -o packages/alpha-1.0.tar.gz"),
        "{second}"
    );
    assert!(
        second.contains("which already exists!  Assume -R? [n]"),
        "GNU patch's re-patch question is in the log: {second}"
    );
    assert!(second.contains("FAILED"), "{second}");
    assert!(secs < 60.0, "the runner ended the step instead of hanging");
}

#[test]
fn seed_scenario_with_strata_layers_redownloads_and_repatches_nothing() {
    let srv = Server::start();
    let tarballs = upstream(&srv);
    let cfg = r#"version: 2.1
jobs:
  build:
    steps:
      - checkout
      - run:
          name: Restore layers
          command: strata ci restore-layer l3 --key "$(strata ci key l3)" --key "$(strata ci key l2)" --key "$(strata ci key l1)"
      - run: {name: build, command: "strata build", no_output_timeout: 30s}
      - run:
          name: Save layers
          command: strata ci save-layer l1 && strata ci save-layer l2 && strata ci save-layer l3
workflows:
  main:
    jobs: [build]
"#;
    let mut files: Vec<(String, String)> = vec![
        (".circleci/config.yml".into(), cfg.into()),
        (
            "strata.toml".into(),
            "[project]\nname = \"seed\"\ncache-version = \"1\"\n\n[target.default]\nmodules = [\"gamma\"]\n\n[layer.l1]\nmodules = [\"alpha\"]\n\n[layer.l2]\nmodules = [\"beta\"]\n\n[layer.l3]\nmodules = [\"gamma\"]\n".into(),
        ),
        ("patches/alpha-1.0/0001-add-extra.patch".into(), PATCH_ADDS_FILE.into()),
    ];
    let deps = [("alpha", ""), ("beta", "alpha"), ("gamma", "beta")];
    for ((m, tb), (_, dep)) in tarballs.iter().zip(deps) {
        let depends = if dep.is_empty() {
            String::new()
        } else {
            format!("depends = [\"{dep}\"]\n")
        };
        files.push((
            format!("modules/{m}.toml"),
            format!(
                "name = \"{m}\"\nversion = \"1.0\"\nurl = \"{}\"\nsha256 = \"{}\"\n{depends}build = \"cat *.txt > out\"\ninstall = \"mkdir -p $STRATA_DESTDIR/{m} && cp out $STRATA_DESTDIR/{m}/\"\n",
                srv.url(&format!("/{m}-1.0.tar.gz")),
                sha256(tb)
            ),
        ));
    }
    files.push((
        ".gitignore".into(),
        "build/\npackages/\ninstall/\n.strata/\n.ci-store/\n.xdg-cache/\n".into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = repo(&refs);

    let (code, first, _) = ci_run(&p, &srv);
    assert_eq!(code, 0, "{first}");
    assert_eq!(
        srv.requests().len(),
        3,
        "first run downloads each tarball once"
    );
    assert!(first.contains("Saved cache `l3-"), "{first}");

    // Change one module (gamma): layer 3 misses, layer 2 hits exactly.
    let gamma = p
        .read("modules/gamma.toml")
        .replace("cat *.txt > out", "cat *.txt > out && echo v2 >> out");
    p.write("modules/gamma.toml", gamma);
    commit(p.root(), "change gamma");
    let (code, second, secs) = ci_run(&p, &srv);
    assert_eq!(code, 0, "{second}");
    assert!(second.contains("exact match of `l2-"), "{second}");
    // Layer 2 held alpha and beta with their packages: nothing of theirs is
    // downloaded, extracted or patched again; only gamma (not in the layer) is fetched.
    let requests = srv.requests();
    assert_eq!(&requests[3..], ["/gamma-1.0.tar.gz"], "{requests:?}");
    for m in ["alpha", "beta"] {
        assert!(
            !second.contains(&format!("Built {m}")),
            "{m} rebuilt: {second}"
        );
        assert!(
            !second.contains(&format!("Unpacking {m}")),
            "{m} re-extracted: {second}"
        );
    }
    assert!(second.contains("Built gamma"), "{second}");
    // The runner's summary lists the cache commands run from steps.
    let summary = second.split("summary").nth(1).unwrap();
    assert!(summary.contains("restore  exact match `l2-"), "{summary}");
    assert!(summary.contains("save     `l3-"), "{summary}");
    assert!(second.contains("2 fresh"), "{second}");
    eprintln!("second run: {secs:.2}s");
}

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
            "cargo install --locked strata-build --version ={v}"
        )),
        "{cfg}"
    );
    assert!(!cfg.contains("install --locked strata\""), "{cfg}");
    assert!(
        cfg.contains(&format!("key: strata-bin-v{v}-{{{{ arch }}}}")),
        "{cfg}"
    );
    assert!(cfg.contains("- ~/.cargo/bin"), "{cfg}");
    assert!(
        cfg.contains("- strata-store-default-v1-{{ checksum \".strata-layer-key\" }}"),
        "{cfg}"
    );
    assert!(
        cfg.contains("- strata-store-default-v1-\n"),
        "prefix fallback: {cfg}"
    );
    assert!(cfg.contains("strata ci prune-store default"), "{cfg}");
    assert!(cfg.contains("- ~/.cache/strata\n"), "{cfg}");
    // Never the whole trees.
    assert!(
        !cfg.contains("- packages") && !cfg.contains("- build\n"),
        "{cfg}"
    );
    assert!(!cfg.contains("persist_to_workspace"), "{cfg}");
    // The generated config is one our runner reads.
    commit(p.root(), "generated");
    let dry = stdout(ci(&p).args(["run", "--dry-run"]));
    assert!(dry.contains("job build-default"), "{dry}");
    let gh = stdout(ci(&p).args(["generate", "github"]));
    assert!(
        gh.contains("restore-keys: strata-store-default-v1-"),
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
    // --install-cmd: a team's own binary source.
    let own = stdout(ci(&p).args([
        "generate",
        "circleci",
        "--install-cmd",
        "curl -sSf https://example.invalid/strata | sh",
    ]));
    assert!(
        own.contains(
            "command -v strata >/dev/null || { curl -sSf https://example.invalid/strata | sh; }"
        ),
        "{own}"
    );
    assert!(!own.contains("cargo install"), "{own}");

    // With a remote, the artifact cache serves every job: only the strata
    // binary is cached with CircleCI.
    let toml = p.read("strata.toml") + "\n[cache]\nremote = \"s3://bucket/prefix\"\n";
    p.write("strata.toml", toml);
    let cfg = stdout(ci(&p).args(["generate", "circleci"]));
    assert_eq!(cfg.matches("save_cache").count(), 1, "{cfg}");
    assert!(!cfg.contains("strata-store"), "{cfg}");
    assert!(cfg.contains("strata build default"), "{cfg}");
}

#[test]
fn ctrl_c_stops_ci_run_and_kills_the_running_step() {
    let cfg = "version: 2.1\njobs:\n  j:\n    steps:\n      - run: echo $$ > ~/../../pid && echo started && sleep 60\nworkflows:\n  w:\n    jobs: [j]\n";
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let mut child = p
        .raw()
        .env("STRATA_CI_STORE", p.path(".ci-store"))
        .args(["ci", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = || {
        std::fs::read_dir(p.path(".strata/ci"))
            .ok()?
            .flatten()
            .map(|e| e.path().join("pid"))
            .find(|f| f.is_file())
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.trim().parse::<i32>().ok())
    };
    let t = std::time::Instant::now();
    let step_pid = loop {
        if let Some(pid) = pid_file() {
            break pid;
        }
        assert!(t.elapsed().as_secs() < 30, "the step never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: signalling the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status =
        wait_timeout::ChildExt::wait_timeout(&mut child, std::time::Duration::from_secs(20))
            .unwrap()
            .expect("strata ci run did not stop on Ctrl-C");
    assert_eq!(status.code(), Some(130));
    // The step's shell (and its sleep) are gone.
    let t = std::time::Instant::now();
    while Path::new(&format!("/proc/{step_pid}")).exists() {
        assert!(
            t.elapsed().as_secs() < 5,
            "the step's process {step_pid} survived Ctrl-C"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/firmware");
    let tmp = tempfile::tempdir().unwrap();
    for dir in ["modules", "patches", "mirror"] {
        let st = Command::new("cp")
            .arg("-r")
            .arg(src.join(dir))
            .arg(tmp.path())
            .status()
            .unwrap();
        assert!(st.success());
    }
    std::fs::copy(src.join("strata.toml"), tmp.path().join("strata.toml")).unwrap();
    let p = TestProject { tmp };
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
