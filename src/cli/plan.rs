//! `strata plan` and `strata why`: what would run, and exactly why.

use super::{Failure, Global};
use crate::exec::{self, Context};
use crate::fetch;
use crate::fingerprint::{StaleReason, Step};
use crate::instance::{Instance, history};
use crate::manifest::{ManifestError, ParamValue};
use crate::report::emit_json;
use serde_json::json;
use std::path::Path;

pub fn plan(g: &Global, names: &[String]) -> Result<(), Failure> {
    let l = g.load()?;
    let inst = g.instances(&l, names)?;
    let selection = inst.selection();
    let closure = inst.graph.closure(&selection);
    let reporter = g.reporter();
    let ctx = Context {
        project: &l.project,
        instances: &inst.list,
        graph: &inst.graph,
        keys: &inst.keys,
        reporter: &reporter,
        fetch: g.fetch_options(),
        jobs: 1,
        keep_going: false,
        store: None,
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
        let have_package = fetch::expected_sha256(packages, m)
            .is_some_and(|sum| fetch::looks_verified(packages, &m.file, &sum));
        let reasons: Vec<String> = st.reasons.iter().map(ToString::to_string).collect();
        let mut steps = Vec::new();
        for step in Step::ALL {
            let state = if step == Step::Fetch {
                if !st.runs(Step::Unpack) {
                    if st.source_ready && st.first_stale.is_some() {
                        "fresh (shared source ready)".to_string()
                    } else {
                        "fresh".to_string()
                    }
                } else if have_package {
                    "fresh (package verified)".to_string()
                } else {
                    format!(
                        "stale: {} not in {}",
                        m.file,
                        rel(&l.project.root, packages)
                    )
                }
            } else if !st.runs(step) {
                "fresh".to_string()
            } else if Some(step) == st.first_stale {
                format!("stale: {}", reasons.join("; "))
            } else if st.first_stale.is_some_and(|f| step < f) {
                format!(
                    "stale: re-extracted fresh because {} is stale",
                    st.first_stale.expect("some")
                )
            } else {
                format!("stale: after {}", st.first_stale.expect("some"))
            };
            steps.push((step, state));
        }
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
            (Some(r), None) => format!("will run from {r}"),
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
            "{} of {} modules stale\n",
            stale_count,
            closure.len()
        ));
        crate::out!("{out}");
    }
    Ok(())
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
            ParamValue::Value(s) => format!("{k}={s}"),
            ParamValue::File { rel, .. } => format!("{k}={rel}"),
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
            };
            (k.clone(), v)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
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
    if g.json {
        emit_json(
            "why",
            json!({
                "module": m.name,
                "variant": it.variant_id(),
                "fresh": st.first_stale.is_none(),
                "stale-step": st.first_stale,
                "reasons": st.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
        );
        return Ok(());
    }
    let what = format!("{} {}{}", m.name, m.version, variant_note(it));
    match st.first_stale {
        None => crate::outln!("{what} is fresh: no input changed since its last build"),
        Some(step) => {
            if matches!(st.reasons.as_slice(), [StaleReason::NeverRan(_)]) {
                crate::outln!("{what} has not been built yet");
            } else {
                crate::outln!("{what}: {step} is stale because:");
                for r in &st.reasons {
                    crate::outln!("  {r}");
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
