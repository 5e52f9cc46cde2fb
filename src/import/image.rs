//! Heads's top-level image steps as strata modules: `initrd` and `rom`.
//!
//! Heads assembles a board's image outside its modules, in its top-level
//! Makefile: it stages each `bin_modules-y` module's `_output` and every
//! module's `_libraries` stripped (`initrd_bin_add`, `initrd_lib_add`) plus
//! `etc/config` into `tools.cpio`, the kernel's modules into `modules.cpio`,
//! `boards/<BOARD>/initrd` into `board.cpio`, `initrd/` into `heads.cpio`,
//! the modules' `_data` into `data.cpio`, normalises each with the tree's
//! `bin/cpio-clean.pl`, concatenates `initrd-y` into `initrd.cpio.xz`, hands
//! it and the kernel to coreboot as its payload, and copies the ROM, with
//! `hashes.txt` and `sizes.txt`, into `build/<arch>/<BOARD>/`.
//!
//! Here those are two source-less modules whose commands are strata's own
//! shell reproducing Heads's recipes (the order of the pieces, cpio's
//! options, xz's options, the 512-byte padding, the lines of `hashes.txt`):
//! `initrd` (everything up to `initrd.cpio.xz`, plus the kernel image Heads
//! copies next to it) and `rom` (the board's outputs in `install/<BOARD>/`).
//! coreboot depends on `initrd` and reads its payload from it. Every file of
//! the tree a recipe reads is a parameter of exactly the module that reads
//! it: `bin/cpio-clean.pl`, `blobs/dev.cpio` (files), `initrd/` and
//! `boards/<BOARD>/initrd/` (directories: their content, modes included, is
//! in the key). The decision a reader would question: per-board values
//! (the board's exported `CONFIG_` variables, the ROM's file name, the tree's
//! path Heads writes into `hashes.txt`) are parameters too, so boards that
//! build the same modules share one module with one instance per board; the
//! tree's path is a parameter of `rom` only, so nothing but that last cheap
//! step depends on where the tree is.

use super::make::BoardEval;
use super::model::{ModuleOut, Param, Source};
use super::rewrite::{Context, rewrite};
use std::collections::BTreeMap;
use std::path::Path;

/// The date strata writes at the top of `hashes.txt` and `sizes.txt`:
/// Heads writes the build's wall clock there, which no cached step may.
pub const DATE: &str = "1970-01-01 00:00:00+00:00";

/// Where `initrd` leaves the board's pieces in its destdir (and so in its
/// dependents' sysroots): `heads-board/<BOARD>/`.
pub const BOARD_DIR: &str = "heads-board";

/// Where a module that makes a blob Heads's configs name (`@BLOB_DIR@/<subdir>/<file>`)
/// stages it in its destdir: `heads-blobs/<subdir>/<file>`; a layout module
/// lays these over the tree's `blobs/` (see `config_dirs.rs`).
pub const BLOBS_DIR: &str = "heads-blobs";

/// Where a module stages a file of its `_data` (`src|dst`): `heads-data/<dst>`.
pub const DATA_DIR: &str = "heads-data";

/// Where busybox stages its install (the binary and its links).
pub const BUSYBOX_DIR: &str = "heads-busybox";

/// Where linux stages the kernel modules Heads puts into `modules.cpio`.
pub const KMOD_DIR: &str = "heads-linux-modules";

/// The board's image modules and what its target needs for them.
pub struct Image {
    pub initrd: ModuleOut,
    pub rom: ModuleOut,
    pub params: Vec<(String, Param)>,
    /// The files `strata build BOARD` leaves in `install/`.
    pub install: Vec<String>,
    /// `rom`'s report: the `BOARD_TARGETS` translated, and (for the
    /// board's report) those left out, with the reason.
    pub rom_done: Vec<String>,
    pub rom_notes: Vec<String>,
    /// `BOARD_TARGETS` outside the board's image (for its report).
    pub rom_skipped: Vec<String>,
}

/// What `rom` made of the board's `BOARD_TARGETS`, for the reports.
struct TargetsReport {
    done: Vec<String>,
    not_translated: Vec<String>,
    skipped: Vec<String>,
}

