//! The patcher on the shapes GNU patch and git apply accept, through the
//! library API (`strata::patch`) on real directories, and through the CLI
//! for what a build must report.

mod common;

use common::*;
use predicates::str::contains;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use strata::patch::{PatchError, apply_patch, apply_patch_with};

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, c) in files {
        let path = d.path().join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, c).unwrap();
    }
    d
}

fn read(d: &Path, p: &str) -> String {
    fs::read_to_string(d.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn traditional_creation_without_dev_null_creates_the_file() {
    // The shape of coreboot-4.11's 0070/0071 patches in Heads.
    let p = "diff -Nur coreboot.orig/util/new.h coreboot/util/new.h\n\
--- coreboot.orig/util/new.h\t2019-12-01 10:00:00.000000000 +0100\n\
+++ coreboot/util/new.h\t2019-12-01 10:00:00.000000000 +0100\n\
@@ -0,0 +1,2 @@\n+#pragma once\n+int x;\n";
    let d = tree(&[("util/other.c", "x\n")]);
    apply_patch(d.path(), "0070.patch", p.as_bytes()).unwrap();
    assert_eq!(read(d.path(), "util/new.h"), "#pragma once\nint x;\n");
    // Again: the file holds the result, which is "previously applied".
    let e = apply_patch(d.path(), "0070.patch", p.as_bytes()).unwrap_err();
    assert!(
        e.to_string()
            .contains("Reversed (or previously applied) patch detected"),
        "{e}"
    );
}

#[test]
fn epoch_timestamps_create_and_delete_and_empty_dirs_go() {
    let p = "--- a/sub/old.c\t2020-01-01 00:00:00.000000000 +0000\n\
+++ b/sub/old.c\t1969-12-31 19:00:00.000000000 -0500\n\
@@ -1,2 +0,0 @@\n-a\n-b\n\
--- a/new.c\t1970-01-01 00:00:00.000000000 +0000\n\
+++ b/new.c\t2020-01-01 00:00:00.000000000 +0000\n\
@@ -0,0 +1 @@\n+n\n";
    let d = tree(&[("sub/old.c", "a\nb\n"), ("keep", "k\n")]);
    apply_patch(d.path(), "p", p.as_bytes()).unwrap();
    assert!(!d.path().join("sub").exists(), "the emptied dir stays");
    assert_eq!(read(d.path(), "new.c"), "n\n");
    // A deletion that does not empty the file is refused.
    let d = tree(&[("sub/old.c", "a\nb\nc\n")]);
    let e = apply_patch(d.path(), "p", p.as_bytes()).unwrap_err();
    assert!(
        matches!(e, PatchError::Hunk { .. } | PatchError::NotEmptied { .. }),
        "{e}"
    );
    assert_eq!(read(d.path(), "sub/old.c"), "a\nb\nc\n");
}

#[test]
fn several_sections_for_one_file_apply_in_order() {
    // Two commits of `git format-patch --stdout` touching the same file.
    let p = "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n\
Subject: [PATCH 1/2] one\n\n---\n\
diff --git a/f b/f\nindex 1..2 100644\n--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n\
-- \n2.47.3\n\n\
From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001\n\
Subject: [PATCH 2/2] two\n\n---\n\
diff --git a/f b/f\nindex 2..3 100644\n--- a/f\n+++ b/f\n@@ -1,3 +1,4 @@\n a\n B\n+B2\n c\n\
-- \n2.47.3\n";
    let d = tree(&[("f", "a\nb\nc\n")]);
    apply_patch(d.path(), "p", p.as_bytes()).unwrap();
    assert_eq!(read(d.path(), "f"), "a\nB\nB2\nc\n");
}

#[test]
fn git_copy_rename_mode_and_empty_new_file() {
    let p = "diff --git a/src.c b/copy.c\nsimilarity index 80%\ncopy from src.c\ncopy to copy.c\n\
--- a/src.c\n+++ b/copy.c\n@@ -1,2 +1,2 @@\n one\n-two\n+zwei\n\
diff --git a/old b/new\nsimilarity index 100%\nrename from old\nrename to new\n\
diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n\
diff --git a/empty b/empty\nnew file mode 100644\nindex 0000000..e69de29\n";
    let d = tree(&[
        ("src.c", "one\ntwo\n"),
        ("old", "o\n"),
        ("run.sh", "#!/bin/sh\n"),
    ]);
    apply_patch(d.path(), "p", p.as_bytes()).unwrap();
    assert_eq!(
        read(d.path(), "src.c"),
        "one\ntwo\n",
        "the copy's source is kept"
    );
    assert_eq!(read(d.path(), "copy.c"), "one\nzwei\n");
    assert!(!d.path().join("old").exists());
    assert_eq!(read(d.path(), "new"), "o\n");
    let mode = fs::metadata(d.path().join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(read(d.path(), "empty"), "");
}

#[test]
fn c_quoted_names_crlf_and_no_newline_markers() {
    let p = "diff --git \"a/caf\\303\\251.txt\" \"b/caf\\303\\251.txt\"\nindex 1..2 100644\n\
--- \"a/caf\\303\\251.txt\"\n+++ \"b/caf\\303\\251.txt\"\n\
@@ -1,2 +1,2 @@\n a\r\n-b\r\n\\ No newline at end of file\n+c\r\n";
    let d = tree(&[("café.txt", "a\r\nb\r")]);
    apply_patch(d.path(), "p", p.as_bytes()).unwrap();
    assert_eq!(read(d.path(), "café.txt"), "a\r\nc\r\n");
    assert!(!d.path().join("\"caf\\303\\251.txt\"").exists());
}

#[test]
fn context_diffs_apply_like_unified_ones() {
    let p = "*** a/f\t2020-01-01 00:00:00.000000000 +0000\n--- b/f\t2020-01-01 00:00:00.000000000 +0000\n\
***************\n*** 1,4 ****\n  a\n! b\n  c\n- d\n--- 1,4 ----\n  a\n! B\n  c\n+ e\n";
    let d = tree(&[("f", "a\nb\nc\nd\n")]);
    apply_patch(d.path(), "p", p.as_bytes()).unwrap();
    assert_eq!(read(d.path(), "f"), "a\nB\nc\ne\n");
}

#[test]
fn index_headers_and_garbage_between_patches_are_ignored() {
    let p = "Some description.\nIndex: f\n===================================================================\n\
--- f.orig\n+++ f\n@@ -1 +1 @@\n-a\n+b\nthis line is garbage\nIndex: g\n====\n\
--- g.orig\n+++ g\n@@ -1 +1 @@\n-c\n+d\n";
    let d = tree(&[("f", "a\n"), ("g", "c\n")]);
    apply_patch_with(d.path(), "p", p.as_bytes(), 0).unwrap();
    assert_eq!(read(d.path(), "f"), "b\n");
    assert_eq!(read(d.path(), "g"), "d\n");
    // When both names exist, GNU patch patches the shorter one.
    let d = tree(&[("f", "a\n"), ("f.orig", "a\n"), ("g", "c\n")]);
    apply_patch_with(d.path(), "p", p.as_bytes(), 0).unwrap();
    assert_eq!(read(d.path(), "f"), "b\n");
    assert_eq!(read(d.path(), "f.orig"), "a\n");
}

#[test]
fn a_patch_with_no_diff_is_only_garbage() {
    let d = tree(&[("f", "a\n")]);
    // (A 0-byte file is a no-op: see issue16_an_empty_patch_is_a_no_op….)
    for p in [
        "\n",
        "From: x\nSubject: [PATCH] cut here\n\n---\n f | 2 +-\n",
    ] {
        let e = apply_patch(d.path(), "0001-x.patch", p.as_bytes()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("0001-x.patch")
                && msg.contains("Only garbage was found in the patch input"),
            "{msg}"
        );
    }
}

#[test]
fn a_failing_patch_leaves_the_tree_as_it_was() {
    let p = "diff --git a/n b/n\nnew file mode 100644\n--- /dev/null\n+++ b/n\n@@ -0,0 +1 @@\n+n\n\
--- a/a\n+++ b/a\n@@ -1 +1 @@\n-1\n+one\n--- a/b\n+++ b/b\n@@ -1 +1 @@\n-X\n+two\n";
    let d = tree(&[("a", "1\n"), ("b", "2\n")]);
    let e = apply_patch(d.path(), "p", p.as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("hunk #1") && e.to_string().contains(" b"),
        "{e}"
    );
    assert_eq!(read(d.path(), "a"), "1\n");
    assert!(!d.path().join("n").exists());
}

#[test]
fn a_git_symlink_is_a_real_symlink_that_writes_cannot_follow_out() {
    let outside = tempfile::tempdir().unwrap();
    let d = tree(&[("f", "x\n")]);
    let target = outside.path().to_str().unwrap();
    let link_patch = format!(
        "diff --git a/l b/l\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n"
    );
    apply_patch(d.path(), "link.patch", link_patch.as_bytes()).unwrap();
    assert_eq!(fs::read_link(d.path().join("l")).unwrap(), outside.path());
    // A later patch writing through the link is refused; nothing lands outside.
    let p = "--- /dev/null\n+++ b/l/escaped.txt\n@@ -0,0 +1 @@\n+out\n";
    let e = apply_patch(d.path(), "through.patch", p.as_bytes()).unwrap_err();
    assert!(matches!(e, PatchError::Escapes { .. }), "{e}");
    assert!(e.to_string().contains("through.patch"), "{e}");
    assert!(!outside.path().join("escaped.txt").exists());
    // The same in one patch: the link exists only in the pending changes
    // when the second section is computed; nothing at all is written.
    let d = tree(&[("f", "x\n")]);
    let both = p.replace("+++ b/l/", "+++ b/m/");
    let both = format!(
        "{}{both}",
        link_patch
            .replace("a/l b/l", "a/m b/m")
            .replace("+++ b/l", "+++ b/m")
    );
    let e = apply_patch(d.path(), "both.patch", both.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("beneath a symlink"), "{e}");
    assert!(
        fs::symlink_metadata(d.path().join("m")).is_err(),
        "the link was written"
    );
    assert!(!outside.path().join("escaped.txt").exists());
}

/// `d0/d1/…/d11/l -> ../../…` resolves to the tree itself; `x` goes through
/// it and `..` to a directory beside the tree. Lexically `x`'s target stays
/// inside (`d0/…/d11/outside`), really it does not.
fn symlink_chain_tree() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("tree");
    let outside = top.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("victim.txt"), "keep\n").unwrap();
    let mut deep = root.clone();
    let mut rel = String::new();
    for i in 0..12 {
        deep.push(format!("d{i}"));
        rel.push_str(&format!("d{i}/"));
    }
    fs::create_dir_all(&deep).unwrap();
    symlink([".."].repeat(12).join("/"), deep.join("l")).unwrap();
    symlink(format!("{rel}l/../outside"), root.join("x")).unwrap();
    (top, root, outside)
}

#[test]
fn a_symlink_chain_in_the_tree_cannot_lead_a_patch_outside() {
    let (_top, root, outside) = symlink_chain_tree();
    let create = "--- /dev/null\n+++ b/x/escaped.txt\n@@ -0,0 +1 @@\n+pwned\n";
    let e = apply_patch(&root, "escape.patch", create.as_bytes()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, PatchError::Escapes { .. }), "{msg}");
    assert!(
        msg.contains("escape.patch") && msg.contains("x/escaped.txt"),
        "{msg}"
    );
    assert!(!outside.join("escaped.txt").exists());
    let modify = "--- a/x/victim.txt\n+++ b/x/victim.txt\n@@ -1 +1 @@\n-keep\n+pwned\n";
    let e = apply_patch(&root, "escape.patch", modify.as_bytes()).unwrap_err();
    assert!(matches!(e, PatchError::Escapes { .. }), "{e}");
    assert_eq!(
        fs::read_to_string(outside.join("victim.txt")).unwrap(),
        "keep\n"
    );
    // `..` in a name is refused before any lookup.
    let dotdot = "--- /dev/null\n+++ b/../escaped.txt\n@@ -0,0 +1 @@\n+x\n";
    let e = apply_patch(&root, "p", dotdot.as_bytes()).unwrap_err();
    assert!(matches!(e, PatchError::UnsafePath { .. }), "{e}");
}

