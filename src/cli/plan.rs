//! `strata plan` and `strata why`: what would run, and exactly why.

use super::{Failure, Global};
use crate::exec;
use crate::fetch;
use crate::fingerprint::{ModuleStatus, StaleReason, Step};
use crate::instance::{Instance, history};
use crate::manifest::{ManifestError, ParamValue};
use crate::report::emit_json;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

pub fn plan(g: &Global, names: &[String], incremental: bool) -> Result<(), Failure> {
    let l = g.load()?;
    let inst = g.instances(&l, names)?;
    let selection = inst.selection();
    let closure = inst.graph.closure(&selection);
    let reporter = g.reporter();
    let ctx = exec::Context {
        incremental,
        ..g.context(&l.project, &inst, &reporter, None)
    };
    let mut statuses = exec::statuses(&ctx, &closure);
    history::explain_all(&l.project, &inst, &mut statuses);
    let cache = if g.no_cache {
        None
    } else {
        Some(g.cache(&l.project)?)
    };
    let deferred = exec::deferrable(&ctx, &selection, &closure, &statuses, &|i| {
        cache
            .as_ref()
            .is_some_and(|c| c.locate(inst.keys[i].install_key()).is_some())
    });
    let mut out = String::new();
    let mut stale_count = 0;
    for &i in &closure {
        let it = &inst.list[i];
        let m = it.module(&l.project);
        let st = &statuses[&i];
        let source = st
            .first_stale
            .and(cache.as_ref())
            .and_then(|c| c.locate(inst.keys[i].install_key()));
        let packages = &l.project.settings.packages_dir;
        let have_package = fetch::expected_sha256(&l.project, m)
            .is_some_and(|sum| fetch::looks_verified(packages, &m.file, &sum));
        let dep_stale = |name: &str| dependency_stale(&l.project, &inst, &statuses, i, name);
        let reasons: Vec<String> = st.reasons.iter().map(|r| describe(r, &dep_stale)).collect();
        let cause = st.changed_step.or(st.first_stale);
        let not_fetched = format!(
            "stale: {} not in {}",
            m.file,
            rel(&l.project.root, packages)
        );
        let steps = step_states(
            st,
            source.is_some(),
            m.has_source(),
            have_package,
            &not_fetched,
            &reasons,
        );
        if st.first_stale.is_some() {
            stale_count += 1;
        }
        if g.json {
            emit_json(
                "plan-module",
                json!({
                    "module": m.name, "version": m.version,
                    "variant": it.variant_id(),
                    "params": params_json(it),
                    "fresh": st.first_stale.is_none(),
                    "restart": st.restart_from(),
                    "dirty-tree": st.dirty_tree,
                    "incremental": incremental && st.first_stale.is_some(),
                    "changed-step": cause,
                    "restore-from": source,
                    "left-in-cache": deferred.contains(&i),
                    "reasons": reasons,
                    "steps": steps.iter().map(|(s, v)| json!({"step": s, "state": v})).collect::<Vec<_>>(),
                }),
            );
            continue;
        }
        let head = match (st.restart_from(), &source) {
            (None, _) => "fresh".to_string(),
            (Some(_), Some(store)) if deferred.contains(&i) => {
                format!("cached in {store}; left there (host tool no dependent has to build)")
            }
            (Some(_), Some(store)) => format!("will be restored from {store}"),
            (Some(r), None) if incremental => format!(
                "will run from {r} in its existing build dir (--incremental: not saved to the cache)"
            ),
            (Some(r), None) if st.dirty_tree => format!(
                "will run from {r} (its build dir holds what a build with other inputs wrote)"
            ),
            (Some(r), None) => format!("will run from {r}"),
        };
        let head = match &m.overridden {
            Some(o) => format!("{head} [{} override: {}]", o.kind.name(), o.dir.display()),
            None if m.is_fixed_output() => format!(
                "{head} [fixed-output: {} pinned{}]",
                crate::report::count(m.outputs.len() as u64, "output", "outputs"),
                if m.network { ", with the network" } else { "" }
            ),
            None => head,
        };
        out.push_str(&format!(
            "{} {}{}: {head}\n",
            m.name,
            m.version,
            variant_note(it)
        ));
        for (step, state) in steps {
            out.push_str(&format!("    {:<10} {state}\n", step.name()));
        }
    }
    if !g.json {
        out.push_str(&format!(
            "{} of {} stale\n",
            stale_count,
            crate::report::count(closure.len() as u64, "module", "modules")
        ));
        crate::out!("{out}");
    }
    Ok(())
}

