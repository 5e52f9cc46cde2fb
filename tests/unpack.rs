//! Unpacking through the `strata` binary: self hard links as GNU tar takes
//! them, symlink chains that climb out of the tree (source archives and
//! cache artifacts), decompression-bomb limits, source modes as GNU tar
//! gives them under the umask, store files under the umask, and temp
//! files a killed run leaves.

mod common;

use common::*;
use predicates::str::contains;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A project whose strata.toml has `settings` and target `default` = [m].
fn project(settings: &str) -> TestProject {
    TestProject::new(&format!(
        "[project]\nname = \"t\"\ncache-version = \"1\"\n\n[settings]\n{settings}\n\n[target.default]\nmodules = [\"m\"]\n"
    ))
}

/// Serves `tarball` (any format) as module m from a file:// mirror.
fn module(p: &TestProject, file: &str, tarball: &[u8], extra: &str) {
    p.write(&format!("mirror/{file}"), tarball);
    p.module("m", &format!("file://mirror/{file}"), tarball, extra);
}

/// Per path (relative, sorted): kind, mode, content or link target, and
/// which earlier path it shares an inode with.
fn facts(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    fn walk(
        root: &Path,
        d: &Path,
        out: &mut BTreeMap<String, String>,
        inodes: &mut BTreeMap<u64, String>,
    ) {
        let mut names: Vec<_> = std::fs::read_dir(d).unwrap().flatten().collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == ".strata" {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.mode() & 0o7777;
            let fact = if m.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                walk(root, &p, out, inodes);
                format!("dir {mode:o}")
            } else {
                let same = inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone();
                format!(
                    "file {mode:o} {:?} nlink {} same-as {same}",
                    std::fs::read_to_string(&p).unwrap(),
                    m.nlink()
                )
            };
            out.insert(rel, fact);
        }
    }
    walk(root, root, &mut out, &mut inodes);
    out
}

/// Runs python3 to write a tarball at `path` with `script` (tarfile `t` open).
fn python_tar(path: &Path, script: &str) {
    let code = format!(
        "import tarfile, io, sys\nwith tarfile.open(sys.argv[1], 'w:gz', format=tarfile.GNU_FORMAT) as t:\n{}",
        script
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    let st = Command::new("python3")
        .arg("-c")
        .arg(code)
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

const SELF_LINKS: &str = r#"
def file(name, data, mode=0o644):
    i = tarfile.TarInfo(name); i.size = len(data); i.mode = mode; i.mtime = 1600000000
    t.addfile(i, io.BytesIO(data))
def link(name, target):
    i = tarfile.TarInfo(name); i.type = tarfile.LNKTYPE; i.linkname = target; i.mode = 0o644; i.mtime = 1600000000
    t.addfile(i)
d = tarfile.TarInfo('m-1.0'); d.type = tarfile.DIRTYPE; d.mode = 0o755; t.addfile(d)
file('m-1.0/a.txt', b'alpha\n')
file('m-1.0/sub/run.sh', b'#!/bin/sh\n', 0o755)
for _ in range(3):
    link('m-1.0/a.txt', 'm-1.0/a.txt')
link('m-1.0/sub/run.sh', 'm-1.0/sub/run.sh')
link('m-1.0/b.txt', 'm-1.0/a.txt')
link('m-1.0/b.txt', 'm-1.0/b.txt')
"#;

#[test]
fn self_hard_links_extract_as_gnu_tar_extracts_them() {
    let p = project("");
    let tb_path = p.path("self.tar.gz");
    python_tar(&tb_path, SELF_LINKS);
    let tb = std::fs::read(&tb_path).unwrap();
    module(&p, "m.tar.gz", &tb, "");
    p.strata().arg("build").assert().success();

    let gnu = p.path("gnu");
    std::fs::create_dir(&gnu).unwrap();
    let st = Command::new("tar")
        .args(["-xzf"])
        .arg(&tb_path)
        .arg("-C")
        .arg(&gnu)
        .args(["--strip-components=1", "--no-same-owner"])
        .status()
        .unwrap();
    assert!(st.success(), "GNU tar accepts the archive");
    let ours = facts(&p.path("build/m-1.0"));
    assert_eq!(ours, facts(&gnu));
    assert!(ours["b.txt"].contains("same-as a.txt"), "{ours:?}");
}

#[test]
fn a_self_link_to_a_missing_file_is_refused_naming_archive_and_entry() {
    let p = project("");
    let tb_path = p.path("bad.tar.gz");
    python_tar(
        &tb_path,
        "i = tarfile.TarInfo('m-1.0/ghost.txt'); i.type = tarfile.LNKTYPE; i.linkname = 'm-1.0/ghost.txt'\nt.addfile(i)",
    );
    let tb = std::fs::read(&tb_path).unwrap();
    module(&p, "ghost.tar.gz", &tb, "");
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("ghost.tar.gz"))
        .stderr(contains("`m-1.0/ghost.txt`"))
        .stderr(contains(
            "hardlink to `m-1.0/ghost.txt`, which is not in the archive before it",
        ));
    // GNU tar refuses it too.
    let gnu = p.path("gnu");
    std::fs::create_dir(&gnu).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&tb_path)
        .arg("-C")
        .arg(&gnu)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!st.success());
}

