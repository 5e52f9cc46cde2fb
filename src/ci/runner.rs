//! `strata ci run`: a CircleCI 2.1 workflow on this machine, with real
//! caches (the same store `strata ci save/restore` use, so they persist
//! between runs) and real workspaces. Each job runs in
//! `.strata/ci/<run>/<job>/` with its own `~`; independent jobs run in
//! parallel; a step that prints nothing for `no_output_timeout` is killed.

use super::cache::CiCache;
use super::config::{self, Job, Pipeline, Step, When};
use super::template;
use crate::report::human_bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where `strata ci save|restore` run inside a step append what they did,
/// one JSON line each, for the job's summary.
pub const REPORT_ENV: &str = "STRATA_CI_REPORT";

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
}

/// Exit code of a run stopped by Ctrl-C / SIGTERM (the CLI's convention).
pub const EXIT_INTERRUPTED: i32 = 130;

/// What one job did, for the summary.
#[derive(Default, Clone)]
struct Report {
    status: &'static str,
    secs: f64,
    restores: Vec<String>,
    saves: Vec<String>,
    workspace_bytes: u64,
}

struct Run<'a> {
    root: PathBuf,
    repo: PathBuf,
    dir: PathBuf,
    id: String,
    cache: CiCache,
    store_env: String,
    pipeline: Pipeline,
    env: Vec<(String, String)>,
    jobs: &'a [Job],
    out: Mutex<()>,
    build_num: Mutex<u64>,
    /// Per job: files persisted to the workspace (relative path → layer dir).
    workspace: Mutex<HashMap<String, BTreeMap<String, PathBuf>>>,
}

