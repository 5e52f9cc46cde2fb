//! Bringing one module up to date: the steps from the first stale one on.

use super::Context;
use super::command::{self, CommandError};
use super::environment::{self, Paths};
use super::jobserver::Jobserver;
use super::stage::{self, Place};
use crate::artifact::{self, ArtifactInfo, CACHE_FORMAT};
use crate::fetch::{self, FetchError};
use crate::fingerprint::{self, ModuleStatus, Step};
use crate::fsutil::{remove_dir_atomic, remove_leftovers, sync_dir};
use crate::patch::{self, PatchError};
use crate::report::Event;
use crate::store::{Cache, Store};
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

/// Where a module's staged install tree lives.
pub fn destdir(module_dir: &Path) -> PathBuf {
    module_dir.join(".strata").join("destdir")
}

/// How a stale module was brought up to date.
#[derive(Debug)]
pub enum Outcome {
    /// Its steps ran.
    Built,
    /// Its artifact was restored from a store (`bytes` read).
    Restored { store: String, bytes: u64 },
}

/// Brings module `i` (whose status is `status`) up to date: from the store
/// when it has the module's install key, else by running the stale steps
/// (and then saving the artifact). Store problems are warnings, never failures.
pub fn run(
    ctx: &Context,
    i: usize,
    status: &ModuleStatus,
    deferred: &super::lazy::Deferred<'_>,
    jobserver: &Jobserver,
) -> Result<Outcome, ModuleError> {
    let name = &ctx.project.modules[i].name;
    if let Some(store) = ctx.store {
        match restore(ctx, store, i) {
            Ok(Some((store, bytes))) => {
                return Ok(Outcome::Restored { store, bytes });
            }
            Ok(None) => {}
            Err(why) => ctx.reporter.event(Event::Warning {
                message: &format!("module {name}: {why}; building it instead"),
            }),
        }
    }
    // Building needs the whole sysroot, including modules left in the cache
    // because this one was expected to restore.
    deferred.materialise_deps(ctx, i, jobserver)?;
    run_steps(ctx, i, status, jobserver, Step::Install)?;
    if let Some(store) = ctx.store
        && let Err(why) = save(ctx, store, i)
    {
        ctx.reporter.event(Event::Warning {
            message: &format!("module {name}: could not save its artifact: {why}"),
        });
    }
    // The install stamp comes last: a run killed before the artifact was
    // saved leaves install stale, so the next run installs and saves again
    // instead of calling the module fresh with nothing in the cache.
    let dir = ctx.project.module_build_dir(&ctx.project.modules[i]);
    fingerprint::write_stamp(&dir, name, ctx.keys[i].get(Step::Install)).map_err(|source| {
        ModuleError::Io {
            module: name.clone(),
            path: dir.clone(),
            source,
        }
    })?;
    Ok(Outcome::Built)
}

/// Restores module `i` from the cache if it holds the install key (verified).
fn restore(ctx: &Context, cache: &Cache, i: usize) -> Result<Option<(String, u64)>, String> {
    let project = ctx.project;
    let m = &project.modules[i];
    let key = ctx.keys[i].install_key();
    let warn = |msg: &str| {
        ctx.reporter.event(Event::Warning {
            message: &format!("module {}: {msg}", m.name),
        })
    };
    let progress = |done, total| {
        ctx.reporter.event(Event::Transfer {
            module: &m.name,
            what: "download",
            done,
            total: Some(total),
        })
    };
    let Some(hit) = cache.find(key, &m.name, &warn, &progress) else {
        return Ok(None);
    };
    let build_dir = &project.settings.build_dir;
    let dir_name = m.dir_name();
    let dir = project.module_build_dir(m);
    fs::create_dir_all(build_dir).map_err(|e| e.to_string())?;
    remove_leftovers(build_dir, &dir_name).map_err(|e| e.to_string())?;
    let tmp = build_dir.join(format!(".{dir_name}.tmp-{}", std::process::id()));
    fs::create_dir(&tmp).map_err(|e| e.to_string())?;
    if let Err(e) = unpack::extract_with(&hit.archive, &tmp, 0, project.settings.unpack_limits) {
        let _ = crate::fsutil::remove_all(&tmp);
        let _ = cache.local.quarantine(key);
        return Err(format!(
            "cache entry {key} does not extract ({e}); it was quarantined"
        ));
    }
    fingerprint::write_stamp(&tmp, &m.name, ctx.keys[i].get(Step::Install))
        .map_err(|e| e.to_string())?;
    fingerprint::write_provenance(&tmp, &ctx.keys[i]).map_err(|e| e.to_string())?;
    remove_dir_atomic(&dir).map_err(|e| e.to_string())?;
    fs::rename(&tmp, &dir).map_err(|e| e.to_string())?;
    sync_dir(build_dir).map_err(|e| e.to_string())?;
    Ok(Some((hit.source, hit.info.size)))
}

