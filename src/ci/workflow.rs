//! Workflow planning: which workflows run (`when`/`unless`, `--workflow`),
//! the job entries of each (matrix expansion with CircleCI's naming,
//! `exclude` and `alias`), and their `requires` (a matrix job or alias
//! meaning all its instances), branch `filters` (an entry filtered out, and
//! what requires it, does not run). What CircleCI refuses is refused here,
//! before anything runs: a `requires` naming no job, a job requiring
//! itself, two jobs of one name on one branch, a dependency cycle.

use super::expand::{Cx, scalar};
use super::model::{ConfigError, Job, Loaded, Workflow};
use serde_norway::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Plans every workflow (or only `only`).
pub fn plan(cx: &Cx<'_>, only: Option<&str>) -> Result<Loaded, ConfigError> {
    let workflows = match cx.doc.get("workflows").and_then(Value::as_mapping) {
        Some(w) => w.clone(),
        // CircleCI 2.0 without workflows runs the job named `build`.
        None if cx.doc.get("jobs").and_then(|j| j.get("build")).is_some() => {
            let mut w = Mapping::new();
            w.insert(
                "workflow".into(),
                serde_norway::from_str("jobs: [build]").expect("static YAML"),
            );
            w
        }
        None => {
            return Err(cx.err(
                "workflows",
                "no workflows, and no job named `build` to run without one",
            ));
        }
    };
    let names: Vec<String> = workflows
        .iter()
        .filter(|(_, v)| v.get("jobs").is_some())
        .map(|(k, _)| scalar(k))
        .collect();
    if let Some(w) = only
        && !names.iter().any(|n| n == w)
    {
        return Err(cx.err(
            "workflows",
            format!("no workflow `{w}` (have: {})", names.join(", ")),
        ));
    }
    let mut loaded = Loaded::default();
    for name in &names {
        if only.is_some_and(|w| w != name) {
            continue;
        }
        let wf = &workflows[name.as_str()];
        let at = format!("workflows.{name}");
        if let Some(c) = wf.get("when")
            && !cx.condition(&format!("{at}.when"), c)?
        {
            loaded.skipped.push(format!("{name} (its `when` is false)"));
            continue;
        }
        if let Some(c) = wf.get("unless")
            && cx.condition(&format!("{at}.unless"), c)?
        {
            loaded
                .skipped
                .push(format!("{name} (its `unless` is true)"));
            continue;
        }
        loaded.workflows.push(Workflow {
            name: name.clone(),
            jobs: jobs(cx, name, wf)?,
        });
    }
    if let Some(w) = only
        && loaded.workflows.is_empty()
    {
        return Err(cx.err(
            &format!("workflows.{w}"),
            format!("workflow `{w}` does not run: {}", loaded.skipped.join("; ")),
        ));
    }
    Ok(loaded)
}

/// The jobs of workflow `wf`, matrices expanded and requires resolved.
fn jobs(cx: &Cx<'_>, wf: &str, def: &Value) -> Result<Vec<Job>, ConfigError> {
    let at = format!("workflows.{wf}.jobs");
    let mut jobs: Vec<Job> = Vec::new();
    // Alias (or matrix job name) → its instances.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Entries whose branch filters leave them out of this pipeline.
    let mut filtered: BTreeSet<String> = BTreeSet::new();
    for entry in def["jobs"].as_sequence().into_iter().flatten() {
        let (job_ref, args) = match entry {
            Value::String(s) => (s.clone(), Mapping::new()),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one");
                (scalar(k), v.as_mapping().cloned().unwrap_or_default())
            }
            other => {
                return Err(cx.err(&at, format!("cannot read job entry {other:?}")));
            }
        };
        if !branch_passes(cx, &at, &job_ref, &args)? {
            filtered.insert(args.get("name").map(scalar).unwrap_or(job_ref));
            continue;
        }
        match args.get("matrix") {
            None => jobs.push(cx.job(wf, &job_ref, &args)?),
            Some(m) => {
                let instances = matrix(cx, &at, &job_ref, &args, m)?;
                let alias = m
                    .get("alias")
                    .map(scalar)
                    .unwrap_or_else(|| job_ref.clone());
                let mut names = Vec::new();
                for a in instances {
                    let j = cx.job(wf, &job_ref, &a)?;
                    names.push(j.name.clone());
                    jobs.push(j);
                }
                groups.entry(alias).or_default().extend(names);
            }
        }
    }
    drop_filtered(&mut jobs, filtered);
    let mut seen = BTreeSet::new();
    for j in &jobs {
        if !seen.insert(j.name.clone()) {
            return Err(cx.err(
                &at,
                format!(
                    "two jobs are named `{}`\n  hint: give one a distinct `name:`",
                    j.name
                ),
            ));
        }
    }
    for j in &mut jobs {
        let mut resolved = Vec::new();
        for r in &j.requires {
            if r == &j.name {
                return Err(cx.err(
                    &format!("{at}.{}", j.name),
                    format!("job `{}` requires itself", j.name),
                ));
            }
            if seen.contains(r) {
                resolved.push(r.clone());
            } else if let Some(g) = groups.get(r) {
                resolved.extend(g.iter().cloned());
            } else {
                return Err(cx.err(
                    &format!("{at}.{}", j.name),
                    format!("requires `{r}`, which is not a job of this workflow"),
                ));
            }
        }
        resolved.dedup();
        j.requires = resolved;
    }
    if let Some(cycle) = find_cycle(&jobs) {
        return Err(cx.err(
            &at,
            format!("the jobs' requires form a cycle: {}", cycle.join(" → ")),
        ));
    }
    Ok(jobs)
}

