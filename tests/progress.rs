//! Live progress on a terminal: a download shows bytes, rate and time left,
//! and a build shows an overall line (modules done of total, running now).
//! Run under `script` (util-linux), which gives the binary a real pty.

mod common;
use common::{Reply, Server, TestProject, tarball};
use std::process::Command;
use std::time::Duration;

/// Runs `strata -C project build` on a pty and returns what it drew.
fn build_on_a_terminal(p: &TestProject) -> String {
    let bin = assert_cmd::cargo::cargo_bin("strata");
    let cmd = format!("'{}' -C '{}' build", bin.display(), p.root().display());
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .env("NO_COLOR", "1")
        .env("COLUMNS", "200")
        .output()
        .expect("`script` (util-linux/bsdutils) runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn a_terminal_sees_download_rate_time_left_and_the_overall_line() {
    let srv = Server::start();
    let p = TestProject::with_default(&["app"]);
    // Incompressible-ish content so the archive is as big as its files.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let blob: String = (0..40_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let tb = tarball("lib-1.0", &[("blob.txt", &blob)]);
    srv.route(
        "/lib.tar.gz",
        Reply::Slow(tb.clone(), 2048, Duration::from_millis(60)),
    );
    p.module(
        "lib",
        &srv.url("/lib.tar.gz"),
        &tb,
        "install = \"mkdir -p $STRATA_DESTDIR && cp blob.txt $STRATA_DESTDIR/\"",
    );
    p.local_module(
        "app",
        &[("a.txt", "A\n")],
        "depends = [\"lib\"]\ninstall = \"mkdir -p $STRATA_DESTDIR && cp a.txt $STRATA_DESTDIR/\"",
    );
    let screen = build_on_a_terminal(&p);
    // The download line: done / total (percent), rate, time left.
    let download = regex_lite(&screen, "fetch ", " left");
    assert!(download.contains(" / "), "{download}");
    assert!(download.contains("%)"), "{download}");
    assert!(download.contains("/s, "), "{download}");
    // The overall line counts modules and names the one running.
    assert!(screen.contains("/2 modules"), "{screen}");
    assert!(screen.contains("2/2 modules"), "{screen}");
    assert!(screen.contains("running: lib"), "{screen}");
    assert!(screen.contains("Finished 2 built"), "{screen}");
}

#[test]
fn without_a_terminal_progress_is_plain_lines() {
    let p = TestProject::with_default(&["m"]);
    p.local_module("m", &[("a.txt", "A\n")], "");
    let out = p.strata().arg("build").output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains('\x1b'), "{err:?}");
    assert!(!err.contains("modules running"), "{err}");
    assert!(!err.contains(" modules "), "{err}");
    assert!(err.contains("Finished 1 built"), "{err}");
}

#[test]
fn without_a_terminal_a_long_step_prints_a_heartbeat_with_its_log_size() {
    // CircleCI kills a step after 10 minutes without output: a long build
    // step says it is still running, what it is, and how much it logged.
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("a.txt", "A\n")],
        "build = \"echo compiling; sleep 2.5; echo linked\"",
    );
    let out = p
        .strata()
        .env("STRATA_HEARTBEAT", "1")
        .arg("build")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let beats: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("Running m build"))
        .collect();
    assert!(beats.len() >= 2, "{err}");
    assert!(beats[0].contains("1s, 10 B of log"), "{err}");
    // --json carries it as an event; STRATA_HEARTBEAT=0 turns it off.
    p.write(
        "modules/m.toml",
        p.read("modules/m.toml").replace("sleep 2.5", "sleep 1.5"),
    );
    let out = p
        .strata()
        .env("STRATA_HEARTBEAT", "0.5")
        .args(["--json", "build"])
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(events.contains("\"type\":\"step-running\""), "{events}");
    assert!(events.contains("\"log-bytes\":10"), "{events}");
    p.write(
        "modules/m.toml",
        p.read("modules/m.toml").replace("sleep 1.5", "sleep 1.4"),
    );
    let out = p
        .strata()
        .env("STRATA_HEARTBEAT", "0")
        .arg("build")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Running m"));
}

/// Ctrl-C's `^C` echo, written at the right edge where indicatif leaves the
/// cursor, wrapped onto a new line and left the top spinner line on the
/// screen: a live build turns ECHOCTL off on its terminal while it draws,
/// and gives it back afterwards.
#[test]
fn a_live_build_does_not_echo_control_keys_and_restores_the_terminal() {
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("a.txt", "A\n")],
        "build = \"stty -F /dev/tty -a > during.txt\"",
    );
    let bin = assert_cmd::cargo::cargo_bin("strata");
    let cmd = format!(
        "stty -a | grep -oE -- '-?echoctl'; '{}' -C '{}' build; stty -a | grep -oE -- '-?echoctl'",
        bin.display(),
        p.root().display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .env("NO_COLOR", "1")
        .output()
        .expect("`script` (util-linux/bsdutils) runs");
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{screen}");
    let during = p.read("build/m-1.0/during.txt");
    assert!(during.contains("-echoctl"), "{during}");
    // Before and after the build: the terminal's own setting (on).
    let off: Vec<bool> = screen
        .match_indices("echoctl")
        .map(|(at, _)| screen[..at].ends_with('-'))
        .collect();
    assert_eq!(off, [false, false], "{screen}");
}

/// The first piece of `s` that starts with `from` and runs to the end of
/// `to`, within one drawn line.
fn regex_lite(s: &str, from: &str, to: &str) -> String {
    for (at, _) in s.match_indices(from) {
        let rest = &s[at..];
        let line_end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        if let Some(end) = rest[..line_end].find(to) {
            return rest[..end + to.len()].to_string();
        }
    }
    panic!("no `{from}…{to}` in {s}");
}

#[test]
fn verbose_streams_a_commands_output_while_it_runs() {
    // -v: each line a command writes appears as it is written (a CI log
    // sees the build, not only heartbeats), prefixed with the module.
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("a.txt", "A\n")],
        "build = \"echo compiling; sleep 1.5; echo linked >&2; printf tail\"",
    );
    let mut child = p
        .raw()
        .env("STRATA_HEARTBEAT", "0")
        .args(["-v", "build"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first line arrives before the step ends.
    let err = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(err));
    let start = std::time::Instant::now();
    let first = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("m | "))
        .unwrap();
    assert_eq!(first, "m | compiling");
    assert!(start.elapsed().as_secs_f64() < 1.4, "{:?}", start.elapsed());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success());
    assert!(rest.contains(&"m | linked".to_string()), "{rest:?}");
    assert!(rest.contains(&"m | tail".to_string()), "{rest:?}");
    // Without -v, nothing of it.
    p.write(
        "modules/m.toml",
        p.read("modules/m.toml").replace("sleep 1.5", "sleep 0.1"),
    );
    let out = p.strata().arg("build").output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("m | "));
}
