//! `strata build` answered from the no-op state file
//! (`build/.strata/noop-state`, see [`crate::fingerprint::noop`]): after a
//! build in which every module was fresh, [`record`] lists everything that
//! answer read; the next `strata build` of the same names asks [`answer`]
//! first, which reads `strata.toml` and the state file, takes the project
//! lock and compares every entry's stat signature. When nothing changed it
//! reports the same fresh modules without reading a module file, patch or
//! stamp; otherwise the full path runs (with the lock already taken).
//!
//! What a fully fresh answer reads, hence what is recorded: `strata.toml`,
//! `strata.local.toml` (or that there is none), the `modules/` listing and
//! every module file (an error in any of them fails any build), the
//! `patches/` listing, each module's patch file or directory, its `series`
//! and every patch, each override directory and every param file and
//! directory (whole trees, entry by entry), the build dir's listing (each
//! instance's build dir is in it), each instance's install stamp, the install records and the targets' history records;
//! and the `pass-env` values, compared as values.

use super::{EXIT_INTERRUPTED, Failure, Global, Loaded};
use crate::exec::{Summary, command, jobserver};
use crate::fingerprint::noop::{Look, Request, State};
use crate::fingerprint::{Step, stamp_path};
use crate::instance::Instances;
use crate::lock::ProjectLock;
use crate::manifest::{ParamValue, Project};
use crate::report::{Event, Reporter};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Where the state file lives.
pub fn state_path(project: &Project) -> PathBuf {
    project.state_dir().join("noop-state")
}

/// What [`answer`] did.
pub enum Answer {
    /// The state file answered: the build is over, with this result.
    Done(Result<(), Failure>),
    /// The full path must run: no usable state, or something changed (the
    /// project lock is handed on when it was taken).
    Full(Option<ProjectLock>),
}

/// What the keys read from the environment, as the keys encode it.
fn request(root: &Path, names: &[String], pass_env: &[String]) -> Request {
    let env = crate::exec::environment::pass_env_values(pass_env)
        .into_iter()
        .map(|(k, v)| {
            let v = v.map(|v| {
                v.to_str().map_or_else(
                    || format!("bytes {}", hex::encode(v.as_encoded_bytes())),
                    str::to_string,
                )
            });
            (k, v)
        })
        .collect();
    Request {
        root: root.to_path_buf(),
        names: names.to_vec(),
        env,
    }
}

/// Answers `strata build NAMES` from the state file if nothing it records
/// changed.
pub fn answer(g: &Global, names: &[String]) -> Answer {
    let Ok(head) = crate::manifest::load_settings(&g.project) else {
        return Answer::Full(None);
    };
    let path = state_path(&head);
    let Some(state) = State::read(&path) else {
        return Answer::Full(None);
    };
    let req = request(&head.root, names, &head.settings.pass_env);
    let reporter = g.reporter();
    // Compared under the lock: a build running now changes what it records.
    let Ok(lock) = super::lock_project(&head, &reporter) else {
        return Answer::Full(None);
    };
    let answers = state.answers(&req);
    match answers {
        Some(checked) => {
            reporter.verbose_line(
                "Unchanged",
                &format!("{checked} inputs recorded in {}", path.display()),
            );
            Answer::Done(replay(g, &head, &state, lock, &reporter))
        }
        None => Answer::Full(Some(lock)),
    }
}

/// What the full path does for a build in which every module is fresh,
/// given the modules: the same cache and locks, the same events, the same
/// statistics.
fn replay(
    g: &Global,
    head: &Project,
    state: &State,
    lock: ProjectLock,
    reporter: &Reporter,
) -> Result<(), Failure> {
    command::install_interrupt_handler();
    let cache = if g.no_cache {
        None
    } else {
        Some(g.cache(head)?)
    };
    let _store_lock = cache.as_ref().map(super::lock_store).transpose()?;
    let start = Instant::now();
    reporter.event(Event::BuildStarted {
        modules: state.fresh.len(),
    });
    if let Some(why) = jobserver::unusable_parent() {
        reporter.event(Event::Warning { message: &why });
    }
    for module in &state.fresh {
        reporter.event(Event::ModuleFresh { module });
    }
    let interrupted = command::interrupted();
    reporter.event(Event::Summary {
        built: 0,
        restored: 0,
        deferred: 0,
        fresh: state.fresh.len(),
        failed: 0,
        skipped: 0,
        interrupted: 0,
        stopped_by_interrupt: interrupted,
        secs: start.elapsed().as_secs_f64(),
    });
    if let Some(c) = &cache {
        super::record_stats(head, c, reporter);
    }
    if interrupted {
        return Err(Failure::Code(EXIT_INTERRUPTED));
    }
    lock.release();
    Ok(())
}

