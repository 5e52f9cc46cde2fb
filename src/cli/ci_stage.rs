//! `strata ci stage …` and `strata ci prune-store`: the staged plan
//! (`ci::stage`) inside a CI job: its key, its build, and the local store
//! pruned to what the job saves.

use super::{Failure, Global, Loaded};
use crate::ci::stage::{self, Plan, Stage};
use crate::report::{emit_json, human_bytes};
use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;
use std::collections::BTreeSet;

#[derive(Subcommand)]
pub enum StageCommand {
    /// Print the stages derived from the graph: name, requirements, modules
    List,
    /// Print the cache key of stage JOB: JOB-<digest>-<cache-version>
    Key { job: String },
    /// Build stage JOB (a target's own job: the whole target); nothing when
    /// the store already holds every artifact of a seed stage
    Build { job: String },
    /// Remove from the local store everything but stage JOB's own artifacts
    /// (its dependencies' are in the caches of the stages it requires)
    Prune { job: String },
}

pub fn run(g: &Global, plan_arg: Option<&str>, cmd: StageCommand) -> Result<(), Failure> {
    let l = g.load()?;
    let plan = stage::plan(&l.project, &l.graph)?;
    if let Some(want) = plan_arg
        && want != plan.digest()
        && !g.quiet
    {
        crate::errln!(
            "warning: this CI config was generated for stage plan {want}, the manifest now gives {}: \
             jobs still build what they lack, but some modules may be built twice\n  \
             hint: run `strata ci generate circleci` again and commit the config",
            plan.digest()
        );
    }
    if let StageCommand::List = cmd {
        list(g, &plan);
        return Ok(());
    }
    let (StageCommand::Key { job } | StageCommand::Build { job } | StageCommand::Prune { job }) =
        &cmd
    else {
        unreachable!("list handled above")
    };
    let s = plan.get(job).ok_or_else(|| {
        let hint = crate::manifest::closest(job, plan.stages.iter().map(|s| s.name.as_str()))
            .map(|h| format!(" (did you mean `{h}`?)"))
            .unwrap_or_default();
        Failure::usage(format!(
            "no stage `{job}` in the plan of this manifest{hint}\n  hint: `strata ci stage list` shows the stages; \
             regenerate the CI config if the manifest changed"
        ))
    })?;
    let inst = stage::instances(&l.project, &l.graph, s)?;
    match cmd {
        StageCommand::Key { .. } => {
            let key = format!(
                "{}-{}-{}",
                s.name,
                crate::ci::layer::digest_of(&inst),
                l.project.cache_version
            );
            if g.json {
                emit_json("ci-key", json!({"name": s.name, "key": key}));
            } else {
                crate::outln!("{key}");
            }
            Ok(())
        }
        StageCommand::Build { .. } => build(g, &l, s, &inst),
        StageCommand::Prune { .. } => prune_store(
            g,
            &l.project,
            &s.name,
            &stage::own_keys(&l.project, &inst, s),
        ),
        StageCommand::List => unreachable!("handled above"),
    }
}

fn list(g: &Global, plan: &Plan) {
    let req = |s: &Stage| -> Vec<&str> {
        s.requires
            .iter()
            .map(|&r| plan.stages[r].name.as_str())
            .collect()
    };
    if g.json {
        let stages: Vec<_> = plan
            .stages
            .iter()
            .map(|s| {
                json!({"name": s.name, "requires": req(s), "modules": s.modules,
                       "targets": s.users, "target": s.board})
            })
            .collect();
        emit_json(
            "ci-stages",
            json!({"plan": plan.digest(), "stages": stages}),
        );
        return;
    }
    for s in &plan.stages {
        let r = req(s);
        crate::outln!(
            "{}{}: {} ({} of {} targets)",
            s.name,
            if r.is_empty() {
                String::new()
            } else {
                format!(" <- {}", r.join(", "))
            },
            if s.modules.is_empty() {
                "nothing of its own".to_string()
            } else {
                s.modules.join(" ")
            },
            s.users.len(),
            plan.stages.iter().filter(|o| o.board.is_some()).count()
        );
    }
}

/// A target's job builds the target (its install tree is the job's
/// artifact); a seed builds its modules, unless the store has them all
/// (a warm cache: nothing to restore either, the next stage does that).
fn build(
    g: &Global,
    l: &Loaded,
    s: &Stage,
    inst: &crate::instance::Instances,
) -> Result<(), Failure> {
    if s.board.is_none() && !g.no_cache {
        let store = g.local_store(&l.project);
        let own = stage::own_keys(&l.project, inst, s);
        let have = own
            .iter()
            .all(|k| matches!(crate::store::Store::lookup(&store, k), Ok(Some(_))));
        if have {
            if !g.quiet {
                crate::errln!(
                    "Stage {} is in the store: {} ({})",
                    s.name,
                    crate::report::count(own.len() as u64, "artifact", "artifacts"),
                    s.modules.join(" ")
                );
            }
            return Ok(());
        }
    }
    super::build::build_instances(g, l, inst, false, false)
}

/// Removes from the local store every entry whose key is not in `keep`,
/// and the unpacked trees (the store is about to be saved as a CI cache:
/// trees would double it, and the first restore makes them again).
pub fn prune_store(
    g: &Global,
    project: &crate::manifest::Project,
    name: &str,
    keep: &BTreeSet<String>,
) -> Result<(), Failure> {
    let store = g.local_store(project);
    let _lock = store
        .lock(true)
        .with_context(|| format!("locking {}", store.root().display()))?;
    crate::fsutil::remove_all(&store.trees_dir())
        .with_context(|| format!("removing {}", store.trees_dir().display()))?;
    let (entries, orphans) = store
        .usage()
        .with_context(|| format!("reading {}", store.root().display()))?;
    let (mut kept, mut kept_bytes, mut removed, mut freed) = (0u64, 0u64, 0u64, 0u64);
    for (key, size, _) in entries {
        if keep.contains(&key) {
            kept += 1;
            kept_bytes += size;
        } else {
            crate::store::Store::remove(&store, &key)
                .with_context(|| format!("removing entry {key}"))?;
            removed += 1;
            freed += size;
        }
    }
    for o in orphans {
        let _ = crate::fsutil::remove_all(&o);
    }
    let _ = crate::fsutil::remove_all(&store.root().join("tmp"));
    // A workspace persists the format dir: present even when empty.
    let format_dir = store.root().join(crate::artifact::CACHE_FORMAT);
    std::fs::create_dir_all(&format_dir)
        .with_context(|| format!("creating {}", format_dir.display()))?;
    if g.json {
        emit_json(
            "ci-prune-store",
            json!({"name": name, "kept": kept, "kept-bytes": kept_bytes, "removed": removed, "freed-bytes": freed}),
        );
    } else if !g.quiet {
        crate::outln!(
            "Kept {} of `{name}` ({}), removed {removed} others ({})",
            crate::report::count(kept, "entry", "entries"),
            human_bytes(kept_bytes),
            human_bytes(freed)
        );
    }
    Ok(())
}
