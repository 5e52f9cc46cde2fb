//! Bringing one module up to date: the steps from the first stale one on.

use super::Context;
use super::cached::{restore, save};
use super::command::{self, CommandError};
use super::environment::{self, Paths};
use super::jobserver::Jobserver;
use super::sandbox::{self, Sandbox};
use super::stage::{self, Place};
use crate::fetch::{self, FetchError};
use crate::fingerprint::{self, ModuleStatus, Step};
use crate::fsutil::{remove_dir_atomic, remove_leftovers, sync_dir};
use crate::manifest::{Download, OverrideKind};
use crate::patch::{self, PatchError};
use crate::report::Event;
use crate::unpack::{self, UnpackError};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why a module failed. Every message names the module.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("module {module}: unpack failed: {source}")]
    Unpack { module: String, source: UnpackError },
    #[error("module {module}: {source}")]
    Patch {
        module: String,
        source: Box<PatchError>,
    },
    #[error("module {module}: {step} failed: {source}")]
    Command {
        module: String,
        step: Step,
        source: CommandError,
    },
    #[error("module {module}: {source}")]
    Stage {
        module: String,
        source: stage::StageError,
    },
    #[error("module {module}: keep path `{path}` does not exist in {}\n  hint: fix `keep` in the module file, or make the build produce it", dir.display())]
    MissingKeep {
        module: String,
        path: String,
        dir: PathBuf,
    },
    #[error("module {module}: {}: {source}", path.display())]
    Io {
        module: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("module {module}: {source}")]
    Output {
        module: String,
        source: super::fixed_output::OutputError,
    },
    #[error(
        "module {module}: a fixed-output module with `network = true` is not in the cache, and \
         --offline forbids its download\n  hint: run `strata fetch` while online (it builds and \
         caches such modules), or build without --offline"
    )]
    OfflineNetwork { module: String },
    #[error("interrupted")]
    Interrupted,
    #[error("internal error (a bug in strata, please report it): {0}")]
    Panic(String),
}

impl ModuleError {
    pub fn is_interrupt(&self) -> bool {
        matches!(
            self,
            ModuleError::Interrupted
                | ModuleError::Command {
                    source: CommandError::Interrupted,
                    ..
                }
        )
    }
}

/// How a stale module was brought up to date.
#[derive(Debug)]
pub enum Outcome {
    /// Its steps ran.
    Built,
    /// Its artifact was restored from a store (`bytes` read).
    Restored {
        store: String,
        bytes: u64,
        /// How the files were placed from the store's tree (None: extracted
        /// from the archive).
        placed: Option<crate::store::materialise::Counts>,
    },
}

/// Brings module `i` (whose status is `status`) up to date: from the store
/// when it has the module's install key, else by running the stale steps
/// (and then saving the artifact). Store problems are warnings, never failures.
///
/// `before_build` runs only when the module has to build rather than
/// restore: it brings the modules left in the cache for this run (see
/// `lazy`) into the sysroot.
pub fn run(
    ctx: &Context,
    i: usize,
    status: &ModuleStatus,
    before_build: &dyn Fn() -> Result<(), ModuleError>,
    jobserver: &Jobserver,
) -> Result<Outcome, ModuleError> {
    let name = ctx.label(i);
    // A prebuilt override is the user's own directory: the cache has
    // nothing to add to it, and it is not shared through the cache.
    let store = ctx.store.filter(|_| !is_prebuilt(ctx.module(i)));
    if let Some(store) = store {
        match restore(ctx, store, i) {
            Ok(Some((store, bytes, placed))) => {
                return Ok(Outcome::Restored {
                    store,
                    bytes,
                    placed,
                });
            }
            Ok(None) => {}
            Err(why) => ctx.reporter.event(Event::Warning {
                message: &format!("module {name}: {why}; building it instead"),
            }),
        }
    }
    if ctx.fetch.offline && ctx.module(i).network && !is_prebuilt(ctx.module(i)) {
        return Err(ModuleError::OfflineNetwork {
            module: name.to_string(),
        });
    }
    // Building needs the whole sysroot, including modules left in the cache
    // because this one was expected to restore.
    before_build()?;
    run_steps(ctx, i, status, jobserver, Step::Install)?;
    // An incremental build's output is not known to be what its key builds:
    // it never reaches a store.
    if let Some(store) = store.filter(|_| !ctx.incremental)
        && let Err(why) = save(ctx, store, i)
    {
        ctx.reporter.event(Event::Warning {
            message: &format!("module {name}: could not save its artifact: {why}"),
        });
    }
    // The install stamp comes last: a run killed before the artifact was
    // saved leaves install stale, so the next run installs and saves again
    // instead of calling the module fresh with nothing in the cache.
    let state = ctx.instances[i].state(ctx.project);
    fingerprint::write_stamp_as(
        &state,
        name,
        ctx.keys[i].get(Step::Install),
        ctx.incremental,
    )
    .map_err(|source| ModuleError::Io {
        module: name.to_string(),
        path: state.clone(),
        source,
    })?;
    Ok(Outcome::Built)
}

