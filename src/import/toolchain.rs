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

use super::make::BoardEval;
use super::model::{DownloadOut, Imported, ModuleOut, version_of};
use super::report::ModuleReport;
use super::rewrite::XGCC_HOST;
use std::collections::{BTreeMap, BTreeSet};

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

/// coreboot's crossgcc packages (`util/crossgcc/sum/<name>-*.cksum`) and
/// where upstream serves them (the same mirrors Heads's
/// `bin/fetch_coreboot_crossgcc_archive.sh` uses). iasl's sum is
/// `R<ver>.tar.gz` since coreboot 4.21 and `acpica-unix2-<ver>` before.
const COREBOOT_CROSSGCC: &[(&str, &[&str])] = &[
    ("gmp-*", &["https://ftpmirror.gnu.org/gmp/{file}"]),
    ("mpfr-*", &["https://ftpmirror.gnu.org/mpfr/{file}"]),
    ("mpc-*", &["https://ftpmirror.gnu.org/mpc/{file}"]),
    ("binutils-*", &["https://ftpmirror.gnu.org/binutils/{file}"]),
    ("gcc-*", &["https://ftpmirror.gnu.org/gcc/{stem}/{file}"]),
    (
        "nasm-*",
        &["https://www.nasm.us/pub/nasm/releasebuilds/{version}/{file}"],
    ),
    (
        "R*|util/crossgcc/sum/acpica-*",
        &[
            "https://github.com/acpica/acpica/archive/refs/tags/{file}",
            "https://mirror.math.princeton.edu/pub/libreboot/misc/acpica/{file}",
            "https://downloadmirror.intel.com/774879/{file}",
        ],
    ),
];

/// The `[[download]]`s of a coreboot crossgcc toolchain module: each
/// package placed in `util/crossgcc/tarballs/`, where `buildgcc` looks
/// before it would download.
pub fn coreboot_crossgcc_downloads() -> Vec<DownloadOut> {
    COREBOOT_CROSSGCC
        .iter()
        .map(|(pat, urls)| DownloadOut {
            sha1_from: format!("util/crossgcc/sum/{pat}.cksum").replace("|", ".cksum|"),
            vars_from: None,
            urls: urls.iter().map(|u| u.to_string()).collect(),
            file: None,
            dest: "util/crossgcc/tarballs".to_string(),
        })
        .collect()
}

/// The shared toolchain a board's coreboot module builds with: Heads's
/// `$(coreboot_toolchain_module)` tree running `make crossgcc-<target>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorebootToolchain {
    /// The Heads module whose source builds it (`coreboot-24.12`).
    pub heads_module: String,
    pub version: String,
    /// `$(COREBOOT_TARGET)`: `i386`, `ppc64`.
    pub target: String,
    /// `<module>_toolchain_build_args` (`BUILD_LANGUAGES=c` for 4.11).
    pub build_args: String,
}

impl CorebootToolchain {
    /// One name per coreboot version and arch, whichever boards use it.
    pub fn name(&self) -> String {
        format!("coreboot-crossgcc-{}-{}", self.version, self.target)
    }

    /// The toolchain module, its source and patches those of the coreboot
    /// module `from` (the same tree Heads builds it in).
    pub fn module(&self, from: &ModuleOut) -> ModuleOut {
        let args = if self.build_args.trim().is_empty() {
            String::new()
        } else {
            format!(" {}", self.build_args.trim())
        };
        ModuleOut {
            name: self.name(),
            heads_name: self.heads_module.clone(),
            module_file: from.module_file.clone(),
            version: self.version.clone(),
            source: from.source.clone(),
            depends: Vec::new(),
            patches: from.patches.clone(),
            params: Vec::new(),
            host: true,
            configure: String::new(),
            build: format!(
                "make -C \"$STRATA_BUILD_DIR\" CPUS=\"$STRATA_JOBS\" crossgcc-{}{args}\n",
                self.target
            ),
            install: "mkdir -p \"$STRATA_DESTDIR\"\n\
                      cp -a \"$STRATA_BUILD_DIR/util/crossgcc/xgcc\" \"$STRATA_DESTDIR/xgcc\"\n"
                .to_string(),
            downloads: coreboot_crossgcc_downloads(),
        }
    }
}

