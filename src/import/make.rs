//! Evaluating a Heads tree with GNU make itself, one board at a time.
//!
//! Heads's modules are Make (`ifeq`, `define`, `$(eval $(call …))`,
//! `$(shell …)`), and the only exact evaluator of Make is GNU make, so strata
//! does not interpret it: it runs `make -f Makefile -f driver.mk BOARD=<b>
//! strata-print` and parses what the driver prints. The decision a reader
//! would question is the *farm* ([`Farm`]): Heads's Makefile creates
//! directories and writes files while it is parsed (`mkdir -p build/…`,
//! `hashes.txt`, `mktemp -d`), and auto-detects a prebuilt `crossgcc/`. So
//! make runs in a temporary copy of the tree, minus `build`, `install`,
//! `packages`, `crossgcc`, `.config` and `.git`: the tree is never written
//! to, and the result depends only on committed files. The farm's path is
//! then the placeholder for Heads's `$(pwd)`; `MAKE` and `MAKE_JOBS` are
//! overridden on the command line with placeholders too.

use super::error::ImportError;
use super::farm::Farm;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Stands for `$(MAKE)` in evaluated values.
pub const MAKE_PLACEHOLDER: &str = "@@STRATA_MAKE@@";
/// Stands for `$(MAKE_JOBS)` in evaluated values.
pub const JOBS_PLACEHOLDER: &str = "@@STRATA_MAKE_JOBS@@";

/// What make evaluated for one board.
#[derive(Debug, Clone, Default)]
pub struct BoardEval {
    pub board: String,
    /// `$(modules-y)` in Heads's order.
    pub modules_y: Vec<String>,
    /// `$(musl_dep)`: the toolchain module.
    pub musl_dep: String,
    pub arch: String,
    /// `$(coreboot_toolchain_module)`: the coreboot module whose tree
    /// builds the board's coreboot toolchain (empty without coreboot).
    pub coreboot_toolchain: String,
    /// `$(COREBOOT_TARGET)`: the toolchain's arch (`i386`, `ppc64`).
    pub coreboot_target: String,
    /// `CONFIG_*_CONFIG` variables: the board's config files.
    pub config_files: BTreeMap<String, String>,
    /// Per module: the variables define_module uses, expanded.
    pub modules: BTreeMap<String, BTreeMap<String, String>>,
    /// Top-level variables the board's image is assembled from
    /// (`initrd-y`, `CB_OUTPUT_FILE`, `bin_modules-y`, …).
    pub vars: BTreeMap<String, String>,
    /// The exported `CONFIG_` variables as `export NAME="value"` lines (what
    /// Heads writes into the initrd's `etc/config`).
    pub etc_config: Vec<String>,
}

/// A found, recent enough GNU make.
#[derive(Debug, Clone)]
pub struct Make {
    pub program: String,
    pub version: String,
}

impl Make {
    /// `$STRATA_MAKE` or `make`, checked to be GNU make 4.0 or newer.
    pub fn find() -> Result<Make, ImportError> {
        let program = std::env::var("STRATA_MAKE").unwrap_or_else(|_| "make".to_string());
        let out = Command::new(&program)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|source| ImportError::MakeMissing {
                make: program.clone(),
                source,
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text.lines().next().unwrap_or("").trim().to_string();
        let version = first.strip_prefix("GNU Make ").map(str::to_string);
        let major = version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.parse::<u32>().ok());
        match (version, major) {
            (Some(v), Some(m)) if m >= 4 && out.status.success() => Ok(Make {
                program,
                version: v,
            }),
            _ => Err(ImportError::MakeTooOld {
                make: program,
                found: if first.is_empty() {
                    "not GNU make".to_string()
                } else {
                    first
                },
            }),
        }
    }
}