/// Runs one step's work with its started/finished events.
type Timed<'a> =
    dyn Fn(Step, &mut dyn FnMut() -> Result<(), ModuleError>) -> Result<(), ModuleError> + 'a;

/// Fetches, unpacks and patches the shared source tree of instance `i`,
/// replacing whatever is there. Stamps are cleared before the tree changes
/// and written after each step succeeded.
fn prepare_source(ctx: &Context, i: usize, timed: &Timed<'_>) -> Result<(), ModuleError> {
    let (archive, downloads) = fetch_source(ctx, i, timed)?;
    let project = ctx.project;
    let name = ctx.label(i);
    let build_dir = &project.settings.build_dir;
    let src_state = ctx.instances[i].source_state(project);
    fs::create_dir_all(build_dir).map_err(io_err_of(name, build_dir))?;
    fs::create_dir_all(&src_state).map_err(io_err_of(name, &src_state))?;
    timed(Step::Unpack, &mut || {
        unpack_source(ctx, i, &archive, &downloads)
    })?;
    timed(Step::Patch, &mut || patch_source(ctx, i))
}

/// The source package of instance `i` and its extra downloads with their
/// pins, fetched and verified first when one is not here yet (a
/// `sha1-from` pin is read out of the source package, so only once that is).
fn fetch_source(
    ctx: &Context,
    i: usize,
    timed: &Timed<'_>,
) -> Result<(PathBuf, Vec<Download>), ModuleError> {
    let project = ctx.project;
    let m = ctx.module(i);
    let packages = &project.settings.packages_dir;
    let downloads = match &m.overridden {
        Some(_) => Some(Vec::new()),
        None => fetch::resolved_downloads_present(project, m),
    };
    let present = m.overridden.is_some()
        || !m.has_source()
        || fetch::expected_sha256(project, m).is_some_and(|sum| {
            matches!(fetch::is_verified(packages, &m.file, &sum), Ok(Some(true)))
        }) && downloads
            .as_ref()
            .is_some_and(|ds| ds.iter().all(|d| fetch::download_present(project, m, d)));
    let mut fetched = (packages.join(&m.file), downloads.unwrap_or_default());
    if !present {
        timed(Step::Fetch, &mut || {
            fetched = fetch_packages(ctx, i)?;
            Ok(())
        })?;
    }
    Ok(fetched)
}