/// What each step of a module would do: fresh, stale and why, restored, or
/// not needed. `restored`: the module comes whole from the cache.
fn step_states(
    st: &ModuleStatus,
    restored: bool,
    has_source: bool,
    have_package: bool,
    not_fetched: &str,
    reasons: &[String],
) -> Vec<(Step, String)> {
    let cause = st.changed_step.or(st.first_stale);
    let mut steps = Vec::new();
    for step in Step::ALL {
        let state = if restored {
            // Restored whole: no step runs, so none needs its inputs.
            let never_built = matches!(
                st.reasons.as_slice(),
                [StaleReason::NeverRan(_) | StaleReason::Missing(_)]
            );
            if Some(step) == cause && !never_built {
                format!("stale: {}; restored from the cache", reasons.join("; "))
            } else {
                "restored from the cache".to_string()
            }
        } else if step == Step::Fetch && !has_source {
            "not needed (source = \"none\")".to_string()
        } else if step == Step::Fetch {
            if st.runs(Step::Unpack) {
                if have_package {
                    "fresh (package verified)".to_string()
                } else {
                    not_fetched.to_string()
                }
            } else if st.source_ready && st.first_stale.is_some() {
                "not needed (shared source ready)".to_string()
            } else if have_package {
                "fresh (package verified)".to_string()
            } else {
                "not needed (source already unpacked)".to_string()
            }
        } else if !st.runs(step) {
            "fresh".to_string()
        } else if Some(step) == cause {
            format!("stale: {}", reasons.join("; "))
        } else if cause.is_some_and(|c| step < c) {
            let c = cause.expect("some");
            if st.changed_step.is_some() {
                format!(
                    "stale: restored from the cache without its source, so it runs again because {c} is stale"
                )
            } else if st.dirty_tree {
                format!(
                    "stale: re-extracted fresh because {c} is stale and a build with other inputs wrote into the build dir"
                )
            } else {
                format!("stale: re-extracted fresh because {c} is stale")
            }
        } else {
            format!("stale: after {}", cause.expect("some"))
        };
        steps.push((step, state));
    }
    steps
}

/// ` [variant ID: NAME=value, CFG=path]`, or nothing for a plain module.
fn variant_note(it: &Instance) -> String {
    let Some(id) = it.variant_id() else {
        return String::new();
    };
    let params: Vec<String> = it
        .params
        .iter()
        .map(|(k, v)| match v {
            // A multi-line value (a generated config) shows its first line.
            ParamValue::Value(s) if s.contains('\n') => {
                format!("{k}={}…", s.lines().next().unwrap_or(""))
            }
            ParamValue::Value(s) => format!("{k}={s}"),
            ParamValue::File { rel, .. } | ParamValue::Dir { rel, .. } => format!("{k}={rel}"),
        })
        .collect();
    format!(" [variant {id}: {}]", params.join(", "))
}

