//! Fixed-output modules (Nix's fixed-output derivations): a module whose
//! installed files are pinned by sha256 may download in its own commands
//! (`network = true`); its key is its pins, and its install is checked
//! against them. The vendor file comes from a 127.0.0.1 server and is
//! transformed, as Heads's blob scripts download and clean an ME image.

mod common;

use common::*;
use predicates::str::contains;

const VENDOR: &[u8] = b"vendor image, not yet cleaned\n";

/// What the module's script makes of `VENDOR`: upper case.
fn cleaned() -> Vec<u8> {
    VENDOR.to_ascii_uppercase()
}

/// A project whose default target builds `blob`, which downloads the vendor
/// file from `srv` and transforms it into `blobs/me.bin`, pinned by `pin`.
fn project(srv: &Server, pin: &str, script: &str) -> TestProject {
    srv.route("/vendor.exe", Reply::Ok(VENDOR.to_vec()));
    let p = TestProject::with_default(&["blob"]);
    p.write(
        "modules/blob.toml",
        format!(
            "name = \"blob\"\nversion = \"1\"\nsource = \"none\"\nnetwork = true\n\
             outputs = {{ \"blobs/me.bin\" = \"{pin}\" }}\n\
             build = \"curl -fsS -o vendor.exe {url} && {script}\"\n\
             install = \"mkdir -p $STRATA_DESTDIR/blobs && cp me.bin $STRATA_DESTDIR/blobs/\"\n",
            url = srv.url("/vendor.exe"),
        ),
    );
    p
}

const UPPER: &str = "tr a-z A-Z < vendor.exe > me.bin";

fn build(p: &TestProject) -> assert_cmd::assert::Assert {
    p.strata()
        .env("STRATA_SANDBOX", "require")
        .arg("build")
        .assert()
}

#[test]
fn a_pinned_download_in_the_sandbox_with_the_network_is_built_and_installed() {
    let srv = Server::start();
    let p = project(&srv, &sha256(&cleaned()), UPPER);
    build(&p).success();
    assert_eq!(
        std::fs::read(p.path("install/blobs/me.bin")).unwrap(),
        cleaned()
    );
    assert_eq!(srv.requests().len(), 1, "{:?}", srv.requests());
    // The filesystem is still read-only outside its own dirs.
    let q = project(
        &srv,
        &sha256(&cleaned()),
        &format!("{UPPER} && touch /usr/strata-fod-probe"),
    );
    build(&q)
        .failure()
        .stderr(contains("Read-only file system"));
}

#[test]
fn a_wrong_pin_fails_naming_module_file_and_both_sums_and_nothing_is_cached() {
    let srv = Server::start();
    let wrong = sha256(b"something else");
    let p = project(&srv, &wrong, UPPER);
    build(&p)
        .failure()
        .stderr(contains("module blob"))
        .stderr(contains("output blobs/me.bin"))
        .stderr(contains(sha256(&cleaned())))
        .stderr(contains(&wrong))
        .stderr(contains("modules/blob.toml"))
        .stderr(contains("nothing was cached or installed"));
    assert!(!p.path("install/blobs/me.bin").exists());
    // Nothing in the cache: a checkout with the same pin and no server
    // has to run the script (and fails the same way, not from the cache).
    let q = checkout(&p, &["modules/blob.toml"]);
    drop(srv);
    let (ok, _, err) = build_with_cache(&q, &p);
    assert!(!ok, "{err}");
    assert!(!err.contains("restored"), "{err}");
    assert!(
        std::fs::read_dir(p.path("build/.strata/modules/blob-1/destdir"))
            .unwrap()
            .next()
            .is_none(),
        "a failed fixed-output install leaves its destdir empty"
    );
}

#[test]
fn an_undeclared_or_missing_output_fails() {
    let srv = Server::start();
    let pin = sha256(&cleaned());
    let p = project(&srv, &pin, UPPER);
    let file = p.read("modules/blob.toml");
    p.write(
        "modules/blob.toml",
        file.replace("blobs/\"", "blobs/ && echo x > $STRATA_DESTDIR/extra\""),
    );
    build(&p).failure().stderr(contains(
        "installed extra, which modules/blob.toml does not pin",
    ));
    let q = TestProject::with_default(&["blob"]);
    q.write(
        "modules/blob.toml",
        format!(
            "name = \"blob\"\nversion = \"1\"\nsource = \"none\"\n\
             outputs = {{ \"blobs/me.bin\" = \"{pin}\" }}\nbuild = \"true\"\n"
        ),
    );
    build(&q).failure().stderr(contains(
        "output blobs/me.bin (pinned by modules/blob.toml) was not installed",
    ));
}