/// Downloads and verifies the source package of instance `i`, then the
/// extra downloads its pins name, warning about every file quarantined for
/// a wrong sum. Returns the package and the downloads.
fn fetch_packages(ctx: &Context, i: usize) -> Result<(PathBuf, Vec<Download>), ModuleError> {
    let project = ctx.project;
    let m = ctx.module(i);
    let name = ctx.label(i);
    let progress = |done, total| {
        ctx.reporter.event(Event::Transfer {
            module: name,
            what: "fetch",
            done,
            total,
        })
    };
    let warn = |file: &str, sum: &str, quarantined: &[PathBuf]| {
        for q in quarantined {
            ctx.reporter.event(Event::Warning {
                message: &format!(
                    "module {name}: {file} had the wrong {sum}; moved to {}",
                    q.display()
                ),
            });
        }
    };
    let f = fetch::ensure_package(project, m, &ctx.fetch, &progress)?;
    warn(&m.file, "sha256", &f.quarantined);
    let archive = f.path;
    let ds = crate::source_pins::resolve(m, &archive).map_err(fetch::FetchError::from)?;
    for d in &ds {
        let f = fetch::ensure_download(project, m, d, &ctx.fetch, &progress)?;
        let sum = match d.pin {
            crate::manifest::Pin::Sha256(_) => "sha256",
            _ => "sha1 or locked sha256",
        };
        warn(&d.file, sum, &f.quarantined);
    }
    Ok((archive, ds))
}

/// Replaces instance `i`'s source tree as a whole: its source extracted
/// into a temp dir beside it, `$SOURCE_DATE_EPOCH` recorded, the downloads
/// placed, then renamed into place. The unpack stamp is cleared before and
/// written after.
fn unpack_source(
    ctx: &Context,
    i: usize,
    archive: &Path,
    downloads: &[Download],
) -> Result<(), ModuleError> {
    let project = ctx.project;
    let inst = &ctx.instances[i];
    let name = ctx.label(i);
    let src = inst.source_dir(project);
    let src_state = inst.source_state(project);
    let build_dir = &project.settings.build_dir;
    let dir_name = ctx.module(i).dir_name();
    fingerprint::clear_stamps_from(&src_state, Step::Unpack)
        .map_err(io_err_of(name, &src_state))?;
    remove_leftovers(build_dir, &dir_name).map_err(io_err_of(name, build_dir))?;
    let tmp = build_dir.join(format!(".{dir_name}.tmp-{}", std::process::id()));
    fs::create_dir(&tmp).map_err(io_err_of(name, &tmp))?;
    if let Err(e) = extract_source(ctx, i, archive, &tmp) {
        let _ = crate::fsutil::remove_all(&tmp);
        return Err(e);
    }
    // Before any patch touches an mtime.
    let epoch = environment::newest_mtime(&tmp).map_err(io_err_of(name, &tmp))?;
    environment::write_source_date_epoch(&src_state, epoch).map_err(io_err_of(name, &src_state))?;
    if let Err(e) = place_downloads(ctx, i, downloads, &tmp, epoch) {
        let _ = crate::fsutil::remove_all(&tmp);
        return Err(e);
    }
    remove_dir_atomic(&src).map_err(io_err_of(name, &src))?;
    fs::rename(&tmp, &src).map_err(io_err_of(name, &src))?;
    sync_dir(build_dir).map_err(io_err_of(name, build_dir))?;
    fingerprint::write_stamp(&src_state, name, ctx.keys[i].get(Step::Unpack))
        .map_err(io_err_of(name, &src_state))
}

/// Instance `i`'s source into the empty dir `tmp`: its archive extracted,
/// or its local override's tree copied (strata.local.toml); a prebuilt
/// override and `source = "none"` leave it empty.
fn extract_source(ctx: &Context, i: usize, archive: &Path, tmp: &Path) -> Result<(), ModuleError> {
    let m = ctx.module(i);
    let name = ctx.label(i);
    let progress = |done, total| {
        ctx.reporter.event(Event::Transfer {
            module: name,
            what: "unpack",
            done,
            total: Some(total),
        })
    };
    match &m.overridden {
        Some(o) if o.kind == OverrideKind::Source => stage::merge(
            &[(name.to_string(), o.dir.clone())],
            tmp,
            stage::Place::Copy,
        )
        .map_err(|source| ModuleError::Stage {
            module: name.to_string(),
            source,
        }),
        Some(_) => Ok(()),
        None if !m.has_source() => Ok(()),
        None => unpack::extract_reporting(
            archive,
            tmp,
            m.strip_components,
            ctx.project.settings.unpack_limits,
            &progress,
        )
        .map_err(|source| ModuleError::Unpack {
            module: name.to_string(),
            source,
        }),
    }
}

