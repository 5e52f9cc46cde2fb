//! Executing a build: statuses for every selected module, then a parallel
//! walk of the DAG that runs only stale modules, then the merge of the
//! target's installed files into `install/`.
//!
//! Freshness is decided before anything runs: keys depend only on inputs, so
//! the whole plan is known up front and a no-op build reads one stamp line
//! per module and starts no thread.
//!
//! Modules run as long as there are job slots: the process's implicit one,
//! then one jobserver token per further module (see [`jobserver`]), so that
//! `-j N` bounds modules and their nested makes together.

mod cached;
pub mod check;
pub mod command;
pub mod environment;
mod fixed_output;
pub mod jobserver;
mod lazy;
mod module;
pub mod relocatable;
pub mod sandbox;
pub mod stage;

pub use cached::pack_module;
pub use lazy::deferrable;
pub use module::{ModuleError, Outcome, prepare};

use crate::fetch::FetchOptions;
use crate::fingerprint::{self, ModuleKeys, ModuleStatus};
use crate::fsutil::write_atomic;
use crate::graph::Graph;
use crate::instance::Instance;
use crate::manifest::{Module, Project};
use crate::report::{Event, Reporter};
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::time::Instant;

/// Everything a build needs, borrowed for the run.
pub struct Context<'a> {
    pub project: &'a Project,
    /// The instances being worked on; `graph`, `keys` and every index below
    /// are over this list.
    pub instances: &'a [Instance],
    pub graph: &'a Graph,
    pub keys: &'a [ModuleKeys],
    pub reporter: &'a Reporter,
    pub fetch: FetchOptions,
    /// The total number of jobs of the build (`-j`): modules and their makes together.
    pub jobs: usize,
    pub keep_going: bool,
    /// `build --incremental`: stale steps continue in whatever build dir is
    /// there, nothing is saved to a store, and every stamp says so (a later
    /// normal build redoes the work from a clean tree).
    pub incremental: bool,
    /// The artifact store to substitute from and save to (None: `--no-cache`).
    pub store: Option<&'a crate::store::Cache>,
}

impl<'a> Context<'a> {
    /// The module instance `i` is of.
    pub fn module(&self, i: usize) -> &'a Module {
        &self.project.modules[self.instances[i].module]
    }

    /// How reports name instance `i`: `name`, or `name@variant`.
    pub fn label(&self, i: usize) -> &'a str {
        &self.instances[i].label
    }

    /// One lock per module source tree, shared by its variants, so the
    /// tree is unpacked and patched once even when variants run at once.
    fn source_lock(&self, i: usize) -> std::sync::MutexGuard<'static, ()> {
        source_lock(&self.instances[i].source_state(self.project))
    }
}

fn source_lock(path: &std::path::Path) -> std::sync::MutexGuard<'static, ()> {
    use std::sync::{Mutex, OnceLock};
    type Locks = Mutex<HashMap<std::path::PathBuf, &'static Mutex<()>>>;
    static LOCKS: OnceLock<Locks> = OnceLock::new();
    // One small mutex per module version, kept for the life of the process.
    let m: &'static Mutex<()> = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(path.to_path_buf())
        .or_insert_with(|| Box::leak(Box::new(Mutex::new(()))));
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The result of a build.
#[derive(Debug, Default)]
pub struct Summary {
    pub built: Vec<String>,
    pub restored: Vec<String>,
    /// Stale modules left in the cache: nothing in this run needed them.
    pub deferred: Vec<String>,
    pub fresh: Vec<String>,
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
    /// Modules that were running when the run was interrupted.
    pub stopped: Vec<String>,
    pub interrupted: bool,
}

/// Statuses of the given instances.
pub fn statuses(ctx: &Context<'_>, modules: &[usize]) -> HashMap<usize, ModuleStatus> {
    modules
        .iter()
        .map(|&i| {
            let dirs = ctx.instances[i].stamp_dirs(ctx.project);
            (
                i,
                fingerprint::module_status_as(&dirs, &ctx.keys[i], ctx.incremental),
            )
        })
        .collect()
}

