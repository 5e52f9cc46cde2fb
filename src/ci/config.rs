//! CircleCI 2.1 configuration: what a loaded config is (workflows of
//! concrete jobs, each a flat list of steps) and `load`, which drives the
//! stages: YAML ([`super::yaml`]), expansion of jobs, commands, executors,
//! parameters and pipeline values ([`super::expand`]), and workflow
//! planning: matrix, `when`/`unless`, requires ([`super::workflow`]).
//!
//! Everything a run needs is decided here, before anything runs, so
//! `--dry-run` shows exactly what a run does and refuses what CircleCI
//! refuses (cycles, unknown requires) before the first step.

use serde_norway::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// CircleCI's default `no_output_timeout`.
pub const DEFAULT_NO_OUTPUT_TIMEOUT: Duration = Duration::from_secs(600);

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {at}: {what}")]
pub struct ConfigError {
    pub file: String,
    pub at: String,
    pub what: String,
}

/// When a step runs, relative to the job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    OnSuccess,
    OnFail,
    Always,
}

/// One concrete step.
#[derive(Clone, Debug)]
pub enum Step {
    Checkout {
        /// Where to clone (default: the working directory).
        path: Option<String>,
    },
    Run {
        name: String,
        command: String,
        environment: BTreeMap<String, String>,
        working_directory: Option<String>,
        when: When,
        no_output_timeout: Duration,
        /// Started, not waited for; ended with the job.
        background: bool,
    },
    RestoreCache {
        name: String,
        keys: Vec<String>,
    },
    SaveCache {
        name: String,
        key: String,
        paths: Vec<String>,
        when: When,
    },
    PersistToWorkspace {
        root: String,
        paths: Vec<String>,
    },
    AttachWorkspace {
        at: String,
    },
    StoreArtifacts {
        path: String,
        destination: Option<String>,
    },
    /// The continuation orb's `continue`, served by the runner itself: the
    /// pipeline continues with `configuration_path` and `parameters` (a JSON
    /// object, or a file holding one) once the setup workflow is done.
    Continue {
        configuration_path: String,
        parameters: String,
    },
    /// The path-filtering orb's `set-parameters`: pipeline parameters from
    /// the files changed since `base_revision` (see `path_filter`).
    SetParameters {
        base_revision: String,
        mapping: String,
        config_path: String,
        output_path: String,
        config_list_path: String,
    },
    /// The path-filtering orb's `generate-config`: the configs listed in
    /// `config_list_path` merged into one.
    GenerateConfig {
        config_list_path: String,
        generated_config_path: String,
    },
    /// A step that has no meaning on the host (e.g. setup_remote_docker).
    Noted(String),
}

impl Step {
    pub fn when(&self) -> When {
        match self {
            Step::Run { when, .. } | Step::SaveCache { when, .. } => *when,
            _ => When::OnSuccess,
        }
    }

    pub fn title(&self) -> String {
        match self {
            Step::Checkout { .. } => "Checkout code".into(),
            Step::Run { name, .. } => name.clone(),
            Step::RestoreCache { name, .. } | Step::SaveCache { name, .. } => name.clone(),
            Step::PersistToWorkspace { .. } => "Persisting to Workspace".into(),
            Step::AttachWorkspace { .. } => "Attaching Workspace".into(),
            Step::StoreArtifacts { .. } => "Uploading artifacts".into(),
            Step::Continue {
                configuration_path, ..
            } if configuration_path.is_empty() => "Finish the pipeline".into(),
            Step::Continue {
                configuration_path, ..
            } => format!("Continue the pipeline with {configuration_path}"),
            Step::SetParameters { .. } => "Set parameters from the changed files".into(),
            Step::GenerateConfig { .. } => "Generate the continued config".into(),
            Step::Noted(what) => what.clone(),
        }
    }
}

/// One job of a workflow, ready to run.
#[derive(Clone, Debug, Default)]
pub struct Job {
    /// The name in the workflow (`name:`, the matrix name, or the job's own).
    pub name: String,
    /// The job it instantiates (`jobs:` key, `orb/job`, or the approval name).
    pub job_ref: String,
    pub requires: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub working_directory: String,
    /// What the executor asked for, noted: jobs run on the host.
    pub executor_note: Option<String>,
    pub steps: Vec<Step>,
    /// `parallelism`: copies run with CIRCLE_NODE_INDEX 0..N.
    pub parallelism: u64,
    /// A `type: approval` job: no steps, approved with `--approve`.
    pub approval: bool,
    /// Why the job cannot run (an orb with no source), shown by a dry run.
    pub unresolved: Option<String>,
    /// `serial-group`: jobs of one group run one at a time.
    pub serial_group: Option<String>,
}

/// One workflow, jobs in config order.
#[derive(Clone, Debug)]
pub struct Workflow {
    pub name: String,
    pub jobs: Vec<Job>,
}

/// Values of `<< pipeline.* >>`.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    pub branch: String,
    pub revision: String,
    pub tag: String,
    pub number: u64,
    pub id: String,
    pub git_url: String,
    pub trigger_source: String,
    /// `--param NAME=VALUE`, checked against the config's `parameters`.
    pub params: Vec<(String, String)>,
}

/// What was loaded: the workflows to run and warnings to show once.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub workflows: Vec<Workflow>,
    /// Workflows skipped by their `when`/`unless`, with the reason.
    pub skipped: Vec<String>,
    pub warnings: Vec<String>,
    /// `setup: true`: a setup config, which may continue the pipeline.
    pub setup: bool,
}

