//! `strata build --check`: rebuild modules from scratch and compare the
//! result bit for bit with their cached artifacts (Nix's `--check`,
//! Debian's reprotest).
//!
//! Each module is rebuilt in a scratch project under
//! `build/.strata/check/<pid>/build/`: a copy of the project whose build
//! dir is there, so every path a build writes (source tree, state, destdir,
//! sysroot, home, logs, stamps) is in the scratch dir and the real build
//! dir, destdirs, stamps and `install/` are never touched. Its dependencies
//! are extracted there from their cached artifacts, exactly as a build on a
//! warm cache restores them, so its sysroot is what a normal build has.
//! The rebuild is packed by the same deterministic packer as a normal save
//! and compared with the cached archive: BLAKE3 first, then, on a
//! difference, both archives are unpacked and their trees compared
//! ([`crate::treediff`]). The rebuilt artifact is never saved.
//!
//! The decision a reader may question: a module whose artifact is not in
//! the local cache is reported ("not in the cache; run `strata build`
//! first") and counted as not checked, rather than built first. That is
//! what Nix does (`nix-build --check` refuses outputs that are not valid):
//! a check compares two builds, and building the first one as a side effect
//! of `--check` would silently change what is being checked. The same holds
//! for a dependency whose artifact is missing.
//!
//! The scratch dir is removed after each module, on success and failure;
//! a run killed with `kill -9` leaves it, and the next run that takes the
//! project lock removes `build/.strata/check/` whole
//! ([`crate::lock::ProjectLock::sweep`]).

use super::Context;
use super::jobserver::Jobserver;
use super::module::{self, ModuleError};
use crate::artifact::{ArtifactInfo, blake3_file};
use crate::fsutil::remove_all;
use crate::report::Event;
use crate::store::{Cache, Store};
use crate::treediff::{self, Difference, Relocation};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why a module could not be checked. Every message names the module.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(
        "module {module}: not in the cache (install key {key}), so there is nothing to compare with\n  hint: run `strata build` first (or `strata cache pull`), then check"
    )]
    NotCached { module: String, key: String },
    #[error(
        "module {module}: its dependency {dep} is not in the cache (install key {key}), so its sysroot cannot be made as a build makes it\n  hint: run `strata build` first (or `strata cache pull`), then check"
    )]
    DependencyNotCached {
        module: String,
        dep: String,
        key: String,
    },
    #[error(
        "module {module}: cache entry {key} in {store} is unusable: {why}\n  hint: run `strata cache verify`; `strata cache gc` or a rebuild replaces a bad entry"
    )]
    Store {
        module: String,
        key: String,
        store: String,
        why: String,
    },
    #[error("module {module}: cannot unpack {}: {why}", archive.display())]
    Unpack {
        module: String,
        archive: PathBuf,
        why: String,
    },
    #[error("module {module}: cannot pack the rebuild: {why}")]
    Pack { module: String, why: String },
    #[error("module {module}: {}: {source}", path.display())]
    Io {
        module: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0}\n  (while rebuilding it for --check: the cached artifact is unchanged)")]
    Build(Box<ModuleError>),
}

impl CheckError {
    pub fn is_interrupt(&self) -> bool {
        matches!(self, CheckError::Build(e) if e.is_interrupt())
    }
}

/// How a check of one module came out.
#[derive(Debug)]
pub enum Verdict {
    /// The rebuild packed to the same artifact (or, packed differently,
    /// unpacks to the same files).
    Reproducible,
    /// The rebuild differs: each differing path.
    Differs(Vec<Difference>),
}

/// The outcome of `build --check`.
#[derive(Debug, Default)]
pub struct CheckSummary {
    pub reproducible: Vec<String>,
    pub not_reproducible: Vec<String>,
    /// Not in the cache, or the rebuild failed.
    pub unchecked: Vec<String>,
    pub interrupted: bool,
}

impl CheckSummary {
    pub fn all_reproducible(&self) -> bool {
        self.not_reproducible.is_empty() && self.unchecked.is_empty() && !self.interrupted
    }
}

/// The scratch root of this process: `build/.strata/check/<pid>`.
pub fn scratch_root(project: &crate::manifest::Project) -> PathBuf {
    project
        .state_dir()
        .join("check")
        .join(std::process::id().to_string())
}

