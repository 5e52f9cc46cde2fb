//! Two rules of Heads's `modules/linux` outside `define_module`, as modules
//! of their own.
//!
//! **The uapi headers.** `$(INSTALL)/include/linux/limits.h` runs the
//! kernel's `make headers_install` into Heads's shared `install/<arch>`,
//! and musl-cross-make's `.build` waits for it ("fake a target so that musl
//! will force a header install"), so every module built after the
//! toolchain compiles against the board kernel's headers (`heads_cc`'s
//! `-isystem $(INSTALL)/include` puts them before the toolchain's own
//! linux-headers package). Here that is a module `<linux>-headers` (the
//! kernel's source and patches, `headers_install` into its destdir), which
//! every module depending on the toolchain depends on, so its sysroot holds
//! exactly the headers Heads's would. The toolchain does not: its key stays
//! independent of any board's kernel. Heads's recipe also passes
//! `CROSS_COMPILE` (a compiler that does not exist yet when it runs: it is
//! a prerequisite of the toolchain's build), `O="$(linux_dir)"` and the
//! board's `KCONFIG_CONFIG`; `headers_install` needs no configured tree and
//! no compiler, so they are left out and one module serves every board of
//! one kernel version and arch.
//!
//! **The bundled image** (`CONFIG_LINUX_BUNDLED`, Talos II):
//! `$(build)/$(BOARD)/$(LINUX_IMAGE_FILE).bundled` decompresses the board's
//! `initrd.cpio.xz` to `build/<arch>/<BOARD>/initrd.cpio`, the file the
//! kernel config names (`CONFIG_INITRAMFS_SOURCE="../@BOARD_BUILD_DIR@/
//! initrd.cpio"`), and runs the kernel's make again in its object tree.
//! Heads rebuilds incrementally; a strata artifact is a clean build of its
//! key, so `<linux>-bundled` builds the kernel from a clean tree with the
//! same config and make arguments as the board's kernel module, in Heads's
//! layout (the config's relative path, and so the image under
//! `CONFIG_IKCONFIG`, are Heads's own), after its `initrd`.

use super::make::BoardEval;
use super::model::{ModuleOut, field};
use std::collections::BTreeMap;

/// The headers module of kernel module `linux` (strata name).
pub fn headers_name(linux: &str) -> String {
    format!("{linux}-headers")
}

/// The bundled-image module of kernel module `linux` (strata name).
pub fn bundled_name(linux: &str) -> String {
    format!("{linux}-bundled")
}

/// Does board `e` bundle its initrd into its kernel?
pub fn is_bundled(e: &BoardEval) -> bool {
    e.vars.get("CONFIG_LINUX_BUNDLED").map(|s| s.trim()) == Some("y")
}

/// The board's kernel module (strata name) when it bundles its initrd:
/// that kernel builds in Heads's layout. Empty otherwise.
pub fn bundled_kernel(e: &BoardEval, names: &BTreeMap<&str, String>) -> String {
    match names.get("linux") {
        Some(l) if is_bundled(e) => l.clone(),
        _ => String::new(),
    }
}

/// Is this the report note for linux's headers rule?
pub fn headers_rule_note(n: &str) -> bool {
    n.contains("rule `$(INSTALL)/include/linux/limits.h`")
}

/// Is this the report note for the toolchain `heads_name`'s `.build`
/// prerequisite (Heads's hook forcing the headers install)?
pub fn toolchain_hook_note(n: &str, heads_name: &str) -> bool {
    n.contains(&format!("rule `$(build)/$({heads_name}_dir)/.build`"))
}

