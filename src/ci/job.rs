//! Running one job of a workflow: an approval, an unresolved orb job, or
//! its `parallelism` copies, each running its steps in turn
//! ([`super::execute`]) in its own directory, `~` and environment
//! ([`super::jobenv`]).

use super::config::{Job, When};
use super::jobenv::{job_dir, job_env};
use super::state::{JobCx, Report, Run, interrupted, next_counter};
use std::time::Instant;

/// Runs a job: an approval, an unresolved orb job, or its `parallelism`
/// copies at once (each with its own `~`, CIRCLE_NODE_INDEX 0..N).
pub(super) fn run_job(run: &Run<'_>, job: &Job) -> Report {
    run.events
        .emit("job-started", serde_json::json!({"job": job.name}));
    let r = if job.approval {
        let status = if run.approve { "success" } else { "waiting" };
        run.say(
            &job.name,
            if run.approve {
                "approval job: approved (--approve)"
            } else {
                "approval job: on hold; its dependents wait (pass --approve to approve)"
            },
        );
        Report {
            status,
            ..Report::default()
        }
    } else if let Some(why) = &job.unresolved {
        run.say(&job.name, &format!("error: {why}"));
        Report {
            status: "failed",
            ..Report::default()
        }
    } else if job.parallelism <= 1 {
        run_node(run, job, 0)
    } else {
        let t = Instant::now();
        let reports: Vec<Report> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..job.parallelism)
                .map(|node| s.spawn(move || run_node(run, job, node)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or(Report {
                        status: "failed",
                        ..Report::default()
                    })
                })
                .collect()
        });
        let mut all = Report {
            status: "success",
            ..Report::default()
        };
        for r in reports {
            if r.status != "success" && all.status == "success" {
                all.status = r.status;
            }
            all.restores.extend(r.restores);
            all.saves.extend(r.saves);
            all.workspace_bytes += r.workspace_bytes;
        }
        all.secs = t.elapsed().as_secs_f64();
        all
    };
    run.events.emit(
        "job-finished",
        serde_json::json!({"job": job.name, "status": r.status, "seconds": r.secs}),
    );
    r
}

fn run_node(run: &Run<'_>, job: &Job, node: u64) -> Report {
    let t = Instant::now();
    let dir = job_dir(run, job, node);
    let build_num = {
        let mut n = run.build_num.lock().unwrap_or_else(|e| e.into_inner());
        *n = next_counter(&run.root.join(".strata/ci/build-num"), 1).unwrap_or(*n + 1);
        *n
    };
    let (env, workdir, home) = job_env(run, job, build_num, node);
    let mut cx = JobCx {
        job,
        workdir,
        dir: dir.clone(),
        home: home.clone(),
        env,
        report: Report::default(),
        background: Vec::new(),
    };
    if let Err(e) =
        std::fs::create_dir_all(&home).and_then(|()| std::fs::write(dir.join("bash_env"), b""))
    {
        run.say(&job.name, &format!("error: {}: {e}", home.display()));
        cx.report.status = "failed";
        return cx.report;
    }
    if let Some(n) = &job.executor_note {
        run.say(&job.name, &format!("# {n}"));
    }
    let mut failed = false;
    for (i, step) in job.steps.iter().enumerate() {
        let go = match step.when() {
            When::OnSuccess => !failed,
            When::OnFail => failed,
            When::Always => true,
        };
        if !go {
            continue;
        }
        if interrupted() {
            failed = true;
            break;
        }
        let st = Instant::now();
        run.say(&job.name, &format!("▸ {}", step.title()));
        let r = super::execute::run_step(run, &mut cx, i, step);
        let secs = st.elapsed().as_secs_f64();
        run.events.emit(
            "step",
            serde_json::json!({
                "job": job.name,
                "node": node,
                "step": step.title(),
                "ok": r.is_ok(),
                "message": r.as_ref().unwrap_or_else(|e| e),
                "seconds": secs,
            }),
        );
        match r {
            Ok(msg) => {
                let msg = if msg.is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                };
                run.say(&job.name, &format!("  ok ({secs:.2}s){msg}"));
            }
            Err(msg) => {
                run.say(&job.name, &format!("  FAILED ({secs:.2}s): {msg}"));
                failed = true;
            }
        }
    }
    // Background steps end with the job, with everything they started.
    for pgid in cx.background.drain(..) {
        // SAFETY: kill(2) on a process group this job started.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    // Cache commands run from steps (`strata ci restore-layer`, …) reported here.
    if let Ok(text) = std::fs::read_to_string(dir.join("cache-report.jsonl")) {
        for v in text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            let line = v["line"].as_str().unwrap_or_default().to_string();
            match v["kind"].as_str() {
                Some("restore") => cx.report.restores.push(line),
                Some("save") => cx.report.saves.push(line),
                _ => {}
            }
        }
    }
    cx.report.status = match (failed, interrupted()) {
        (_, true) => "interrupted",
        (true, false) => "failed",
        (false, false) => "success",
    };
    cx.report.secs = t.elapsed().as_secs_f64();
    cx.report
}
