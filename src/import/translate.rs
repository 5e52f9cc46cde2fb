//! From GNU make's per-board evaluations to strata modules, targets and
//! layers. Each board is translated on its own (paths differ per board:
//! coreboot builds in `coreboot-<v>/<board>`, linux in
//! `linux-<v>/<config name>`); then the per-board translations of a module
//! are merged. They must agree once paths are rewritten: a module whose
//! commands still differ between boards is reported, never silently merged.
//!
//! Naming: a Heads module keeps its name unless boards build it at
//! different versions (Heads's `linux`), in which case each version becomes
//! `<name>-<version>`, because a strata module name is unique. Whether they
//! do is read from the module file (its `<m>_version` assigned on several
//! lines), not only from the boards evaluated, so `--board` never renames
//! a module.

use super::make::BoardEval;
use super::module::module;
use super::report::{BoardReport, ModuleReport, Report};
use super::rewrite::Context;
use super::scan::{FileScan, scan_file};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Archive {
        url: String,
        sha256: String,
        /// Set when Heads's `_tar` differs from the URL's last segment.
        file: Option<String>,
        strip: Option<u32>,
    },
    Git {
        git: String,
        rev: String,
    },
    /// `source = "none"`: Heads's own image steps (see `image.rs`).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleOut {
    pub name: String,
    pub heads_name: String,
    pub module_file: String,
    pub version: String,
    pub source: Source,
    pub depends: Vec<String>,
    /// Relative to the output directory.
    pub patches: Option<String>,
    pub params: Vec<String>,
    pub host: bool,
    pub configure: String,
    pub build: String,
    pub install: String,
    /// Files the build needs, pinned by its source (`sha1-from`).
    pub downloads: Vec<DownloadOut>,
}

/// A `[[download]]` whose pin and name strata reads from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadOut {
    pub sha1_from: String,
    pub vars_from: Option<String>,
    pub urls: Vec<String>,
    pub file: Option<String>,
    pub dest: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A value, e.g. `BOARD = "x230"`.
    Value(String),
    /// A file, relative to the output directory.
    File(String),
    /// A directory, relative to the output directory.
    Dir(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetOut {
    pub modules: Vec<String>,
    pub params: BTreeMap<String, Param>,
}

#[derive(Debug, Default)]
pub struct Imported {
    pub modules: BTreeMap<String, ModuleOut>,
    pub targets: BTreeMap<String, TargetOut>,
    pub layers: BTreeMap<String, Vec<String>>,
    pub report: Report,
}

/// Paths the translation needs.
pub struct Paths<'a> {
    pub heads: &'a Path,
    /// `heads` as seen from the output directory (`..` for the default).
    pub heads_from_out: &'a str,
    pub pwd: &'a str,
    pub tmp: &'a str,
}

fn field<'a>(m: &'a BTreeMap<String, String>, f: &str) -> &'a str {
    m.get(f).map(|s| s.trim()).unwrap_or("")
}

/// Heads's version of a module: `_version`, else the pinned commit.
pub(super) fn version_of(m: &BTreeMap<String, String>) -> String {
    let v = field(m, "version");
    if v.is_empty() {
        field(m, "commit_hash").to_string()
    } else {
        v.to_string()
    }
}

/// The Heads modules whose strata name carries their version: those boards
/// build at different versions, and those whose module file picks the
/// version per board (so the name does not depend on the boards imported).
fn versioned_names(
    paths: &Paths,
    evals: &[(String, Result<BoardEval, String>)],
    scans: &mut BTreeMap<String, FileScan>,
) -> BTreeSet<String> {
    let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for e in evals.iter().filter_map(|(_, e)| e.as_ref().ok()) {
        for (name, m) in e.modules.iter().filter(|(_, m)| is_module(m)) {
            versions
                .entry(name.clone())
                .or_default()
                .insert(version_of(m));
            let file = module_file_of(name, m);
            let scan = scans
                .entry(file.clone())
                .or_insert_with(|| scan_file(&paths.heads.join("modules").join(&file)));
            if scan.versioned.contains(name) {
                out.insert(name.clone());
            }
        }
    }
    out.extend(
        versions
            .into_iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(n, _)| n),
    );
    out
}

/// `modules/<file>` defining Heads module `name`.
fn module_file_of(name: &str, m: &BTreeMap<String, String>) -> String {
    match field(m, "module_file") {
        "" => name.to_string(),
        f => f.to_string(),
    }
}

/// Is this entry of `modules-y` a module (something with a source)?
fn is_module(m: &BTreeMap<String, String>) -> bool {
    !field(m, "url").is_empty() || !field(m, "repo").is_empty()
}

/// One module across boards: each board's translation, the notes of all,
/// and what was translated.
type Merged = (Vec<(String, ModuleOut)>, BTreeSet<String>, Vec<String>);