/// Brings module `i` up to date, first materialising any deferred module
/// its build needs (which may in turn build, and so on down the graph).
fn bring_up(
    ctx: &Context<'_>,
    i: usize,
    status: &ModuleStatus,
    deferred: &lazy::Deferred<'_>,
    js: &jobserver::Jobserver,
) -> Result<module::Outcome, ModuleError> {
    let materialise = || {
        deferred.materialise_deps(ctx, i, &|d, st| {
            let t = Instant::now();
            let outcome = bring_up(ctx, d, st, deferred, js)?;
            report_outcome(ctx, d, outcome, t.elapsed().as_secs_f64());
            Ok(())
        })
    };
    module::run(ctx, i, status, &materialise, js)
}

/// Where a build merges its outputs: (install dir, record file, the
/// instances whose closure goes there).
pub type Install = (std::path::PathBuf, std::path::PathBuf, Vec<usize>);

/// Builds `selection` and everything it depends on, then merges each entry
/// of `installs` (see [`Install`]) once everything succeeded.
pub fn build(ctx: &Context<'_>, selection: &[usize], installs: Vec<Install>) -> Summary {
    let start = Instant::now();
    let closure = ctx.graph.closure(selection);
    let status = statuses(ctx, &closure);
    let mut summary = Summary::default();
    ctx.reporter.event(Event::BuildStarted {
        modules: closure.len(),
    });
    let deferred_set = lazy::deferrable(ctx, selection, &closure, &status, &|i| {
        ctx.store
            .is_some_and(|c| c.locate(ctx.keys[i].install_key()).is_some())
    });
    let deferred = lazy::Deferred::new(&deferred_set, &status);
    let js = match jobserver::Jobserver::for_build(ctx.jobs) {
        Ok(js) => js,
        Err(e) => {
            ctx.reporter.error(&format!(
                "cannot create the jobserver pipe: {e}\n  hint: raise the open-files limit (ulimit -n)"
            ));
            summary.failed.push("jobserver".into());
            return summary;
        }
    };
    if let Some(why) = jobserver::unusable_parent() {
        ctx.reporter.event(Event::Warning { message: &why });
    }
    schedule(ctx, &closure, &status, &deferred, &js, &mut summary);
    // An interrupt while no module ran (between two) stops the run too.
    summary.interrupted |= command::interrupted();
    summary.skipped = report_skipped(ctx, &closure, &summary);
    if summary.failed.is_empty() && !summary.interrupted {
        merge_installs(ctx, installs, &mut summary);
    }
    report_summary(ctx, &summary, start);
    summary
}

