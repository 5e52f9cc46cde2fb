//! Builds through a shared remote cache on a real S3-compatible server
//! (moto): a warm remote makes a fresh clone build nothing, a flipped bit
//! is caught, a dying remote only warns, concurrent pushers stay valid.
//! The store-level contract (create-only races, conformance, gc, listing,
//! credentials): store_conformance.rs.

mod common;
mod moto_support;

use common::*;
use moto_support::{Moto, aws_env};
use std::process::Stdio;
use strata::store::S3Store;

/// a → b → c over HTTP (so upstream downloads are counted), remote = moto.
fn project(srv: &Server, moto: &Moto, b_build: &str) -> TestProject {
    let p = TestProject::new(&format!(
        "[project]\nname = \"t\"\n[cache]\nremote = \"s3://strata/team\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n[target.default]\nmodules = [\"c\"]\n",
        moto.url("")
    ));
    for (m, dep, build) in [("a", "", "true"), ("b", "a", b_build), ("c", "b", "true")] {
        let tb = tarball(&format!("{m}-1.0"), &[("f", &format!("{m}\n"))]);
        srv.route(&format!("/{m}.tar.gz"), Reply::Ok(tb.clone()));
        let deps = if dep.is_empty() {
            String::new()
        } else {
            format!("depends = [\"{dep}\"]")
        };
        p.module(
            m,
            &srv.url(&format!("/{m}.tar.gz")),
            &tb,
            &format!("{deps}\nbuild = \"{build}\"\ninstall = \"mkdir -p $STRATA_DESTDIR/out && cat f $STRATA_SYSROOT/out/* > $STRATA_DESTDIR/out/{m} 2>/dev/null || cp f $STRATA_DESTDIR/out/{m}\""),
        );
    }
    p
}

fn fresh_checkout(p: &TestProject) -> TestProject {
    checkout(p, &["modules/a.toml", "modules/b.toml", "modules/c.toml"])
}

