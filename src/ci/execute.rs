//! Executing one step of a job: `run` under `bash -eo pipefail` in its own
//! process group (killed after `no_output_timeout` of silence, or left in
//! the background and ended with the job), `checkout` as a git clone,
//! caches, workspaces and artifacts.
//!
//! `$BASH_ENV` needs no code here: it is in every step's environment and
//! bash sources it itself before a non-interactive `-c` command, exactly
//! as on CircleCI.

use super::config::Step;
use super::state::{JobCx, Run, interrupted};
use super::template;
use super::workspace::{attach, copy_tree, glob};
use crate::report::human_bytes;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn vars<'a>(
    run: &Run<'_>,
    cx: &JobCx<'_>,
    layer: &'a dyn Fn(&str) -> Result<String, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
) -> template::Vars<'a> {
    template::Vars {
        branch: Some(run.pipeline.branch.clone()).filter(|b| !b.is_empty()),
        revision: Some(run.pipeline.revision.clone()).filter(|b| !b.is_empty()),
        build_num: cx.env.get("CIRCLE_BUILD_NUM").cloned().unwrap_or_default(),
        dir: cx.workdir.clone(),
        env,
        layer,
    }
}

pub(super) fn run_step(
    run: &Run<'_>,
    cx: &mut JobCx<'_>,
    i: usize,
    step: &Step,
) -> Result<String, String> {
    let workdir = cx.workdir.clone();
    let env_map = cx.env.clone();
    let env = move |n: &str| env_map.get(n).cloned().or_else(|| std::env::var(n).ok());
    let layer_dir = workdir.clone();
    let layer = move |n: &str| -> Result<String, String> {
        let p = crate::manifest::load(&layer_dir).map_err(|e| e.to_string())?;
        let g = crate::graph::Graph::new(&p).map_err(|e| e.to_string())?;
        super::layer::digest(&p, &g, n).map_err(|e| e.to_string())
    };
    match step {
        Step::Noted(_) => Ok(String::new()),
        Step::SetParameters {
            base_revision,
            mapping,
            config_path,
            output_path,
            config_list_path,
        } => super::path_filter::set_parameters(
            &workdir,
            base_revision,
            mapping,
            &cx.orb_output(output_path),
            config_path,
            &cx.orb_output(config_list_path),
        ),
        Step::GenerateConfig {
            config_list_path,
            generated_config_path,
        } => super::path_filter::generate_config(
            &workdir,
            &cx.orb_input(config_list_path),
            &cx.orb_output(generated_config_path),
        ),
        Step::Continue {
            configuration_path, ..
        } if configuration_path.is_empty() => {
            let mut slot = run.continuation.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_some() {
                return Err(
                    "finish: the pipeline was already continued (once per pipeline)".into(),
                );
            }
            *slot = Some(super::state::Continuation {
                path: PathBuf::new(),
                text: String::new(),
                params: Vec::new(),
            });
            Ok("the pipeline finishes after this workflow; nothing continues it".into())
        }
        Step::Continue {
            configuration_path,
            parameters,
        } => continue_pipeline(run, cx, &workdir, configuration_path, parameters),
        Step::Checkout { path } => checkout(run, cx, &workdir, path.as_deref()),
        Step::Run {
            command,
            environment,
            working_directory,
            no_output_timeout,
            background,
            ..
        } => {
            let wd = match working_directory {
                Some(w) => cx.resolve(w, &workdir),
                None => workdir.clone(),
            };
            std::fs::create_dir_all(&wd).map_err(|e| format!("{}: {e}", wd.display()))?;
            let mut env: BTreeMap<String, String> = cx.env.clone();
            env.extend(environment.clone());
            let log = cx.dir.join("logs").join(format!("{:02}.log", i + 1));
            if *background {
                let pgid = start_background(command, &wd, &env, &log)?;
                cx.background.push(pgid);
                return Ok(format!(
                    "started in the background (log: {})",
                    log.display()
                ));
            }
            run_command(
                run,
                &cx.job.name,
                command,
                &wd,
                &env,
                &log,
                *no_output_timeout,
            )
        }
        Step::RestoreCache { keys, .. } => {
            restore_cache(run, cx, keys, &vars(run, cx, &layer, &env))
        }
        Step::SaveCache { key, paths, .. } => {
            save_cache(run, cx, &workdir, key, paths, &vars(run, cx, &layer, &env))
        }
        Step::PersistToWorkspace { root, paths } => {
            persist_to_workspace(run, cx, &workdir, root, paths)
        }
        Step::AttachWorkspace { at } => {
            let at = cx.resolve(at, &workdir);
            attach(run, cx.job, &at)
        }
        Step::StoreArtifacts { path, destination } => {
            store_artifacts(run, cx, &workdir, i, path, destination.as_deref())
        }
    }
}

