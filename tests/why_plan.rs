//! `why` and `plan` say what is true: after a restore the changed step is
//! named (not "unpack"), a dependency is "rebuilt" only once it was, and
//! `fetch` is called fresh only when the package file is there.

mod common;
use common::TestProject;

fn chain() -> TestProject {
    let p = TestProject::with_default(&["b"]);
    p.local_module(
        "a",
        &[("a.txt", "A\n")],
        "env = { GREETING = \"one\" }\nbuild = \"echo $GREETING > out\"\ninstall = \"mkdir -p $STRATA_DESTDIR/share && cp out $STRATA_DESTDIR/share/a\"",
    );
    p.local_module(
        "b",
        &[("b.txt", "B\n")],
        "depends = [\"a\"]\nbuild = \"cat $STRATA_SYSROOT/share/a b.txt > out\"\ninstall = \"mkdir -p $STRATA_DESTDIR/share && cp out $STRATA_DESTDIR/share/b\"",
    );
    p
}

fn stdout(p: &TestProject, args: &[&str]) -> String {
    let out = p.strata().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The plan line of `step` under the module heading `module`.
fn plan_step(plan: &str, module: &str, step: &str) -> String {
    let mut lines = plan.lines().skip_while(|l| !l.starts_with(module));
    let _head = lines.next().unwrap_or_else(|| panic!("{module} in {plan}"));
    lines
        .take_while(|l| l.starts_with("    "))
        .find(|l| l.trim_start().starts_with(step))
        .unwrap_or_else(|| panic!("{module} {step} in {plan}"))
        .trim()
        .to_string()
}

#[test]
fn after_a_restore_a_changed_env_stales_configure_and_says_why_unpack_runs() {
    let p = chain();
    assert_eq!(p.build_json(&[]).0, 0);
    // A fresh checkout of the same tree: everything comes back from the cache.
    std::fs::remove_dir_all(p.path("build")).unwrap();
    std::fs::remove_dir_all(p.path("install")).unwrap();
    let (code, built, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(built.is_empty(), "{built:?}");

    p.write(
        "modules/a.toml",
        p.read("modules/a.toml").replace("\"one\"", "\"two\""),
    );
    let why_a = stdout(&p, &["why", "a"]);
    assert!(
        why_a.contains("a 1.0: configure is stale because:"),
        "{why_a}"
    );
    assert!(why_a.contains("env GREETING one → two"), "{why_a}");
    assert!(why_a.contains("the build restarts from unpack"), "{why_a}");
    assert!(!why_a.contains("unpack is stale"), "{why_a}");

    // The dependency has not been rebuilt yet, and `why` does not say it was.
    let why_b = stdout(&p, &["why", "b"]);
    assert!(
        why_b.contains("dependency a changed: it is stale and builds first"),
        "{why_b}"
    );
    assert!(!why_b.contains("rebuilt"), "{why_b}");

    let plan = stdout(&p, &["plan"]);
    assert!(
        plan_step(&plan, "a 1.0", "configure").contains("env GREETING one → two"),
        "{plan}"
    );
    assert!(
        plan_step(&plan, "a 1.0", "unpack").contains("restored from the cache without its source"),
        "{plan}"
    );
    assert!(
        plan_step(&plan, "a 1.0", "build").contains("after configure"),
        "{plan}"
    );

    // JSON names the changed step too.
    let json = stdout(&p, &["--json", "why", "a"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["data"]["stale-step"], "configure", "{v}");
    assert_eq!(v["data"]["restart"], "unpack", "{v}");

    // Once a was rebuilt, b's dependency really was rebuilt.
    let (code, built, err) = p.build_json(&["a"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(built, ["a"]);
    let why_b = stdout(&p, &["why", "b"]);
    assert!(
        why_b.contains("dependency a was rebuilt since this module was built"),
        "{why_b}"
    );
}

#[test]
fn fetch_is_fresh_only_when_the_package_file_is_there() {
    let p = chain();
    assert_eq!(p.build_json(&[]).0, 0);
    let plan = stdout(&p, &["plan"]);
    assert_eq!(
        plan_step(&plan, "a 1.0", "fetch"),
        "fetch      fresh (package verified)"
    );

    // Without the package file, a module whose source is on disk does not
    // need it, and the plan says so instead of "fresh": here a run killed
    // before b's install stamp, which continues in its tree (same inputs).
    std::fs::remove_dir_all(p.path("packages")).unwrap();
    std::fs::remove_file(p.path("build/.strata/modules/b-1.0/stamps/install.stamp")).unwrap();
    let plan = stdout(&p, &["--no-cache", "plan"]);
    assert_eq!(
        plan_step(&plan, "b 1.0", "fetch"),
        "fetch      not needed (source already unpacked)"
    );
    assert!(
        plan_step(&plan, "b 1.0", "install").contains("install has not run yet"),
        "{plan}"
    );
    // A changed install command restarts from a fresh tree: then the
    // package is needed after all.
    p.write(
        "modules/b.toml",
        p.read("modules/b.toml").replace("cp out", "cp -p out"),
    );
    let plan = stdout(&p, &["--no-cache", "plan"]);
    assert!(
        plan_step(&plan, "b 1.0", "fetch").starts_with("fetch      stale:"),
        "{plan}"
    );
    assert!(
        plan.contains("its build dir holds what a build with other inputs wrote"),
        "{plan}"
    );

    // A module that must unpack again and has no package file: fetch is stale.
    p.write(
        "modules/a.toml",
        p.read("modules/a.toml").replace("\"one\"", "\"two\""),
    );
    let plan = stdout(&p, &["--no-cache", "plan"]);
    let fetch = plan_step(&plan, "a 1.0", "fetch");
    assert!(
        fetch.starts_with("fetch      stale: a-1.0.tar.gz not in packages"),
        "{plan}"
    );

    // A module the cache restores needs no step at all, fetch included.
    std::fs::remove_dir_all(p.path("build")).unwrap();
    p.write(
        "modules/a.toml",
        p.read("modules/a.toml").replace("\"two\"", "\"one\""),
    );
    let plan = stdout(&p, &["plan"]);
    assert!(plan.contains("a 1.0: will be restored from"), "{plan}");
    assert_eq!(
        plan_step(&plan, "a 1.0", "fetch"),
        "fetch      restored from the cache"
    );
}

#[test]
fn once_a_restored_module_builds_why_explains_its_stamps_not_the_restore() {
    let p = chain();
    assert_eq!(p.build_json(&[]).0, 0);
    std::fs::remove_dir_all(p.path("build")).unwrap();
    assert_eq!(p.build_json(&[]).0, 0);
    // A rebuild of `a` whose build step fails: unpack and patch ran.
    p.write(
        "modules/a.toml",
        p.read("modules/a.toml")
            .replace("echo $GREETING > out", "exit 1"),
    );
    assert_ne!(p.build_json(&["--no-cache", "a"]).0, 0);
    let why = stdout(&p, &["why", "a"]);
    // Build never completed here; the restore's record is gone.
    assert!(why.contains("a 1.0: build is stale because:"), "{why}");
    assert!(!why.contains("restored from the cache"), "{why}");
}

/// Counts printed for people agree with their number: `1 module`, `1 file`,
/// `1 entry`, never `1 modules` or `1 files`.
#[test]
fn counts_of_one_are_singular() {
    let p = TestProject::with_default(&["a"]);
    p.local_module(
        "a",
        &[("a.txt", "A\n")],
        "install = \"mkdir -p $STRATA_DESTDIR && cp a.txt $STRATA_DESTDIR/\"",
    );
    let out = p.strata().arg("plan").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 of 1 module stale"), "{text}");
    let out = p.strata().arg("fetch").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Finished 1 package verified"), "{err}");
    p.strata().arg("build").assert().success();
    let out = p.strata().args(["cache", "ls"]).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains(" 1 file"), "{text}");
    assert!(text.contains("1 entry, "), "{text}");
    assert!(
        !text.contains("1 files") && !text.contains("1 entries"),
        "{text}"
    );
    let out = p.strata().args(["cache", "verify"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 entry verified"), "{err}");
}
