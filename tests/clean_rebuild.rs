//! An artifact is what a clean build of its key produces: whatever input
//! changes between two builds (a command, env, a pass-env value, a param, a
//! file param, a patch, a dependency's artifact, a host tool), the rebuilt
//! `install/` and the entry cached under the new key equal a clean build of
//! the same inputs in another checkout, byte for byte. The build commands
//! here are `make` rules without prerequisites, so a rebuild in the old
//! tree would say "up to date" and keep the old output.

mod common;

use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const MAKEFILE: &str = "out.txt:\n\tprintf '%s|%s|%s|%s\\n' \"$(GREETING)\" \"$$EXTRA\" \"$$GREET_PASS\" \"$$(cat base.txt)\" > out.txt\n\tcat \"$$STRATA_SYSROOT/dep.txt\" >> out.txt\n\ttool >> out.txt\n\tcat conf.txt >> out.txt\n";

const BOARD_MAKEFILE: &str = "board.txt:\n\tprintf '%s|%s|%s\\n' \"$(GREETING)\" \"$$STRATA_PARAM_P\" \"$$(cat \"$$STRATA_PARAM_F\")\" > board.txt\n";

/// The inputs a test varies. Each field maps to one input kind.
#[derive(Clone, Debug)]
struct Inputs {
    /// `make GREETING=…` in hello's build command.
    greeting: String,
    /// hello's `env` EXTRA.
    extra: String,
    /// The value of the pass-env variable GREET_PASS.
    pass: String,
    /// The line hello's patch writes into base.txt.
    patched: String,
    /// What dep installs as dep.txt.
    dep: String,
    /// The version the host tool prints.
    tool: String,
    /// hello's configure word.
    conf: String,
    /// hello's install command suffix (a second file).
    install: String,
    /// The board's param P.
    param: String,
    /// The board's file param F, content.
    file_param: String,
    /// `make GREETING=…` in the board's (a variant's) build command.
    board_greeting: String,
}

impl Default for Inputs {
    fn default() -> Inputs {
        Inputs {
            greeting: "Hello".into(),
            extra: "e1".into(),
            pass: "p1".into(),
            patched: "patched-1".into(),
            dep: "dep-1".into(),
            tool: "tool-1".into(),
            conf: "c1".into(),
            install: "i1".into(),
            param: "x230".into(),
            file_param: "cfg-1".into(),
            board_greeting: "Hi".into(),
        }
    }
}

/// A project building `hello` (in-tree, depends on `dep` and the host tool
/// `tool`) and `board` (a variant: params, out of tree).
fn project() -> TestProject {
    let p = TestProject::new(
        "[project]\nname = \"t\"\ncache-version = \"1\"\n\n[settings]\npass-env = [\"GREET_PASS\"]\n",
    );
    p.local_module(
        "hello",
        &[("Makefile", MAKEFILE), ("base.txt", "base\n")],
        "",
    );
    p.local_module("board", &[("Makefile", BOARD_MAKEFILE)], "");
    p.local_module("dep", &[("README", "dep\n")], "");
    p.local_module("tool", &[("README", "tool\n")], "");
    p
}