/// `<linux>-headers`: the kernel's source and patches, `make
/// headers_install` for `arch` (Heads's `$(LINUX_ARCH)`) into the destdir,
/// where dependents' sysroots find `include/linux/…`.
pub fn headers(linux: &ModuleOut, arch: &str) -> ModuleOut {
    let arch = if arch.is_empty() {
        String::new()
    } else {
        format!(" ARCH=\"{arch}\"")
    };
    ModuleOut {
        name: headers_name(&linux.name),
        heads_name: linux.heads_name.clone(),
        module_file: linux.module_file.clone(),
        version: linux.version.clone(),
        source: linux.source.clone(),
        depends: Vec::new(),
        patches: linux.patches.clone(),
        params: Vec::new(),
        host: false,
        configure: String::new(),
        build: format!(
            "rm -rf \"$STRATA_BUILD_DIR/.heads-install\"\n\
             make -C \"$STRATA_SOURCE_DIR\"{arch} O=\"$STRATA_BUILD_DIR\" \
             INSTALL_HDR_PATH=\"$STRATA_BUILD_DIR/.heads-install\" headers_install\n"
        ),
        install: "mkdir -p \"$STRATA_DESTDIR\"\n\
                  cp -a \"$STRATA_BUILD_DIR/.heads-install/.\" \"$STRATA_DESTDIR/\"\n"
            .to_string(),
        downloads: Vec::new(),
    }
}

/// `<linux>-bundled` of board `e` from its kernel module's translation in
/// Heads's layout (`linux`, whose commands build the same kernel): the
/// initrd decompressed where the config names it, the kernel built, the
/// image staged as `heads-board/<BOARD>/<image>.bundled` for `rom`.
pub fn bundled(linux: &ModuleOut, e: &BoardEval, m: &BTreeMap<String, String>) -> ModuleOut {
    let image = e.vars.get("LINUX_IMAGE_FILE").map_or("", |s| s.trim());
    let (own, board_dir) =
        super::module::layout_dirs(&e.arch, field(m, "base_dir"), field(m, "dir"), &e.board);
    let output = field(m, "output");
    let d = super::image::BOARD_DIR;
    let mut depends = linux.depends.clone();
    depends.push("initrd".to_string());
    ModuleOut {
        name: bundled_name(&linux.name),
        depends,
        build: format!(
            "xz --decompress --stdout --force \"{board_dir}/initrd.cpio.xz\" > \"{board_dir}/initrd.cpio\"\n{}",
            linux.build
        ),
        install: format!(
            "mkdir -p \"$STRATA_DESTDIR/{d}/$STRATA_PARAM_BOARD\"\n\
             cp -a --remove-destination \"{own}/{output}\" \"$STRATA_DESTDIR/{d}/$STRATA_PARAM_BOARD/{image}.bundled\"\n"
        ),
        downloads: Vec::new(),
        ..linux.clone()
    }
}

/// Boards of one arch whose kernels differ share one `install/<arch>` in
/// Heads, so which headers a module sees there depends on build order.
/// The report note for each headers module of such an arch.
pub fn disagreement_notes(
    by_arch: &BTreeMap<String, std::collections::BTreeSet<String>>,
) -> BTreeMap<String, String> {
    let mut notes = BTreeMap::new();
    for (arch, hs) in by_arch.iter().filter(|(_, hs)| hs.len() > 1) {
        let list: Vec<&str> = hs.iter().map(String::as_str).collect();
        for h in hs {
            notes.insert(
                h.clone(),
                format!(
                    "boards of arch {arch} use different kernels' headers ({}): Heads installs each into \
                     its one install/{arch}, so which a module sees there depends on the build order; \
                     strata gives each board its own kernel's",
                    list.join(", ")
                ),
            );
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_of_one_arch_that_differ_are_reported() {
        let mut by_arch: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        by_arch
            .entry("x86".into())
            .or_default()
            .insert("linux-6.1.8-headers".into());
        by_arch
            .entry("ppc64".into())
            .or_default()
            .insert("linux-6.6.16-headers".into());
        assert!(disagreement_notes(&by_arch).is_empty());
        by_arch
            .get_mut("x86")
            .unwrap()
            .insert("linux-5.10.214-headers".into());
        let notes = disagreement_notes(&by_arch);
        assert_eq!(
            notes.keys().collect::<Vec<_>>(),
            ["linux-5.10.214-headers", "linux-6.1.8-headers"]
        );
        assert!(notes["linux-6.1.8-headers"].contains("install/x86"));
    }
}
