//! Real Heads-style modules from real sources, end to end: a Heads-shaped
//! tree (written here, not copied from Heads) whose modules are
//! libgpg-error 1.46, libgcrypt 1.10.1, libassuan 2.5.5 and libaio 0.3.113
//! with the upstream tarballs Heads pins (Debian's `.orig` tarballs, byte for
//! byte, fetched beforehand by `.ci/run` through
//! scripts/heads-debian-tarballs.sh), is imported with `strata import heads`;
//! musl-cross-make is replaced by the Debian musl-tools stand-in
//! (`strata.local.toml` prebuilt, made by scripts/musl-standin.sh); the
//! tarballs are served by a file:// mirror declared in strata.local.toml; and
//! `strata build --offline` runs the real configure scripts and makes in the
//! sandbox (required). About 85 s of CPU in all (most of it libgcrypt).
//!
//! Outside CI the test is skipped, saying why, when the tarballs or musl-tools
//! are absent; in CI (`CI=true`) that is a failure.

mod common;

use common::sha256;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (Heads's file name, Heads's sha256 pin) of the tarballs this test builds.
const TARBALLS: [(&str, &str); 4] = [
    (
        "libgpg-error-1.46.tar.bz2",
        "b7e11a64246bbe5ef37748de43b245abd72cfcd53c9ae5e7fc5ca59f1c81268d",
    ),
    (
        "libgcrypt-1.10.1.tar.bz2",
        "ef14ae546b0084cd84259f61a55e07a38c3b53afc0f546bffcef2f01baffe9de",
    ),
    (
        "libassuan-2.5.5.tar.bz2",
        "8e8c2fcc982f9ca67dcbb1d95e2dc746b1739a4668bc20b3a3c5be632edb34e4",
    ),
    (
        "libaio_0.3.113.orig.tar.gz",
        "2c44d1c5fd0d43752287c9ae1eb9c023f04ef848ea8d4aafa46e9aedb678200b",
    ),
];

/// The top-level Makefile: the variables Heads's module files and the
/// import rely on, the cross tools as Heads passes them (the compiler with
/// `--sysroot $(INSTALL)`), and `define_module`.
const MAKEFILE: &str = r#"# Shaped like Heads's top-level Makefile (its variables, not its rules).
all:
modules-y :=
pwd := $(shell pwd)
config := $(pwd)/config
build = $(pwd)/build/$(CONFIG_TARGET_ARCH)
packages = $(pwd)/packages/$(CONFIG_TARGET_ARCH)
INSTALL = $(pwd)/install/$(CONFIG_TARGET_ARCH)
CPUS ?= $(shell nproc)
MAKE_JOBS := -j$(CPUS) --load-average=$(CPUS)
BOARD ?= gpg
CONFIG := $(pwd)/boards/$(BOARD)/$(BOARD).config
ifneq "y" "$(shell [ -r '$(CONFIG)' ] && echo y)"
$(error $(CONFIG): no such board)
endif
CONFIG_TARGET_ARCH := x86
include $(CONFIG)
MUSL_ARCH := x86_64
include modules/musl-cross-make
musl_dep := musl-cross-make
heads_cc := $(CROSS)gcc -D__MUSL__ --sysroot $(INSTALL) -isystem $(INSTALL)/include -L$(INSTALL)/lib
CROSS_TOOLS_NOCC := AR="$(CROSS)ar" LD="$(CROSS)ld" STRIP="$(CROSS)strip" NM="$(CROSS)nm" \
	OBJCOPY="$(CROSS)objcopy" OBJDUMP="$(CROSS)objdump" PKG_CONFIG_PATH= \
	PKG_CONFIG_LIBDIR="$(INSTALL)/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$(INSTALL)"
