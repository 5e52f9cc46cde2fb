//! A Heads-shaped tree that GNU make can really build into a ROM, written
//! for the differential test (not a copy of Heads's files; the shapes are
//! Heads's): a local cross toolchain, a binary module with a patch and
//! `initrd_bin_add`-style staging with strip, a library module with `_data`,
//! a kernel built out of tree with `make -C ..` and one kernel module, a
//! coreboot-like module defined through `$(eval $(call …))` with a
//! toolchain rule, a config installed by `bin/prepare_module_config.sh`
//! and its payload (`bzImage`, `initrd.cpio.xz`) taken from the board's
//! output dir, the initrd pieces normalised by the tree's own
//! `bin/cpio-clean.pl`, `xz`, and `hashes.txt`.

use super::super::common::{sha256, tarball};
use super::write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixed date both builds write into `hashes.txt` (Heads writes the
/// build's wall clock; the differential pins it).
pub const DATE: &str = "1970-01-01 00:00:00+00:00";

/// The version stamps `strata import heads` fixes; make gets the same.
pub const STAMPS: &[&str] = &[
    "GIT_HASH=strata-import",
    "GIT_STATUS=clean",
    "HEADS_GIT_VERSION=strata-import",
    "GIT_TIMESTAMP=0",
];

/// The brand's bootsplash and the flash descriptor blob rom1's coreboot
/// config names (`@BRAND_DIR@/bootsplash.jpg`, `@BLOB_DIR@/xx30/ifd.bin`).
pub const BOOTSPLASH: &str = "FIXTURE-BOOTSPLASH-JPEG v1\n";
pub const IFD: &str = "FIXTURE-IFD-DESCRIPTOR\n";

pub const ROM_FILE: &str = "heads-rom1-0-strata-import.rom";
pub const UPDATE_PKG: &str = "heads-rom1-0-strata-import.zip";

const MAKEFILE: &str = r#"# A small tree in the shape of Heads's top-level Makefile, with real rules.
GIT_HASH := $(shell git rev-parse HEAD 2>/dev/null)
GIT_STATUS := $(shell git diff --quiet 2>/dev/null && echo clean || echo dirty)
HEADS_GIT_VERSION := $(shell git describe --tags 2>/dev/null)
GIT_TIMESTAMP := $(shell git log -1 --format=%ct 2>/dev/null)
GIT_VERSION_SUFFIX := $(GIT_TIMESTAMP)-$(HEADS_GIT_VERSION)
BRAND_NAME ?= Heads

all:
modules-y :=
pwd := $(shell pwd)
build = $(pwd)/build/$(CONFIG_TARGET_ARCH)
packages = $(pwd)/packages/$(CONFIG_TARGET_ARCH)
INSTALL = $(pwd)/install/$(CONFIG_TARGET_ARCH)
log_dir = $(build)/log
board_build = $(build)/$(BOARD)
CPUS ?= 2
MAKE_JOBS := -j$(CPUS)
DATE = `date --rfc-3339=seconds`

BOARD ?= rom1
CONFIG := $(pwd)/boards/$(BOARD)/$(BOARD).config
ifneq "y" "$(shell [ -r '$(CONFIG)' ] && echo y)"
$(error $(CONFIG): board configuration does not exist)
endif
CONFIG_TARGET_ARCH := x86
include $(CONFIG)

CB_OUTPUT_BASENAME := $(shell echo $(BRAND_NAME) | tr A-Z a-z)-$(BOARD)-$(GIT_VERSION_SUFFIX)
CB_OUTPUT_FILE := $(CB_OUTPUT_BASENAME).rom
CB_UPDATE_PKG_FILE := $(CB_OUTPUT_BASENAME).zip
CB_BOOTBLOCK_FILE := $(CB_OUTPUT_BASENAME).bootblock
# The board's extra targets (targets/<name>.mk), read before `all`'s own rules.
ifneq "$(BOARD_TARGETS)" ""
include $(foreach TARGET,$(BOARD_TARGETS),targets/$(TARGET).mk)
endif
CONFIG_HEADS ?= y
MUSL_ARCH := x86_64

STRATA_LOGS := $(shell mkdir -p "$(log_dir)" "$(packages)")
HASHES := $(board_build)/hashes.txt
SIZES := $(board_build)/sizes.txt
STRATA_HEADER := $(shell mkdir -p "$(board_build)"; \
	echo "$(DATE) $(GIT_HASH) $(GIT_STATUS)" > "$(HASHES)"; \
	echo "$(DATE) $(GIT_HASH) $(GIT_STATUS)" > "$(SIZES)")
# A board bundling its initrd into the kernel: the kernel's first build
# embeds an empty one.
ifeq "y" "$(CONFIG_LINUX_BUNDLED)"
$(shell cpio -o < /dev/null > $(board_build)/initrd.cpio)
endif

initrd_dir := $(BOARD)
initrd_tmp_dir := $(shell mktemp -d)
initrd_tools_dir := $(initrd_tmp_dir)/tools
initrd_lib_dir := $(initrd_tools_dir)/lib
initrd_bin_dir := $(initrd_tools_dir)/bin
initrd_data_dir := $(initrd_tmp_dir)/data
modules-y += initrd
$(shell mkdir -p "$(initrd_lib_dir)" "$(initrd_bin_dir)" "$(initrd_data_dir)")

SHELL := /usr/bin/env bash
.SHELLFLAGS := -o pipefail -c

include modules/musl-cross-make
musl_dep := musl-cross-make
heads_cc := $(CROSS)gcc --sysroot $(INSTALL) -isystem $(INSTALL)/include -L$(INSTALL)/lib
CROSS_TOOLS := CC="$(heads_cc)" AR="$(CROSS)ar" STRIP="$(CROSS)strip"

# No update package for a talos-2 board (it packs its own).
ifeq ($(findstring talos-2, $(BOARD)),)
$(board_build)/$(CB_UPDATE_PKG_FILE): $(board_build)/$(CB_OUTPUT_FILE)
	rm -rf "$(board_build)/update_pkg"
	mkdir -p "$(board_build)/update_pkg"
	cp "$<" "$(board_build)/update_pkg/"
	cd "$(board_build)/update_pkg" && sha256sum "$(CB_OUTPUT_FILE)" >sha256sum.txt
	cd "$(board_build)/update_pkg" && zip -9 "$@" "$(CB_OUTPUT_FILE)" sha256sum.txt

# Meant to skip the ROM's own line when the split target is in, but the
# wildcard looks in the working dir, where the file is not: this recipe is
# always the one given, then overridden by the one below, and its
# prerequisites stay `all`'s first.
ifeq ($(wildcard split_8mb4mb.mk),)
all: $(board_build)/$(CB_OUTPUT_FILE) $(board_build)/$(CB_UPDATE_PKG_FILE)
	@sha256sum $(board_build)/$(CB_OUTPUT_FILE) | tee -a "$(HASHES)"
	@stat -c "%8s:%n" $(board_build)/$(CB_OUTPUT_FILE) | tee -a "$(SIZES)"
else
all: $(board_build)/$(CB_OUTPUT_FILE) $(board_build)/$(CB_UPDATE_PKG_FILE)
endif
endif
ifneq ($(CONFIG_COREBOOT_BOOTBLOCK),)
all: $(board_build)/$(CB_BOOTBLOCK_FILE)
endif

# `all`'s recipe: the hash and size of its first prerequisite.
all payload:
	@sha256sum $< | tee -a "$(HASHES)"
	@stat -c "%8s:%n" $< | tee -a "$(SIZES)"

.SUFFIXES:
FORCE:

install_config = $(pwd)/bin/prepare_module_config.sh "$1" "$2" "$(board_build)" "$(BRAND_NAME)"
prefix = $(foreach _, $2, $(if $(patsubst /%,,$_),$1$_,$_))
define map =
$(foreach _,$2,$(eval $(call $1,$_)))
endef

include modules/*

data_files :=
$(foreach m,$(modules-y),$(eval data_files += $($(m)_data)))
bins = $(foreach m,$1,$(call prefix,$(build)/$($m_dir)/,$($m_output)))
libs = $(foreach m,$1,$(call prefix,$(build)/$($m_dir)/,$($m_libraries)))

# A directory into a normalised cpio, its hashes and sizes recorded.
define do-cpio =
	( cd "$2"; find . | cpio --quiet -H newc -o ) | ./bin/cpio-clean.pl > "$1.tmp"
	if ! cmp --quiet "$1.tmp" "$1"; then mv "$1.tmp" "$1"; else rm "$1.tmp"; fi
	sha256sum "$1" | tee -a "$(HASHES)"
	stat -c "%8s:%n" "$1" | tee -a "$(SIZES)"
	( cd "$2"; echo "-----"; find . -type f -print0 | xargs -0 sha256sum; echo "-----" ) >> "$(HASHES)"
	( cd "$2"; echo "-----"; find . -type f -print0 | xargs -0 stat -c "%8s:%n"; echo "-----" ) >> "$(SIZES)"
endef

define do-copy =
	cp -a --remove-destination "$1" "$2"
endef

define define_module =
  $(eval $1_base_dir = $(or $($1_base_dir),$($1_dir)))
  $(eval $1_module_file = $(or $($1_module_file),$1))
  $(eval $1_patch_version ?= $(if $(filter %-$($1_version),$1),,$($1_version)))
  $(eval $1_patch_name = $1$(if $($1_patch_version),-,)$($1_patch_version))
  $(packages)/$($1_tar):
	./bin/fetch.sh "$($1_url)" "$$@" "$($1_hash)"
  $(build)/$($1_base_dir)/.canary: $(packages)/$($1_tar)
	mkdir -p "$$(dir $$@)"
	tar -xf "$(packages)/$($1_tar)" --strip 1 -C "$$(dir $$@)"
	if [ -d patches/$($1_patch_name) ]; then for p in patches/$($1_patch_name)/*.patch; do \
		patch -s -p1 -d "$(build)/$($1_base_dir)" < "$$$$p" || exit 1; done; fi
	touch "$$@"
  $(eval $1_config_file_path := $(build)/$($1_dir)/$(or $($1_config_file),.config))
  $($1_config_file_path): $(build)/$($1_base_dir)/.canary
	mkdir -p $$(dir $$@)
	touch "$$@"
  $(dir $($1_config_file_path)).configured: $(build)/$($1_base_dir)/.canary \
		$(foreach d,$($1_depends),$(build)/$($d_dir)/.build) $($1_config_file_path)
	( cd "$(build)/$($1_dir)"; $($1_configure) ) < /dev/null > "$(log_dir)/$1.configure.log" 2>&1
	touch "$$@"
  $(call bins,$1) $(call libs,$1): $(build)/$($1_dir)/.build
  $(build)/$($1_dir)/.build: $(foreach d,$($1_depends),$(build)/$($d_dir)/.build) \
		$(dir $($1_config_file_path)).configured
	+$(MAKE) -C "$(build)/$($1_dir)" $($1_target) < /dev/null > "$(log_dir)/$1.log" 2>&1
	touch $$@
endef
$(call map, define_module, $(filter-out initrd,$(sort $(modules-y))))

# Staging into the initrd, stripped.
define initrd_bin_add =
$(initrd_bin_dir)/$(notdir $1): $1
	cp -a --remove-destination "$$<" "$$@"
	@$(CROSS)strip --preserve-dates "$$@" 2>&-; true
initrd_bins += $(initrd_bin_dir)/$(notdir $1)
endef
define initrd_lib_add =
$(initrd_lib_dir)/$(notdir $1): $1
	$(CROSS)strip --preserve-dates -o "$$@" "$$<"
initrd_libs += $(initrd_lib_dir)/$(notdir $1)
endef

bin_modules-$(CONFIG_HELLO) += hello
$(foreach m, $(bin_modules-y), $(call map,initrd_bin_add,$(call bins,$m)))
$(foreach m, $(modules-y), $(call map,initrd_lib_add,$(call libs,$m)))

# coreboot's cbmem, built in coreboot's tree, goes into every coreboot board's initrd.
COREBOOT_UTIL_DIR = $(build)/$(coreboot_base_dir)/util
ifeq ($(CONFIG_COREBOOT),y)
$(eval $(call initrd_bin_add,$(COREBOOT_UTIL_DIR)/cbmem/cbmem))
endif
$(COREBOOT_UTIL_DIR)/cbmem/cbmem: $(build)/$(coreboot_base_dir)/.canary $(build)/$(musl-cross-make_dir)/.build
	+$(MAKE) -C "$(dir $@)" $(CROSS_TOOLS)

initrd-y += $(pwd)/blobs/dev.cpio
initrd-y += $(build)/$(initrd_dir)/modules.cpio
initrd-y += $(build)/$(initrd_dir)/tools.cpio
initrd-y += $(build)/$(initrd_dir)/board.cpio
initrd-$(CONFIG_HEADS) += $(build)/$(initrd_dir)/heads.cpio

define stage_data_file =
$(initrd_data_dir)/$2: $1
	mkdir -p "$(dir $(initrd_data_dir)/$2)"; cp -R "$1" "$(initrd_data_dir)/$2"
data_initrd_files += $(initrd_data_dir)/$2
endef
$(foreach entry,$(data_files),\
  $(eval $(call stage_data_file,$(word 1,$(subst |, ,$(entry))),$(word 2,$(subst |, ,$(entry))))))
ifneq ($(strip $(data_files)),)
$(build)/$(initrd_dir)/data.cpio: $(data_initrd_files) FORCE
	$(call do-cpio,$@,$(initrd_data_dir))
initrd-y += $(build)/$(initrd_dir)/data.cpio
endif

$(build)/$(initrd_dir)/tools.cpio: $(initrd_bins) $(initrd_libs) $(initrd_tools_dir)/etc/config
	$(call do-cpio,$@,$(initrd_tools_dir))

$(initrd_tools_dir)/etc/config: $(CONFIG)
	mkdir -p $(dir $@)
	export | grep ' CONFIG_' | sed -e 's/^declare -x /export /' -e 's/\\\"//g' > $@
	echo export GIT_HASH=\'$(GIT_HASH)\' >> $@
	echo export GIT_STATUS=$(GIT_STATUS) >> $@
	echo export CONFIG_BOARD=$(BOARD) >> $@
	echo export CONFIG_BRAND_NAME=$(BRAND_NAME) >> $@

BOARD_INITRD_FILES := $(shell find $(pwd)/boards/$(BOARD)/initrd -type f 2>/dev/null)
ifeq ($(BOARD_INITRD_FILES),)
$(build)/$(initrd_dir)/board.cpio:
	cpio -H newc -o </dev/null >"$@"
else
$(build)/$(initrd_dir)/board.cpio: $(BOARD_INITRD_FILES) FORCE
	$(call do-cpio,$@,$(pwd)/boards/$(BOARD)/initrd)
endif

HEADS_INITRD_FILES := $(shell find $(pwd)/initrd -type f 2>/dev/null)
$(build)/$(initrd_dir)/heads.cpio: $(HEADS_INITRD_FILES) FORCE
	$(call do-cpio,$@,$(pwd)/initrd)

$(build)/$(initrd_dir)/initrd.cpio.xz: $(initrd-y)
	$(pwd)/bin/cpio-clean.pl $^ | xz --check=crc32 --lzma2=dict=1MiB -9 \
		| dd bs=512 conv=sync status=none > "$@.tmp"
	if ! cmp --quiet "$@.tmp" "$@"; then mv "$@.tmp" "$@"; else rm "$@.tmp"; fi
	sha256sum "$(@:$(pwd)/%=%)" | tee -a "$(HASHES)"
	stat -c "%8s:%n" "$(@:$(pwd)/%=%)" | tee -a "$(SIZES)"

$(build)/$(initrd_dir)/tools.cpio: $(foreach d,$(bin_modules-y),$(build)/$($d_dir)/.build)

bundle-$(CONFIG_LINUX_BUNDLED) += $(board_build)/$(LINUX_IMAGE_FILE).bundled
all: $(bundle-y)
"#;

/// The versions and sites musl-cross-make's Makefile names (its packages'
/// URLs are built from them).
const TOOLCHAIN_VARS: &str = "CONFIG_SUB_REV = 0a1b2c3d\nGCC_VER = 3.0\nBINUTILS_VER = 2.0\n\
    MUSL_VER = 1.0\nGMP_VER = 6.0\nMPC_VER = 1.1\nMPFR_VER = 4.0\nLINUX_VER = headers-4.19\n\
    GNU_SITE = https://ftpmirror.gnu.org/gnu\nGCC_SITE = $(GNU_SITE)/gcc\n\
    BINUTILS_SITE = $(GNU_SITE)/binutils\nGMP_SITE = $(GNU_SITE)/gmp\nMPC_SITE = $(GNU_SITE)/mpc\n\
    MPFR_SITE = $(GNU_SITE)/mpfr\nMUSL_SITE = https://musl.libc.org/releases\n\
    LINUX_SITE = https://cdn.kernel.org/pub/linux/kernel\n\
    LINUX_HEADERS_SITE = https://ftp.barfooze.de/pub/sabotage/tarballs/\n\n";

/// musl-cross-make's packages: file name and content.
const TOOLCHAIN_PACKAGES: &[(&str, &str)] = &[
    ("gcc-3.0.tar.gz", "gcc\n"),
    ("binutils-2.0.tar.gz", "binutils\n"),
    ("musl-1.0.tar.gz", "musl\n"),
    ("gmp-6.0.tar.gz", "gmp\n"),
    ("mpc-1.1.tar.gz", "mpc\n"),
    ("mpfr-4.0.tar.gz", "mpfr\n"),
    ("linux-headers-4.19.tar.gz", "headers\n"),
    ("config.sub", "#!/bin/sh\necho x86_64-pc-linux-gnu\n"),
];

fn sha1_hex(b: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(b))
}

/// `strata.local.toml` for the imported project: this machine's mirror of
/// the toolchain's packages.
pub fn local_toml(root: &Path) -> String {
    format!(
        "[mirrors]\nbefore = [\"file://{}/\"]\n",
        root.join("mirror").display()
    )
}

const TOOLCHAIN_MAKEFILE: &str = "install:\n\tmkdir -p $(OUTPUT)/bin\n\
    \tcp -p gcc.sh $(OUTPUT)/bin/x86_64-linux-musl-gcc\n\
    \tprintf '#!/bin/sh\\nexec strip \"$$@\"\\n' > $(OUTPUT)/bin/x86_64-linux-musl-strip\n\
    \tprintf '#!/bin/sh\\nexec ar \"$$@\"\\n' > $(OUTPUT)/bin/x86_64-linux-musl-ar\n\
    \tchmod 755 $(OUTPUT)/bin/x86_64-linux-musl-strip $(OUTPUT)/bin/x86_64-linux-musl-ar\n";

/// The host compiler minus `--sysroot` (the sysroot holds no libc).
const GCC_WRAPPER: &str = "#!/bin/sh\nskip=\nfor a; do shift\n  if [ -n \"$skip\" ]; then skip=; continue; fi\n  if [ \"$a\" = --sysroot ]; then skip=1; continue; fi\n  set -- \"$@\" \"$a\"\ndone\nexec gcc \"$@\"\n";

/// A kernel-like tree: `olddefconfig` and the image build out of tree (O=),
/// the image holding the config and the initramfs it names (as a kernel
/// with `CONFIG_IKCONFIG` and `CONFIG_INITRAMFS_SOURCE` does; a relative
/// path is looked up in the object tree, then in the source tree, as
/// kbuild's VPATH does), one loadable
/// module (a real ELF object with debug info), and `headers_install` of its
/// uapi headers.
const KERNEL_MAKEFILE: &str = "srctree := $(dir $(lastword $(MAKEFILE_LIST)))\n\
O ?= .\n\
all: $(O)/arch/x86/boot/bzImage $(O)/drivers/demo/demo.ko\n\
olddefconfig:\n\tLC_ALL=C sort -u $(O)/.config > $(O)/.config.new && mv $(O)/.config.new $(O)/.config\n\
\techo 'include $(abspath $(srctree))/Makefile' > $(O)/Makefile\n\
INITRAMFS := $(patsubst \"%\",%,$(shell sed -n 's/^CONFIG_INITRAMFS_SOURCE=//p' $(O)/.config 2>/dev/null))\n\
INITRAMFS_FILE := $(if $(INITRAMFS),$(firstword $(wildcard $(O)/$(INITRAMFS) $(srctree)$(INITRAMFS))))\n\
$(O)/arch/x86/boot/bzImage: $(O)/.config $(INITRAMFS_FILE)\n\tmkdir -p $(dir $@)\n\
\t{ printf 'KERNEL user=%s\\n' '$(KBUILD_BUILD_USER)'; cat $(O)/.config; $(if $(INITRAMFS_FILE),cat $(INITRAMFS_FILE);) } > $@\n\
headers_install:\n\tmkdir -p $(INSTALL_HDR_PATH)/include/linux\n\
\tcp $(srctree)include/uapi/linux/*.h $(INSTALL_HDR_PATH)/include/linux/\n\
$(O)/drivers/demo/demo.ko: $(srctree)drivers/demo/demo.c\n\tmkdir -p $(dir $@)\n\
\tcd $(srctree) && $(CROSS_COMPILE)gcc -g -fdebug-prefix-map=$(abspath $(srctree))=. -c -o $(abspath $@) drivers/demo/demo.c\n";

/// A coreboot-like tree: `olddefconfig` on an out-of-tree DOTCONFIG, a
/// toolchain target, and a ROM (rebuilt when a file its config names
/// changes, as coreboot's CBFS files are) holding the config (with the payload paths
/// as written, relative to this dir), the payload and the initrd.
const COREBOOT_MAKEFILE: &str = "obj ?= build\nDOTCONFIG ?= .config\n\
-include $(DOTCONFIG)\n\
ROM_BYTES := $(or $(CONFIG_FIXTURE_ROM_BYTES),262144)\n\
all: $(obj)/coreboot.rom $(obj)/cbfstool $(obj)/bootblock.bin\n\
$(obj)/bootblock.bin: $(DOTCONFIG)\n\t{ echo BOOTBLOCK; head -c 64 $(DOTCONFIG); } > $@\n\
olddefconfig:\n\tgrep -v '^#' $(DOTCONFIG) | LC_ALL=C sort > $(DOTCONFIG).new && mv $(DOTCONFIG).new $(DOTCONFIG)\n\
crossgcc-i386:\n\tmkdir -p util/crossgcc/xgcc/bin\n\tcp -p util/xgcc.sh util/crossgcc/xgcc/bin/i386-elf-gcc\n\
$(obj)/cbfstool: util/cbfstool.sh\n\tcp -p util/cbfstool.sh $@\n\
$(obj)/coreboot.rom: $(DOTCONFIG) $(patsubst \"%\",%,$(CONFIG_IFD_BIN_PATH) $(CONFIG_BOOTSPLASH_FILE))\n\
\t{ echo COREBOOT-FIXTURE; cat $(DOTCONFIG); cat $(CONFIG_IFD_BIN_PATH) $(CONFIG_BOOTSPLASH_FILE) $(CONFIG_EC_UPDATE_FILE) $(CONFIG_PAYLOAD_FILE) $(CONFIG_LINUX_INITRD); } > $@.tmp\n\
\ttruncate -s $$(( $(ROM_BYTES) - 16 )) $@.tmp && printf RESET-VECTOR-TOP >> $@.tmp && mv $@.tmp $@\n";

/// An embedded controller's firmware tree: `make BOARD=<vendor>/<model>`
/// leaves its image under `build/<vendor>/<model>/<version>/ec.rom`.
const EC_MAKEFILE: &str = "all:\n\tmkdir -p build/$(BOARD)/1.0.0\n\
\tprintf 'EC FIRMWARE %s\\n' '$(BOARD)' > build/$(BOARD)/1.0.0/ec.rom\n";

const CPIO_CLEAN: &str = r#"#!/usr/bin/env perl
# Normalises newc cpio archives (the fixture's own): reads one or more
# archives, keeps the last entry of each name, sorts by name, zeroes inode,
# owner, group, link count, mtime, device numbers and checksum, keeps only
# the owner's permission bits, ends with one trailer, pads to 512 bytes.
use strict;
use warnings;
binmode STDOUT;
local $/;
my %entry;
my $end;
for my $in (@ARGV ? @ARGV : ('-')) {
    my $fh;
    if ($in eq '-') { $fh = \*STDIN; } else { open($fh, '<', $in) or die "$in: $!\n"; }
    binmode $fh;
    my $data = <$fh>;
    my $pos = 0;
    while ($pos + 110 <= length $data) {
        my $h = substr($data, $pos, 110);
        die "$in: bad magic at $pos\n" unless substr($h, 0, 6) eq '070701';
        my $namesize = hex substr($h, 94, 8);
        my $filesize = hex substr($h, 54, 8);
        my $name = substr($data, $pos + 110, $namesize - 1);
        my $size = ((110 + $namesize + 3) & ~3) + (($filesize + 3) & ~3);
        my $rec = substr($data, $pos, $size);
        $pos += $size;
        if ($name eq 'TRAILER!!!') { $end = $rec; last; }
        $entry{$name} = $rec;
    }
}
die "no trailer\n" unless defined $end;
my $out = '';
for my $name (sort keys %entry) {
    my $r = $entry{$name};
    my $mode = hex(substr($r, 14, 8)) & ~077;
    substr($r, 6, 8) = '00000000';
    substr($r, 14, 8) = sprintf('%08X', $mode);
    substr($r, $_, 8) = '00000000' for (22, 30, 38, 46, 62, 70, 102);
    $out .= $r;
}
$out .= $end;
$out .= "\0" x ((512 - length($out) % 512) % 512);
print $out;
"#;

const PREPARE_CONFIG: &str = r#"#!/usr/bin/env bash
# The fixture's config installer: @BOARD_BUILD_DIR@ becomes the board's
# output dir relative to the dir the module builds from (the config's
# parent's parent), @BLOB_DIR@ and @BRAND_DIR@ this tree's blobs/ and
# branding/<brand>/ (the tree found from where this script lives), so the
# config holds no absolute path.
set -e
tmpl="$1"; out="$2"; board_build="$3"; brand="$4"
tree="$(realpath "$(dirname "${BASH_SOURCE[0]}")/..")"
from="$(realpath "$(dirname "$out")/..")"
rel="$(realpath --relative-to "$from" "$board_build")"
tree_rel="$(realpath --relative-to "$from" "$tree")"
sed -e "s!@BOARD_BUILD_DIR@!$rel!g" -e "s!@BLOB_DIR@!$tree_rel/blobs!g" \
    -e "s!@BRAND_DIR@!$tree_rel/branding/$brand!g" -e "s!@BRAND_NAME@!$brand!g" "$tmpl" > "$out"
"#;

/// The split target (the fixture's own, in the shape of Heads's
/// targets/split_8mb4mb.mk): the ROM's first 8 MiB and the next 4 MiB.
const SPLIT_MK: &str = r#"# Two flash chips: the ROM's bottom 8 MiB and top 4 MiB as files of their own.
all: bottom top
SPLIT_BASE := $(board_build)/heads-$(BOARD)-$(HEADS_GIT_VERSION)
bottom: $(SPLIT_BASE)-bottom.rom
top: $(SPLIT_BASE)-top.rom
$(SPLIT_BASE)-bottom.rom: $(board_build)/$(CB_OUTPUT_FILE) FORCE
	@rm -f $@
	dd if=$< of=$@ bs=65536 count=128 skip=0 status=none
	@sha256sum $@ | tee -a "$(HASHES)"
	@stat -c "%8s:%n" $@ | tee -a "$(SIZES)"
$(SPLIT_BASE)-top.rom: $(board_build)/$(CB_OUTPUT_FILE) FORCE
	@rm -f $@
	dd if=$< of=$@ bs=65536 count=64 skip=128 status=none
	@sha256sum $@ | tee -a "$(HASHES)"
	@stat -c "%8s:%n" $@ | tee -a "$(SIZES)"
.PHONY: all bottom top FORCE
"#;

/// The package target (the fixture's own, in the shape of Heads's
/// targets/ppc_tgz.mk; this arch's kernel image is bzImage).
const PPC_TGZ_MK: &str = r#"# The board's package: the ROM, the bootblock and the bundled kernel.
PKG_NAME := heads-$(BOARD)-$(HEADS_GIT_VERSION)
PKG_KERNEL := $(PKG_NAME)-bzImage.bundled
PKG_FILES := $(CB_OUTPUT_FILE) $(CB_BOOTBLOCK_FILE) $(PKG_KERNEL)
all: $(board_build)/$(PKG_KERNEL)
$(board_build)/$(PKG_KERNEL): $(board_build)/bzImage.bundled
	$(call do-copy,$<,$@)
all: $(board_build)/$(PKG_NAME).tgz
$(board_build)/$(PKG_NAME).tgz: $(addprefix $(board_build)/,$(PKG_FILES))
	rm -rf $(board_build)/pkg
	mkdir $(board_build)/pkg
	cp $^ $(board_build)/pkg
	cd $(board_build)/pkg && sha256sum * > sha256sum.txt
	cd $(board_build)/pkg && tar zcf $@ *
	rm -r $(board_build)/pkg
"#;

const FETCH: &str = "#!/bin/sh\n# The fixture's fetcher: file:// only, verified.\nset -e\n\
cp \"${1#file://}\" \"$2.tmp\"\necho \"$3  $2.tmp\" | sha256sum -c --quiet\nmv \"$2.tmp\" \"$2\"\n";

fn chmod_x(path: &Path) {
    let mut perm = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(path, perm).unwrap();
}

/// A module file for a tarball on the mirror.
fn archive(mirror: &Path, name: &str, version: &str, files: &[(&str, &str)]) -> String {
    let tar = tarball(&format!("{name}-{version}"), files);
    std::fs::write(mirror.join(format!("{name}-{version}.tar.gz")), &tar).unwrap();
    format!(
        "{name}_version := {version}\n{name}_tar := {name}-{version}.tar.gz\n\
         {name}_url := file://{}/{name}-{version}.tar.gz\n{name}_hash := {}\n",
        mirror.display(),
        sha256(&tar)
    )
}

/// Writes the tree under `root/heads` with its mirror in `root/mirror`.
/// targets/xy_me_blobs.mk: coreboot waits for a blob a tree script makes
/// and for its copy in the board dir.
const XY_BLOBS_MK: &str = "\
$(build)/coreboot-$(CONFIG_COREBOOT_VERSION)/$(BOARD)/.build: \\
    $(pwd)/blobs/xy/xy_tb.bin $(build)/$(BOARD)/xy_tb.bin

$(pwd)/blobs/xy/xy_tb.bin:
\t$(pwd)/blobs/xy/make_tb.sh $(pwd)/blobs/xy

$(build)/$(BOARD)/xy_tb.bin: $(pwd)/blobs/xy/xy_tb.bin
\tcp $(pwd)/blobs/xy/xy_tb.bin $(build)/$(BOARD)
";

/// The blob's script: the bytes a vendor download would give, made here.
const XY_SCRIPT: &str =
    "#!/usr/bin/env bash\nset -e\nprintf 'THUNDERBOLT-FIXTURE\\n' > \"$1/xy_tb.bin\"\n";

/// sha256 of `THUNDERBOLT-FIXTURE\n`.
pub const XY_TB_SHA256: &str = "176e5f6ff8282ed56214d0f80433f794d04975e8ded427caf0abc33db9974d15";

/// Adds board rom6 to the tree at `h`: its coreboot needs a blob a tree
/// script makes (shaped like targets/t480_me_blobs.mk), pinned by
/// blobs/xy/hashes.txt and copied into the board dir, which Heads leaves
/// among its outputs. Kept out of [`write_tree`] so the other boards'
/// module names stay as their tests expect.
pub fn add_blob_board(h: &Path) {
    let h = h.to_path_buf();
    write(
        &h,
        "boards/rom6/rom6.config",
        "CONFIG_COREBOOT=y\nCONFIG_COREBOOT_VERSION=1.0\n\
         CONFIG_COREBOOT_CONFIG=config/coreboot-rom1.config\n\
         CONFIG_LINUX_CONFIG=config/linux-rom1.config\nCONFIG_HELLO=y\n\
         BOARD_TARGETS := xy_me_blobs\nexport CONFIG_BOOTSCRIPT=/bin/hello\n",
    );
    write(&h, "targets/xy_me_blobs.mk", XY_BLOBS_MK);
    write(&h, "blobs/xy/make_tb.sh", XY_SCRIPT);
    chmod_x(&h.join("blobs/xy/make_tb.sh"));
    write(
        &h,
        "blobs/xy/hashes.txt",
        format!("{XY_TB_SHA256}  xy_tb.bin\n"),
    );
}

pub fn write_tree(root: &Path) -> PathBuf {
    let h = root.join("heads");
    let mirror = root.join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    write(&h, "Makefile", MAKEFILE);
    for (rel, text) in [
        ("bin/cpio-clean.pl", CPIO_CLEAN),
        ("bin/prepare_module_config.sh", PREPARE_CONFIG),
        ("bin/fetch.sh", FETCH),
    ] {
        write(&h, rel, text);
        chmod_x(&h.join(rel));
    }

    // musl-cross-make's packages, pinned by its hashes/ as upstream does;
    // the import declares them as downloads (served by the mirror through
    // strata.local.toml), while this toolchain's install needs none of them.
    let mut toolchain: Vec<(String, String)> = Vec::new();
    for (file, body) in TOOLCHAIN_PACKAGES {
        let data = if *file == "config.sub" {
            body.as_bytes().to_vec()
        } else {
            tarball(file.trim_end_matches(".tar.gz"), &[("README", body)])
        };
        std::fs::write(mirror.join(file), &data).unwrap();
        let sum_file = match *file {
            "config.sub" => "hashes/config.sub.0a1b2c3d.sha1".to_string(),
            f => format!("hashes/{f}.sha1"),
        };
        toolchain.push((sum_file, format!("{}  {file}\n", sha1_hex(&data))));
    }
    let makefile = format!("{TOOLCHAIN_VARS}{TOOLCHAIN_MAKEFILE}");
    let mut files: Vec<(&str, &str)> = toolchain
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    files.extend([("Makefile", makefile.as_str()), ("gcc.sh", GCC_WRAPPER)]);
    let tc = archive(&mirror, "musl-cross-make", "1.0", &files);
    write(
        &h,
        "modules/musl-cross-make",
        format!(
            "modules-y += musl-cross-make\n{tc}musl-cross-make_dir := musl-cross-make-1.0\n\
             CROSS_PATH ?= $(pwd)/crossgcc/$(CONFIG_TARGET_ARCH)\n\
             musl-cross-make_target := OUTPUT=\"$(CROSS_PATH)\" install\n\
             CROSS := $(CROSS_PATH)/bin/$(MUSL_ARCH)-linux-musl-\n\
             $(build)/$(musl-cross-make_dir)/.build: $(INSTALL)/include/linux/limits.h\n"
        ),
    );

    let hello = archive(
        &mirror,
        "hello",
        "1.0",
        &[
            (
                "hello.c",
                "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}\n",
            ),
            ("Makefile", "hello: hello.c\n\t$(CC) -o hello hello.c\n"),
        ],
    );
    write(
        &h,
        "modules/hello",
        format!(
            "modules-$(CONFIG_HELLO) += hello\n{hello}hello_dir := hello-1.0\n\
             hello_target := $(CROSS_TOOLS)\nhello_output := hello\nhello_depends := $(musl_dep)\n"
        ),
    );
    write(
        &h,
        "patches/hello-1.0/0001-greeting.patch",
        "--- a/hello.c\n+++ b/hello.c\n@@ -1,2 +1,2 @@\n #include <stdio.h>\n-int main(void){puts(\"hello\");return 0;}\n+int main(void){puts(\"hello, rom\");return 0;}\n",
    );

    // busybox: installed with its links into the initrd's tools by a rule
    // of its own module file, not staged and stripped like bin_modules.
    let busybox = archive(
        &mirror,
        "busybox",
        "1.0",
        &[
            (
                "busybox.c",
                "#include <stdio.h>\n#include <linux/fixture.h>\nint main(void){puts(FIXTURE_BANNER);return 0;}\n",
            ),
            (
                "Makefile",
                "busybox: busybox.c\n\t$(CC) -MD -MF busybox.d -MT busybox -o busybox busybox.c\n\
                 -include busybox.d\n\
                 install: busybox\n\tmkdir -p $(CONFIG_PREFIX)/bin $(CONFIG_PREFIX)/sbin\n\
                 \tcp busybox $(CONFIG_PREFIX)/bin/busybox\n\tln -sf busybox $(CONFIG_PREFIX)/bin/sh\n\
                 \tln -sf ../bin/busybox $(CONFIG_PREFIX)/sbin/reboot\n\
                 \tln -sf ../bin/busybox $(CONFIG_PREFIX)/sbin/init\n",
            ),
        ],
    );
    write(
        &h,
        "modules/busybox",
        format!(
            "CONFIG_BUSYBOX ?= y\nmodules-$(CONFIG_BUSYBOX) += busybox\n{busybox}busybox_dir := busybox-1.0\n\
             busybox_target := $(CROSS_TOOLS)\nbusybox_output := busybox\nbusybox_depends := $(musl_dep)\n\
             ifeq \"$(CONFIG_BUSYBOX)\" \"y\"\ninitrd_bins += $(initrd_bin_dir)/busybox\nendif\n\
             $(initrd_bin_dir)/busybox: $(build)/$(busybox_dir)/.build\n\
             \t$(MAKE) -C $(build)/$(busybox_dir) CC=\"$(heads_cc)\" CROSS_COMPILE=\"$(CROSS)\" \\\n\
             \t\tCONFIG_PREFIX=\"$(initrd_bin_dir)/..\" install\n\
             \trm -f $(initrd_bin_dir)/../sbin/reboot\n"
        ),
    );

    let demo = archive(
        &mirror,
        "libdemo",
        "1.0",
        &[
            ("demo.c", "int demo(void){return 42;}\n"),
            ("demo.dat", "demo data\n"),
            (
                "Makefile",
                "libdemo.so.1: demo.c\n\t$(CC) -shared -fPIC -o libdemo.so.1 demo.c\n",
            ),
        ],
    );
    write(
        &h,
        "modules/libdemo",
        format!(
            "modules-y += libdemo\n{demo}libdemo_dir := libdemo-1.0\n\
             libdemo_target := $(CROSS_TOOLS)\nlibdemo_libraries := libdemo.so.1\n\
             libdemo_data += $(build)/$(libdemo_dir)/demo.dat|etc/demo/demo.dat\n\
             libdemo_depends := $(musl_dep)\n"
        ),
    );

    let linux = archive(
        &mirror,
        "linux",
        "1.0",
        &[
            ("Makefile", KERNEL_MAKEFILE),
            ("drivers/demo/demo.c", "int demo_init(void){return 0;}\n"),
            (
                "include/uapi/linux/limits.h",
                "#define FIXTURE_PATH_MAX 4096\n",
            ),
            (
                "include/uapi/linux/fixture.h",
                "#define FIXTURE_BANNER \"busybox\"\n",
            ),
        ],
    );
    // The kernel's uapi header, patched: busybox prints its banner.
    write(
        &h,
        "patches/linux-1.0/0001-banner.patch",
        "--- a/include/uapi/linux/fixture.h\n+++ b/include/uapi/linux/fixture.h\n@@ -1 +1 @@\n\
         -#define FIXTURE_BANNER \"busybox\"\n+#define FIXTURE_BANNER \"busybox on patched headers\"\n",
    );
    write(
        &h,
        "modules/linux",
        format!(
            "modules-y += linux\nLINUX_ARCH := x86\nLINUX_IMAGE_FILE := bzImage\n{linux}\
             linux_base_dir := linux-$(linux_version)\n\
             linux_kconfig := $(CONFIG_LINUX_CONFIG)\n\
             linux_dir := $(linux_base_dir)/$(notdir $(basename $(linux_kconfig)))\n\
             $(build)/$(linux_dir)/.configured: $(linux_kconfig)\n\
             linux_configure := mkdir -p \"$(build)/$(linux_dir)\" \\\n\
             \t&& $(call install_config,$(pwd)/$(linux_kconfig),$(build)/$(linux_dir)/.config) \\\n\
             \t&& $(MAKE) -C .. O=\"$(build)/$(linux_dir)\" olddefconfig\n\
             linux_target := O=\"$(build)/$(linux_dir)\" CROSS_COMPILE=\"$(CROSS)\" \\\n\
             \tKBUILD_BUILD_USER=$(notdir $(linux_kconfig)) $(MAKE_JOBS)\n\
             linux_output := arch/x86/boot/$(LINUX_IMAGE_FILE)\n\
             linux_depends := $(musl_dep)\n\
             linux_modules-y += drivers/demo/demo.ko\n\
             module_initrd_dir := $(shell mktemp -d)\n\
             module_initrd_lib_dir := $(module_initrd_dir)/lib/modules\n\
             STRATA_MODDIR := $(shell mkdir -p \"$(module_initrd_lib_dir)\")\n\
             define linux_module =\n\
             $(build)/$(linux_dir)/$1: $(build)/$(linux_dir)/.build\n\
             $(build)/$(BOARD)/modules.cpio: $(module_initrd_lib_dir)/$(notdir $1)\n\
             $(module_initrd_lib_dir)/$(notdir $1): $(build)/$(linux_dir)/$1\n\
             \t$(CROSS)strip --preserve-dates --strip-debug -o \"$$@\" \"$$<\"\n\
             endef\n\
             $(call map,linux_module,$(linux_modules-y))\n\
             $(build)/$(BOARD)/modules.cpio: $(build)/$(linux_dir)/.build\n\
             \t$(call do-cpio,$@,$(module_initrd_dir))\n\
             $(build)/$(BOARD)/$(LINUX_IMAGE_FILE): $(build)/$(linux_dir)/.build\n\
             \t$(call do-copy,$(dir $<)/$(linux_output),$@)\n\
             \t@touch $@\n\
             \tsha256sum \"$@\" | tee -a \"$(HASHES)\"\n\
             \tstat -c \"%8s:%n\" \"$@\" | tee -a \"$(SIZES)\"\n\
             $(INSTALL)/include/linux/limits.h: $(build)/$(linux_base_dir)/.canary\n\
             \t$(MAKE) -C \"$(build)/$(linux_base_dir)\" ARCH=\"$(LINUX_ARCH)\" INSTALL_HDR_PATH=\"$(INSTALL)\" \\\n\
             \t\tCROSS_COMPILE=\"$(CROSS)\" O=\"$(linux_dir)\" KCONFIG_CONFIG=\"$(pwd)/$(linux_kconfig)\" headers_install\n\
             $(build)/$(BOARD)/$(LINUX_IMAGE_FILE).bundled: $(build)/$(initrd_dir)/initrd.cpio.xz \\\n\
             \t$(build)/$(BOARD)/$(LINUX_IMAGE_FILE)\n\
             \txz --decompress --stdout --force \"$<\" > $(build)/$(initrd_dir)/initrd.cpio\n\
             \t$(MAKE) -C \"$(build)/$(linux_dir)\" $(linux_target)\n\
             \t$(call do-copy,$(build)/$(linux_dir)/$(linux_output),$@)\n\
             \t@touch $@\n\
             \t@sha256sum \"$@\" | tee -a \"$(HASHES)\"\n"
        ),
    );

    // coreboot's crossgcc packages, pinned by util/crossgcc/sum/ (the
    // import declares them as the toolchain module's downloads; this
    // toolchain target needs none of them).
    let mut sums: Vec<(String, String)> = Vec::new();
    for file in super::crossgcc::PACKAGES {
        let pkg = tarball(file.trim_end_matches(".tar.gz"), &[("VERSION", file)]);
        std::fs::write(mirror.join(file), &pkg).unwrap();
        sums.push((
            format!("util/crossgcc/sum/{file}.cksum"),
            format!("{}  tarballs/{file}\n", sha1_hex(&pkg)),
        ));
    }
    let mut cb_files: Vec<(&str, &str)> =
        sums.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    cb_files.extend_from_slice(&[
        ("Makefile", COREBOOT_MAKEFILE),
        ("util/xgcc.sh", "#!/bin/sh\necho i386-elf-gcc\n"),
            (
                "util/cbmem/cbmem.c",
                "#include <stdio.h>\nint main(void){puts(\"cbmem\");return 0;}\n",
            ),
            (
                "util/cbmem/Makefile",
                "cbmem: cbmem.c\n\t$(CC) -o cbmem cbmem.c\n",
            ),
            (
                "util/cbfstool.sh",
                "#!/bin/sh\n# print: the ROM's size and its first line\nwc -c < \"$1\"; head -n 1 \"$1\"\n",
            ),
        ]);
    let cb_tar = tarball("coreboot-1.0", &cb_files);
    std::fs::write(mirror.join("coreboot-1.0.tar.gz"), &cb_tar).unwrap();
    write(
        &h,
        "modules/coreboot",
        format!(
            "ifeq \"$(CONFIG_COREBOOT)\" \"y\"\nCONFIG_COREBOOT_ROM ?= coreboot.rom\nCOREBOOT_TARGET := i386\nLINUX_IMAGE_FILE := bzImage\n\
             define coreboot_module =\n\
             \tcoreboot-$(1)_version := $(1)\n\tcoreboot-$(1)_module_file := coreboot\n\
             \tcoreboot-$(1)_base_dir := coreboot-$(1)\n\tcoreboot-$(1)_dir := coreboot-$(1)/$(BOARD)\n\
             \tcoreboot-$(1)_toolchain := $(2)\n\tcoreboot-$(1)_tar := coreboot-$(1).tar.gz\n\
             \tcoreboot-$(1)_url := file://{}/coreboot-$(1).tar.gz\n\
             endef\n\
             coreboot-1.0_hash := {}\n$(eval $(call coreboot_module,1.0,))\n\
             coreboot_module := coreboot-$(CONFIG_COREBOOT_VERSION)\nmodules-y += $(coreboot_module)\n\
             coreboot_dir := $($(coreboot_module)_dir)\ncoreboot_base_dir := $($(coreboot_module)_base_dir)\n\
             CONFIG_COREBOOT_SMBIOS_PRODUCT_NAME ?= $(BOARD)\n\
             $(build)/$(coreboot_dir)/.configured: $(CONFIG_COREBOOT_CONFIG) $(build)/$(BOARD)/initrd.cpio.xz\n\
             coreboot_toolchain_module := $(coreboot_module)\n\
             $(coreboot_module)_depends += $(if $(CONFIG_DASHARO_EC), dasharo-ec)\n\
             $(coreboot_module)_configure := mkdir -p \"$(build)/$(coreboot_dir)\"; \\\n\
             \t$(call install_config,$(pwd)/$(CONFIG_COREBOOT_CONFIG),$(build)/$(coreboot_dir)/.config); \\\n\
             \tsed -i '/^CONFIG_MAINBOARD_SMBIOS_PRODUCT_NAME/d' $(build)/$(coreboot_dir)/.config; \\\n\
             \techo 'CONFIG_MAINBOARD_SMBIOS_PRODUCT_NAME=\"$(CONFIG_COREBOOT_SMBIOS_PRODUCT_NAME)\"' >> $(build)/$(coreboot_dir)/.config; \\\n\
             \t$(MAKE) olddefconfig -C \"$(build)/$(coreboot_base_dir)\" obj=\"$(build)/$(coreboot_dir)\" \\\n\
             \t\tDOTCONFIG=\"$(build)/$(coreboot_dir)/.config\" BUILD_TIMELESS=1\n\
             COREBOOT_TOOLCHAIN_DIR = $(build)/$($(coreboot_toolchain_module)_base_dir)\n\
             $(COREBOOT_TOOLCHAIN_DIR)/.heads-toolchain: $(COREBOOT_TOOLCHAIN_DIR)/.canary\n\
             \t$(MAKE) -C \"$(COREBOOT_TOOLCHAIN_DIR)\" crossgcc-$(COREBOOT_TARGET)\n\ttouch \"$@\"\n\
             $(build)/$(coreboot_dir)/.configured: $(COREBOOT_TOOLCHAIN_DIR)/.heads-toolchain\n\
             $(coreboot_module)_target := -C \"$(build)/$(coreboot_base_dir)\" obj=\"$(build)/$(coreboot_dir)\" \\\n\
             \tDOTCONFIG=\"$(build)/$(coreboot_dir)/.config\" \\\n\
             \tXGCCPATH=\"$(COREBOOT_TOOLCHAIN_DIR)/util/crossgcc/xgcc/bin/\" BUILD_TIMELESS=1 $(MAKE_JOBS)\n\
             $(coreboot_module)_output := $(CONFIG_COREBOOT_ROM)\n\
             $(coreboot_module)_output += $(CONFIG_COREBOOT_BOOTBLOCK)\n\
             ifneq ($(CONFIG_COREBOOT_BOOTBLOCK),)\n\
             $(build)/$(BOARD)/$(CB_BOOTBLOCK_FILE): $(build)/$(coreboot_dir)/.build\n\
             \t$(call do-copy,$(dir $<)$(CONFIG_COREBOOT_BOOTBLOCK),$@)\n\
             endif\n\
             $(build)/$(coreboot_dir)/.build: $(build)/$(BOARD)/$(LINUX_IMAGE_FILE) $(build)/$(BOARD)/initrd.cpio.xz\n\
             $(build)/$(BOARD)/$(CB_OUTPUT_FILE): $(build)/$(coreboot_dir)/.build\n\
             \t\"$(build)/$(coreboot_dir)/cbfstool\" \"$(dir $<)coreboot.rom\" print\n\
             \t$(call do-copy,$(dir $<)$(CONFIG_COREBOOT_ROM),$@)\n\
             endif\n",
            mirror.display(),
            sha256(&cb_tar)
        ),
    );

    // The embedded controller's firmware, in the shape of Heads's
    // dasharo-ec: built by its module, then copied to a stable name and
    // padded, copied into coreboot's tree, and needed by coreboot's
    // configure (its config names it, so its bytes are in the ROM).
    let ec = archive(&mirror, "dasharo-ec", "1.0", &[("Makefile", EC_MAKEFILE)]);
    write(
        &h,
        "modules/dasharo-ec",
        format!(
            "ifeq \"$(CONFIG_DASHARO_EC)\" \"y\"\nmodules-y += dasharo-ec\n{ec}\
             EC_MODEL := $(patsubst rom%,model%,$(BOARD))\n\
             dasharo-ec_base_dir := dasharo-ec-1.0-$(BOARD)\n\
             dasharo-ec_dir := dasharo-ec-1.0-$(BOARD)\n\
             dasharo-ec_output := ec.rom\ndasharo-ec_configure :=\n\
             dasharo-ec_target := BOARD=vendor/$(EC_MODEL)\n\
             $(build)/$(dasharo-ec_dir)/ec.rom: $(build)/$(dasharo-ec_dir)/.build\n\
             \tcp $(build)/$(dasharo-ec_dir)/build/vendor/$(EC_MODEL)/*/ec.rom $@\n\
             \ttruncate --size=128KiB $@\n\
             $(build)/$(coreboot_base_dir)/ec.rom: $(build)/$(dasharo-ec_dir)/ec.rom FORCE\n\
             \t@if ! cmp -s \"$<\" \"$@\"; then cp \"$<\" \"$@\"; fi\n\
             $(build)/$(coreboot_dir)/.configured: $(build)/$(coreboot_base_dir)/ec.rom\n\
             endif\n"
        ),
    );
    // A board with the embedded controller: its ROM holds the padded EC image.
    write(
        &h,
        "boards/rom3/rom3.config",
        "CONFIG_COREBOOT=y\nCONFIG_COREBOOT_VERSION=1.0\n\
         CONFIG_COREBOOT_CONFIG=config/coreboot-rom3.config\n\
         CONFIG_LINUX_CONFIG=config/linux-rom1.config\nCONFIG_HELLO=y\nCONFIG_DASHARO_EC=y\n\
         export CONFIG_BOOTSCRIPT=/bin/hello\n",
    );
    write(
        &h,
        "config/coreboot-rom3.config",
        "CONFIG_VENDOR_EC=y\nCONFIG_PAYLOAD_FILE=\"@BOARD_BUILD_DIR@/bzImage\"\n\
         CONFIG_LINUX_INITRD=\"@BOARD_BUILD_DIR@/initrd.cpio.xz\"\nCONFIG_EC_UPDATE_FILE=\"ec.rom\"\n",
    );
    write(
        &h,
        "boards/rom1/rom1.config",
        "CONFIG_COREBOOT=y\nCONFIG_COREBOOT_VERSION=1.0\n\
         CONFIG_COREBOOT_CONFIG=config/coreboot-rom1.config\n\
         CONFIG_LINUX_CONFIG=config/linux-rom1.config\nCONFIG_HELLO=y\n\
         export CONFIG_BOOTSCRIPT=/bin/hello\nexport CONFIG_BOOT_GREETING=\"hi there\"\n",
    );
    write(
        &h,
        "config/coreboot-rom1.config",
        "CONFIG_VENDOR_FIXTURE=y\nCONFIG_PAYLOAD_FILE=\"@BOARD_BUILD_DIR@/bzImage\"\n\
         CONFIG_LINUX_INITRD=\"@BOARD_BUILD_DIR@/initrd.cpio.xz\"\n\
         CONFIG_BOOTSPLASH_FILE=\"@BRAND_DIR@/bootsplash.jpg\"\n\
         CONFIG_IFD_BIN_PATH=\"@BLOB_DIR@/xx30/ifd.bin\"\n",
    );
    // The brand's bootsplash and a flash descriptor blob the coreboot
    // config names through the installer's placeholders (their bytes end
    // up in the ROM), and a script of the blobs dir that makes another blob.
    write(&h, "branding/Heads/bootsplash.jpg", BOOTSPLASH);
    write(&h, "blobs/xx30/ifd.bin", IFD);
    write(
        &h,
        "blobs/xx30/vbios_fixture.sh",
        "#!/bin/sh\n# makes vga.rom from the vendor's update\necho vga > \"$(dirname \"$0\")/vga.rom\"\n",
    );
    write(
        &h,
        "config/linux-rom1.config",
        "CONFIG_SERIAL=y\nCONFIG_BLK_DEV_INITRD=y\nCONFIG_INITRAMFS_SOURCE=\"@BLOB_DIR@/dev.cpio\"\n",
    );
    write(
        &h,
        "boards/rom1/initrd/bin/board-init.sh",
        "#!/bin/sh\necho rom1\n",
    );
    chmod_x(&h.join("boards/rom1/initrd/bin/board-init.sh"));
    write(&h, "boards/rom1/initrd/etc/motd", "welcome to rom1\n");
    // A second board building the same modules with its own coreboot config.
    write(
        &h,
        "boards/rom2/rom2.config",
        "CONFIG_COREBOOT=y\nCONFIG_COREBOOT_VERSION=1.0\n\
         CONFIG_COREBOOT_CONFIG=config/coreboot-rom2.config\n\
         CONFIG_LINUX_CONFIG=config/linux-rom1.config\nCONFIG_HELLO=y\n\
         export CONFIG_BOOTSCRIPT=/bin/hello\n",
    );
    write(
        &h,
        "config/coreboot-rom2.config",
        "CONFIG_VENDOR_OTHER=y\nCONFIG_PAYLOAD_FILE=\"@BOARD_BUILD_DIR@/bzImage\"\n\
         CONFIG_LINUX_INITRD=\"@BOARD_BUILD_DIR@/initrd.cpio.xz\"\n\
         CONFIG_BOOTSPLASH_FILE=\"@BRAND_DIR@/bootsplash.jpg\"\n\
         CONFIG_IFD_BIN_PATH=\"@BLOB_DIR@/xx30/ifd.bin\"\n",
    );
    write(&h, "boards/rom2/initrd/etc/motd", "welcome to rom2\n");
    // A board bundling its initrd into the kernel (Talos II's shape): its
    // kernel config names the initramfs in the board's output dir.
    write(
        &h,
        "boards/rom4/rom4.config",
        "CONFIG_COREBOOT=y\nCONFIG_COREBOOT_VERSION=1.0\n\
         CONFIG_COREBOOT_CONFIG=config/coreboot-rom4.config\n\
         CONFIG_LINUX_CONFIG=config/linux-rom4.config\nCONFIG_HELLO=y\nCONFIG_LINUX_BUNDLED=y\n\
         export CONFIG_BOOTSCRIPT=/bin/hello\n",
    );
    write(
        &h,
        "config/coreboot-rom4.config",
        "CONFIG_VENDOR_BUNDLED=y\nCONFIG_PAYLOAD_FILE=\"@BOARD_BUILD_DIR@/bzImage\"\n\
         CONFIG_LINUX_INITRD=\"@BOARD_BUILD_DIR@/initrd.cpio.xz\"\n",
    );
    write(
        &h,
        "config/linux-rom4.config",
        "CONFIG_SERIAL=y\nCONFIG_BLK_DEV_INITRD=y\nCONFIG_IKCONFIG=y\n\
         CONFIG_INITRAMFS_SOURCE=\"../@BOARD_BUILD_DIR@/initrd.cpio\"\n",
    );
    // A board whose ROM spans two flash chips (split_8mb4mb): a ROM of
    // 12 MiB, its reset vector at the top.
    write(
        &h,
        "boards/rom5/rom5.config",
        "CONFIG_COREBOOT=y\nCONFIG_COREBOOT_VERSION=1.0\n\
         CONFIG_COREBOOT_CONFIG=config/coreboot-rom5.config\n\
         CONFIG_LINUX_CONFIG=config/linux-rom1.config\nCONFIG_HELLO=y\n\
         BOARD_TARGETS += split_8mb4mb\nexport CONFIG_BOOTSCRIPT=/bin/hello\n",
    );
    write(
        &h,
        "config/coreboot-rom5.config",
        "CONFIG_VENDOR_SPLIT=y\nCONFIG_FIXTURE_ROM_BYTES=12582912\n\
         CONFIG_PAYLOAD_FILE=\"@BOARD_BUILD_DIR@/bzImage\"\n\
         CONFIG_LINUX_INITRD=\"@BOARD_BUILD_DIR@/initrd.cpio.xz\"\n\
         CONFIG_BOOTSPLASH_FILE=\"@BRAND_DIR@/bootsplash.jpg\"\n\
         CONFIG_IFD_BIN_PATH=\"@BLOB_DIR@/xx30/ifd.bin\"\n",
    );
    write(&h, "targets/split_8mb4mb.mk", SPLIT_MK);
    // A Talos II-shaped board: the initrd bundled into the kernel, a
    // bootblock, and its package (ppc_tgz) instead of an update package.
    write(
        &h,
        "boards/talos-2/talos-2.config",
        "CONFIG_COREBOOT=y\nCONFIG_COREBOOT_VERSION=1.0\n\
         CONFIG_COREBOOT_CONFIG=config/coreboot-talos-2.config\n\
         CONFIG_LINUX_CONFIG=config/linux-talos-2.config\nCONFIG_HELLO=y\nCONFIG_LINUX_BUNDLED=y\n\
         CONFIG_COREBOOT_BOOTBLOCK=bootblock.bin\nBOARD_TARGETS := ppc_tgz\n\
         export CONFIG_BOOTSCRIPT=/bin/hello\n",
    );
    write(
        &h,
        "config/coreboot-talos-2.config",
        "CONFIG_VENDOR_TALOS=y\nCONFIG_PAYLOAD_FILE=\"@BOARD_BUILD_DIR@/bzImage\"\n\
         CONFIG_LINUX_INITRD=\"@BOARD_BUILD_DIR@/initrd.cpio.xz\"\n",
    );
    write(
        &h,
        "config/linux-talos-2.config",
        "CONFIG_SERIAL=y\nCONFIG_BLK_DEV_INITRD=y\nCONFIG_IKCONFIG=y\nCONFIG_PPC=y\n\
         CONFIG_INITRAMFS_SOURCE=\"../@BOARD_BUILD_DIR@/initrd.cpio\"\n",
    );
    write(&h, "targets/ppc_tgz.mk", PPC_TGZ_MK);
    write(&h, "initrd/init", "#!/bin/sh\nexec /bin/hello\n");
    chmod_x(&h.join("initrd/init"));
    write(
        &h,
        "initrd/etc/functions.sh",
        "die() { echo \"$*\"; exit 1; }\n",
    );

    // blobs/dev.cpio: a reproducible newc archive, made by cpio + the cleaner.
    let dev = root.join("dev-src");
    write(&dev, "dev/README", "devices are made by the kernel\n");
    let out = Command::new("bash")
        .arg("-o")
        .arg("pipefail")
        .arg("-c")
        .arg(format!(
            "cd '{}' && find . | cpio --quiet -H newc -o | '{}'",
            dev.display(),
            h.join("bin/cpio-clean.pl").display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dev.cpio: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    write(&h, "blobs/dev.cpio", out.stdout);
    h
}

/// Runs `make BOARD=rom1` in `heads` as Heads is built, with the version
/// stamps and the date fixed; panics with make's output on failure.
pub fn make_build(heads: &Path) {
    make_board(heads, "rom1")
}

/// `make BOARD=<board>`, as [`make_build`].
pub fn make_board(heads: &Path, board: &str) {
    let out = Command::new("make")
        .current_dir(heads)
        .arg(format!("BOARD={board}"))
        .args(STAMPS)
        .arg(format!("DATE={DATE}"))
        .env("GIT_CEILING_DIRECTORIES", heads.parent().unwrap())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What Heads's canary logic does when a patch changes: the module's tree is
/// extracted and patched again (here: removed, so make redoes it).
pub fn make_build_clean_module(heads: &Path, dir: &str) {
    std::fs::remove_dir_all(heads.join("build/x86").join(dir)).unwrap();
}
