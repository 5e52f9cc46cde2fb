//! Which instance each target's modules were last built as, so that `plan`
//! and `why` can name the parameter that changed.
//!
//! Changing a board's config file gives its modules new variant ids, hence
//! new, empty state dirs: on its own, the new instance could only say "never
//! built". After every successful build strata records, per target, the
//! instance dir of each module (`build/.strata/targets/<target>.json`); a
//! never-built variant is then compared against the stamps of the instance
//! the same target used last time, and the difference (`param
//! COREBOOT_CONFIG changed`) is reported instead. The record only explains;
//! it never makes anything fresh.

use super::{Instance, Instances};
use crate::fingerprint::{self, ModuleKeys, ModuleStatus, StaleReason, StampDirs};
use crate::fsutil::write_atomic_if_changed;
use crate::manifest::Project;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;

/// `build/.strata/targets/<target>.json`.
pub fn record_path(project: &Project, target: &str) -> PathBuf {
    project
        .state_dir()
        .join("targets")
        .join(format!("{target}.json"))
}

fn load(project: &Project, target: &str) -> BTreeMap<String, String> {
    std::fs::read(record_path(project, target))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Records the instance of every module each target-backed request built
/// (a record that already says so is left alone).
pub fn record(project: &Project, inst: &Instances) -> io::Result<()> {
    let mut per_target: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for r in &inst.requests {
        let Some(t) = r.target.as_deref() else {
            continue;
        };
        let map = per_target.entry(t).or_insert_with(|| load(project, t));
        for i in inst.graph.closure(&r.roots) {
            let it = &inst.list[i];
            map.insert(it.module(project).name.clone(), it.dir_name.clone());
        }
    }
    for (t, map) in per_target {
        let json = serde_json::to_vec_pretty(&map).map_err(io::Error::other)?;
        write_atomic_if_changed(&record_path(project, t), &json)?;
    }
    Ok(())
}

/// For a variant that never ran, the reasons measured against the instance
/// `target` built last time, if there is one and it differs.
pub fn explain(
    project: &Project,
    target: Option<&str>,
    it: &Instance,
    keys: &ModuleKeys,
    status: ModuleStatus,
) -> ModuleStatus {
    let never_ran = matches!(status.reasons.as_slice(), [StaleReason::NeverRan(_)]);
    let (Some(t), true, Some(_)) = (target, never_ran, &it.variant) else {
        return status;
    };
    let map = load(project, t);
    let Some(prev) = map.get(&it.module(project).name) else {
        return status;
    };
    if *prev == it.dir_name {
        return status;
    }
    let old = fingerprint::module_status(
        &StampDirs {
            source: it.source_state(project),
            instance: project.module_state_dir(prev),
            tree: project.settings.build_dir.join(prev),
            source_tree: it.source_dir(project),
        },
        keys,
    );
    match old.first_stale {
        Some(_)
            if !matches!(
                old.reasons.as_slice(),
                [StaleReason::NeverRan(_) | StaleReason::Missing(_)]
            ) =>
        {
            ModuleStatus {
                reasons: old.reasons,
                ..status
            }
        }
        _ => status,
    }
}

/// [`explain`] for every status of a build or plan.
pub fn explain_all(
    project: &Project,
    inst: &Instances,
    statuses: &mut HashMap<usize, ModuleStatus>,
) {
    for (i, st) in statuses.iter_mut() {
        let s = std::mem::take(st);
        *st = explain(
            project,
            inst.target_of(*i),
            &inst.list[*i],
            &inst.keys[*i],
            s,
        );
    }
}