/// The continuation orb's `continue`: the pipeline goes on with the
/// configuration at `configuration_path` and `parameters` once this workflow ends.
fn continue_pipeline(
    run: &Run<'_>,
    cx: &JobCx<'_>,
    workdir: &Path,
    configuration_path: &str,
    parameters: &str,
) -> Result<String, String> {
    let path = cx.orb_input(configuration_path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("continue: cannot read {}: {e}", path.display()))?;
    // `parameters`: a JSON object, or a file holding one (the orb's rule).
    let json = if parameters.trim_start().starts_with('{') {
        parameters.to_string()
    } else {
        let f = cx.orb_input(parameters);
        std::fs::read_to_string(&f)
            .map_err(|e| format!("continue: cannot read parameters {}: {e}", f.display()))?
    };
    let v: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| format!("continue: parameters are not a JSON object: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("continue: parameters are not a JSON object")?;
    let params: Vec<(String, String)> = obj
        .iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect();
    let mut slot = run.continuation.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return Err("continue: the pipeline was already continued (once per pipeline)".into());
    }
    let n = params.len();
    // Relative to the project, as `--config` is.
    let rel = path
        .strip_prefix(workdir)
        .map(Path::to_path_buf)
        .unwrap_or(path.clone());
    *slot = Some(super::state::Continuation {
        path: rel,
        text,
        params,
    });
    Ok(format!(
        "continuation of {} with {n} parameters accepted; it runs after this workflow",
        path.display()
    ))
}

/// `checkout`: a clone of the repository at the pipeline's revision.
fn checkout(
    run: &Run<'_>,
    cx: &JobCx<'_>,
    workdir: &Path,
    path: Option<&str>,
) -> Result<String, String> {
    let target = match path {
        Some(p) => cx.resolve(p, workdir),
        None => workdir.to_path_buf(),
    };
    if target.exists() && std::fs::read_dir(&target).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "directory {} is not empty; checkout needs an empty directory",
            target.display()
        ));
    }
    let out = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks", "--"])
        .arg(&run.repo)
        .arg(&target)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("git clone: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git clone {} failed: {}\n  hint: `checkout` clones the repository at HEAD; commit what the job needs",
            run.repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(format!(
        "cloned {} at {}",
        run.repo.display(),
        &run.pipeline
            .revision
            .get(..12)
            .unwrap_or(&run.pipeline.revision)
    ))
}

/// `restore_cache`: the first key that matches, newest first.
fn restore_cache(
    run: &Run<'_>,
    cx: &mut JobCx<'_>,
    keys: &[String],
    v: &template::Vars<'_>,
) -> Result<String, String> {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| template::render(k, v).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let r = run
        .cache
        .restore(&keys, &cx.home, &|_| {})
        .map_err(|e| e.to_string())?;
    let line = super::cache::describe_restore(r.as_ref(), &keys);
    run.events.emit(
        "restore",
        serde_json::json!({
            "job": cx.job.name,
            "keys": keys,
            "hit": r.is_some(),
            "key": r.as_ref().map(|r| r.key.clone()),
            "match": r.as_ref().map(|r| r.how),
            "bytes": r.as_ref().map_or(0, |r| r.bytes),
        }),
    );
    cx.report.restores.push(line.clone());
    Ok(line)
}