#[test]
fn build_reports_a_garbage_only_patch_by_name() {
    let p = TestProject::with_default(&["m"]);
    p.local_module("m", &[("f.c", "one\n")], "");
    p.write(
        "patches/m-1.0/0001-cut.patch",
        "Subject: [PATCH] cut before the diff\n\n",
    );
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("patches/m-1.0/0001-cut.patch"))
        .stderr(contains("Only garbage was found in the patch input"));
}

#[test]
fn build_honours_p_levels_in_a_quilt_series() {
    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("f.c", "one\n"), ("g.c", "two\n")],
        r#"install = "mkdir -p $STRATA_DESTDIR && cat f.c g.c > $STRATA_DESTDIR/out""#,
    );
    p.write(
        "patches/m-1.0/series",
        "f.patch -p0\ng.patch -p1 # default\n",
    );
    p.write(
        "patches/m-1.0/f.patch",
        "--- f.c\n+++ f.c\n@@ -1 +1 @@\n-one\n+ONE\n",
    );
    p.write(
        "patches/m-1.0/g.patch",
        "--- a/g.c\n+++ b/g.c\n@@ -1 +1 @@\n-two\n+TWO\n",
    );
    let (code, _, err) = p.build_json(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(p.read("install/out"), "ONE\nTWO\n");
    // An option strata does not honour is refused, naming it.
    p.write("patches/m-1.0/series", "f.patch -R\n");
    p.strata()
        .arg("build")
        .assert()
        .failure()
        .stderr(contains("-R"))
        .stderr(contains("series"));
}

