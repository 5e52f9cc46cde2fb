//! `strata ci run` with orbs (inline, vendored, fetched from a local
//! server and cached, unresolved), setup configs with a continuation, and
//! `--json` output.

mod ci_support;
mod common;

use ci_support::*;
use common::*;

const ORB_SOURCE: &str = r#"version: 2.1
executors:
  default:
    docker: [{image: "orb-image:1"}]
commands:
  greet:
    parameters:
      who: {type: string, default: orb}
    steps:
      - run: echo "hello from << parameters.who >>"
jobs:
  hello:
    executor: default
    steps:
      - greet
"#;

fn orb_config(orbs: &str) -> String {
    format!(
        "version: 2.1\norbs:\n{orbs}\njobs:\n  local:\n    steps:\n      - tools/greet: {{who: local}}\nworkflows:\n  w:\n    jobs:\n      - tools/hello\n      - local\n"
    )
}

#[test]
fn inline_orbs_and_registry_orbs_from_the_project_dir() {
    let inline = ORB_SOURCE
        .lines()
        .skip(1)
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    let p = repo(&[(
        ".circleci/config.yml",
        &orb_config(&format!("  tools:\n{inline}")),
    )]);
    let (code, _, err) = ci_run(&p, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("hello from orb") && err.contains("hello from local"),
        "{err}"
    );
    assert!(err.contains("docker executor (orb-image:1)"), "{err}");

    let p = repo(&[
        (
            ".circleci/config.yml",
            &orb_config("  tools: acme/tools@1.2.3"),
        ),
        (".circleci/orbs/acme/tools@1.2.3.yml", ORB_SOURCE),
    ]);
    let (code, _, err) = ci_run(&p, &["--offline"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("hello from orb"), "{err}");
}

#[test]
fn registry_orbs_are_fetched_cached_per_version_or_reported_unresolved() {
    let srv = Server::start();
    let answer = serde_json::json!({"data": {"orbVersion": {"source": ORB_SOURCE}}});
    srv.route("/graphql", Reply::Ok(answer.to_string().into_bytes()));
    let p = repo(&[(
        ".circleci/config.yml",
        &orb_config("  tools: acme/tools@1.2.3"),
    )]);
    let (code, _, err) = ci_run(&p, &["--orb-url", &srv.url("/graphql")]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("hello from orb"), "{err}");
    assert_eq!(srv.requests(), ["/graphql"]);
    // Cached per exact version: offline now, and no second request.
    let (code, _, err) = ci_run(&p, &["--offline"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(srv.requests().len(), 1);

    // No source at all: the dry run lists every job with one warning; a
    // real run of the orb's job fails with the same message.
    let p = repo(&[(
        ".circleci/config.yml",
        &orb_config("  tools: other/tools@2.0.0"),
    )]);
    let (code, out, err) = ci_run(&p, &["--dry-run", "--offline"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("job tools/hello [unresolved]"), "{out}");
    assert!(out.contains("job local [unresolved]"), "{out}");
    assert_eq!(
        err.matches("warning: orb `tools` (other/tools@2.0.0)")
            .count(),
        1,
        "{err}"
    );
    assert!(
        err.contains(".circleci/orbs/other/tools@2.0.0.yml"),
        "{err}"
    );
    let (code, _, err) = ci_run(&p, &["--offline", "--job", "tools/hello"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("orb `tools` has no source"), "{err}");
}

#[test]
fn json_dry_run_is_one_document_and_a_run_is_json_lines() {
    let cfg = "version: 2.1\njobs:\n  a:\n    steps:\n      - run: mkdir -p d && echo x > d/f\n      - save_cache: {key: 'k-{{ .Environment.CIRCLE_JOB }}', paths: [d]}\n  b:\n    steps:\n      - restore_cache: {keys: [k-a]}\nworkflows:\n  w:\n    jobs: [a, {b: {requires: [a]}}]\n";
    let p = repo(&[(".circleci/config.yml", cfg)]);
    let out = p
        .strata()
        .env("STRATA_CI_STORE", p.path(".ci-store"))
        .args(["--json", "ci", "run", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = &doc["workflows"][0]["jobs"];
    assert_eq!(doc["workflows"][0]["name"], "w");
    assert_eq!(jobs[1]["name"], "b");
    assert_eq!(jobs[1]["requires"], serde_json::json!(["a"]));
    assert_eq!(jobs[0]["cache_keys"], serde_json::json!(["k-a"]));
    assert_eq!(jobs[1]["steps"], serde_json::json!(["Restoring cache"]));

    let out = p
        .strata()
        .env("STRATA_CI_STORE", p.path(".ci-store"))
        .args(["--json", "ci", "run"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"workflow-started"));
    assert_eq!(kinds.last(), Some(&"workflow-finished"));
    let save = events.iter().find(|e| e["event"] == "save").unwrap();
    assert_eq!(save["key"], "k-a");
    assert_eq!(save["outcome"]["result"], "new");
    let restore = events.iter().find(|e| e["event"] == "restore").unwrap();
    assert_eq!(restore["hit"], true);
    assert_eq!(restore["key"], "k-a");
    assert!(restore["bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "job-finished" && e["status"] == "success")
            .count(),
        2
    );
}

#[test]
fn a_setup_config_continues_the_pipeline_locally_with_parameters() {
    let setup = r#"version: 2.1
setup: true
orbs:
  continuation: circleci/continuation@1.0.0
jobs:
  setup:
    steps:
      - checkout
      - run: |
          echo '{"target": "x230", "deep": true}' > params.json
      - continuation/continue:
          configuration_path: .circleci/continue.yml
          parameters: params.json
workflows:
  setup:
    jobs: [setup]
"#;
    let continued = r#"version: 2.1
parameters:
  target: {type: string, default: none}
  deep: {type: boolean, default: false}
jobs:
  build:
    steps:
      - run: echo "continued build of << pipeline.parameters.target >>"
      - when:
          condition: << pipeline.parameters.deep >>
          steps: [run: echo deep-checks]
workflows:
  main:
    when: {equal: [x230, << pipeline.parameters.target >>]}
    jobs: [build]
"#;
    let p = repo(&[
        (".circleci/config.yml", setup),
        (".circleci/continue.yml", continued),
    ]);
    // Offline: the continuation orb is served by the runner, never fetched.
    let (code, _, err) = ci_run(&p, &["--offline"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning: orb"), "{err}");
    assert!(
        err.contains("Continuing the pipeline with .circleci/continue.yml (2 parameters)"),
        "{err}"
    );
    assert!(err.contains("]   continued build of x230"), "{err}");
    assert!(err.contains("]   deep-checks"), "{err}");
    // A continued config that is itself a setup config is refused.
    p.write(".circleci/continue.yml", setup);
    git(p.root(), &["add", ".circleci/continue.yml"]);
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
            "again",
        ],
    );
    let (code, _, err) = ci_run(&p, &["--offline"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("cannot be a setup configuration"), "{err}");
}
