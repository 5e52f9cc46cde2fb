//! kill -9 while the cache is written or read: a partial entry is never
//! used, and the next run trusts nothing a killed one left.

mod common;

use common::*;

/// A module whose artifact is big enough (64 MiB of random bytes) that
/// packing and restoring take long enough to be killed in the middle.
fn big_project() -> TestProject {
    let p = TestProject::with_default(&["big"]);
    p.local_module(
        "big",
        &[("README", "big\n")],
        "install = \"mkdir -p $STRATA_DESTDIR/data && head -c 67108864 /dev/urandom > $STRATA_DESTDIR/data/blob && sha256sum $STRATA_DESTDIR/data/blob | cut -d' ' -f1 > $STRATA_DESTDIR/data/blob.sha256\"",
    );
    p
}

/// Starts `cmd`, waits until `appeared()` holds, then kills it with SIGKILL.
/// Returns whether the kill landed while the process was still running.
fn kill_when(cmd: &mut std::process::Command, appeared: impl Fn() -> bool) -> bool {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if appeared() {
            let running = child.try_wait().unwrap().is_none();
            child.kill().unwrap();
            child.wait().unwrap();
            return running;
        }
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            let _ = child.kill();
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn has_entry_starting(dir: &std::path::Path, pat: &str) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(pat))
        })
        .unwrap_or(false)
}

fn blob_is_whole(p: &TestProject) {
    let sum = p.read("install/data/blob.sha256");
    let actual = sha256(&std::fs::read(p.path("install/data/blob")).unwrap());
    assert_eq!(
        sum.trim(),
        actual,
        "the restored blob is not the one packed"
    );
}

#[test]
fn kill_9_while_packing_never_leaves_a_usable_partial_entry() {
    let p = big_project();
    // Packing writes its archive into build/.strata/tmp; kill as soon as it starts.
    let tmp = p.path("build/.strata/tmp");
    let caught = kill_when(p.raw().arg("build"), || {
        std::fs::read_dir(&tmp).is_ok_and(|mut rd| rd.next().is_some())
    });
    assert!(
        caught,
        "the build finished before the kill; make the blob bigger"
    );

    // Whatever the kill left, the store has no half entry: verify is clean.
    p.strata().args(["cache", "verify"]).assert().success();
    // The next build repairs everything by itself.
    p.strata().arg("build").assert().success();
    blob_is_whole(&p);
    p.strata().args(["cache", "verify"]).assert().success();

    // And the entry it saved restores correctly into a fresh checkout.
    let q = TestProject::new(&p.read("strata.toml"));
    q.write("modules/big.toml", p.read("modules/big.toml"));
    q.write(
        "mirror/big-1.0.tar.gz",
        std::fs::read(p.path("mirror/big-1.0.tar.gz")).unwrap(),
    );
    let (ok, events, err) = build_with_cache(&q, &p);
    assert!(ok, "{err}");
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["big"]
    );
    blob_is_whole(&q);
}

#[test]
fn kill_9_while_restoring_leaves_nothing_the_next_run_trusts() {
    let p = big_project();
    p.strata().arg("build").assert().success();
    let q = TestProject::new(&p.read("strata.toml"));
    q.write("modules/big.toml", p.read("modules/big.toml"));
    q.write(
        "mirror/big-1.0.tar.gz",
        std::fs::read(p.path("mirror/big-1.0.tar.gz")).unwrap(),
    );

    // A restore extracts into build/.big-1.0.tmp-<pid> and renames it into place.
    let build = q.path("build");
    let caught = kill_when(
        q.raw()
            .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
            .arg("build"),
        || has_entry_starting(&build, ".big-1.0.tmp-"),
    );
    assert!(
        caught,
        "the restore finished before the kill; make the blob bigger"
    );
    assert!(
        !q.path("build/.strata/modules/big-1.0/stamps/install.stamp")
            .exists(),
        "a killed restore must not leave a stamped module"
    );

    let (ok, events, err) = build_with_cache(&q, &p);
    assert!(ok, "{err}");
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["big"]
    );
    assert!(TestProject::modules_with(&events, "module-built").is_empty());
    blob_is_whole(&q);
    assert!(
        !has_entry_starting(&build, ".big-1.0.tmp-"),
        "the killed restore's temp dir was not cleaned up"
    );
    p.strata().args(["cache", "verify"]).assert().success();
}

