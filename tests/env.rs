//! End-to-end tests of what a module's commands run in: one jobserver for
//! the whole build (real GNU make), host tools on PATH, a hermetic
//! environment whose passed-through values are key inputs, and the warning
//! for installed files that embed the build path.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Each recipe counts itself in (under flock), records the peak, sleeps,
/// and counts itself out. `$COUNT_DIR` (else `$HOME/count`, which a
/// sandboxed command may write) holds `cur`, `peak` and the lock.
const COUNT_SH: &str = r#"#!/bin/sh
set -e
d="${COUNT_DIR:-$HOME/count}"
mkdir -p "$d"
flock "$d/lock" sh -c 'test -f "$1/cur" || { echo 0 > "$1/cur"; echo 0 > "$1/peak"; }; n=$(( $(cat "$1/cur") + 1 )); echo $n > "$1/cur"; if [ $n -gt $(cat "$1/peak") ]; then echo $n > "$1/peak"; fi' _ "$d"
sleep 0.4
flock "$d/lock" sh -c 'echo $(( $(cat "$1/cur") - 1 )) > "$1/cur"' _ "$d"
"#;

const COUNT_MK: &str = "T := 1 2 3 4 5 6\nall: $(addprefix t,$(T))\nt%:\n\t@./count.sh\n";

fn counter(p: &TestProject) -> std::path::PathBuf {
    let d = p.path("count");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("cur"), "0\n").unwrap();
    std::fs::write(d.join("peak"), "0\n").unwrap();
    d
}