/// Runs git in `dir` with a fixed identity and no user or system config.
fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap())
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn git_binary_literal_and_delta_check_the_blob_ids() {
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    let big: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 251) as u8).collect();
    fs::write(r.join("fw.bin"), &big).unwrap();
    git(r, &["init", "-q", "--template="]);
    git(r, &["add", "-A"]);
    git(r, &["commit", "-qm", "base"]);
    let mut changed = big.clone();
    changed[100] ^= 0xff;
    changed.extend_from_slice(b"\0tail");
    fs::write(r.join("fw.bin"), &changed).unwrap();
    fs::write(r.join("new.bin"), b"\0\x01\x02new").unwrap();
    git(r, &["add", "-A"]);
    git(r, &["commit", "-qm", "change"]);
    let patch = git(r, &["diff", "--binary", "HEAD~1", "HEAD"]);
    let text = String::from_utf8_lossy(&patch);
    assert!(
        text.contains("delta ") && text.contains("literal "),
        "{text}"
    );

    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("fw.bin"), &big).unwrap();
    apply_patch(d.path(), "fw.patch", &patch).unwrap();
    assert_eq!(fs::read(d.path().join("fw.bin")).unwrap(), changed);
    assert_eq!(
        fs::read(d.path().join("new.bin")).unwrap(),
        b"\0\x01\x02new"
    );
    // Again: the delta's preimage id no longer matches, the result's does.
    fs::remove_file(d.path().join("new.bin")).unwrap();
    let e = apply_patch(d.path(), "fw.patch", &patch).unwrap_err();
    assert!(e.to_string().contains("previously applied"), "{e}");
    // Another file of the same size: refused by its blob id, untouched.
    let mut other = big.clone();
    other[5] ^= 1;
    fs::write(d.path().join("fw.bin"), &other).unwrap();
    let e = apply_patch(d.path(), "fw.patch", &patch).unwrap_err();
    assert!(
        matches!(e, PatchError::Binary { .. }) && e.to_string().contains("blob"),
        "{e}"
    );
    assert_eq!(fs::read(d.path().join("fw.bin")).unwrap(), other);
}

