//! From GNU make's per-board evaluations to strata modules, targets and
//! layers. Each board is translated on its own (paths differ per board:
//! coreboot builds in `coreboot-<v>/<board>`, linux in
//! `linux-<v>/<config name>`); then the per-board translations of a module
//! are merged. They must agree once paths are rewritten: a module whose
//! commands still differ between boards is reported, never silently merged.
//!
//! Naming: a Heads module keeps its name unless boards build it at
//! different versions (Heads's `linux`), in which case each version becomes
//! `<name>-<version>`, because a strata module name is unique.

use super::make::BoardEval;
use super::report::{BoardReport, ModuleReport, Report};
use super::rewrite::{Context, PRIVATE_INSTALL, env_name, rewrite};
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A value, e.g. `BOARD = "x230"`.
    Value(String),
    /// A file, relative to the output directory.
    File(String),
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

fn words(s: Option<&String>) -> Vec<String> {
    s.map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn field<'a>(m: &'a BTreeMap<String, String>, f: &str) -> &'a str {
    m.get(f).map(|s| s.trim()).unwrap_or("")
}

/// Heads's version of a module: `_version`, else the pinned commit.
fn version_of(m: &BTreeMap<String, String>) -> String {
    let v = field(m, "version");
    if v.is_empty() {
        field(m, "commit_hash").to_string()
    } else {
        v.to_string()
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
    // Versions per Heads name, across boards, to name modules.
    let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, e) in evals {
        if let Ok(e) = e {
            for (name, m) in &e.modules {
                if is_module(m) {
                    versions
                        .entry(name.clone())
                        .or_default()
                        .insert(version_of(m));
                }
            }
        }
    }
    let strata_name = |heads: &str, version: &str| -> String {
        let many = versions.get(heads).is_some_and(|v| v.len() > 1);
        if many && !heads.ends_with(&format!("-{version}")) {
            format!("{heads}-{version}")
        } else {
            heads.to_string()
        }
    };
    let mut scans: BTreeMap<String, FileScan> = BTreeMap::new();
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
            pwd: paths.pwd,
            tmp: paths.tmp,
            arch: &e.arch,
            board,
            dirs,
            params: params.clone(),
            toolchain: toolchain.clone(),
        };
        let mut br = BoardReport {
            status: "imported".into(),
            ..Default::default()
        };
        let mut target = TargetOut::default();
        for n in &e.modules_y {
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
            let file = {
                let f = field(m, "module_file");
                if f.is_empty() {
                    n.clone()
                } else {
                    f.to_string()
                }
            };
            let scan = scans
                .entry(file.clone())
                .or_insert_with(|| scan_file(&paths.heads.join("modules").join(&file)));
            let (out, notes, done, extra) = module(paths, &ctx, n, sn, &file, m, &names, scan);
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

/// One module on one board: its translation, what was not translated, what
/// was, and extra `(param, file)` pairs the board's target must carry.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn module(
    paths: &Paths,
    ctx: &Context,
    heads_name: &str,
    name: &str,
    file: &str,
    m: &BTreeMap<String, String>,
    names: &BTreeMap<&str, String>,
    scan: &FileScan,
) -> (
    ModuleOut,
    BTreeSet<String>,
    Vec<String>,
    Vec<(String, String)>,
) {
    let mut notes = BTreeSet::new();
    let mut done = Vec::new();
    let mut params = BTreeSet::new();
    let mut extra = Vec::new();
    let rw = |v: &str, notes: &mut BTreeSet<String>, params: &mut BTreeSet<String>| {
        let r = rewrite(v, name, ctx);
        notes.extend(r.notes);
        params.extend(r.params);
        r.text
    };
    // Source.
    let repo = field(m, "repo");
    let source = if !repo.is_empty() {
        done.push("git repo + commit".to_string());
        Source::Git {
            git: repo.to_string(),
            rev: field(m, "commit_hash").to_string(),
        }
    } else {
        let url = field(m, "url").to_string();
        let tar = field(m, "tar");
        let last = url.rsplit('/').next().unwrap_or("").to_string();
        let strip = match field(m, "tar_opt") {
            "" => None,
            o => {
                let n = o
                    .strip_prefix("--strip ")
                    .or_else(|| o.strip_prefix("--strip-components="))
                    .or_else(|| o.strip_prefix("--strip-components "))
                    .and_then(|n| n.trim().parse().ok());
                if n.is_none() {
                    notes.insert(format!("tar option `{o}` is not translated"));
                }
                n
            }
        };
        done.push("url + sha256".to_string());
        Source::Archive {
            url,
            sha256: field(m, "hash").to_string(),
            file: (!tar.is_empty() && tar != last).then(|| tar.to_string()),
            strip,
        }
    };
    // Patches, in place.
    let pn = {
        let p = field(m, "patch_name");
        if !p.is_empty() {
            p.to_string()
        } else {
            let version = field(m, "version");
            let pv = match m.get("patch_version") {
                Some(v) => v.trim().to_string(),
                None if repo.is_empty() && !heads_name.ends_with(&format!("-{version}")) => {
                    version.to_string()
                }
                None => String::new(),
            };
            if pv.is_empty() {
                heads_name.to_string()
            } else {
                format!("{heads_name}-{pv}")
            }
        }
    };
    let pdir = paths.heads.join("patches").join(&pn);
    let pfile = paths.heads.join("patches").join(format!("{pn}.patch"));
    let patches = if pdir.is_dir() {
        if pfile.is_file() {
            notes.insert(format!(
                "Heads applies both patches/{pn}.patch and patches/{pn}/; strata takes the directory only"
            ));
        }
        if pdir.join("series").is_file() {
            notes.insert(format!(
                "patches/{pn}/series exists: strata applies in its order, Heads in file name order"
            ));
        }
        done.push(format!("patches/{pn}/"));
        Some(format!("{}/patches/{pn}", paths.heads_from_out))
    } else if pfile.is_file() {
        done.push(format!("patches/{pn}.patch"));
        Some(format!("{}/patches/{pn}.patch", paths.heads_from_out))
    } else {
        None
    };
    // Depends.
    let mut depends = Vec::new();
    for d in words(m.get("depends")) {
        match names.get(d.as_str()) {
            Some(sn) => {
                if !depends.contains(sn) {
                    depends.push(sn.clone())
                }
            }
            None => {
                notes.insert(format!("depends on `{d}`, which no board defines; dropped"));
            }
        }
    }
    done.push("depends".to_string());
    // Configure: seed the private install tree, copy the config, run Heads's configure.
    let mut configure = format!(
        "rm -rf \"{PRIVATE_INSTALL}\"\nmkdir -p \"{PRIVATE_INSTALL}\"\n\
         if [ -d \"$STRATA_SYSROOT\" ]; then cp -a \"$STRATA_SYSROOT/.\" \"{PRIVATE_INSTALL}/\"; fi\n"
    );
    let config = field(m, "config");
    if !config.is_empty() {
        let rel = config
            .strip_prefix(ctx.pwd)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(config)
            .to_string();
        let p = match ctx.params.iter().find(|(r, _)| *r == rel) {
            Some((_, p)) => p.clone(),
            None => {
                let p = format!("{}_CONFIG", env_name(heads_name));
                extra.push((p.clone(), rel.clone()));
                p
            }
        };
        params.insert(p.clone());
        let dest = rw(field(m, "config_file_path"), &mut notes, &mut params);
        configure.push_str(&format!(
            "mkdir -p \"$(dirname \"{dest}\")\"\ncp -a \"$STRATA_PARAM_{p}\" \"{dest}\"\n"
        ));
        done.push(format!("config {rel} → $STRATA_PARAM_{p}"));
    }
    configure.push_str("cd \"$STRATA_BUILD_DIR\"\nset +eu\n");
    let c = rw(field(m, "configure"), &mut notes, &mut params);
    if !c.trim().is_empty() {
        configure.push_str(c.trim());
        configure.push('\n');
        done.push("_configure".to_string());
    }
    // Build: Heads runs `$(MAKE) -C $(build)/$(dir) $(target)`.
    let t = rw(field(m, "target"), &mut notes, &mut params);
    let build =
        format!("set +eu\nmake -C \"$STRATA_BUILD_DIR\" {}\n", t.trim()).replace(" \n", "\n");
    done.push("_target".to_string());
    // Install: collect what the module added to the private tree, plus its
    // outputs and libraries (what Heads copies into the initrd).
    let mut install = format!(
        "cd \"{PRIVATE_INSTALL}\"\n\
         find . ! -type d | LC_ALL=C sort | while IFS= read -r f; do\n  \
         if ! cmp -s \"$f\" \"$STRATA_SYSROOT/$f\"; then\n    \
         mkdir -p \"$STRATA_DESTDIR/$(dirname \"$f\")\" && cp -a \"$f\" \"$STRATA_DESTDIR/$f\"\n  fi\ndone\n\
         cd \"$STRATA_BUILD_DIR\"\n"
    );
    for (f, sub) in [("output", "bin"), ("libraries", "lib")] {
        let list = rw(
            m.get(f).map(String::as_str).unwrap_or(""),
            &mut notes,
            &mut params,
        );
        let items: Vec<&str> = list.split_whitespace().collect();
        if !items.is_empty() {
            install.push_str(&format!(
                "mkdir -p \"$STRATA_DESTDIR/initrd/{sub}\"\ncp -aL {} \"$STRATA_DESTDIR/initrd/{sub}/\"\n",
                items.join(" ")
            ));
            done.push(format!("_{f} → initrd/{sub}"));
        }
    }
    if !field(m, "data").is_empty() {
        let mut ignored = BTreeSet::new();
        let data = rw(field(m, "data"), &mut ignored, &mut BTreeSet::new());
        notes.insert(format!(
            "_data (files Heads stages into data.cpio) is not translated: `{data}`"
        ));
    }
    if !field(m, "toolchain").is_empty() {
        notes.insert(format!(
            "uses the coreboot toolchain of `{}`, which Heads builds through a rule in modules/{file}; not translated",
            field(m, "toolchain")
        ));
    }
    for (line, target) in &scan.rules {
        notes.insert(format!(
            "modules/{file}:{line}: rule `{target}` is Heads-specific; not translated"
        ));
    }
    for (line, text) in &scan.shells {
        notes.insert(format!(
            "modules/{file}:{line}: $(shell …) evaluated on the importing host: `{text}`"
        ));
    }
    let out = ModuleOut {
        name: name.to_string(),
        heads_name: heads_name.to_string(),
        module_file: file.to_string(),
        version: version_of(m),
        source,
        depends,
        patches,
        params: params.into_iter().collect(),
        host: ctx.toolchain == name,
        configure,
        build,
        install,
    };
    (out, notes, done, extra)
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