/// `save_cache`: never overwrites; a missing path is skipped with a warning.
fn save_cache(
    run: &Run<'_>,
    cx: &mut JobCx<'_>,
    workdir: &Path,
    key: &str,
    paths: &[String],
    v: &template::Vars<'_>,
) -> Result<String, String> {
    let key = template::render(key, v).map_err(|e| e.to_string())?;
    let paths: Vec<PathBuf> = paths.iter().map(|p| cx.resolve(p, workdir)).collect();
    // As CircleCI: a path that does not exist is skipped with a
    // warning, never a failed job; with none left, nothing is saved.
    let (present, missing): (Vec<PathBuf>, Vec<PathBuf>) = paths
        .into_iter()
        .partition(|p| std::fs::symlink_metadata(p).is_ok());
    let mut warnings: String = missing
        .iter()
        .map(|p| {
            format!(
                "Warning: could not find path {}; skipping it\n",
                p.display()
            )
        })
        .collect();
    if present.is_empty() {
        warnings.push_str(&format!(
            "Skipping cache generation for {key}: none of its paths exist"
        ));
        return Ok(warnings);
    }
    let r = run
        .cache
        .save(&key, &cx.home, &present)
        .map_err(|e| e.to_string())?;
    let line = format!("{warnings}{}", r.describe(&key));
    run.events.emit(
        "save",
        serde_json::json!({"job": cx.job.name, "key": key, "outcome": r}),
    );
    cx.report.saves.push(line.clone());
    Ok(line)
}

/// `persist_to_workspace`: the matched paths, a layer of this job's.
fn persist_to_workspace(
    run: &Run<'_>,
    cx: &mut JobCx<'_>,
    workdir: &Path,
    root: &str,
    paths: &[String],
) -> Result<String, String> {
    let base = cx.resolve(root, workdir);
    let layer_dir = run.dir.join("workspace").join(&cx.job.name);
    let mut files = BTreeMap::new();
    let mut bytes = 0u64;
    for pat in paths {
        let matched = glob(&base, pat)?;
        if matched.is_empty() {
            return Err(format!(
                "the glob `{pat}` matched no file in {}",
                base.display()
            ));
        }
        for rel in matched {
            copy_tree(&base, &rel, &layer_dir, &mut files, &mut bytes)
                .map_err(|e| format!("persisting {}: {e}", rel.display()))?;
        }
    }
    cx.report.workspace_bytes += bytes;
    let n = files.len();
    let mut ws = run.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let entry = ws.entry(cx.job.name.clone()).or_default();
    for f in files.into_keys() {
        entry.insert(f, layer_dir.clone());
    }
    Ok(format!(
        "{}, {}",
        crate::report::count(n as u64, "file", "files"),
        human_bytes(bytes)
    ))
}

/// `store_artifacts`: a copy below the job's artifacts, never outside it.
fn store_artifacts(
    run: &Run<'_>,
    cx: &JobCx<'_>,
    workdir: &Path,
    i: usize,
    path: &str,
    destination: Option<&str>,
) -> Result<String, String> {
    let src = cx.resolve(path, workdir);
    let dest_root = run.dir.join("artifacts").join(&cx.job.name);
    let name = artifact_destination(destination, &src).map_err(|why| {
        format!(
            "store_artifacts (step {} of job {}): {why}\n  hint: a destination is a path \
             inside the job's artifacts, as on CircleCI (a leading `/` is dropped)",
            i + 1,
            cx.job.name
        )
    })?;
    let parent = src.parent().unwrap_or(Path::new("/")).to_path_buf();
    let rel = PathBuf::from(src.file_name().unwrap_or_default());
    let mut files = BTreeMap::new();
    let mut bytes = 0;
    let dest = dest_root.join(&name);
    let tmp = dest_root.join(format!(".step-{i}.tmp"));
    let _ = crate::fsutil::remove_all(&tmp);
    copy_tree(&parent, &rel, &tmp, &mut files, &mut bytes)
        .map_err(|e| format!("{}: {e}", src.display()))?;
    let _ = crate::fsutil::remove_all(&dest);
    if let Some(p) = dest.parent() {
        std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
    }
    std::fs::rename(tmp.join(&rel), &dest).map_err(|e| e.to_string())?;
    let _ = crate::fsutil::remove_all(&tmp);
    Ok(format!(
        "{} to {}",
        crate::report::count(files.len() as u64, "file", "files"),
        dest.display()
    ))
}

/// Where `store_artifacts` puts `src` below the job's artifacts dir: its
/// `destination` as a path in the job's artifact space (CircleCI's
/// "prefix added to the artifact paths": a leading `/` is dropped, `.`
/// ignored, `..` refused), else the file name of `src`. Never empty, so the
/// artifacts dir itself is never replaced, and never outside it.
fn artifact_destination(destination: Option<&str>, src: &Path) -> Result<PathBuf, String> {
    let Some(dest) = destination else {
        return match src.file_name() {
            Some(n) => Ok(PathBuf::from(n)),
            None => Err(format!(
                "path {} names no file or directory to store",
                src.display()
            )),
        };
    };
    let mut out = PathBuf::new();
    for part in dest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "destination `{dest}` holds `..`, which would leave the job's artifacts"
                ));
            }
            p => out.push(p),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!(
            "destination `{dest}` names no path inside the job's artifacts"
        ));
    }
    Ok(out)
}