/// The extra downloads go where the build expects them in the tree being
/// unpacked at `tmp`, before patches (none for an overridden module).
fn place_downloads(
    ctx: &Context,
    i: usize,
    downloads: &[Download],
    tmp: &Path,
    epoch: u64,
) -> Result<(), ModuleError> {
    let m = ctx.module(i);
    let packages = &ctx.project.settings.packages_dir;
    for d in downloads.iter().filter(|_| m.overridden.is_none()) {
        let from = packages.join(&d.file);
        if let Err(e) = unpack::place_file(tmp, &d.dest, &d.file, &from, epoch) {
            return Err(ModuleError::Io {
                module: ctx.label(i).to_string(),
                path: from,
                source: std::io::Error::new(
                    e.kind(),
                    format!("placing the download into {}/: {e}", d.dest),
                ),
            });
        }
    }
    Ok(())
}

/// Applies instance `i`'s patches to its source tree (none for an
/// overridden module), then writes the patch stamp.
fn patch_source(ctx: &Context, i: usize) -> Result<(), ModuleError> {
    let m = ctx.module(i);
    let name = ctx.label(i);
    let inst = &ctx.instances[i];
    let src = inst.source_dir(ctx.project);
    let src_state = inst.source_state(ctx.project);
    for p in m.patches.iter().filter(|_| m.overridden.is_none()) {
        let bytes = fs::read(&p.abs).map_err(io_err_of(name, &p.abs))?;
        let applied = patch::apply_patch_with(&src, &p.rel, &bytes, p.strip).map_err(|source| {
            ModuleError::Patch {
                module: name.to_string(),
                source: Box::new(source),
            }
        })?;
        for w in &applied.warnings {
            let message = format!("module {name}: {w}");
            ctx.reporter.event(Event::Warning { message: &message });
        }
    }
    fingerprint::write_stamp(&src_state, name, ctx.keys[i].get(Step::Patch))
        .map_err(io_err_of(name, &src_state))
}

/// `strata prepare`: fetches, verifies, unpacks and patches the source of
/// instance `i`, then stops. Returns false when the source was already
/// patched at the expected key (it is left alone, with whatever was added).
pub fn prepare(ctx: &Context, i: usize) -> Result<bool, ModuleError> {
    let inst = &ctx.instances[i];
    let src_state = inst.source_state(ctx.project);
    if fingerprint::source_ready(&src_state, &inst.source_dir(ctx.project), &ctx.keys[i]) {
        return Ok(false);
    }
    let status = ModuleStatus {
        first_stale: Some(Step::Unpack),
        ..ModuleStatus::default()
    };
    // No command runs before the patch step: a one-job jobserver is enough.
    let jobserver = Jobserver::for_build(1).map_err(|source| ModuleError::Io {
        module: ctx.label(i).to_string(),
        path: src_state.clone(),
        source,
    })?;
    run_steps(ctx, i, &status, &jobserver, Step::Patch)?;
    Ok(true)
}

/// Every step of instance `i`, from a fresh unpack through install, with
/// no restore, no save and no install stamp: `build --check` runs it in a
/// scratch project (see `super::check`).
pub(super) fn rebuild(ctx: &Context, i: usize, jobserver: &Jobserver) -> Result<(), ModuleError> {
    let status = ModuleStatus {
        first_stale: Some(Step::Unpack),
        ..ModuleStatus::default()
    };
    run_steps(ctx, i, &status, jobserver, Step::Install)
}

