//! `strata ci run`: CircleCI workflows on this machine, with real caches
//! (the same store `strata ci save/restore` use, so they persist between
//! runs) and real workspaces. This file loads the config and runs the
//! workflows in turn (and a setup config's continuation); [`super::schedule`]
//! starts jobs as their requirements finish, [`super::job`] runs a job's
//! copies and steps, [`super::execute`] one step, all on the run's state
//! ([`super::state`]). Each job runs in `.strata/ci/<run>/<job>/` with its
//! own `~` and `$BASH_ENV`.

use super::cache::CiCache;
use super::config::{self, Job, Pipeline};
pub use super::state::{Continuation, REPORT_ENV};
use super::state::{Run, interrupted, next_counter};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// What `strata ci run` was asked to do (the CLI fills it from flags).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The CircleCI config, relative to the project.
    pub config: PathBuf,
    /// Workflow to run (default: the only one).
    pub workflow: Option<String>,
    /// Run only these jobs (no upstream jobs).
    pub only_jobs: Vec<String>,
    /// Print the job DAG, steps and cache keys; run nothing.
    pub dry_run: bool,
    /// Jobs at once (default: number of CPUs).
    pub parallel: Option<usize>,
    /// Project variables.
    pub env: Vec<(String, String)>,
    /// Pipeline parameters (`--param NAME=VALUE`).
    pub params: Vec<(String, String)>,
    /// Approve every `type: approval` job.
    pub approve: bool,
    /// JSON: one document for a dry run, JSON Lines events for a run.
    pub json: bool,
    /// Where registry orbs are fetched from when not on disk.
    pub orb_url: Option<String>,
    /// Never fetch orbs.
    pub offline: bool,
    /// `pipeline.trigger_source`: `webhook`, `api` or `scheduled_pipeline`.
    pub trigger_source: String,
}