/// Writes every file that depends on `i` (module files, patch, config).
fn apply(p: &TestProject, i: &Inputs) {
    let module = |name: &str, extra: &str| {
        let old = p.read(&format!("modules/{name}.toml"));
        let head: String = old
            .lines()
            .take_while(|l| !l.starts_with("# --"))
            .map(|l| format!("{l}\n"))
            .collect();
        p.write(
            &format!("modules/{name}.toml"),
            format!("{head}# --\n{extra}\n"),
        );
    };
    module(
        "hello",
        &format!(
            "depends = [\"dep\", \"tool\"]\nenv = {{ EXTRA = \"{}\" }}\nconfigure = \"echo {} > conf.txt\"\nbuild = \"make GREETING={}\"\ninstall = \"cp out.txt $STRATA_DESTDIR/ && echo {} > $STRATA_DESTDIR/install.txt\"",
            i.extra, i.conf, i.greeting, i.install
        ),
    );
    module(
        "board",
        &format!(
            "params = [\"P\", \"F\"]\nbuild = \"make -f $STRATA_SOURCE_DIR/Makefile GREETING={}\"\ninstall = \"cp board.txt $STRATA_DESTDIR/\"",
            i.board_greeting
        ),
    );
    module(
        "dep",
        &format!("install = \"echo {} > $STRATA_DESTDIR/dep.txt\"", i.dep),
    );
    module(
        "tool",
        &format!(
            "host = true\ninstall = \"mkdir -p $STRATA_DESTDIR/bin && printf '#!/bin/sh\\\\necho {}\\\\n' > $STRATA_DESTDIR/bin/tool && chmod +x $STRATA_DESTDIR/bin/tool\"",
            i.tool
        ),
    );
    p.write(
        "patches/hello-1.0.patch",
        format!(
            "--- a/base.txt\n+++ b/base.txt\n@@ -1 +1,2 @@\n base\n+{}\n",
            i.patched
        ),
    );
    p.write("cfg/f.txt", format!("{}\n", i.file_param));
    p.write(
        "strata.toml",
        format!(
            "[project]\nname = \"t\"\ncache-version = \"1\"\n\n[settings]\npass-env = [\"GREET_PASS\"]\n\n\
             [target.default]\nmodules = [\"hello\", \"board\"]\nparams = {{ P = \"{}\", F = {{ file = \"cfg/f.txt\" }} }}\n",
            i.param
        ),
    );
}

/// Builds run by this test binary (the property test prints the figure).
static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `strata --json build` with GREET_PASS set; (exit code, stdout, stderr).
fn build(p: &TestProject, i: &Inputs, cache_of: &TestProject, extra: &[&str]) -> (i32, String) {
    BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = p
        .strata()
        .env("GREET_PASS", &i.pass)
        .env("XDG_CACHE_HOME", cache_of.path(".xdg-cache"))
        .arg("--json")
        .arg("build")
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().unwrap_or(-1);
    (code, format!("{stdout}\n--- stderr\n{stderr}"))
}

/// A new checkout of `p`'s sources (no build dir, no install).
fn fresh_checkout(p: &TestProject) -> TestProject {
    let q = TestProject::new(&p.read("strata.toml"));
    for dir in ["modules", "patches", "mirror", "cfg"] {
        let st = std::process::Command::new("cp")
            .arg("-r")
            .arg(p.path(dir))
            .arg(q.root())
            .status()
            .unwrap();
        assert!(st.success());
    }
    q
}

fn install_of(p: &TestProject) -> BTreeMap<String, Vec<u8>> {
    snapshot(&p.path("install"))
}

fn show(tree: &BTreeMap<String, Vec<u8>>) -> String {
    tree.iter()
        .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v).trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The property every test checks after a build of `p` at inputs `i`:
/// `install/` equals a clean build of `i` in another checkout (its own
/// cache), and a third checkout restoring from `p`'s cache gets the same.
fn assert_clean(p: &TestProject, i: &Inputs, what: &str) {
    let mine = install_of(p);
    let clean = fresh_checkout(p);
    let (code, log) = build(&clean, i, &clean, &[]);
    assert_eq!(code, 0, "{what}: clean build failed: {log}");
    let want = install_of(&clean);
    assert!(
        want.contains_key("out.txt") && want.contains_key("board.txt"),
        "{what}: the clean build installed {}",
        show(&want)
    );
    assert_eq!(
        show(&mine),
        show(&want),
        "{what}: install/ differs from a clean build of the same inputs"
    );
    // The entries cached under the new keys: a checkout with nothing built
    // restores every module from `p`'s cache and must get the same bytes.
    let restored = fresh_checkout(p);
    let (code, log) = build(&restored, i, p, &[]);
    assert_eq!(code, 0, "{what}: restoring build failed: {log}");
    assert!(
        TestProject::modules_with(&log, "module-built").is_empty(),
        "{what}: expected every module restored from the cache: {log}"
    );
    assert_eq!(
        show(&install_of(&restored)),
        show(&want),
        "{what}: the artifact cached under the new key differs from a clean build"
    );
}