const DEPTH: usize = 12;

/// `d0/d1/…/d11`.
fn chain_dir() -> String {
    (0..DEPTH)
        .map(|i| format!("d{i}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Tar entries (under `prefix`) of the attack: `d0/…/d11/l -> ../../…`
/// (the tree root, physically), then `name -> d0/…/d11/l/../../…/<outside>`,
/// which is lexically inside the tree (DEPTH + 1 `..` after DEPTH + 1
/// components) and physically `<outside>` (the tree root is fewer than
/// DEPTH + 1 levels below `/`).
fn escape_entries(
    b: &mut tar::Builder<Vec<u8>>,
    prefix: &str,
    name: &str,
    outside: &Path,
    through: bool,
) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, format!("{prefix}{}", chain_dir()), std::io::empty())
        .unwrap();
    let link = |b: &mut tar::Builder<Vec<u8>>, path: String, target: String| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, path, target).unwrap();
    };
    link(
        b,
        format!("{prefix}{}/l", chain_dir()),
        "../".repeat(DEPTH).trim_end_matches('/').to_string(),
    );
    let abs = outside.strip_prefix("/").unwrap().display().to_string();
    link(
        b,
        format!("{prefix}{name}"),
        format!("{}/l/{}{abs}", chain_dir(), "../".repeat(DEPTH + 1)),
    );
    if through {
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("{prefix}{name}/evil.txt"), &b"evil\n"[..])
            .unwrap();
    }
}

fn assert_empty(dir: &Path, what: &str) {
    let left: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "{what}: wrote outside the tree: {left:?}");
}

#[test]
fn a_symlink_chain_out_of_a_source_tree_is_refused() {
    for (name, through) in [(".strata", false), ("x", true)] {
        let outside = tempfile::tempdir().unwrap();
        let p = project("");
        let mut b = tar::Builder::new(Vec::new());
        escape_entries(&mut b, "m-1.0/", name, outside.path(), through);
        let tb = gzip(&b.into_inner().unwrap());
        module(
            &p,
            "m.tar.gz",
            &tb,
            r#"install = "mkdir -p $STRATA_DESTDIR && echo hi > $STRATA_DESTDIR/f""#,
        );
        p.strata()
            .arg("build")
            .assert()
            .code(1)
            .stderr(contains("m.tar.gz"))
            .stderr(contains("refusing entry"))
            .stderr(contains(format!("m-1.0/{name}")));
        assert_empty(outside.path(), name);
        assert!(!p.path("build/m-1.0").exists(), "{name}: build dir created");
    }
}

#[test]
fn a_hard_link_that_moves_a_symlink_out_of_reach_is_refused() {
    // `a/b/s -> ../../x` is the tree's own `x`; the same link text at the
    // top (a hard link to the symlink) is two levels above the tree.
    let p = project("");
    let tb = gzip(&raw_tar(&[
        raw_entry("m-1.0/a/b/s", b'2', "../../x", b""),
        raw_entry("m-1.0/s2", b'1', "m-1.0/a/b/s", b""),
    ]));
    module(&p, "m.tar.gz", &tb, "");
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("refusing entry `m-1.0/s2`"))
        .stderr(contains("above the tree"));
    assert!(!p.path("build/m-1.0").exists());
}