fn peak(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("peak"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `n` modules, each running `make` (no -j: MAKEFLAGS carries the share),
/// all counting in one dir outside the project's build dirs: build them
/// with `STRATA_SANDBOX=off`, since a sandboxed command cannot write there.
fn counting_project(n: usize) -> (TestProject, std::path::PathBuf) {
    let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let p = TestProject::with_default(&refs);
    let dir = counter(&p);
    for m in &names {
        p.local_module(
            m,
            &[("Makefile", COUNT_MK), ("count.sh", COUNT_SH)],
            &format!(
                "env = {{ COUNT_DIR = \"{}\" }}\nbuild = \"make\"\n",
                dir.display()
            ),
        );
    }
    (p, dir)
}

fn no_parent_jobserver(c: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    c.env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
}

#[test]
fn one_module_s_make_gets_every_job_of_the_build() {
    // Counting in its own HOME, so in the sandbox: the jobserver's pipe
    // descriptors reach the make inside it.
    let p = TestProject::with_default(&["m0"]);
    p.local_module(
        "m0",
        &[("Makefile", COUNT_MK), ("count.sh", COUNT_SH)],
        "build = \"make\"\n",
    );
    let mut c = p.strata();
    no_parent_jobserver(&mut c)
        .env("STRATA_SANDBOX", "require")
        .args(["build", "-j3"])
        .assert()
        .success();
    assert_eq!(
        peak(&p.path("build/.strata/modules/m0-1.0/home/count")),
        3,
        "a plain `make` runs -j3 through the jobserver"
    );
}

#[test]
fn jobs_are_a_total_across_modules_and_their_makes() {
    let (p, dir) = counting_project(4);
    let mut c = p.strata();
    no_parent_jobserver(&mut c)
        .env("STRATA_SANDBOX", "off")
        .args(["build", "-j2"])
        .assert()
        .success();
    assert_eq!(peak(&dir), 2, "4 modules × make under -j2 never exceed 2");
    let log = p.read("build/.strata/modules/m0-1.0/logs/build.log");
    assert!(!log.contains("forced in submake"), "{log}");
}

#[test]
fn strata_under_make_joins_its_jobserver() {
    let (p, dir) = counting_project(4);
    let strata = assert_cmd::cargo::cargo_bin("strata");
    p.write(
        "Makefile",
        format!(
            "all:\n\t+{} -C {} build -j4\n",
            strata.display(),
            p.root().display()
        ),
    );
    let out = Command::new("make")
        .arg("-j2")
        .arg("-f")
        .arg(p.path("Makefile"))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .env("STRATA_SANDBOX", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        peak(&dir),
        2,
        "strata -j4 under make -j2 uses the parent's 2 jobs"
    );
}

#[test]
fn a_host_tool_is_on_its_dependents_path_and_not_in_their_sysroot() {
    let p = TestProject::with_default(&["fw"]);
    p.local_module(
        "mytool",
        &[("mytool.sh", "#!/bin/sh\necho \"tool saw $1\"\n")],
        "host = true\ninstall = \"mkdir -p $STRATA_DESTDIR/bin && cp mytool.sh $STRATA_DESTDIR/bin/mytool\"",
    );
    p.local_module(
        "lib",
        &[("lib.txt", "L\n")],
        "install = \"mkdir -p $STRATA_DESTDIR/share && cp lib.txt $STRATA_DESTDIR/share/\"",
    );
    p.local_module(
        "fw",
        &[("fw.c", "int main;\n")],
        "depends = [\"mytool\", \"lib\"]\n\
         build = \"mytool fw.c > fw.bin && command -v mytool > where.txt && ls $STRATA_SYSROOT/share $STRATA_SYSROOT > sysroot.txt\"\n\
         install = \"mkdir -p $STRATA_DESTDIR/fw && cp fw.bin $STRATA_DESTDIR/fw/\"",
    );
    p.strata().arg("build").assert().success();
    assert_eq!(p.read("install/fw/fw.bin"), "tool saw fw.c\n");
    let host = p.path("build/.strata/modules/fw-1.0/host");
    assert_eq!(
        p.read("build/fw-1.0/where.txt").trim(),
        host.join("bin/mytool").display().to_string()
    );
    let sysroot = p.read("build/fw-1.0/sysroot.txt");
    assert!(sysroot.contains("lib.txt"), "{sysroot}");
    assert!(!sysroot.contains("bin"), "host tools stay out: {sysroot}");
    assert!(!p.path("install/bin/mytool").exists());
}

const SHOW_ENV: &str = "build = \"\"\"\n\
    { echo \"CFLAGS=${CFLAGS-unset}\"; echo \"PASS=${TEST_PASS_ENV-unset}\"; \
      echo \"HOME=$HOME\"; echo \"LC_ALL=$LC_ALL\"; echo \"TZ=$TZ\"; \
      echo \"SDE=$SOURCE_DATE_EPOCH\"; echo \"PATH=$PATH\"; echo \"MAKEFLAGS=$MAKEFLAGS\"; } > env.txt\n\
    touch made.txt\n\"\"\"\n\
    install = \"mkdir -p $STRATA_DESTDIR/share && cp made.txt $STRATA_DESTDIR/share/\"\n";

fn env_project() -> TestProject {
    let p = TestProject::new(
        "[project]\nname = \"t\"\n\n[settings]\npass-env = [\"TEST_PASS_ENV\"]\n\n[target.default]\nmodules = [\"m\"]\n",
    );
    p.local_module("m", &[("a.txt", "a\n")], SHOW_ENV);
    p
}

/// Runs `strata ARGS` with umask 077, CFLAGS and the pass-env value `pass`.
fn strata_in_dirty_env(p: &TestProject, pass: &str, args: &[&str]) -> std::process::Output {
    let mut c = p.raw();
    c.args(args)
        .env("CFLAGS", "-O0 -from-the-user-shell")
        .env("TEST_PASS_ENV", pass)
        .env("LC_ALL", "de_DE.UTF-8")
        .env("TZ", "Asia/Tokyo")
        .env("MAKEFLAGS", "-k");
    // SAFETY: umask(2) only, in the child before exec.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    c.output().unwrap()
}

#[test]
fn commands_get_a_clean_environment_and_pass_env_values_are_key_inputs() {
    let p = env_project();
    let out = strata_in_dirty_env(&p, "one", &["build"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = p.read("build/m-1.0/env.txt");
    let line = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} in {env}"))
            .to_string()
    };
    assert_eq!(line("CFLAGS"), "unset");
    assert_eq!(line("PASS"), "one");
    assert_eq!(line("LC_ALL"), "C.UTF-8");
    assert_eq!(line("TZ"), "UTC");
    // The newest mtime in the test tarball.
    assert_eq!(line("SDE"), "1600000000");
    assert!(
        line("HOME").starts_with(&p.path("build").display().to_string()),
        "{env}"
    );
    assert!(
        line("PATH").ends_with(":/usr/local/bin:/usr/bin:/bin"),
        "{env}"
    );
    assert!(line("MAKEFLAGS").contains("--jobserver-auth="), "{env}");
    assert!(!line("MAKEFLAGS").contains("-k"), "{env}");
    // umask 022 whatever strata's own.
    let mode = std::fs::metadata(p.path("install/share/made.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);

    // Same value: fresh. Another value: configure is stale and `why` says so.
    let out = strata_in_dirty_env(&p, "one", &["--json", "build"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(TestProject::modules_with(&stdout, "module-built").is_empty());
    let out = strata_in_dirty_env(&p, "two", &["why", "m"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let why = String::from_utf8_lossy(&out.stdout);
    assert!(why.contains("configure is stale"), "{why}");
    assert!(why.contains("pass-env TEST_PASS_ENV one → two"), "{why}");
    let out = strata_in_dirty_env(&p, "two", &["--json", "build"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(TestProject::modules_with(&stdout, "module-built"), ["m"]);
    assert!(p.read("build/m-1.0/env.txt").contains("PASS=two"));
}

#[test]
fn a_reserved_pass_env_name_is_a_manifest_error() {
    let p = TestProject::new("[project]\nname = \"t\"\n\n[settings]\npass-env = [\"MAKEFLAGS\"]\n");
    p.strata()
        .arg("plan")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("pass-env `MAKEFLAGS`"));
}

#[test]
fn installed_files_that_embed_the_build_dir_are_named_in_a_warning() {
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("a.txt", "a\n")],
        "install = \"mkdir -p $STRATA_DESTDIR/lib/pkgconfig $STRATA_DESTDIR/share && echo prefix=$STRATA_BUILD_DIR/out > $STRATA_DESTDIR/lib/pkgconfig/m.pc && cp a.txt $STRATA_DESTDIR/share/\"",
    );
    let out = p.strata().arg("build").output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not relocatable"), "{err}");
    assert!(err.contains("lib/pkgconfig/m.pc"), "{err}");
    assert!(!err.contains("share/a.txt"), "{err}");
}

#[test]
fn strata_under_make_without_plus_says_how_to_share_the_jobserver() {
    let p = TestProject::with_default(&["m"]);
    p.local_module("m", &[("a.txt", "a\n")], "build = \"true\"");
    let strata = assert_cmd::cargo::cargo_bin("strata");
    // No `+` and no $(MAKE): make does not hand its descriptors down.
    p.write(
        "Makefile",
        format!(
            "all:\n\t{} -C {} build\n",
            strata.display(),
            p.root().display()
        ),
    );
    let out = Command::new("make")
        .arg("-j2")
        .arg("-f")
        .arg(p.path("Makefile"))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("MAKEFLAGS names a jobserver strata cannot use"),
        "{err}"
    );
    assert!(err.contains("`+strata build`"), "{err}");
}
