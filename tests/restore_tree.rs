//! End-to-end tests of fast local restore: the local store keeps each
//! restored artifact unpacked (`v1/trees/`), and later restores link or copy
//! from it instead of extracting the archive (docs/cache.md, "Restoring").

mod common;

use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Module `a`: destdir files (an executable, a library, a symlink, an empty
/// dir) and a keep path `out/` (a build dir later builds may write into).
fn project(extra_toml: &str) -> TestProject {
    let p = TestProject::with_default(&["a"]);
    p.write(
        "strata.toml",
        format!("{}{extra_toml}", p.read("strata.toml")),
    );
    p.local_module(
        "a",
        &[("src.c", "int x;\n")],
        r#"keep = ["out"]
build = '''
mkdir -p out/sub && echo obj > out/obj.o && ln -s obj.o out/link
printf '#!/bin/sh\necho hi\n' > out/sub/run && chmod 755 out/sub/run
'''
install = '''
mkdir -p $STRATA_DESTDIR/bin $STRATA_DESTDIR/lib $STRATA_DESTDIR/share/empty
printf '#!/bin/sh\necho tool\n' > $STRATA_DESTDIR/bin/tool && chmod 755 $STRATA_DESTDIR/bin/tool
echo 'library bytes' > $STRATA_DESTDIR/lib/liba.a
ln -s ../lib/liba.a $STRATA_DESTDIR/bin/liba-link
'''"#,
    );
    p
}

fn store(p: &TestProject) -> PathBuf {
    p.path(".xdg-cache/strata")
}

/// The trees in the store (temp and trash dirs excluded).
fn trees(p: &TestProject) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(store(p).join("v1/trees"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn the_tree(p: &TestProject) -> PathBuf {
    let t = trees(p);
    assert_eq!(t.len(), 1, "expected one tree, found {t:?}");
    t[0].join("root")
}

fn archive(p: &TestProject) -> PathBuf {
    for shard in std::fs::read_dir(store(p).join("v1")).unwrap().flatten() {
        for e in std::fs::read_dir(shard.path()).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".tar.zst") {
                return e.path();
            }
        }
    }
    panic!("no archive in the store");
}

/// The notes of entries restored once without a tree.
fn restored_notes(p: &TestProject) -> Vec<String> {
    std::fs::read_dir(store(p).join("v1/trees"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && n.ends_with(".restored"))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the build and install dirs, then builds: the module is restored
/// from the local store's tree. An entry's first restore extracts its
/// archive and makes no tree, so for an entry never restored this restores
/// twice. Returns the warnings (one per line) and stderr of the last.
fn restore(p: &TestProject, env: &[(&str, &str)]) -> String {
    let archive_mode = env.contains(&("STRATA_RESTORE_MODE", "archive"));
    if !archive_mode && trees(p).is_empty() && restored_notes(p).is_empty() {
        assert_eq!(restore_once(p, env), "");
        assert!(trees(p).is_empty(), "a first restore makes no tree");
        assert_eq!(restored_notes(p).len(), 1);
    }
    restore_once(p, env)
}

/// [`restore`], once.
fn restore_once(p: &TestProject, env: &[(&str, &str)]) -> String {
    p.strata().args(["clean", "--all"]).assert().success();
    let mut cmd = p.strata();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(["--json", "build"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        TestProject::modules_with(&stdout, "module-restored"),
        ["a"],
        "{stdout}"
    );
    let mut said = String::new();
    for v in stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "warning")
    {
        said += &format!("warning: {}\n", v["data"]["message"].as_str().unwrap());
    }
    said + &stderr
}

/// Path → (kind, mode, content or link target, mtime of files) under `dir`.
fn describe(dir: &Path) -> BTreeMap<String, (char, u32, Vec<u8>, i64)> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, (char, u32, Vec<u8>, i64)>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.mode() & 0o7777;
            if m.is_dir() {
                out.insert(rel, ('d', mode, Vec::new(), 0));
                walk(root, &p, out);
            } else if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, ('l', 0, t.into_os_string().into_encoded_bytes(), 0));
            } else {
                out.insert(rel, ('f', mode, std::fs::read(&p).unwrap(), m.mtime()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The restored build dir and destdir, as the archive gives them through
/// GNU tar: `zstd -dc archive | tar -xp`.
fn assert_same_as_tar(p: &TestProject) {
    let reference = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "zstd -dc '{}' | tar -xpf - -C '{}'",
            archive(p).display(),
            reference.path().display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let ref_dest = describe(&reference.path().join(".strata/destdir"));
    std::fs::remove_dir_all(reference.path().join(".strata")).unwrap();
    assert_eq!(
        describe(&p.path("build/.strata/modules/a-1.0/destdir")),
        ref_dest
    );
    assert_eq!(describe(&p.path("build/a-1.0")), describe(reference.path()));
    assert!(ref_dest.contains_key("share/empty") && ref_dest.contains_key("bin/liba-link"));
}

/// Whether the filesystem of `dir` can reflink (then restored files are
/// private clones, not hardlinks).
fn reflink_capable(dir: &Path) -> bool {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .unwrap();
    let fs = String::from_utf8_lossy(&out.stdout);
    fs.contains("btrfs") || fs.contains("xfs")
}

fn inode(p: &Path) -> (u64, u64) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.dev(), m.ino())
}

#[test]
fn a_restore_from_the_tree_is_identical_to_extracting_the_archive() {
    let p = project("");
    p.strata().arg("build").assert().success();
    assert!(trees(&p).is_empty(), "a build that packs makes no tree");
    // The first restore extracts the archive (a CI job's only restore of
    // it); the second makes the tree from the archive, the third uses it.
    assert_eq!(restore_once(&p, &[]), "");
    assert!(trees(&p).is_empty());
    assert_eq!(restored_notes(&p).len(), 1);
    assert_same_as_tar(&p);
    assert_eq!(restore_once(&p, &[]), "");
    assert_eq!(trees(&p).len(), 1);
    assert_same_as_tar(&p);
    assert_eq!(restore_once(&p, &[]), "");
    assert_same_as_tar(&p);
    assert_eq!(p.read("install/lib/liba.a"), "library bytes\n");
    // Restored destdirs still make working installs and fresh modules.
    let (code, built, err) = p.build_json(&[]);
    assert_eq!((code, built), (0, vec![]), "{err}");
    // The archive mode neither uses nor makes a tree, with the same result.
    std::fs::remove_dir_all(store(&p).join("v1/trees")).unwrap();
    restore(&p, &[("STRATA_RESTORE_MODE", "archive")]);
    assert!(trees(&p).is_empty());
    assert_same_as_tar(&p);
}

/// No restored file shares an inode with the store's tree (a build
/// writing into one would change the store and every other checkout), in
/// the default mode and in `copy`, which now means the same.
#[test]
fn no_restored_file_shares_an_inode_with_the_store() {
    for (extra, env) in [
        ("", vec![]),
        ("", vec![("STRATA_RESTORE_MODE", "copy")]),
        ("\n[cache]\nrestore = \"copy\"\n", vec![]),
    ] {
        let p = project(extra);
        p.strata().arg("build").assert().success();
        restore(&p, &env);
        restore(&p, &env);
        let tree = the_tree(&p);
        let mut stored = Vec::new();
        for (rel, (kind, ..)) in describe(&tree) {
            if kind == 'f' {
                stored.push(inode(&tree.join(rel)));
            }
        }
        assert_eq!(stored.len(), 4);
        for dir in [
            "build/a-1.0",
            "build/.strata/modules/a-1.0/destdir",
            "install",
        ] {
            for (rel, (kind, ..)) in describe(&p.path(dir)) {
                if kind == 'f' {
                    let ino = inode(&p.path(dir).join(&rel));
                    assert!(
                        !stored.contains(&ino),
                        "{dir}/{rel} shares the store's inode"
                    );
                    if dir != "install" {
                        let m = std::fs::metadata(p.path(dir).join(&rel)).unwrap();
                        assert_eq!(m.nlink(), 1, "{dir}/{rel}");
                    }
                }
            }
        }
        assert_same_as_tar(&p);
    }
    let p = project("");
    p.strata()
        .env("STRATA_RESTORE_MODE", "links")
        .arg("build")
        .assert()
        .failure()
        .stderr(predicates::str::contains("STRATA_RESTORE_MODE"))
        .stderr(predicates::str::contains("auto, copy or archive"));
}

#[test]
fn a_tree_file_written_in_place_is_detected_and_the_archive_restores_the_original() {
    let p = project("");
    p.strata().arg("build").assert().success();
    restore(&p, &[]);
    let victim = the_tree(&p).join(".strata/destdir/lib/liba.a");
    // An in-place write of the same size into the store itself (it shows
    // in the mtime).
    std::fs::write(&victim, "LIBRARY BYTES\n").unwrap();
    let err = restore(&p, &[]);
    assert!(err.contains("module a"), "{err}");
    assert!(err.contains("is damaged"), "{err}");
    assert!(err.contains(".strata/destdir/lib/liba.a"), "{err}");
    assert!(err.contains(&store(&p).display().to_string()), "{err}");
    assert_eq!(err.matches("warning").count(), 1, "warned once: {err}");
    assert_eq!(p.read("install/lib/liba.a"), "library bytes\n");
    assert_same_as_tar(&p);
    // The tree was rebuilt from the archive: the next restore is quiet.
    assert_eq!(
        std::fs::read(the_tree(&p).join(".strata/destdir/lib/liba.a")).unwrap(),
        b"library bytes\n"
    );
    assert_eq!(restore(&p, &[]), "");

    // A chmod and a missing file are damage too.
    std::fs::remove_file(the_tree(&p).join("out/obj.o")).unwrap();
    let err = restore(&p, &[]);
    assert!(
        err.contains("is damaged") && err.contains("out/obj.o"),
        "{err}"
    );
    assert_same_as_tar(&p);
    use std::os::unix::fs::PermissionsExt;
    let tool = the_tree(&p).join(".strata/destdir/bin/tool");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(restore(&p, &[]).contains("has mode 700, recorded 755"));
    assert_same_as_tar(&p);
}

#[test]
fn a_deleted_tree_is_rebuilt_and_a_corrupt_archive_is_not_trusted_for_one() {
    let p = project("");
    p.strata().arg("build").assert().success();
    restore(&p, &[]);
    std::fs::remove_dir_all(the_tree(&p)).unwrap();
    std::fs::remove_file(trees(&p)[0].join("manifest")).unwrap();
    // A tree dir without its manifest is damaged: discarded, rebuilt.
    let err = restore(&p, &[]);
    assert!(err.contains("is damaged"), "{err}");
    assert_same_as_tar(&p);
    std::fs::remove_dir_all(store(&p).join("v1/trees")).unwrap();
    assert_eq!(restore(&p, &[]), "", "a missing tree is simply made again");
    assert_eq!(trees(&p).len(), 1);
    assert_same_as_tar(&p);

    // A corrupt archive with no tree is quarantined (and its tree with it
    // when one exists): the module builds.
    std::fs::remove_dir_all(store(&p).join("v1/trees")).unwrap();
    let a = archive(&p);
    let mut bytes = std::fs::read(&a).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&a, bytes).unwrap();
    p.strata().args(["clean", "--all"]).assert().success();
    p.strata()
        .arg("build")
        .assert()
        .success()
        .stderr(predicates::str::contains("is corrupt"))
        .stderr(predicates::str::contains("quarantined"));
    assert!(trees(&p).is_empty());
    assert_eq!(p.read("install/lib/liba.a"), "library bytes\n");
}

#[test]
fn a_killed_tree_maker_leaves_a_temp_dir_the_next_run_sweeps() {
    let p = TestProject::with_default(&["big"]);
    // Enough files that making the tree takes a while.
    p.local_module(
        "big",
        &[("README", "big\n")],
        "install = \"for d in $(seq 40); do mkdir -p $STRATA_DESTDIR/d$d; for f in $(seq 100); do echo $d$f > $STRATA_DESTDIR/d$d/f$f; done; done; head -c 33554432 /dev/urandom > $STRATA_DESTDIR/blob\"",
    );
    p.strata().arg("build").assert().success();
    // The entry's first restore extracts the archive; the second makes the tree.
    p.strata().args(["clean", "--all"]).assert().success();
    p.strata().arg("build").assert().success();
    p.strata().args(["clean", "--all"]).assert().success();
    let trees_dir = store(&p).join("v1/trees");
    let caught = {
        let mut child = p
            .raw()
            .arg("build")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let temp_tree = || {
            std::fs::read_dir(&trees_dir).is_ok_and(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            })
        };
        loop {
            if temp_tree() {
                let running = child.try_wait().unwrap().is_none();
                child.kill().unwrap();
                child.wait().unwrap();
                break running;
            }
            if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
                let _ = child.kill();
                break false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    };
    assert!(
        caught,
        "the restore finished before the kill; make the module bigger"
    );
    assert!(
        trees(&p).is_empty(),
        "a killed maker left a tree under its real name"
    );
    let leftovers = |p: &TestProject| {
        std::fs::read_dir(store(p).join("v1/trees"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .count()
    };
    assert_eq!(leftovers(&p), 1);
    let out = p.strata().args(["--json", "build"]).output().unwrap();
    assert!(out.status.success());
    let events = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        TestProject::modules_with(&events, "module-restored"),
        ["big"]
    );
    assert_eq!(leftovers(&p), 0, "the temp tree was not swept");
    assert_eq!(trees(&p).len(), 1);
    assert_eq!(p.read("install/d40/f100"), "40100\n");
}

#[test]
fn gc_and_cache_commands_count_and_remove_trees_with_their_entries() {
    let p = project("");
    p.strata().arg("build").assert().success();
    restore(&p, &[]);
    let tree = trees(&p)[0].clone();
    // An orphaned tree (its entry gone) is removed by gc; so is a leftover
    // temp tree.
    let orphan = store(&p)
        .join("v1/trees")
        .join(format!("{}-0123456789abcdef", "f".repeat(64)));
    std::fs::create_dir_all(orphan.join("root")).unwrap();
    // And the note of a restore of an entry that is gone.
    let orphan_note = store(&p)
        .join("v1/trees")
        .join(format!(".{}-0123456789abcdef.restored", "f".repeat(64)));
    std::fs::write(&orphan_note, "").unwrap();
    let out = p
        .strata()
        .args(["cache", "gc", "--max-size", "1G"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!orphan.exists(), "an orphaned tree survived gc");
    assert!(!orphan_note.exists(), "an orphaned note survived gc");
    assert_eq!(
        restored_notes(&p).len(),
        1,
        "gc removed a kept entry's note"
    );
    assert!(tree.is_dir(), "gc removed a tree whose entry it kept");
    p.strata()
        .args(["cache", "verify"])
        .assert()
        .success()
        .stdout(predicates::str::contains("ok (and its unpacked tree)"));
    // verify also checks the tree, and removes it when damaged (the
    // archive is fine: not an error).
    std::fs::write(tree.join("root/out/obj.o"), "OBJ\n").unwrap();
    p.strata()
        .args(["cache", "verify"])
        .assert()
        .success()
        .stdout(predicates::str::contains("unpacked tree was damaged"))
        .stdout(predicates::str::contains("out/obj.o"));
    assert!(!tree.exists());
    restore(&p, &[]);
    assert!(tree.is_dir());
    // An entry gc removes takes its tree (and its note) with it.
    p.strata()
        .args(["cache", "gc", "--max-size", "1"])
        .assert()
        .success();
    assert!(!tree.exists(), "a removed entry's tree survived");
    assert!(
        std::fs::read_dir(store(&p).join("v1/trees"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn cache_ls_counts_trees_and_prune_store_drops_them_before_a_ci_save() {
    let p = project("");
    p.strata().arg("build").assert().success();
    let out = p.strata().args(["cache", "ls"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(", 0 B unpacked for fast restores"), "{err}");
    restore(&p, &[]);
    let out = p.strata().args(["cache", "ls"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(" 0 B unpacked"), "{err}");
    let out = p.strata().args(["--json", "cache", "ls"]).output().unwrap();
    let summary: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "cache-summary")
        .unwrap();
    // bin/tool (20) + lib/liba.a (14) + out/obj.o (4) + out/sub/run (18).
    assert_eq!(summary["data"]["unpacked-bytes"], 56, "{summary}");
    // A CI job saves the store as a cache: trees would double it.
    p.strata()
        .args(["ci", "prune-store", "default"])
        .assert()
        .success();
    assert!(trees(&p).is_empty());
    let archive = archive(&p);
    assert!(
        archive.is_file(),
        "prune-store removed the target's own entry"
    );
    assert_eq!(
        restore(&p, &[]),
        "",
        "the next restore makes the tree again"
    );
    assert_eq!(trees(&p).len(), 1);
}

#[test]
fn a_restore_says_how_it_placed_the_files() {
    let p = project("");
    p.strata().arg("build").assert().success();
    let placed = |env: &[(&str, &str)]| -> serde_json::Value {
        p.strata().args(["clean", "--all"]).assert().success();
        let mut cmd = p.strata();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.args(["--json", "build"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["type"] == "module-restored")
            .expect("a module-restored event")["data"]["placed"]
            .clone()
    };
    // From the archive: nothing placed from a tree.
    assert!(placed(&[("STRATA_RESTORE_MODE", "archive")]).is_null());
    // An entry's first restore extracts the archive too.
    assert!(placed(&[]).is_null());
    // From the tree: every file reflinked, or else copied; never linked.
    let v = placed(&[]);
    let n = |k: &str| v[k].as_u64().unwrap();
    if reflink_capable(&the_tree(&p)) {
        assert_eq!((n("reflinked"), n("linked"), n("copied")), (4, 0, 0), "{v}");
    } else {
        assert_eq!((n("reflinked"), n("linked"), n("copied")), (0, 0, 4), "{v}");
        // And the human line says so.
        p.strata().args(["clean", "--all"]).assert().success();
        let out = p.strata().arg("build").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("files 4 copied"), "{err}");
    }
    let v = placed(&[("STRATA_RESTORE_MODE", "copy")]);
    assert_eq!(v["copied"], 4, "{v}");
}

/// An entry that cannot be extracted *here* (this project's lower unpack
/// limits; a full disk is the same case) is not the entry's fault: it is
/// never quarantined, and the module builds instead.
#[test]
fn an_entry_this_project_cannot_extract_is_not_quarantined() {
    let p = project("");
    p.strata().arg("build").assert().success();
    let entry = archive(&p);
    p.strata().args(["clean", "--all"]).assert().success();
    let out = p
        .strata()
        .env("STRATA_UNPACK_MAX_BYTES", "4")
        .args(["--json", "build", "--no-push"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The source unpack hits the same limit, so the build fails; what
    // matters is what happened to the cache entry.
    assert!(stdout.contains("could not be extracted here"), "{stdout}");
    assert!(!stdout.contains("quarantined"), "{stdout}");
    assert!(entry.is_file(), "the entry was moved away");
    assert!(!store(&p).join("quarantine").exists());
    // With the limits back, the same entry restores.
    restore(&p, &[]);
}

#[test]
fn absolute_and_dangling_symlinks_and_a_dot_git_are_restored_verbatim() {
    // The report: a venv-like `bin/python -> /usr/bin/python3` was packed,
    // saved and verified, but every restore refused it and rebuilt.
    let p = TestProject::with_default(&["a"]);
    p.local_module(
        "a",
        &[("src.c", "int x;\n")],
        r#"keep = ["out"]
build = "mkdir -p out && ln -s /etc/hostname out/abs && ln -s ../../../../../x out/up"
install = '''
mkdir -p $STRATA_DESTDIR/bin $STRATA_DESTDIR/share/repo/.git
ln -s /usr/bin/python3 $STRATA_DESTDIR/bin/python
ln -s ../lib/missing.so $STRATA_DESTDIR/bin/dangling
echo 'ref: refs/heads/main' > $STRATA_DESTDIR/share/repo/.git/HEAD
'''"#,
    );
    p.strata().arg("build").assert().success();
    p.strata().args(["cache", "verify"]).assert().success();
    let links = |p: &TestProject| {
        let dest = p.path("build/.strata/modules/a-1.0/destdir");
        [
            dest.join("bin/python"),
            dest.join("bin/dangling"),
            p.path("build/a-1.0/out/abs"),
            p.path("build/a-1.0/out/up"),
        ]
        .map(|l| std::fs::read_link(&l).unwrap_or_else(|e| panic!("{}: {e}", l.display())))
    };
    let built = links(&p);
    assert_eq!(built[0], Path::new("/usr/bin/python3"));
    // Kinds, modes, contents and link targets (mtimes are 1 once packed).
    let dest = |p: &TestProject| {
        let mut d = describe(&p.path("build/.strata/modules/a-1.0/destdir"));
        d.values_mut().for_each(|v| v.3 = 0);
        d
    };
    let built_dest = dest(&p);
    // From the archive (making the tree), from the tree, archive only.
    for env in [vec![], vec![], vec![("STRATA_RESTORE_MODE", "archive")]] {
        assert_eq!(restore(&p, &env), "", "{env:?}");
        assert_eq!(links(&p), built, "{env:?}");
        assert_eq!(dest(&p), built_dest, "{env:?}");
        assert_eq!(
            p.read("install/share/repo/.git/HEAD"),
            "ref: refs/heads/main\n"
        );
    }
    assert_eq!(trees(&p).len(), 1);
    p.strata().args(["cache", "verify"]).assert().success();
}

/// A same-size write into a dependency's file through `$STRATA_SYSROOT`,
/// then `touch -d @1`: the write a build can make that keeps size and mtime.
const SNEAKY_BUILD: &str = r#"build = '''
printf 'LIBRARY BYTES\n' > "$STRATA_SYSROOT/lib/liba.a"
touch -d @1 "$STRATA_SYSROOT/lib/liba.a"
'''
install = "mkdir -p $STRATA_DESTDIR/share && echo b > $STRATA_DESTDIR/share/b"
depends = ["a"]"#;

/// `strata --json build` in checkout `q` with `p`'s store: its warnings.
/// The sandbox makes a sysroot read-only, which already stops such a
/// write; it is off here so that the store's own check is what is tested.
fn build_in(q: &TestProject, p: &TestProject) -> String {
    let out = q
        .strata()
        .env("XDG_CACHE_HOME", p.path(".xdg-cache"))
        .env("STRATA_SANDBOX", "off")
        .args(["--json", "build"])
        .output()
        .unwrap();
    let (ok, stdout, stderr) = (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(ok, "{stderr}");
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "warning")
        .map(|v| format!("warning: {}\n", v["data"]["message"].as_str().unwrap()))
        .collect()
}

#[test]
fn a_build_writing_through_its_sysroot_never_reaches_the_store_or_another_checkout() {
    let p = project("");
    p.strata().arg("build").assert().success();
    let files = ["modules/a.toml", "mirror/a-1.0.tar.gz"];
    // Checkout 1 restores `a` (and makes the store's tree).
    let q1 = checkout(&p, &files);
    assert_eq!(build_in(&q1, &p), "");
    assert_eq!(q1.read("install/lib/liba.a"), "library bytes\n");
    // Checkout 2 restores `a` too, then builds `b`, which rewrites a's
    // library in its sysroot, same size, mtime set back to 1.
    let q2 = checkout(&p, &files);
    q2.write(
        "strata.toml",
        p.read("strata.toml").replace("[\"a\"]", "[\"a\", \"b\"]"),
    );
    q2.local_module("b", &[("b.c", "int b;\n")], SNEAKY_BUILD);
    build_in(&q2, &p);
    // The store and checkout 1 still hold the artifact's bytes: checkout 1
    // merging install/ again, and a new checkout restoring, get them.
    std::fs::remove_dir_all(q1.path("install")).unwrap();
    assert_eq!(build_in(&q1, &p), "");
    assert_eq!(q1.read("install/lib/liba.a"), "library bytes\n");
    let q3 = checkout(&p, &files);
    assert_eq!(build_in(&q3, &p), "");
    assert_eq!(q3.read("install/lib/liba.a"), "library bytes\n");
    assert_eq!(
        std::fs::read(the_tree(&p).join(".strata/destdir/lib/liba.a")).unwrap(),
        b"library bytes\n"
    );
}

#[test]
fn a_same_size_write_into_the_tree_with_its_mtime_set_back_is_caught() {
    let p = project("");
    p.strata().arg("build").assert().success();
    restore(&p, &[]);
    let sneak = |p: &TestProject| {
        let victim = the_tree(p).join(".strata/destdir/lib/liba.a");
        std::fs::write(&victim, "LIBRARY BYTES\n").unwrap();
        let one = filetime::FileTime::from_unix_time(1, 0);
        filetime::set_file_times(&victim, one, one).unwrap();
    };
    // `cache verify` hashes the tree's files: it sees it and drops the tree.
    sneak(&p);
    p.strata()
        .args(["cache", "verify"])
        .assert()
        .success()
        .stdout(predicates::str::contains("unpacked tree was damaged"))
        .stdout(predicates::str::contains("lib/liba.a"));
    assert!(trees(&p).is_empty());
    // A restore sees it too (the file's ctime moved): one warning, and
    // the archive's bytes.
    restore(&p, &[]);
    sneak(&p);
    let err = restore(&p, &[]);
    assert!(
        err.contains("is damaged") && err.contains("lib/liba.a"),
        "{err}"
    );
    assert_eq!(p.read("install/lib/liba.a"), "library bytes\n");
    assert_same_as_tar(&p);
    assert_eq!(restore(&p, &[]), "", "the rebuilt tree is quiet");
}
