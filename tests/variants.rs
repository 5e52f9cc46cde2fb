//! End-to-end tests of board variants: targets that set params, modules
//! that use them, one shared source and toolchain, per-board instances.

mod common;

use common::*;
use predicates::str::contains;

/// Two boards, x230 and t430, that differ only in one config file. `tool`
/// is a host toolchain both use; `rom` uses the CONFIG param, builds out of
/// tree from the shared (patched) source, and runs the tool by name (from $STRATA_HOST/bin).
fn boards() -> TestProject {
    let p = TestProject::new(
        r#"[project]
name = "boards"

[target.x230]
modules = ["rom"]
params = { CONFIG = { file = "config/x230.config" } }

[target.t430]
modules = ["rom"]
params = { CONFIG = { file = "config/t430.config" } }

[target.copy]
modules = ["rom"]
params = { CONFIG = { file = "elsewhere/x230-copy.config" }, UNUSED = "ignored" }

[target.bare]
modules = ["rom"]
"#,
    );
    p.write("config/x230.config", "BOARD=x230\n");
    p.write("config/t430.config", "BOARD=t430\n");
    p.write("elsewhere/x230-copy.config", "BOARD=x230\n");
    p.local_module(
        "tool",
        &[("tool.sh", "#!/bin/sh\necho \"tool: $(cat \"$1\")\"\n")],
        "host = true\ninstall = \"mkdir -p $STRATA_DESTDIR/bin && cp tool.sh $STRATA_DESTDIR/bin/tool\"",
    );
    p.local_module(
        "rom",
        &[("src.txt", "rom source\n")],
        r#"depends = ["tool"]
params = ["CONFIG"]
configure = "cp $STRATA_PARAM_CONFIG .config && echo $STRATA_PARAM_CONFIG > param-path && test \"$PWD\" = \"$STRATA_BUILD_DIR\""
build = "cat $STRATA_SOURCE_DIR/src.txt > rom.bin && tool .config >> rom.bin"
install = "mkdir -p $STRATA_DESTDIR && cp rom.bin $STRATA_DESTDIR/rom.bin""#,
    );
    p.write(
        "patches/rom-1.0/0001-src.patch",
        "--- a/src.txt\n+++ b/src.txt\n@@ -1 +1,2 @@\n rom source\n+patched once\n",
    );
    p
}

/// (`--json` stdout, exit code) of `strata --json ARGS`.
fn json(p: &TestProject, args: &[&str]) -> (String, i32) {
    let out = p.strata().arg("--json").args(args).output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// How many `step-finished` events name `step` for a module whose label starts with `prefix`.
fn steps(events: &str, step: &str, prefix: &str) -> usize {
    events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "step-finished" && v["data"]["step"] == step)
        .filter(|v| v["data"]["module"].as_str().unwrap().starts_with(prefix))
        .count()
}

/// The variant build dirs of `rom` (`build/rom-1.0@<id>`), sorted.
fn variant_dirs(p: &TestProject) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p.path("build"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rom-1.0@"))
        .collect();
    v.sort();
    v
}

