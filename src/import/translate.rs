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

use super::config_dirs::named;
use super::image::{board_image, cbmem, cbmem_name, covers};
use super::make::BoardEval;
use super::model::{Imported, ModuleOut, Param, Paths, TargetOut, field, version_of};
use super::module::module;
use super::report::{BoardReport, ModuleReport};
use super::rewrite::Context;
use super::scan::{FileScan, scan_file};
use super::toolchain::{
    CorebootToolchain, add_crossgcc_modules, toolchain_hook_only, wire_coreboot,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

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

/// Every evaluated board translated on its own, then each module's
/// per-board translations merged (split where boards disagree), with the
/// targets, cache layers and report.
pub fn translate(paths: &Paths, evals: &[(String, Result<BoardEval, String>)]) -> Imported {
    let mut scans: BTreeMap<String, FileScan> = BTreeMap::new();
    let versioned = versioned_names(paths, evals, &mut scans);
    let mut t = Translation {
        paths,
        versioned,
        scans,
        imp: Imported::default(),
        crossgcc: BTreeMap::new(),
        providers: BTreeMap::new(),
        merged: BTreeMap::new(),
        headers: BTreeMap::new(),
        board_notes: Vec::new(),
        board_files: Vec::new(),
    };
    for (board, e) in evals {
        match e {
            Ok(e) => t.board(board, e),
            Err(msg) => {
                t.imp.report.boards.insert(
                    board.clone(),
                    BoardReport {
                        status: "error".into(),
                        error: Some(msg.clone()),
                        ..Default::default()
                    },
                );
            }
        }
    }
    // Boards of one arch on different kernels: Heads's shared install/<arch>.
    for (h, note) in super::kernel::disagreement_notes(&t.headers) {
        if let Some(entry) = t.merged.get_mut(&h) {
            entry.1.insert(note);
        }
    }
    let fin = final_names(&t.merged);
    let (toolchains, coreboot) = t.emit(&fin);
    t.finish(&fin, toolchains, coreboot)
}

/// The translation across boards being assembled: each board's target and
/// report go straight into `imp`, its modules' translations into `merged`
/// until every board is in.
struct Translation<'a> {
    paths: &'a Paths<'a>,
    /// See `versioned_names`.
    versioned: BTreeSet<String>,
    /// Each module file, scanned once.
    scans: BTreeMap<String, FileScan>,
    imp: Imported,
    /// coreboot's shared toolchains, by strata name.
    crossgcc: BTreeMap<String, CorebootToolchain>,
    /// The trees the toolchains build in, by Heads name.
    providers: BTreeMap<String, ModuleOut>,
    /// strata name → (each board's translation, notes, what was translated)
    merged: BTreeMap<String, Merged>,
    /// Each arch's kernel headers modules (see `kernel.rs`).
    headers: BTreeMap<String, BTreeSet<String>>,
    /// What of the board being translated was not (its `BOARD_TARGETS`),
    /// moved into its report when the board is done.
    board_notes: Vec<String>,
    /// The board's blobs copied into its board dir (see `blobs.rs`).
    board_files: Vec<String>,
}

/// One board being translated: its evaluation, the strata names of its
/// modules, its config files as params, the rewriting context, and whether
/// it has Heads's image modules.
struct Board<'b> {
    name: &'b str,
    e: &'b BoardEval,
    names: BTreeMap<&'b str, String>,
    /// `(path relative to Heads, param name)`.
    params: Vec<(String, String)>,
    ctx: Context<'b>,
    has_image: bool,
    /// The board's EC modules (dasharo-ec): Heads name → its ROM rule.
    ec: BTreeMap<String, super::ec::EcRule>,
}