/// Records the state of a build of `names` in which every module was fresh
/// (anything else is not recorded: the next build would not be a no-op),
/// `started` being when the build began. A state that cannot be written is
/// a warning: the next build takes the full path.
pub fn record(
    l: &Loaded,
    inst: &Instances,
    installs: &[crate::exec::Install],
    names: &[String],
    summary: &Summary,
    started: SystemTime,
    reporter: &Reporter,
) {
    let closure = inst.graph.closure(&inst.selection());
    let all_fresh = summary.fresh.len() == closure.len()
        && summary.built.is_empty()
        && summary.restored.is_empty()
        && summary.deferred.is_empty()
        && summary.failed.is_empty()
        && summary.skipped.is_empty()
        && summary.stopped.is_empty()
        && !summary.interrupted;
    if !all_fresh {
        return;
    }
    let p = &l.project;
    let Some(entries) = entries(p, inst, &closure, installs) else {
        return;
    };
    let req = request(&p.root, names, &p.settings.pass_env);
    let state = State::new(req, entries, summary.fresh.clone());
    let path = state_path(p);
    if let Err(e) = state.write(&path, started) {
        reporter.event(Event::Warning {
            message: &format!("cannot write {}: {e}", path.display()),
        });
    }
}

/// Everything a fully fresh answer for `closure` read (see the module
/// doc); None when a tree cannot be walked.
fn entries(
    p: &Project,
    inst: &Instances,
    closure: &[usize],
    installs: &[crate::exec::Install],
) -> Option<Vec<(PathBuf, Look)>> {
    let mut out = Vec::new();
    let mut file = |path: PathBuf| out.push((path, Look::Follow));
    for f in [
        "strata.toml",
        crate::manifest::overrides::FILE_NAME,
        "modules",
        "patches",
    ] {
        file(p.root.join(f));
    }
    let mut trees: Vec<&Path> = Vec::new();
    for m in &p.modules {
        file(p.root.join(&m.manifest_path));
        if let Some(from) = &m.patches_from {
            file(from.clone());
            file(from.join("series"));
        }
        for patch in &m.patches {
            file(patch.abs.clone());
        }
        if let Some(o) = &m.overridden {
            trees.push(&o.dir);
        }
    }
    for params in p.target_params.values() {
        for v in params.values() {
            match v {
                ParamValue::Value(_) => {}
                ParamValue::File { abs, .. } => file(abs.clone()),
                ParamValue::Dir { abs, .. } => trees.push(abs),
            }
        }
    }
    // Every build dir is an entry of the build dir: one deleted, replaced
    // or renamed changes its listing (and strata's state is below .strata/).
    out.push((p.settings.build_dir.clone(), Look::Follow));
    for &i in closure {
        let it = &inst.list[i];
        debug_assert_eq!(
            it.build_dir(p).parent(),
            Some(p.settings.build_dir.as_path())
        );
        out.push((stamp_path(&it.state(p), Step::Install), Look::Follow));
    }
    for (dest, record, _) in installs {
        out.push((dest.clone(), Look::IsDir));
        out.push((record.clone(), Look::Follow));
    }
    for r in inst.requests.iter().filter_map(|r| r.target.as_deref()) {
        out.push((crate::instance::history::record_path(p, r), Look::Follow));
    }
    for dir in trees {
        out.push((dir.to_path_buf(), Look::Follow));
        walk(dir, &mut out).ok()?;
    }
    Some(out)
}

/// Every entry below `dir` (symlinks as themselves, not followed), as the
/// digest of an override or dir param walks it.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, Look)>) -> std::io::Result<()> {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                todo.push(e.path());
            }
            out.push((e.path(), Look::NoFollow));
        }
    }
    Ok(())
}
