//! End-to-end tests of the artifact cache (local store) through the binary.

mod common;

use common::*;

/// a → b, both served over HTTP so upstream downloads can be counted.
fn served_project(srv: &Server) -> TestProject {
    let p = TestProject::with_default(&["b"]);
    let ta = tarball(
        "a-1.0",
        &[("a.txt", "A\n"), ("tool.sh", "#!/bin/sh\necho tool\n")],
    );
    let tb = tarball("b-1.0", &[("b.txt", "B\n")]);
    srv.route("/a.tar.gz", Reply::Ok(ta.clone()));
    srv.route("/b.tar.gz", Reply::Ok(tb.clone()));
    p.module(
        "a",
        &srv.url("/a.tar.gz"),
        &ta,
        "keep = [\"tool.sh\"]\ninstall = \"mkdir -p $STRATA_DESTDIR/out && cp a.txt $STRATA_DESTDIR/out/a && ln -s a $STRATA_DESTDIR/out/a-link\"",
    );
    p.module(
        "b",
        &srv.url("/b.tar.gz"),
        &tb,
        "depends = [\"a\"]\nbuild = \"$STRATA_DEP_A_DIR/tool.sh > tool.out && cat $STRATA_SYSROOT/out/a-link b.txt tool.out > b.out\"\ninstall = \"mkdir -p $STRATA_DESTDIR/out && cp b.out $STRATA_DESTDIR/out/b\"",
    );
    p
}

/// A fresh checkout of `p` (its manifests only) that shares `p`'s cache.
fn fresh_checkout(p: &TestProject) -> TestProject {
    checkout(p, &["modules/a.toml", "modules/b.toml"])
}

#[test]
fn a_fresh_checkout_with_a_warm_cache_builds_nothing_and_downloads_nothing() {
    let srv = Server::start();
    let p = served_project(&srv);
    p.strata().arg("build").assert().success();
    let expected = p.read("install/out/b");
    assert_eq!(expected, "A\nB\ntool\n");
    let downloads = srv.requests().len();
    assert_eq!(downloads, 2);

    let q = fresh_checkout(&p);
    q.strata()
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .arg("plan")
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "a 1.0: will be restored from local store",
        ));
    let (ok, events, err) = build_with_cache(&q, &p);
    assert!(ok, "{err}");
    q.strata()
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .args(["cache", "stats"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "2 local hits, 0 remote hits, 0 misses",
        ));
    assert!(
        TestProject::modules_with(&events, "module-built").is_empty(),
        "{events}"
    );
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["a", "b"]
    );
    assert_eq!(
        srv.requests().len(),
        downloads,
        "an upstream tarball was downloaded"
    );
    assert!(!q.path("packages").exists());
    assert_eq!(q.read("install/out/b"), expected);
    // Symlinks and keep paths survive the round trip.
    assert_eq!(
        std::fs::read_link(q.path("install/out/a-link")).unwrap(),
        std::path::PathBuf::from("a")
    );
    assert!(q.path("build/a-1.0/tool.sh").is_file());
    // And the restored tree is fresh.
    let (_, events, _) = build_with_cache(&q, &p);
    assert_eq!(
        TestProject::modules_with(&events, "module-fresh"),
        ["a", "b"]
    );
    // A restored module still explains what changed since it was built.
    q.write(
        "modules/b.toml",
        q.read("modules/b.toml").replace("cp b.out", "cp -v b.out"),
    );
    q.strata()
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .args(["why", "b"])
        .assert()
        .success()
        .stdout(predicates::str::contains("install command changed"));
    let (ok, events, err) = build_with_cache(&q, &p);
    assert!(ok, "{err}");
    assert_eq!(TestProject::modules_with(&events, "module-built"), ["b"]);
    assert_eq!(q.read("install/out/b"), expected);
}

#[test]
fn artifacts_are_deterministic() {
    let srv = Server::start();
    let p = served_project(&srv);
    p.strata().arg("build").assert().success();
    let q = fresh_checkout(&p);
    q.strata().arg("build").assert().success();
    let archives = |t: &TestProject| {
        let mut v: Vec<(String, Vec<u8>)> = snapshot(&t.path(".xdg-cache/strata/v1"))
            .into_iter()
            .filter(|(k, _)| k.ends_with(".tar.zst"))
            .collect();
        v.sort();
        v
    };
    let (x, y) = (archives(&p), archives(&q));
    assert_eq!(x.len(), 2);
    assert_eq!(x, y, "two builds of the same inputs packed different bytes");
}