/// Runs the stale steps of instance `i`, up to and including `last`.
fn run_steps(
    ctx: &Context,
    i: usize,
    status: &ModuleStatus,
    jobserver: &Jobserver,
    last: Step,
) -> Result<(), ModuleError> {
    let project = ctx.project;
    let inst = &ctx.instances[i];
    let keys = &ctx.keys[i];
    let src = inst.source_dir(project);
    let variant = inst.variant.is_some();
    let name = ctx.label(i);
    let Some(restart) = status.restart_from() else {
        return Ok(());
    };
    let timed = |step: Step, f: &mut dyn FnMut() -> Result<(), ModuleError>| {
        if command::interrupted() {
            return Err(ModuleError::Interrupted);
        }
        let t = Instant::now();
        ctx.reporter
            .event(Event::StepStarted { module: name, step });
        let log = inst.logs(project).join(format!("{}.log", step.name()));
        let r = with_heartbeat(ctx, name, step, &log, t, f);
        let secs = t.elapsed().as_secs_f64();
        ctx.reporter.event(match r {
            Ok(()) => Event::StepFinished {
                module: name,
                step,
                secs,
            },
            Err(_) => Event::StepFailed {
                module: name,
                step,
                secs,
            },
        });
        r
    };

    if restart == Step::Unpack {
        // Variants of one version share the source: the first to get here
        // prepares it, the others find it ready.
        let _source = ctx.source_lock(i);
        if !(variant && fingerprint::source_ready(&inst.source_state(project), &src, keys)) {
            prepare_source(ctx, i, &timed)?;
        }
    }
    if last < Step::Configure {
        return Ok(());
    }
    reset_for_commands(ctx, i, restart)?;
    let paths = command_dirs(ctx, i, restart)?;
    let env = command_env(ctx, i, &paths, jobserver);
    let m = ctx.module(i);
    for step in [Step::Configure, Step::Build, Step::Install] {
        if step < restart {
            continue;
        }
        let script = match step {
            Step::Configure => &m.configure,
            Step::Build => &m.build,
            _ => &m.install,
        };
        let mut work =
            || run_command_step(ctx, i, step, script.as_deref(), &paths, &env, jobserver);
        // A configure or build step the module does not have only records its
        // stamp: nothing to show.
        if script.is_none() && step != Step::Install {
            work()?;
        } else {
            timed(step, &mut work)?;
        }
    }
    Ok(())
}

/// An I/O error of instance `name` at `p`.
fn io_err_of<'a>(name: &'a str, p: &Path) -> impl FnOnce(io::Error) -> ModuleError + 'a {
    let p = p.to_path_buf();
    move |source| ModuleError::Io {
        module: name.to_string(),
        path: p,
        source,
    }
}

/// Clears the stamps from where the commands restart (a variant restarting
/// at configure also gets an empty build dir) and starts the list of steps
/// that wrote into a fresh tree.
fn reset_for_commands(ctx: &Context, i: usize, restart: Step) -> Result<(), ModuleError> {
    let inst = &ctx.instances[i];
    let name = ctx.label(i);
    let state = inst.state(ctx.project);
    let dir = inst.build_dir(ctx.project);
    if inst.variant.is_some() && restart <= Step::Configure {
        // A fresh, empty build dir: never configure over older objects.
        fingerprint::clear_stamps_from(&state, Step::Configure).map_err(io_err_of(name, &state))?;
        remove_dir_atomic(&dir).map_err(io_err_of(name, &dir))?;
        fs::create_dir_all(&dir).map_err(io_err_of(name, &dir))?;
    }
    fingerprint::clear_stamps_from(&state, restart.max(Step::Configure))
        .map_err(io_err_of(name, &state))?;
    fingerprint::forget_provenance(&state).map_err(io_err_of(name, &state))?;
    if restart <= Step::Configure {
        // A freshly extracted tree, or a variant's emptied build dir:
        // nothing has written into it yet.
        fingerprint::start_tree(&state).map_err(io_err_of(name, &state))?;
    }
    Ok(())
}

