//! `strata import heads` of a board whose `BOARD_TARGETS` make coreboot
//! depend on a blob a script of the tree downloads and cleans (Heads's
//! `targets/xx30_me_blobs.mk` shape, written for this test): the script
//! becomes a fixed-output module pinned by the sum the script checks, which
//! `strata fetch` runs (its download from the test's 127.0.0.1 server) in
//! the sandbox with the network.

mod common;
mod heads_fixture;

use common::{Reply, sha256};
use heads_fixture::{Heads, crossgcc, text, walk, write};

const VENDOR: &[u8] = b"vendor updater with an me image inside\n";

/// A blob script in Heads's shape: sources ../lib.sh, skips the work when
/// the output already matches, downloads the vendor file, cleans it with
/// `$COREBOOT_DIR/util/me_cleaner` and checks the result.
fn script(url: &str, pin: &str) -> String {
    format!(
        "#!/usr/bin/env bash\n\
         source \"$(cd \"$(dirname \"${{BASH_SOURCE[0]}}\")\" && pwd)/../lib.sh\"\n\
         ME_BIN_HASH=\"{pin}\"\n\
         output_dir=\"$(realpath \"${{1:-./}}\")\"\n\
         check_outputs \"${{ME_BIN_HASH}} ${{output_dir}}/me.bin\" && exit 0\n\
         cd \"$(mktemp -d)\"\n\
         curl -fsS -o vendor.exe {url}\n\
         cp vendor.exe \"${{COREBOOT_DIR}}/util/me_cleaner/\"\n\
         sh \"${{COREBOOT_DIR}}/util/me_cleaner/me_cleaner.py\" -O \"${{output_dir}}/me.bin\" \
         \"${{COREBOOT_DIR}}/util/me_cleaner/vendor.exe\"\n\
         check_outputs \"${{ME_BIN_HASH}} ${{output_dir}}/me.bin\" || exit 1\n"
    )
}

/// Our own `check_outputs` (the shape of Heads's blobs/lib.sh).
const LIB: &str = "check_outputs() {\n  local ok=y pair\n  for pair in \"$@\"; do\n    \
    echo \"$pair\" | sha256sum --check --status 2>/dev/null || ok=\n  done\n  [ -n \"$ok\" ]\n}\n";

