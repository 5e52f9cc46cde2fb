//! Scheduling a workflow: jobs start as their requirements finish, at most
//! N at once; a job whose requirement failed is `blocked`, one behind an
//! unapproved approval is `waiting` (not a failure); jobs of one
//! `serial-group` run one at a time, in workflow order; then the summary.

use super::config::Job;
use super::job::run_job;
use super::state::{Report, Run, interrupted};
use crate::report::human_bytes;
use std::collections::HashMap;
use std::time::Instant;

/// Runs one workflow and prints its summary; true if a job failed.
pub(super) fn run_workflow(run: &Run<'_>, wf: &str, parallel: Option<usize>) -> bool {
    let t = Instant::now();
    crate::errln!(
        "Running workflow `{wf}` ({}) as run {} in {}",
        crate::report::count(run.jobs.len() as u64, "job", "jobs"),
        run.id,
        run.dir.display()
    );
    run.events
        .emit("workflow-started", serde_json::json!({"workflow": wf}));
    let parallel = parallel
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let reports = schedule(run, parallel);
    crate::errln!(
        "\nWorkflow `{wf}` summary ({:.2}s):",
        t.elapsed().as_secs_f64()
    );
    let mut failed = false;
    for j in run.jobs {
        let r = reports.get(&j.name).cloned().unwrap_or_default();
        failed |= !matches!(r.status, "success" | "waiting");
        crate::errln!("  {:<24} {:<8} {:>7.2}s", j.name, r.status, r.secs);
        for x in &r.restores {
            crate::errln!("      restore  {x}");
        }
        for x in &r.saves {
            crate::errln!("      save     {x}");
        }
        if r.workspace_bytes > 0 {
            crate::errln!("      workspace {}", human_bytes(r.workspace_bytes));
        }
    }
    run.events.emit(
        "workflow-finished",
        serde_json::json!({"workflow": wf, "failed": failed, "seconds": t.elapsed().as_secs_f64()}),
    );
    failed
}

/// Runs jobs as their requirements finish, at most `parallel` at once.
fn schedule(run: &Run<'_>, parallel: usize) -> HashMap<String, Report> {
    let mut reports: HashMap<String, Report> = HashMap::new();
    let mut pending: Vec<&Job> = run.jobs.iter().collect();
    // `serial-group`s with a job running now.
    let mut busy: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let group_of = |name: &str| {
        run.jobs
            .iter()
            .find(|j| j.name == name)
            .and_then(|j| j.serial_group.as_deref())
    };
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<(String, Report)>();
        let mut running = 0usize;
        loop {
            // Jobs whose requirement failed (or was blocked) are blocked.
            pending.retain(|j| {
                let waiting = j
                    .requires
                    .iter()
                    .any(|r| reports.get(r).is_some_and(|x| x.status == "waiting"));
                let blocked = j
                    .requires
                    .iter()
                    .any(|r| reports.get(r).is_some_and(|x| x.status != "success"));
                if blocked {
                    let status = if waiting { "waiting" } else { "blocked" };
                    run.events.emit(
                        "job-finished",
                        serde_json::json!({"job": j.name, "status": status}),
                    );
                    reports.insert(
                        j.name.clone(),
                        Report {
                            status,
                            ..Report::default()
                        },
                    );
                }
                !blocked
            });
            if interrupted() {
                for j in pending.drain(..) {
                    reports.insert(
                        j.name.clone(),
                        Report {
                            status: "interrupted",
                            ..Report::default()
                        },
                    );
                }
            }
            while running < parallel {
                let Some(pos) = pending.iter().position(|j| {
                    j.requires.iter().all(|r| reports.contains_key(r))
                        && j.serial_group.as_deref().is_none_or(|g| !busy.contains(g))
                }) else {
                    break;
                };
                let job = pending.remove(pos);
                if let Some(g) = job.serial_group.as_deref() {
                    busy.insert(g);
                }
                running += 1;
                let tx = tx.clone();
                s.spawn(move || {
                    // A panicking job is a failed job: the scheduler always
                    // hears back (see `crate::worker`).
                    let r = crate::worker::catch(|| run_job(run, job)).unwrap_or_else(|panic| {
                        crate::errln!(
                            "[{}] internal error (a bug in strata, please report it): {panic}",
                            job.name
                        );
                        Report {
                            status: "failed",
                            ..Report::default()
                        }
                    });
                    let _ = tx.send((job.name.clone(), r));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((name, r)) = rx.recv() else { break };
            running -= 1;
            if let Some(g) = group_of(&name) {
                busy.remove(g);
            }
            reports.insert(name, r);
        }
    });
    reports
}
