//! The two manifest features Heads's image steps need, end to end:
//! `source = "none"` (a module its commands make alone) and `{ dir = … }`
//! params (a directory whose content, modes included, is in the key).

mod common;

use common::TestProject;

fn project() -> TestProject {
    let p = TestProject::new(
        "[project]\nname = \"t\"\n\n[target.default]\nmodules = [\"image\"]\n\
         params = { TREE = { dir = \"tree\" } }\n",
    );
    p.write("tree/init", "#!/bin/sh\n");
    p.write("tree/etc/motd", "hi\n");
    p.write(
        "modules/image.toml",
        "name = \"image\"\nversion = \"1\"\nsource = \"none\"\nparams = [\"TREE\"]\n\
         build = \"test -z \\\"$(ls -A)\\\"; (cd \\\"$STRATA_PARAM_TREE\\\" && find . -type f -perm -u+x | LC_ALL=C sort) > list\"\n\
         install = \"cp list \\\"$STRATA_DESTDIR/\\\"\"\n",
    );
    p
}

fn built(p: &TestProject) -> Vec<String> {
    let out = p.strata().args(["build", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = TestProject::modules_with(&String::from_utf8_lossy(&out.stdout), "step-finished");
    m.dedup();
    m
}

#[test]
fn a_sourceless_module_builds_from_an_empty_tree_and_a_dir_param_keys_its_content_and_modes() {
    let p = project();
    assert_eq!(built(&p).len(), 1);
    assert_eq!(p.read("install/list"), "");
    // Fresh: nothing runs.
    assert!(built(&p).is_empty());
    // A mode change alone (the initrd keeps owner bits) rebuilds.
    let init = p.path("tree/init");
    let mut perm = std::fs::metadata(&init).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&init, perm).unwrap();
    assert_eq!(built(&p).len(), 1);
    assert_eq!(p.read("install/list"), "./init\n");
    // So does a new file.
    p.write("tree/etc/new", "x\n");
    assert_eq!(built(&p).len(), 1);
    // plan says why fetch is not needed; graph --json names the dir.
    p.write("tree/etc/new", "y\n");
    let plan = p.strata().arg("plan").output().unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.contains("not needed (source = \"none\")"), "{plan}");
    let g = p.strata().args(["graph", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&g.stdout).unwrap();
    assert!(v.to_string().contains("\"dir\":\"tree\""), "{v}");
    // Nothing to download.
    let f = p.strata().args(["fetch", "--dry-run"]).output().unwrap();
    let f = String::from_utf8_lossy(&f.stdout);
    assert!(f.starts_with("0 files"), "{f}");
}

#[test]
fn source_none_with_a_url_or_another_value_is_refused() {
    let p = project();
    p.write(
        "modules/image.toml",
        "name = \"image\"\nversion = \"1\"\nsource = \"none\"\nurl = \"https://x.invalid/a.tar.gz\"\n",
    );
    let o = p.strata().arg("plan").output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("source = \"none\" and a url"));
    p.write(
        "modules/image.toml",
        "name = \"image\"\nversion = \"1\"\nsource = \"tarball\"\n",
    );
    let o = p.strata().arg("plan").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not known"));
    // A missing directory is named.
    p.write(
        "modules/image.toml",
        "name = \"image\"\nversion = \"1\"\nsource = \"none\"\nparams = [\"TREE\"]\n",
    );
    std::fs::remove_dir_all(p.path("tree")).unwrap();
    let o = p.strata().arg("plan").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("names directory `tree`"));
}
