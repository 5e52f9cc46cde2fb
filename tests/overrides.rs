//! `strata.local.toml` overrides, end to end: a prebuilt directory stands in
//! for a toolchain module (nothing fetched or built for it), a local source
//! tree replaces a download, and either one's content is in every key it
//! reaches, so a changed file rebuilds what depends on it.

mod common;

use common::*;
use predicates::str::contains;

/// `tc` (a host toolchain, its download unreachable) and `app`, which runs
/// the toolchain's `cc` and installs what it prints.
fn project(server: &Server) -> TestProject {
    let p = TestProject::with_default(&["app"]);
    let tc = tarball("tc-1.0", &[("README", "real toolchain\n")]);
    // Never served: the override must make the download unnecessary.
    server.route("/tc-1.0.tar.gz", Reply::Status(404));
    p.module(
        "tc",
        &server.url("/tc-1.0.tar.gz"),
        &tc,
        "host = true\nbuild = \"exit 1\"",
    );
    p.local_module(
        "app",
        &[("main.c", "int main;\n")],
        r#"depends = ["tc"]
build = "cc > out.txt"
install = "cp out.txt $STRATA_DESTDIR/"
"#,
    );
    p.write(
        "prebuilt/bin/cc",
        "#!/bin/sh\necho compiled by prebuilt cc 1\n",
    );
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(p.path("prebuilt/bin/cc"))
        .status()
        .unwrap();
    p.write(
        "strata.local.toml",
        "[override.tc]\nprebuilt = \"prebuilt\"\n",
    );
    p
}

#[test]
fn a_prebuilt_override_stands_in_for_a_module_and_its_content_is_in_the_keys() {
    let server = Server::start();
    let p = project(&server);
    let plan = p.strata().arg("plan").output().unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.contains("[prebuilt override: "), "{plan}");
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["app", "tc"]);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_eq!(p.read("install/out.txt"), "compiled by prebuilt cc 1\n");
    let graph = p.strata().args(["graph", "--json"]).output().unwrap();
    let graph = String::from_utf8_lossy(&graph.stdout);
    assert!(
        graph.contains("\"kind\": \"prebuilt\"") || graph.contains("\"kind\":\"prebuilt\""),
        "{graph}"
    );
    // Nothing changed: a no-op.
    let (_, built, _) = p.build_json(&[]);
    assert!(built.is_empty(), "{built:?}");
    // A changed file in the directory reaches the dependent's keys.
    p.write(
        "prebuilt/bin/cc",
        "#!/bin/sh\necho compiled by prebuilt cc 2\n",
    );
    let why = p.strata().args(["why", "app"]).output().unwrap();
    let why = String::from_utf8_lossy(&why.stdout);
    assert!(why.contains("dependency tc"), "{why}");
    let why = p.strata().args(["why", "tc"]).output().unwrap();
    let why = String::from_utf8_lossy(&why.stdout);
    assert!(
        why.contains("override prebuilt changed (the directory's content differs)"),
        "{why}"
    );
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["app", "tc"]);
    assert_eq!(p.read("install/out.txt"), "compiled by prebuilt cc 2\n");
    // Without the override, the real module is used (and here fails to
    // download, naming it): the override never hid the declared module.
    std::fs::remove_file(p.path("strata.local.toml")).unwrap();
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("tc-1.0.tar.gz"));
}

#[test]
fn a_source_override_builds_from_a_local_tree_without_its_patches() {
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("msg.txt", "from the tarball\n")],
        r#"install = "cp msg.txt $STRATA_DESTDIR/""#,
    );
    p.write(
        "patches/m-1.0.patch",
        "--- a/msg.txt\n+++ b/msg.txt\n@@ -1 +1 @@\n-from the tarball\n+patched\n",
    );
    assert_eq!(p.build_json(&[]).0, 0);
    assert_eq!(p.read("install/msg.txt"), "patched\n");
    p.write("../local-m/msg.txt", "from my tree\n");
    p.write(
        "strata.local.toml",
        "[override.m]\nsource = \"../local-m\"\n",
    );
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["m"]);
    assert_eq!(p.read("install/msg.txt"), "from my tree\n");
    // An edit of the local tree rebuilds.
    p.write("../local-m/msg.txt", "edited\n");
    let (_, built, _) = p.build_json(&[]);
    assert_eq!(built, ["m"]);
    assert_eq!(p.read("install/msg.txt"), "edited\n");
    // Back to the download: the cached artifact of the declared module.
    std::fs::remove_file(p.path("strata.local.toml")).unwrap();
    let (code, _, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(p.read("install/msg.txt"), "patched\n");
}