#[test]
fn a_corrupted_entry_is_detected_quarantined_and_the_module_rebuilt() {
    let srv = Server::start();
    let p = served_project(&srv);
    p.strata().arg("build").assert().success();
    let entries: Vec<String> = snapshot(&p.path(".xdg-cache/strata/v1"))
        .into_keys()
        .filter(|k| k.ends_with(".tar.zst"))
        .collect();
    for e in &entries {
        let path = p.path(&format!(".xdg-cache/strata/v1/{e}"));
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
    }
    let q = fresh_checkout(&p);
    let (ok, events, err) = build_with_cache(&q, &p);
    assert!(ok, "{err}");
    let warnings: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("\"type\":\"warning\""))
        .collect();
    assert_eq!(warnings.len(), 2, "{events}");
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("is corrupt") && w.contains("quarantined")),
        "{warnings:?}"
    );
    assert_eq!(
        TestProject::modules_with(&events, "module-built"),
        ["a", "b"]
    );
    assert_eq!(q.read("install/out/b"), "A\nB\ntool\n");
    let quarantined = std::fs::read_dir(p.path(".xdg-cache/strata/quarantine"))
        .unwrap()
        .count();
    assert_eq!(quarantined, 4, "archive and record of both entries");
    // The rebuilt modules were saved again, valid this time.
    p.strata()
        .args(["cache", "verify"])
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .assert()
        .success();
}