/// Packs a module's install tree and keep paths as the artifact of `key`.
pub fn pack_module(
    project: &crate::manifest::Project,
    m: &crate::manifest::Module,
    key: &str,
    threads: u32,
) -> Result<artifact::Packed, String> {
    let info = ArtifactInfo {
        format: CACHE_FORMAT.to_string(),
        module: m.name.clone(),
        version: m.version.clone(),
        key: key.to_string(),
        strata_version: env!("CARGO_PKG_VERSION").to_string(),
        size: 0,
        files: 0,
        blake3: String::new(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        signatures: Vec::new(),
        ci: None,
    };
    let tmp_dir = project.state_dir().join("tmp");
    artifact::pack(
        &project.module_build_dir(m),
        &m.keep,
        info,
        &tmp_dir,
        threads,
    )
    .map_err(|e| e.to_string())
}

/// Packs module `i` and saves it locally and (if pushing) remotely.
fn save(ctx: &Context, cache: &Cache, i: usize) -> Result<(), String> {
    let m = &ctx.project.modules[i];
    let threads = ctx.jobs.clamp(1, 8) as u32;
    let packed = pack_module(ctx.project, m, ctx.keys[i].install_key(), threads)?;
    let warn = |msg: &str| {
        ctx.reporter.event(Event::Warning {
            message: &format!("module {}: {msg}", m.name),
        })
    };
    cache.save(&packed.info, packed.archive.path(), &warn);
    Ok(())
}

/// `strata prepare`: fetches, verifies, unpacks and patches module `i`, then
/// stops. Returns false when its tree was already patched at the expected
/// key (it is left alone, with whatever a build added to it).
pub fn prepare(ctx: &Context, i: usize) -> Result<bool, ModuleError> {
    let dir = ctx.project.module_build_dir(&ctx.project.modules[i]);
    let patch_key = &ctx.keys[i].get(Step::Patch).key;
    if fingerprint::stamp_key(&dir, Step::Patch).as_ref() == Some(patch_key) {
        return Ok(false);
    }
    let status = ModuleStatus {
        first_stale: Some(Step::Unpack),
        reasons: Vec::new(),
    };
    // No command runs before the patch step: a one-job jobserver is enough.
    let jobserver = Jobserver::for_build(1).map_err(|source| ModuleError::Io {
        module: ctx.project.modules[i].name.clone(),
        path: dir.clone(),
        source,
    })?;
    run_steps(ctx, i, &status, &jobserver, Step::Patch)?;
    Ok(true)
}

/// Runs the stale steps of module `i`, up to and including `last`.
fn run_steps(
    ctx: &Context,
    i: usize,
    status: &ModuleStatus,
    jobserver: &Jobserver,
    last: Step,
) -> Result<(), ModuleError> {
    let project = ctx.project;
    let m = &project.modules[i];
    let keys = &ctx.keys[i];
    let dir = project.module_build_dir(m);
    let name = m.name.as_str();
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ModuleError::Io {
            module: name.to_string(),
            path: p,
            source,
        }
    };
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
        let r = f();
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
        let packages = &project.settings.packages_dir;
        let mut archive = packages.join(&m.file);
        let present = fetch::expected_sha256(packages, m).is_some_and(|sum| {
            matches!(fetch::is_verified(packages, &m.file, &sum), Ok(Some(true)))
        });
        if !present {
            timed(Step::Fetch, &mut || {
                let progress = |done, total| {
                    ctx.reporter.event(Event::Transfer {
                        module: name,
                        what: "fetch",
                        done,
                        total,
                    })
                };
                let f = fetch::ensure_package(project, m, &ctx.fetch, &progress)?;
                for q in &f.quarantined {
                    ctx.reporter.event(Event::Warning {
                        message: &format!(
                            "module {name}: {} had the wrong sha256; moved to {}",
                            m.file,
                            q.display()
                        ),
                    });
                }
                archive = f.path;
                Ok(())
            })?;
        }
        let build_dir = &project.settings.build_dir;
        fs::create_dir_all(build_dir).map_err(io_err(build_dir))?;
        let dir_name = m.dir_name();
        timed(Step::Unpack, &mut || {
            remove_leftovers(build_dir, &dir_name).map_err(io_err(build_dir))?;
            let tmp = build_dir.join(format!(".{dir_name}.tmp-{}", std::process::id()));
            fs::create_dir(&tmp).map_err(io_err(&tmp))?;
            if let Err(source) = unpack::extract_with(
                &archive,
                &tmp,
                m.strip_components,
                project.settings.unpack_limits,
            ) {
                let _ = crate::fsutil::remove_all(&tmp);
                return Err(ModuleError::Unpack {
                    module: name.to_string(),
                    source,
                });
            }
            // Before any patch touches an mtime.
            let epoch = environment::newest_mtime(&tmp).map_err(io_err(&tmp))?;
            environment::write_source_date_epoch(&tmp.join(".strata"), epoch)
                .map_err(io_err(&tmp))?;
            fingerprint::write_stamp(&tmp, name, keys.get(Step::Unpack)).map_err(io_err(&tmp))?;
            remove_dir_atomic(&dir).map_err(io_err(&dir))?;
            fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
            sync_dir(build_dir).map_err(io_err(build_dir))
        })?;
        timed(Step::Patch, &mut || {
            for p in &m.patches {
                let bytes = fs::read(&p.abs).map_err(io_err(&p.abs))?;
                patch::apply_patch_with(&dir, &p.rel, &bytes, p.strip).map_err(|source| {
                    ModuleError::Patch {
                        module: name.to_string(),
                        source: Box::new(source),
                    }
                })?;
            }
            fingerprint::write_stamp(&dir, name, keys.get(Step::Patch)).map_err(io_err(&dir))
        })?;
    }
    fingerprint::clear_stamps_from(&dir, restart.max(Step::Configure)).map_err(io_err(&dir))?;
    if last < Step::Configure {
        return Ok(());
    }

    let deps = ctx.graph.transitive_deps(i);
    let state = dir.join(".strata");
    let sysroot = state.join("sysroot");
    let host = state.join("host");
    let home = project.state_dir().join("home").join(m.dir_name());
    if restart <= Step::Configure || !sysroot.is_dir() || !host.is_dir() {
        // Target dependencies go to the sysroot, `host` ones (tools run
        // during the build) to the host prefix.
        for (tree, want_host) in [(&sysroot, false), (&host, true)] {
            let sources: Vec<(String, PathBuf)> = deps
                .iter()
                .map(|&d| &project.modules[d])
                .filter(|dm| dm.host == want_host)
                .map(|dm| (dm.name.clone(), destdir(&project.module_build_dir(dm))))
                .collect();
            stage::merge(&sources, tree, Place::Link).map_err(|source| ModuleError::Stage {
                module: name.to_string(),
                source,
            })?;
        }
    }
    if restart <= Step::Configure {
        // A fresh build starts from an empty HOME.
        crate::fsutil::remove_all(&home).map_err(io_err(&home))?;
    }
    fs::create_dir_all(&home).map_err(io_err(&home))?;
    let dest = destdir(&dir);
    let paths = Paths {
        build_dir: dir.clone(),
        destdir: dest.clone(),
        sysroot,
        host,
        home,
    };
    let dep_dirs: Vec<(String, PathBuf)> = deps
        .iter()
        .map(|&d| {
            let dm = &project.modules[d];
            (dm.name.clone(), project.module_build_dir(dm))
        })
        .collect();
    let env = environment::command_env(
        m,
        &paths,
        jobserver.jobs(),
        &dep_dirs,
        &environment::pass_env_values(&project.settings.pass_env),
        environment::source_date_epoch(&state, &dir),
    );
    let logs = dir.join(".strata").join("logs");
    for step in [Step::Configure, Step::Build, Step::Install] {
        if step < restart {
            continue;
        }
        let script = match step {
            Step::Configure => &m.configure,
            Step::Build => &m.build,
            _ => &m.install,
        };
        let mut work = || {
            if step == Step::Install {
                crate::fsutil::remove_all(&dest).map_err(io_err(&dest))?;
                fs::create_dir_all(&dest).map_err(io_err(&dest))?;
            }
            if let Some(script) = script {
                let log = logs.join(format!("{}.log", step.name()));
                command::run(script, &dir, &env, jobserver, &log).map_err(|source| {
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
            }
            if step == Step::Install {
                warn_unrelocatable(ctx, name, &paths);
                // Stamped by `run` once the artifact is saved.
                return Ok(());
            }
            fingerprint::write_stamp(&dir, name, keys.get(step)).map_err(io_err(&dir))
        };
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

/// Warns, naming the files, when the staged install embeds an absolute path
/// of this build (see [`super::relocatable`]).
fn warn_unrelocatable(ctx: &Context, module: &str, paths: &Paths) {
    let needles = [
        paths.build_dir.clone(),
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
