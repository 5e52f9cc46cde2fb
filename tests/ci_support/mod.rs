//! Helpers shared by the `strata ci run` test files: a committed git
//! repository, and `ci run` through the binary with its own CI store.
#![allow(dead_code)]

use super::common::TestProject;
use std::path::Path;
use std::process::Command;

/// A git repository in a temp dir with `files` committed.
pub fn repo(files: &[(&str, &str)]) -> TestProject {
    let p = TestProject::new("");
    std::fs::remove_file(p.path("strata.toml")).unwrap();
    for (f, c) in files {
        p.write(f, c);
    }
    commit(p.root(), "init");
    p
}

/// Commits everything in `dir` (making it a repository on `main` first if
/// it is not one yet).
pub fn commit(dir: &Path, msg: &str) {
    if !dir.join(".git").exists() {
        git(dir, &["init", "-q", "-b", "main"]);
        // `ci run` keeps its runs (with their git checkouts) in .strata/,
        // which `strata init`'s .gitignore leaves out too: never commit it
        // (`git add` would warn about each embedded repository).
        std::fs::write(dir.join(".git/info/exclude"), "/.strata/\n").unwrap();
    }
    git(dir, &["add", "-A"]);
    git(
        dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            msg,
        ],
    );
}

/// `strata ci …` in `p` with its own CI store.
pub fn ci(p: &TestProject) -> assert_cmd::Command {
    let mut c = p.strata();
    c.env("STRATA_CI_STORE", p.path(".ci-store")).arg("ci");
    c
}

/// The stdout of a command that must succeed.
pub fn stdout(c: &mut assert_cmd::Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// `strata ci run ARGS` in `p` with its own CI store: (exit code, stdout, stderr).
pub fn ci_run(p: &TestProject, args: &[&str]) -> (i32, String, String) {
    let out = p
        .strata()
        .env("STRATA_CI_STORE", p.path(".ci-store"))
        .args(["ci", "run"])
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A dry run that must succeed: its stdout.
pub fn dry(p: &TestProject, args: &[&str]) -> String {
    let mut a = vec!["--dry-run"];
    a.extend_from_slice(args);
    let (code, out, err) = ci_run(p, &a);
    assert_eq!(code, 0, "{out}\n{err}");
    out
}

/// A dry run that must fail with usage-or-failure: its stderr.
pub fn dry_err(p: &TestProject, args: &[&str]) -> String {
    let mut a = vec!["--dry-run"];
    a.extend_from_slice(args);
    let (code, out, err) = ci_run(p, &a);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Every file named `name` under `dir`.
pub fn glob_files(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() && !ft.is_symlink() {
                todo.push(e.path());
            } else if e.file_name() == name {
                out.push(e.path());
            }
        }
    }
    out
}