pub fn translate(paths: &Paths, evals: &[(String, Result<BoardEval, String>)]) -> Imported {
    let mut imp = Imported::default();
    let mut scans: BTreeMap<String, FileScan> = BTreeMap::new();
    // coreboot's shared toolchains, by strata name.
    let mut crossgcc: BTreeMap<String, super::toolchain::CorebootToolchain> = BTreeMap::new();
    let mut providers: BTreeMap<String, ModuleOut> = BTreeMap::new();
    let versioned = versioned_names(paths, evals, &mut scans);
    let strata_name = |heads: &str, version: &str| -> String {
        let many = versioned.contains(heads);
        if many && !heads.ends_with(&format!("-{version}")) {
            format!("{heads}-{version}")
        } else {
            heads.to_string()
        }
    };
    // strata name → (each board's translation, notes, what was translated)
    let mut merged: BTreeMap<String, Merged> = BTreeMap::new();
    for (board, e) in evals {
        let e = match e {
            Ok(e) => e,
            Err(msg) => {
                imp.report.boards.insert(
                    board.clone(),
                    BoardReport {
                        status: "error".into(),
                        error: Some(msg.clone()),
                        ..Default::default()
                    },
                );
                continue;
            }
        };
        let names: BTreeMap<&str, String> = e
            .modules
            .iter()
            .filter(|(_, m)| is_module(m))
            .map(|(n, m)| (n.as_str(), strata_name(n, &version_of(m))))
            .collect();
        let mut dirs = Vec::new();
        for (n, m) in &e.modules {
            let Some(sn) = names.get(n.as_str()) else {
                continue;
            };
            let dir = field(m, "dir");
            let base = field(m, "base_dir");
            if !dir.is_empty() {
                dirs.push((dir.to_string(), sn.clone(), false));
            }
            if !base.is_empty() && base != dir {
                dirs.push((base.to_string(), sn.clone(), true));
            }
        }
        dirs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        let params: Vec<(String, String)> = e
            .config_files
            .iter()
            .filter(|(_, rel)| paths.heads.join(rel).is_file())
            .map(|(var, rel)| {
                let p = var.strip_prefix("CONFIG_").unwrap_or(var).to_string();
                (rel.clone(), p)
            })
            .collect();
        let toolchain = names.get(e.musl_dep.as_str()).cloned().unwrap_or_default();
        let ctx = Context {
            heads: paths.heads,
            pwd: paths.pwd,
            tmp: paths.tmp,
            arch: &e.arch,
            board,
            dirs,
            params: params.clone(),
            toolchain: toolchain.clone(),
            layout: names
                .get(
                    e.vars
                        .get("coreboot_module")
                        .map(|s| s.trim())
                        .unwrap_or(""),
                )
                .cloned()
                .unwrap_or_default(),
            heads_cc: e.vars.get("heads_cc").cloned().unwrap_or_default(),
            cross: e.vars.get("CROSS").cloned().unwrap_or_default(),
        };
        let image = super::image::board_image(paths.heads, paths.heads_from_out, &ctx, e, &names);
        let mut br = BoardReport {
            status: "imported".into(),
            ..Default::default()
        };
        let mut target = TargetOut::default();
        let hook = super::toolchain::toolchain_hook_only(e);
        let ec = super::ec::ec_modules(
            paths.heads,
            e.modules
                .iter()
                .filter(|(n, _)| names.contains_key(n.as_str()))
                .map(|(n, m)| (n.as_str(), module_file_of(n, m))),
            &mut scans,
        );
        for n in &e.modules_y {
            if n == "initrd" && image.is_some() {
                target.modules.push("initrd".to_string());
                if let Some(cb) = names.get(
                    e.vars
                        .get("coreboot_module")
                        .map(|s| s.trim())
                        .unwrap_or(""),
                ) {
                    target.modules.push(super::image::cbmem_name(cb));
                }
                continue;
            }
            if Some(n.as_str()) == hook {
                br.skipped.push(format!(
                    "`{n}` is in modules-y only to build the coreboot toolchain in its tree: the shared toolchain module does that"
                ));
                continue;
            }
            match names.get(n.as_str()) {
                Some(sn) => {
                    if !target.modules.contains(sn) {
                        target.modules.push(sn.clone())
                    }
                }
                None => br.skipped.push(format!(
                    "`{n}` in modules-y has no url or git repo: Heads's own build step, not a module"
                )),
            }
        }
        for (n, m) in &e.modules {
            let Some(sn) = names.get(n.as_str()) else {
                continue;
            };
            let file = module_file_of(n, m);
            let scan = scans
                .entry(file.clone())
                .or_insert_with(|| scan_file(&paths.heads.join("modules").join(&file)));
            let (mut out, mut notes, mut done, extra) =
                module(paths, &ctx, n, sn, &file, m, &names, scan);
            // The toolchain's tree: its source and patches, whether or not
            // the board builds it (see `toolchain_hook_only`).
            if *n == e.coreboot_toolchain {
                providers.entry(n.clone()).or_insert_with(|| out.clone());
            }
            if Some(n.as_str()) == hook {
                continue;
            }
            if let Some(tc) = super::toolchain::wire_coreboot(&mut out, &mut notes, e) {
                done.push(format!("toolchain → host module `{}`", tc.name()));
                crossgcc.insert(tc.name(), tc);
            }
            let layout = *sn == ctx.layout;
            super::ec::wire(&mut out, &mut notes, &mut done, m, &ec, layout, &e.arch);
            if image.is_some() {
                let covered: Vec<String> = notes
                    .iter()
                    .filter(|n| super::image::covers(n))
                    .cloned()
                    .collect();
                for c in covered {
                    notes.remove(&c);
                    let what = c.split(": ").next().unwrap_or(&c).to_string();
                    done.push(format!(
                        "{what}: carried by the board's `initrd`/`rom` modules"
                    ));
                }
            }
            if image.is_some() && *sn == ctx.layout {
                // coreboot's payload: the board's initrd and kernel.
                out.depends.push("initrd".to_string());
                let cb = super::image::cbmem(&out, &ctx, e);
                let done = vec!["Heads's cbmem rule (top-level Makefile)".to_string()];
                merged
                    .entry(cb.name.clone())
                    .or_insert_with(|| (Vec::new(), BTreeSet::new(), done))
                    .0
                    .push((board.clone(), cb));
            }
            for (p, rel) in extra {
                let f = format!("{}/{rel}", paths.heads_from_out);
                target.params.insert(p, Param::File(f));
            }
            for (rel, p) in &params {
                if out.params.contains(p) {
                    let f = format!("{}/{rel}", paths.heads_from_out);
                    target.params.insert(p.clone(), Param::File(f));
                }
            }
            if out.params.iter().any(|p| p == "BOARD") {
                target
                    .params
                    .insert("BOARD".to_string(), Param::Value(board.clone()));
            }
            let entry = merged
                .entry(sn.clone())
                .or_insert_with(|| (Vec::new(), BTreeSet::new(), done));
            entry.0.push((board.clone(), out));
            entry.1.extend(notes);
        }
        if let Some(img) = image {
            target.modules.push("rom".to_string());
            for (p, v) in img.params {
                target.params.insert(p, v);
            }
            br.install = img.install;
            for m in [img.initrd, img.rom] {
                let done = vec![
                    "Heads's top-level Makefile recipes, as strata's own commands".to_string(),
                ];
                let entry = merged
                    .entry(m.name.clone())
                    .or_insert_with(|| (Vec::new(), BTreeSet::new(), done));
                entry.0.push((board.clone(), m));
            }
        }
        br.modules = target.modules.clone();
        imp.report.boards.insert(board.clone(), br);
        imp.targets.insert(board.clone(), target);
    }
    // Boards on which a module's translation differs (another arch's cross
    // prefix, a board-specific make argument) get their own module,
    // `<name>+<first board>`: exact per board, never silently merged. The
    // split propagates: a dependent whose dependency split splits too.
    let mut fin: BTreeMap<(String, String), String> = BTreeMap::new();
    for _ in 0..32 {
        let mut next = BTreeMap::new();
        for (base, (per_board, _, _)) in &merged {
            for (i, (_, bs)) in groups(per_board, &fin).iter().enumerate() {
                let n = if i == 0 {
                    base.clone()
                } else {
                    format!("{base}+{}", bs[0])
                };
                for b in bs {
                    next.insert((b.clone(), base.clone()), n.clone());
                }
            }
        }
        if next == fin {
            break;
        }
        fin = next;
    }
    let mut coreboot = Vec::new();
    let mut toolchains = BTreeSet::new();
    for (base, (per_board, notes, done)) in &merged {
        let gs = groups(per_board, &fin);
        for (i, (m, bs)) in gs.iter().enumerate() {
            let mut m = m.clone();
            m.name = fin[&(bs[0].clone(), base.clone())].clone();
            let mut params = BTreeSet::new();
            for (b, x) in per_board {
                if bs.contains(b) {
                    params.extend(x.params.iter().cloned());
                }
            }
            m.params = params.into_iter().collect();
            let mut translated = done.clone();
            if gs.len() > 1 {
                let shown: Vec<&str> = bs.iter().take(4).map(String::as_str).collect();
                let more = if bs.len() > 4 { ", …" } else { "" };
                translated.push(if i == 0 {
                    format!(
                        "the translation {} board(s) share; {} other variant(s) are separate modules `{base}+<board>`",
                        bs.len(),
                        gs.len() - 1
                    )
                } else {
                    format!(
                        "Heads builds `{base}` differently on {} board(s) ({}{more}): their own module",
                        bs.len(),
                        shown.join(", ")
                    )
                });
            }
            if m.host {
                toolchains.insert(m.name.clone());
            }
            if m.module_file == "coreboot" {
                coreboot.push(m.name.clone());
            }
            imp.report.modules.insert(
                m.name.clone(),
                ModuleReport {
                    heads_name: m.heads_name.clone(),
                    module_file: m.module_file.clone(),
                    boards: bs.len(),
                    translated,
                    not_translated: notes.iter().cloned().collect(),
                },
            );
            imp.modules.insert(m.name.clone(), m);
        }
    }
    for (board, t) in imp.targets.iter_mut() {
        for n in t.modules.iter_mut() {
            if let Some(f) = fin.get(&(board.clone(), n.clone())) {
                *n = f.clone();
            }
        }
    }
    for (b, r) in imp.report.boards.iter_mut() {
        if let Some(t) = imp.targets.get(b) {
            r.modules = t.modules.clone();
        }
    }
    // One host module per coreboot toolchain, shared by its boards.
    coreboot.extend(super::toolchain::add_crossgcc_modules(
        &mut imp, &crossgcc, &providers,
    ));
    // Heads's three CircleCI cache layers.
    let tc: Vec<String> = toolchains.into_iter().collect();
    if !tc.is_empty() {
        imp.layers.insert("musl-cross-make".into(), tc.clone());
        let mut cb = tc.clone();
        cb.extend(coreboot);
        imp.layers.insert("coreboot-musl-cross-make".into(), cb);
    }
    imp.layers
        .insert("modules".into(), imp.modules.keys().cloned().collect());
    imp
}

