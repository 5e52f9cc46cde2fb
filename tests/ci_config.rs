//! `strata ci run` on configs written for each CircleCI feature: checked
//! values, YAML merge keys, workflows, pipeline values, matrix, orbs… Each
//! test goes through the binary, mostly with `--dry-run`.

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
    git(p.root(), &["init", "-q", "-b", "main"]);
    git(p.root(), &["add", "-A"]);
    git(
        p.root(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    );
    p
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// `strata ci run ARGS` in `p` with its own CI store: (exit code, stdout, stderr).
fn ci_run(p: &TestProject, args: &[&str]) -> (i32, String, String) {
    let out = p
        .strata()
        .env("STRATA_CI_STORE", p.path(".ci-store"))
        .args(["ci", "run"])
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A dry run that must succeed: its stdout.
fn dry(p: &TestProject, args: &[&str]) -> String {
    let mut a = vec!["--dry-run"];
    a.extend_from_slice(args);
    let (code, out, err) = ci_run(p, &a);
    assert_eq!(code, 0, "{out}\n{err}");
    out
}

/// A dry run that must fail with usage-or-failure: its stderr.
fn dry_err(p: &TestProject, args: &[&str]) -> String {
    let mut a = vec!["--dry-run"];
    a.extend_from_slice(args);
    let (code, out, err) = ci_run(p, &a);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

const ONE_JOB: &str = "version: 2.1\njobs:\n  j:\n    docker: [{image: debian:12}]\n    steps:\n      - run: {command: echo hi, no_output_timeout: TIMEOUT}\nworkflows:\n  w:\n    jobs: [j]\n";

#[test]
fn huge_or_bad_durations_are_errors_naming_the_key_not_panics() {
    for bad in ["99999999999999999999h", "5x", "25h", "0s"] {
        let p = repo(&[(".circleci/config.yml", &ONE_JOB.replace("TIMEOUT", bad))]);
        let err = dry_err(&p, &[]);
        assert!(
            err.contains(&format!("no_output_timeout: {bad}")) && err.contains("jobs.j"),
            "{bad}: {err}"
        );
    }
    let p = repo(&[(".circleci/config.yml", &ONE_JOB.replace("TIMEOUT", "1h30m"))]);
    assert!(dry(&p, &[]).contains("- echo hi"));
}

#[test]
fn dry_run_renders_the_keys_the_run_renders() {
    let cfg = r#"version: 2.1
jobs:
  j:
    environment: {FROM_JOB: jobval}
    steps:
      - run: mkdir -p d && echo x > d/f
      - save_cache:
          key: k-{{ .Environment.CIRCLE_JOB }}-{{ .Environment.FOO }}-{{ .Environment.FROM_JOB }}-{{ .Branch }}-{{ .BuildNum }}-{{ arch }}-{{ .Environment.UNSET_HERE }}
          paths: [d]
workflows:
  w:
    jobs: [j]
"#;
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let out = dry(&p, &["--env", "FOO=bar"]);
    let key = out
        .lines()
        .find_map(|l| l.split_once(": key ").map(|(_, k)| k))
        .and_then(|k| k.split(" paths").next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert!(
        key.starts_with("k-j-bar-jobval-main-1-arch1-linux-") && key.ends_with("-<no value>"),
        "{key}"
    );
    let (code, _, err) = ci_run(&p, &["--env", "FOO=bar"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("`{key}` new")), "{key}\n{err}");
}

#[test]
fn a_template_without_a_value_is_an_error_not_an_empty_string() {
    let p = TestProject::new("");
    std::fs::remove_file(p.path("strata.toml")).unwrap();
    p.write("d/f", "x");
    let out = p
        .strata()
        .env("STRATA_CI_STORE", p.path(".ci-store"))
        .env_remove("CIRCLE_BRANCH")
        .args(["ci", "save", "--key", "k1-{{ .Branch }}", "d"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("k1-{{ .Branch }}") && err.contains("`.Branch` has no value"),
        "{err}"
    );
}

#[test]
fn yaml_merge_keys_bring_image_working_directory_and_environment() {
    let cfg = r#"version: 2.1
defaults: &defaults
  docker: [{image: "cimg/base:2024.01"}]
  working_directory: ~/merged-wd
  environment: {FROM_MERGE: merged}
more: &more
  environment: {IGNORED: "earlier merge wins"}
  parallelism: 1
jobs:
  a:
    <<: *defaults
    steps:
      - run: echo "A=$FROM_MERGE in $(basename $(pwd))"
  b:
    <<: [*defaults, *more]
    steps:
      - run: echo "B=$FROM_MERGE IGNORED=${IGNORED:-unset}"
workflows:
  w:
    jobs: [a, {b: {requires: [a]}}]
"#;
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let out = dry(&p, &[]);
    assert!(out.contains("docker executor (cimg/base:2024.01)"), "{out}");
    let (code, _, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("A=merged in merged-wd"), "{err}");
    assert!(err.contains("B=merged IGNORED=unset"), "{err}");
}
