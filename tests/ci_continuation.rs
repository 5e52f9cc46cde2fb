//! Orbs the runner serves itself: the continuation orb's `continue` job and
//! `finish` command, and the path-filtering orb (`filter`, `set-parameters`,
//! `generate-config`) choosing pipeline parameters from the changed files.
//! Also `--trigger-source`.

mod ci_support;
mod common;
use ci_support::{ci_run, dry, git, glob_files, repo};

fn commit(p: &common::TestProject, msg: &str) {
    ci_support::commit(p.root(), msg);
}

const CONTINUED: &str = r#"version: 2.1
parameters:
  run-src: {type: boolean, default: false}
  run-docs: {type: boolean, default: false}
  flavour: {type: string, default: plain}
jobs:
  src:
    steps: [run: echo "building src (<< pipeline.parameters.flavour >>) in pipeline << pipeline.number >> << pipeline.id >>"]
  docs:
    steps: [run: echo "building docs"]
workflows:
  src:
    when: << pipeline.parameters.run-src >>
    jobs: [src]
  docs:
    when: << pipeline.parameters.run-docs >>
    jobs: [docs]
"#;

fn filtering_repo() -> common::TestProject {
    let setup = r#"version: 2.1
setup: true
orbs:
  path-filtering: circleci/path-filtering@1.0.0
workflows:
  setup:
    jobs:
      - path-filtering/filter:
          base-revision: main
          config-path: .circleci/continue_config.yml
          mapping: |
            # path regex, parameter, value
            src/.* run-src true
            src/special/.* flavour "special"
            docs/.* run-docs true
"#;
    repo(&[
        (".circleci/config.yml", setup),
        (".circleci/continue_config.yml", CONTINUED),
        ("src/a.c", "int a;\n"),
        ("docs/x.md", "# x\n"),
    ])
}

#[test]
fn path_filtering_sets_parameters_from_the_files_changed_since_the_base() {
    let p = filtering_repo();
    // A feature branch that changes src/ only.
    git(p.root(), &["checkout", "-q", "-b", "feature"]);
    p.write("src/special/b.c", "int b;\n");
    commit(&p, "src change");
    let (code, _, err) = ci_run(&p, &["--offline"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning: orb"), "{err}");
    assert!(
        err.contains("set flavour=\"special\", run-src=true"),
        "{err}"
    );
    assert!(
        err.contains("Continuing the pipeline with") && err.contains("(2 parameters)"),
        "{err}"
    );
    assert!(err.contains("]   building src (special)"), "{err}");
    assert!(!err.contains("building docs"), "{err}");
    // The orb's default /tmp files are the job's own, as on CircleCI.
    let written = glob_files(&p.path(".strata/ci"), "pipeline-parameters.json");
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(
        written[0].to_string_lossy().contains("/tmp/"),
        "{written:?}"
    );
    let params = std::fs::read_to_string(&written[0]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&params).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"run-src": true, "flavour": "special"})
    );

    // On the base branch itself, the last commit is compared with its parent.
    git(p.root(), &["checkout", "-q", "main"]);
    p.write("docs/y.md", "# y\n");
    commit(&p, "docs change");
    let (code, _, err) = ci_run(&p, &["--offline"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("]   building docs"), "{err}");
    assert!(!err.contains("building src"), "{err}");
}