/// The commands' directories, with the dependencies staged into the
/// sysroot and host prefix and HOME emptied for a fresh build.
fn command_dirs(ctx: &Context, i: usize, restart: Step) -> Result<Paths, ModuleError> {
    let project = ctx.project;
    let inst = &ctx.instances[i];
    let name = ctx.label(i);
    let deps = ctx.graph.transitive_deps(i);
    let sysroot = inst.sysroot(project);
    let host = inst.host_prefix(project);
    let home = inst.home(project);
    if restart <= Step::Configure || !sysroot.is_dir() || !host.is_dir() {
        // Target dependencies go to the sysroot, `host` ones (tools run
        // during the build) to the host prefix.
        for (tree, want_host) in [(&sysroot, false), (&host, true)] {
            let sources: Vec<(String, PathBuf)> = deps
                .iter()
                .filter(|&&d| ctx.module(d).host == want_host)
                .map(|&d| (ctx.label(d).to_string(), ctx.instances[d].destdir(project)))
                .collect();
            stage::merge(&sources, tree, Place::Link).map_err(|source| ModuleError::Stage {
                module: name.to_string(),
                source,
            })?;
        }
    }
    if restart <= Step::Configure {
        // A fresh build starts from an empty HOME.
        crate::fsutil::remove_all(&home).map_err(io_err_of(name, &home))?;
    }
    fs::create_dir_all(&home).map_err(io_err_of(name, &home))?;
    Ok(Paths {
        build_dir: inst.build_dir(project),
        source_dir: inst.source_dir(project),
        destdir: inst.destdir(project),
        sysroot,
        host,
        home,
        tmp: inst.tmp(project),
    })
}

/// The commands' environment: paths, dependencies' build dirs, params.
fn command_env(
    ctx: &Context,
    i: usize,
    paths: &Paths,
    jobserver: &Jobserver,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let project = ctx.project;
    let inst = &ctx.instances[i];
    let dep_dirs: Vec<(String, PathBuf)> = ctx
        .graph
        .transitive_deps(i)
        .iter()
        .map(|&d| {
            (
                ctx.module(d).name.clone(),
                ctx.instances[d].build_dir(project),
            )
        })
        .collect();
    let params: Vec<(String, std::ffi::OsString)> = inst
        .params
        .iter()
        .map(|(param, value)| {
            let v = match value {
                crate::manifest::ParamValue::Value(v) => v.into(),
                crate::manifest::ParamValue::File { abs, .. }
                | crate::manifest::ParamValue::Dir { abs, .. } => abs.clone().into_os_string(),
            };
            (param.clone(), v)
        })
        .collect();
    environment::command_env(
        ctx.module(i),
        paths,
        jobserver.jobs(),
        &dep_dirs,
        &params,
        &environment::pass_env_values(&project.settings.pass_env),
        environment::source_date_epoch(&inst.source_state(project), &paths.source_dir),
    )
}

