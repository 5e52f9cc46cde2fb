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