#[test]
fn an_in_tree_symlink_chain_still_extracts() {
    let p = project("");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, format!("m-1.0/{}", chain_dir()), std::io::empty())
        .unwrap();
    let mut link = |path: String, target: String| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, path, target).unwrap();
    };
    link(
        format!("m-1.0/{}/l", chain_dir()),
        "../".repeat(DEPTH).trim_end_matches('/').to_string(),
    );
    // Physically: the tree root, then d0.
    link("m-1.0/y".into(), format!("{}/l/d0", chain_dir()));
    let tb = gzip(&b.into_inner().unwrap());
    module(&p, "m.tar.gz", &tb, "");
    p.strata().arg("build").assert().success();
    assert!(p.path("build/m-1.0/y/d1").is_dir());
}

/// A project whose module m was built and saved, with its stored artifact
/// replaced by the tar `entries` (its record kept consistent) and its build
/// dir removed: the next build restores from the planted archive.
fn planted_artifact(entries: Vec<u8>) -> TestProject {
    let p = project("");
    p.local_module(
        "m",
        &[("f.txt", "F\n")],
        r#"install = "mkdir -p $STRATA_DESTDIR && cp f.txt $STRATA_DESTDIR/f.txt""#,
    );
    p.strata().arg("build").assert().success();
    let store = p.path(".xdg-cache/strata/v1");
    let record = std::fs::read_dir(&store)
        .unwrap()
        .flatten()
        .flat_map(|s| std::fs::read_dir(s.path()).unwrap().flatten())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a cache record");
    let mut info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let key = info["key"].as_str().unwrap().to_string();
    let bytes = zstd::encode_all(&entries[..], 3).unwrap();
    let hash = blake3::hash(&bytes).to_hex().to_string();
    for e in std::fs::read_dir(record.parent().unwrap())
        .unwrap()
        .flatten()
    {
        if e.file_name().to_string_lossy().ends_with(".tar.zst") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    std::fs::write(
        record
            .parent()
            .unwrap()
            .join(format!("{key}-{}.tar.zst", &hash[..16])),
        &bytes,
    )
    .unwrap();
    info["blake3"] = hash.into();
    info["size"] = bytes.len().into();
    std::fs::write(&record, serde_json::to_vec(&info).unwrap()).unwrap();
    std::fs::remove_dir_all(p.path("build/m-1.0")).unwrap();
    p
}

#[test]
fn a_symlink_chain_in_a_cache_artifact_is_refused_and_quarantined() {
    // An artifact's symlinks are data (a module may install absolute ones),
    // but `.strata` must be the directory strata moves the destdir from.
    let outside = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    escape_entries(&mut b, "", ".strata", outside.path(), false);
    let p = planted_artifact(b.into_inner().unwrap());
    p.strata()
        .arg("build")
        .assert()
        .success()
        .stderr(contains(
            ".strata/destdir in the archive is not a directory",
        ))
        .stderr(contains("quarantined"));
    assert_empty(outside.path(), "artifact");
    assert_eq!(p.read("install/f.txt"), "F\n", "built from source instead");
}

#[test]
fn no_entry_is_written_through_a_symlink_an_earlier_entry_made() {
    let outside = tempfile::tempdir().unwrap();
    let abs = outside.path().display().to_string();
    // A source archive: the absolute link itself is refused.
    let p = project("");
    let tb = gzip(&raw_tar(&[
        raw_entry("m-1.0/a", b'2', &abs, b""),
        raw_entry("m-1.0/a/x", b'0', "", b"evil\n"),
    ]));
    module(&p, "m.tar.gz", &tb, "");
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("refusing entry `m-1.0/a`"));
    assert_empty(outside.path(), "source");
    // An artifact keeps the link, but nothing is written through it.
    let p = planted_artifact(raw_tar(&[
        raw_entry(".strata/", b'5', "", b""),
        raw_entry(".strata/destdir/", b'5', "", b""),
        raw_entry(".strata/destdir/a", b'2', &abs, b""),
        raw_entry(".strata/destdir/a/x", b'0', "", b"evil\n"),
    ]));
    p.strata()
        .arg("build")
        .assert()
        .success()
        .stderr(contains("refusing entry `.strata/destdir/a/x`"))
        .stderr(contains("written through the symlink `.strata/destdir/a`"))
        .stderr(contains("quarantined"));
    assert_empty(outside.path(), "artifact");
    assert_eq!(p.read("install/f.txt"), "F\n", "built from source instead");
}