/// Starts a `background: true` step in its own process group, output to
/// its log; returns the group, which the job ends when it ends.
fn start_background(
    command: &str,
    wd: &Path,
    env: &BTreeMap<String, String>,
    log: &Path,
) -> Result<i32, String> {
    std::fs::create_dir_all(log.parent().expect("logs dir")).map_err(|e| e.to_string())?;
    let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new("bash")
        .args(["-eo", "pipefail", "-c", command])
        .current_dir(wd)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start bash: {e}"))?;
    let pgid = child.id() as i32;
    // Reaped when the job ends it; dropping the handle does not wait.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    Ok(pgid)
}

/// Runs one `run` step: `bash -eo pipefail -c` (CircleCI's shell), stdin
/// closed, output logged and shown, in its own process group so a timeout
/// kills everything it started.
fn run_command(
    run: &Run<'_>,
    job: &str,
    command: &str,
    wd: &Path,
    env: &BTreeMap<String, String>,
    log: &Path,
    no_output_timeout: Duration,
) -> Result<String, String> {
    std::fs::create_dir_all(log.parent().expect("logs dir")).map_err(|e| e.to_string())?;
    let mut log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new("bash")
        .args(["-eo", "pipefail", "-c", command])
        .current_dir(wd)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start bash: {e}"))?;
    let pgid = child.id() as i32;
    let last_output = Arc::new(Mutex::new(Instant::now()));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut readers = Vec::new();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        let last = last_output.clone();
        readers.push(std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                *last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
                buf.clear();
            }
        }));
    }
    drop(tx);
    let mut timed_out = false;
    let status = loop {
        while let Ok(line) = rx.try_recv() {
            let _ = log_file.write_all(line.as_bytes());
            run.say(job, &format!("  {}", line.trim_end()));
        }
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if interrupted() {
            // SAFETY: kill(2) on the step's own process group.
            unsafe {
                libc::kill(-pgid, libc::SIGTERM);
            }
            std::thread::sleep(Duration::from_millis(200));
            // SAFETY: as above.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            let _ = child.wait();
            for r in readers {
                let _ = r.join();
            }
            return Err("interrupted".into());
        }
        let idle = last_output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if idle >= no_output_timeout {
            timed_out = true;
            // SAFETY: kill(2) on the step's own process group.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            break child.wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The shell may be gone while a background child still holds the pipes.
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    for r in readers {
        let _ = r.join();
    }
    while let Ok(line) = rx.try_recv() {
        let _ = log_file.write_all(line.as_bytes());
        run.say(job, &format!("  {}", line.trim_end()));
    }
    if timed_out {
        let msg = format!(
            "Too long with no output (exceeded {}): the step printed nothing for that long and was killed (log: {})",
            fmt_duration(no_output_timeout),
            log.display()
        );
        let _ = writeln!(log_file, "{msg}");
        return Err(msg);
    }
    if status.success() {
        Ok(String::new())
    } else {
        Err(format!(
            "exited with code {} (log: {})",
            status
                .code()
                .map_or_else(|| "signal".into(), |c| c.to_string()),
            log.display()
        ))
    }
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m0s"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::artifact_destination;
    use std::path::{Path, PathBuf};

    #[test]
    fn artifact_destinations_stay_in_the_artifact_space() {
        let src = Path::new("/w/out.txt");
        let ok = |d| artifact_destination(d, src).unwrap();
        assert_eq!(ok(None), PathBuf::from("out.txt"));
        assert_eq!(ok(Some("/abs/x")), PathBuf::from("abs/x"));
        assert_eq!(ok(Some("./a//b/")), PathBuf::from("a/b"));
        for bad in ["../x", "a/../../x", "a/..", "/", "", "."] {
            assert!(artifact_destination(Some(bad), src).is_err(), "{bad}");
        }
        assert!(artifact_destination(None, Path::new("/")).is_err());
    }
}