fn build(p: &TestProject) -> (bool, String) {
    let out = aws_env(&mut p.strata())
        .args(["--json", "build"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_fresh_clone_with_a_warm_remote_builds_nothing_and_downloads_no_tarball() {
    let Some(moto) = Moto::start() else { return };
    let srv = Server::start();
    let p = project(&srv, &moto, "true");
    let (ok, out) = build(&p);
    assert!(ok, "{out}");
    let expected = p.read("install/out/c");
    let before = srv.requests().len();
    // A new checkout with an empty local cache (its own XDG_CACHE_HOME).
    let q = fresh_checkout(&p);
    let (ok, out) = build(&q);
    assert!(ok, "{out}");
    assert!(
        TestProject::modules_with(&out, "module-built").is_empty(),
        "{out}"
    );
    assert_eq!(
        TestProject::modules_with(&out, "module-restored"),
        ["a", "b", "c"]
    );
    assert_eq!(
        srv.requests().len(),
        before,
        "upstream was asked: {:?}",
        srv.requests()
    );
    assert!(!out.contains("\"warning\""), "{out}");
    let stats = aws_env(&mut q.strata())
        .args(["--json", "cache", "stats"])
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["data"]["remote-hits"], 3, "{stats}");
    assert_eq!(stats["data"]["misses"], 0, "{stats}");
    assert!(
        stats["data"]["bytes-downloaded"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert_eq!(q.read("install/out/c"), expected);
    // Remote hits were written back to the local store.
    let local = snapshot(&q.path(".xdg-cache/strata/v1"));
    assert_eq!(local.keys().filter(|k| k.ends_with(".json")).count(), 3);
    // One patch-like change: only that module and its dependents are rebuilt.
    q.write(
        "modules/b.toml",
        q.read("modules/b.toml")
            .replace("build = \"true\"", "build = \"true; true\""),
    );
    let (ok, out) = build(&q);
    assert!(ok, "{out}");
    assert_eq!(TestProject::modules_with(&out, "module-built"), ["b", "c"]);
}

#[test]
fn a_bit_flipped_in_a_remote_object_is_detected_and_the_module_rebuilt() {
    let Some(moto) = Moto::start() else { return };
    let srv = Server::start();
    let p = project(&srv, &moto, "true");
    assert!(build(&p).0);
    for (name, _) in snapshot(&p.path(".xdg-cache/strata/v1"))
        .into_iter()
        .filter(|(k, _)| k.ends_with(".tar.zst"))
    {
        flip_remote_byte(&moto, &format!("team/v1/{name}"));
    }
    let q = fresh_checkout(&p);
    let (ok, out) = build(&q);
    assert!(ok, "{out}");
    assert!(out.contains("is corrupt"), "{out}");
    assert_eq!(
        TestProject::modules_with(&out, "module-built"),
        ["a", "b", "c"]
    );
    assert_eq!(q.read("install/out/c"), p.read("install/out/c"));
}

#[test]
fn the_remote_dying_mid_build_only_warns() {
    let Some(moto) = Moto::start() else { return };
    let srv = Server::start();
    // b's build kills the S3 server: a was pushed, b and c cannot be.
    // Commands get a clean environment: the pid goes into the command itself.
    let p = project(&srv, &moto, &format!("kill -9 {}", moto.pid()));
    let out = aws_env(&mut p.strata()).arg("build").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let warnings = err.lines().filter(|l| l.starts_with("warning:")).count();
    assert!((1..=4).contains(&warnings), "{err}");
    assert!(p.path("install/out/c").is_file());
}

#[test]
fn two_builds_pushing_the_same_keys_at_once_leave_valid_objects() {
    let Some(moto) = Moto::start() else { return };
    let srv = Server::start();
    let p = project(&srv, &moto, "true");
    let q = fresh_checkout(&p);
    let spawn = |t: &TestProject| {
        t.raw()
            .args(["-q", "build"])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut x, mut y) = (spawn(&p), spawn(&q));
    assert!(x.wait().unwrap().success() && y.wait().unwrap().success());
    let r = fresh_checkout(&p);
    let (ok, out) = build(&r);
    assert!(ok, "{out}");
    assert_eq!(
        TestProject::modules_with(&out, "module-restored"),
        ["a", "b", "c"],
        "{out}"
    );
    assert!(!out.contains("corrupt"), "{out}");
}

/// Overwrites an object with one bit flipped, with a signed S3 client.
fn flip_remote_byte(moto: &Moto, path: &str) {
    // SAFETY: the tests of this file only ever set these to the same values.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    let s3 = S3Store::new("s3://strata", Some(&moto.url("")), Some("us-east-1")).unwrap();
    let mut bytes = s3.get_object(path).unwrap().expect("the object exists");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    s3.put_object(path, &bytes).unwrap();
}

#[test]
fn with_imds_true_credentials_come_from_the_instance_metadata_service() {
    let Some(moto) = Moto::start() else { return };
    let imds = Server::start();
    imds.route("/latest/api/token", Reply::Ok(b"tok".to_vec()));
    imds.route(
        "/latest/meta-data/iam/security-credentials/",
        Reply::Ok(b"builder-role\n".to_vec()),
    );
    imds.route(
        "/latest/meta-data/iam/security-credentials/builder-role",
        Reply::Ok(
            br#"{"Code":"Success","AccessKeyId":"ASIAX","SecretAccessKey":"s","Token":"t"}"#
                .to_vec(),
        ),
    );
    let srv = Server::start();
    let p = project(&srv, &moto, "true");
    let toml = p
        .read("strata.toml")
        .replace("[cache]\n", "[cache]\nimds = true\n");
    p.write("strata.toml", toml);
    let out = p
        .strata()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", p.path(".home"))
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url(""))
        .args(["--json", "build"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("credentials"), "{err}");
    assert_eq!(
        imds.requests(),
        [
            "/latest/api/token",
            "/latest/meta-data/iam/security-credentials/",
            "/latest/meta-data/iam/security-credentials/builder-role"
        ],
        "asked once per run"
    );
    // What it pushed with those credentials is there for a fresh clone.
    let (ok, out) = build(&fresh_checkout(&p));
    assert!(ok, "{out}");
    assert_eq!(
        TestProject::modules_with(&out, "module-restored"),
        ["a", "b", "c"],
        "{out}"
    );
}