fn params_json(it: &Instance) -> serde_json::Value {
    it.params
        .iter()
        .map(|(k, v)| {
            let v = match v {
                ParamValue::Value(s) => json!(s),
                ParamValue::File { rel, .. } => json!({ "file": rel }),
                ParamValue::Dir { rel, .. } => json!({ "dir": rel }),
            };
            (k.clone(), v)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Whether dependency `name` of instance `i` is stale itself (None: not
/// among the statuses known here).
fn dependency_stale(
    project: &crate::manifest::Project,
    inst: &crate::instance::Instances,
    statuses: &HashMap<usize, ModuleStatus>,
    i: usize,
    name: &str,
) -> Option<bool> {
    inst.graph.deps[i]
        .iter()
        .find(|&&d| inst.list[d].module(project).name == name)
        .and_then(|d| statuses.get(d))
        .map(|st| st.first_stale.is_some())
}

/// A reason as `why` and `plan` show it: a changed dependency says whether
/// it has been rebuilt already or is stale and builds first.
fn describe(r: &StaleReason, dep_stale: &dyn Fn(&str) -> Option<bool>) -> String {
    if let StaleReason::Changed { name, .. } = r
        && let Some(dep) = name.strip_prefix("dependency ")
    {
        return match dep_stale(dep) {
            Some(true) => format!("dependency {dep} changed: it is stale and builds first"),
            Some(false) => format!("dependency {dep} was rebuilt since this module was built"),
            None => r.to_string(),
        };
    }
    r.to_string()
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

pub fn why(g: &Global, module: &str, target: Option<&str>) -> Result<(), Failure> {
    let l = g.load()?;
    let (inst, i) = module_instance(g, &l, module, target)?;
    let it = &inst.list[i];
    let m = it.module(&l.project);
    let st = crate::fingerprint::module_status(&it.stamp_dirs(&l.project), &inst.keys[i]);
    let st = history::explain(&l.project, inst.target_of(i), it, &inst.keys[i], st);
    let statuses: HashMap<usize, ModuleStatus> = inst.graph.deps[i]
        .iter()
        .map(|&d| {
            let dirs = inst.list[d].stamp_dirs(&l.project);
            (d, crate::fingerprint::module_status(&dirs, &inst.keys[d]))
        })
        .collect();
    let dep_stale = |name: &str| dependency_stale(&l.project, &inst, &statuses, i, name);
    let reasons: Vec<String> = st.reasons.iter().map(|r| describe(r, &dep_stale)).collect();
    let cause = st.changed_step.or(st.first_stale);
    if g.json {
        emit_json(
            "why",
            json!({
                "module": m.name,
                "variant": it.variant_id(),
                "fresh": st.first_stale.is_none(),
                "stale-step": cause,
                "restart": st.restart_from(),
                "reasons": reasons,
            }),
        );
        return Ok(());
    }
    let what = format!("{} {}{}", m.name, m.version, variant_note(it));
    match cause {
        None => crate::outln!("{what} is fresh: no input changed since its last build"),
        Some(step) => {
            // Never built at all: its own first step never ran (a variant's
            // is configure: unpack and patch belong to the shared source).
            let first = if it.variant.is_some() {
                Step::Configure
            } else {
                Step::Unpack
            };
            if st.reasons == [StaleReason::NeverRan(first)] {
                crate::outln!("{what} has not been built yet");
            } else {
                crate::outln!("{what}: {step} is stale because:");
                for r in &reasons {
                    crate::outln!("  {r}");
                }
                if let (Some(_), Some(restart)) = (st.changed_step, st.restart_from()) {
                    crate::outln!(
                        "  (it was restored from the cache, which keeps no source: the build restarts from {restart})"
                    );
                } else if let (true, Some(restart)) = (st.dirty_tree, st.restart_from()) {
                    crate::outln!(
                        "  (a build with other inputs wrote into its build dir, so the build restarts from {restart}: an artifact is always what a clean build of its inputs makes)"
                    );
                }
            }
        }
    }
    Ok(())
}

/// The instance a target (default: the module's own name, then `default`)
/// builds of `module`, for commands that explain or show one module.
pub(super) fn module_instance(
    g: &Global,
    l: &super::Loaded,
    module: &str,
    target: Option<&str>,
) -> Result<(crate::instance::Instances, usize), Failure> {
    let Some(mi) = l.project.index_of(module) else {
        let names = l.project.modules.iter().map(|m| m.name.as_str());
        let e = ManifestError::new(Path::new("modules"), format!("no module named `{module}`"));
        return Err(match crate::manifest::closest(module, names) {
            Some(b) => e.help(format!("did you mean `{b}`?")),
            None => e.help("`strata graph` lists the modules"),
        }
        .into());
    };
    let names = vec![target.unwrap_or(module).to_string()];
    let inst = g.instances(l, &names)?;
    let Some(i) = (0..inst.list.len()).find(|&i| inst.list[i].module == mi) else {
        let t = target.unwrap_or(module);
        return Err(ManifestError::new(
            Path::new("strata.toml"),
            format!("target `{t}` does not build module `{module}`"),
        )
        .help(format!(
            "name a target whose modules depend on {module}, or leave the target out"
        ))
        .into());
    };
    Ok((inst, i))
}
