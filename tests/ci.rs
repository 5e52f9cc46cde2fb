//! `strata ci`: CircleCI key templates, cache semantics, workspaces and the
//! local runner, end to end through the binary. The seed's layer scenario:
//! ci_seed.rs; generated configs: ci_generate.rs.

mod ci_support;
mod common;

use ci_support::{ci, repo, stdout};
use std::path::Path;
use std::process::Command;

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

#[test]
fn a_venv_with_absolute_and_dangling_symlinks_restores_as_saved() {
    // The report: a venv saved fine, every restore failed, and the key
    // could never be saved again (caches are immutable).
    let p = repo(&[("venv/pyvenv.cfg", "home = /usr/bin\n")]);
    std::fs::create_dir_all(p.path("venv/bin")).unwrap();
    let links = [
        ("venv/bin/python", "/usr/bin/python3"),
        ("venv/bin/python3", "python"),
        ("venv/lib64", "lib"),
        ("venv/bin/gone", "../nowhere/tool"),
        ("venv/bin/up", "../../../../../../outside"),
    ];
    for (link, target) in links {
        std::os::unix::fs::symlink(target, p.path(link)).unwrap();
    }
    assert!(stdout(ci(&p).args(["save", "--key", "venv-1", "venv"])).contains("Saved cache"));
    let fresh = tempfile::tempdir().unwrap();
    let out = stdout(
        ci(&p)
            .args(["restore", "--key", "venv-", "--fail-on-miss", "--dir"])
            .arg(fresh.path()),
    );
    assert!(out.contains("venv-1"), "{out}");
    for (link, target) in links {
        assert_eq!(
            std::fs::read_link(fresh.path().join(link)).unwrap(),
            Path::new(target),
            "{link}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(fresh.path().join("venv/pyvenv.cfg")).unwrap(),
        "home = /usr/bin\n"
    );
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

/// Issue 16: a `store_artifacts` destination that was absolute or held `..`
/// was joined onto the artifacts dir unchecked, and removed first: the run
/// deleted a directory outside itself. On CircleCI a destination is a path
/// in the job's artifact space: a leading `/` is dropped, `..` is refused.
#[test]
fn issue16_store_artifacts_destination_stays_inside_the_run() {
    let outside = tempfile::tempdir().unwrap();
    let abs = outside.path().join("sentinel");
    std::fs::create_dir_all(&abs).unwrap();
    std::fs::write(abs.join("keep.txt"), "keep\n").unwrap();
    let cfg = format!(
        r#"
version: 2.1
jobs:
  absolute:
    steps:
      - run: echo abs > out.txt
      - store_artifacts: {{path: out.txt, destination: "{}"}}
  dotdot:
    steps:
      - run: echo up > out.txt
      - store_artifacts: {{path: out.txt, destination: "reports/../../../../../../sentinel"}}
workflows:
  w:
    jobs: [absolute, dotdot]
"#,
        abs.display()
    );
    let p = repo(&[(".circleci/config.yml", &cfg), ("README", "x\n")]);
    // What `..` from the job's artifacts dir reaches: the project's sentinel.
    p.write("sentinel/keep.txt", "keep\n");
    let (code, _, err) = ci_support::ci_run(&p, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("job dotdot") && err.contains("`..`") && err.contains("store_artifacts"),
        "{err}"
    );
    assert_eq!(p.read("sentinel/keep.txt"), "keep\n");
    assert_eq!(
        std::fs::read_to_string(abs.join("keep.txt")).unwrap(),
        "keep\n"
    );
    let run = std::fs::read_dir(p.path(".strata/ci"))
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let rel = abs.strip_prefix("/").unwrap();
    let landed = run.join("artifacts/absolute").join(rel);
    assert_eq!(std::fs::read_to_string(&landed).unwrap(), "abs\n");
}

#[test]
fn save_cache_skips_a_missing_path_with_a_warning_as_circleci_does() {
    // The generated config saves `~/.cargo/bin`, which does not exist when
    // strata was already on PATH: CircleCI warns and goes on.
    let cfg = r#"
version: 2.1
jobs:
  build:
    steps:
      - run: mkdir -p out && echo built > out/file
      - save_cache: {key: some-v1, paths: [out, ~/.cargo/bin]}
      - save_cache: {key: none-v1, paths: [~/.nothing-here]}
      - run: echo after the saves
workflows:
  w:
    jobs: [build]
"#;
    let p = repo(&[(".circleci/config.yml", cfg), ("README", "x\n")]);
    let (code, out, err) = ci_support::ci_run(&p, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("could not find path"), "{all}");
    assert!(all.contains(".cargo/bin"), "{all}");
    assert!(
        all.contains("Skipping cache generation for none-v1"),
        "{all}"
    );
    // The present path was saved under its key; the empty one was not.
    ci(&p)
        .args(["restore", "--key", "some-v1", "--fail-on-miss"])
        .assert()
        .success();
    ci(&p)
        .args(["restore", "--key", "none-v1", "--fail-on-miss"])
        .assert()
        .code(1);
}