/// Runs the workflow; returns the exit code (0: every job succeeded).
pub fn run(root: &Path, args: &RunOptions, store: Option<&str>) -> Result<i32, String> {
    let root = std::fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let cfg_path = root.join(&args.config);
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| {
        format!(
            "cannot read {}: {e}\n  hint: pass --config, or generate one with `strata ci generate circleci`",
            cfg_path.display()
        )
    })?;
    let git = |a: &[&str]| git_out(&root, a);
    let repo = git(&["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    let state = root.join(".strata").join("ci");
    std::fs::create_dir_all(&state).map_err(|e| format!("{}: {e}", state.display()))?;
    let number = next_counter(&state.join("pipeline-number"), 1)?;
    let pipeline = Pipeline {
        branch: git(&["rev-parse", "--abbrev-ref", "HEAD"])
            .filter(|b| b != "HEAD")
            .unwrap_or_default(),
        revision: git(&["rev-parse", "HEAD"]).unwrap_or_default(),
        number,
    };
    let (wf, mut jobs) = config::load(
        &args.config.display().to_string(),
        &text,
        args.workflow.as_deref(),
        &pipeline,
    )
    .map_err(|e| e.to_string())?;
    if !args.only_jobs.is_empty() {
        for j in &args.only_jobs {
            if !jobs.iter().any(|x| &x.name == j) {
                return Err(format!("no job `{j}` in workflow `{wf}`"));
            }
        }
        jobs.retain(|j| args.only_jobs.contains(&j.name));
        for j in &mut jobs {
            j.requires.retain(|r| args.only_jobs.contains(r));
        }
    }
    let project = crate::manifest::load(&root).ok();
    let local_root = project
        .as_ref()
        .and_then(|p| p.settings.cache_dir.clone())
        .unwrap_or_else(crate::store::LocalStore::default_root);
    let (store_box, store_env): (Box<dyn crate::store::Store>, String) = match store {
        Some(url) => (crate::store::open(url, None, None)?, url.to_string()),
        None => match project
            .as_ref()
            .and_then(|p| p.settings.cache_remote.clone())
        {
            Some(url) => {
                let s = &project.as_ref().expect("some").settings;
                (
                    crate::store::open(
                        &url,
                        s.cache_endpoint.as_deref(),
                        s.cache_region.as_deref(),
                    )?,
                    url,
                )
            }
            None => (
                Box::new(crate::store::LocalStore::new(local_root.clone())),
                local_root.display().to_string(),
            ),
        },
    };
    let cache = CiCache::new(store_box, local_root.join("tmp"));
    let id = format!(
        "{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        std::process::id()
    );
    let dir = state.join(&id);
    let run = Run {
        root: root.clone(),
        repo: repo.unwrap_or(root.clone()),
        dir,
        id,
        cache,
        store_env,
        pipeline,
        env: args.env.clone(),
        jobs: &jobs,
        out: Mutex::new(()),
        build_num: Mutex::new(0),
        workspace: Mutex::new(HashMap::new()),
    };
    if args.dry_run {
        dry_run(&run, &wf);
        return Ok(0);
    }
    crate::exec::command::install_interrupt_handler();
    let t = Instant::now();
    crate::errln!(
        "Running workflow `{wf}` ({} jobs) as run {} in {}",
        jobs.len(),
        run.id,
        run.dir.display()
    );
    let parallel = args
        .parallel
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let reports = schedule(&run, parallel);
    crate::errln!(
        "\nWorkflow `{wf}` summary ({:.2}s):",
        t.elapsed().as_secs_f64()
    );
    let mut failed = false;
    for j in &jobs {
        let r = reports.get(&j.name).cloned().unwrap_or_default();
        failed |= r.status != "success";
        crate::errln!("  {:<24} {:<8} {:>7.2}s", j.name, r.status, r.secs);
        for x in &r.restores {
            crate::errln!("      restore  {x}");
        }
        for x in &r.saves {
            crate::errln!("      save     {x}");
        }
        if r.workspace_bytes > 0 {
            crate::errln!("      workspace {}", human_bytes(r.workspace_bytes));
        }
    }
    Ok(if interrupted() {
        EXIT_INTERRUPTED
    } else if failed {
        1
    } else {
        0
    })
}

fn interrupted() -> bool {
    crate::exec::command::interrupted()
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

/// Reads, increments and writes back a counter file.
fn next_counter(path: &Path, start: u64) -> Result<u64, String> {
    let n = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .map_or(start, |n| n + 1);
    crate::fsutil::write_atomic(path, n.to_string().as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(n)
}

/// Prints the DAG, steps and cache keys, rendered as the run would render
/// them: the same job environment (`CIRCLE_JOB`, `--env`, the job's
/// `environment`), and the build numbers the counter would hand out next,
/// in workflow order.
fn dry_run(run: &Run<'_>, wf: &str) {
    let (cache, pipeline, root, jobs) = (&run.cache, &run.pipeline, &run.root, run.jobs);
    let next_build = std::fs::read_to_string(root.join(".strata/ci/build-num"))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    crate::outln!("workflow {wf} (cache store: {})", cache.describe());
    for (n, j) in jobs.iter().enumerate() {
        let req = if j.requires.is_empty() {
            String::new()
        } else {
            format!(" (requires {})", j.requires.join(", "))
        };
        crate::outln!("job {}{req}", j.name);
        if let Some(n) = &j.executor_note {
            crate::outln!("    # {n}");
        }
        let (env_map, _, _) = job_env(run, j, next_build + 1 + n as u64);
        let env = |n: &str| env_map.get(n).cloned().or_else(|| std::env::var(n).ok());
        let vars = template::Vars {
            branch: Some(pipeline.branch.clone()).filter(|b| !b.is_empty()),
            revision: Some(pipeline.revision.clone()).filter(|b| !b.is_empty()),
            build_num: env_map["CIRCLE_BUILD_NUM"].clone(),
            dir: root.to_path_buf(),
            env: &env,
            layer: &|n| {
                let p = crate::manifest::load(root).map_err(|e| e.to_string())?;
                let g = crate::graph::Graph::new(&p).map_err(|e| e.to_string())?;
                super::layer::digest(&p, &g, n).map_err(|e| e.to_string())
            },
        };
        let key = |k: &str| match template::render(k, &vars) {
            Ok(r) => r,
            Err(e) => format!(
                "{k}  (unresolved: {})",
                e.to_string().lines().next().unwrap_or("")
            ),
        };
        for s in &j.steps {
            match s {
                Step::RestoreCache { name, keys } => {
                    crate::outln!("    - {name}");
                    for k in keys {
                        crate::outln!("        key {}", key(k));
                    }
                }
                Step::SaveCache {
                    name,
                    key: k,
                    paths,
                    ..
                } => {
                    crate::outln!("    - {name}: key {} paths {}", key(k), paths.join(" "))
                }
                s => crate::outln!("    - {}", s.title()),
            }
        }
    }
}

/// Runs jobs as their requirements finish, at most `parallel` at once.
fn schedule(run: &Run<'_>, parallel: usize) -> HashMap<String, Report> {
    let mut reports: HashMap<String, Report> = HashMap::new();
    let mut pending: Vec<&Job> = run.jobs.iter().collect();
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<(String, Report)>();
        let mut running = 0usize;
        loop {
            // Jobs whose requirement failed (or was blocked) are blocked.
            pending.retain(|j| {
                let blocked = j
                    .requires
                    .iter()
                    .any(|r| reports.get(r).is_some_and(|x| x.status != "success"));
                if blocked {
                    reports.insert(
                        j.name.clone(),
                        Report {
                            status: "blocked",
                            ..Report::default()
                        },
                    );
                }
                !blocked
            });
            if interrupted() {
                for j in pending.drain(..) {
                    reports.insert(
                        j.name.clone(),
                        Report {
                            status: "interrupted",
                            ..Report::default()
                        },
                    );
                }
            }
            while running < parallel {
                let Some(pos) = pending
                    .iter()
                    .position(|j| j.requires.iter().all(|r| reports.contains_key(r)))
                else {
                    break;
                };
                let job = pending.remove(pos);
                running += 1;
                let tx = tx.clone();
                s.spawn(move || {
                    let r = run_job(run, job);
                    let _ = tx.send((job.name.clone(), r));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((name, r)) = rx.recv() else { break };
            running -= 1;
            reports.insert(name, r);
        }
    });
    reports
}

impl Run<'_> {
    fn say(&self, job: &str, text: &str) {
        let _g = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for line in text.lines() {
            crate::errln!("[{job}] {line}");
        }
    }
}

struct JobCx<'a> {
    job: &'a Job,
    dir: PathBuf,
    home: PathBuf,
    workdir: PathBuf,
    env: BTreeMap<String, String>,
    report: Report,
}

impl JobCx<'_> {
    /// `~/x` → the job's home; relative → under the working directory.
    fn resolve(&self, p: &str, base: &Path) -> PathBuf {
        resolve_home(p, &self.home, base)
    }
}

/// The environment a job's steps see (CircleCI's variables, then `--env`,
/// then the job's own `environment`), its working directory and its `~`.
fn job_env(
    run: &Run<'_>,
    job: &Job,
    build_num: u64,
) -> (BTreeMap<String, String>, PathBuf, PathBuf) {
    let dir = run.dir.join(&job.name);
    let home = dir.join("home");
    let workdir = resolve_home(&job.working_directory, &home, &home);
    let reponame = run
        .repo
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in [
        ("CI", "true".to_string()),
        ("CIRCLECI", "true".into()),
        ("CIRCLE_SHA1", run.pipeline.revision.clone()),
        ("CIRCLE_BRANCH", run.pipeline.branch.clone()),
        ("CIRCLE_BUILD_NUM", build_num.to_string()),
        ("CIRCLE_JOB", job.name.clone()),
        ("CIRCLE_WORKFLOW_ID", run.id.clone()),
        ("CIRCLE_WORKING_DIRECTORY", workdir.display().to_string()),
        ("CIRCLE_PROJECT_REPONAME", reponame),
        ("HOME", home.display().to_string()),
        ("STRATA_CI_STORE", run.store_env.clone()),
        (
            REPORT_ENV,
            dir.join("cache-report.jsonl").display().to_string(),
        ),
    ] {
        env.insert(k.to_string(), v);
    }
    for (k, v) in &run.env {
        env.insert(k.clone(), v.clone());
    }
    for (k, v) in &job.environment {
        env.insert(k.clone(), v.clone());
    }
    (env, workdir, home)
}

/// `~/x` → under `home`; relative → under `base`.
fn resolve_home(p: &str, home: &Path, base: &Path) -> PathBuf {
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

fn run_job(run: &Run<'_>, job: &Job) -> Report {
    let t = Instant::now();
    let dir = run.dir.join(&job.name);
    let build_num = {
        let mut n = run.build_num.lock().unwrap_or_else(|e| e.into_inner());
        *n = next_counter(&run.root.join(".strata/ci/build-num"), 1).unwrap_or(*n + 1);
        *n
    };
    let (env, workdir, home) = job_env(run, job, build_num);
    let mut cx = JobCx {
        job,
        workdir,
        dir: dir.clone(),
        home: home.clone(),
        env,
        report: Report::default(),
    };
    if let Err(e) = std::fs::create_dir_all(&home) {
        run.say(&job.name, &format!("error: {}: {e}", home.display()));
        cx.report.status = "failed";
        return cx.report;
    }
    if let Some(n) = &job.executor_note {
        run.say(&job.name, &format!("# {n}"));
    }
    let mut failed = false;
    for (i, step) in job.steps.iter().enumerate() {
        let go = match step.when() {
            When::OnSuccess => !failed,
            When::OnFail => failed,
            When::Always => true,
        };
        if !go {
            continue;
        }
        if interrupted() {
            failed = true;
            break;
        }
        let st = Instant::now();
        run.say(&job.name, &format!("▸ {}", step.title()));
        let r = run_step(run, &mut cx, i, step);
        let secs = st.elapsed().as_secs_f64();
        match r {
            Ok(msg) => {
                let msg = if msg.is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                };
                run.say(&job.name, &format!("  ok ({secs:.2}s){msg}"));
            }
            Err(msg) => {
                run.say(&job.name, &format!("  FAILED ({secs:.2}s): {msg}"));
                failed = true;
            }
        }
    }
    // Cache commands run from steps (`strata ci restore-layer`, …) reported here.
    if let Ok(text) = std::fs::read_to_string(dir.join("cache-report.jsonl")) {
        for v in text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            let line = v["line"].as_str().unwrap_or_default().to_string();
            match v["kind"].as_str() {
                Some("restore") => cx.report.restores.push(line),
                Some("save") => cx.report.saves.push(line),
                _ => {}
            }
        }
    }
    cx.report.status = match (failed, interrupted()) {
        (_, true) => "interrupted",
        (true, false) => "failed",
        (false, false) => "success",
    };
    cx.report.secs = t.elapsed().as_secs_f64();
    cx.report
}