CROSS_TOOLS := CC="$(heads_cc)" $(CROSS_TOOLS_NOCC)
include modules/*
define define_module =
  $(eval $1_base_dir = $(or $($1_base_dir),$($1_dir)))
  $(eval $1_module_file = $(or $($1_module_file),$1))
  $(eval $1_patch_version ?= $($1_version))
  $(eval $1_patch_name = $1-$($1_patch_version))
  $(eval $1_config_file_path := $(build)/$($1_dir)/$(or $($1_config_file),.config))
endef
$(foreach m,$(modules-y),$(eval $(call define_module,$m)))
"#;

/// The toolchain module: its download is nowhere (the prebuilt override
/// must make it unnecessary); `$(CROSS)` under crossgcc/ as in Heads.
const MUSL_CROSS_MAKE: &str = r#"modules-y += musl-cross-make
musl-cross-make_version := 1.0
musl-cross-make_dir := musl-cross-make-$(musl-cross-make_version)
musl-cross-make_tar := musl-cross-make-$(musl-cross-make_version).tar.gz
musl-cross-make_url := https://mirror.example.invalid/$(musl-cross-make_tar)
musl-cross-make_hash := 0000000000000000000000000000000000000000000000000000000000000000
CROSS_PATH ?= $(pwd)/crossgcc/$(CONFIG_TARGET_ARCH)
musl-cross-make_target := OUTPUT="$(CROSS_PATH)" $(MAKE_JOBS) install
CROSS := $(CROSS_PATH)/bin/$(MUSL_ARCH)-linux-musl-
musl-cross-make_output := $(CROSS)gcc
"#;

/// libgpg-error, configured for the musl target and installed into
/// `$(INSTALL)` as Heads's recipe does (the flags are Heads's).
const LIBGPG_ERROR: &str = r#"modules-$(CONFIG_GPG2) += libgpg-error
libgpg-error_version := 1.46
libgpg-error_dir := libgpg-error-$(libgpg-error_version)
libgpg-error_tar := libgpg-error-$(libgpg-error_version).tar.bz2
libgpg-error_url := https://mirror.example.invalid/gcrypt/$(libgpg-error_tar)
libgpg-error_hash := b7e11a64246bbe5ef37748de43b245abd72cfcd53c9ae5e7fc5ca59f1c81268d
libgpg-error_configure := $(CROSS_TOOLS) CFLAGS="-Os" ./configure \
	--host=$(MUSL_ARCH)-linux-musl --prefix "/" --disable-doc --disable-languages \
	--disable-nls --disable-static --disable-tests --enable-install-gpg-error-config
libgpg-error_target := $(MAKE_JOBS) DESTDIR="$(INSTALL)" $(CROSS_TOOLS) install
libgpg-error_libraries := src/.libs/libgpg-error.so.0
libgpg-error_depends := $(musl_dep)
"#;

/// libgcrypt: finds libgpg-error in `$(INSTALL)` too.
const LIBGCRYPT: &str = r#"modules-$(CONFIG_GPG2) += libgcrypt
libgcrypt_version := 1.10.1
libgcrypt_dir := libgcrypt-$(libgcrypt_version)
libgcrypt_tar := libgcrypt-$(libgcrypt_version).tar.bz2
libgcrypt_url := https://mirror.example.invalid/gcrypt/$(libgcrypt_tar)
libgcrypt_hash := ef14ae546b0084cd84259f61a55e07a38c3b53afc0f546bffcef2f01baffe9de
libgcrypt_configure := $(CROSS_TOOLS) CFLAGS="-Os" ./configure \
	--host=$(MUSL_ARCH)-linux-musl --prefix "/" --disable-doc --disable-static \
	--with-gpg-error-prefix="$(INSTALL)"
libgcrypt_target := $(MAKE_JOBS) DESTDIR="$(INSTALL)" $(CROSS_TOOLS) install
libgcrypt_libraries := src/.libs/libgcrypt.so.20
libgcrypt_depends := libgpg-error $(musl_dep)
"#;

/// libassuan: finds libgpg-error in `$(INSTALL)` (strata's sysroot copy).
const LIBASSUAN: &str = r#"modules-$(CONFIG_GPG2) += libassuan
libassuan_version := 2.5.5
libassuan_dir := libassuan-$(libassuan_version)
libassuan_tar := libassuan-$(libassuan_version).tar.bz2
libassuan_url := https://mirror.example.invalid/gcrypt/$(libassuan_tar)
libassuan_hash := 8e8c2fcc982f9ca67dcbb1d95e2dc746b1739a4668bc20b3a3c5be632edb34e4
libassuan_configure := CFLAGS="-Os" $(CROSS_TOOLS) ./configure \
	--host $(MUSL_ARCH)-linux-musl --prefix "/" --disable-doc --disable-static \
	--with-gpg-error-prefix="$(INSTALL)"
libassuan_target := $(MAKE_JOBS) DESTDIR="$(INSTALL)" $(CROSS_TOOLS) install
libassuan_libraries := src/.libs/libassuan.so.0
libassuan_depends := libgpg-error $(musl_dep)
"#;

/// libaio: no configure; Heads renames the versioned library after install.
const LIBAIO: &str = r#"modules-$(CONFIG_LVM2) += libaio
libaio_version := 0.3.113
libaio_dir := libaio-$(libaio_version)
libaio_tar := libaio_$(libaio_version).orig.tar.gz
libaio_url := https://mirror.example.invalid/libaio/$(libaio_tar)
libaio_hash := 2c44d1c5fd0d43752287c9ae1eb9c023f04ef848ea8d4aafa46e9aedb678200b
libaio_target := DESTDIR="$(INSTALL)" prefix="/" $(CROSS_TOOLS) install \
	&& mv $(build)/$(libaio_dir)/src/libaio.so.1.0.2 $(build)/$(libaio_dir)/src/libaio.so.1
libaio_libraries := src/libaio.so.1
libaio_depends := $(musl_dep)
"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where `.ci/run` leaves the tarballs (STRATA_HEADS_TARBALLS overrides).
fn tarball_dir() -> PathBuf {
    std::env::var_os("STRATA_HEADS_TARBALLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/heads-tarballs"))
}

/// Why the test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let dir = tarball_dir();
    for (file, pin) in TARBALLS {
        match std::fs::read(dir.join(file)) {
            Err(e) => {
                return Some(format!(
                    "{}: {e} (run scripts/heads-debian-tarballs.sh {})",
                    dir.join(file).display(),
                    dir.display()
                ));
            }
            Ok(bytes) if sha256(&bytes) != pin => {
                return Some(format!(
                    "{}: sha256 {} is not Heads's pin {pin}",
                    dir.join(file).display(),
                    sha256(&bytes)
                ));
            }
            Ok(_) => {}
        }
    }
    for tool in ["/usr/bin/musl-gcc", "/usr/include/linux/errno.h"] {
        if !Path::new(tool).exists() {
            return Some(format!(
                "{tool} is missing (apt-get install musl-tools linux-libc-dev)"
            ));
        }
    }
    None
}

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn strata(xdg: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("strata"));
    c.env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", xdg)
        .env("STRATA_SANDBOX", "require")
        .stdin(std::process::Stdio::null());
    c
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `readelf -d`'s NEEDED entries of a shared object.
fn needed(lib: &Path) -> Vec<String> {
    let out = Command::new("readelf").arg("-d").arg(lib).output().unwrap();
    assert!(
        out.status.success(),
        "readelf {}: {}",
        lib.display(),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1))
        .map(|s| s.trim_end_matches(']').to_string())
        .collect()
}

fn built_modules(events: &str) -> Vec<String> {
    let mut v: Vec<String> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "module-built")
        .map(|v| v["data"]["module"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn real_heads_modules_build_offline_in_the_sandbox_with_the_musl_standin() {
    if let Some(why) = missing_prerequisite() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI must provide the real tarballs and musl-tools (.ci/run): {why}");
        }
        eprintln!("skipped: real Heads modules need {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (heads, proj, xdg) = (
        tmp.path().join("heads"),
        tmp.path().join("proj"),
        tmp.path().join("xdg"),
    );
    write(&heads, "Makefile", MAKEFILE);
    write(&heads, "modules/musl-cross-make", MUSL_CROSS_MAKE);
    write(&heads, "modules/libgpg-error", LIBGPG_ERROR);
    write(&heads, "modules/libgcrypt", LIBGCRYPT);
    write(&heads, "modules/libassuan", LIBASSUAN);
    write(&heads, "modules/libaio", LIBAIO);
    write(
        &heads,
        "boards/gpg/gpg.config",
        "CONFIG_GPG2=y\nCONFIG_LVM2=y\n",
    );
    // The tarballs where a Heads checkout keeps them: packages/<arch>/.
    let mirror = heads.join("packages/x86");
    std::fs::create_dir_all(&mirror).unwrap();
    for (file, _) in TARBALLS {
        std::fs::copy(tarball_dir().join(file), mirror.join(file)).unwrap();
    }

    let import = strata(&xdg)
        .args(["import", "heads"])
        .arg(&heads)
        .arg("-o")
        .arg(&proj)
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", text(&import));

    let standin = tmp.path().join("musl-standin");
    let made = Command::new(repo().join("scripts/musl-standin.sh"))
        .arg(&standin)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    write(
        &proj,
        "strata.local.toml",
        format!(
            "[override.musl-cross-make]\nprebuilt = \"{}\"\n\n[mirrors]\nbefore = [\"file://{}/\"]\n",
            standin.display(),
            mirror.display()
        ),
    );

    let modules = ["libgpg-error", "libgcrypt", "libassuan", "libaio"];
    let build = strata(&xdg)
        .arg("-C")
        .arg(&proj)
        .args(["--json", "build", "--offline"])
        .args(modules)
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&build.stdout);
    assert!(build.status.success(), "{}", text(&build));
    assert_eq!(
        built_modules(&events),
        [
            "libaio",
            "libassuan",
            "libgcrypt",
            "libgpg-error",
            "musl-cross-make"
        ]
    );

    // Heads's configure ran for the musl target, with the stand-in compiler.
    let log = std::fs::read_to_string(
        proj.join("build/.strata/modules/libgpg-error-1.46/logs/configure.log"),
    )
    .unwrap();
    assert!(
        log.contains("checking host system type... x86_64-pc-linux-musl"),
        "{log}"
    );
    // The initrd libraries Heads's module files name, linked against musl
    // (soname libc.so, where glibc's is libc.so.6), libassuan against the
    // libgpg-error it found in its sysroot.
    let lib = proj.join("install/initrd/lib");
    assert_eq!(needed(&lib.join("libgpg-error.so.0")), ["libc.so"]);
    for l in ["libassuan.so.0", "libgcrypt.so.20"] {
        assert_eq!(
            needed(&lib.join(l)),
            ["libgpg-error.so.0", "libc.so"],
            "{l}"
        );
    }
    assert_eq!(needed(&lib.join("libaio.so.1")), ["libc.so"]);
    for f in [
        "include/gpg-error.h",
        "include/assuan.h",
        "include/gcrypt.h",
        "include/libaio.h",
        "lib/pkgconfig/gpg-error.pc",
        "lib/libassuan.so.0",
    ] {
        assert!(proj.join("install").join(f).exists(), "install/{f}");
    }
    // The toolchain is a host module: not in install/.
    assert!(!proj.join("install/bin/x86_64-linux-musl-gcc").exists());

    // Nothing changed: nothing runs again.
    let again = strata(&xdg)
        .arg("-C")
        .arg(&proj)
        .args(["--json", "build", "--offline"])
        .args(modules)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(built_modules(&again).is_empty(), "{again}");
}