#[test]
fn a_bad_mapping_fails_the_filter_job_naming_the_line() {
    let p = filtering_repo();
    let cfg = p
        .read(".circleci/config.yml")
        .replace("docs/.* run-docs true", "docs/.* run-docs yes");
    p.write(".circleci/config.yml", cfg);
    commit(&p, "bad mapping");
    let (code, _, err) = ci_run(&p, &["--offline"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("mapping line 4: value `yes` is not JSON"),
        "{err}"
    );
    assert!(!err.contains("Continuing the pipeline"), "{err}");
}

#[test]
fn four_field_mappings_merge_the_configs_they_name() {
    let tag = format!("pf4-{}", std::process::id());
    let setup = format!(
        r#"version: 2.1
setup: true
orbs:
  path-filtering: circleci/path-filtering@1.3.0
jobs:
  pick:
    steps:
      - checkout
      - path-filtering/set-parameters:
          base-revision: main
          output-path: /tmp/strata-test-{tag}/p.json
          config-list-path: /tmp/strata-test-{tag}/list
          mapping: |
            a/.* run-a true .circleci/a.yml
            b/.* run-b true .circleci/b.yml
      - path-filtering/generate-config:
          config-list-path: /tmp/strata-test-{tag}/list
          generated-config-path: /tmp/strata-test-{tag}/merged.yml
      - continuation/continue:
          configuration_path: /tmp/strata-test-{tag}/merged.yml
          parameters: /tmp/strata-test-{tag}/p.json
orbs_note: ignored
workflows:
  setup:
    jobs: [pick]
"#
    )
    .replace(
        "orbs:\n  path-filtering: circleci/path-filtering@1.3.0\n",
        "orbs:\n  path-filtering: circleci/path-filtering@1.3.0\n  continuation: circleci/continuation@1.0.0\n",
    )
    .replace("orbs_note: ignored\n", "");
    let a = "version: 2.1\nparameters:\n  run-a: {type: boolean, default: false}\n  run-b: {type: boolean, default: false}\njobs:\n  ja:\n    steps: [run: echo job-a]\nworkflows:\n  wa:\n    when: << pipeline.parameters.run-a >>\n    jobs: [ja]\n";
    let b = "version: 2.1\njobs:\n  jb:\n    steps: [run: echo job-b]\nworkflows:\n  wb:\n    when: << pipeline.parameters.run-b >>\n    jobs: [jb]\n";
    let p = repo(&[
        (".circleci/config.yml", &setup),
        (".circleci/a.yml", a),
        (".circleci/b.yml", b),
        ("a/1", "1\n"),
        ("b/1", "1\n"),
    ]);
    git(p.root(), &["checkout", "-q", "-b", "both"]);
    p.write("a/2", "2\n");
    p.write("b/2", "2\n");
    commit(&p, "both");
    let (code, _, err) = ci_run(&p, &["--offline"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("]   job-a"), "{err}");
    assert!(err.contains("]   job-b"), "{err}");
    let merged = glob_files(&p.path(".strata/ci"), "merged.yml");
    assert_eq!(merged.len(), 1, "{merged:?}");
    assert!(
        !std::path::Path::new(&format!("/tmp/strata-test-{tag}")).exists(),
        "the host's /tmp was written"
    );
    let merged = std::fs::read_to_string(&merged[0]).unwrap();
    assert!(merged.contains("ja") && merged.contains("jb"), "{merged}");
    let _ = std::fs::remove_dir_all(format!("/tmp/strata-test-{tag}"));
}

#[test]
fn the_continuation_orbs_continue_job_and_finish_command_are_served() {
    let setup = r#"version: 2.1
setup: true
orbs:
  continuation: circleci/continuation@1.0.0
jobs:
  gen:
    steps:
      - run: echo "setup in pipeline << pipeline.number >> << pipeline.id >>"
      - run: |
          mkdir -p out && echo '{"flavour": "from-job"}' > out/p.json
      - persist_to_workspace: {root: out, paths: [p.json]}
workflows:
  setup:
    jobs:
      - gen
      - continuation/continue:
          requires: [gen]
          configuration_path: .circleci/continue_config.yml
          parameters: ws/p.json
          workspace_path: ws
"#;
    let p = repo(&[
        (".circleci/config.yml", setup),
        (
            ".circleci/continue_config.yml",
            &CONTINUED.replace(
                "when: << pipeline.parameters.run-src >>",
                "when: {equal: [from-job, << pipeline.parameters.flavour >>]}",
            ),
        ),
    ]);
    let out = dry(&p, &["--offline"]);
    assert!(out.contains("continuation/continue"), "{out}");
    let (code, _, err) = ci_run(&p, &["--offline"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("(1 parameters)"), "{err}");
    assert!(err.contains("]   building src (from-job)"), "{err}");
    // One pipeline: the continued config keeps its number and id.
    let after = |marker: &str| {
        let at = err
            .find(marker)
            .unwrap_or_else(|| panic!("{marker}: {err}"));
        err[at + marker.len()..].lines().next().unwrap().to_string()
    };
    assert_eq!(
        after("setup in pipeline "),
        after("(from-job) in pipeline ")
    );

    // `finish` ends the pipeline: nothing continues it.
    let finish = "version: 2.1\nsetup: true\norbs:\n  continuation: circleci/continuation@1.0.0\njobs:\n  stop:\n    steps: [continuation/finish]\nworkflows:\n  setup:\n    jobs: [stop]\n";
    p.write(".circleci/config.yml", finish);
    commit(&p, "finish");
    let (code, _, err) = ci_run(&p, &["--offline"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("finished the pipeline; nothing continues it"),
        "{err}"
    );
    assert!(!err.contains("building"), "{err}");
}

#[test]
fn trigger_source_is_the_flag_or_api() {
    let cfg = "version: 2.1\njobs:\n  j:\n    steps: [run: echo hi]\nworkflows:\n  nightly:\n    when: {equal: [scheduled_pipeline, << pipeline.trigger_source >>]}\n    jobs: [j]\n  pushed:\n    when: {equal: [webhook, << pipeline.trigger_source >>]}\n    jobs: [j]\n  manual:\n    when: {equal: [api, << pipeline.trigger_source >>]}\n    jobs: [j]\n";
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let listed = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = dry(&p, &a);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["workflows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed(&[]), ["manual"]);
    assert_eq!(listed(&["--trigger-source", "webhook"]), ["pushed"]);
    assert_eq!(
        listed(&["--trigger-source", "scheduled_pipeline"]),
        ["nightly"]
    );
}

#[test]
fn a_workflows_pre_steps_are_the_configs_not_the_served_orbs() {
    // A pre-step naming a step only the served orbs may use is unknown.
    let cfg = "version: 2.1\nsetup: true\norbs:\n  path-filtering: circleci/path-filtering@1.0.0\nworkflows:\n  setup:\n    jobs:\n      - path-filtering/filter:\n          mapping: src/.* x true\n          pre-steps:\n            - strata-continue: {configuration_path: .circleci/config.yml}\n";
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let err = ci_support::dry_err(&p, &["--offline"]);
    assert!(
        err.contains("unknown step or command `strata-continue`"),
        "{err}"
    );
    // A pre-step naming the config's own command runs the config's, even
    // when the orb has a command of the same name.
    let cfg = "version: 2.1\nsetup: true\norbs:\n  path-filtering: circleci/path-filtering@1.0.0\ncommands:\n  set-parameters:\n    steps: [run: echo the configs own command]\nworkflows:\n  setup:\n    jobs:\n      - path-filtering/filter:\n          mapping: src/.* x true\n          pre-steps: [set-parameters]\n";
    p.write(".circleci/config.yml", cfg);
    commit(&p, "own command");
    let out = dry(&p, &["--offline", "--json"]);
    assert!(out.contains("echo the configs own command"), "{out}");
}