fn vars<'a>(
    run: &Run<'_>,
    cx: &JobCx<'_>,
    layer: &'a dyn Fn(&str) -> Result<String, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
) -> template::Vars<'a> {
    template::Vars {
        branch: Some(run.pipeline.branch.clone()).filter(|b| !b.is_empty()),
        revision: Some(run.pipeline.revision.clone()).filter(|b| !b.is_empty()),
        build_num: cx.env.get("CIRCLE_BUILD_NUM").cloned().unwrap_or_default(),
        dir: cx.workdir.clone(),
        env,
        layer,
    }
}

fn run_step(run: &Run<'_>, cx: &mut JobCx<'_>, i: usize, step: &Step) -> Result<String, String> {
    let workdir = cx.workdir.clone();
    let env_map = cx.env.clone();
    let env = move |n: &str| env_map.get(n).cloned().or_else(|| std::env::var(n).ok());
    let layer_dir = workdir.clone();
    let layer = move |n: &str| -> Result<String, String> {
        let p = crate::manifest::load(&layer_dir).map_err(|e| e.to_string())?;
        let g = crate::graph::Graph::new(&p).map_err(|e| e.to_string())?;
        super::layer::digest(&p, &g, n).map_err(|e| e.to_string())
    };
    match step {
        Step::Noted(_) => Ok(String::new()),
        Step::Checkout => {
            if workdir.exists() && std::fs::read_dir(&workdir).is_ok_and(|mut d| d.next().is_some())
            {
                return Err(format!(
                    "directory {} is not empty; checkout needs an empty working directory",
                    workdir.display()
                ));
            }
            let out = Command::new("git")
                .args(["clone", "--quiet", "--no-hardlinks"])
                .arg(&run.repo)
                .arg(&workdir)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("git clone: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "git clone {} failed: {}\n  hint: `checkout` clones the repository at HEAD; commit what the job needs",
                    run.repo.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(format!(
                "cloned {} at {}",
                run.repo.display(),
                &run.pipeline
                    .revision
                    .get(..12)
                    .unwrap_or(&run.pipeline.revision)
            ))
        }
        Step::Run {
            command,
            environment,
            working_directory,
            no_output_timeout,
            ..
        } => {
            let wd = match working_directory {
                Some(w) => cx.resolve(w, &workdir),
                None => workdir.clone(),
            };
            std::fs::create_dir_all(&wd).map_err(|e| format!("{}: {e}", wd.display()))?;
            let mut env: BTreeMap<String, String> = cx.env.clone();
            env.extend(environment.clone());
            let log = cx.dir.join("logs").join(format!("{:02}.log", i + 1));
            run_command(
                run,
                &cx.job.name,
                command,
                &wd,
                &env,
                &log,
                *no_output_timeout,
            )
        }
        Step::RestoreCache { keys, .. } => {
            let v = vars(run, cx, &layer, &env);
            let keys: Vec<String> = keys
                .iter()
                .map(|k| template::render(k, &v).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            let r = run
                .cache
                .restore(&keys, &cx.home, &|_| {})
                .map_err(|e| e.to_string())?;
            let line = super::cache::describe_restore(r.as_ref(), &keys);
            cx.report.restores.push(line.clone());
            Ok(line)
        }
        Step::SaveCache { key, paths, .. } => {
            let v = vars(run, cx, &layer, &env);
            let key = template::render(key, &v).map_err(|e| e.to_string())?;
            let paths: Vec<PathBuf> = paths.iter().map(|p| cx.resolve(p, &workdir)).collect();
            let r = run
                .cache
                .save(&key, &cx.home, &paths)
                .map_err(|e| e.to_string())?;
            let line = r.describe(&key);
            cx.report.saves.push(line.clone());
            Ok(line)
        }
        Step::PersistToWorkspace { root, paths } => {
            let base = cx.resolve(root, &workdir);
            let layer_dir = run.dir.join("workspace").join(&cx.job.name);
            let mut files = BTreeMap::new();
            let mut bytes = 0u64;
            for pat in paths {
                let matched = glob(&base, pat)?;
                if matched.is_empty() {
                    return Err(format!(
                        "the glob `{pat}` matched no file in {}",
                        base.display()
                    ));
                }
                for rel in matched {
                    copy_tree(&base, &rel, &layer_dir, &mut files, &mut bytes)
                        .map_err(|e| format!("persisting {}: {e}", rel.display()))?;
                }
            }
            cx.report.workspace_bytes += bytes;
            let n = files.len();
            let mut ws = run.workspace.lock().unwrap_or_else(|e| e.into_inner());
            let entry = ws.entry(cx.job.name.clone()).or_default();
            for f in files.into_keys() {
                entry.insert(f, layer_dir.clone());
            }
            Ok(format!("{n} files, {}", human_bytes(bytes)))
        }
        Step::AttachWorkspace { at } => {
            let at = cx.resolve(at, &workdir);
            attach(run, cx.job, &at)
        }
        Step::StoreArtifacts { path, destination } => {
            let src = cx.resolve(path, &workdir);
            let dest_root = run.dir.join("artifacts").join(&cx.job.name);
            let name = destination.clone().unwrap_or_else(|| {
                src.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let parent = src.parent().unwrap_or(Path::new("/")).to_path_buf();
            let rel = PathBuf::from(src.file_name().unwrap_or_default());
            let mut files = BTreeMap::new();
            let mut bytes = 0;
            let dest = dest_root.join(&name);
            let tmp = dest_root.join(format!(".{name}.tmp"));
            let _ = crate::fsutil::remove_all(&tmp);
            copy_tree(&parent, &rel, &tmp, &mut files, &mut bytes)
                .map_err(|e| format!("{}: {e}", src.display()))?;
            let _ = crate::fsutil::remove_all(&dest);
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
            }
            std::fs::rename(tmp.join(&rel), &dest).map_err(|e| e.to_string())?;
            let _ = crate::fsutil::remove_all(&tmp);
            Ok(format!("{} files to {}", files.len(), dest.display()))
        }
    }
}

/// Applies the workspace layers of `job`'s upstream jobs (transitively) in
/// workflow order. Two upstream jobs that ran concurrently (neither requires
/// the other) and persisted the same file: CircleCI's fan-in error.
fn attach(run: &Run<'_>, job: &Job, at: &Path) -> Result<String, String> {
    let upstream = ancestors(run.jobs, &job.name);
    let ws = run.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let layers: Vec<(&Job, &BTreeMap<String, PathBuf>)> = run
        .jobs
        .iter()
        .filter(|j| upstream.contains(&j.name))
        .filter_map(|j| ws.get(&j.name).map(|l| (j, l)))
        .collect();
    for (a, (ja, la)) in layers.iter().enumerate() {
        for (jb, lb) in &layers[a + 1..] {
            let ordered = ancestors(run.jobs, &jb.name).contains(&ja.name)
                || ancestors(run.jobs, &ja.name).contains(&jb.name);
            if ordered {
                continue;
            }
            let both: Vec<&String> = la.keys().filter(|f| lb.contains_key(*f)).collect();
            if !both.is_empty() {
                return Err(format!(
                    "Concurrent upstream jobs persisted the same file(s) into the workspace: {} (jobs `{}` and `{}`)\n  hint: persist each file from one job only, or make one job require the other",
                    both.iter()
                        .map(|f| format!("'{f}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    ja.name,
                    jb.name
                ));
            }
        }
    }
    let mut n = 0;
    let mut bytes = 0;
    for (_, layer) in &layers {
        for (rel, src_root) in layer.iter() {
            let mut files = BTreeMap::new();
            copy_tree(src_root, Path::new(rel), at, &mut files, &mut bytes)
                .map_err(|e| format!("attaching {rel}: {e}"))?;
            n += 1;
        }
    }
    Ok(format!(
        "{n} files from {} upstream jobs, {}",
        layers.len(),
        human_bytes(bytes)
    ))
}

/// Every job `name` requires, directly or not.
fn ancestors(jobs: &[Job], name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        if let Some(j) = jobs.iter().find(|j| j.name == n) {
            for r in &j.requires {
                if out.insert(r.clone()) {
                    todo.push(r.clone());
                }
            }
        }
    }
    out
}

/// Paths under `base` matching `pat` (`*`, `?` and `**` in path segments),
/// relative to `base`. A pattern without wildcards matches itself if it exists.
fn glob(base: &Path, pat: &str) -> Result<Vec<PathBuf>, String> {
    let pat = pat.trim_start_matches("./");
    if !pat.contains(['*', '?']) {
        let p = PathBuf::from(pat);
        return Ok(if std::fs::symlink_metadata(base.join(&p)).is_ok() {
            vec![p]
        } else {
            vec![]
        });
    }
    let segs: Vec<&str> = pat.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::new();
    walk_glob(base, PathBuf::new(), &segs, &mut out);
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk_glob(base: &Path, rel: PathBuf, segs: &[&str], out: &mut Vec<PathBuf>) {
    let Some((first, rest)) = segs.split_first() else {
        out.push(rel);
        return;
    };
    if *first == "**" {
        walk_glob(base, rel.clone(), rest, out);
        if let Ok(rd) = std::fs::read_dir(base.join(&rel)) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk_glob(base, rel.join(e.file_name()), segs, out);
                }
            }
        }
        return;
    }
    let Ok(rd) = std::fs::read_dir(base.join(&rel)) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if wildcard(first, &name) {
            walk_glob(base, rel.join(&name), rest, out);
        }
    }
}

/// `*` and `?` matching within one path segment.
fn wildcard(pat: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Copies `base/rel` (file, symlink or tree) to `dest/rel`, keeping modes,
/// mtimes and symlinks; records every file copied.
fn copy_tree(
    base: &Path,
    rel: &Path,
    dest: &Path,
    files: &mut BTreeMap<String, PathBuf>,
    bytes: &mut u64,
) -> std::io::Result<()> {
    let src = base.join(rel);
    let to = dest.join(rel);
    let meta = std::fs::symlink_metadata(&src)?;
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p)?;
    }
    let ft = meta.file_type();
    if ft.is_dir() {
        std::fs::create_dir_all(&to)?;
        for e in std::fs::read_dir(&src)? {
            let e = e?;
            copy_tree(base, &rel.join(e.file_name()), dest, files, bytes)?;
        }
        std::fs::set_permissions(&to, meta.permissions())?;
    } else {
        if std::fs::symlink_metadata(&to).is_ok() {
            std::fs::remove_file(&to)?;
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &to)?;
        } else {
            std::fs::copy(&src, &to)?;
            *bytes += meta.len();
            filetime::set_file_mtime(&to, filetime::FileTime::from_last_modification_time(&meta))?;
        }
        files.insert(rel.display().to_string(), dest.to_path_buf());
    }
    Ok(())
}