/// Exit code of a run stopped by Ctrl-C / SIGTERM (the CLI's convention).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Why `strata ci run` could not run.
#[derive(Debug)]
pub enum RunError {
    /// The config, or what the command line asked of it, is wrong: a usage
    /// error (exit 2), like a bad manifest.
    Config(String),
    /// Something failed while running (state dirs, the store).
    Other(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Config(m) | RunError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RunError {}

impl From<String> for RunError {
    fn from(m: String) -> Self {
        RunError::Other(m)
    }
}

/// Runs the workflows; returns the exit code (0: every job succeeded or
/// waits for an approval).
pub fn run(root: &Path, args: &RunOptions, store: Option<&str>) -> Result<i32, RunError> {
    let root = std::fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let cfg_path = root.join(&args.config);
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| {
        RunError::Config(format!(
            "cannot read {}: {e}\n  hint: pass --config, or generate one with `strata ci generate circleci`",
            cfg_path.display()
        ))
    })?;
    let mut args = args.clone();
    let mut text = text;
    // One pipeline: a continued config keeps its number and id, as on CircleCI.
    let state = root.join(".strata").join("ci");
    std::fs::create_dir_all(&state).map_err(|e| format!("{}: {e}", state.display()))?;
    let number = next_counter(&state.join("pipeline-number"), 1)?;
    let id = format!(
        "local-{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        std::process::id()
    );
    // A setup config runs, then the configuration it continued with (once:
    // a continued config cannot continue again, as on CircleCI).
    for round in 0..2 {
        let (code, next) = run_text(&root, &args, store, &text, (number, &id), round == 1)?;
        match next {
            Some(c) if code == 0 && c.path.as_os_str().is_empty() => {
                crate::errln!("\nThe setup workflow finished the pipeline; nothing continues it");
                return Ok(code);
            }
            Some(c) if code == 0 => {
                let is_setup = super::yaml::parse(&c.text)
                    .ok()
                    .is_some_and(|d| d.get("setup").and_then(|v| v.as_bool()) == Some(true));
                if is_setup {
                    return Err(RunError::Config(format!(
                        "{}: a continued configuration cannot be a setup configuration (`setup: true`)",
                        c.path.display()
                    )));
                }
                crate::errln!(
                    "\nContinuing the pipeline with {} ({} parameters)",
                    c.path.display(),
                    c.params.len()
                );
                args.config = c.path;
                args.params = c.params;
                // `--workflow` and `--job` named the setup config's.
                args.workflow = None;
                args.only_jobs = Vec::new();
                text = c.text;
            }
            _ => return Ok(code),
        }
    }
    Ok(0)
}

/// Runs one config's workflows: the exit code, and the continuation a
/// setup config posted.
fn run_text(
    root: &Path,
    args: &RunOptions,
    store: Option<&str>,
    text: &str,
    (number, id): (u64, &str),
    continued: bool,
) -> Result<(i32, Option<Continuation>), RunError> {
    let root = root.to_path_buf();
    let continuation: Mutex<Option<Continuation>> = Mutex::new(None);
    let git = |a: &[&str]| git_out(&root, a);
    let repo = git(&["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    let pipeline = Pipeline {
        branch: git(&["rev-parse", "--abbrev-ref", "HEAD"])
            .filter(|b| b != "HEAD")
            .unwrap_or_default(),
        revision: git(&["rev-parse", "HEAD"]).unwrap_or_default(),
        tag: git(&["describe", "--exact-match", "--tags", "HEAD"]).unwrap_or_default(),
        number,
        id: id.to_string(),
        git_url: git(&["remote", "get-url", "origin"])
            .or_else(|| repo.as_ref().map(|r| r.display().to_string()))
            .unwrap_or_default(),
        trigger_source: args.trigger_source.clone(),
        params: args.params.clone(),
    };
    let orb_sources = super::orbs::Sources::new(&root, args.orb_url.clone(), args.offline);
    let loaded = config::load(
        &args.config.display().to_string(),
        text,
        args.workflow.as_deref(),
        &pipeline,
        &|r| orb_sources.source(r),
    )
    .map_err(|e| RunError::Config(e.to_string()))?;
    if continued && loaded.setup {
        return Err(RunError::Config(format!(
            "{}: a continued configuration cannot be a setup configuration (`setup: true`)",
            args.config.display()
        )));
    }
    for w in &loaded.warnings {
        crate::errln!("warning: {w}");
    }
    for s in &loaded.skipped {
        crate::errln!("workflow {s}: skipped");
    }
    let mut workflows = loaded.workflows;
    pick_jobs(&mut workflows, &args.only_jobs)?;
    let project = crate::manifest::load(&root).ok();
    let local_root = project
        .as_ref()
        .and_then(|p| p.settings.cache_dir.clone())
        .unwrap_or_else(crate::store::LocalStore::default_root);
    let open_store = || open_store(store, project.as_ref(), &local_root);
    let several = workflows.len() > 1;
    let events = super::events::Events::new(args.json);
    // The setup config's jobs and the continued config's each get a dir.
    let run_root = root.join(".strata").join("ci").join(if continued {
        format!("{id}-continued")
    } else {
        id.to_string()
    });
    // One run of one workflow's jobs, each with its own store handle.
    let new_run = |jobs, dir| -> Result<Run<'_>, RunError> {
        let (store_box, store_env) = open_store()?;
        Ok(Run {
            root: root.clone(),
            repo: repo.clone().unwrap_or(root.clone()),
            dir,
            id: id.to_string(),
            cache: CiCache::new(store_box, local_root.join("tmp")),
            store_env,
            pipeline: pipeline.clone(),
            env: args.env.clone(),
            jobs,
            approve: args.approve,
            events: &events,
            out: Mutex::new(()),
            build_num: Mutex::new(0),
            workspace: Mutex::new(HashMap::new()),
            continuation: &continuation,
        })
    };
    if args.dry_run {
        let mut docs = Vec::new();
        for w in &workflows {
            let run = new_run(&w.jobs, run_root.clone())?;
            docs.push(super::dryrun::dry_run(&run, &w.name, args.json));
        }
        if args.json {
            let doc = serde_json::json!({ "workflows": docs, "warnings": loaded.warnings, "skipped": loaded.skipped });
            crate::outln!("{doc}");
        }
        return Ok((0, None));
    }
    crate::exec::command::install_interrupt_handler();
    let mut failed = false;
    for w in &workflows {
        let dir = if several {
            run_root.join(&w.name)
        } else {
            run_root.clone()
        };
        let run = new_run(&w.jobs, dir)?;
        failed |= super::schedule::run_workflow(&run, &w.name, args.parallel);
        if interrupted() {
            break;
        }
    }
    let code = if interrupted() {
        EXIT_INTERRUPTED
    } else if failed {
        1
    } else {
        0
    };
    let next = continuation.into_inner().unwrap_or_else(|e| e.into_inner());
    if next.is_some() && !loaded.setup {
        return Err(RunError::Config(format!(
            "{}: a step continued the pipeline, but the config is not a setup config\n  hint: add `setup: true` at the top level",
            args.config.display()
        )));
    }
    Ok((code, next))
}

/// `--job`: keeps only the jobs named (as the workflow names them, or the
/// job they run), without their upstream jobs.
fn pick_jobs(
    workflows: &mut Vec<super::config::Workflow>,
    only: &[String],
) -> Result<(), RunError> {
    if only.is_empty() {
        return Ok(());
    }
    let picked = |j: &Job| only.iter().any(|o| *o == j.name || *o == j.job_ref);
    for o in only {
        if !workflows
            .iter()
            .any(|w| w.jobs.iter().any(|x| *o == x.name || *o == x.job_ref))
        {
            return Err(RunError::Config(format!(
                "no job `{o}` in {}",
                workflows
                    .iter()
                    .map(|w| format!("workflow `{}`", w.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    for w in workflows.iter_mut() {
        w.jobs.retain(|j| picked(j));
        let kept: Vec<String> = w.jobs.iter().map(|j| j.name.clone()).collect();
        for j in &mut w.jobs {
            j.requires.retain(|r| kept.contains(r));
        }
    }
    workflows.retain(|w| !w.jobs.is_empty());
    Ok(())
}

/// The CI cache store (and how a step's `strata ci …` is told of it):
/// `--store`, else the project's `[cache] remote`, else the local store.
fn open_store(
    store: Option<&str>,
    project: Option<&crate::manifest::Project>,
    local_root: &Path,
) -> Result<(Box<dyn crate::store::Store>, String), String> {
    Ok(match store {
        Some(url) => (crate::store::open(url, None, None)?, url.to_string()),
        None => match project.and_then(|p| p.settings.cache_remote.clone().map(|u| (p, u))) {
            Some((p, url)) => (
                crate::store::open(
                    &url,
                    p.settings.cache_endpoint.as_deref(),
                    p.settings.cache_region.as_deref(),
                )?,
                url,
            ),
            None => (
                Box::new(crate::store::LocalStore::new(local_root.to_path_buf())),
                local_root.display().to_string(),
            ),
        },
    })
}

fn git_out(dir: &Path, args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}