/// One of configure, build and install: its command (or a prebuilt
/// override's files), then its stamp; install's stamp waits for the save.
fn run_command_step(
    ctx: &Context,
    i: usize,
    step: Step,
    script: Option<&str>,
    paths: &Paths,
    env: &[(std::ffi::OsString, std::ffi::OsString)],
    jobserver: &Jobserver,
) -> Result<(), ModuleError> {
    let m = ctx.module(i);
    let name = ctx.label(i);
    let inst = &ctx.instances[i];
    let state = inst.state(ctx.project);
    let (dest, tmp, dir) = (&paths.destdir, &paths.tmp, &paths.build_dir);
    if step == Step::Install {
        crate::fsutil::remove_all(dest).map_err(io_err_of(name, dest))?;
        fs::create_dir_all(dest).map_err(io_err_of(name, dest))?;
    }
    if step == Step::Install
        && let Some(o) = m
            .overridden
            .as_ref()
            .filter(|o| o.kind == OverrideKind::Prebuilt)
    {
        stage::merge(
            &[(name.to_string(), o.dir.clone())],
            dest,
            stage::Place::Copy,
        )
        .map_err(|source| ModuleError::Stage {
            module: name.to_string(),
            source,
        })?;
    }
    if let Some(script) = script.filter(|_| !is_prebuilt(m)) {
        // Listed before it runs: a failed or killed step wrote too.
        fingerprint::record_tree_write(&state, step, &ctx.keys[i].get(step).key, ctx.incremental)
            .map_err(io_err_of(name, &state))?;
        let log = inst.logs(ctx.project).join(format!("{}.log", step.name()));
        // Each command starts with an empty TMPDIR; the destdir
        // exists for every step so that the sandbox can bind it.
        crate::fsutil::remove_all(tmp).map_err(io_err_of(name, tmp))?;
        for d in [tmp, dest] {
            fs::create_dir_all(d).map_err(io_err_of(name, d))?;
        }
        run_command(ctx, script, paths, env, jobserver, &log, m.network).map_err(|source| {
            ModuleError::Command {
                module: name.to_string(),
                step,
                source,
            }
        })?;
    }
    if step == Step::Install {
        for k in &m.keep {
            if fs::symlink_metadata(dir.join(k)).is_err() {
                return Err(ModuleError::MissingKeep {
                    module: name.to_string(),
                    path: k.clone(),
                    dir: dir.clone(),
                });
            }
        }
        if m.is_fixed_output() && !is_prebuilt(m) {
            super::fixed_output::verify(m, dest).map_err(|source| ModuleError::Output {
                module: name.to_string(),
                source,
            })?;
        }
        warn_unrelocatable(ctx, name, paths);
        // Stamped by `run` once the artifact is saved.
        return Ok(());
    }
    fingerprint::write_stamp_as(&state, name, ctx.keys[i].get(step), ctx.incremental)
        .map_err(io_err_of(name, &state))
}

/// How often a running command step reports that it is still running
/// (`STRATA_HEARTBEAT` seconds, default 60; 0 turns it off). CircleCI kills
/// a step after 10 minutes without output, and a gcc build is longer.
fn heartbeat_interval() -> Option<std::time::Duration> {
    let secs = std::env::var("STRATA_HEARTBEAT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(60.0);
    (secs > 0.0).then(|| std::time::Duration::from_secs_f64(secs))
}

/// Runs `f` (step `step` of `module`), reporting [`Event::StepRunning`]
/// with the size of its log at every heartbeat while it runs.
fn with_heartbeat(
    ctx: &Context,
    module: &str,
    step: Step,
    log: &Path,
    started: Instant,
    f: &mut dyn FnMut() -> Result<(), ModuleError>,
) -> Result<(), ModuleError> {
    let every = heartbeat_interval().filter(|_| step >= Step::Configure);
    let stream = step >= Step::Configure && ctx.reporter.streams_output();
    if every.is_none() && !stream {
        return f();
    }
    std::thread::scope(|s| {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let (done2, wait2) = std::sync::mpsc::channel::<()>();
        if let Some(every) = every {
            s.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(every)
                {
                    ctx.reporter.event(Event::StepRunning {
                        module,
                        step,
                        secs: started.elapsed().as_secs_f64(),
                        log_bytes: fs::metadata(log).map_or(0, |m| m.len()),
                    });
                }
            });
        }
        if stream {
            s.spawn(move || follow_log(ctx, module, log, &wait2));
        }
        let r = f();
        drop(done);
        drop(done2);
        r
    })
}

/// `-v`: prints each line the command appends to `log` as it appears,
/// until `stop` is dropped (then the rest, and a last unterminated line).
fn follow_log(ctx: &Context, module: &str, log: &Path, stop: &std::sync::mpsc::Receiver<()>) {
    use std::io::{Read, Seek, SeekFrom};
    let tick = std::time::Duration::from_millis(200);
    let mut offset = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let last = !matches!(
            stop.recv_timeout(tick),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        );
        if let Ok(mut f) = fs::File::open(log)
            && f.seek(SeekFrom::Start(offset)).is_ok()
        {
            let mut buf = Vec::new();
            // At most 1 MiB a tick while it runs; everything at the end.
            let limit = if last { u64::MAX } else { 1 << 20 };
            if let Ok(n) = f.take(limit).read_to_end(&mut buf) {
                offset += n as u64;
                pending.extend_from_slice(&buf);
            }
        }
        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            ctx.reporter
                .output_line(module, String::from_utf8_lossy(&line[..nl]).trim_end());
        }
        if last {
            if !pending.is_empty() {
                ctx.reporter
                    .output_line(module, String::from_utf8_lossy(&pending).trim_end());
            }
            return;
        }
    }
}

