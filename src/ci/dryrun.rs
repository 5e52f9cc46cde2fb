//! `strata ci run --dry-run`: the plan of a workflow, printed (or as one
//! JSON document with `--json`) without running anything. Keys are rendered
//! with the very environment a run gives the job, so the keys shown are the
//! keys a run uses.

use super::config::Step;
use super::jobenv::job_env;
use super::state::Run;
use super::template;

/// Prints the DAG, steps and cache keys, rendered as the run would render
/// them: the same job environment (`CIRCLE_JOB`, `--env`, the job's
/// `environment`), and the build numbers the counter would hand out next,
/// in workflow order.
pub(super) fn dry_run(run: &Run<'_>, wf: &str, json: bool) -> serde_json::Value {
    let (cache, pipeline, root, jobs) = (&run.cache, &run.pipeline, &run.root, run.jobs);
    let next_build = std::fs::read_to_string(root.join(".strata/ci/build-num"))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let mut out = Vec::new();
    let mut doc_jobs = Vec::new();
    out.push(format!("workflow {wf} (cache store: {})", cache.describe()));
    for (n, j) in jobs.iter().enumerate() {
        let req = if j.requires.is_empty() {
            String::new()
        } else {
            format!(" (requires {})", j.requires.join(", "))
        };
        let kind = if j.approval {
            " [approval]"
        } else if j.unresolved.is_some() {
            " [unresolved]"
        } else {
            ""
        };
        out.push(format!("job {}{req}{kind}", j.name));
        if let Some(why) = &j.unresolved {
            out.push(format!("    # unresolved: {why}"));
        }
        if let Some(n) = &j.executor_note {
            out.push(format!("    # {n}"));
        }
        if j.parallelism > 1 {
            out.push(format!("    # parallelism {}", j.parallelism));
        }
        let (env_map, _, _) = job_env(run, j, next_build + 1 + n as u64, 0);
        let env = |n: &str| env_map.get(n).cloned().or_else(|| std::env::var(n).ok());
        let vars = template::Vars {
            branch: Some(pipeline.branch.clone()).filter(|b| !b.is_empty()),
            revision: Some(pipeline.revision.clone()).filter(|b| !b.is_empty()),
            build_num: env_map["CIRCLE_BUILD_NUM"].clone(),
            dir: root.to_path_buf(),
            env: &env,
            layer: &|n| {
                let p = crate::manifest::load(root).map_err(|e| e.to_string())?;
                let g = crate::graph::Graph::new(&p).map_err(|e| e.to_string())?;
                super::layer::digest(&p, &g, n).map_err(|e| e.to_string())
            },
        };
        let key = |k: &str| match template::render(k, &vars) {
            Ok(r) => r,
            Err(e) => format!(
                "{k}  (unresolved: {})",
                e.to_string().lines().next().unwrap_or("")
            ),
        };
        let mut steps = Vec::new();
        let mut cache_keys = Vec::new();
        for s in &j.steps {
            steps.push(s.title());
            match s {
                Step::RestoreCache { name, keys } => {
                    out.push(format!("    - {name}"));
                    for k in keys {
                        let k = key(k);
                        out.push(format!("        key {k}"));
                        cache_keys.push(k);
                    }
                }
                Step::SaveCache {
                    name,
                    key: k,
                    paths,
                    ..
                } => {
                    let k = key(k);
                    out.push(format!("    - {name}: key {k} paths {}", paths.join(" ")));
                    cache_keys.push(k);
                }
                Step::Run {
                    background: true, ..
                } => out.push(format!("    - {} (background)", s.title())),
                s => out.push(format!("    - {}", s.title())),
            }
        }
        doc_jobs.push(serde_json::json!({
            "name": j.name,
            "requires": j.requires,
            "steps": steps,
            "cache_keys": cache_keys,
            "approval": j.approval,
            "parallelism": j.parallelism,
            "unresolved": j.unresolved,
        }));
    }
    if !json {
        for l in out {
            crate::outln!("{l}");
        }
    }
    serde_json::json!({ "name": wf, "jobs": doc_jobs })
}