/// Builds `p` at `before`, then at `after`, and checks the second build.
fn change_and_check(what: &str, change: impl Fn(&mut Inputs)) {
    let p = project();
    let before = Inputs::default();
    apply(&p, &before);
    let (code, log) = build(&p, &before, &p, &[]);
    assert_eq!(code, 0, "{log}");
    let mut after = before.clone();
    change(&mut after);
    apply(&p, &after);
    let (code, log) = build(&p, &after, &p, &[]);
    assert_eq!(code, 0, "{what}: {log}");
    assert_clean(&p, &after, what);
}

#[test]
fn a_changed_build_command_rebuilds_from_a_clean_tree() {
    // The reported case: `make GREETING=Hello` → `make GREETING=Yo`.
    change_and_check("build command", |i| i.greeting = "Yo".into());
}

#[test]
fn a_changed_env_value_rebuilds_from_a_clean_tree() {
    change_and_check("env", |i| i.extra = "e2".into());
}

#[test]
fn a_changed_pass_env_value_rebuilds_from_a_clean_tree() {
    change_and_check("pass-env value", |i| i.pass = "p2".into());
}

#[test]
fn a_changed_param_and_file_param_rebuild_from_a_clean_tree() {
    change_and_check("param", |i| i.param = "t430".into());
    change_and_check("file param", |i| i.file_param = "cfg-2".into());
}

#[test]
fn a_changed_patch_rebuilds_from_a_clean_tree() {
    change_and_check("patch", |i| i.patched = "patched-2".into());
}

#[test]
fn a_changed_dependency_or_host_tool_rebuilds_from_a_clean_tree() {
    change_and_check("dependency artifact", |i| i.dep = "dep-2".into());
    change_and_check("host tool version", |i| i.tool = "tool-2".into());
}

#[test]
fn changed_configure_install_and_variant_commands_rebuild_from_a_clean_tree() {
    change_and_check("configure command", |i| i.conf = "c2".into());
    change_and_check("install command", |i| i.install = "i2".into());
    change_and_check("variant build command", |i| i.board_greeting = "Ho".into());
}

#[test]
fn a_failed_build_then_a_fixed_command_starts_from_a_clean_tree() {
    // The failed build wrote out.txt with other inputs before failing: the
    // fixed command must not find it "up to date".
    let p = project();
    let mut i = Inputs {
        greeting: "Bad && false".into(),
        ..Inputs::default()
    };
    apply(&p, &i);
    let (code, log) = build(&p, &i, &p, &[]);
    assert_eq!(code, 1, "{log}");
    i.greeting = "Good".into();
    apply(&p, &i);
    let (code, log) = build(&p, &i, &p, &[]);
    assert_eq!(code, 0, "{log}");
    assert_clean(&p, &i, "fixed after a failure");
}

#[test]
fn an_interrupted_build_with_the_same_inputs_resumes_in_its_tree() {
    // Resuming is only for the same inputs: a build whose stamps are
    // missing (killed before they were written) but whose tree was written
    // only at the current keys continues in place (make picks up where it
    // stopped), without a new unpack.
    let p = project();
    let i = Inputs::default();
    apply(&p, &i);
    assert_eq!(build(&p, &i, &p, &[]).0, 0);
    let stamp = p.path("build/.strata/modules/hello-1.0/stamps/build.stamp");
    std::fs::remove_file(&stamp).unwrap();
    std::fs::remove_file(p.path("build/.strata/modules/hello-1.0/stamps/install.stamp")).unwrap();
    let (code, log) = build(&p, &i, &p, &["--no-cache"]);
    assert_eq!(code, 0, "{log}");
    assert!(
        !log.contains("\"module\":\"hello\",\"step\":\"unpack\""),
        "resumed with the same inputs but unpacked again: {log}"
    );
    assert!(
        log.contains("\"module\":\"hello\",\"step\":\"build\""),
        "{log}"
    );
}