fn var<'a>(e: &'a BoardEval, v: &str) -> &'a str {
    e.vars.get(v).map(|s| s.trim()).unwrap_or("")
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn notdir(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Single-quoted for the shell.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The strata name of the board's coreboot module (before any split).
fn coreboot_base(names: &BTreeMap<&str, String>, e: &BoardEval) -> Option<String> {
    names.get(var(e, "coreboot_module")).cloned()
}

/// The module building coreboot's `util/cbmem` for the initrd.
pub fn cbmem_name(coreboot: &str) -> String {
    format!("{coreboot}-cbmem")
}

/// Heads's rule for `$(COREBOOT_UTIL_DIR)/cbmem/cbmem` (`$(MAKE) -C
/// util/cbmem $(CROSS_TOOLS)` in coreboot's tree) as a module of its own:
/// coreboot's source and patches, built with the cross toolchain, its
/// binary installed where `initrd` takes it from.
pub fn cbmem(coreboot: &ModuleOut, ctx: &Context, e: &BoardEval) -> ModuleOut {
    let name = cbmem_name(&coreboot.name);
    let tools = rewrite(var(e, "CROSS_TOOLS"), &name, ctx).text;
    let mut depends = Vec::new();
    if !ctx.toolchain.is_empty() {
        depends.push(ctx.toolchain.clone());
    }
    ModuleOut {
        name,
        heads_name: "cbmem".into(),
        module_file: "../Makefile".into(),
        version: coreboot.version.clone(),
        source: coreboot.source.clone(),
        depends,
        patches: coreboot.patches.clone(),
        params: Vec::new(),
        host: false,
        downloads: Vec::new(),
        configure: format!(
            "rm -rf \"{p}\"\nmkdir -p \"{p}\"\nif [ -d \"$STRATA_SYSROOT\" ]; then cp -a \"$STRATA_SYSROOT/.\" \"{p}/\"; fi\n",
            p = super::rewrite::PRIVATE_INSTALL
        ),
        build: format!("set +eu\nmake -C \"$STRATA_BUILD_DIR/util/cbmem\" {}\n", tools.trim()),
        install: "mkdir -p \"$STRATA_DESTDIR/initrd/bin\"\ncp -aL \"$STRATA_BUILD_DIR/util/cbmem/cbmem\" \"$STRATA_DESTDIR/initrd/bin/\"\n".into(),
    }
}

/// The `initrd` module's script, dependencies and params being assembled.
struct Initrd<'a> {
    e: &'a BoardEval,
    names: &'a BTreeMap<&'a str, String>,
    heads_from_out: &'a str,
    strip: String,
    script: String,
    depends: Vec<String>,
    params: Vec<(String, Param)>,
}

