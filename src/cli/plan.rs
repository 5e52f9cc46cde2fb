//! `strata plan` and `strata why`: what would run, and exactly why.

use super::{Failure, Global};
use crate::exec::{self, Context};
use crate::fetch;
use crate::fingerprint::{StaleReason, Step};
use crate::graph;
use crate::manifest::ManifestError;
use crate::report::emit_json;
use serde_json::json;
use std::path::Path;

pub fn plan(g: &Global, names: &[String]) -> Result<(), Failure> {
    let l = g.load()?;
    let selection = graph::select(&l.project, names)?;
    let closure = l.graph.closure(&selection);
    let reporter = g.reporter();
    let ctx = Context {
        project: &l.project,
        graph: &l.graph,
        keys: &l.keys,
        reporter: &reporter,
        fetch: g.fetch_options(),
        jobs: 1,
        keep_going: false,
        store: None,
    };
    let statuses = exec::statuses(&ctx, &closure);
    let cache = if g.no_cache {
        None
    } else {
        Some(g.cache(&l.project)?)
    };
    let deferred = exec::deferrable(&ctx, &selection, &closure, &statuses, &|i| {
        cache
            .as_ref()
            .is_some_and(|c| c.locate(l.keys[i].install_key()).is_some())
    });
    let mut out = String::new();
    let mut stale_count = 0;
    for &i in &closure {
        let m = &l.project.modules[i];
        let st = &statuses[&i];
        let source = st
            .first_stale
            .and(cache.as_ref())
            .and_then(|c| c.locate(l.keys[i].install_key()));
        let packages = &l.project.settings.packages_dir;
        let have_package = fetch::expected_sha256(packages, m)
            .is_some_and(|sum| fetch::looks_verified(packages, &m.file, &sum));
        let reasons: Vec<String> = st.reasons.iter().map(ToString::to_string).collect();
        let mut steps = Vec::new();
        for step in Step::ALL {
            let state = if step == Step::Fetch {
                if !st.runs(Step::Unpack) {
                    "fresh".to_string()
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
        out.push_str(&format!("{} {}: {head}\n", m.name, m.version));
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

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

pub fn why(g: &Global, module: &str) -> Result<(), Failure> {
    let l = g.load()?;
    let Some(i) = l.project.index_of(module) else {
        let names = l.project.modules.iter().map(|m| m.name.as_str());
        let e = ManifestError::new(Path::new("modules"), format!("no module named `{module}`"));
        return Err(match crate::manifest::closest(module, names) {
            Some(b) => e.help(format!("did you mean `{b}`?")),
            None => e.help("`strata graph` lists the modules"),
        }
        .into());
    };
    let m = &l.project.modules[i];
    let dir = l.project.module_build_dir(m);
    let st = crate::fingerprint::module_status(&dir, &l.keys[i]);
    if g.json {
        emit_json(
            "why",
            json!({
                "module": m.name,
                "fresh": st.first_stale.is_none(),
                "stale-step": st.first_stale,
                "reasons": st.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
        );
        return Ok(());
    }
    match st.first_stale {
        None => crate::outln!(
            "{} {} is fresh: no input changed since its last build",
            m.name,
            m.version
        ),
        Some(step) => {
            if st.reasons == [StaleReason::NeverRan(Step::Unpack)] {
                crate::outln!("{} {} has not been built yet", m.name, m.version);
            } else {
                crate::outln!("{} {}: {step} is stale because:", m.name, m.version);
                for r in &st.reasons {
                    crate::outln!("  {r}");
                }
            }
        }
    }
    Ok(())
}