/// Checks `modules` (instance indices, in dependency order) one after the
/// other, reporting a `ModuleChecked` event for each and a summary.
pub fn check(ctx: &Context<'_>, cache: &Cache, modules: &[usize]) -> CheckSummary {
    let start = Instant::now();
    let mut summary = CheckSummary::default();
    let js = match Jobserver::for_build(ctx.jobs) {
        Ok(js) => js,
        Err(e) => {
            ctx.reporter.error(&format!(
                "cannot create the jobserver pipe: {e}\n  hint: raise the open-files limit (ulimit -n)"
            ));
            summary.unchecked = modules.iter().map(|&i| ctx.label(i).to_string()).collect();
            return summary;
        }
    };
    let scratch = scratch_root(ctx.project);
    for &i in modules {
        let label = ctx.label(i);
        if super::command::interrupted() {
            summary.interrupted = true;
            break;
        }
        ctx.reporter.event(Event::CheckStarted {
            module: label,
            scratch: &scratch,
        });
        let result = check_one(ctx, cache, i, &scratch, &js);
        if let Err(e) = remove_all(&scratch) {
            ctx.reporter.event(Event::Warning {
                message: &format!(
                    "cannot remove the check's scratch dir {}: {e} (the next run removes it)",
                    scratch.display()
                ),
            });
        }
        match result {
            Ok(Verdict::Reproducible) => {
                ctx.reporter.event(Event::ModuleChecked {
                    module: label,
                    reproducible: true,
                    differences: &[],
                    error: None,
                });
                summary.reproducible.push(label.to_string());
            }
            Ok(Verdict::Differs(diffs)) => {
                ctx.reporter.event(Event::ModuleChecked {
                    module: label,
                    reproducible: false,
                    differences: &diffs,
                    error: None,
                });
                summary.not_reproducible.push(label.to_string());
            }
            Err(e) if e.is_interrupt() => {
                summary.interrupted = true;
                break;
            }
            Err(e) => {
                ctx.reporter.event(Event::ModuleChecked {
                    module: label,
                    reproducible: false,
                    differences: &[],
                    error: Some(&e.to_string()),
                });
                summary.unchecked.push(label.to_string());
            }
        }
    }
    // The parent is empty once this run's dir is gone; keep the tree tidy.
    if let Some(parent) = scratch.parent() {
        let _ = fs::remove_dir(parent);
    }
    ctx.reporter.event(Event::CheckSummary {
        checked: modules.len(),
        reproducible: &summary.reproducible,
        not_reproducible: &summary.not_reproducible,
        unchecked: &summary.unchecked,
        secs: start.elapsed().as_secs_f64(),
    });
    summary
}

/// Rebuilds instance `i` under `scratch` and compares it with its cached artifact.
fn check_one(
    ctx: &Context<'_>,
    cache: &Cache,
    i: usize,
    scratch: &Path,
    js: &Jobserver,
) -> Result<Verdict, CheckError> {
    let label = ctx.label(i);
    let io_err = |p: &Path| {
        let path = p.to_path_buf();
        move |source| CheckError::Io {
            module: label.to_string(),
            path,
            source,
        }
    };
    let key = ctx.keys[i].install_key();
    let (info, archive) = cached(cache, label, key)?.ok_or_else(|| CheckError::NotCached {
        module: label.to_string(),
        key: key.to_string(),
    })?;
    remove_all(scratch).map_err(io_err(scratch))?;
    let mut project = ctx.project.clone();
    project.settings.build_dir = scratch.join("build");
    fs::create_dir_all(&project.settings.build_dir).map_err(io_err(scratch))?;

    // The dependencies, as a build on a warm cache has them.
    for d in ctx.graph.transitive_deps(i) {
        let dep = ctx.label(d);
        let dep_key = ctx.keys[d].install_key();
        let (_, dep_archive) =
            cached(cache, label, dep_key)?.ok_or_else(|| CheckError::DependencyNotCached {
                module: label.to_string(),
                dep: dep.to_string(),
                key: dep_key.to_string(),
            })?;
        let inst = &ctx.instances[d];
        place_artifact(
            &project,
            &dep_archive,
            &inst.build_dir(&project),
            &inst.destdir(&project),
        )
        .map_err(|why| CheckError::Unpack {
            module: label.to_string(),
            archive: dep_archive.clone(),
            why,
        })?;
    }

    let sctx = Context {
        project: &project,
        instances: ctx.instances,
        graph: ctx.graph,
        keys: ctx.keys,
        reporter: ctx.reporter,
        fetch: ctx.fetch.clone(),
        jobs: ctx.jobs,
        keep_going: false,
        incremental: false,
        store: None,
    };
    module::rebuild(&sctx, i, js).map_err(|e| CheckError::Build(Box::new(e)))?;
    let threads = ctx.jobs.clamp(1, 8) as u32;
    let packed = super::cached::pack_module(&project, &ctx.instances[i], key, threads, &|_| {})
        .map_err(|why| CheckError::Pack {
            module: label.to_string(),
            why,
        })?;
    if packed.info.blake3 == info.blake3 {
        return Ok(Verdict::Reproducible);
    }

    // Different bytes: say which files differ, and how.
    let old = scratch.join("cached");
    let new = scratch.join("rebuilt");
    for (a, dir) in [(archive.as_path(), &old), (packed.archive.path(), &new)] {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let limits = project.settings.unpack_limits;
        crate::unpack::extract_packed(a, dir, limits, &|_, _| {}).map_err(|e| {
            CheckError::Unpack {
                module: label.to_string(),
                archive: a.to_path_buf(),
                why: e.to_string(),
            }
        })?;
    }
    let bytes = |p: &Path| {
        use std::os::unix::ffi::OsStrExt;
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .as_os_str()
            .as_bytes()
            .to_vec()
    };
    let (scratch_build, real_build) = (
        bytes(&project.settings.build_dir),
        bytes(&ctx.project.settings.build_dir),
    );
    let reloc = Relocation {
        new: &scratch_build,
        old: &real_build,
    };
    let diffs = treediff::compare(&old, &new, Some(&reloc)).map_err(io_err(scratch))?;
    // Packed differently (another zstd thread count, say) but the same files.
    Ok(if diffs.is_empty() {
        Verdict::Reproducible
    } else {
        Verdict::Differs(diffs)
    })
}