fn ten_files() -> Vec<u8> {
    let body = "x".repeat(1000);
    let files: Vec<(String, &str)> = (0..10)
        .map(|i| (format!("f{i}.txt"), body.as_str()))
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    tarball("m-1.0", &refs)
}

#[test]
fn a_byte_limit_stops_the_unpack_and_says_how_to_raise_it() {
    let p = project("unpack-max-bytes = 5000");
    module(&p, "bomb.tar.gz", &ten_files(), "");
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("bomb.tar.gz"))
        .stderr(contains("entry `m-1.0/f5.txt`"))
        .stderr(contains("more than 5000 bytes"))
        .stderr(contains("unpack-max-bytes"))
        .stderr(contains("STRATA_UNPACK_MAX_BYTES"));
    assert!(!p.path("build/m-1.0").exists());
    let left: Vec<_> = std::fs::read_dir(p.path("build"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".strata")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The environment wins over strata.toml.
    p.strata()
        .arg("build")
        .env("STRATA_UNPACK_MAX_BYTES", "10000")
        .assert()
        .success();
    assert!(p.path("build/m-1.0/f9.txt").is_file());
}

#[test]
fn an_entry_limit_stops_the_unpack() {
    let p = project("unpack-max-entries = 1000");
    module(&p, "many.tar.gz", &ten_files(), "");
    p.strata()
        .arg("build")
        .env("STRATA_UNPACK_MAX_ENTRIES", "4")
        .assert()
        .code(1)
        .stderr(contains("many.tar.gz"))
        .stderr(contains("more than 4 entries"))
        .stderr(contains("unpack-max-entries"));
    p.strata().arg("build").assert().success();
}

/// Modes of everything under `dir` (relative path, mode), sorted.
fn modes(dir: &Path) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == ".strata" {
            continue;
        }
        if m.is_dir() {
            for (k, v) in modes(&e.path()) {
                out.insert(format!("{name}/{k}"), v);
            }
        }
        out.insert(name, m.mode() & 0o7777);
    }
    out
}

#[test]
fn source_modes_are_gnu_tars_under_the_umask_as_root_or_not() {
    // The report: a 1777 dir unpacked as 0777 and a 0666 file stayed 0666.
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, mode) in [
        ("m-1.0/sticky", tar::EntryType::Directory, 0o1777),
        ("m-1.0/sgid", tar::EntryType::Directory, 0o2775),
        ("m-1.0/open", tar::EntryType::Regular, 0o666),
        ("m-1.0/suid", tar::EntryType::Regular, 0o4755),
        ("m-1.0/both", tar::EntryType::Regular, 0o6711),
        ("m-1.0/ro", tar::EntryType::Regular, 0o444),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(0);
        b.append_data(&mut h, path, std::io::empty()).unwrap();
    }
    let tb = gzip(&b.into_inner().unwrap());
    for (umask, want) in [(0o022, [0o755, 0o644]), (0o002, [0o775, 0o664])] {
        let p = project("");
        module(&p, "m.tar.gz", &tb, "");
        under_umask(&p, umask, &["build"]);
        let ours = modes(&p.path("build/m-1.0"));
        assert_eq!([ours["sticky"], ours["open"]], want, "umask {umask:o}");
        // GNU tar as this user, told to apply the umask (a non-root user's
        // default; root's is --same-permissions).
        std::fs::write(p.path("m.tar.gz"), &tb).unwrap();
        let gnu = p.path("gnu");
        std::fs::create_dir(&gnu).unwrap();
        let st = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "umask {umask:03o} && tar -xzf m.tar.gz -C gnu --strip-components=1 \
                 --no-same-permissions --no-same-owner"
            ))
            .current_dir(p.root())
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(ours, modes(&gnu), "umask {umask:o}");
    }
}

/// Runs `strata ARGS` in `p` under `umask`.
fn under_umask(p: &TestProject, umask: u32, args: &[&str]) {
    let mut c = p.raw();
    c.args(args);
    // SAFETY: umask is async-signal-safe and touches no memory.
    unsafe {
        c.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Modes of the regular files under `dir` (recursive).
fn file_modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        if m.is_dir() {
            out.extend(file_modes(&e.path()));
        } else if m.is_file() {
            out.push((e.path(), m.mode() & 0o777));
        }
    }
    out
}

