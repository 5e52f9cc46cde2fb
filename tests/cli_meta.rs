//! `strata init`, `strata completions`, `strata man`, and flag conflicts.

fn strata() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("strata").unwrap();
    c.env("NO_COLOR", "1");
    c
}

#[test]
fn init_writes_a_project_that_builds_and_applies_its_patch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("newfw");
    let cache = tmp.path().join("xdg");
    strata()
        .arg("-C")
        .arg(&dir)
        .arg("init")
        .env("XDG_CACHE_HOME", &cache)
        .assert()
        .success();
    let toml = std::fs::read_to_string(dir.join("strata.toml")).unwrap();
    // `strata ci run` keeps its state in .strata/: never committed.
    let ignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "/.strata/"), "{ignore}");
    assert!(toml.contains("name = \"newfw\""), "{toml}");
    assert!(dir.join("patches/hello-1.0/0001-say-more.patch").is_file());
    strata()
        .arg("-C")
        .arg(&dir)
        .arg("build")
        .env("XDG_CACHE_HOME", &cache)
        .assert()
        .success();
    let out = std::process::Command::new(dir.join("install/bin/hello"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        "Hello from strata\n(patched by patches/hello-1.0/0001-say-more.patch)\n"
    );
    // A second init refuses to touch an existing project (usage error).
    let again = strata()
        .arg("-C")
        .arg(&dir)
        .arg("init")
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a strata.toml"));
}

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = strata().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        for sub in ["build", "plan", "cache", "ci", "init"] {
            assert!(text.contains(sub), "{shell} completions lack `{sub}`");
        }
    }
    let bad = strata().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_prints_a_roff_page_naming_the_commands() {
    let out = strata().arg("man").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);

    assert!(text.contains(".TH strata"));
    assert!(text.contains("build"));
    // One page: no `strata-build(1)` and friends, which are not shipped.
    assert!(!text.contains("strata-build("), "{text}");
    assert!(text.contains("strata cache gc"), "{text}");
    // The exit codes and environment README.md documents.
    assert!(text.contains(".SH \"EXIT STATUS\""), "{text}");
    for code in ["0", "1", "2", "130", "141"] {
        assert!(text.contains(&format!("\\fB{code}\\fR\n")), "{code}");
    }
    assert!(text.contains(".SH ENVIRONMENT"), "{text}");
    for var in [
        "STRATA_FETCH_TIMEOUT",
        "STRATA_RESTORE_MODE",
        "STRATA_MAKE",
        "NO_PROXY",
    ] {
        assert!(text.contains(var), "{var}");
    }
}

#[test]
fn verbose_and_quiet_together_are_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = strata()
        .arg("-C")
        .arg(tmp.path())
        .env("XDG_CACHE_HOME", tmp.path().join("xdg"))
        .args(["-v", "-q", "plan"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

fn help(args: &[&str]) -> String {
    let out = strata().args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn jobs_help_says_it_is_the_total_shared_with_make() {
    let text = help(&["build"]);
    assert!(text.contains("Total jobs of the build"), "{text}");
    assert!(!text.contains("Modules built at once"), "{text}");
}

#[test]
fn output_flags_have_one_name_and_out_is_a_hidden_alias() {
    let import = help(&["import", "heads"]);
    assert!(import.contains("-o, --output <DIR>"), "{import}");
    assert!(!import.contains("--out "), "{import}");
    let generate = help(&["ci", "generate"]);
    assert!(generate.contains("-o, --output <FILE>"), "{generate}");
}

#[test]
fn quiet_init_prints_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = strata()
        .arg("-C")
        .arg(tmp.path().join("p"))
        .args(["-q", "init"])
        .env("XDG_CACHE_HOME", tmp.path().join("xdg"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(tmp.path().join("p/strata.toml").is_file());
}