impl Initrd<'_> {
    fn push(&mut self, s: &str) {
        self.script.push_str(s);
    }

    fn dep(&mut self, n: &str) {
        if let Some(s) = self.names.get(n)
            && !self.depends.contains(s)
        {
            self.depends.push(s.clone());
        }
    }

    /// A file of the tree as a param of `initrd`; its name.
    fn file_param(&mut self, rel: &str) -> String {
        let p = format!("HEADS_{}", super::rewrite::env_name(rel));
        let f = format!("{}/{rel}", self.heads_from_out);
        self.params.push((p.clone(), Param::File(f)));
        p
    }

    /// The staging dirs and the `piece` function (do-cpio's shape).
    fn prologue(&mut self, arch: &str) {
        let clean = self.file_param("bin/cpio-clean.pl");
        self.push(&format!(
            "# Heads's initrd, as its top-level Makefile builds it (strata's translation).\n\
             S=\"$STRATA_BUILD_DIR/stage\"; O=\"$STRATA_BUILD_DIR/out\"\n\
             rm -rf \"$S\" \"$O\"\nmkdir -p \"$O\" \"$S/tools/lib\" \"$S/tools/bin\" \"$S/data\"\n\
             clean=\"$STRATA_PARAM_{clean}\"\n\
             piece() {{ # NAME DIR: a directory into a normalised cpio, with hashes and sizes\n  \
             ( cd \"$2\" && find . | cpio --quiet -H newc -o ) | \"$clean\" > \"$O/$1\"\n  \
             printf '%s  %s\\n' \"$(sha256sum < \"$O/$1\" | cut -d' ' -f1)\" \"@HEADS_DIR@/build/{arch}/$STRATA_PARAM_BOARD/$1\" >> \"$O/hashes.part\"\n  \
             printf '%8s:%s\\n' \"$(stat -c %s \"$O/$1\")\" \"@HEADS_DIR@/build/{arch}/$STRATA_PARAM_BOARD/$1\" >> \"$O/sizes.part\"\n  \
             ( cd \"$2\" && echo -----; find . -type f -print0 | xargs -0 -r sha256sum; echo ----- ) >> \"$O/hashes.part\"\n  \
             ( cd \"$2\" && echo -----; find . -type f -print0 | xargs -0 -r stat -c '%8s:%n'; echo ----- ) >> \"$O/sizes.part\"\n}}\n"
        ));
    }

    /// tools.cpio's tree in Heads's order: busybox's install, each
    /// `bin_modules-y` output (stripped in place, failures ignored), cbmem,
    /// every module's libraries (stripped into place), etc/config.
    fn tools(&mut self, cbmem: &str) {
        let e = self.e;
        let strip = self.strip.clone();
        if e.modules_y.iter().any(|m| m == "busybox") && self.names.contains_key("busybox") {
            self.dep("busybox");
            self.push(&format!(
                "cp -a \"$STRATA_SYSROOT/{BUSYBOX_DIR}/.\" \"$S/tools/\"\n"
            ));
        }
        let bin = |n: &str| {
            format!(
                "cp -a --remove-destination \"$STRATA_SYSROOT/initrd/bin/{n}\" \"$S/tools/bin/{n}\"\n\
                 \"{strip}\" --preserve-dates \"$S/tools/bin/{n}\" 2>&- || true\n"
            )
        };
        for m in words(var(e, "bin_modules-y")) {
            let Some(fields) = e.modules.get(&m) else {
                continue;
            };
            self.dep(&m);
            for o in words(fields.get("output").map(String::as_str).unwrap_or("")) {
                self.push(&bin(notdir(&o)));
            }
        }
        self.push(&bin("cbmem"));
        self.depends.push(cbmem.to_string());
        for m in &e.modules_y {
            let Some(fields) = e.modules.get(m) else {
                continue;
            };
            let libs = words(fields.get("libraries").map(String::as_str).unwrap_or(""));
            if !libs.is_empty() {
                self.dep(m);
            }
            for l in libs {
                let n = notdir(&l);
                self.push(&format!(
                    "\"{strip}\" --preserve-dates -o \"$S/tools/lib/{n}\" \"$STRATA_SYSROOT/initrd/lib/{n}\"\n"
                ));
            }
        }
        self.push(
            "mkdir -p \"$S/tools/etc\"\nprintf '%s' \"$STRATA_PARAM_HEADS_ETC_CONFIG\" > \"$S/tools/etc/config\"\n",
        );
        let mut etc = String::new();
        for l in &e.etc_config {
            etc.push_str(l);
            etc.push('\n');
        }
        etc.push_str(&format!(
            "export GIT_HASH='{}'\nexport GIT_STATUS={}\nexport CONFIG_BOARD={}\nexport CONFIG_BRAND_NAME={}\n",
            var(e, "GIT_HASH"),
            var(e, "GIT_STATUS"),
            e.board,
            var(e, "BRAND_NAME")
        ));
        self.params
            .push(("HEADS_ETC_CONFIG".into(), Param::Value(etc)));
    }

    /// modules.cpio's tree (the kernel's modules, debug info stripped) and
    /// data.cpio's (every module's `_data`, staged by the module itself).
    fn modules_and_data(&mut self) {
        let e = self.e;
        let strip = self.strip.clone();
        self.push("mkdir -p \"$S/modules/lib/modules\"\n");
        let linux = e.modules.get("linux");
        if linux.is_some() {
            self.dep("linux");
        }
        let kmods = linux.and_then(|l| l.get("modules-y")).map(String::as_str);
        for k in words(kmods.unwrap_or("")) {
            self.push(&format!(
                "\"{strip}\" --preserve-dates --strip-debug -o \"$S/modules/lib/modules/{}\" \"$STRATA_SYSROOT/{KMOD_DIR}/{k}\"\n",
                notdir(&k)
            ));
        }
        for m in &e.modules_y {
            let Some(fields) = e.modules.get(m) else {
                continue;
            };
            for entry in words(fields.get("data").map(String::as_str).unwrap_or("")) {
                let Some((_, dst)) = entry.split_once('|') else {
                    continue;
                };
                self.dep(m);
                self.push(&format!(
                    "mkdir -p \"$(dirname \"$S/data/{dst}\")\"; cp -R \"$STRATA_SYSROOT/{DATA_DIR}/{dst}\" \"$S/data/{dst}\"\n"
                ));
            }
        }
    }

    /// The pieces in `initrd-y`'s order, then initrd.cpio.xz; None when a
    /// piece is one strata cannot name.
    fn pieces(&mut self, heads: &Path, pwd: &str, arch: &str) -> Option<()> {
        let e = self.e;
        let board_prefix = format!("{pwd}/build/{arch}/{}/", e.board);
        let mut inputs = Vec::new();
        for piece in words(var(e, "initrd-y")) {
            if let Some(name) = piece.strip_prefix(&board_prefix) {
                let dir = |p: &mut Vec<(String, Param)>, param: &str, rel: String| {
                    let d = format!("{}/{rel}", self.heads_from_out);
                    p.push((param.to_string(), Param::Dir(d)));
                    format!("piece {name} \"$STRATA_PARAM_{param}\"")
                };
                let step = match name {
                    "modules.cpio" => "piece modules.cpio \"$S/modules\"".to_string(),
                    "tools.cpio" => "piece tools.cpio \"$S/tools\"".to_string(),
                    "data.cpio" => "piece data.cpio \"$S/data\"".to_string(),
                    "board.cpio" if words(var(e, "BOARD_INITRD_FILES")).is_empty() => {
                        "cpio --quiet -H newc -o </dev/null > \"$O/board.cpio\"".to_string()
                    }
                    "board.cpio" => dir(
                        &mut self.params,
                        "HEADS_BOARD_INITRD",
                        format!("boards/{}/initrd", e.board),
                    ),
                    "heads.cpio" => dir(&mut self.params, "HEADS_INITRD", "initrd".into()),
                    _ => return None,
                };
                self.push(&step);
                self.push("\n");
                inputs.push(format!("\"$O/{name}\""));
            } else if let Some(rel) = piece.strip_prefix(&format!("{pwd}/")) {
                if !heads.join(rel).is_file() {
                    return None;
                }
                let p = self.file_param(rel);
                inputs.push(format!("\"$STRATA_PARAM_{p}\""));
            } else {
                return None;
            }
        }
        self.push(&format!(
            "\"$clean\" {} | xz --check=crc32 --lzma2=dict=1MiB -9 | dd bs=512 conv=sync status=none > \"$O/initrd.cpio.xz\"\n\
             printf '%s  %s\\n' \"$(sha256sum < \"$O/initrd.cpio.xz\" | cut -d' ' -f1)\" \"build/{arch}/$STRATA_PARAM_BOARD/initrd.cpio.xz\" >> \"$O/hashes.part\"\n\
             printf '%8s:%s\\n' \"$(stat -c %s \"$O/initrd.cpio.xz\")\" \"build/{arch}/$STRATA_PARAM_BOARD/initrd.cpio.xz\" >> \"$O/sizes.part\"\n",
            inputs.join(" ")
        ));
        Some(())
    }

    /// The kernel image Heads copies next to the initrd (modules/linux's rule).
    fn kernel_image(&mut self, image: &str, arch: &str) {
        self.push(&format!(
            "cp -a --remove-destination \"$STRATA_SYSROOT/initrd/bin/{image}\" \"$O/{image}\"\n\
             printf '%s  %s\\n' \"$(sha256sum < \"$O/{image}\" | cut -d' ' -f1)\" \"@HEADS_DIR@/build/{arch}/$STRATA_PARAM_BOARD/{image}\" >> \"$O/hashes.part\"\n\
             printf '%8s:%s\\n' \"$(stat -c %s \"$O/{image}\")\" \"@HEADS_DIR@/build/{arch}/$STRATA_PARAM_BOARD/{image}\" >> \"$O/sizes.part\"\n"
        ));
    }

    fn module(self) -> (ModuleOut, Vec<(String, Param)>) {
        let mut params: Vec<String> = self.params.iter().map(|(p, _)| p.clone()).collect();
        params.push("BOARD".to_string());
        params.sort();
        params.dedup();
        let m = ModuleOut {
            name: "initrd".into(),
            heads_name: "initrd".into(),
            module_file: "../Makefile".into(),
            version: "heads".into(),
            source: Source::None,
            depends: self.depends,
            patches: None,
            params,
            host: false,
            downloads: Vec::new(),
            configure: String::new(),
            build: self.script,
            install: format!(
                "mkdir -p \"$STRATA_DESTDIR/{BOARD_DIR}/$STRATA_PARAM_BOARD\"\n\
                 cp -a \"$STRATA_BUILD_DIR/out/.\" \"$STRATA_DESTDIR/{BOARD_DIR}/$STRATA_PARAM_BOARD/\"\n"
            ),
        };
        (m, self.params)
    }
}