/// Reads `file` and expands every workflow whose `when`/`unless` holds (or
/// only `workflow`). `orbs` resolves registry orbs (`ns/name@version`).
pub fn load(
    file: &str,
    text: &str,
    workflow: Option<&str>,
    pipeline: &Pipeline,
    orbs: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Loaded, ConfigError> {
    let err = |at: &str, what: String| ConfigError {
        file: file.into(),
        at: at.into(),
        what,
    };
    let doc: Value = super::yaml::parse(text).map_err(|e| err("YAML", e))?;
    let version = doc
        .get("version")
        .map(super::expand::scalar)
        .unwrap_or_default();
    if version != "2.1" && version != "2" && version != "2.0" {
        return Err(err(
            "version",
            format!(
                "version `{version}` is not supported; strata runs CircleCI 2.0 and 2.1 configs"
            ),
        ));
    }
    let mut warnings = Vec::new();
    let cx = super::expand::Cx::new(file, doc, pipeline, orbs, &mut warnings)?;
    let mut loaded = super::workflow::plan(&cx, workflow)?;
    loaded.setup = matches!(cx.doc.get("setup"), Some(Value::Bool(true)));
    warnings.extend(cx.warnings.borrow().iter().cloned());
    loaded.warnings = warnings;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> Pipeline {
        Pipeline {
            branch: "main".into(),
            revision: "abc".into(),
            number: 7,
            ..Pipeline::default()
        }
    }

    fn no_orbs(o: &str) -> Result<String, String> {
        Err(format!("no orb {o}"))
    }

    fn one(cfg: &str) -> Vec<Job> {
        let l = load("config.yml", cfg, None, &pipeline(), &no_orbs).unwrap();
        assert_eq!(l.workflows.len(), 1);
        l.workflows.into_iter().next().unwrap().jobs
    }

    #[test]
    fn commands_parameters_and_conditions_expand() {
        let cfg = r#"
version: 2.1
executors:
  host:
    docker: [{image: "debian:12"}]
    environment: {FROM_EXECUTOR: "1"}
commands:
  greet:
    parameters:
      who: {type: string, default: world}
      loud: {type: boolean, default: false}
      then: {type: steps, default: []}
    steps:
      - run: echo hello << parameters.who >> on << pipeline.git.branch >>
      - when:
          condition: << parameters.loud >>
          steps: [run: echo LOUD]
      - << parameters.then >>
jobs:
  j:
    executor: host
    parameters:
      n: {type: integer, default: 1}
      mode: {type: enum, enum: [fast, slow], default: fast}
    steps:
      - greet:
          who: you
          loud: true
          then: [run: {name: after, command: "echo n=<< parameters.n >>", when: always, no_output_timeout: 1m30s}]
      - unless:
          condition: {equal: [fast, << parameters.mode >>]}
          steps: [run: echo slow]
workflows:
  w:
    jobs:
      - j: {name: j1, n: 3}
      - j: {name: j2, requires: [j1], mode: slow}
"#;
        let jobs = one(cfg);
        assert_eq!(jobs.len(), 2);
        let titles: Vec<String> = jobs[0].steps.iter().map(Step::title).collect();
        assert_eq!(titles, ["echo hello you on main", "echo LOUD", "after"]);
        match &jobs[0].steps[2] {
            Step::Run {
                command,
                when,
                no_output_timeout,
                ..
            } => {
                assert_eq!(command, "echo n=3");
                assert_eq!(*when, When::Always);
                assert_eq!(*no_output_timeout, Duration::from_secs(90));
            }
            s => panic!("{s:?}"),
        }
        assert_eq!(jobs[0].environment["FROM_EXECUTOR"], "1");
        assert!(
            jobs[0]
                .executor_note
                .as_deref()
                .unwrap()
                .contains("debian:12")
        );
        assert_eq!(jobs[1].requires, ["j1"]);
        assert_eq!(jobs[1].steps.last().unwrap().title(), "echo slow");
    }

    #[test]
    fn bad_parameters_are_errors_naming_the_place() {
        let cfg = "version: 2.1\njobs:\n  j:\n    parameters:\n      mode: {type: enum, enum: [a, b]}\n    steps: [checkout]\nworkflows:\n  w:\n    jobs:\n      - j: {mode: c}\n";
        let e = load("c.yml", cfg, None, &pipeline(), &no_orbs).unwrap_err();
        assert!(
            e.to_string().contains("jobs.j") && e.to_string().contains("not one of a, b"),
            "{e}"
        );
        let cfg =
            "version: 2.1\njobs:\n  j:\n    steps: [bogus]\nworkflows:\n  w:\n    jobs: [j]\n";
        let e = load("c.yml", cfg, None, &pipeline(), &no_orbs).unwrap_err();
        assert!(
            e.to_string().contains("unknown step or command `bogus`"),
            "{e}"
        );
    }

    #[test]
    fn shell_heredocs_and_sections() {
        let cfg = r#"
version: 2.1
jobs:
  j:
    parameters:
      flag: {type: boolean, default: true}
      off: {type: boolean, default: false}
    steps:
      - run: |
          cat <<EOF >> out.txt
          x << y >> z
          EOF
      - run: "a<<# parameters.flag >> --yes<</ parameters.flag >><<# parameters.off >> --no<</ parameters.off >><<^ parameters.off >> --not-off<</ parameters.off >>"
workflows:
  w:
    jobs: [j]
"#;
        let jobs = one(cfg);
        match (&jobs[0].steps[0], &jobs[0].steps[1]) {
            (Step::Run { command: a, .. }, Step::Run { command: b, .. }) => {
                assert!(a.starts_with("cat <<EOF >> out.txt\nx << y >> z\n"), "{a}");
                assert_eq!(b, "a --yes --not-off");
            }
            s => panic!("{s:?}"),
        }
    }
}