#[test]
fn cache_ls_and_verify_report_entries_and_corruption() {
    let srv = Server::start();
    let p = served_project(&srv);
    p.strata().arg("build").assert().success();
    let out = p.strata().args(["cache", "ls"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for m in ["a", "b"] {
        assert!(
            rows.iter()
                .any(|r| r.len() > 2 && r[1] == m && r[2] == "1.0"),
            "{text}"
        );
    }
    p.strata().args(["cache", "verify"]).assert().success();
    let entry = snapshot(&p.path(".xdg-cache/strata/v1"))
        .into_keys()
        .find(|k| k.ends_with(".tar.zst"))
        .unwrap();
    let path = p.path(&format!(".xdg-cache/strata/v1/{entry}"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&path, bytes).unwrap();
    p.strata()
        .args(["cache", "verify"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("CORRUPT"));
    // A killed writer leaves only a temp file, which is never read as an entry.
    let shard = path.parent().unwrap();
    std::fs::write(shard.join(".deadbeef.tar.zst.tmp-1"), b"partial").unwrap();
    let out = p.strata().args(["cache", "ls"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" 1.0 "))
            .count(),
        2
    );
}

#[test]
fn gc_removes_least_recently_used_entries_and_waits_for_running_builds() {
    let p = TestProject::with_default(&["m1", "m2", "m3", "m4"]);
    for m in ["m1", "m2", "m3", "m4"] {
        p.local_module(
            m,
            &[("f", m)],
            "install = \"mkdir -p $STRATA_DESTDIR/out && head -c 200000 /dev/urandom > $STRATA_DESTDIR/out/$STRATA_MODULE\"",
        );
    }
    p.strata().arg("build").assert().success();
    let v1 = p.path(".xdg-cache/strata/v1");
    let records: Vec<(String, std::path::PathBuf)> = snapshot(&v1)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".json"))
        .map(|(k, bytes)| {
            let info: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            (info["module"].as_str().unwrap().to_string(), v1.join(k))
        })
        .collect();
    assert_eq!(records.len(), 4);
    // Last use: m1 five days ago, m2 four, m3 three, m4 two.
    let now = filetime::FileTime::now().unix_seconds();
    for (module, path) in &records {
        let days: i64 = 6 - module[1..].parse::<i64>().unwrap();
        filetime::set_file_mtime(
            path,
            filetime::FileTime::from_unix_time(now - days * 86400, 0),
        )
        .unwrap();
    }
    // An orphan left by a killed writer.
    let shard = records[0].1.parent().unwrap().to_path_buf();
    std::fs::write(shard.join(".tmp-killed"), b"partial").unwrap();
    let listed = |p: &TestProject| {
        let out = p.strata().args(["cache", "ls"]).output().unwrap();
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    // Each entry is a bit over 200 kB: 450 kB keeps the two most recent.
    p.strata()
        .args(["cache", "gc", "--max-size", "450K"])
        .assert()
        .success();
    assert_eq!(listed(&p), ["m3", "m4"]);
    assert!(!shard.join(".tmp-killed").exists());
    p.strata().args(["cache", "verify"]).assert().success();
    p.strata()
        .args(["cache", "gc", "--max-age", "3d"])
        .assert()
        .success();
    assert_eq!(listed(&p), ["m4"]);

    // A running build holds the cache: gc waits for it.
    p.write(
        "modules/m1.toml",
        p.read("modules/m1.toml").replace(
            "install = \"",
            "install = \"touch $STRATA_BUILD_DIR/started; sleep 2; ",
        ),
    );
    let mut build = p
        .raw()
        .args(["-q", "build", "m1"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !p.path("build/m1-1.0/started").exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "build did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let gc = p
        .strata()
        .args(["cache", "gc", "--max-size", "0"])
        .output()
        .unwrap();
    assert!(gc.status.success());
    assert!(String::from_utf8_lossy(&gc.stderr).contains("Blocking: waiting for lock"));
    assert!(
        build.wait().unwrap().success(),
        "the build finished before gc ran"
    );
    assert!(listed(&p).is_empty());
}

#[test]
fn a_read_only_http_store_serves_a_fresh_checkout_and_is_never_pushed_to() {
    let srv = Server::start();
    let p = served_project(&srv);
    p.strata().arg("build").assert().success();
    // Any web server in front of a store directory is an HTTP store.
    for (rel, bytes) in snapshot(&p.path(".xdg-cache/strata/v1")) {
        srv.route(&format!("/cache/v1/{rel}"), Reply::Ok(bytes));
    }
    let tarballs = |s: &Server| {
        s.requests()
            .iter()
            .filter(|r| r.ends_with(".tar.gz"))
            .count()
    };
    let before = tarballs(&srv);
    let q = TestProject::new(&format!(
        "{}\n[cache]\nremote = \"{}\"\n",
        p.read("strata.toml"),
        srv.url("/cache")
    ));
    for m in ["a", "b"] {
        q.write(
            &format!("modules/{m}.toml"),
            p.read(&format!("modules/{m}.toml")),
        );
    }
    let out = q.strata().args(["--json", "build"]).output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{events}");
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["a", "b"]
    );
    assert_eq!(tarballs(&srv), before, "an upstream tarball was downloaded");
    assert_eq!(q.read("install/out/b"), p.read("install/out/b"));
    // A local change builds b locally and does not try to push to a read-only
    // store (a push would fail there and warn).
    q.write(
        "modules/b.toml",
        q.read("modules/b.toml").replace("> b.out", "> b.out; true"),
    );
    let out = q.strata().args(["--json", "build"]).output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{events}");
    assert_eq!(TestProject::modules_with(&events, "module-built"), ["b"]);
    assert!(!events.contains("\"warning\""), "{events}");
}

#[test]
fn cache_push_then_pull_lets_an_offline_checkout_build_nothing() {
    let srv = Server::start();
    let p = served_project(&srv);
    p.strata().arg("build").assert().success();
    let share = tempfile::tempdir().unwrap();
    let with_remote = format!(
        "{}\n[cache]\nremote = \"file://{}\"\n",
        p.read("strata.toml"),
        share.path().display()
    );
    // Built before the team had a remote: push what is built.
    p.write("strata.toml", &with_remote);
    p.strata().args(["cache", "push"]).assert().success();
    assert_eq!(
        snapshot(share.path())
            .keys()
            .filter(|k| k.ends_with(".json"))
            .count(),
        2
    );

    let q = fresh_checkout(&p);
    q.write("strata.toml", &with_remote);
    q.strata().args(["cache", "pull"]).assert().success();
    assert_eq!(
        snapshot(&q.path(".xdg-cache/strata/v1"))
            .keys()
            .filter(|k| k.ends_with(".json"))
            .count(),
        2
    );
    let out = q
        .strata()
        .args(["--json", "--offline", "build"])
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{events}");
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["a", "b"]
    );

    // Pushing a module that is not built at its current key is refused.
    q.write(
        "modules/b.toml",
        q.read("modules/b.toml").replace("> b.out", "> b.out; true"),
    );
    q.strata()
        .args(["cache", "push"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "module b is not built at its current key",
        ));
}

/// `cache ls` and `cache gc` count an entry's bytes the same way (records,
/// archives and unpacked trees): what ls says is on disk is what gc keeps.
#[test]
fn ls_and_gc_report_the_same_bytes_on_disk() {
    let p = TestProject::with_default(&["a", "b"]);
    for m in ["a", "b"] {
        p.local_module(
            m,
            &[("f", m)],
            "install = \"mkdir -p $STRATA_DESTDIR && head -c 5000 /dev/urandom > $STRATA_DESTDIR/$STRATA_MODULE\"",
        );
    }
    p.strata().arg("build").assert().success();
    // An entry's second restore makes its unpacked tree, which both count.
    for _ in 0..2 {
        p.strata().args(["clean", "--all"]).assert().success();
        p.strata().arg("build").assert().success();
    }
    assert_eq!(
        std::fs::read_dir(p.path(".xdg-cache/strata/v1/trees"))
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count(),
        2
    );
    let out = p.strata().args(["cache", "ls"]).output().unwrap();
    let ls = String::from_utf8_lossy(&out.stderr).into_owned();
    let on_disk = ls
        .split(" on disk in ")
        .next()
        .and_then(|s| s.split(", ").last())
        .unwrap_or_else(|| panic!("{ls}"))
        .to_string();
    let out = p
        .strata()
        .args(["cache", "gc", "--max-size", "1G"])
        .output()
        .unwrap();
    let gc = String::from_utf8_lossy(&out.stderr);
    assert!(
        gc.contains(&format!("2 entries ({on_disk} on disk) kept")),
        "ls: {ls}\ngc: {gc}"
    );
}