/// Whether a job entry's `filters: branches:` (`only`, `ignore`: a name
/// or a list; `/regex/` matching the whole branch, as Java's
/// `String.matches`) let it run on this pipeline's branch: it runs when
/// `only` is absent or matches, and `ignore` does not match. `tags`
/// filters are for tag pipelines, which a local run is not.
fn branch_passes(cx: &Cx<'_>, at: &str, job: &str, args: &Mapping) -> Result<bool, ConfigError> {
    let Some(b) = args.get("filters").and_then(|f| f.get("branches")) else {
        return Ok(true);
    };
    let branch = &cx.pipeline.branch;
    let any = |key: &str| -> Result<Option<bool>, ConfigError> {
        let Some(v) = b.get(key) else {
            return Ok(None);
        };
        let list = match v {
            Value::Sequence(s) => s.iter().map(scalar).collect(),
            v => vec![scalar(v)],
        };
        for p in list {
            let hit = match p.strip_prefix('/').and_then(|r| r.strip_suffix('/')) {
                Some(re) => regex::Regex::new(&format!("^(?:{re})$"))
                    .map_err(|e| {
                        cx.err(
                            &format!("{at}.{job}.filters.branches.{key}"),
                            format!("`{p}` is not a regex: {e}"),
                        )
                    })?
                    .is_match(branch),
                None => &p == branch,
            };
            if hit {
                return Ok(Some(true));
            }
        }
        Ok(Some(false))
    };
    Ok(any("only")?.unwrap_or(true) && !any("ignore")?.unwrap_or(false))
}

/// Removes the jobs that require a job filtered out of this pipeline
/// (CircleCI does not run them either), transitively. A name another entry
/// of the workflow still provides (same-named entries with disjoint branch
/// filters) is not filtered.
fn drop_filtered(jobs: &mut Vec<Job>, mut filtered: BTreeSet<String>) {
    loop {
        filtered.retain(|f| !jobs.iter().any(|j| &j.name == f));
        let before = jobs.len();
        jobs.retain(|j| {
            let gone = j.requires.iter().any(|r| filtered.contains(r));
            if gone {
                filtered.insert(j.name.clone());
            }
            !gone
        });
        if jobs.len() == before {
            return;
        }
    }
}

/// The workflow arguments of each instance of a matrix entry.
fn matrix(
    cx: &Cx<'_>,
    at: &str,
    job_ref: &str,
    args: &Mapping,
    m: &Value,
) -> Result<Vec<Mapping>, ConfigError> {
    let at = format!("{at}.{job_ref}.matrix");
    let params = m
        .get("parameters")
        .and_then(Value::as_mapping)
        .ok_or_else(|| cx.err(&at, "a matrix needs `parameters`"))?;
    let mut combos: Vec<Vec<(Value, Value)>> = vec![Vec::new()];
    for (k, values) in params {
        let values = values.as_sequence().ok_or_else(|| {
            cx.err(
                &at,
                format!("matrix parameter `{}` needs a list", scalar(k)),
            )
        })?;
        let mut next = Vec::new();
        for c in &combos {
            for v in values {
                let mut c = c.clone();
                c.push((k.clone(), v.clone()));
                next.push(c);
            }
        }
        combos = next;
    }
    let excluded = |c: &[(Value, Value)]| {
        m.get("exclude")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .any(|x| {
                c.iter()
                    .all(|(k, v)| x.get(k).is_some_and(|xv| scalar(xv) == scalar(v)))
            })
    };
    let mut out = Vec::new();
    for c in combos.iter().filter(|c| !excluded(c)) {
        let render = |t: &str| {
            let mut s = t.to_string();
            for (k, v) in c {
                for form in [
                    format!("<< matrix.{} >>", scalar(k)),
                    format!("<<matrix.{}>>", scalar(k)),
                ] {
                    s = s.replace(&form, &scalar(v));
                }
            }
            s
        };
        let name = match args.get("name") {
            Some(n) => render(&scalar(n)),
            None => std::iter::once(job_ref.to_string())
                .chain(c.iter().map(|(_, v)| scalar(v)))
                .collect::<Vec<_>>()
                .join("-"),
        };
        let mut a = args.clone();
        a.remove("matrix");
        a.insert("name".into(), Value::String(name));
        if let Some(Value::Sequence(reqs)) = args.get("requires") {
            a.insert(
                "requires".into(),
                Value::Sequence(
                    reqs.iter()
                        .map(|r| Value::String(render(&scalar(r))))
                        .collect(),
                ),
            );
        }
        for (k, v) in c {
            a.insert(k.clone(), v.clone());
        }
        out.push(a);
    }
    Ok(out)
}

/// A cycle among `requires`, if any, as the job names around it.
fn find_cycle(jobs: &[Job]) -> Option<Vec<String>> {
    let by_name: BTreeMap<&str, &Job> = jobs.iter().map(|j| (j.name.as_str(), j)).collect();
    // 0 unvisited, 1 on the stack, 2 done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'a>(
        n: &'a str,
        by_name: &BTreeMap<&'a str, &'a Job>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let from = stack.iter().position(|s| *s == n).unwrap_or(0);
                let mut c: Vec<String> = stack[from..].iter().map(|s| s.to_string()).collect();
                c.push(n.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(n, 1);
        stack.push(n);
        if let Some(j) = by_name.get(n) {
            for r in &j.requires {
                if let Some(c) = visit(r.as_str(), by_name, state, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    for j in jobs {
        let mut stack = Vec::new();
        if let Some(c) = visit(j.name.as_str(), &by_name, &mut state, &mut stack) {
            return Some(c);
        }
    }
    None
}