/// alpha: `BOARD_TARGETS := xy_me_blobs` (pinned); beta: `nopin_blobs`,
/// whose script checks nothing, and `qemu`, which is not a blob target.
fn tree(h: &Heads) -> String {
    crossgcc::add_coreboot(h, &[("alpha", "1.0"), ("beta", "1.0")]);
    let root = h.heads();
    let cleaned = sha256(&VENDOR.to_ascii_uppercase());
    h.server.route("/vendor/xy.exe", Reply::Ok(VENDOR.to_vec()));
    write(&root, "blobs/lib.sh", LIB);
    write(
        &root,
        "blobs/xy/download_clean_me.sh",
        script(&h.server.url("/vendor/xy.exe"), &cleaned),
    );
    write(&root, "blobs/xy/hashes.txt", format!("{cleaned}  me.bin\n"));
    write(
        &root,
        "targets/xy_me_blobs.mk",
        "# Make coreboot depend on the blob.\n\
         $(build)/coreboot-$(CONFIG_COREBOOT_VERSION)/$(BOARD)/.build: \\\n    $(pwd)/blobs/xy/me.bin $(build)/$(BOARD)/me.bin\n\n\
         $(pwd)/blobs/xy/me.bin:\n\tCOREBOOT_DIR=\"$(build)/$(coreboot_base_dir)\" \\\n\t\t$(pwd)/blobs/xy/download_clean_me.sh $(pwd)/blobs/xy\n\n\
         $(build)/$(BOARD)/me.bin: $(pwd)/blobs/xy/me.bin\n\tcp $(pwd)/blobs/xy/me.bin $(build)/$(BOARD)\n",
    );
    write(
        &root,
        "blobs/np/get.sh",
        "#!/bin/sh\ncurl -O http://127.0.0.1:9/x\n",
    );
    write(
        &root,
        "targets/nopin_blobs.mk",
        "$(pwd)/blobs/np/x.bin:\n\t$(pwd)/blobs/np/get.sh $(pwd)/blobs/np\n",
    );
    // Executable, as in a git checkout of the tree.
    for f in ["blobs/xy/download_clean_me.sh", "blobs/np/get.sh"] {
        use std::os::unix::fs::PermissionsExt;
        let p = root.join(f);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (board, targets) in [("alpha", "xy_me_blobs"), ("beta", "nopin_blobs qemu")] {
        let p = root.join(format!("boards/{board}/{board}.config"));
        let mut t = std::fs::read_to_string(&p).unwrap();
        t.push_str(&format!("BOARD_TARGETS := {targets}\n"));
        std::fs::write(p, t).unwrap();
    }
    cleaned
}

#[test]
fn a_blob_target_becomes_a_pinned_fixed_output_module_that_fetch_runs_with_the_network() {
    let h = Heads::new();
    let cleaned = tree(&h);
    let o = h.import(&["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let m = h.read("modules/blobs-xy-download_clean_me.toml");
    assert!(m.contains("network = true\n"), "{m}");
    assert!(
        m.contains(&format!(
            "outputs = {{ \"heads-blobs/xy/me.bin\" = \"{cleaned}\" }}\n"
        )),
        "{m}"
    );
    assert!(m.contains("params = [\"HEADS_BLOBS\"]"), "{m}");
    assert!(m.contains("from Heads's targets/xy_me_blobs.mk"), "{m}");
    // alpha's coreboot depends on it and copies the blob into the board dir.
    let cb = h.read("modules/coreboot-1.0.toml");
    let cb_alpha = walk(&h.out().join("modules"))
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|t| {
            t.lines()
                .any(|l| l.starts_with("depends") && l.contains("\"blobs-xy-download_clean_me\""))
        })
        .expect("a coreboot module depends on the blob module");
    assert!(
        cb_alpha.contains(
            "cp \"$STRATA_SYSROOT/heads-blobs/xy/me.bin\" \"$STRATA_BUILD_DIR/.heads/build/x86/$STRATA_PARAM_BOARD/\""
        ),
        "{cb_alpha}"
    );
    assert!(
        !cb.contains("blobs-xy") || cb == cb_alpha,
        "beta's coreboot must not depend on alpha's blob"
    );
    let toml = h.read("strata.toml");
    assert!(
        toml.contains("HEADS_BLOBS = { dir = \"../heads/blobs\" }"),
        "{toml}"
    );
    // The report: beta's unpinnable rule, not guessed.
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let beta = rep["data"]["boards"]["beta"]["not_translated"].to_string();
    assert!(
        beta.contains("targets/nopin_blobs.mk:1: no sha256 for blobs/np/x.bin"),
        "{beta}"
    );
    // qemu is no blob target: `rom`'s targets report it (targets.rs's
    // unit test), never as a blob rule.
    assert!(!beta.contains("qemu"), "{beta}");
    assert!(
        rep["data"]["boards"]["alpha"]["not_translated"].is_null(),
        "{rep}"
    );
    assert!(!h.out().join("modules/blobs-np-get.toml").exists());

    // The download list names it with its pin; nothing is downloaded.
    let o = h.strata(&["fetch", "--dry-run", "alpha"]);
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        list.contains(&format!(
            "fixed-output blobs-xy-download_clean_me heads-blobs/xy/me.bin sha256:{cleaned}"
        )),
        "{list}"
    );
    assert!(h.server.requests().is_empty(), "a dry run downloaded");

    // `strata fetch` runs it, sandboxed but with the network.
    let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .arg("-C")
        .arg(h.out())
        .args(["fetch", "alpha"])
        .env("NO_COLOR", "1")
        .env("STRATA_SANDBOX", "require")
        .env("XDG_CACHE_HOME", h.tmp.path().join(".xdg-cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        h.server.requests().contains(&"/vendor/xy.exe".to_string()),
        "{:?}",
        h.server.requests()
    );
    let staged: Vec<_> = walk(&h.out().join("build/.strata/modules"))
        .into_iter()
        .filter(|p| p.ends_with("destdir/heads-blobs/xy/me.bin"))
        .collect();
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert_eq!(
        std::fs::read(&staged[0]).unwrap(),
        VENDOR.to_ascii_uppercase()
    );
}