/// Issue 16: a writer killed in `packages/.strata/verified/` (a stat record)
/// or in the store's root (`CACHEDIR.TAG`), both written by
/// `fsutil::write_atomic`, left a `.tmp-XXXXXX` that no later build or
/// `cache gc` removed.
#[test]
fn issue16_killed_writers_temp_files_are_swept_by_build_and_gc() {
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("README", "m\n")],
        "install = \"mkdir -p $STRATA_DESTDIR && cp README $STRATA_DESTDIR/\"",
    );
    let (code, _, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    let verified = p.path("packages/.strata/verified");
    let store = p.path(".xdg-cache/strata");
    assert!(store.join("CACHEDIR.TAG").is_file());
    // The store's root: what a build may add below it (trees) is not the point.
    let top = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let (verified_before, store_before) = (snapshot(&verified), top(&store));
    assert!(!verified_before.is_empty());
    // Named as tempfile names write_atomic's files: `.tmp-` + 6 random characters.
    let plant = || {
        std::fs::write(verified.join(".tmp-Ab3xYz"), "{\"sha256\":\"ab").unwrap();
        std::fs::write(store.join(".tmp-Qw7eRt"), "Signature: 8a47").unwrap();
    };
    plant();
    // A build that uses the store (the module restores from it) sweeps both.
    std::fs::remove_dir_all(p.path("build")).unwrap();
    let (code, _, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(snapshot(&verified), verified_before);
    assert_eq!(top(&store), store_before);
    plant();
    p.strata()
        .args(["cache", "gc", "--max-size", "10G"])
        .assert()
        .success();
    assert!(!store.join(".tmp-Qw7eRt").exists());
    assert_eq!(top(&store), store_before);
    assert!(store.join("CACHEDIR.TAG").is_file());
}

/// One system call of an `strace -f -y` log, in the order strace logged it
/// (a call another thread interrupted is joined with its resumption).
#[derive(Debug)]
struct Call {
    name: String,
    /// The paths it names: `-y` prints a descriptor as `7</abs/path>`,
    /// and path arguments are quoted strings.
    paths: Vec<String>,
}

/// Runs `cmd` under `strace -f -y` and returns its file-system calls.
fn traced(cmd: std::process::Command, trace: &std::path::Path) -> Vec<Call> {
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let out = std::process::Command::new("strace")
        .args(["-f", "-y", "-s", "4096", "-o"])
        .arg(trace)
        .args([
            "-e",
            "trace=fsync,fdatasync,syncfs,sync,rename,renameat,renameat2,unlink,unlinkat",
        ])
        .arg(program)
        .args(args)
        .envs(envs)
        .output()
        .expect("strace (Debian package strace) runs the build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(trace).unwrap();
    let mut pending: std::collections::HashMap<String, String> = Default::default();
    let mut calls = Vec::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let whole = if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid.to_string(), head.to_string());
            continue;
        } else if rest.starts_with("<... ") {
            let tail = rest.split_once("resumed>").map_or("", |(_, t)| t);
            format!("{}{tail}", pending.remove(pid).unwrap_or_default())
        } else {
            rest.to_string()
        };
        let Some((name, args)) = whole.split_once('(') else {
            continue;
        };
        let mut paths = Vec::new();
        let mut rest = args;
        while let Some(i) = rest.find(['<', '"']) {
            let close = if rest.as_bytes()[i] == b'<' { '>' } else { '"' };
            let Some(j) = rest[i + 1..].find(close) else {
                break;
            };
            paths.push(rest[i + 1..i + 1 + j].to_string());
            rest = &rest[i + 2 + j..];
        }
        if whole.contains(") = -1") {
            continue; // failed (a missing stamp unlinked): nothing happened
        }
        calls.push(Call {
            name: name.to_string(),
            paths,
        });
    }
    calls
}

