//! A coreboot-shaped module for the toolchain tests (written for these
//! tests, in the shapes of Heads's modules/coreboot and coreboot's
//! util/crossgcc, not copied from either): `define coreboot_module` with a
//! per-board `_dir`, a fork that reuses a release's toolchain, the
//! `.heads-toolchain` rule running `make crossgcc-$(COREBOOT_TARGET)` in the
//! toolchain module's tree, and a `buildgcc` that downloads every package
//! of `util/crossgcc/sum/` missing from `util/crossgcc/tarballs/` with curl
//! (from the test's 127.0.0.1 server) and checks its SHA-1.

use super::{Heads, write};
use crate::common::{Reply, sha256, tarball};

/// The crossgcc packages (each `util/crossgcc/sum/<file>.cksum`).
pub const PACKAGES: &[&str] = &[
    "gmp-6.3.0.tar.gz",
    "mpfr-4.2.1.tar.gz",
    "mpc-1.3.1.tar.gz",
    "binutils-2.43.1.tar.gz",
    "gcc-14.2.0.tar.gz",
    "nasm-2.16.03.tar.gz",
    "R10_20_24.tar.gz",
];

const BUILDGCC: &str = r#"#!/bin/sh
# Builds the "cross compiler" from the packages in tarballs/, fetching any
# that is missing (as coreboot's buildgcc does) and checking sum/.
set -e
mkdir -p tarballs xgcc/bin
for s in sum/*.cksum; do
  f=$(basename "$s" .cksum)
  case "$f" in clang-*) continue ;; esac
  if [ ! -f "tarballs/$f" ]; then
    curl -fsS -o "tarballs/$f" "$CROSSGCC_SITE/$f"
  fi
  (cd tarballs && sed 's#tarballs/##' "../$s" | sha1sum -c -)
  tar -xzOf "tarballs/$f" > /dev/null
done
gccver=$(tar -xzOf tarballs/gcc-14.2.0.tar.gz gcc-14.2.0/VERSION)
printf '#!/bin/sh\n# i386-elf-gcc %s\nexec gcc "$@"\n' "$gccver" > xgcc/bin/i386-elf-gcc
chmod +x xgcc/bin/i386-elf-gcc
"#;

/// Adds modules/coreboot (release 1.0 and fork `fork`, which uses 1.0's
/// toolchain) and selects `versions[i]` on board `boards[i]`.
pub fn add_coreboot(h: &Heads, boards: &[(&str, &str)]) {
    let sha1 = |b: &[u8]| {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(b))
    };
    let mut files: Vec<(String, String)> = Vec::new();
    for file in PACKAGES {
        let stem = file.trim_end_matches(".tar.gz");
        let pkg = tarball(stem, &[("VERSION", &format!("{stem}\n"))]);
        // Where buildgcc fetches from, and the user's mirror strata tries
        // first (the upstream URLs the import declares are not served here).
        h.server
            .route(&format!("/crossgcc/{file}"), Reply::Ok(pkg.clone()));
        h.server
            .route(&format!("/mirror/{file}"), Reply::Ok(pkg.clone()));
        files.push((
            format!("util/crossgcc/sum/{file}.cksum"),
            format!("{}  tarballs/{file}\n", sha1(&pkg)),
        ));
    }
    // A clang sum the gcc toolchain does not need.
    files.push((
        "util/crossgcc/sum/clang-18.1.8.src.tar.xz.cksum".into(),
        format!("{}  tarballs/clang-18.1.8.src.tar.xz\n", "0".repeat(40)),
    ));
    files.push(("util/crossgcc/buildgcc".into(), BUILDGCC.into()));
    // A stand-in for coreboot's util/me_cleaner (a blob script's
    // `COREBOOT_DIR`): "cleans" an image by upper-casing it.
    files.push((
        "util/me_cleaner/me_cleaner.py".into(),
        "#!/bin/sh\n# usage: me_cleaner.py -O OUT IN\ntr a-z A-Z < \"$3\" > \"$2\"\n".into(),
    ));
    let site = h.server.url("/crossgcc");
    let makefile = format!(
        "all:\n\t$(XGCCPATH)i386-elf-gcc -x c -c /dev/null -o $(obj)/stage.o\n\
         \t{{ head -2 $(XGCCPATH)i386-elf-gcc | tail -1; cat $(DOTCONFIG); }} > $(obj)/coreboot.rom\n\
         crossgcc-i386:\n\tcd util/crossgcc && CROSSGCC_SITE='{site}' sh ./buildgcc\n"
    );
    files.push(("Makefile".into(), makefile));
    let mirror = h.tmp.path().join("mirror");
    let mut hashes = String::new();
    for v in ["1.0", "fork"] {
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let tb = tarball(&format!("coreboot-{v}"), &refs);
        std::fs::write(mirror.join(format!("coreboot-{v}.tar.gz")), &tb).unwrap();
        hashes.push_str(&format!("coreboot-{v}_hash := {}\n", sha256(&tb)));
    }
    write(
        &h.heads(),
        "modules/coreboot",
        format!(
            "ifeq \"$(CONFIG_COREBOOT)\" \"y\"\nCOREBOOT_TARGET := i386\n\
             define coreboot_module =\n\tcoreboot-$(1)_version := $(1)\n\
             \tcoreboot-$(1)_module_file := coreboot\n\tcoreboot-$(1)_base_dir := coreboot-$(1)\n\
             \tcoreboot-$(1)_dir := coreboot-$(1)/$(BOARD)\n\tcoreboot-$(1)_toolchain := $(2)\n\
             \tcoreboot-$(1)_tar := coreboot-$(1).tar.gz\n\
             \tcoreboot-$(1)_url := file://{mirror}/coreboot-$(1).tar.gz\nendef\n{hashes}\
             $(eval $(call coreboot_module,1.0,))\n$(eval $(call coreboot_module,fork,1.0))\n\
             coreboot_module := coreboot-$(CONFIG_COREBOOT_VERSION)\nmodules-y += $(coreboot_module)\n\
             coreboot_dir := $($(coreboot_module)_dir)\ncoreboot_base_dir := $($(coreboot_module)_base_dir)\n\
             ifeq \"$($(coreboot_module)_toolchain)\" \"\"\ncoreboot_toolchain_module := $(coreboot_module)\n\
             else\ncoreboot_toolchain_module := coreboot-$($(coreboot_module)_toolchain)\n\
             modules-y += $(coreboot_toolchain_module)\n\
             $(coreboot_toolchain_module)_configure := printf 'all:\\n\\ttouch .nobuild\\n' > Makefile.nobuild\n\
             $(coreboot_toolchain_module)_target := -f Makefile.nobuild\nendif\n\
             $(coreboot_module)_config := $(pwd)/config/coreboot-$(BOARD).config\n\
             COREBOOT_TOOLCHAIN_DIR=$(build)/$($(coreboot_toolchain_module)_base_dir)\n\
             $(COREBOOT_TOOLCHAIN_DIR)/.heads-toolchain: $(COREBOOT_TOOLCHAIN_DIR)/.canary\n\
             \t$(MAKE) -C \"$(build)/$($(coreboot_toolchain_module)_base_dir)\" CPUS=$(CPUS) \"crossgcc-$(COREBOOT_TARGET)\"\n\
             \ttouch \"$@\"\n\
             $(coreboot_module)_target := -C \"$(build)/$(coreboot_base_dir)\" obj=\"$(build)/$(coreboot_dir)\" \
             DOTCONFIG=\"$(build)/$(coreboot_dir)/.config\" \
             XGCCPATH=\"$(build)/$($(coreboot_toolchain_module)_base_dir)/util/crossgcc/xgcc/bin/\" $(MAKE_JOBS)\n\
             $(coreboot_module)_output := coreboot.rom\nendif\n",
            mirror = mirror.display()
        ),
    );
    for (board, version) in boards {
        write(
            &h.heads(),
            &format!("config/coreboot-{board}.config"),
            format!("CONFIG_BOARD_{}=y\n", board.to_uppercase()),
        );
        let p = h.heads().join(format!("boards/{board}/{board}.config"));
        let mut t = std::fs::read_to_string(&p).unwrap();
        t.push_str(&format!(
            "CONFIG_COREBOOT=y\nCONFIG_COREBOOT_VERSION={version}\nCONFIG_COREBOOT_CONFIG=config/coreboot-{board}.config\n"
        ));
        std::fs::write(p, t).unwrap();
    }
}