/// The boards sharing each distinct translation of one module (dependencies
/// compared by the names they have on each board), the largest group
/// first; ties go to the group of the alphabetically first board. Each
/// group's translation has its dependencies renamed as on its first board.
fn groups(
    per_board: &[(String, ModuleOut)],
    fin: &BTreeMap<(String, String), String>,
) -> Vec<(ModuleOut, Vec<String>)> {
    let mut gs: Vec<(ModuleOut, Vec<String>)> = Vec::new();
    for (b, m) in per_board {
        let mut k = m.clone();
        k.params.clear();
        for d in k.depends.iter_mut() {
            if let Some(f) = fin.get(&(b.clone(), d.clone())) {
                *d = f.clone();
            }
        }
        match gs.iter_mut().find(|(g, _)| *g == k) {
            Some((_, bs)) => bs.push(b.clone()),
            None => gs.push((k, vec![b.clone()])),
        }
    }
    for (_, bs) in gs.iter_mut() {
        bs.sort();
    }
    gs.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1[0].cmp(&b.1[0])));
    gs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(version: &str, configure: &str, depends: &str) -> BTreeMap<String, String> {
        [
            ("version", version),
            ("dir", "d"),
            ("url", "https://example.invalid/x.tar.gz"),
            ("hash", "00"),
            ("configure", configure),
            ("depends", depends),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn board(name: &str, x_configure: &str) -> (String, Result<BoardEval, String>) {
        let mut e = BoardEval {
            board: name.into(),
            modules_y: vec!["y".into()],
            arch: "x86".into(),
            ..Default::default()
        };
        e.modules.insert("x".into(), module("1", x_configure, ""));
        let mut y = module("1", "", "x");
        y.insert("dir".into(), "yd".into());
        e.modules.insert("y".into(), y);
        (name.into(), Ok(e))
    }

    #[test]
    fn a_board_specific_translation_splits_and_the_split_propagates() {
        let evals = vec![
            board("a", "./configure"),
            board("b", "./configure --other"),
            board("c", "./configure"),
            ("d".to_string(), Err("no".to_string())),
        ];
        let paths = Paths {
            heads: Path::new("/nonexistent"),
            heads_from_out: "..",
            pwd: "/f/h",
            tmp: "/f/tmp",
        };
        let imp = translate(&paths, &evals);
        let names: Vec<&String> = imp.modules.keys().collect();
        assert_eq!(names, ["x", "x+b", "y", "y+b"]);
        assert_eq!(imp.modules["y+b"].depends, ["x+b"]);
        assert_eq!(imp.modules["y"].depends, ["x"]);
        assert!(imp.modules["x+b"].configure.contains("./configure --other"));
        assert_eq!(imp.targets["b"].modules, ["y+b"]);
        assert_eq!(imp.targets["a"].modules, ["y"]);
        assert_eq!(imp.report.boards["d"].status, "error");
        assert!(!imp.targets.contains_key("d"));
    }
}