impl Translation<'_> {
    /// A Heads module's strata name (see the module doc's "Naming").
    fn strata_name(&self, heads: &str, version: &str) -> String {
        let many = self.versioned.contains(heads);
        if many && !heads.ends_with(&format!("-{version}")) {
            format!("{heads}-{version}")
        } else {
            heads.to_string()
        }
    }

    /// Board `name`'s target and report, its modules' translations merged in.
    fn board(&mut self, name: &str, e: &BoardEval) {
        let names: BTreeMap<&str, String> = e
            .modules
            .iter()
            .filter(|(_, m)| is_module(m))
            .map(|(n, m)| (n.as_str(), self.strata_name(n, &version_of(m))))
            .collect();
        let params = config_params(self.paths.heads, e);
        let ctx = context(self.paths, name, e, &names, params.clone());
        // Talos's kernel with its initrd inside (see `kernel.rs`).
        let bundled = names
            .get("linux")
            .filter(|_| super::kernel::is_bundled(e))
            .map(|l| super::kernel::bundled_name(l));
        let image = board_image(
            self.paths.heads,
            self.paths.heads_from_out,
            &ctx,
            e,
            &names,
            bundled,
        );
        let ec = super::ec::ec_modules(
            self.paths.heads,
            e.modules
                .iter()
                .filter(|(n, _)| names.contains_key(n.as_str()))
                .map(|(n, m)| (n.as_str(), module_file_of(n, m))),
            &mut self.scans,
        );
        let b = Board {
            name,
            e,
            names,
            params,
            ctx,
            has_image: image.is_some(),
            ec,
        };
        let mut br = BoardReport {
            status: "imported".into(),
            ..Default::default()
        };
        let mut target = TargetOut::default();
        target_modules(&b, &mut target, &mut br);
        for (n, m) in &e.modules {
            if let Some(sn) = b.names.get(n.as_str()) {
                self.add_module(&b, n, sn, m, &mut target);
            }
        }
        let board_files = std::mem::take(&mut self.board_files);
        if let Some(mut img) = image {
            // Blobs Heads copies into the board dir are the board's outputs.
            for rel in board_files {
                let file = rel.rsplit('/').next().unwrap_or(&rel).to_string();
                img.rom.install.push_str(&format!(
                    "cp -a \"$STRATA_SYSROOT/{}/{rel}\" \"$STRATA_DESTDIR/$STRATA_PARAM_BOARD/{file}\"\n",
                    super::image::BLOBS_DIR
                ));
                img.install.push(format!("{name}/{file}"));
            }
            target.modules.push("rom".to_string());
            for (p, v) in img.params {
                target.params.insert(p, v);
            }
            br.install = img.install;
            let recipes = "Heads's top-level Makefile recipes, as strata's own commands";
            self.merge(name, img.initrd, vec![recipes.to_string()], BTreeSet::new());
            let mut done = vec![recipes.to_string()];
            done.extend(img.rom_done);
            self.merge(name, img.rom, done, BTreeSet::new());
            // BOARD_TARGETS strata leaves out: the board's own report.
            br.skipped.extend(img.rom_skipped);
            self.board_notes.extend(img.rom_notes);
        }
        br.modules = target.modules.clone();
        br.not_translated = std::mem::take(&mut self.board_notes);
        self.imp.report.boards.insert(name.to_string(), br);
        self.imp.targets.insert(name.to_string(), target);
    }

    /// Module `n` (strata name `sn`) of board `b`: translated, wired to
    /// its toolchains and the board's image, its params carried by the
    /// board's target, merged in.
    fn add_module(
        &mut self,
        b: &Board,
        n: &str,
        sn: &str,
        m: &BTreeMap<String, String>,
        target: &mut TargetOut,
    ) {
        let e = b.e;
        let paths = self.paths;
        let file = module_file_of(n, m);
        let scan = self
            .scans
            .entry(file.clone())
            .or_insert_with(|| scan_file(&paths.heads.join("modules").join(&file)));
        let (mut out, mut notes, mut done, extra) =
            module(paths, &b.ctx, n, sn, &file, m, &b.names, scan);
        // The toolchain's tree: its source and patches, whether or not
        // the board builds it (see `toolchain_hook_only`).
        if n == e.coreboot_toolchain {
            self.providers
                .entry(n.to_string())
                .or_insert_with(|| out.clone());
        }
        if Some(n) == toolchain_hook_only(e) {
            return;
        }
        if let Some(tc) = wire_coreboot(&mut out, &mut notes, e) {
            done.push(format!("toolchain → host module `{}`", tc.name()));
            self.crossgcc.insert(tc.name(), tc);
        }
        let layout = sn == b.ctx.layout;
        super::ec::wire(&mut out, &mut notes, &mut done, m, &b.ec, layout, &e.arch);
        if b.has_image {
            carried_by_image(&mut notes, &mut done);
        }
        self.wire_kernel(b, n, m, &mut out, &mut notes, &mut done);
        if b.has_image && sn == b.ctx.layout {
            // coreboot's payload: the board's initrd and kernel.
            out.depends.push("initrd".to_string());
            let mut cb = cbmem(&out, &b.ctx, e);
            // Built with the toolchain (`$(CROSS_TOOLS)`): the kernel's headers too.
            if let Some(l) = b.names.get("linux").filter(|_| !cb.depends.is_empty()) {
                cb.depends.push(super::kernel::headers_name(l));
            }
            let done = vec!["Heads's cbmem rule (top-level Makefile)".to_string()];
            self.merge(b.name, cb, done, BTreeSet::new());
        }
        if n == coreboot_module(e) {
            self.wire_blobs(b, &mut out, &mut done, target);
        }
        carry_params(b, paths.heads_from_out, &out, extra, target);
        self.merge(b.name, out, done, notes);
    }

    /// The board's `BOARD_TARGETS` (see `blobs.rs`): its blob modules, on
    /// which its coreboot `out` depends; the rest goes to its report.
    fn wire_blobs(
        &mut self,
        b: &Board,
        out: &mut ModuleOut,
        done: &mut Vec<String>,
        target: &mut TargetOut,
    ) {
        let targets = b.e.vars.get("BOARD_TARGETS").map_or("", |s| s.trim());
        let bl = super::blobs::board_blobs(
            self.paths.heads,
            self.paths.heads_from_out,
            targets,
            &b.e.arch,
            out,
        );
        out.depends.extend(bl.depends);
        out.configure.push_str(&bl.configure);
        done.extend(bl.done);
        self.board_notes.extend(bl.not_translated);
        self.board_files.extend(bl.board_files);
        for (p, v) in bl.params {
            target.params.insert(p, v);
        }
        for (m, fixed) in bl.modules {
            if !target.modules.contains(&m.name) {
                target.modules.push(m.name.clone());
            }
            self.imp.fixed.insert(m.name.clone(), fixed);
            let what = vec![format!(
                "Heads's targets/{}.mk: a fixed-output module (network, outputs pinned)",
                m.heads_name
            )];
            self.merge(b.name, m, what, BTreeSet::new());
        }
    }

    /// linux's rules outside `define_module` on board `b` (see `kernel.rs`):
    /// the kernel module `n == "linux"` brings its headers module (and, on
    /// a board bundling its initrd, the bundled image); every other module
    /// depending on the toolchain depends on the headers, whose hook in the
    /// toolchain's file is then translated.
    fn wire_kernel(
        &mut self,
        b: &Board,
        n: &str,
        m: &BTreeMap<String, String>,
        out: &mut ModuleOut,
        notes: &mut BTreeSet<String>,
        done: &mut Vec<String>,
    ) {
        let e = b.e;
        let Some(linux) = b.names.get("linux") else {
            return;
        };
        let h = super::kernel::headers_name(linux);
        let tc = &b.ctx.toolchain;
        if n == "linux" {
            notes.retain(|x| !super::kernel::headers_rule_note(x));
            done.push(format!(
                "its `$(INSTALL)/include/linux/limits.h` rule (headers_install) → module `{h}`, a dependency of every module built with the toolchain"
            ));
            let arch = e.vars.get("LINUX_ARCH").map_or("", |s| s.trim());
            let headers = super::kernel::headers(out, arch);
            self.headers
                .entry(e.arch.clone())
                .or_default()
                .insert(h.clone());
            let hd = vec![
                "modules/linux's `$(INSTALL)/include/linux/limits.h` rule: make headers_install"
                    .into(),
            ];
            self.merge(b.name, headers, hd, BTreeSet::new());
            if b.has_image && super::kernel::is_bundled(e) {
                let bundled = super::kernel::bundled(out, e, m);
                let bd = vec![format!(
                    "modules/linux's `$(build)/$(BOARD)/$(LINUX_IMAGE_FILE).bundled` rule: the kernel of `{linux}` built from a clean tree with the board's initrd"
                )];
                self.merge(b.name, bundled, bd, BTreeSet::new());
            }
            return;
        }
        if out.host && out.name == *tc {
            notes.retain(|x| !super::kernel::toolchain_hook_note(x, n));
            done.push(format!(
                "its `.build` prerequisite on the kernel's headers → module `{h}`, which its dependents depend on (the toolchain's key stays independent of the kernel)"
            ));
            return;
        }
        if !tc.is_empty() && out.depends.contains(tc) && !out.depends.contains(&h) {
            out.depends.push(h);
        }
    }

    /// One board's translation of a module, under the module's strata name
    /// (`done` is kept from the first board that has it).
    fn merge(&mut self, board: &str, m: ModuleOut, done: Vec<String>, notes: BTreeSet<String>) {
        let entry = self
            .merged
            .entry(m.name.clone())
            .or_insert_with(|| (Vec::new(), BTreeSet::new(), done));
        entry.0.push((board.to_string(), m));
        entry.1.extend(notes);
    }

    /// Every module's translations into `imp`, one module per group of
    /// boards that agree, each with its report entry. Returns the host
    /// modules' names and coreboot's.
    fn emit(&mut self, fin: &FinalNames) -> (BTreeSet<String>, Vec<String>) {
        let mut coreboot = Vec::new();
        let mut toolchains = BTreeSet::new();
        for (base, (per_board, notes, done)) in &self.merged {
            let gs = groups(per_board, fin);
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
                    translated.push(split_note(base, i, bs, gs.len()));
                }
                if m.host {
                    toolchains.insert(m.name.clone());
                }
                if m.module_file == "coreboot" {
                    coreboot.push(m.name.clone());
                }
                self.imp.report.modules.insert(
                    m.name.clone(),
                    ModuleReport {
                        heads_name: m.heads_name.clone(),
                        module_file: m.module_file.clone(),
                        boards: bs.len(),
                        translated,
                        not_translated: notes.iter().cloned().collect(),
                    },
                );
                self.imp.modules.insert(m.name.clone(), m);
            }
        }
        (toolchains, coreboot)
    }

    /// The targets under the final names, the shared toolchain modules and
    /// Heads's cache layers.
    fn finish(
        mut self,
        fin: &FinalNames,
        toolchains: BTreeSet<String>,
        mut coreboot: Vec<String>,
    ) -> Imported {
        let imp = &mut self.imp;
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
        coreboot.extend(add_crossgcc_modules(imp, &self.crossgcc, &self.providers));
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
        self.imp
    }
}

