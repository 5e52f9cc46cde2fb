//! Running a module's shell commands: `bash -euo pipefail`, stdin from
//! /dev/null, output to a log file, each child in its own process group so
//! that an interrupt can stop the whole command tree.
//!
//! A command gets exactly the environment it is handed (see
//! [`super::environment`]) and nothing of strata's own, the build's
//! jobserver descriptors, and umask 022, so that the files it creates do not
//! depend on the umask of whoever started strata.

use super::jobserver::Jobserver;
use super::sandbox::{self, Sandbox};
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// The shell every command runs in: the first `bash` on strata's own `PATH`
/// (found once), else `/bin/bash`.
fn bash() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join("bash"))
            .find(|p| p.is_absolute() && p.is_file())
            .unwrap_or_else(|| PathBuf::from("/bin/bash"))
    })
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn children() -> &'static Mutex<HashSet<i32>> {
    static C: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// Installs the Ctrl-C / SIGTERM handler: stop starting work, terminate the
/// running commands' process groups. Stamps of interrupted steps are never
/// written, so the next run resumes correctly.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(interrupt);
    // A closed stdout/stderr ends the run the same way (see `crate::output`).
    crate::output::on_close(interrupt);
}

/// Stops the run: no new work starts and the running commands' process
/// groups are terminated.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let pids: Vec<i32> = children()
        .lock()
        .map(|c| c.iter().copied().collect())
        .unwrap_or_default();
    for pid in pids {
        // SAFETY: kill(2) with a negative pid signals a process group we created.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
    }
}

/// Whether the user asked the run to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A command that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command ran and did not succeed (boxed: errors stay small).
    #[error("{0}")]
    Failed(Box<Failure>),
    /// The sandbox could not be made (or a mode could not be read).
    #[error("{0}")]
    Sandbox(String),
    #[error("could not run `{command}`: {source}")]
    Spawn { command: String, source: io::Error },
    #[error("interrupted")]
    Interrupted,
}

/// How a command that ran failed.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` {status}; last lines of {}:\n{tail}{}", log.display(), hint.as_deref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
pub struct Failure {
    pub command: String,
    pub status: String,
    pub log: PathBuf,
    pub tail: String,
    /// Set when the command ran in the sandbox (see [`sandbox::failure_hint`]).
    pub hint: Option<String>,
}

/// Runs `script` with bash in `cwd` in exactly the environment `env` (plus
/// the jobserver's `MAKEFLAGS`), writing all output to `log`; in `sandbox`
/// when given (`CommandError::Sandbox` when it cannot be made).
pub fn run(
    script: &str,
    cwd: &Path,
    env: &[(OsString, OsString)],
    jobserver: &Jobserver,
    log: &Path,
    sandbox: Option<Sandbox>,
) -> Result<(), CommandError> {
    if interrupted() {
        return Err(CommandError::Interrupted);
    }
    let spawn_err = |source| CommandError::Spawn {
        command: script.to_string(),
        source,
    };
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(spawn_err)?;
    }
    let out = File::create(log).map_err(spawn_err)?;
    let err = out.try_clone().map_err(spawn_err)?;
    // bash by absolute path: the command's PATH is its own, and strata's
    // must not decide which shell runs it.
    let mut cmd = Command::new(bash());
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    jobserver.configure(&mut cmd);
    // SAFETY: umask(2) is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let sandboxed = sandbox.as_ref().map(Sandbox::network);
    let report = sandbox.map(|s| s.install(&mut cmd)).transpose();
    let report = report.map_err(|e| CommandError::Sandbox(format!("cannot prepare it: {e}")))?;
    let spawned = cmd.spawn();
    // The child's end of the report pipe goes with the command.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Err(
                match report.as_ref().and_then(|r| sandbox::failure(r, &e)) {
                    Some(why) => CommandError::Sandbox(why),
                    None => spawn_err(e),
                },
            );
        }
    };
    let pid = child.id() as i32;
    children()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pid);
    let status = child.wait();
    children()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pid);
    let status = status.map_err(spawn_err)?;
    if interrupted() {
        return Err(CommandError::Interrupted);
    }
    if status.success() {
        return Ok(());
    }
    let status = match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => "was killed by a signal".to_string(),
    };
    let tail = tail(log, 30);
    Err(CommandError::Failed(Box::new(Failure {
        command: script.to_string(),
        status,
        log: log.to_path_buf(),
        hint: sandboxed.map(|network| sandbox::failure_hint(&tail, network)),
        tail,
    })))
}

/// The last `n` lines of a file, indented (bytes that are not UTF-8 shown
/// lossily; an empty log says so instead of showing nothing).
pub fn tail(path: &Path, n: usize) -> String {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return format!("    (cannot read the log: {e})"),
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        return "    (the command printed nothing)".to_string();
    }
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