fn incremental_marker(p: &TestProject, i: &Inputs) -> bool {
    p.strata()
        .env("GREET_PASS", &i.pass)
        .arg("why")
        .arg("hello")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--incremental"))
        .unwrap_or(false)
}

#[test]
fn incremental_builds_reuse_the_tree_and_never_reach_the_cache() {
    let p = project();
    let mut i = Inputs::default();
    apply(&p, &i);
    assert_eq!(build(&p, &i, &p, &[]).0, 0);
    let entries = |p: &TestProject| {
        let out = p.strata().args(["cache", "ls"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let cached = entries(&p);
    i.greeting = "Yo".into();
    apply(&p, &i);
    // plan says what --incremental will do.
    let out = p
        .strata()
        .env("GREET_PASS", &i.pass)
        .args(["plan", "--incremental"])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("not saved to the cache"), "{plan}");
    let (code, log) = build(&p, &i, &p, &["--incremental"]);
    assert_eq!(code, 0, "{log}");
    // The dirty tree was reused: make found out.txt up to date.
    assert!(
        p.read("install/out.txt").starts_with("Hello|"),
        "{}",
        p.read("install/out.txt")
    );
    assert!(
        !log.contains("\"module\":\"hello\",\"step\":\"unpack\""),
        "{log}"
    );
    assert_eq!(
        entries(&p),
        cached,
        "an incremental build saved to the cache"
    );
    assert!(
        incremental_marker(&p, &i),
        "why does not name the incremental build"
    );
    // A normal build does not take the incremental output as fresh.
    let (code, log) = build(&p, &i, &p, &[]);
    assert_eq!(code, 0, "{log}");
    assert!(
        TestProject::modules_with(&log, "module-built").contains(&"hello".to_string()),
        "{log}"
    );
    assert_clean(&p, &i, "normal build after --incremental");
}

fn arb_change() -> impl Strategy<Value = (usize, u8)> {
    (0usize..11, 0u8..3)
}

fn set(i: &mut Inputs, field: usize, v: u8) {
    let v = format!("v{v}");
    match field {
        0 => i.greeting = v,
        1 => i.extra = v,
        2 => i.pass = v,
        3 => i.patched = v,
        4 => i.dep = v,
        5 => i.tool = v,
        6 => i.conf = v,
        7 => i.install = v,
        8 => i.param = v,
        9 => i.file_param = v,
        _ => i.board_greeting = v,
    }
}

fn cases() -> u32 {
    std::env::var("STRATA_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Random sequences of input changes (one or two at a time) and
    /// builds, each build followed by the clean-build comparison.
    #[test]
    fn random_input_changes_always_build_what_a_clean_build_builds(
        seq in prop::collection::vec(prop::collection::vec(arb_change(), 1..3), 1..4)
    ) {
        let p = project();
        let mut i = Inputs::default();
        apply(&p, &i);
        let (code, log) = build(&p, &i, &p, &[]);
        prop_assert_eq!(code, 0, "{}", log);
        for changes in &seq {
            for &(field, v) in changes {
                set(&mut i, field, v);
            }
            apply(&p, &i);
            let (code, log) = build(&p, &i, &p, &[]);
            prop_assert_eq!(code, 0, "{}", log);
            assert_clean(&p, &i, &format!("after {changes:?}"));
        }
        eprintln!(
            "sequence of {} changes checked; {} builds so far in this binary",
            seq.len(),
            BUILDS.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}