/// Runs one `run` step: `bash -eo pipefail -c` (CircleCI's shell), stdin
/// closed, output logged and shown, in its own process group so a timeout
/// kills everything it started.
fn run_command(
    run: &Run<'_>,
    job: &str,
    command: &str,
    wd: &Path,
    env: &BTreeMap<String, String>,
    log: &Path,
    no_output_timeout: Duration,
) -> Result<String, String> {
    std::fs::create_dir_all(log.parent().expect("logs dir")).map_err(|e| e.to_string())?;
    let mut log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new("bash")
        .args(["-eo", "pipefail", "-c", command])
        .current_dir(wd)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start bash: {e}"))?;
    let pgid = child.id() as i32;
    let last_output = Arc::new(Mutex::new(Instant::now()));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut readers = Vec::new();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        let last = last_output.clone();
        readers.push(std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                *last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
                buf.clear();
            }
        }));
    }
    drop(tx);
    let mut timed_out = false;
    let status = loop {
        while let Ok(line) = rx.try_recv() {
            let _ = log_file.write_all(line.as_bytes());
            run.say(job, &format!("  {}", line.trim_end()));
        }
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if interrupted() {
            // SAFETY: kill(2) on the step's own process group.
            unsafe {
                libc::kill(-pgid, libc::SIGTERM);
            }
            std::thread::sleep(Duration::from_millis(200));
            // SAFETY: as above.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            let _ = child.wait();
            for r in readers {
                let _ = r.join();
            }
            return Err("interrupted".into());
        }
        let idle = last_output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if idle >= no_output_timeout {
            timed_out = true;
            // SAFETY: kill(2) on the step's own process group.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            break child.wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The shell may be gone while a background child still holds the pipes.
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    for r in readers {
        let _ = r.join();
    }
    while let Ok(line) = rx.try_recv() {
        let _ = log_file.write_all(line.as_bytes());
        run.say(job, &format!("  {}", line.trim_end()));
    }
    if timed_out {
        let msg = format!(
            "Too long with no output (exceeded {}): the step printed nothing for that long and was killed (log: {})",
            fmt_duration(no_output_timeout),
            log.display()
        );
        let _ = writeln!(log_file, "{msg}");
        return Err(msg);
    }
    if status.success() {
        Ok(String::new())
    } else {
        Err(format!(
            "exited with code {} (log: {})",
            status
                .code()
                .map_or_else(|| "signal".into(), |c| c.to_string()),
            log.display()
        ))
    }
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m0s"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards_match_within_a_segment() {
        assert!(wildcard("*.txt", "a.txt"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("*.txt", "a.txz"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*b*c", "aXXbYYc"));
    }
}