/// Every regular file and directory under `dir` (relative; "" for `dir`).
fn tree_entries(dir: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, d: &std::path::Path, out: &mut Vec<String>) {
        out.push(d.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                walk(root, &e.path(), out);
            } else if t.is_file() {
                out.push(
                    e.path()
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// Where the first call satisfying `f` is, panicking with the log otherwise.
fn position(calls: &[Call], what: &str, f: impl Fn(&Call) -> bool) -> usize {
    calls
        .iter()
        .position(f)
        .unwrap_or_else(|| panic!("no {what} in the trace: {calls:#?}"))
}

/// Issue 20: the crash argument of a restore (`exec::cached::place`),
/// checked on the system calls a real restore makes, since a power loss
/// cannot be: every restored file and dir is fsynced before the install
/// stamp exists; the tree renames are made durable (their dirs fsynced)
/// before the stamp is renamed into place; stamps of replaced steps are
/// durably gone before any tree moves; `install/` is on disk before
/// `install.json` says so; and nothing syncs the whole filesystem.
#[test]
fn issue20_a_restore_fsyncs_what_it_wrote_before_its_stamp_and_nothing_else() {
    let p = TestProject::with_default(&["m"]);
    let module = |flag: &str| {
        format!(
            "env = {{ FLAG = \"{flag}\" }}\nkeep = [\"out\"]\n\
             build = \"mkdir -p out/sub && echo $FLAG > out/sub/o.txt\"\n\
             install = \"mkdir -p $STRATA_DESTDIR/bin $STRATA_DESTDIR/lib && echo a > $STRATA_DESTDIR/bin/a && echo b > $STRATA_DESTDIR/lib/b && ln -s a $STRATA_DESTDIR/bin/l\""
        )
    };
    p.local_module("m", &[("README", "m\n")], &module("one"));
    p.strata().arg("build").assert().success();
    let trace = p.path("trace");
    let state = "build/.strata/modules/m-1.0";
    let abs = |rel: &str| p.path(rel).to_string_lossy().into_owned();

    // A fresh checkout's first restore (from the archive).
    let q = checkout(&p, &["modules/m.toml", "mirror/m-1.0.tar.gz"]);
    let mut cmd = q.raw();
    cmd.env("XDG_CACHE_HOME", p.path(".xdg-cache")).arg("build");
    let calls = traced(cmd, &trace);
    let q_abs = |rel: &str| q.path(rel).to_string_lossy().into_owned();
    assert!(
        !calls.iter().any(|c| c.name == "syncfs" || c.name == "sync"),
        "a restore never syncs the whole filesystem: {calls:#?}"
    );
    let stamp = q_abs(&format!("{state}/stamps/install.stamp"));
    let stamped = position(&calls, "stamp rename", |c| {
        c.name.starts_with("rename") && c.paths.last() == Some(&stamp)
    });
    let synced_before = |i: usize| -> Vec<String> {
        calls[..i]
            .iter()
            .filter(|c| c.name == "fsync" || c.name == "fdatasync")
            .filter_map(|c| c.paths.first().cloned())
            .collect()
    };
    let synced = synced_before(stamped);
    // The stamp's own bytes, under its temp name (the rename's source).
    // (renameat names a dir fd, source, dir fd, target; rename two paths.)
    let from = &calls[stamped].paths;
    let from = &from[if from.len() == 4 { 1 } else { 0 }];
    assert!(synced.contains(from), "{from} not fsynced: {calls:#?}");
    // Every file and dir of both trees, under the names it was written at.
    let tmp = synced
        .iter()
        .find_map(|s| {
            let name = s.strip_prefix(&q_abs("build/"))?;
            name.starts_with(".m-1.0.tmp-")
                .then(|| q_abs(&format!("build/{}", name.split('/').next().unwrap())))
        })
        .unwrap_or_else(|| panic!("no file of the restore's temp dir fsynced: {calls:#?}"));
    for (final_dir, written_at) in [
        (q.path("build/m-1.0"), tmp.clone()),
        (
            q.path(&format!("{state}/destdir")),
            format!("{tmp}/.strata/destdir"),
        ),
    ] {
        let entries = tree_entries(&final_dir);
        assert!(entries.len() >= 3, "{entries:?}");
        for e in entries {
            let at = if e.is_empty() {
                written_at.clone()
            } else {
                format!("{written_at}/{e}")
            };
            assert!(
                synced.contains(&at),
                "{} was not fsynced before the stamp: {calls:#?}",
                final_dir.join(&e).display()
            );
        }
    }
    // The renames that put the trees in place, then their dirs' fsyncs,
    // then the stamp.
    let moved = position(&calls, "tree rename", |c| {
        c.name.starts_with("rename") && c.paths.last() == Some(&q_abs("build/m-1.0"))
    });
    for dir in ["build", "build/m-1.0", state] {
        let d = q_abs(dir);
        assert!(
            calls[moved..stamped]
                .iter()
                .any(|c| c.name == "fsync" && c.paths.first() == Some(&d)),
            "{dir} not fsynced between the tree's rename and the stamp's: {calls:#?}"
        );
    }
    // install/ is on disk before install.json says what it holds.
    let record = q_abs("build/.strata/install.json");
    let recorded = position(&calls, "install.json rename", |c| {
        c.name.starts_with("rename") && c.paths.last() == Some(&record)
    });
    let synced = synced_before(recorded);
    let merged = q.path("install");
    for e in tree_entries(&merged).into_iter().filter(|e| !e.is_empty()) {
        assert!(
            synced
                .iter()
                .any(|s| s.contains("/.install.tmp-") && s.ends_with(&format!("/{e}"))),
            "install/{e} was not fsynced before install.json: {calls:#?}"
        );
    }

    // A restore over another key's stamps (built at "two", then back to
    // "one", which the cache holds): those stamps are removed, and the
    // removal made durable, before any tree moves.
    p.write(
        "modules/m.toml",
        p.read("modules/m.toml").replace("one", "two"),
    );
    p.strata().arg("build").assert().success();
    p.write(
        "modules/m.toml",
        p.read("modules/m.toml").replace("two", "one"),
    );
    let mut cmd = p.raw();
    cmd.args(["--json", "build"]);
    let calls = traced(cmd, &trace);
    let stamps = abs(&format!("{state}/stamps"));
    let cleared = position(&calls, "old stamp removal", |c| {
        c.name.starts_with("unlink") && c.paths.last() == Some(&format!("{stamps}/install.stamp"))
    });
    let moved = position(&calls, "tree rename", |c| {
        c.name.starts_with("rename") && c.paths.last() == Some(&abs("build/m-1.0"))
    });
    assert!(cleared < moved, "{calls:#?}");
    assert!(
        calls[cleared..moved]
            .iter()
            .any(|c| c.name == "fsync" && c.paths.first() == Some(&stamps)),
        "the cleared stamps were not made durable before the tree moved: {calls:#?}"
    );
    assert_eq!(p.read("build/m-1.0/out/sub/o.txt"), "one\n");
}
