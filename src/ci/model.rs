//! What a loaded CircleCI config is: workflows of concrete jobs, each a
//! flat list of steps, and the pipeline values they were expanded with.
//! Types only, so the stages that make them (`expand`, `steps`,
//! `workflow`) and the ones that run them (`runner`, `execute` …) depend
//! on this file and never on each other through `config`.

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
