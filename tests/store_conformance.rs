//! The `Store` contract on every backend against real servers: create-only
//! puts under a race (local dir, moto S3), the same reads and writes on
//! each, a read-only HTTP mirror of a store dir, remote gc, CI caches on
//! S3, instance-metadata credentials and paginated listings.

mod common;
mod moto_support;

use common::*;
use moto_support::{Moto, aws_env};
use std::path::Path;
use strata::artifact::{ArtifactInfo, CACHE_FORMAT, blake3_file};
use strata::store::{LocalStore, S3Store, Store};

fn info_for(archive: &Path, key: &str) -> ArtifactInfo {
    ArtifactInfo {
        format: CACHE_FORMAT.into(),
        module: "m".into(),
        version: "1".into(),
        key: key.into(),
        strata_version: "test".into(),
        size: std::fs::metadata(archive).unwrap().len(),
        files: 1,
        blake3: blake3_file(archive).unwrap(),
        created: 0,
        signatures: vec![],
        ci: None,
    }
}

/// Two writers race on one key with different bytes: exactly one wins, and
/// the record always matches the archive it names.
fn create_only_race(store: &(dyn Store + Sync)) {
    let dir = tempfile::tempdir().unwrap();
    let key = "ab".repeat(32);
    let writers: Vec<(ArtifactInfo, std::path::PathBuf)> = (0..2)
        .map(|i| {
            let path = dir.path().join(format!("w{i}"));
            std::fs::write(&path, format!("writer {i} ").repeat(1000)).unwrap();
            (info_for(&path, &key), path)
        })
        .collect();
    let created: Vec<bool> = std::thread::scope(|s| {
        let hs: Vec<_> = writers
            .iter()
            .map(|(info, path)| s.spawn(move || store.put(info, path).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
    let winner = store.lookup(&key).unwrap().unwrap();
    let got = dir.path().join("got");
    store.fetch(&winner, &got, &|_| {}).unwrap();
    assert_eq!(blake3_file(&got).unwrap(), winner.blake3);
    assert!(writers.iter().any(|(i, _)| *i == winner));
}

#[test]
fn local_store_puts_are_create_only_under_a_race() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..20 {
        let store = LocalStore::new(dir.path().join(format!("s{}", rand_suffix())));
        create_only_race(&store);
    }
}

#[test]
fn s3_puts_are_create_only_under_a_race() {
    let Some(moto) = Moto::start() else { return };
    // SAFETY: set before any thread of this test reads the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    for i in 0..5 {
        let store = S3Store::new(
            &format!("s3://strata/race{i}"),
            Some(&moto.url("")),
            Some("us-east-1"),
        )
        .unwrap();
        create_only_race(&store);
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

// ---------------------------------------------------------------------------
// One conformance suite over every Store backend: what the build relies on,
// checked the same way against local, file:// share, S3 and read-only HTTP.

/// An archive with `n` distinct bytes and its record under a fresh key.
fn sample(dir: &Path, n: usize) -> (ArtifactInfo, std::path::PathBuf) {
    let path = dir.join(format!("sample{n}"));
    std::fs::write(&path, format!("sample {n} ").repeat(500 + n)).unwrap();
    let key = blake3::hash(format!("key {n} {}", rand_suffix()).as_bytes())
        .to_hex()
        .to_string();
    (info_for(&path, &key), path)
}

/// What every store does on reads: a missing key is a miss (not an error),
/// a present one returns its exact record and bytes.
fn conformance_reads(store: &dyn Store, entries: &[(ArtifactInfo, std::path::PathBuf)]) {
    let what = store.describe();
    assert!(
        store.lookup(&"0".repeat(64)).unwrap().is_none(),
        "{what}: a missing key must be a miss"
    );
    let dir = tempfile::tempdir().unwrap();
    for (info, path) in entries {
        let got = store.lookup(&info.key).unwrap();
        assert_eq!(got.as_ref(), Some(info), "{what}: record of {}", info.key);
        let dest = dir.path().join("fetched");
        let last = std::sync::atomic::AtomicU64::new(0);
        let calls = std::sync::atomic::AtomicU64::new(0);
        store
            .fetch(info, &dest, &|done| {
                use std::sync::atomic::Ordering::SeqCst;
                assert!(
                    done >= last.swap(done, SeqCst),
                    "{what}: progress went backwards"
                );
                calls.fetch_add(1, SeqCst);
            })
            .unwrap();
        assert_eq!(
            last.into_inner(),
            info.size,
            "{what}: progress must end at the archive's size"
        );
        assert!(calls.into_inner() >= 1);
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            std::fs::read(path).unwrap(),
            "{what}: fetched bytes differ"
        );
    }
}

/// What every writable store does on writes: create-only puts, list, remove,
/// and a race between two writers leaving one consistent entry.
fn conformance_writes(store: &(dyn Store + Sync)) {
    let what = store.describe();
    assert!(store.writable(), "{what}");
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 1);
    let b = sample(dir.path(), 2);
    assert!(store.put(&a.0, &a.1).unwrap(), "{what}: first put creates");
    assert!(
        !store.put(&a.0, &a.1).unwrap(),
        "{what}: second put is a no-op"
    );
    // Same key, other bytes: refused, and the first entry stays intact.
    let other = dir.path().join("other");
    std::fs::write(&other, "other bytes").unwrap();
    assert!(
        !store.put(&info_for(&other, &a.0.key), &other).unwrap(),
        "{what}"
    );
    assert!(store.put(&b.0, &b.1).unwrap());
    conformance_reads(store, &[a.clone(), b.clone()]);

    let listed: Vec<String> = store.list().unwrap().into_iter().map(|i| i.key).collect();
    assert!(
        listed.contains(&a.0.key) && listed.contains(&b.0.key),
        "{what}: {listed:?}"
    );

    store.remove(&a.0.key).unwrap();
    assert!(
        store.lookup(&a.0.key).unwrap().is_none(),
        "{what}: removed entry still found"
    );
    store.remove(&a.0.key).unwrap();
    conformance_reads(store, &[b]);
    create_only_race(store);
}

#[test]
fn conformance_local_store() {
    let dir = tempfile::tempdir().unwrap();
    conformance_writes(&LocalStore::new(dir.path().join("store")));
}

#[test]
fn conformance_s3_store() {
    let Some(moto) = Moto::start() else { return };
    // SAFETY: set before any thread of this test reads the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    let store = S3Store::new(
        "s3://strata/conformance",
        Some(&moto.url("")),
        Some("us-east-1"),
    )
    .unwrap();
    conformance_writes(&store);
}

#[test]
fn conformance_http_store_reads_what_a_web_server_serves_from_a_store_dir() {
    // Fill a store directory, then serve exactly its files over HTTP.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let local = LocalStore::new(root.clone());
    let entries: Vec<_> = (1..=3).map(|n| sample(dir.path(), n)).collect();
    for (info, path) in &entries {
        assert!(local.put(info, path).unwrap());
    }
    let srv = Server::start();
    for (rel, bytes) in snapshot(&root) {
        srv.route(&format!("/cache/{rel}"), Reply::Ok(bytes));
    }
    let store = strata::store::HttpStore::new(&srv.url("/cache"));
    assert!(!store.writable());
    conformance_reads(&store, &entries);
    assert!(
        store.put(&entries[0].0, &entries[0].1).is_err(),
        "an HTTP store is read-only"
    );
    assert!(
        store.remove(&entries[0].0.key).is_err(),
        "an HTTP store is read-only"
    );
}

#[test]
fn remote_gc_prunes_the_bucket_oldest_upload_first() {
    let Some(moto) = Moto::start() else { return };
    // SAFETY: set before any thread of this test reads the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    let url = "s3://strata/gc";
    let store = S3Store::new(url, Some(&moto.url("")), Some("us-east-1")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut entries = Vec::new();
    for n in 1..=4 {
        let (mut info, path) = sample(dir.path(), n);
        info.created = 1_000 * n as u64; // uploaded in order 1, 2, 3, 4
        assert!(store.put(&info, &path).unwrap());
        entries.push((info, path));
    }
    let keep_two: u64 = entries[2..].iter().map(|e| e.0.size).sum();
    let p = TestProject::new(&format!(
        "[project]\nname = \"t\"\ncache-version = \"1\"\n\n[cache]\nremote = \"{url}\"\nendpoint = \"{}\"\n",
        moto.url("")
    ));
    aws_env(&mut p.strata())
        .args([
            "cache",
            "gc",
            "--remote",
            "--max-size",
            &keep_two.to_string(),
        ])
        .assert()
        .success()
        .stderr(predicates::str::contains("Removed 2 entries"));
    let left: Vec<String> = store.list().unwrap().into_iter().map(|i| i.key).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&entries[2].0.key) && left.contains(&entries[3].0.key));
    conformance_reads(&store, &entries[2..]);
}