#[test]
fn build_refuses_a_patch_that_a_symlink_chain_leads_outside() {
    let p = TestProject::with_default(&["m"]);
    let tar = raw_tar(&[
        raw_entry("m-1.0/f.c", b'0', "", b"one\n"),
        raw_entry("m-1.0/d0/d1/d2/", b'5', "", b""),
        raw_entry("m-1.0/d0/d1/d2/l", b'2', "../../..", b""),
        raw_entry("m-1.0/x", b'2', "d0/d1/d2/l/../outside", b""),
    ]);
    let tb = gzip(&tar);
    p.write("mirror/m-1.0.tar.gz", &tb);
    p.module("m", "file://mirror/m-1.0.tar.gz", &tb, "");
    p.write(
        "patches/m-1.0/escape.patch",
        "--- /dev/null\n+++ b/x/escaped.txt\n@@ -0,0 +1 @@\n+pwned\n",
    );
    // The chain resolves to build/outside, beside the module's tree.
    fs::create_dir_all(p.path("build/outside")).unwrap();
    let out = p.strata().arg("build").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the build succeeded: {err}");
    assert!(!p.path("build/outside/escaped.txt").exists(), "{err}");
    eprintln!("{err}");
    // The unpacker may refuse the links first; if the patch ran, it says why.
    if err.contains("escape.patch") {
        assert!(err.contains("outside the source tree"), "{err}");
    }
}