/// The `rom` module: the ROM under its Heads name, the initrd pieces and the
/// kernel, `hashes.txt` and `sizes.txt`, the bootblock and the update
/// package where the board has them, its `BOARD_TARGETS`' files. Returns
/// it, the extra files it leaves beside the ROM, and its report (what of
/// `BOARD_TARGETS` was translated, what not).
fn rom(
    e: &BoardEval,
    arch: &str,
    heads: &Path,
    coreboot: String,
    bundled: Option<(String, String)>,
    params: &mut Vec<(String, Param)>,
) -> (ModuleOut, Vec<String>, TargetsReport) {
    let rom_name = match var(e, "CONFIG_COREBOOT_ROM") {
        "" => "coreboot.rom",
        n => n,
    };
    let mut install = format!(
        "# Heads's board outputs (build/{arch}/<BOARD>/), as its Makefile leaves them.\n\
         out=\"$STRATA_DESTDIR/$STRATA_PARAM_BOARD\"; from=\"$STRATA_SYSROOT/{BOARD_DIR}/$STRATA_PARAM_BOARD\"\n\
         rom=\"$STRATA_PARAM_HEADS_CB_OUTPUT_FILE\"; at=\"$STRATA_PARAM_HEADS_TREE/build/{arch}/$STRATA_PARAM_BOARD\"\n\
         mkdir -p \"$out\"\n\
         for f in \"$from\"/*; do case \"$f\" in *.part) ;; *) cp -a \"$f\" \"$out/\" ;; esac; done\n\
         cp -a \"$STRATA_SYSROOT/initrd/bin/{rom_name}\" \"$out/$rom\"\n"
    );
    let mut own = vec![
        "BOARD".to_string(),
        "HEADS_CB_OUTPUT_FILE".to_string(),
        "HEADS_TREE".to_string(),
    ];
    let mut extra = Vec::new();
    // A board asking for its bootblock (CONFIG_COREBOOT_BOOTBLOCK) gets it
    // under Heads's name too (coreboot installs it with its outputs).
    let bootblock = var(e, "CONFIG_COREBOOT_BOOTBLOCK");
    let bootblock_file = var(e, "CB_BOOTBLOCK_FILE");
    let has_bootblock = !bootblock.is_empty() && !bootblock_file.is_empty();
    if has_bootblock {
        install.push_str(&format!(
            "bootblock=\"$STRATA_PARAM_HEADS_CB_BOOTBLOCK_FILE\"\n\
             cp -a \"$STRATA_SYSROOT/initrd/bin/{}\" \"$out/$bootblock\"\n",
            notdir(bootblock)
        ));
        params.push((
            "HEADS_CB_BOOTBLOCK_FILE".into(),
            Param::Value(bootblock_file.to_string()),
        ));
        own.push("HEADS_CB_BOOTBLOCK_FILE".to_string());
        extra.push(bootblock_file.to_string());
    }
    // BOARD_TARGETS: the split halves, Talos's package (see `targets.rs`).
    let image = bundled.as_ref().map(|_| var(e, "LINUX_IMAGE_FILE"));
    let t = super::targets::board_targets(
        heads,
        &e.board,
        var(e, "BOARD_TARGETS"),
        var(e, "HEADS_GIT_VERSION"),
        image,
        has_bootblock,
    );
    install.push_str(&t.make);
    for (p, v) in t.params {
        own.push(p.clone());
        params.push((p, v));
    }
    extra.extend(t.install);
    let report = TargetsReport {
        done: t.done,
        not_translated: t.not_translated,
        skipped: t.skipped,
    };
    // hashes.txt and sizes.txt: the pieces' lines, the bundled kernel's,
    // the targets' files, then the file `all`'s recipe hashes (its first
    // prerequisite: the ROM, or on Talos the bundled kernel's copy).
    let header = format!("{DATE} {} {}", var(e, "GIT_HASH"), var(e, "GIT_STATUS"));
    let mut last = t.hashed;
    last.push(t.all_hashes.unwrap_or_else(|| "\"$rom\"".to_string()));
    install.push_str(&format!(
        "for kind in hashes sizes; do\n  \
         {{ echo {header}\n    \
         while IFS= read -r l; do printf '%s\\n' \"${{l//@HEADS_DIR@/$STRATA_PARAM_HEADS_TREE}}\"; done < \"$from/$kind.part\"\n    \
         {bundled_line}\
         for f in {last}; do\n      \
         if [ $kind = hashes ]; then printf '%s  %s\\n' \"$(sha256sum < \"$out/$f\" | cut -d' ' -f1)\" \"$at/$f\"\n      \
         else printf '%8s:%s\\n' \"$(stat -c %s \"$out/$f\")\" \"$at/$f\"; fi\n    done\n  \
         }} > \"$out/$kind.txt\"\ndone\n",
        header = sq(&header),
        bundled_line = bundled_hash(bundled.as_ref().map(|(_, f)| f.as_str())),
        last = last.join(" ")
    ));
    // The update package (not for legacy-flash boards, nor Talos II, which
    // makes its own): the ROM and its sha256sum.txt, zipped. Heads's zip
    // carries the copy's wall-clock mtime and the builder's uid; strata's
    // stamps both files 1980-01-01 (zip's epoch) and leaves extra fields out.
    let pkg = var(e, "CB_UPDATE_PKG_FILE");
    if !pkg.is_empty() && var(e, "CONFIG_LEGACY_FLASH") != "y" && !e.board.contains("talos-2") {
        install.push_str(
            "pkg=\"$STRATA_BUILD_DIR/update_pkg\"; rm -rf \"$pkg\"; mkdir -p \"$pkg\"\n\
             cp \"$out/$rom\" \"$pkg/\"\n\
             ( cd \"$pkg\" && sha256sum \"$rom\" > sha256sum.txt && touch -d @315532800 \"$rom\" sha256sum.txt \\\n  \
             && zip -X -q -9 \"$out/$STRATA_PARAM_HEADS_UPDATE_PKG_FILE\" \"$rom\" sha256sum.txt )\n",
        );
        params.push((
            "HEADS_UPDATE_PKG_FILE".into(),
            Param::Value(pkg.to_string()),
        ));
        own.push("HEADS_UPDATE_PKG_FILE".to_string());
        extra.push(pkg.to_string());
    }
    params.push(("BOARD".into(), Param::Value(e.board.clone())));
    params.push((
        "HEADS_CB_OUTPUT_FILE".into(),
        Param::Value(var(e, "CB_OUTPUT_FILE").to_string()),
    ));
    params.push((
        "HEADS_TREE".into(),
        Param::Value(heads.display().to_string()),
    ));
    own.sort();
    let mut depends = vec![coreboot];
    if let Some((module, file)) = bundled {
        depends.push(module);
        extra.push(file);
    }
    let m = ModuleOut {
        name: "rom".into(),
        heads_name: "rom".into(),
        module_file: "../Makefile".into(),
        version: "heads".into(),
        source: Source::None,
        depends,
        patches: None,
        params: own,
        host: false,
        downloads: Vec::new(),
        configure: String::new(),
        build: String::new(),
        install,
    };
    (m, extra, report)
}