/// Whether `strata.local.toml` makes `m` a prebuilt directory.
fn is_prebuilt(m: &crate::manifest::Module) -> bool {
    m.overridden
        .as_ref()
        .is_some_and(|o| o.kind == OverrideKind::Prebuilt)
}

/// Runs one command in the instance's build dir, sandboxed as `[settings]
/// sandbox` (or `STRATA_SANDBOX`) says: `auto` runs it unsandboxed, with one
/// warning per run, when the kernel refuses the namespaces.
fn run_command(
    ctx: &Context,
    script: &str,
    paths: &Paths,
    env: &[(std::ffi::OsString, std::ffi::OsString)],
    jobserver: &Jobserver,
    log: &Path,
    network: bool,
) -> Result<(), CommandError> {
    use crate::manifest::SandboxMode;
    let mode = sandbox::mode(ctx.project.settings.sandbox).map_err(CommandError::Sandbox)?;
    let dir = &paths.build_dir;
    let plain = || command::run(script, dir, env, jobserver, log, None);
    if mode == SandboxMode::Off || (mode == SandboxMode::Auto && sandbox::unavailable().is_some()) {
        return plain();
    }
    // A variant's shared source stays read-only (see `sandbox`).
    let writable = [dir, &paths.destdir, &paths.home, &paths.tmp];
    let sb = Sandbox::new(&writable.map(PathBuf::as_path), dir, network)
        .map_err(|e| CommandError::Sandbox(format!("cannot prepare the sandbox: {e}")))?;
    match command::run(script, dir, env, jobserver, log, Some(sb)) {
        Err(CommandError::Sandbox(why)) if mode == SandboxMode::Auto => {
            if sandbox::mark_unavailable(&why) {
                let message = sandbox::unavailable_warning(&why);
                ctx.reporter.event(Event::Warning { message: &message });
            }
            plain()
        }
        Err(CommandError::Sandbox(why)) => Err(CommandError::Sandbox(format!(
            "cannot run the command in the sandbox: {why}\n  hint: [settings] sandbox = \"require\" \
             (or {}=require) needs user namespaces or root; allow them, or use \"auto\"",
            sandbox::ENV_SANDBOX
        ))),
        r => r,
    }
}

/// Warns, naming the files, when the staged install embeds an absolute path
/// of this build (see [`super::relocatable`]).
fn warn_unrelocatable(ctx: &Context, module: &str, paths: &Paths) {
    let needles = [
        paths.build_dir.clone(),
        paths.source_dir.clone(),
        paths.sysroot.clone(),
        paths.host.clone(),
    ];
    let message = match super::relocatable::scan(&paths.destdir, &needles) {
        Ok(hits) if hits.is_empty() => return,
        Ok(hits) => {
            const SHOWN: usize = 10;
            let mut list = hits
                .iter()
                .take(SHOWN)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if hits.len() > SHOWN {
                list.push_str(&format!(" and {} more", hits.len() - SHOWN));
            }
            format!(
                "module {module}: {} installed file(s) in {} embed the absolute build path {} \
                 (the artifact is not relocatable: restored elsewhere they name a directory \
                 that does not exist): {list}\n  hint: install with paths relative to the \
                 prefix, or pass the final prefix (not the build dir) to configure",
                hits.len(),
                paths.destdir.display(),
                paths.build_dir.display(),
            )
        }
        Err(e) => format!(
            "module {module}: could not scan {} for embedded build paths: {e}",
            paths.destdir.display()
        ),
    };
    ctx.reporter.event(Event::Warning { message: &message });
}