/// Walks the DAG of `closure`: fresh and deferred modules are released at
/// once, stale ones run on a job slot (strata's implicit one, else a
/// jobserver token) until all are done or the run stops.
fn schedule(
    ctx: &Context<'_>,
    closure: &[usize],
    status: &HashMap<usize, ModuleStatus>,
    deferred: &lazy::Deferred<'_>,
    js: &jobserver::Jobserver,
    summary: &mut Summary,
) {
    let in_closure: std::collections::HashSet<usize> = closure.iter().copied().collect();
    let mut waiting: HashMap<usize, usize> = HashMap::new();
    let mut ready = VecDeque::new();
    for &i in closure {
        let n = ctx.graph.deps[i].len();
        waiting.insert(i, n);
        if n == 0 {
            ready.push_back(i);
        }
    }
    let name = |i: usize| ctx.label(i).to_string();
    let mut stop = false;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<Msg>();
        // Tokens arrive on the same channel as finished modules, so one
        // blocking receive waits for either.
        let token_tx = tx.clone();
        let mut helper = if js.can_share() {
            js.client()
                .clone()
                .into_helper_thread(move |t| {
                    let _ = token_tx.send(Msg::Token(t));
                })
                .ok()
        } else {
            None
        };
        let mut running = 0usize;
        let mut implicit_free = true;
        let mut spare: Vec<jobserver::Token> = Vec::new();
        let mut held: HashMap<usize, Option<jobserver::Token>> = HashMap::new();
        let mut requested = 0usize;
        loop {
            while let Some(i) = ready.pop_front().filter(|_| !stop) {
                let st = &status[&i];
                if deferred.contains(i) {
                    ctx.reporter.event(Event::ModuleDeferred {
                        module: ctx.label(i),
                    });
                    summary.deferred.push(name(i));
                    release(ctx, i, &in_closure, &mut waiting, &mut ready);
                    continue;
                }
                if st.first_stale.is_none() {
                    ctx.reporter.event(Event::ModuleFresh {
                        module: ctx.label(i),
                    });
                    summary.fresh.push(name(i));
                    release(ctx, i, &in_closure, &mut waiting, &mut ready);
                    continue;
                }
                let slot = if implicit_free {
                    implicit_free = false;
                    None
                } else if let Some(t) = spare.pop() {
                    Some(t)
                } else {
                    ready.push_front(i);
                    break;
                };
                held.insert(i, slot);
                running += 1;
                let tx = tx.clone();
                s.spawn(move || {
                    ctx.reporter.event(Event::ModuleStarted {
                        module: ctx.label(i),
                    });
                    let t = Instant::now();
                    let r = crate::worker::catch(|| bring_up(ctx, i, st, deferred, js))
                        .unwrap_or_else(|panic| Err(ModuleError::Panic(panic)))
                        .map(|o| (o, t.elapsed().as_secs_f64()));
                    let _ = tx.send(Msg::Done(i, r));
                });
            }
            // A token nobody is waiting for goes back to the pool at once,
            // for the nested makes.
            if ready.is_empty() || stop {
                spare.clear();
            }
            if let Some(h) = &helper {
                let want = if stop { 0 } else { ready.len() };
                while requested + spare.len() < want {
                    h.request_token();
                    requested += 1;
                }
            }
            if running == 0 {
                break;
            }
            let Ok(msg) = rx.recv() else { break };
            let (i, result) = match msg {
                Msg::Token(Ok(t)) => {
                    requested = requested.saturating_sub(1);
                    spare.push(t);
                    continue;
                }
                Msg::Token(Err(e)) => {
                    // Go on with the modules that hold a slot already.
                    ctx.reporter.event(Event::Warning {
                        message: &format!(
                            "cannot take a job token: {e}; running fewer modules at once"
                        ),
                    });
                    requested = 0;
                    helper = None;
                    continue;
                }
                Msg::Done(i, result) => (i, result),
            };
            running -= 1;
            match held.remove(&i) {
                Some(None) => implicit_free = true,
                // The token returns to `spare` if a module is ready for it.
                Some(Some(t)) if !ready.is_empty() => spare.push(t),
                _ => {}
            }
            if record_result(ctx, i, result, summary) {
                release(ctx, i, &in_closure, &mut waiting, &mut ready);
            } else if summary.interrupted || !ctx.keep_going {
                stop = true;
            }
            if command::interrupted() {
                summary.interrupted = true;
                stop = true;
            }
        }
        spare.clear();
        // Stops the helper thread, even one blocked waiting for a token.
        drop(helper);
    });
}

/// Records how module `i` ended; true if it succeeded (its dependents may go).
fn record_result(
    ctx: &Context<'_>,
    i: usize,
    result: Result<(Outcome, f64), ModuleError>,
    summary: &mut Summary,
) -> bool {
    let m = ctx.label(i);
    match result {
        Ok((outcome, secs)) => {
            match report_outcome(ctx, i, outcome, secs) {
                Outcome::Built => summary.built.push(m.to_string()),
                Outcome::Restored { .. } => summary.restored.push(m.to_string()),
            }
            true
        }
        Err(e) if e.is_interrupt() => {
            ctx.reporter.event(Event::ModuleInterrupted { module: m });
            summary.stopped.push(m.to_string());
            summary.interrupted = true;
            false
        }
        Err(e) => {
            ctx.reporter.event(Event::ModuleFailed {
                module: m,
                error: &e.to_string(),
            });
            summary.failed.push(m.to_string());
            false
        }
    }
}

/// Reports every module of `closure` that never ran, with why; their names.
fn report_skipped(ctx: &Context<'_>, closure: &[usize], summary: &Summary) -> Vec<String> {
    let finished: std::collections::HashSet<&String> = summary
        .built
        .iter()
        .chain(&summary.restored)
        .chain(&summary.deferred)
        .chain(&summary.fresh)
        .chain(&summary.failed)
        .chain(&summary.stopped)
        .collect();
    let failed_set: Vec<usize> = closure
        .iter()
        .copied()
        .filter(|&i| summary.failed.iter().any(|f| f == ctx.label(i)))
        .collect();
    let mut skipped = Vec::new();
    for &i in closure {
        let m = ctx.label(i);
        if finished.contains(&m.to_string()) {
            continue;
        }
        let because = failed_set
            .iter()
            .find(|&&f| ctx.graph.transitive_dependents(f).contains(&i))
            .map(|&f| format!("dependency {} failed", ctx.label(f)))
            .unwrap_or_else(|| {
                if summary.interrupted {
                    "not started: the run was interrupted".to_string()
                } else {
                    "stopped after a failure (use --keep-going to continue)".to_string()
                }
            });
        ctx.reporter.event(Event::ModuleSkipped {
            module: m,
            because: &because,
        });
        skipped.push(m.to_string());
    }
    skipped
}