/// The hashes.txt line of the bundled kernel image `file` (Heads's
/// `.bundled` rule writes one after the initrd's and the kernel's, and no
/// sizes line), as a line of `rom`'s loop; nothing without one.
fn bundled_hash(file: Option<&str>) -> String {
    match file {
        Some(f) => format!(
            "if [ $kind = hashes ]; then printf '%s  %s\\n' \"$(sha256sum < \"$from/{f}\" | cut -d' ' -f1)\" \"$at/{f}\"; fi\n    "
        ),
        None => String::new(),
    }
}

/// Heads's image of board `e`, when it is a coreboot board whose pieces
/// strata can name. `names` maps Heads module names to strata names;
/// `bundled` names the module building the board's kernel with its initrd
/// inside (`CONFIG_LINUX_BUNDLED`, see `kernel.rs`), when it has one.
pub fn board_image(
    heads: &Path,
    heads_from_out: &str,
    ctx: &Context,
    e: &BoardEval,
    names: &BTreeMap<&str, String>,
    bundled: Option<String>,
) -> Option<Image> {
    if var(e, "CONFIG_COREBOOT") != "y" || var(e, "CB_OUTPUT_FILE").is_empty() {
        return None;
    }
    let coreboot = names.get(var(e, "coreboot_module"))?.clone();
    let cross = rewrite(var(e, "CROSS"), "initrd", ctx).text;
    let mut initrd = Initrd {
        e,
        names,
        heads_from_out,
        strip: format!("{cross}strip"),
        script: String::new(),
        depends: Vec::new(),
        params: Vec::new(),
    };
    if !e.musl_dep.is_empty() {
        initrd.dep(&e.musl_dep);
    }
    initrd.prologue(ctx.arch);
    initrd.tools(&cbmem_name(&coreboot_base(names, e)?));
    initrd.modules_and_data();
    initrd.pieces(heads, ctx.pwd, ctx.arch)?;
    let image = var(e, "LINUX_IMAGE_FILE");
    let kernel = !image.is_empty() && e.modules.contains_key("linux");
    if kernel {
        initrd.kernel_image(image, ctx.arch);
    }
    let (initrd, mut params) = initrd.module();
    // Talos's kernel with the initrd inside (see `kernel.rs`).
    let bundled = bundled
        .filter(|_| kernel)
        .map(|m| (m, format!("{image}.bundled")));
    let (rom, extra, report) = rom(e, ctx.arch, heads, coreboot, bundled, &mut params);
    let mut install = vec![
        var(e, "CB_OUTPUT_FILE").to_string(),
        "initrd.cpio.xz".to_string(),
        "hashes.txt".to_string(),
        "sizes.txt".to_string(),
    ];
    if kernel {
        install.push(image.to_string());
    }
    install.extend(extra);
    let board_prefix = format!("{}/build/{}/{}/", ctx.pwd, ctx.arch, e.board);
    for piece in words(var(e, "initrd-y")) {
        if let Some(name) = piece.strip_prefix(&board_prefix) {
            install.push(name.to_string());
        }
    }
    let install = install
        .into_iter()
        .map(|f| format!("{}/{f}", e.board))
        .collect();
    Some(Image {
        initrd,
        rom,
        params,
        install,
        rom_done: report.done,
        rom_notes: report.not_translated,
        rom_skipped: report.skipped,
    })
}