/// `(board, base name)` → the module's name on that board.
type FinalNames = BTreeMap<(String, String), String>;

/// Boards on which a module's translation differs (another arch's cross
/// prefix, a board-specific make argument) get their own module,
/// `<name>+<first board>`: exact per board, never silently merged. The
/// split propagates: a dependent whose dependency split splits too.
fn final_names(merged: &BTreeMap<String, Merged>) -> FinalNames {
    let mut fin = FinalNames::new();
    for _ in 0..32 {
        let mut next = BTreeMap::new();
        for (base, (per_board, _, _)) in merged {
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
    fin
}

/// The report line of group `i` of `count` translations of module `base`
/// (boards `bs`).
fn split_note(base: &str, i: usize, bs: &[String], count: usize) -> String {
    if i == 0 {
        format!(
            "the translation {} board(s) share; {} other variant(s) are separate modules `{base}+<board>`",
            bs.len(),
            count - 1
        )
    } else {
        let shown: Vec<&str> = bs.iter().take(4).map(String::as_str).collect();
        let more = if bs.len() > 4 { ", …" } else { "" };
        format!(
            "Heads builds `{base}` differently on {} board(s) ({}{more}): their own module",
            bs.len(),
            shown.join(", ")
        )
    }
}

/// Heads's `coreboot_module` on a board (its Heads name).
fn coreboot_module(e: &BoardEval) -> &str {
    e.vars
        .get("coreboot_module")
        .map(|s| s.trim())
        .unwrap_or("")
}

/// The board's config files that exist in the tree, as
/// `(path relative to Heads, param name)`.
fn config_params(heads: &Path, e: &BoardEval) -> Vec<(String, String)> {
    e.config_files
        .iter()
        .filter(|(_, rel)| heads.join(rel).is_file())
        .map(|(var, rel)| {
            let p = var.strip_prefix("CONFIG_").unwrap_or(var).to_string();
            (rel.clone(), p)
        })
        .collect()
}

/// What the rewriting needs to know about board `board`: its modules' dirs
/// (longest first), config params, toolchain, coreboot and compilers.
fn context<'b>(
    paths: &Paths<'b>,
    board: &'b str,
    e: &'b BoardEval,
    names: &BTreeMap<&str, String>,
    params: Vec<(String, String)>,
) -> Context<'b> {
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
    let toolchain = names.get(e.musl_dep.as_str()).cloned().unwrap_or_default();
    Context {
        heads: paths.heads,
        pwd: paths.pwd,
        tmp: paths.tmp,
        arch: &e.arch,
        board,
        dirs,
        params,
        toolchain,
        layout: names.get(coreboot_module(e)).cloned().unwrap_or_default(),
        kernel_layout: super::kernel::bundled_kernel(e, names),
        config_layout: config_layout_kernel(paths.heads, e, names),
        xgcc: e
            .modules
            .get(&e.coreboot_toolchain)
            .map(|m| match field(m, "base_dir") {
                "" => field(m, "dir"),
                b => b,
            })
            .filter(|b| !b.is_empty())
            .map(|b| format!("{b}/util/crossgcc/xgcc"))
            .unwrap_or_default(),
        heads_cc: e.vars.get("heads_cc").cloned().unwrap_or_default(),
        cross: e.vars.get("CROSS").cloned().unwrap_or_default(),
        brand: e
            .vars
            .get("BRAND_NAME")
            .map(|b| b.trim().to_string())
            .unwrap_or_default(),
    }
}

