//! A module and the artifact cache: restoring its artifact into a fresh
//! build dir and state dir (from the store's unpacked tree or its verified
//! archive), and packing and saving what a build installed. Store problems
//! are the caller's warnings, never build failures.

use super::Context;
use crate::artifact::{self, ArtifactInfo};
use crate::fingerprint::{self, Step};
use crate::fsutil::{remove_dir_atomic, remove_leftovers, sync_dir};
use crate::report::Event;
use crate::store::materialise::Counts;
use crate::store::{Cache, Store};
use std::fs;
use std::io;
use std::path::Path;

/// Restores instance `i` from the cache if it holds the install key: from
/// the local store's unpacked tree, else the verified archive (see
/// `store::restore`). An artifact holds the destdir as `.strata/destdir`
/// and the keep paths; the destdir moves to the instance's state dir, the
/// rest becomes its build dir.
pub(super) fn restore(
    ctx: &Context,
    cache: &Cache,
    i: usize,
) -> Result<Option<(String, u64, Option<Counts>)>, String> {
    let project = ctx.project;
    let inst = &ctx.instances[i];
    let label = ctx.label(i);
    let key = ctx.keys[i].install_key();
    let warn = |msg: &str| {
        ctx.reporter.event(Event::Warning {
            message: &format!("module {label}: {msg}"),
        })
    };
    let progress = |what: &str, done, total| {
        ctx.reporter.event(Event::Transfer {
            module: label,
            what,
            done,
            total: Some(total),
        })
    };
    let build_dir = &project.settings.build_dir;
    let dir_name = &inst.dir_name;
    let dir = inst.build_dir(project);
    let state = inst.state(project);
    let s = |e: io::Error| e.to_string();
    fs::create_dir_all(build_dir).map_err(s)?;
    fs::create_dir_all(&state).map_err(s)?;
    remove_leftovers(build_dir, dir_name).map_err(s)?;
    let tmp = build_dir.join(format!(".{dir_name}.tmp-{}", std::process::id()));
    fs::create_dir(&tmp).map_err(s)?;
    let staged = tmp.join(".strata");
    let staged_dest = staged.join("destdir");
    let real_dir = |p: &Path| fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(true);
    // The artifact records the module name; the key tells variants apart.
    let module_name = &inst.module(project).name;
    let limits = project.settings.unpack_limits;
    let hit = match cache.restore_into(key, module_name, &tmp, limits, &warn, &progress) {
        Ok(Some(hit)) => hit,
        other => {
            let _ = crate::fsutil::remove_all(&tmp);
            return other.map(|_| None);
        }
    };
    if !(real_dir(&staged) && real_dir(&staged_dest)) {
        let _ = crate::fsutil::remove_all(&tmp);
        let _ = cache.local.quarantine(key);
        return Err(format!(
            "cache entry {key}: .strata/destdir in the archive is not a directory; it was quarantined"
        ));
    }
    // Stamps go before the trees they describe change, and come back after.
    let first = if inst.variant.is_some() {
        Step::Configure
    } else {
        Step::Unpack
    };
    fingerprint::clear_stamps_from(&state, first).map_err(s)?;
    // Durable before any tree moves: a crash never leaves old stamps over
    // a restored tree.
    sync_dir(&state).map_err(s)?;
    let dest = inst.destdir(project);
    remove_dir_atomic(&dest).map_err(s)?;
    if staged_dest.is_dir() {
        fs::rename(&staged_dest, &dest).map_err(s)?;
    } else {
        fs::create_dir_all(&dest).map_err(s)?;
    }
    crate::fsutil::remove_all(&staged).map_err(s)?;
    remove_dir_atomic(&dir).map_err(s)?;
    fs::rename(&tmp, &dir).map_err(s)?;
    sync_dir(build_dir).map_err(s)?;
    fingerprint::write_provenance(&state, &ctx.keys[i]).map_err(s)?;
    fingerprint::write_stamp(&state, label, ctx.keys[i].get(Step::Install)).map_err(s)?;
    Ok(Some((hit.source, hit.info.size, hit.counts)))
}

/// Packs an instance's install tree and keep paths as the artifact of `key`.
/// `progress(bytes packed so far)` is called as it goes.
pub fn pack_module(
    project: &crate::manifest::Project,
    inst: &crate::instance::Instance,
    key: &str,
    threads: u32,
    progress: &dyn Fn(u64),
) -> Result<artifact::Packed, String> {
    let m = inst.module(project);
    let info = ArtifactInfo::to_pack(&m.name, &m.version, key);
    let tmp_dir = project.state_dir().join("tmp");
    artifact::pack_reporting(
        &inst.destdir(project),
        &inst.build_dir(project),
        &m.keep,
        info,
        &tmp_dir,
        threads,
        progress,
    )
    .map_err(|e| e.to_string())
}

/// Packs instance `i` and saves it locally and (if pushing) remotely.
pub(super) fn save(ctx: &Context, cache: &Cache, i: usize) -> Result<(), String> {
    let threads = ctx.jobs.clamp(1, 8) as u32;
    let label = ctx.label(i);
    let progress = |done| {
        ctx.reporter.event(Event::Transfer {
            module: label,
            what: "pack",
            done,
            total: None,
        })
    };
    let packed = pack_module(
        ctx.project,
        &ctx.instances[i],
        ctx.keys[i].install_key(),
        threads,
        &progress,
    )?;
    let warn = |msg: &str| {
        ctx.reporter.event(Event::Warning {
            message: &format!("module {label}: {msg}"),
        })
    };
    cache.save(&packed.info, packed.archive.path(), &warn);
    Ok(())
}