/// Whether a "not translated" note about a rule or `$(shell …)` of Heads's
/// coreboot or linux module file is covered by the image modules on a board
/// that has them: coreboot's `.configured`/`.build` prerequisites (the board
/// config, the initrd, the kernel), the ROM copy, linux's `modules.cpio`, its
/// kernel image copy, its bundled image (a module of its own on the boards
/// asking for it, `kernel.rs`) and the temp dir it stages modules in.
pub fn covers(note: &str) -> bool {
    let busybox =
        note.starts_with("modules/busybox:") && note.contains("`$(initrd_bin_dir)/busybox`");
    let coreboot = note.starts_with("modules/coreboot:")
        && [
            "/.configured`",
            "/.build`",
            "$(CB_OUTPUT_FILE)`",
            "$(CB_BOOTBLOCK_FILE)`",
        ]
        .iter()
        .any(|t| note.contains(t));
    // (a file of linux's source, e.g. `_data`'s defkeymap.map, needs only
    // the unpacked tree, which strata's unpack step provides)
    let linux = note.starts_with("modules/linux:")
        && ([
            "/modules.cpio`",
            "/$(LINUX_IMAGE_FILE)`",
            "/$(LINUX_IMAGE_FILE).bundled`",
            "`$(build)/$(linux_base_dir)/",
        ]
        .iter()
        .any(|t| note.contains(t))
            || (note.contains("$(shell") && note.contains("module_initrd")));
    busybox || coreboot || linux
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rules_the_image_modules_carry_are_covered() {
        assert!(covers(
            "modules/coreboot:209: rule `$(build)/$(coreboot_dir)/.configured` is Heads-specific; not translated"
        ));
        assert!(covers(
            "modules/linux:195: rule `$(build)/$(BOARD)/modules.cpio` is Heads-specific; not translated"
        ));
        assert!(!covers(
            "modules/coreboot:262: rule `$(COREBOOT_TOOLCHAIN_DIR)/.heads-toolchain` is Heads-specific; not translated"
        ));
        assert!(!covers(
            "modules/dasharo-ec:58: rule `$(build)/$(coreboot_dir)/.configured` is Heads-specific; not translated"
        ));
    }
}