/// The board's kernel (strata name) when it is not bundled and its config
/// names `@BLOB_DIR@`/`@BRAND_DIR@` paths: it builds in Heads's layout so
/// the paths the config installer writes are Heads's (see `config_dirs.rs`).
fn config_layout_kernel(heads: &Path, e: &BoardEval, names: &BTreeMap<&str, String>) -> String {
    let config = e.config_files.get("CONFIG_LINUX_CONFIG");
    let text = config.and_then(|rel| std::fs::read_to_string(heads.join(rel)).ok());
    match (names.get("linux"), text) {
        (Some(l), Some(t)) if !super::kernel::is_bundled(e) && !named(&t).is_empty() => l.clone(),
        _ => String::new(),
    }
}

/// The board's target modules in `modules-y`'s order (`initrd` with the
/// board's cbmem when it has an image); what is left out goes to the
/// board's report.
fn target_modules(b: &Board, target: &mut TargetOut, br: &mut BoardReport) {
    let hook = toolchain_hook_only(b.e);
    for n in &b.e.modules_y {
        if n == "initrd" && b.has_image {
            target.modules.push("initrd".to_string());
            if let Some(cb) = b.names.get(coreboot_module(b.e)) {
                target.modules.push(cbmem_name(cb));
            }
            continue;
        }
        if Some(n.as_str()) == hook {
            br.skipped.push(format!(
                "`{n}` is in modules-y only to build the coreboot toolchain in its tree: the shared toolchain module does that"
            ));
            continue;
        }
        match b.names.get(n.as_str()) {
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
}

/// On a board with image modules, the notes about Heads's rules those
/// modules carry become what was translated.
fn carried_by_image(notes: &mut BTreeSet<String>, done: &mut Vec<String>) {
    let covered: Vec<String> = notes.iter().filter(|n| covers(n)).cloned().collect();
    for c in covered {
        notes.remove(&c);
        let what = c.split(": ").next().unwrap_or(&c).to_string();
        done.push(format!(
            "{what}: carried by the board's `initrd`/`rom` modules"
        ));
    }
}

/// The params a module's translation uses that board `b`'s target sets:
/// tree files (`extra`), the board's config files, `BOARD`.
fn carry_params(
    b: &Board,
    heads_from_out: &str,
    out: &ModuleOut,
    extra: Vec<(String, Param)>,
    target: &mut TargetOut,
) {
    for (p, v) in extra {
        target.params.insert(p, v);
    }
    for (rel, p) in &b.params {
        if out.params.contains(p) {
            let f = format!("{heads_from_out}/{rel}");
            target.params.insert(p.clone(), Param::File(f));
        }
    }
    if out.params.iter().any(|p| p == "BOARD") {
        target
            .params
            .insert("BOARD".to_string(), Param::Value(b.name.to_string()));
    }
}

/// The boards sharing each distinct translation of one module (dependencies
/// compared by the names they have on each board), the largest group
/// first; ties go to the group of the alphabetically first board. Each
/// group's translation has its dependencies renamed as on its first board.
fn groups(per_board: &[(String, ModuleOut)], fin: &FinalNames) -> Vec<(ModuleOut, Vec<String>)> {
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