#[test]
fn two_boards_build_in_one_run_sharing_the_toolchain_and_the_source() {
    let p = boards();
    let (events, code) = json(&p, &["build", "x230", "t430"]);
    assert_eq!(code, 0, "{events}");
    let built = TestProject::modules_with(&events, "module-built");
    assert_eq!(built.len(), 3, "{built:?}");
    assert_eq!(built.iter().filter(|m| *m == "tool").count(), 1);
    assert_eq!(built.iter().filter(|m| m.starts_with("rom@")).count(), 2);
    // The source is unpacked and patched once for both variants.
    assert_eq!(steps(&events, "unpack", "rom"), 1, "{events}");
    assert_eq!(steps(&events, "patch", "rom"), 1, "{events}");
    assert_eq!(steps(&events, "build", "rom@"), 2, "{events}");

    // Each board's outputs, side by side.
    assert_eq!(
        p.read("install/x230/rom.bin"),
        "rom source\npatched once\ntool: BOARD=x230\n"
    );
    assert_eq!(
        p.read("install/t430/rom.bin"),
        "rom source\npatched once\ntool: BOARD=t430\n"
    );
    assert!(
        !p.path("install/x230/bin/tool").exists(),
        "host tools stay out"
    );
    // One shared source tree (built out of tree: no .config in it), one
    // build dir per variant, each with its own config.
    assert!(p.path("build/rom-1.0/src.txt").is_file());
    assert!(!p.path("build/rom-1.0/.config").exists());
    let dirs = variant_dirs(&p);
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let configs: Vec<String> = dirs
        .iter()
        .map(|d| p.read(&format!("build/{d}/.config")))
        .collect();
    assert!(configs.contains(&"BOARD=x230\n".to_string()));
    assert!(configs.contains(&"BOARD=t430\n".to_string()));
    // $STRATA_PARAM_CONFIG is the absolute path of the file.
    let path = p.read(&format!("build/{}/param-path", dirs[0]));
    assert!(path.trim().starts_with('/'), "{path}");
    assert!(path.trim().ends_with(".config"), "{path}");
    // Both artifacts coexist in the cache: tool + two roms.
    let out = p.strata().args(["cache", "ls"]).output().unwrap();
    let ls = String::from_utf8_lossy(&out.stdout);
    assert_eq!(ls.lines().filter(|l| l.contains("rom")).count(), 2, "{ls}");

    // Nothing to do the second time.
    let (events, code) = json(&p, &["build", "x230", "t430"]);
    assert_eq!(code, 0);
    assert!(TestProject::modules_with(&events, "module-built").is_empty());

    // Changing one board's config: `why` and `plan` name the param, and
    // only that board's instance is built.
    p.write("config/x230.config", "BOARD=x230\nEXTRA=y\n");
    p.strata()
        .args(["why", "rom", "x230"])
        .assert()
        .success()
        .stdout(contains("param CONFIG changed"));
    p.strata()
        .args(["why", "rom", "t430"])
        .assert()
        .success()
        .stdout(contains("is fresh"));
    p.strata()
        .args(["plan", "x230"])
        .assert()
        .success()
        .stdout(contains("param CONFIG changed"))
        .stdout(contains("not needed (shared source ready)"));
    let (events, code) = json(&p, &["build", "x230", "t430"]);
    assert_eq!(code, 0, "{events}");
    let built = TestProject::modules_with(&events, "module-built");
    assert_eq!(built.len(), 1, "{built:?}");
    assert!(built[0].starts_with("rom@"));
    assert_eq!(steps(&events, "unpack", "rom"), 0, "{events}");
    assert_eq!(
        TestProject::modules_with(&events, "module-fresh").len(),
        2,
        "tool and the t430 rom"
    );
    assert_eq!(
        p.read("install/x230/rom.bin"),
        "rom source\npatched once\ntool: BOARD=x230\nEXTRA=y\n"
    );
    assert_eq!(
        p.read("install/t430/rom.bin"),
        "rom source\npatched once\ntool: BOARD=t430\n"
    );
}

#[test]
fn same_content_under_another_path_and_unused_params_share_the_instance() {
    let p = boards();
    let (events, code) = json(&p, &["build", "x230"]);
    assert_eq!(code, 0, "{events}");
    assert_eq!(
        TestProject::modules_with(&events, "module-built").len(),
        2,
        "{events}"
    );
    // `copy` names another file with the same content, and sets a param
    // no module uses: same keys, nothing to build.
    let (events, code) = json(&p, &["build", "copy"]);
    assert_eq!(code, 0, "{events}");
    assert!(
        TestProject::modules_with(&events, "module-built").is_empty(),
        "{events}"
    );
    assert_eq!(variant_dirs(&p).len(), 1);
    assert_eq!(
        p.read("install/rom.bin"),
        "rom source\npatched once\ntool: BOARD=x230\n"
    );
    // Different content is a different instance.
    p.write("elsewhere/x230-copy.config", "BOARD=x230-copy\n");
    let (events, code) = json(&p, &["build", "copy"]);
    assert_eq!(code, 0, "{events}");
    assert_eq!(
        TestProject::modules_with(&events, "module-built").len(),
        1,
        "{events}"
    );
    assert_eq!(variant_dirs(&p).len(), 2);
    // `clean` removes the source, every variant and their state.
    p.strata()
        .args(["clean", "rom"])
        .assert()
        .success()
        .stderr(contains("and 2 variant build dirs"));
    assert!(variant_dirs(&p).is_empty());
    assert!(!p.path("build/rom-1.0").exists());
    assert!(!p.path("build/.strata/modules/rom-1.0").exists());
    assert!(p.path("build/.strata/modules/tool-1.0").exists());
}

