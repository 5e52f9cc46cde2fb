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
use super::rewrite::{Context, rewrite};
use super::translate::{ModuleOut, Param, Source};
use std::collections::BTreeMap;
use std::path::Path;

/// The date strata writes at the top of `hashes.txt` and `sizes.txt`:
/// Heads writes the build's wall clock there, which no cached step may.
pub const DATE: &str = "1970-01-01 00:00:00+00:00";

/// Where `initrd` leaves the board's pieces in its destdir (and so in its
/// dependents' sysroots): `heads-board/<BOARD>/`.
pub const BOARD_DIR: &str = "heads-board";

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

/// Heads's image of board `e`, when it is a coreboot board whose pieces
/// strata can name. `names` maps Heads module names to strata names.
pub fn board_image(
    heads: &Path,
    heads_from_out: &str,
    ctx: &Context,
    e: &BoardEval,
    names: &BTreeMap<&str, String>,
) -> Option<Image> {
    if var(e, "CONFIG_COREBOOT") != "y" || var(e, "CB_OUTPUT_FILE").is_empty() {
        return None;
    }
    let coreboot = names.get(var(e, "coreboot_module"))?.clone();
    let arch = ctx.arch;
    let pwd = ctx.pwd;
    let board_prefix = format!("{pwd}/build/{arch}/{}/", e.board);
    let mut params: Vec<(String, Param)> = Vec::new();
    let file_param = |params: &mut Vec<(String, Param)>, rel: &str| -> String {
        let p = format!("HEADS_{}", super::rewrite::env_name(rel));
        params.push((p.clone(), Param::File(format!("{heads_from_out}/{rel}"))));
        p
    };
    let cross = rewrite(var(e, "CROSS"), "initrd", ctx).text;
    let strip = format!("{cross}strip");
    let mut depends: Vec<String> = Vec::new();
    let mut dep = |n: &str| {
        if let Some(s) = names.get(n)
            && !depends.contains(s)
        {
            depends.push(s.clone());
        }
    };
    if !e.musl_dep.is_empty() {
        dep(&e.musl_dep);
    }
    let mut b = String::from(
        "# Heads's initrd, as its top-level Makefile builds it (strata's translation).\n\
         S=\"$STRATA_BUILD_DIR/stage\"; O=\"$STRATA_BUILD_DIR/out\"\n\
         rm -rf \"$S\" \"$O\"\nmkdir -p \"$O\" \"$S/tools/lib\" \"$S/tools/bin\" \"$S/data\"\n",
    );
    let clean = file_param(&mut params, "bin/cpio-clean.pl");
    b.push_str(&format!(
        "clean=\"$STRATA_PARAM_{clean}\"\n\
         piece() {{ # NAME DIR: a directory into a normalised cpio, with hashes and sizes\n  \
         ( cd \"$2\" && find . | cpio --quiet -H newc -o ) | \"$clean\" > \"$O/$1\"\n  \
         printf '%s  %s\\n' \"$(sha256sum < \"$O/$1\" | cut -d' ' -f1)\" \"@HEADS_DIR@/build/{arch}/$STRATA_PARAM_BOARD/$1\" >> \"$O/hashes.part\"\n  \
         printf '%8s:%s\\n' \"$(stat -c %s \"$O/$1\")\" \"@HEADS_DIR@/build/{arch}/$STRATA_PARAM_BOARD/$1\" >> \"$O/sizes.part\"\n  \
         ( cd \"$2\" && echo -----; find . -type f -print0 | xargs -0 -r sha256sum; echo ----- ) >> \"$O/hashes.part\"\n  \
         ( cd \"$2\" && echo -----; find . -type f -print0 | xargs -0 -r stat -c '%8s:%n'; echo ----- ) >> \"$O/sizes.part\"\n}}\n"
    ));
    // busybox first: Heads adds it to initrd_bins when its module file is read.
    if e.modules_y.iter().any(|m| m == "busybox") && names.contains_key("busybox") {
        dep("busybox");
        b.push_str(&format!(
            "cp -a \"$STRATA_SYSROOT/{BUSYBOX_DIR}/.\" \"$S/tools/\"\n"
        ));
    }
    // tools.cpio: bins (stripped in place, failures ignored as Heads does),
    // libraries (stripped into place), etc/config.
    for m in words(var(e, "bin_modules-y")) {
        let Some(fields) = e.modules.get(&m) else {
            continue;
        };
        dep(&m);
        for o in words(fields.get("output").map(String::as_str).unwrap_or("")) {
            let n = notdir(&o);
            b.push_str(&format!(
                "cp -a --remove-destination \"$STRATA_SYSROOT/initrd/bin/{n}\" \"$S/tools/bin/{n}\"\n\
                 \"{strip}\" --preserve-dates \"$S/tools/bin/{n}\" 2>&- || true\n"
            ));
        }
    }
    // Heads adds coreboot's cbmem to every coreboot board's initrd.
    let cbmem_dep = cbmem_name(&coreboot_base(names, e)?);
    b.push_str(
        "cp -a --remove-destination \"$STRATA_SYSROOT/initrd/bin/cbmem\" \"$S/tools/bin/cbmem\"\n",
    );
    b.push_str(&format!(
        "\"{strip}\" --preserve-dates \"$S/tools/bin/cbmem\" 2>&- || true\n"
    ));
    for m in &e.modules_y {
        let Some(fields) = e.modules.get(m) else {
            continue;
        };
        let libs = words(fields.get("libraries").map(String::as_str).unwrap_or(""));
        if !libs.is_empty() {
            dep(m);
        }
        for l in libs {
            let n = notdir(&l);
            b.push_str(&format!(
                "\"{strip}\" --preserve-dates -o \"$S/tools/lib/{n}\" \"$STRATA_SYSROOT/initrd/lib/{n}\"\n"
            ));
        }
    }
    b.push_str(
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
    params.push(("HEADS_ETC_CONFIG".into(), Param::Value(etc)));
    // modules.cpio: the kernel's modules, debug info stripped.
    b.push_str("mkdir -p \"$S/modules/lib/modules\"\n");
    let linux = e.modules.get("linux");
    if linux.is_some() {
        dep("linux");
    }
    for k in words(
        linux
            .and_then(|l| l.get("modules-y"))
            .map(String::as_str)
            .unwrap_or(""),
    ) {
        b.push_str(&format!(
            "\"{strip}\" --preserve-dates --strip-debug -o \"$S/modules/lib/modules/{}\" \"$STRATA_SYSROOT/{KMOD_DIR}/{k}\"\n",
            notdir(&k)
        ));
    }
    // data.cpio: every module's `_data`, staged by the module itself.
    for m in &e.modules_y {
        let Some(fields) = e.modules.get(m) else {
            continue;
        };
        for entry in words(fields.get("data").map(String::as_str).unwrap_or("")) {
            let Some((_, dst)) = entry.split_once('|') else {
                continue;
            };
            dep(m);
            b.push_str(&format!(
                "mkdir -p \"$(dirname \"$S/data/{dst}\")\"; cp -R \"$STRATA_SYSROOT/{DATA_DIR}/{dst}\" \"$S/data/{dst}\"\n"
            ));
        }
    }
    // The pieces in initrd-y's order, then initrd.cpio.xz.
    let mut inputs = Vec::new();
    for piece in words(var(e, "initrd-y")) {
        if let Some(name) = piece.strip_prefix(&board_prefix) {
            let step = match name {
                "modules.cpio" => "piece modules.cpio \"$S/modules\"".to_string(),
                "tools.cpio" => "piece tools.cpio \"$S/tools\"".to_string(),
                "data.cpio" => "piece data.cpio \"$S/data\"".to_string(),
                "board.cpio" if words(var(e, "BOARD_INITRD_FILES")).is_empty() => {
                    "cpio --quiet -H newc -o </dev/null > \"$O/board.cpio\"".to_string()
                }
                "board.cpio" => {
                    let rel = format!("boards/{}/initrd", e.board);
                    params.push((
                        "HEADS_BOARD_INITRD".into(),
                        Param::Dir(format!("{heads_from_out}/{rel}")),
                    ));
                    "piece board.cpio \"$STRATA_PARAM_HEADS_BOARD_INITRD\"".to_string()
                }
                "heads.cpio" => {
                    params.push((
                        "HEADS_INITRD".into(),
                        Param::Dir(format!("{heads_from_out}/initrd")),
                    ));
                    "piece heads.cpio \"$STRATA_PARAM_HEADS_INITRD\"".to_string()
                }
                _ => return None,
            };
            b.push_str(&step);
            b.push('\n');
            inputs.push(format!("\"$O/{name}\""));
        } else if let Some(rel) = piece.strip_prefix(&format!("{pwd}/")) {
            if !heads.join(rel).is_file() {
                return None;
            }
            let p = file_param(&mut params, rel);
            inputs.push(format!("\"$STRATA_PARAM_{p}\""));
        } else {
            return None;
        }
    }
    b.push_str(&format!(
        "\"$clean\" {} | xz --check=crc32 --lzma2=dict=1MiB -9 | dd bs=512 conv=sync status=none > \"$O/initrd.cpio.xz\"\n\
         printf '%s  %s\\n' \"$(sha256sum < \"$O/initrd.cpio.xz\" | cut -d' ' -f1)\" \"build/{arch}/$STRATA_PARAM_BOARD/initrd.cpio.xz\" >> \"$O/hashes.part\"\n\
         printf '%8s:%s\\n' \"$(stat -c %s \"$O/initrd.cpio.xz\")\" \"build/{arch}/$STRATA_PARAM_BOARD/initrd.cpio.xz\" >> \"$O/sizes.part\"\n",
        inputs.join(" ")
    ));
    // The kernel image Heads copies next to the initrd (modules/linux's rule).
    let image = var(e, "LINUX_IMAGE_FILE");
    if !image.is_empty() && linux.is_some() {
        b.push_str(&format!(
            "cp -a --remove-destination \"$STRATA_SYSROOT/initrd/bin/{image}\" \"$O/{image}\"\n\
             printf '%s  %s\\n' \"$(sha256sum < \"$O/{image}\" | cut -d' ' -f1)\" \"@HEADS_DIR@/build/{arch}/$STRATA_PARAM_BOARD/{image}\" >> \"$O/hashes.part\"\n\
             printf '%8s:%s\\n' \"$(stat -c %s \"$O/{image}\")\" \"@HEADS_DIR@/build/{arch}/$STRATA_PARAM_BOARD/{image}\" >> \"$O/sizes.part\"\n"
        ));
    }
    let install = format!(
        "mkdir -p \"$STRATA_DESTDIR/{BOARD_DIR}/$STRATA_PARAM_BOARD\"\n\
         cp -a \"$STRATA_BUILD_DIR/out/.\" \"$STRATA_DESTDIR/{BOARD_DIR}/$STRATA_PARAM_BOARD/\"\n"
    );
    let initrd_params = params
        .iter()
        .map(|(p, _)| p.clone())
        .chain(["BOARD".to_string()]);
    let mut initrd_params: Vec<String> = initrd_params.collect();
    initrd_params.sort();
    initrd_params.dedup();
    depends.push(cbmem_dep);
    let initrd = ModuleOut {
        name: "initrd".into(),
        heads_name: "initrd".into(),
        module_file: "../Makefile".into(),
        version: "heads".into(),
        source: Source::None,
        depends,
        patches: None,
        params: initrd_params,
        host: false,
        downloads: Vec::new(),
        configure: String::new(),
        build: b,
        install,
    };
    // rom: the ROM under its Heads name, the initrd pieces, hashes and sizes.
    let rom_name = var(e, "CONFIG_COREBOOT_ROM");
    let rom_name = if rom_name.is_empty() {
        "coreboot.rom"
    } else {
        rom_name
    };
    let header = format!("{DATE} {} {}", var(e, "GIT_HASH"), var(e, "GIT_STATUS"));
    let rom_install = format!(
        "# Heads's board outputs (build/{arch}/<BOARD>/), as its Makefile leaves them.\n\
         out=\"$STRATA_DESTDIR/$STRATA_PARAM_BOARD\"; from=\"$STRATA_SYSROOT/{BOARD_DIR}/$STRATA_PARAM_BOARD\"\n\
         rom=\"$STRATA_PARAM_HEADS_CB_OUTPUT_FILE\"; at=\"$STRATA_PARAM_HEADS_TREE/build/{arch}/$STRATA_PARAM_BOARD\"\n\
         mkdir -p \"$out\"\n\
         for f in \"$from\"/*; do case \"$f\" in *.part) ;; *) cp -a \"$f\" \"$out/\" ;; esac; done\n\
         cp -a \"$STRATA_SYSROOT/initrd/bin/{rom_name}\" \"$out/$rom\"\n\
         for kind in hashes sizes; do\n  \
         {{ echo {header}\n    \
         while IFS= read -r l; do printf '%s\\n' \"${{l//@HEADS_DIR@/$STRATA_PARAM_HEADS_TREE}}\"; done < \"$from/$kind.part\"\n    \
         if [ $kind = hashes ]; then printf '%s  %s\\n' \"$(sha256sum < \"$out/$rom\" | cut -d' ' -f1)\" \"$at/$rom\"\n    \
         else printf '%8s:%s\\n' \"$(stat -c %s \"$out/$rom\")\" \"$at/$rom\"; fi\n  \
         }} > \"$out/$kind.txt\"\ndone\n",
        header = sq(&header)
    );
    // The update package (not for legacy-flash boards, nor Talos II, which
    // makes its own): the ROM and its sha256sum.txt, zipped. Heads's zip
    // carries the copy's wall-clock mtime and the builder's uid; strata's
    // stamps both files 1980-01-01 (zip's epoch) and leaves extra fields out.
    let pkg = var(e, "CB_UPDATE_PKG_FILE");
    let update =
        !pkg.is_empty() && var(e, "CONFIG_LEGACY_FLASH") != "y" && !e.board.contains("talos-2");
    let mut rom_install = rom_install;
    let mut rom_params = vec![
        "BOARD".to_string(),
        "HEADS_CB_OUTPUT_FILE".to_string(),
        "HEADS_TREE".to_string(),
    ];
    // A board asking for its bootblock (CONFIG_COREBOOT_BOOTBLOCK) gets it
    // under Heads's name too (coreboot installs it with its outputs).
    let bootblock = var(e, "CONFIG_COREBOOT_BOOTBLOCK");
    let bootblock_file = var(e, "CB_BOOTBLOCK_FILE");
    if !bootblock.is_empty() && !bootblock_file.is_empty() {
        rom_install.push_str(&format!(
            "cp -a \"$STRATA_SYSROOT/initrd/bin/{}\" \"$out/$STRATA_PARAM_HEADS_CB_BOOTBLOCK_FILE\"\n",
            notdir(bootblock)
        ));
        params.push((
            "HEADS_CB_BOOTBLOCK_FILE".into(),
            Param::Value(bootblock_file.to_string()),
        ));
        rom_params.push("HEADS_CB_BOOTBLOCK_FILE".to_string());
    }
    if update {
        rom_install.push_str(
            "pkg=\"$STRATA_BUILD_DIR/update_pkg\"; rm -rf \"$pkg\"; mkdir -p \"$pkg\"\n\
             cp \"$out/$rom\" \"$pkg/\"\n\
             ( cd \"$pkg\" && sha256sum \"$rom\" > sha256sum.txt && touch -d @315532800 \"$rom\" sha256sum.txt \\\n  \
             && zip -X -q -9 \"$out/$STRATA_PARAM_HEADS_UPDATE_PKG_FILE\" \"$rom\" sha256sum.txt )\n",
        );
        params.push((
            "HEADS_UPDATE_PKG_FILE".into(),
            Param::Value(pkg.to_string()),
        ));
        rom_params.push("HEADS_UPDATE_PKG_FILE".to_string());
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
    let rom = ModuleOut {
        name: "rom".into(),
        heads_name: "rom".into(),
        module_file: "../Makefile".into(),
        version: "heads".into(),
        source: Source::None,
        depends: vec![coreboot],
        patches: None,
        params: {
            rom_params.sort();
            rom_params
        },
        host: false,
        downloads: Vec::new(),
        configure: String::new(),
        build: String::new(),
        install: rom_install,
    };
    let mut install = vec![
        var(e, "CB_OUTPUT_FILE").to_string(),
        "initrd.cpio.xz".to_string(),
        "hashes.txt".to_string(),
        "sizes.txt".to_string(),
    ];
    if !image.is_empty() && linux.is_some() {
        install.push(image.to_string());
    }
    if update {
        install.push(pkg.to_string());
    }
    if !bootblock.is_empty() && !bootblock_file.is_empty() {
        install.push(bootblock_file.to_string());
    }
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
    })
}

/// Whether a "not translated" note about a rule or `$(shell …)` of Heads's
/// coreboot or linux module file is covered by the image modules on a board
/// that has them: coreboot's `.configured`/`.build` prerequisites (the board
/// config, the initrd, the kernel), the ROM copy, linux's `modules.cpio`, its
/// kernel image copy and the temp dir it stages modules in.
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