#[test]
fn store_files_and_public_keys_honour_the_umask_and_secrets_stay_private() {
    for (umask, want) in [(0o022, 0o644), (0o002, 0o664)] {
        let p = project("");
        p.local_module(
            "m",
            &[("f.txt", "F\n")],
            r#"install = "mkdir -p $STRATA_DESTDIR && cp f.txt $STRATA_DESTDIR/f.txt""#,
        );
        under_umask(&p, umask, &["build"]);
        let store = p.path(".xdg-cache/strata/v1");
        let modes = file_modes(&store);
        assert!(modes.len() >= 2, "a record and an archive: {modes:?}");
        for (path, mode) in &modes {
            assert_eq!(*mode, want, "{} under umask {umask:o}", path.display());
        }
        let tag = p.path(".xdg-cache/strata/CACHEDIR.TAG");
        assert_eq!(std::fs::metadata(tag).unwrap().mode() & 0o777, want);

        let keys = p.path("keys");
        std::fs::create_dir(&keys).unwrap();
        under_umask(
            &p,
            umask,
            &["cache", "keygen", "team", "--dir", keys.to_str().unwrap()],
        );
        let mode = |f: &str| std::fs::metadata(keys.join(f)).unwrap().mode() & 0o777;
        assert_eq!(mode("team.public"), want);
        assert_eq!(mode("team.secret"), 0o600);
    }
}

#[test]
fn temp_files_left_by_a_kill_are_swept_by_the_next_run() {
    let p = project("");
    p.local_module(
        "m",
        &[("f.txt", "F\n")],
        r#"install = "mkdir -p $STRATA_DESTDIR && cp f.txt $STRATA_DESTDIR/f.txt""#,
    );
    p.strata().arg("build").assert().success();
    let shard = std::fs::read_dir(p.path(".xdg-cache/strata/v1"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let planted = [
        shard.join(".tmp-Ab12Cd"),
        p.path("build/.strata/modules/m-1.0/stamps/.tmp-Xy34Zw"),
        p.path("build/.strata/modules/m-1.0/.tmp-q1w2e3"),
        p.path("build/.strata/.tmp-r4t5y6"),
        p.path("build/.strata/tmp/.pack-u7i8o9"),
        p.path("packages/.tmp-p0a9s8"),
        p.path("build/.m-1.0.tmp-99999/half.c"),
        p.path(".xdg-cache/strata/tmp/0123.4567.download"),
        p.path(".install.tmp-99999/f.txt"),
    ];
    // Files of the module's own that happen to look alike are left alone.
    let kept = [
        p.path("build/m-1.0/.tmp-user-file"),
        // A source tree's own files, even under a `.strata` of its own.
        p.path("build/m-1.0/.strata/stamps/.tmp-from-the-archive"),
        p.path("build/.strata/modules/m-1.0/destdir/.tmp-installed"),
    ];
    for f in planted.iter().chain(&kept) {
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, "left by kill -9").unwrap();
    }
    // A run killed while holding the project lock leaves no clean-release
    // mark in it (the last build's is there); the next holder sweeps.
    assert_eq!(p.read("build/.strata/lock"), "released clean\n");
    std::fs::write(p.path("build/.strata/lock"), "").unwrap();
    p.strata().arg("build").assert().success();
    for f in &planted {
        assert!(!f.exists(), "{} was not removed", f.display());
    }
    assert!(!p.path("build/.m-1.0.tmp-99999").exists());
    assert!(!p.path(".install.tmp-99999").exists());
    for f in &kept {
        assert!(f.exists(), "{} was removed", f.display());
    }
    // After a run that released the lock cleanly, the next one does not
    // read every state dir: nothing of the project is swept.
    assert_eq!(p.read("build/.strata/lock"), "released clean\n");
    let stray = p.path("build/.strata/modules/m-1.0/stamps/.tmp-Xy34Zw");
    std::fs::write(&stray, "not from a killed run").unwrap();
    p.strata().arg("build").assert().success();
    assert!(stray.exists());
    // A failed run (here: a command that fails) leaves the mark off.
    p.write(
        "modules/m.toml",
        p.read("modules/m.toml")
            .replace("cp f.txt", "false && cp f.txt"),
    );
    p.strata().arg("build").assert().failure();
    assert_eq!(p.read("build/.strata/lock"), "");
    p.strata().arg("build").assert().failure();
    assert!(!stray.exists());
}
