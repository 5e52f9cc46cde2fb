//! No panic, no hang: closed output streams, huge manifest lines.

mod common;
use common::TestProject;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;
use wait_timeout::ChildExt;

/// Three modules that each take 2 s, so strata still has lines to print
/// after its reader has gone, however slowly the reader is scheduled.
fn noisy_project() -> TestProject {
    let p = TestProject::with_default(&["a", "b", "c"]);
    for m in ["a", "b", "c"] {
        p.local_module(
            m,
            &[("f", m)],
            "build = \"sleep 2; for i in $(seq 1 50); do echo line $i; done\"",
        );
    }
    p
}

/// `strata build 2>&1 | head -2`: strata exits quietly with 141 (a broken
/// pipe), prints no panic, and leaves no lock behind.
#[test]
fn a_closed_output_pipe_ends_the_run_quietly_and_releases_the_lock() {
    for args in [vec!["build"], vec!["plan"], vec!["-v", "build"]] {
        let p = noisy_project();
        let mut cmd = p.raw();
        cmd.args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        // Read nothing and close both pipes at once: every write fails.
        drop(child.stdout.take());
        let mut err = child.stderr.take().unwrap();
        let mut first = [0u8; 1];
        let _ = err.read(&mut first);
        drop(err);
        let status = child
            .wait_timeout(Duration::from_secs(60))
            .unwrap()
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("strata {args:?} hung after its output was closed")
            });
        assert_eq!(
            status.code(),
            Some(141),
            "{args:?}: exit {status:?} (101 would be a panic)"
        );
        // The lock was released: the next run proceeds and finishes.
        p.strata().arg("build").assert().success();
    }
}

/// A shell pipeline as a user writes it: `strata build 2>&1 | head -2`.
#[test]
fn build_piped_into_head_exits_141_without_a_panic() {
    let p = noisy_project();
    let bin = assert_cmd::cargo::cargo_bin("strata");
    let script = format!(
        "{} -v -C {} build 2>&1 | head -2 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        bin.display(),
        p.root().display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(code, "141", "strata exited {code}");
    p.strata().arg("build").assert().success();
}

/// An error past column 65,535 used to panic inside the diagnostic renderer.
#[test]
fn a_manifest_error_on_a_very_long_line_is_reported_not_a_panic() {
    let p = TestProject::with_default(&["m"]);
    let long = "a".repeat(70_000);
    p.write(
        "modules/m.toml",
        format!(
            "name = \"m\"\nversion = \"1\"\nurl = \"file://x.tar.gz\"\nsha256 = \"{}\"\nenv = {{ A = \"{long}\", B = 1 }}\n",
            "0".repeat(64)
        ),
    );
    let out = p.strata().arg("plan").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("modules/m.toml:5"), "{stderr}");
    assert!(stderr.contains("column 700"), "{stderr}");
    // Bounded: the 70k line itself is not dumped.
    assert!(stderr.len() < 10_000, "{} bytes of stderr", stderr.len());
}
