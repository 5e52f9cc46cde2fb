//! The toolchains' packages as declared downloads. Heads's musl-cross-make
//! fetches gcc, binutils, musl, gmp, mpc, mpfr, the linux headers and
//! `config.sub` itself (`wget` in its Makefile's `$(SOURCES)/%` rule, each
//! checked against its `hashes/<file>.sha1`). Under strata a build reaches
//! no network, so each becomes a `[[download]]` of the module, placed in
//! `sources/` where that rule finds it (and then downloads nothing).
//!
//! The versions and pins live in the module's own source, not in Heads: the
//! Makefile's `GCC_VER = …` and `hashes/`. So the downloads are declared by
//! where upstream keeps them (`sha1-from` + `vars-from = "Makefile"`, URLs
//! from its `*_SITE` variables) and strata reads them out of the verified
//! source when it fetches: a bumped musl-cross-make commit brings its own
//! package list without a re-import.

use super::translate::DownloadOut;

/// One package of musl-cross-make's `SRC_DIRS`: the variable holding its
/// version, the file name prefix, and its URLs (from the Makefile's sites).
const MUSL_CROSS_MAKE: &[(&str, &str, &[&str])] = &[
    ("GCC_VER", "gcc", &["{GCC_SITE}/gcc-{GCC_VER}/{file}"]),
    ("BINUTILS_VER", "binutils", &["{BINUTILS_SITE}/{file}"]),
    ("MUSL_VER", "musl", &["{MUSL_SITE}/{file}"]),
    ("GMP_VER", "gmp", &["{GMP_SITE}/{file}"]),
    ("MPC_VER", "mpc", &["{MPC_SITE}/{file}"]),
    ("MPFR_VER", "mpfr", &["{MPFR_SITE}/{file}"]),
    (
        "LINUX_VER",
        "linux",
        &["{LINUX_HEADERS_SITE}/{file}", "{LINUX_SITE}/v4.x/{file}"],
    ),
];

/// The `[[download]]`s of Heads's musl-cross-make module.
pub fn musl_cross_make_downloads() -> Vec<DownloadOut> {
    let mut out: Vec<DownloadOut> = MUSL_CROSS_MAKE
        .iter()
        .map(|(var, prefix, urls)| DownloadOut {
            sha1_from: format!("hashes/{prefix}-{{{var}}}.tar.*.sha1"),
            vars_from: Some("Makefile".to_string()),
            urls: urls.iter().map(|u| u.to_string()).collect(),
            file: None,
            dest: "sources".to_string(),
        })
        .collect();
    out.push(DownloadOut {
        sha1_from: "hashes/config.sub.{CONFIG_SUB_REV}.sha1".to_string(),
        vars_from: Some("Makefile".to_string()),
        urls: vec![
            "http://git.savannah.gnu.org/gitweb/?p=config.git;a=blob_plain;f=config.sub;hb={CONFIG_SUB_REV}"
                .to_string(),
        ],
        file: Some("config.sub".to_string()),
        dest: "sources".to_string(),
    });
    out
}