/// The local store's entry for `key`, its archive checked against its BLAKE3.
/// Read only: a bad entry is reported, never quarantined, by a check.
fn cached(
    cache: &Cache,
    module: &str,
    key: &str,
) -> Result<Option<(ArtifactInfo, PathBuf)>, CheckError> {
    let store_err = |why: String| CheckError::Store {
        module: module.to_string(),
        key: key.to_string(),
        store: cache.local.describe(),
        why,
    };
    let found = cache
        .local
        .lookup(key)
        .map_err(|e| store_err(e.to_string()))?;
    cache.note_local_read(found.is_some());
    let Some(info) = found else {
        return Ok(None);
    };
    let archive = cache
        .local
        .archive(&info)
        .map_err(|e| store_err(e.to_string()))?;
    let sum =
        blake3_file(&archive).map_err(|e| store_err(format!("{}: {e}", archive.display())))?;
    if sum != info.blake3 {
        return Err(store_err(format!(
            "its archive's BLAKE3 is {sum}, the record says {}",
            info.blake3
        )));
    }
    Ok(Some((info, archive)))
}

/// Extracts an artifact as a restore lays it out: `.strata/destdir` becomes
/// `destdir`, the rest (keep paths) `build_dir`.
fn place_artifact(
    project: &crate::manifest::Project,
    archive: &Path,
    build_dir: &Path,
    destdir: &Path,
) -> Result<(), String> {
    let s = |p: &Path| {
        let p = p.display().to_string();
        move |e: io::Error| format!("{p}: {e}")
    };
    let tmp = crate::fsutil::parent_dir(build_dir).join(format!(
        ".{}.unpack",
        build_dir
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    fs::create_dir_all(&tmp).map_err(s(&tmp))?;
    crate::unpack::extract_packed(archive, &tmp, project.settings.unpack_limits, &|_, _| {})
        .map_err(|e| e.to_string())?;
    let staged = tmp.join(".strata");
    let staged_dest = staged.join("destdir");
    // An artifact's symlinks are kept verbatim: never look through one.
    if fs::symlink_metadata(&staged).is_ok_and(|m| !m.is_dir()) {
        return Err(format!(
            "{}: .strata in the archive is not a directory",
            archive.display()
        ));
    }
    fs::create_dir_all(crate::fsutil::parent_dir(destdir)).map_err(s(destdir))?;
    if fs::symlink_metadata(&staged_dest).is_ok_and(|m| m.is_dir()) {
        fs::rename(&staged_dest, destdir).map_err(s(destdir))?;
    } else {
        fs::create_dir_all(destdir).map_err(s(destdir))?;
    }
    remove_all(&staged).map_err(s(&staged))?;
    fs::rename(&tmp, build_dir).map_err(s(build_dir))
}