/// Wires one board's coreboot module to its shared toolchain: the module
/// that builds with `XGCCPATH` (the board's own coreboot, not a toolchain
/// provider Heads adds with `.nobuild`) depends on the toolchain module,
/// finds it at `$STRATA_HOST/xgcc`, and the report's toolchain notes are
/// replaced by what was translated. Returns the toolchain it needs.
pub fn wire_coreboot(
    out: &mut ModuleOut,
    notes: &mut BTreeSet<String>,
    e: &BoardEval,
) -> Option<CorebootToolchain> {
    if out.module_file != "coreboot" || e.coreboot_toolchain.is_empty() {
        return None;
    }
    // Heads's rules for the toolchain are what this translates.
    notes.retain(|n| {
        !(n.contains(".heads-toolchain")
            || n.contains(".heads-crossgcc-pkg")
            || n.starts_with("uses the coreboot toolchain of"))
    });
    // The rewrite mapped the toolchain's dir (`util/crossgcc/xgcc` of the
    // provider's tree) to the shared module's, before any tree's dir: a
    // module building with it (XGCCPATH) depends on that module.
    let xgcc = format!("{XGCC_HOST}/");
    if !out.build.contains(&xgcc) && !out.configure.contains(&xgcc) {
        return None;
    }
    let provider = e.modules.get(&e.coreboot_toolchain)?;
    let tc = CorebootToolchain {
        heads_module: e.coreboot_toolchain.clone(),
        version: version_of(provider),
        target: if e.coreboot_target.is_empty() {
            "i386".to_string()
        } else {
            e.coreboot_target.clone()
        },
        build_args: provider
            .get("toolchain_build_args")
            .cloned()
            .unwrap_or_default(),
    };
    if !out.depends.contains(&tc.name()) {
        out.depends.push(tc.name());
    }
    Some(tc)
}

/// The coreboot module a board lists only to build its toolchain in (Heads
/// adds `$(coreboot_toolchain_module)` to `modules-y` with a `.nobuild`
/// target when a fork reuses another version's toolchain): its Heads name,
/// when it builds no firmware on this board. strata's shared
/// `coreboot-crossgcc-*` module takes its place, so it is left out.
pub fn toolchain_hook_only(e: &BoardEval) -> Option<&str> {
    let p = e.coreboot_toolchain.as_str();
    let m = e.modules.get(p)?;
    let builds = m.get("target").is_some_and(|t| t.contains("XGCCPATH"));
    (!builds).then_some(p)
}

/// Adds one host module per coreboot toolchain to `imp` (its source and
/// patches those of its provider), with its report entry; returns their
/// names.
pub fn add_crossgcc_modules(
    imp: &mut Imported,
    crossgcc: &BTreeMap<String, CorebootToolchain>,
    providers: &BTreeMap<String, ModuleOut>,
) -> Vec<String> {
    let mut added = Vec::new();
    for (name, tc) in crossgcc {
        let Some(from) = providers.get(&tc.heads_module) else {
            continue;
        };
        let m = tc.module(from);
        let boards = imp
            .targets
            .values()
            .filter(|t| {
                t.modules
                    .iter()
                    .any(|x| imp.modules.get(x).is_some_and(|m| m.depends.contains(name)))
            })
            .count();
        imp.report.modules.insert(
            name.clone(),
            ModuleReport {
                heads_name: tc.heads_module.clone(),
                module_file: m.module_file.clone(),
                boards,
                translated: vec![
                    format!(
                        "`make crossgcc-{}` in {}'s tree (.heads-toolchain)",
                        tc.target, tc.heads_module
                    ),
                    "its packages (util/crossgcc/sum/) → [[download]] sha1-from, placed in util/crossgcc/tarballs/".to_string(),
                ],
                not_translated: Vec::new(),
            },
        );
        added.push(name.clone());
        imp.modules.insert(name.clone(), m);
    }
    added
}
