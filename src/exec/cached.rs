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
    let first = if inst.variant.is_some() {
        Step::Configure
    } else {
        Step::Unpack
    };
    let keys = &ctx.keys[i];
    let placed = Placing {
        build_dir,
        tmp: &tmp,
        dir: &dir,
        state: &state,
        dest: &inst.destdir(project),
    };
    if let Err(e) = place(&placed, first, label, keys) {
        let _ = crate::fsutil::remove_all(&tmp);
        return Err(e.to_string());
    }
    Ok(Some((hit.source, hit.info.size, hit.counts)))
}

/// Where a restore puts what it extracted into `tmp` (a dir in `build_dir`
/// holding the keep paths and `.strata/destdir`): the build dir `dir` and
/// the destdir `dest` in the instance's state dir `state`.
struct Placing<'a> {
    build_dir: &'a Path,
    tmp: &'a Path,
    dir: &'a Path,
    state: &'a Path,
    dest: &'a Path,
}

/// Moves a restored artifact into place and stamps it, in an order that
/// keeps its one promise through a kill -9 or a power loss at any instant:
/// **a durable install stamp means the restored trees are whole on disk**.
///
/// 1. The artifact's files and dirs in `tmp`, and the temp files holding
///    the new provenance record and install stamp, are fsynced together
///    (one batch on a few threads, which the filesystem commits together:
///    `fsutil::sync_paths`). A crash
///    here leaves the old state plus `.tmp-*` leftovers the next run
///    removes.
/// 2. The stamps of the steps being replaced are removed, and only if
///    there were any, their removal is made durable (`stamps/` fsynced)
///    before any tree moves: never old stamps over a new or half-moved
///    tree. A fresh checkout has none, so this costs it nothing.
/// 3. Provenance, destdir and build dir are renamed into place (the old
///    trees renamed aside, then deleted). A crash from here on leaves no
///    stamp past the cleared ones, whatever mix of trees: the module is
///    stale and the next run restores it again.
/// 4. `dir`, `build_dir` and `state` are fsynced together: the renames of
///    3 (and `.strata`'s removal from the build dir) are durable.
/// 5. The stamp's temp file (its bytes durable since 1) is renamed into
///    place, its directory left unsynced: the rename reaches the disk only
///    after 1 and 4 did, and a power loss that takes it merely leaves a
///    whole restored tree without a stamp, which the next run restores
///    again. A stamp file is never empty or torn.
///
/// Nothing here syncs what it did not write (no `syncfs`): beside another
/// process writing a gigabyte, a restore waits for its own bytes only.
fn place(p: &Placing, first: Step, label: &str, keys: &fingerprint::ModuleKeys) -> io::Result<()> {
    use crate::fsutil::{sync_paths, temp_file_in, with_path};
    use std::io::Write;
    let stamp_path = fingerprint::stamp_path(p.state, Step::Install);
    let stamps = crate::fsutil::parent_dir(&stamp_path);
    fs::create_dir_all(&stamps).map_err(with_path(&stamps))?;
    let mut stamp = temp_file_in(&stamps).map_err(with_path(&stamps))?;
    let text = fingerprint::stamp_text(label, keys.get(Step::Install), false)?;
    stamp.write_all(text.as_bytes())?;
    let mut provenance = temp_file_in(p.state).map_err(with_path(p.state))?;
    provenance.write_all(&fingerprint::provenance_bytes(keys)?)?;
    // 1.
    let mut paths = crate::fsutil::tree_paths(p.tmp)?;
    paths.extend([stamp.path().to_path_buf(), provenance.path().to_path_buf()]);
    sync_paths(&paths)?;
    // 2.
    if fingerprint::clear_stamps_from(p.state, first)? {
        sync_dir(&stamps).map_err(with_path(&stamps))?;
    }
    // 3.
    provenance
        .persist(fingerprint::provenance_path(p.state))
        .map_err(|e| with_path(p.state)(e.error))?;
    remove_dir_atomic(p.dest).map_err(with_path(p.dest))?;
    let staged = p.tmp.join(".strata");
    let staged_dest = staged.join("destdir");
    if staged_dest.is_dir() {
        fs::rename(&staged_dest, p.dest).map_err(with_path(p.dest))?;
    } else {
        fs::create_dir_all(p.dest).map_err(with_path(p.dest))?;
    }
    crate::fsutil::remove_all(&staged).map_err(with_path(&staged))?;
    remove_dir_atomic(p.dir).map_err(with_path(p.dir))?;
    fs::rename(p.tmp, p.dir).map_err(with_path(p.dir))?;
    // 4.
    sync_paths(&[
        p.dir.to_path_buf(),
        p.build_dir.to_path_buf(),
        p.state.to_path_buf(),
    ])?;
    // 5.
    stamp
        .persist(&stamp_path)
        .map_err(|e| with_path(&stamp_path)(e.error))?;
    Ok(())
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