/// Merges each install of a successful build; a failure is recorded.
fn merge_installs(ctx: &Context<'_>, installs: Vec<Install>, summary: &mut Summary) {
    for (dest, record, members) in installs {
        if let Err(e) = merge_install(
            ctx,
            &dest,
            &record,
            &outputs(ctx, &ctx.graph.closure(&members)),
        ) {
            ctx.reporter.error(&e.to_string());
            summary.failed.push("install".into());
            break;
        }
    }
}

fn report_summary(ctx: &Context<'_>, summary: &Summary, start: Instant) {
    ctx.reporter.event(Event::Summary {
        built: summary.built.len(),
        restored: summary.restored.len(),
        deferred: summary.deferred.len(),
        fresh: summary.fresh.len(),
        failed: summary.failed.len(),
        skipped: summary.skipped.len(),
        interrupted: summary.stopped.len(),
        stopped_by_interrupt: summary.interrupted,
        secs: start.elapsed().as_secs_f64(),
    });
}

/// What the scheduler waits for: a module finished, or a job token arrived.
enum Msg {
    Done(usize, Result<(Outcome, f64), ModuleError>),
    Token(std::io::Result<jobserver::Token>),
}

/// Reports how module `i` was brought up to date, and hands the outcome back.
fn report_outcome(ctx: &Context<'_>, i: usize, outcome: Outcome, secs: f64) -> Outcome {
    let module = ctx.label(i);
    match &outcome {
        Outcome::Built => ctx.reporter.event(Event::ModuleBuilt { module, secs }),
        Outcome::Restored {
            store,
            bytes,
            placed,
        } => ctx.reporter.event(Event::ModuleRestored {
            module,
            store,
            bytes: *bytes,
            placed: *placed,
        }),
    }
    outcome
}

/// The modules of `closure` whose files belong in `install/`: all but `host` tools.
pub fn outputs(ctx: &Context<'_>, closure: &[usize]) -> Vec<usize> {
    closure
        .iter()
        .copied()
        .filter(|&i| !ctx.module(i).host)
        .collect()
}

fn release(
    ctx: &Context<'_>,
    i: usize,
    in_closure: &std::collections::HashSet<usize>,
    waiting: &mut HashMap<usize, usize>,
    ready: &mut VecDeque<usize>,
) {
    for &d in &ctx.graph.dependents[i] {
        if !in_closure.contains(&d) {
            continue;
        }
        let n = waiting.get_mut(&d).expect("in closure");
        *n -= 1;
        if *n == 0 {
            ready.push_back(d);
        }
    }
}

/// Merges the staged files of `closure` into `install` (e.g. `install/`),
/// unless `record_path` says the last merge there was of exactly the same
/// instances at the same install keys.
fn merge_install(
    ctx: &Context<'_>,
    install: &std::path::Path,
    record_path: &std::path::Path,
    closure: &[usize],
) -> Result<(), stage::StageError> {
    let project = ctx.project;
    let mut record: Vec<(String, String)> = closure
        .iter()
        .map(|&i| {
            (
                ctx.label(i).to_string(),
                ctx.keys[i].install_key().to_string(),
            )
        })
        .collect();
    if ctx.incremental {
        // Never the record of a normal build: the next one merges again,
        // from destdirs it rebuilt clean at the same keys.
        record.push(("(built with --incremental)".into(), String::new()));
    }
    record.sort();
    let record = serde_json::to_string(&record).expect("serialisable");
    if install.is_dir()
        && std::fs::read_to_string(record_path).ok().as_deref() == Some(record.as_str())
    {
        return Ok(());
    }
    let sources: Vec<(String, std::path::PathBuf)> = closure
        .iter()
        .map(|&i| (ctx.label(i).to_string(), ctx.instances[i].destdir(project)))
        .collect();
    stage::merge(&sources, install, stage::Place::Copy)?;
    write_atomic(record_path, record.as_bytes()).map_err(|source| stage::StageError::Io {
        path: record_path.to_path_buf(),
        source,
    })
}