/// Issue 16: Debian's procps 4.0.2 series holds a 0-byte patch. GNU patch
/// exits 0 on it and quilt says "appears to be empty; applied", but strata
/// refused the whole series. A file with bytes but no diff stays an error,
/// as it is for GNU patch.
#[test]
fn issue16_an_empty_patch_is_a_no_op_with_a_warning_as_in_gnu_patch() {
    // GNU patch's verdict on the same two files.
    let d = tree(&[("hello.txt", "hello\n")]);
    let prose = "This patch is intentionally left without a diff.\n";
    fs::write(d.path().join("empty.patch"), "").unwrap();
    fs::write(d.path().join("prose.patch"), prose).unwrap();
    let gnu = |f: &str| {
        std::process::Command::new("patch")
            .arg("-p1")
            .current_dir(d.path())
            .stdin(fs::File::open(d.path().join(f)).unwrap())
            .output()
            .unwrap()
    };
    assert_eq!(gnu("empty.patch").status.code(), Some(0));
    assert_eq!(gnu("prose.patch").status.code(), Some(2));
    assert_eq!(read(d.path(), "hello.txt"), "hello\n");

    let p = TestProject::with_default(&["m"]);
    p.local_module(
        "m",
        &[("hello.txt", "hello\n")],
        "install = \"mkdir -p $STRATA_DESTDIR && cp hello.txt $STRATA_DESTDIR/\"",
    );
    p.write(
        "patches/m-1.0/series",
        "01-one.patch\n02-empty.patch\n03-two.patch\n",
    );
    p.write(
        "patches/m-1.0/01-one.patch",
        "--- a/hello.txt\n+++ b/hello.txt\n@@ -1 +1,2 @@\n hello\n+one\n",
    );
    p.write("patches/m-1.0/02-empty.patch", "");
    p.write(
        "patches/m-1.0/03-two.patch",
        "--- a/hello.txt\n+++ b/hello.txt\n@@ -1,2 +1,3 @@\n hello\n one\n+two\n",
    );
    p.strata()
        .arg("build")
        .assert()
        .success()
        .stderr(contains("warning: module m: patch "))
        .stderr(contains("02-empty.patch is empty (0 bytes)"));
    assert_eq!(p.read("install/hello.txt"), "hello\none\ntwo\n");

    p.write("patches/m-1.0/02-empty.patch", prose);
    p.strata().arg("build").assert().code(1).stderr(contains(
        "02-empty.patch: Only garbage was found in the patch input",
    ));
}