#[test]
fn ci_caches_work_on_s3_and_exact_keys_on_a_read_only_http_mirror() {
    let Some(moto) = Moto::start() else { return };
    let p = TestProject::new("");
    std::fs::remove_file(p.path("strata.toml")).unwrap();
    p.write("deps/lib.txt", "v1\n");
    let ci = |args: &[&str]| {
        let mut c = p.strata();
        aws_env(&mut c)
            .env("AWS_ENDPOINT_URL", moto.url(""))
            .args(["ci", "--store", "s3://strata/ci"])
            .args(args);
        c
    };
    ci(&["save", "--key", "deps-a", "deps"]).assert().success();
    p.write("deps/lib.txt", "v2\n");
    ci(&["save", "--key", "deps-b", "deps"]).assert().success();
    ci(&["save", "--key", "deps-b", "deps"])
        .assert()
        .success()
        .stdout(predicates::str::contains("already exists"));
    std::fs::remove_dir_all(p.path("deps")).unwrap();
    ci(&["restore", "--key", "deps-"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "Restored cache `deps-b` (prefix match of `deps-`)",
        ));
    assert_eq!(p.read("deps/lib.txt"), "v2\n");

    // The same entries in a directory store, served read-only over HTTP.
    let dir_store = p.path("dir-store");
    let local = |args: &[&str]| {
        let mut c = p.strata();
        c.args(["ci", "--store"]).arg(&dir_store).args(args);
        c
    };
    local(&["save", "--key", "deps-b", "deps"])
        .assert()
        .success();
    let srv = Server::start();
    for (rel, bytes) in snapshot(&dir_store) {
        srv.route(&format!("/mirror/{rel}"), Reply::Ok(bytes));
    }
    std::fs::remove_dir_all(p.path("deps")).unwrap();
    let http = |args: &[&str]| {
        let mut c = p.strata();
        c.args(["ci", "--store", &srv.url("/mirror")]).args(args);
        c
    };
    http(&["restore", "--key", "nope", "--key", "deps-b"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "Restored cache `deps-b` (exact match",
        ));
    assert_eq!(p.read("deps/lib.txt"), "v2\n");
    // Prefix matching needs a listing, which plain HTTP has not: a clear error.
    http(&["restore", "--key", "deps-"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("cannot be listed"));
}

#[test]
fn s3_listing_follows_continuation_tokens() {
    let Some(moto) = Moto::start() else { return };
    // SAFETY: set before any thread of this test reads the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    let store = S3Store::new("s3://strata/pages", Some(&moto.url("")), Some("us-east-1"))
        .unwrap()
        .with_page_size(2);
    let dir = tempfile::tempdir().unwrap();
    let mut keys: Vec<String> = (1..=5)
        .map(|n| {
            let (info, path) = sample(dir.path(), n);
            assert!(store.put(&info, &path).unwrap());
            info.key
        })
        .collect();
    // 5 records + 5 archives, two keys a page: five pages.
    let mut listed: Vec<String> = store.list().unwrap().into_iter().map(|i| i.key).collect();
    keys.sort();
    listed.sort();
    assert_eq!(listed, keys);
}
