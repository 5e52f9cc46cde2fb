//! Lazy restore: a cached `host = true` tool stays in the cache unless a
//! dependent has to build, and is materialised after all when a dependent
//! expected to restore turns out to need building.

mod common;

use common::*;

/// `tc` is a host tool (a toolchain stand-in) that `fw` runs while building.
fn host_tool_project() -> TestProject {
    let p = TestProject::with_default(&["fw"]);
    p.local_module(
        "tc",
        &[("cc.sh", "#!/bin/sh\necho \"compiled $1\"\n")],
        "host = true\ninstall = \"mkdir -p $STRATA_DESTDIR/bin && cp cc.sh $STRATA_DESTDIR/bin/cc && chmod +x $STRATA_DESTDIR/bin/cc\"",
    );
    p.local_module(
        "fw",
        &[("fw.c", "int main;\n")],
        "depends = [\"tc\"]\nbuild = \"$STRATA_HOST/bin/cc fw.c > fw.bin\"\ninstall = \"mkdir -p $STRATA_DESTDIR/fw && cp fw.bin $STRATA_DESTDIR/fw/\"",
    );
    p
}

fn checkout_of(p: &TestProject) -> TestProject {
    checkout(
        p,
        &[
            "modules/tc.toml",
            "modules/fw.toml",
            "mirror/tc-1.0.tar.gz",
            "mirror/fw-1.0.tar.gz",
        ],
    )
}

#[test]
fn a_cached_host_tool_is_restored_only_when_a_dependent_has_to_build() {
    let p = host_tool_project();
    p.strata().arg("build").assert().success();
    assert_eq!(p.read("install/fw/fw.bin"), "compiled fw.c\n");
    assert!(
        !p.path("install/bin/cc").exists(),
        "a host tool is never merged into install/"
    );

    // Everything cached: the firmware is restored, the toolchain stays in the cache.
    let q = checkout_of(&p);
    q.strata()
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .arg("plan")
        .assert()
        .success()
        .stdout(predicates::str::is_match("tc 1.0: cached in local store .*; left there").unwrap());
    let (ok, events, err) = build_with_cache(&q, &p);
    assert!(ok, "{err}");
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["fw"]
    );
    assert_eq!(
        TestProject::modules_with(&events, "module-deferred"),
        ["tc"]
    );
    assert!(
        !q.path("build/tc-1.0").exists(),
        "tc was unpacked for nothing"
    );
    assert_eq!(q.read("install/fw/fw.bin"), "compiled fw.c\n");

    // The firmware changes: now it builds, so the toolchain is restored first.
    let before = q.read("modules/fw.toml");
    let fw = before.replace(
        "cc fw.c > fw.bin\"",
        "cc fw.c > fw.bin && echo v2 >> fw.bin\"",
    );
    assert_ne!(fw, before, "the module edit must change the build");
    q.write("modules/fw.toml", fw);
    let (ok, events, err) = build_with_cache(&q, &p);
    assert!(ok, "{err}");
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["tc"]
    );
    assert_eq!(TestProject::modules_with(&events, "module-built"), ["fw"]);
    assert_eq!(q.read("install/fw/fw.bin"), "compiled fw.c\nv2\n");
}

#[test]
fn a_corrupt_artifact_makes_its_deferred_host_tool_materialise_before_the_build() {
    let p = host_tool_project();
    p.strata().arg("build").assert().success();
    // Flip a byte in fw's archive in the shared cache.
    let store = p.path(".xdg-cache/strata/v1");
    let mut fw_archive = None;
    for shard in std::fs::read_dir(&store).unwrap().flatten() {
        for e in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "json") {
                let info: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                if info["module"] == "fw" {
                    let name = format!(
                        "{}-{}.tar.zst",
                        info["key"].as_str().unwrap(),
                        &info["blake3"].as_str().unwrap()[..16]
                    );
                    fw_archive = Some(shard.path().join(name));
                }
            }
        }
    }
    let fw_archive = fw_archive.expect("fw's archive is in the store");
    let mut bytes = std::fs::read(&fw_archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&fw_archive, bytes).unwrap();

    let q = checkout_of(&p);
    let (ok, events, err) = build_with_cache(&q, &p);
    assert!(ok, "{err}");
    assert!(events.contains("is corrupt"), "{events}");
    assert_eq!(TestProject::modules_with(&events, "module-built"), ["fw"]);
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["tc"]
    );
    assert_eq!(q.read("install/fw/fw.bin"), "compiled fw.c\n");
}