#[test]
fn bad_overrides_are_errors_naming_the_file() {
    let server = Server::start();
    for (text, want) in [
        (
            "[override.tcc]\nprebuilt = \"prebuilt\"\n",
            "did you mean `tc`?",
        ),
        ("[override.tc]\nprebuilt = \"nowhere\"\n", "not a directory"),
        (
            "[override.tc]\nprebuilt = \"prebuilt\"\nsource = \"prebuilt\"\n",
            "exactly one of",
        ),
    ] {
        let p = project(&server);
        p.write("strata.local.toml", text);
        p.strata()
            .arg("plan")
            .assert()
            .code(2)
            .stderr(contains("strata.local.toml"))
            .stderr(contains(want));
    }
}

/// `[mirrors]` in strata.local.toml: this machine's directory of packages
/// serves an `--offline` build whose module URL is unreachable, ahead of the
/// project's own mirrors; a bad URL there is an error naming the file.
#[test]
fn local_mirrors_serve_an_offline_build_and_change_no_key() {
    let server = Server::start();
    let p = TestProject::with_default(&["lib"]);
    let tb = tarball("lib-1.0", &[("msg", "from the local mirror\n")]);
    server.route("/lib-1.0.tar.gz", Reply::Status(404));
    p.module(
        "lib",
        &server.url("/lib-1.0.tar.gz"),
        &tb,
        "install = \"cp msg $STRATA_DESTDIR/\"",
    );
    // Without the local mirror, --offline has nowhere to read the package.
    p.strata()
        .args(["build", "--offline"])
        .assert()
        .failure()
        .stderr(contains("lib-1.0.tar.gz"));
    p.write("elsewhere/lib-1.0.tar.gz", &tb);
    p.write(
        "strata.local.toml",
        "[mirrors]\nbefore = [\"file://elsewhere/\"]\n",
    );
    let (code, built, err) = p.build_json(&["--offline"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["lib"]);
    assert_eq!(p.read("install/msg"), "from the local mirror\n");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    // A mirror holds sha256-pinned files: no key moved, so without it the
    // module is fresh.
    std::fs::remove_file(p.path("strata.local.toml")).unwrap();
    let (code, built, err) = p.build_json(&["--offline"]);
    assert_eq!(code, 0, "{err}");
    assert!(built.is_empty(), "{built:?}");

    p.write(
        "strata.local.toml",
        "[mirrors]\nafter = [\"ftp://elsewhere/\"]\n",
    );
    p.strata()
        .arg("plan")
        .assert()
        .code(2)
        .stderr(contains("strata.local.toml"))
        .stderr(contains("ftp://elsewhere/"));
}

/// `strata fetch` downloads nothing for an overridden module (its URL is
/// never asked for) and still fetches the others.
#[test]
fn fetch_skips_an_overridden_module() {
    let server = Server::start();
    let p = project(&server);
    p.strata().arg("fetch").assert().success();
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(p.path("packages/app-1.0.tar.gz").exists());
    assert!(!p.path("packages/tc-1.0.tar.gz").exists());
    // Without the override, the toolchain's download is needed (and fails).
    std::fs::remove_file(p.path("strata.local.toml")).unwrap();
    p.strata()
        .arg("fetch")
        .assert()
        .failure()
        .stderr(contains("tc-1.0.tar.gz"));
}

/// The override digest is cached by stat signature: an edit of the same
/// size with the old mtime put back still changes the ctime, so it is seen;
/// and a tree changed within a second of being hashed is never cached
/// (git's racy-clean rule), so a second same-size edit in the same clock
/// tick is seen too.
#[test]
fn a_same_size_override_edit_with_its_old_mtime_put_back_rebuilds() {
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("msg.txt", "from the tarball\n")],
        r#"install = "cp msg.txt $STRATA_DESTDIR/""#,
    );
    p.write("../local-m-racy/msg.txt", "version A\n");
    p.write(
        "strata.local.toml",
        "[override.m]\nsource = \"../local-m-racy\"\n",
    );
    let file = p.path("../local-m-racy/msg.txt");
    // Settled well before the build, so its digest is cached.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(p.build_json(&[]).0, 0);
    assert_eq!(p.read("install/msg.txt"), "version A\n");
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, "version B\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["m"]);
    assert_eq!(p.read("install/msg.txt"), "version B\n");
    // Edited again at once, same size: the last digest was not cached.
    std::fs::write(&file, "version C\n").unwrap();
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["m"]);
    assert_eq!(p.read("install/msg.txt"), "version C\n");
}