/// The boards of a Heads tree: `boards/<b>/<b>.config`, sorted.
pub fn list_boards(heads: &Path) -> Result<Vec<String>, ImportError> {
    let dir = heads.join("boards");
    let mut boards = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(ImportError::io(&dir))? {
        let e = e.map_err(ImportError::io(&dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().join(format!("{name}.config")).is_file() {
            boards.push(name);
        }
    }
    boards.sort();
    Ok(boards)
}

/// Evaluates every board on a bounded pool of threads; each board's result
/// is its evaluation or the `$(error …)` (or other failure) make stopped with.
pub fn evaluate(
    make: &Make,
    farm: &Farm,
    boards: &[String],
) -> Vec<(String, Result<BoardEval, String>)> {
    let _ = std::fs::create_dir_all(farm.tmp());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8)
        .min(boards.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, Result<BoardEval, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(board) = boards.get(i) else { break };
                    let r = evaluate_board(make, farm, board);
                    results.lock().unwrap().push((board.clone(), r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
}

/// Heads's default board: the `BOARD` its Makefile evaluates to when none
/// is given (None when that evaluation fails).
pub fn default_board(make: &Make, farm: &Farm) -> Option<String> {
    let e = evaluate_board(make, farm, "").ok()?;
    (!e.board.is_empty()).then_some(e.board)
}

fn evaluate_board(make: &Make, farm: &Farm, board: &str) -> Result<BoardEval, String> {
    let pwd = farm.pwd();
    let root = pwd.parent().unwrap_or(&pwd).to_path_buf();
    let mut cmd = Command::new(&make.program);
    cmd.current_dir(&pwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &root)
        .env("LC_ALL", "C")
        .env("TMPDIR", farm.tmp())
        .env("GIT_CEILING_DIRECTORIES", &root)
        .arg("-r")
        .arg("-f")
        .arg("Makefile")
        .arg("-f")
        .arg(farm.driver())
        .args((!board.is_empty()).then(|| format!("BOARD={board}")))
        .arg(format!("pwd={}", pwd.display()))
        .arg(format!("MAKE={MAKE_PLACEHOLDER}"))
        .arg(format!("MAKE_JOBS={JOBS_PLACEHOLDER}"))
        .args([
            "CPUS=1",
            "LOADAVG=1",
            "AVAILABLE_MEM_GB=1",
            "MEM_PER_JOB_GB=1",
        ])
        // Heads's version stamps: host state (git), never part of a module.
        .args([
            "GIT_HASH=strata-import",
            "GIT_STATUS=clean",
            "HEADS_GIT_VERSION=strata-import",
            "GIT_TIMESTAMP=0",
            "GIT_IS_RELEASE=n",
        ])
        .arg("strata-print")
        .stdin(Stdio::null());
    let out = run_bounded(&mut cmd, board_timeout())
        .map_err(|e| format!("cannot run {}: {e}", make.program))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(make_error(&stderr).unwrap_or_else(|| {
            format!(
                "make exited with {}: {}",
                out.status,
                stderr.lines().last().unwrap_or("")
            )
        }));
    }
    let eval = parse(board, &stdout);
    if !stdout.contains("@@strata@@\tend") {
        return Err("the driver's output is incomplete".to_string());
    }
    Ok(eval)
}

/// How long one board's evaluation may take: `STRATA_IMPORT_TIMEOUT`
/// seconds, default 300 (a `$(shell …)` in a module file could hang).
fn board_timeout() -> Duration {
    let secs = std::env::var("STRATA_IMPORT_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// Runs `cmd` in its own process group, collecting its output; after
/// `limit` the whole group (make and its `$(shell …)` children) is killed.
fn run_bounded(cmd: &mut Command, limit: Duration) -> std::io::Result<Output> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if start.elapsed() > limit {
            // SAFETY: kill(2) on the process group we created; no memory involved.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            // Returns once every process holding the pipes is gone.
            let _ = (t_out.join(), t_err.join());
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no result after {} s (killed; raise STRATA_IMPORT_TIMEOUT if the tree is that slow)",
                    limit.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    })
}

/// The message of make's `*** … Stop.` line, with the farm path dropped.
pub fn make_error(stderr: &str) -> Option<String> {
    let line = stderr.lines().rev().find(|l| l.contains("*** "))?;
    let msg = line.split_once("*** ")?.1;
    let msg = msg.strip_suffix("  Stop.").unwrap_or(msg);
    let msg = msg.strip_suffix('.').unwrap_or(msg);
    Some(msg.trim().to_string())
}

/// Reverses the driver's escaping (`\\`, `\t`, `\n`).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// Parses the driver's lines (everything else make printed is ignored).
pub fn parse(board: &str, stdout: &str) -> BoardEval {
    let mut e = BoardEval {
        board: board.to_string(),
        ..Default::default()
    };
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("@@strata@@\t") else {
            continue;
        };
        let parts: Vec<&str> = rest.splitn(4, '\t').collect();
        if parts.len() < 4 {
            continue;
        }
        if parts[0] == "etc-config" {
            e.etc_config.push(parts[3].to_string());
            continue;
        }
        let value = unescape(parts[3]);
        if e.board.is_empty() && parts[0] == "board" {
            e.board = parts[1].to_string();
        }
        match parts[0] {
            "var" => {
                e.vars.insert(parts[2].to_string(), value);
            }
            "board" => match parts[2] {
                "modules-y" => e.modules_y = value.split_whitespace().map(str::to_string).collect(),
                "musl_dep" => e.musl_dep = value.trim().to_string(),
                "CONFIG_TARGET_ARCH" => e.arch = value.trim().to_string(),
                "coreboot_toolchain_module" => e.coreboot_toolchain = value.trim().to_string(),
                "COREBOOT_TARGET" => e.coreboot_target = value.trim().to_string(),
                _ => {}
            },
            "param" if !value.trim().is_empty() => {
                e.config_files
                    .insert(parts[2].to_string(), value.trim().to_string());
            }
            "module" => {
                e.modules
                    .entry(parts[1].to_string())
                    .or_default()
                    .insert(parts[2].to_string(), value);
            }
            _ => {}
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hanging_evaluation_is_killed_with_its_children() {
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 30 & sleep 30"]);
        let start = Instant::now();
        let e = run_bounded(&mut c, Duration::from_millis(300)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        // The pipes closed: the background sleep died with the group.
        assert!(start.elapsed() < Duration::from_secs(10));
        let ok = run_bounded(Command::new("echo").arg("hi"), Duration::from_secs(10)).unwrap();
        assert_eq!(ok.stdout, b"hi\n");
    }

    #[test]
    fn unescape_reverses_the_driver() {
        assert_eq!(unescape(r"a\\tb\tc\nd\\"), "a\\tb\tc\nd\\");
    }

    #[test]
    fn make_error_takes_the_message() {
        let e = "Makefile:12: modules/x:3: *** board x needs y.  Stop.\n";
        assert_eq!(make_error(e).unwrap(), "board x needs y");
        assert!(make_error("all fine").is_none());
    }

    #[test]
    fn parse_reads_fields_with_tabs() {
        let out = "noise\n@@strata@@\tboard\tb\tmodules-y\tz a\n@@strata@@\tmodule\tz\tconfigure\tx\\ty\\nz\n";
        let e = parse("b", out);
        assert_eq!(e.modules_y, ["z", "a"]);
        assert_eq!(e.modules["z"]["configure"], "x\ty\nz");
    }
}
