//! A job's surroundings: its directory (`<run>/<job>`, or `<job>-<node>`
//! for parallel copies), its `~`, its working directory, and the
//! environment its steps see, built once here so a dry run renders keys
//! with exactly what a run gives the job.

use super::config::Job;
use super::state::{REPORT_ENV, Run, resolve_home};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The environment a job's steps see (CircleCI's variables, then `--env`,
/// then the job's own `environment`), its working directory and its `~`.
pub(super) fn job_env(
    run: &Run<'_>,
    job: &Job,
    build_num: u64,
    node: u64,
) -> (BTreeMap<String, String>, PathBuf, PathBuf) {
    let dir = job_dir(run, job, node);
    let home = dir.join("home");
    let workdir = resolve_home(&job.working_directory, &home, &home);
    let reponame = run
        .repo
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in [
        ("CI", "true".to_string()),
        ("CIRCLECI", "true".into()),
        ("CIRCLE_SHA1", run.pipeline.revision.clone()),
        ("CIRCLE_BRANCH", run.pipeline.branch.clone()),
        ("CIRCLE_BUILD_NUM", build_num.to_string()),
        ("CIRCLE_JOB", job.name.clone()),
        ("CIRCLE_WORKFLOW_ID", run.id.clone()),
        ("CIRCLE_WORKING_DIRECTORY", workdir.display().to_string()),
        ("CIRCLE_PROJECT_REPONAME", reponame),
        ("HOME", home.display().to_string()),
        ("BASH_ENV", dir.join("bash_env").display().to_string()),
        ("CIRCLE_NODE_INDEX", node.to_string()),
        ("CIRCLE_NODE_TOTAL", job.parallelism.max(1).to_string()),
        ("CIRCLE_PIPELINE_ID", run.pipeline.id.clone()),
        ("CIRCLE_REPOSITORY_URL", run.pipeline.git_url.clone()),
        ("STRATA_CI_STORE", run.store_env.clone()),
        (
            REPORT_ENV,
            dir.join("cache-report.jsonl").display().to_string(),
        ),
    ] {
        env.insert(k.to_string(), v);
    }
    if !run.pipeline.tag.is_empty() {
        env.insert("CIRCLE_TAG".into(), run.pipeline.tag.clone());
    }
    for (k, v) in &run.env {
        env.insert(k.clone(), v.clone());
    }
    for (k, v) in &job.environment {
        env.insert(k.clone(), v.clone());
    }
    (env, workdir, home)
}

/// A job's directory: `<run>/<job>`, or `<run>/<job>-<node>` for
/// parallel copies.
pub(super) fn job_dir(run: &Run<'_>, job: &Job, node: u64) -> PathBuf {
    if job.parallelism > 1 {
        run.dir.join(format!("{}-{node}", job.name))
    } else {
        run.dir.join(&job.name)
    }
}
