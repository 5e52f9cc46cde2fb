//! `strata ci run` on configs written for each CircleCI feature: checked
//! values, key rendering, YAML merge keys, BASH_ENV, workflows, pipeline
//! values, matrix, approvals, refused DAGs, a Heads-shaped job. Each test
//! goes through the binary. Orbs, continuation and `--json`: ci_orbs.rs.

mod ci_support;
mod common;

use ci_support::*;
use common::*;
use std::path::Path;

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

#[test]
fn bash_env_environment_lists_parallelism_background_checkout_path_and_deploy() {
    let cfg = r#"version: 2.1
executors:
  param-exec:
    parameters:
      tag: {type: string, default: "1"}
    docker: [{image: "debian:<< parameters.tag >>"}]
    environment:
      - FROM_EXEC: exec
jobs:
  j:
    parameters:
      ex: {type: executor, default: param-exec}
      extra: {type: steps, default: []}
    executor: << parameters.ex >>
    parallelism: 3
    environment:
      - LIST_A: a
      - LIST_B: b
    steps:
      - checkout: {path: ~/src}
      - run: echo 'export FROM_BASH_ENV=sourced' >> $BASH_ENV
      - run: echo "node=$CIRCLE_NODE_INDEX/$CIRCLE_NODE_TOTAL env=$FROM_BASH_ENV $LIST_A$LIST_B $FROM_EXEC" && test -f ~/src/README
      - run: {name: server, command: "echo $$ > ~/bg.pid; exec sleep 300", background: true}
      - run: sleep 0.3 && kill -0 $(cat ~/bg.pid) && echo bg-alive
      - << parameters.extra >>
      - deploy: {name: ship, command: echo deployed}
workflows:
  w:
    jobs:
      - j: {extra: [run: echo extra-step]}
"#;
    let p = repo(&[(".circleci/config.yml", cfg), ("README", "hi\n")]);
    let out = dry(&p, &[]);
    assert!(out.contains("docker executor (debian:1)"), "{out}");
    assert!(out.contains("parallelism 3"), "{out}");
    assert!(out.contains("- server (background)"), "{out}");
    let (code, _, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "exit {code}: {err}");
    for n in 0..3 {
        assert!(
            err.contains(&format!("node={n}/3 env=sourced ab exec")),
            "{n}: {err}"
        );
    }
    assert_eq!(err.matches("]   bg-alive").count(), 3, "{err}");
    assert_eq!(err.matches("]   extra-step").count(), 3, "{err}");
    assert!(err.contains("deployed"), "{err}");
    // The background step ended with the job.
    let pids: Vec<i32> = glob_files(&p.path(".strata/ci"), "bg.pid")
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    // Killed when the job ended: allow the kernel a moment to reap them.
    let gone = |pid: i32| {
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pids.iter().all(|&pid| gone(pid)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "background step {pid} outlived its job"
        );
    }
}

const WORKFLOWS: &str = r#"version: 2.1
parameters:
  run-nightly: {type: boolean, default: false}
  flavour: {type: string, default: plain}
jobs:
  say:
    parameters:
      what: {type: string}
    steps:
      - run: echo "<< parameters.what >> << pipeline.parameters.flavour >> n=<< pipeline.number >> src=<< pipeline.trigger_source >> tag=[<< pipeline.git.tag >>] url=<< pipeline.project.git_url >>"
workflows:
  build:
    jobs:
      - say: {what: build}
  release:
    when:
      matches: {pattern: "^ma.n$", value: << pipeline.git.branch >>}
    jobs:
      - say: {what: release}
  nightly:
    when: << pipeline.parameters.run-nightly >>
    jobs:
      - say: {what: nightly}
  not-on-main:
    unless:
      or:
        - equal: [main, << pipeline.git.branch >>]
        - and: [true, {not: false}]
    jobs:
      - say: {what: never}
"#;

