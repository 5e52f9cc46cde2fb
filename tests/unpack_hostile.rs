//! Hostile source archives through the `strata` binary (issue 16): a `.git`
//! in a source tree (a planted `core.fsmonitor` runs at the user's next
//! `git status`), and tar header bombs (PAX extended headers and GNU long
//! names or links that the tar reader would read whole into memory).

mod common;

use common::*;
use predicates::str::contains;

/// A project whose strata.toml sets `settings`, target `default` = [m].
fn project(settings: &str) -> TestProject {
    TestProject::new(&format!(
        "[project]\nname = \"t\"\ncache-version = \"1\"\n\n[settings]\n{settings}\n\n[target.default]\nmodules = [\"m\"]\n"
    ))
}

/// Serves `tarball` as module m from a file:// mirror.
fn module(p: &TestProject, file: &str, tarball: &[u8]) {
    p.write(&format!("mirror/{file}"), tarball);
    p.module(
        "m",
        &format!("file://mirror/{file}"),
        tarball,
        r#"install = "mkdir -p $STRATA_DESTDIR && cp ok.txt $STRATA_DESTDIR/""#,
    );
}

#[test]
fn a_dot_git_path_component_in_a_source_tarball_is_refused() {
    // git refuses `.git` in any case (case-insensitive filesystems) and
    // `git~1` (its NTFS short name); a `.git` file is a gitfile.
    for bad in ["x/.git/config", "x/.GiT/config", "git~1/config", ".git"] {
        let p = project("");
        let tb = tarball(
            "m-1.0",
            &[
                ("ok.txt", "ok\n"),
                (bad, "[core]\n\tfsmonitor = touch pwned\n"),
            ],
        );
        module(&p, "dotgit.tar.gz", &tb);
        p.strata()
            .arg("build")
            .assert()
            .code(1)
            .stderr(contains("dotgit.tar.gz"))
            .stderr(contains(format!("refusing entry `m-1.0/{bad}`")))
            .stderr(contains("`.git`"))
            .stderr(contains("nothing was extracted"));
        assert!(!p.path("build/m-1.0").exists(), "{bad}: tree left behind");
    }
    // Names that only contain `.git` are ordinary files.
    let p = project("");
    let tb = tarball(
        "m-1.0",
        &[
            ("ok.txt", "ok\n"),
            (".gitignore", "*.o\n"),
            ("x.git/config", "c\n"),
            (".github/workflows/ci.yml", "on: push\n"),
        ],
    );
    module(&p, "fine.tar.gz", &tb);
    p.strata().arg("build").assert().success();
    assert!(p.path("build/m-1.0/x.git/config").is_file());
}

/// A valid PAX record `<len> <key>=<value>\n` whose value is `n` bytes.
fn pax_record(key: &str, n: usize) -> Vec<u8> {
    let body = format!(" {key}={}\n", "a".repeat(n));
    let mut len = body.len() + 1;
    while format!("{len}").len() + body.len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

/// `m-1.0/ok.txt` preceded by an extension header of `kind` with `body`.
fn with_header(kind: u8, body: &[u8]) -> Vec<u8> {
    let name = match kind {
        b'L' | b'K' => "././@LongLink",
        _ => "m-1.0/PaxHeaders/ok.txt",
    };
    gzip(&raw_tar(&[
        raw_entry("m-1.0/", b'5', "", b""),
        raw_entry(name, kind, "", body),
        raw_entry("m-1.0/ok.txt", b'0', "", b"ok\n"),
    ]))
}

#[test]
fn tar_extension_headers_larger_than_a_mib_are_refused() {
    // The report: 8.6 KB on disk, 406 MB of memory, the byte limit ignored.
    let huge = 64 << 20;
    for (kind, body) in [
        (b'x', pax_record("comment", huge)),
        (b'g', pax_record("comment", huge)),
        (b'L', vec![b'a'; huge]),
        (b'K', vec![b'a'; huge]),
    ] {
        let p = project("");
        let tb = with_header(kind, &body);
        assert!(tb.len() < 1 << 20, "gzip keeps the bomb small");
        module(&p, "bomb.tar.gz", &tb);
        p.strata()
            .arg("build")
            .env("STRATA_UNPACK_MAX_BYTES", "1000000")
            .assert()
            .code(1)
            .stderr(contains("bomb.tar.gz"))
            .stderr(contains("after entry `m-1.0/`"))
            .stderr(contains("extended header"))
            .stderr(contains("1 MiB"))
            .stderr(contains("nothing was extracted"));
        assert!(!p.path("build/m-1.0").exists(), "{}", kind as char);
    }
}

#[test]
fn extension_header_bytes_count_against_the_byte_limit() {
    // Under the header cap, but over the project's byte limit.
    let p = project("unpack-max-bytes = 100000");
    module(
        &p,
        "pax.tar.gz",
        &with_header(b'x', &pax_record("comment", 200_000)),
    );
    p.strata()
        .arg("build")
        .assert()
        .code(1)
        .stderr(contains("pax.tar.gz"))
        .stderr(contains("more than 100000 bytes"));
    // The same header under a limit it fits: a valid archive.
    p.strata()
        .arg("build")
        .env("STRATA_UNPACK_MAX_BYTES", "300000")
        .assert()
        .success();
    assert_eq!(p.read("install/ok.txt"), "ok\n");
}