#[test]
fn another_checkout_restores_it_from_the_cache_without_the_server_and_a_changed_script_is_a_hit() {
    let srv = Server::start();
    let pin = sha256(&cleaned());
    let p = project(&srv, &pin, UPPER);
    build(&p).success();
    // Another script giving the same bytes: same key, nothing runs.
    let p2 = project(&srv, &pin, "sed 's/.*/\\\\U&/' vendor.exe > me.bin");
    let (ok, events, err) = build_with_cache(&p2, &p);
    assert!(ok, "{err}");
    assert!(
        TestProject::modules_with(&events, "module-built").is_empty(),
        "{events}"
    );
    assert_eq!(
        std::fs::read(p2.path("install/blobs/me.bin")).unwrap(),
        cleaned()
    );
    assert_eq!(srv.requests().len(), 1, "{:?}", srv.requests());
    drop(srv);
    let q = checkout(&p, &["modules/blob.toml"]);
    let (ok, events, err) = build_with_cache(&q, &p);
    assert!(ok, "{err}");
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["blob"]
    );
    assert_eq!(
        std::fs::read(q.path("install/blobs/me.bin")).unwrap(),
        cleaned()
    );
}

#[test]
fn only_the_fixed_output_module_reaches_the_network() {
    let srv = Server::start();
    let p = project(&srv, &sha256(&cleaned()), UPPER);
    p.write(
        "strata.toml",
        "[project]\nname = \"t\"\n\n[target.default]\nmodules = [\"blob\"]\n\n[target.plain]\nmodules = [\"plain\"]\n",
    );
    p.write(
        "modules/plain.toml",
        format!(
            "name = \"plain\"\nversion = \"1\"\nsource = \"none\"\nbuild = \"curl -fsS -o got {}\"\n",
            srv.url("/vendor.exe")
        ),
    );
    p.strata()
        .env("STRATA_SANDBOX", "require")
        .args(["build", "plain"])
        .assert()
        .failure()
        .stderr(contains("module plain: build failed"))
        .stderr(contains("commands run without the network (sandbox)"));
    assert!(srv.requests().is_empty(), "{:?}", srv.requests());
    build(&p).success();
    assert_eq!(srv.requests().len(), 1);
}

#[test]
fn network_without_pinned_outputs_is_refused() {
    let p = TestProject::with_default(&["blob"]);
    p.write(
        "modules/blob.toml",
        "name = \"blob\"\nversion = \"1\"\nsource = \"none\"\nnetwork = true\nbuild = \"curl -O https://example.org/x\"\n",
    );
    p.strata()
        .arg("build")
        .assert()
        .failure()
        .stderr(contains("modules/blob.toml"))
        .stderr(contains(
            "`network = true` needs `outputs` pinning every file blob installs",
        ));
    p.write(
        "modules/blob.toml",
        "name = \"blob\"\nversion = \"1\"\nsource = \"none\"\noutputs = { \"../me.bin\" = \"00\" }\n",
    );
    p.strata()
        .arg("build")
        .assert()
        .failure()
        .stderr(contains("output `../me.bin` is not a plain path"));
}

#[test]
fn fetch_lists_it_with_its_pin_and_runs_it_so_an_offline_build_needs_no_network() {
    let srv = Server::start();
    let pin = sha256(&cleaned());
    let p = project(&srv, &pin, UPPER);
    p.strata()
        .args(["fetch", "--dry-run"])
        .assert()
        .success()
        .stdout(contains("fixed-output blob"))
        .stdout(contains(format!("blobs/me.bin sha256:{pin}")))
        .stdout(contains("1 fixed-output file"));
    let out = p
        .strata()
        .args(["--json", "fetch", "--dry-run"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["counts"]["fixed_output"], 1, "{doc}");
    let out = p.strata().args(["graph", "--json"]).output().unwrap();
    let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        g["modules"][0]["outputs"]["blobs/me.bin"],
        pin.as_str(),
        "{g}"
    );
    assert_eq!(g["modules"][0]["network"], true, "{g}");
    assert!(srv.requests().is_empty());
    p.strata().arg("plan").assert().success().stdout(contains(
        "[fixed-output: 1 output pinned, with the network]",
    ));
    p.strata()
        .env("STRATA_SANDBOX", "require")
        .arg("fetch")
        .assert()
        .success();
    assert_eq!(srv.requests().len(), 1);
    assert!(
        !p.path("install/blobs/me.bin").exists(),
        "fetch installs nothing"
    );
    // Without the cache, --offline refuses to run its download.
    let q = checkout(&p, &["modules/blob.toml"]);
    q.strata()
        .args(["--offline", "build"])
        .assert()
        .failure()
        .stderr(contains("module blob: a fixed-output module with `network = true` is not in the cache, and --offline forbids its download"));
    assert_eq!(srv.requests().len(), 1);
    drop(srv);
    p.strata()
        .env("STRATA_SANDBOX", "require")
        .args(["--offline", "build"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(p.path("install/blobs/me.bin")).unwrap(),
        cleaned()
    );
}
