//! The state of one `strata ci run` that its stages share: the run
//! (`Run`: store, pipeline, jobs, workspace layers, output lock), one job's
//! surroundings while it runs (`JobCx`) and what it did (`Report`). The
//! stages (`dryrun`, `schedule`, `job`, `execute`, `workspace`, `jobenv`)
//! import it; it imports none of them, and none of them imports `runner`.

use super::cache::CiCache;
use super::config::{Job, Pipeline};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where `strata ci save|restore` run inside a step append what they did,
/// one JSON line each, for the job's summary.
pub const REPORT_ENV: &str = "STRATA_CI_REPORT";

/// What one job did, for the summary.
#[derive(Default, Clone)]
pub(super) struct Report {
    pub(super) status: &'static str,
    pub(super) secs: f64,
    pub(super) restores: Vec<String>,
    pub(super) saves: Vec<String>,
    pub(super) workspace_bytes: u64,
}

pub(super) struct Run<'a> {
    pub(super) root: PathBuf,
    pub(super) repo: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) id: String,
    pub(super) cache: CiCache,
    pub(super) store_env: String,
    pub(super) pipeline: Pipeline,
    pub(super) env: Vec<(String, String)>,
    pub(super) jobs: &'a [Job],
    pub(super) approve: bool,
    pub(super) events: &'a super::events::Events,
    pub(super) out: Mutex<()>,
    pub(super) build_num: Mutex<u64>,
    /// Per job: files persisted to the workspace (relative path → layer dir).
    pub(super) workspace: Mutex<HashMap<String, BTreeMap<String, PathBuf>>>,
    /// A setup config's continuation: (config file, its text, parameters).
    pub(super) continuation: &'a Mutex<Option<Continuation>>,
}

/// What a `continue` step posted.
#[derive(Clone, Debug)]
pub struct Continuation {
    pub path: PathBuf,
    pub text: String,
    pub params: Vec<(String, String)>,
}

/// Whether Ctrl-C or SIGTERM asked the run to stop.
pub(super) fn interrupted() -> bool {
    crate::exec::command::interrupted()
}

/// `~/x` → under `home`; relative → under `base`.
pub(super) fn resolve_home(p: &str, home: &Path, base: &Path) -> PathBuf {
    if p == "~" {
        home.to_path_buf()
    } else if let Some(rest) = p.strip_prefix("~/") {
        home.join(rest)
    } else if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        base.join(p)
    }
}

impl Run<'_> {
    pub(super) fn say(&self, job: &str, text: &str) {
        let _g = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for line in text.lines() {
            crate::errln!("[{job}] {line}");
        }
    }
}

pub(super) struct JobCx<'a> {
    pub(super) job: &'a Job,
    pub(super) dir: PathBuf,
    pub(super) home: PathBuf,
    pub(super) workdir: PathBuf,
    pub(super) env: BTreeMap<String, String>,
    pub(super) report: Report,
    /// Process groups of `background: true` steps, ended with the job.
    pub(super) background: Vec<i32>,
}

impl JobCx<'_> {
    /// `~/x` → the job's home; relative → under the working directory.
    pub(super) fn resolve(&self, p: &str, base: &Path) -> PathBuf {
        resolve_home(p, &self.home, base)
    }

    /// A file the served orbs write (`/tmp/pipeline-parameters.json` and
    /// the like): `/tmp/…` goes to the job's own `tmp/`, as each CircleCI
    /// job has its own /tmp, so two local runs never share it.
    pub(super) fn orb_output(&self, p: &str) -> PathBuf {
        match p.strip_prefix("/tmp/") {
            Some(rest) => self.dir.join("tmp").join(rest),
            None => self.resolve(p, &self.workdir),
        }
    }

    /// A file the served orbs read: the job's own copy of a `/tmp/…` path
    /// when a served step wrote one, else the path itself (a `run` step may
    /// have written it).
    pub(super) fn orb_input(&self, p: &str) -> PathBuf {
        let own = self.orb_output(p);
        if own.exists() {
            own
        } else {
            self.resolve(p, &self.workdir)
        }
    }
}

/// Reads, increments and writes back a counter file.
pub(super) fn next_counter(path: &Path, start: u64) -> Result<u64, String> {
    let n = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .map_or(start, |n| n + 1);
    crate::fsutil::write_atomic(path, n.to_string().as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(n)
}