#[test]
fn several_workflows_when_unless_matches_and_pipeline_parameters() {
    let p = repo(&[(".circleci/config.yml", WORKFLOWS)]);
    let out = dry(&p, &[]);
    assert!(out.contains("workflow build"), "{out}");
    assert!(out.contains("workflow release"), "{out}");
    assert!(!out.contains("workflow nightly"), "{out}");
    assert!(!out.contains("workflow not-on-main"), "{out}");
    assert!(out.contains("echo \"build plain n="), "{out}");
    let out = dry(
        &p,
        &["--param", "run-nightly=true", "--param", "flavour=spicy"],
    );
    assert!(out.contains("workflow nightly"), "{out}");
    assert!(out.contains("echo \"nightly spicy"), "{out}");
    let out = dry(&p, &["--workflow", "release"]);
    assert!(!out.contains("workflow build"), "{out}");
    let err = dry_err(&p, &["--param", "nope=1"]);
    assert!(err.contains("no pipeline parameter `nope`"), "{err}");
    let err = dry_err(&p, &["--param", "run-nightly=maybe"]);
    assert!(
        err.contains("run-nightly") && err.contains("boolean"),
        "{err}"
    );
    // A run runs every workflow whose condition holds.
    git(p.root(), &["tag", "v1.0"]);
    let (code, _, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Running workflow `build`"), "{err}");
    assert!(err.contains("Running workflow `release`"), "{err}");
    assert!(
        err.contains("release plain n=") && err.contains("src=api tag=[v1.0]"),
        "{err}"
    );
}

#[test]
fn matrix_naming_exclude_alias_and_requires_on_all_instances() {
    let cfg = r#"version: 2.1
jobs:
  test:
    parameters:
      os: {type: string, default: linux}
      v: {type: integer, default: 1}
    steps:
      - run: echo test << parameters.os >> << parameters.v >>
  report:
    steps: [run: echo report]
workflows:
  w:
    jobs:
      - test:
          matrix:
            parameters:
              os: [linux, mac]
              v: [1, 2]
            exclude:
              - {os: mac, v: 2}
      - test:
          name: named-<< matrix.os >>
          matrix:
            alias: named-all
            parameters:
              os: [bsd]
      - report: {requires: [test, named-all]}
"#;
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let out = dry(&p, &[]);
    for j in [
        "job test-linux-1",
        "job test-linux-2",
        "job test-mac-1",
        "job named-bsd",
    ] {
        assert!(out.contains(j), "{j}: {out}");
    }
    assert!(!out.contains("test-mac-2"), "{out}");
    assert!(
        out.contains("job report (requires test-linux-1, test-linux-2, test-mac-1, named-bsd)"),
        "{out}"
    );
    assert!(out.contains("echo test mac 1"), "{out}");
}

#[test]
fn approval_jobs_hold_their_dependents_unless_approved() {
    let cfg = r#"version: 2.1
jobs:
  build: {steps: [run: echo built]}
  ship: {steps: [run: echo shipped]}
workflows:
  w:
    jobs:
      - build
      - hold: {type: approval, requires: [build]}
      - ship: {requires: [hold]}
"#;
    let p = repo(&[(".circleci/config.yml", cfg)]);
    assert!(dry(&p, &[]).contains("job hold (requires build) [approval]"));
    let (code, _, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("built") && !err.contains("shipped"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("ship") && l.contains("waiting")),
        "{err}"
    );
    let (code, _, err) = ci_run(&p, &["--approve"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("shipped"), "{err}");
}

#[test]
fn dry_run_refuses_cycles_self_requires_duplicates_and_unknown_requires() {
    let base = "version: 2.1\njobs:\n  a: {steps: [run: echo a]}\n  b: {steps: [run: echo b]}\nworkflows:\n  w:\n    jobs:\nJOBS";
    for (jobs, want) in [
        (
            "      - a: {requires: [b]}\n      - b: {requires: [a]}\n",
            "form a cycle",
        ),
        ("      - a: {requires: [a]}\n", "requires itself"),
        (
            "      - a\n      - b: {name: a}\n",
            "two jobs are named `a`",
        ),
        (
            "      - a: {requires: [zz]}\n",
            "requires `zz`, which is not a job",
        ),
    ] {
        let p = repo(&[(".circleci/config.yml", &base.replace("JOBS", jobs))]);
        let err = dry_err(&p, &[]);
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[test]
fn parameters_of_type_steps_sections_and_heredocs_run() {
    let cfg = r#"version: 2.1
commands:
  wrap:
    parameters:
      verbose: {type: boolean, default: false}
      body: {type: steps}
    steps:
      - run: echo "start<<# parameters.verbose >> (verbose)<</ parameters.verbose >>"
      - steps: << parameters.body >>
jobs:
  j:
    steps:
      - wrap:
          verbose: true
          body:
            - run: |
                cat <<EOF >> ~/doc.txt
                a << b >> c
                EOF
                cat ~/doc.txt
workflows:
  w:
    jobs: [j]
"#;
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let (code, _, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("start (verbose)"), "{err}");
    assert!(err.contains("a << b >> c"), "{err}");
}

/// The shape of Heads's `create_hashes` job (written for this test): an
/// executor with `working_directory: ~/heads`, a workflow `name:` with
/// spaces and brackets, `git reset --hard "$CIRCLE_SHA1"`, `find | sort -h |
/// xargs sha256sum` digests, a workspace rooted at `~/heads`, and a
/// downstream job keyed on a digest file from the workspace.
#[test]
fn a_heads_shaped_create_hashes_job_runs_with_job_selected_by_its_definition_name() {
    let cfg = r#"version: 2.1
executors:
  heads-docker:
    docker:
      - image: example/heads-dev-env@sha256:0000
    resource_class: large
    working_directory: ~/heads
jobs:
  create_hashes:
    executor: heads-docker
    steps:
      - checkout
      - run:
          name: git reset
          command: |
            git reset --hard "$CIRCLE_SHA1"
      - run:
          name: Make tmp dir
          command: |
            mkdir ./tmpDir
      - run:
          name: Creating all modules and patches digest
          command: |
            find ./Makefile ./patches/ ./modules/ -type f | sort -h |xargs sha256sum > ./tmpDir/all_modules_and_patches.sha256sums
      - persist_to_workspace:
          root: ~/heads
          paths:
            - tmpDir
  consumer:
    executor: heads-docker
    steps:
      - attach_workspace:
          at: ~/heads
      - restore_cache:
          keys:
            - modules-{{ checksum "./tmpDir/all_modules_and_patches.sha256sums" }}{{ .Environment.CACHE_VERSION }}
      - run: wc -l < tmpDir/all_modules_and_patches.sha256sums
workflows:
  build_and_test:
    jobs:
      - create_hashes:
          name: create_hashes [cache keys]
      - consumer:
          requires:
            - create_hashes [cache keys]
"#;
    let p = repo(&[
        (".circleci/config.yml", cfg),
        ("Makefile", "all:\n"),
        ("modules/a", "a\n"),
        ("modules/b", "b\n"),
        ("patches/a/0001.patch", "p\n"),
    ]);
    let (code, _, err) = ci_run(&p, &["--job", "create_hashes"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("create_hashes [cache keys] success"), "{err}");
    assert!(!err.contains("consumer"), "{err}");
    let sums = glob_files(&p.path(".strata/ci"), "all_modules_and_patches.sha256sums");
    let text = std::fs::read_to_string(&sums[0]).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.contains("./modules/a") && text.contains("./Makefile"),
        "{text}"
    );
    // The whole workflow: the consumer's key comes from the workspace file.
    let (code, _, err) = ci_run(&p, &["--env", "CACHE_VERSION=20260420"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("miss for `modules-") && err.contains("=20260420`"),
        "{err}"
    );
}

#[test]
fn a_version_2_config_without_workflows_runs_its_build_job() {
    let cfg = "version: 2\njobs:\n  build:\n    docker: [{image: 'circleci/node:10'}]\n    steps:\n      - run: echo v2-build\n";
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let (code, _, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("]   v2-build"), "{err}");
    let p = repo(&[(
        ".circleci/config.yml",
        "version: 2\njobs:\n  test:\n    steps: [checkout]\n",
    )]);
    assert!(dry_err(&p, &[]).contains("no job named `build`"));
}

#[test]
fn a_no_op_job_runs_nothing_and_lets_its_dependents_run() {
    // Held-out configs use `type: no-op` jobs as join points.
    let cfg = r#"version: 2.1
jobs:
  a:
    steps:
      - run: echo from-a
  join:
    type: no-op
  b:
    steps:
      - run: echo from-b
workflows:
  w:
    jobs:
      - a
      - join: {requires: [a]}
      - gate: {type: no-op, requires: [join]}
      - b: {requires: [gate]}
"#;
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let (code, out, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("from-b"), "{err}");
    for j in ["join", "gate"] {
        let line = err
            .lines()
            .find(|l| l.trim_start().starts_with(j) && l.contains("success"))
            .unwrap_or_else(|| panic!("{j}: {err}"));
        assert!(!line.contains("failed"), "{line}");
    }
}

#[test]
fn two_merge_keys_in_one_mapping_merge_both_as_circleci_does() {
    // Not YAML 1.1 (a duplicate key), yet CircleCI's SnakeYAML merges both:
    // explicit keys win, then the first `<<`'s keys.
    let cfg = r#"version: 2.1
defaults: &defaults
  working_directory: ~/first
  environment: {FROM: first}
more: &more
  working_directory: ~/second
  parallelism: 1
  environment: {FROM: second, ONLY_SECOND: yes}
jobs:
  j:
    <<: *defaults
    steps:
      - run: echo "dir=$PWD from=$FROM"
    <<: *more
workflows:
  w:
    jobs: [j]
"#;
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let (code, out, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("/home/first from=first"), "{err}");
}

#[test]
fn a_circleci_2_0_type_shell_step_runs_as_run() {
    let cfg = r#"version: 2
jobs:
  build:
    docker: [{image: debian:12}]
    steps:
      - type: shell
        name: Old-style step
        command: echo old-style-ran
      - type: shell
        command: |
          echo second-line
workflows:
  version: 2
  w:
    jobs: [build]
"#;
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let (code, out, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("old-style-ran"), "{err}");
    assert!(err.contains("second-line"), "{err}");
    assert!(dry(&p, &[]).contains("- Old-style step"));
    let bad = cfg.replace("type: shell\n        name", "type: teleport\n        name");
    let p = repo(&[(".circleci/config.yml", &bad)]);
    let err = dry_err(&p, &[]);
    assert!(err.contains("unknown step `type: teleport`"), "{err}");
}

#[test]
fn same_named_entries_with_disjoint_branch_filters_run_the_one_for_this_branch() {
    let cfg = r#"version: 2.1
jobs:
  deploy:
    parameters:
      to: {type: string}
    steps:
      - run: echo deploying-to-<< parameters.to >>
  after:
    steps:
      - run: echo after-ran
  docs:
    steps:
      - run: echo docs-ran
workflows:
  w:
    jobs:
      - deploy:
          to: production
          filters: {branches: {only: main}}
      - deploy:
          to: staging
          filters: {branches: {ignore: [main, /release-.*/]}}
      - after: {requires: [deploy]}
      - docs:
          filters: {branches: {only: /feature-.*/}}
"#;
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let (code, out, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("deploying-to-production"), "{err}");
    assert!(!err.contains("deploying-to-staging"), "{err}");
    assert!(err.contains("after-ran"), "{err}");
    assert!(!err.contains("docs-ran"), "{err}");
    // Another branch: the other entry, and a regex filter.
    git(p.root(), &["checkout", "-q", "-b", "feature-x"]);
    let (code, out, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("deploying-to-staging"), "{err}");
    assert!(err.contains("docs-ran"), "{err}");
    // A release branch runs neither deploy, nor what requires it.
    git(p.root(), &["checkout", "-q", "-b", "release-1"]);
    let out = dry(&p, &[]);
    assert!(
        !out.contains("job deploy") && !out.contains("job after"),
        "{out}"
    );
    // Overlapping filters are two jobs of one name, refused.
    let both = cfg.replace("ignore: [main, /release-.*/]", "only: /.*/");
    let p = repo(&[(".circleci/config.yml", &both)]);
    let err = dry_err(&p, &[]);
    assert!(err.contains("two jobs are named `deploy`"), "{err}");
}

#[test]
fn jobs_of_one_serial_group_never_overlap() {
    // Each job logs when it starts and ends; --parallel 3 would run all
    // three at once.
    let cfg = |group: &str| {
        let mut c = String::from("version: 2.1\njobs:\n");
        for n in ["a", "b", "c"] {
            c.push_str(&format!(
                "  {n}:\n    steps:\n      - run: echo \"$(date +%s.%N) $(sleep 0.5; date +%s.%N)\" >> \"$SPANS\"\n"
            ));
        }
        c.push_str("workflows:\n  w:\n    jobs:\n");
        for n in ["a", "b", "c"] {
            c.push_str(&format!("      - {n}: {{serial-group: {group}}}\n"));
        }
        c
    };
    let overlaps = |p: &TestProject, spans: &Path| -> bool {
        let (code, out, err) = ci_run(
            p,
            &[
                "--parallel",
                "3",
                "--env",
                &format!("SPANS={}", spans.display()),
            ],
        );
        assert_eq!(code, 0, "{out}\n{err}");
        let mut v: Vec<(f64, f64)> = std::fs::read_to_string(spans)
            .unwrap()
            .lines()
            .map(|l| {
                let (a, b) = l.split_once(' ').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            })
            .collect();
        assert_eq!(v.len(), 3);
        v.sort_by(|x, y| x.0.total_cmp(&y.0));
        v.windows(2).any(|w| w[1].0 < w[0].1)
    };
    let p = repo(&[(
        ".circleci/config.yml",
        &cfg("<< pipeline.git.branch >>/deploy"),
    )]);
    assert!(!overlaps(&p, &p.path("spans")), "one group overlapped");
    // Each job in a group of its own: they do run at once.
    let mut c = cfg("x");
    for n in ["a", "b", "c"] {
        c = c.replacen("serial-group: x", &format!("serial-group: own-{n}"), 1);
    }
    let p = repo(&[(".circleci/config.yml", &c)]);
    assert!(
        overlaps(&p, &p.path("spans")),
        "separate groups ran one at a time"
    );
}