/// stderr of a failed command with miette's line wrapping undone.
fn flat_stderr(p: &TestProject, args: &[&str]) -> (i32, String) {
    let out = p.strata().args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr)
        .replace(['|', '│', '×', 'x'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_param_the_target_does_not_set_is_an_error_naming_module_param_and_target() {
    let p = boards();
    let (code, err) = flat_stderr(&p, &["build", "bare"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("module `rom` uses param `CONFIG`, which target `bare` does not set"),
        "{err}"
    );
    assert!(
        err.contains("add it to [target.bare] in strata.toml"),
        "{err}"
    );
    // A module named alone takes its params from `default`; there is none.
    let (code, err) = flat_stderr(&p, &["build", "rom"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("module `rom` uses param `CONFIG`"), "{err}");
    assert!(err.contains("name a target that sets CONFIG"), "{err}");
    // A module without params needs no target.
    p.strata().args(["build", "tool"]).assert().success();
}

#[test]
fn variants_restore_from_the_artifact_cache_into_their_own_dirs() {
    let p = boards();
    let (events, code) = json(&p, &["build", "x230", "t430"]);
    assert_eq!(code, 0, "{events}");
    p.strata().args(["clean", "--all"]).assert().success();
    assert!(variant_dirs(&p).is_empty());
    assert!(!p.path("build/.strata/modules/rom-1.0").exists());
    let (events, code) = json(&p, &["build", "x230", "t430"]);
    assert_eq!(code, 0, "{events}");
    assert!(
        TestProject::modules_with(&events, "module-built").is_empty(),
        "{events}"
    );
    let restored = TestProject::modules_with(&events, "module-restored");
    assert_eq!(restored.len(), 2, "the roms; the toolchain stays cached");
    assert_eq!(
        p.read("install/t430/rom.bin"),
        "rom source\npatched once\ntool: BOARD=t430\n"
    );
    // Restored: no source tree, and the next build is a no-op.
    assert!(!p.path("build/rom-1.0").exists());
    let (events, code) = json(&p, &["build", "x230", "t430"]);
    assert_eq!(code, 0);
    assert!(TestProject::modules_with(&events, "module-built").is_empty());
    assert!(TestProject::modules_with(&events, "module-restored").is_empty());
}

#[test]
fn strata_state_is_not_inside_the_unpacked_tree() {
    // An archive that holds `.strata` as a plain file: strata's stamps,
    // logs and destdir live elsewhere, so the build does not care.
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[(".strata", "not a directory\n"), ("f.txt", "F\n")],
        r#"install = "mkdir -p $STRATA_DESTDIR && cp f.txt $STRATA_DESTDIR/f.txt""#,
    );
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["m"]);
    assert_eq!(p.read("install/f.txt"), "F\n");
    assert_eq!(p.read("build/m-1.0/.strata"), "not a directory\n");
    assert!(
        p.path("build/.strata/modules/m-1.0/stamps/install.stamp")
            .is_file()
    );
    let (code, built, _) = p.build_json(&[]);
    assert_eq!((code, built.len()), (0, 0));
    // Stamps outside the tree never vouch for a tree deleted by hand.
    std::fs::remove_dir_all(p.path("build/m-1.0")).unwrap();
    p.strata()
        .args(["why", "m"])
        .assert()
        .success()
        .stdout(contains("m-1.0 is missing"));
    let out = p.strata().args(["--json", "build"]).output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["m"],
        "{events}"
    );
    assert!(p.path("build/m-1.0").is_dir());
}

#[test]
fn a_board_layer_carries_its_variants_state_and_restores_fresh() {
    let p = boards();
    let (events, code) = json(&p, &["build", "x230", "t430"]);
    assert_eq!(code, 0, "{events}");
    let ci = |args: &[&str]| {
        let out = p
            .strata()
            .env("STRATA_CI_STORE", p.path(".ci-store"))
            .arg("ci")
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    // Each board is a layer with its own key.
    let (kx, kt) = (ci(&["key", "x230"]), ci(&["key", "t430"]));
    assert_ne!(kx, kt);
    ci(&["save-layer", "x230"]);
    // A fresh checkout: no build dir, no artifact cache.
    std::fs::remove_dir_all(p.path("build")).unwrap();
    std::fs::remove_dir_all(p.path("packages")).unwrap();
    std::fs::remove_dir_all(p.path(".xdg-cache")).unwrap();
    ci(&["restore-layer", "x230"]);
    assert_eq!(variant_dirs(&p).len(), 1, "only x230's variant");
    let (events, code) = json(&p, &["build", "x230"]);
    assert_eq!(code, 0, "{events}");
    assert!(
        TestProject::modules_with(&events, "module-built").is_empty(),
        "{events}"
    );
    assert_eq!(
        TestProject::modules_with(&events, "module-fresh").len(),
        2,
        "{events}"
    );
}

#[test]
fn real_make_builds_each_board_out_of_tree_from_the_one_source() {
    // Heads' coreboot pattern: `make -C <source> obj=<board dir>`.
    let p = TestProject::new(
        r#"[project]
name = "make-boards"

[target.a]
modules = ["fw"]
params = { BOARD = "a", CONFIG = { file = "a.config" } }

[target.b]
modules = ["fw"]
params = { BOARD = "b", CONFIG = { file = "b.config" } }
"#,
    );
    p.write("a.config", "CONFIG_A=y\n");
    p.write("b.config", "CONFIG_B=y\n");
    p.local_module(
        "fw",
        &[
            (
                "Makefile",
                "obj ?= .\n$(obj)/fw.bin: $(CURDIR)/fw.in $(obj)/.config\n\tcat $^ > $@\n\techo \"board $(BOARD)\" >> $@\n",
            ),
            ("fw.in", "firmware\n"),
        ],
        r#"params = ["BOARD", "CONFIG"]
configure = "cp $STRATA_PARAM_CONFIG .config"
build = "make -C $STRATA_SOURCE_DIR obj=$STRATA_BUILD_DIR BOARD=$STRATA_PARAM_BOARD"
install = "mkdir -p $STRATA_DESTDIR && cp fw.bin $STRATA_DESTDIR/fw.bin""#,
    );
    let (events, code) = json(&p, &["build", "a", "b"]);
    assert_eq!(code, 0, "{events}");
    assert_eq!(steps(&events, "unpack", "fw"), 1, "{events}");
    assert_eq!(steps(&events, "build", "fw@"), 2, "{events}");
    assert_eq!(
        p.read("install/a/fw.bin"),
        "firmware\nCONFIG_A=y\nboard a\n"
    );
    assert_eq!(
        p.read("install/b/fw.bin"),
        "firmware\nCONFIG_B=y\nboard b\n"
    );
    assert!(
        !p.path("build/fw-1.0/fw.bin").exists(),
        "source stays clean"
    );

    // A value param: `why` shows old and new; only board b rebuilds.
    p.write(
        "strata.toml",
        p.read("strata.toml")
            .replace("BOARD = \"b\"", "BOARD = \"b2\""),
    );
    p.strata()
        .args(["why", "fw", "b"])
        .assert()
        .success()
        .stdout(contains("param BOARD changed: `b` → `b2`"));
    let (events, code) = json(&p, &["build", "a", "b"]);
    assert_eq!(code, 0, "{events}");
    let built = TestProject::modules_with(&events, "module-built");
    assert_eq!(built.len(), 1, "{events}");
    assert_eq!(
        p.read("install/b/fw.bin"),
        "firmware\nCONFIG_B=y\nboard b2\n"
    );
}

#[test]
fn graph_json_lists_each_boards_variant() {
    let p = boards();
    let doc = |args: &[&str]| -> serde_json::Value {
        let out = p
            .strata()
            .arg("--json")
            .arg("graph")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let one = doc(&["x230"]);
    let mods = one["modules"].as_array().unwrap();
    assert_eq!(mods.len(), 2);
    let tool = mods.iter().find(|m| m["name"] == "tool").unwrap();
    assert!(tool["variant"].is_null());
    let rom = mods.iter().find(|m| m["name"] == "rom").unwrap();
    let id = rom["variant"].as_str().unwrap();
    assert_eq!(id.len(), 12);
    assert_eq!(rom["params"]["CONFIG"]["file"], "config/x230.config");
    assert_eq!(rom["depends"], serde_json::json!(["tool"]));
    // Two boards: one tool, two roms with different variants.
    let two = doc(&["x230", "t430"]);
    let roms: Vec<&str> = two["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "rom")
        .map(|m| m["variant"].as_str().unwrap())
        .collect();
    assert_eq!(roms.len(), 2);
    assert_ne!(roms[0], roms[1]);
    assert!(roms.contains(&id));
    assert_eq!(two["modules"].as_array().unwrap().len(), 3);
}

/// A variant that has to rebuild needs its shared source: one deleted by
/// hand is unpacked and patched again first, whatever its stamps say.
#[test]
fn a_deleted_shared_source_is_unpacked_again_before_a_variant_rebuilds() {
    let p = boards();
    let (events, code) = json(&p, &["build", "x230"]);
    assert_eq!(code, 0, "{events}");
    std::fs::remove_dir_all(p.path("build/rom-1.0")).unwrap();
    // Only the build step is stale: its command changed.
    let m = p.read("modules/rom.toml");
    p.write(
        "modules/rom.toml",
        m.replace(
            "build = \"cat $STRATA_SOURCE_DIR/src.txt > rom.bin",
            "build = \"true && cat $STRATA_SOURCE_DIR/src.txt > rom.bin",
        ),
    );
    let (events, code) = json(&p, &["build", "x230"]);
    assert_eq!(code, 0, "{events}");
    assert_eq!(steps(&events, "unpack", "rom"), 1, "{events}");
    assert_eq!(steps(&events, "patch", "rom"), 1, "{events}");
    assert!(p.read("build/rom-1.0/src.txt").contains("patched once"));
}
