//! A Heads-shaped tree written for the import tests (not a copy of Heads's
//! files): a top-level Makefile, modules, boards, patches, a file:// mirror,
//! a git module and a musl-cross-make-shaped toolchain whose build fetches
//! its packages with curl from a 127.0.0.1 server unless `sources/` has
//! them, evaluated by the real GNU make. `crossgcc` adds a coreboot-shaped
//! module with a shared crossgcc toolchain.
#![allow(dead_code)]

pub mod crossgcc;
pub mod rom;

use super::common::{Reply, Server, sha256, tarball};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A Heads-shaped tree, its file:// mirror, and an output directory.
pub struct Heads {
    pub tmp: tempfile::TempDir,
    pub git_rev: String,
    /// Serves the toolchain's packages (musl-cross-make's `*_SITE`s) and,
    /// under `/mirror/`, `config.sub`.
    pub server: Server,
}

const GCC_SH: &str = "#!/bin/sh\nskip=\nfor a; do shift\n  if [ -n \"$skip\" ]; then skip=; continue; fi\n  if [ \"$a\" = --sysroot ]; then skip=1; continue; fi\n  set -- \"$@\" \"$a\"\ndone\nexec gcc \"$@\"\n";

/// The packages the fixture's musl-cross-make fetches: `(file, site path)`.
pub const MCM_PACKAGES: &[(&str, &str)] = &[
    ("gcc-3.0.tar.gz", "/gnu/gcc/gcc-3.0/"),
    ("binutils-2.0.tar.gz", "/gnu/binutils/"),
    ("musl-1.0.tar.gz", "/musl/"),
    ("gmp-6.0.tar.gz", "/gnu/gmp/"),
    ("mpc-1.1.tar.gz", "/gnu/mpc/"),
    ("mpfr-4.0.tar.gz", "/gnu/mpfr/"),
    ("linux-headers-4.19.tar.gz", "/headers/"),
];

/// A musl-cross-make-shaped Makefile (written for these tests): versions
/// and sites in variables, a `$(SOURCES)/%` rule that downloads a missing
/// tarball with curl and checks it against `hashes/<file>.sha1`, and an
/// install that reads every tarball. Its build downloads only when
/// `sources/` lacks a file.
fn mcm_makefile(site: &str) -> String {
    r#"SOURCES = sources
CONFIG_SUB_REV = 0a1b2c3d
BINUTILS_VER = 2.0
GCC_VER = 3.0
MUSL_VER = 1.0
GMP_VER = 6.0
MPC_VER = 1.1
MPFR_VER = 4.0
LINUX_VER = headers-4.19
GNU_SITE = @SITE@/gnu
GCC_SITE = $(GNU_SITE)/gcc
BINUTILS_SITE = $(GNU_SITE)/binutils
GMP_SITE = $(GNU_SITE)/gmp
MPC_SITE = $(GNU_SITE)/mpc
MPFR_SITE = $(GNU_SITE)/mpfr
MUSL_SITE = @SITE@/musl
LINUX_HEADERS_SITE = @SITE@/headers
DL_CMD = curl -fsS -o
PKGS = gcc-$(GCC_VER) binutils-$(BINUTILS_VER) musl-$(MUSL_VER) gmp-$(GMP_VER) \
TABmpc-$(MPC_VER) mpfr-$(MPFR_VER) linux-$(LINUX_VER)
SRCS = $(patsubst %,$(SOURCES)/%.tar.gz,$(PKGS))
$(SOURCES)/gcc-%: SITE = $(GCC_SITE)/$(basename $(basename $(notdir $@)))
$(SOURCES)/binutils-%: SITE = $(BINUTILS_SITE)
$(SOURCES)/musl-%: SITE = $(MUSL_SITE)
$(SOURCES)/gmp-%: SITE = $(GMP_SITE)
$(SOURCES)/mpc-%: SITE = $(MPC_SITE)
$(SOURCES)/mpfr-%: SITE = $(MPFR_SITE)
$(SOURCES)/linux-%: SITE = $(LINUX_HEADERS_SITE)
$(SOURCES)/config.sub:
TABmkdir -p $(SOURCES)
TAB$(DL_CMD) $@.tmp "@SITE@/config.sub?hb=$(CONFIG_SUB_REV)"
TABcd $(SOURCES) && mv config.sub.tmp config.sub && sha1sum -c $(CURDIR)/hashes/config.sub.$(CONFIG_SUB_REV).sha1
$(SOURCES)/%: hashes/%.sha1
TABmkdir -p $(SOURCES)
TAB$(DL_CMD) $@.tmp $(SITE)/$(notdir $@)
TABmv $@.tmp $@
TABcd $(SOURCES) && sha1sum -c $(CURDIR)/hashes/$(notdir $@).sha1
install: $(SRCS) $(SOURCES)/config.sub
TABfor f in $(SRCS); do tar -xzOf $$f > /dev/null; done
TABmkdir -p $(OUTPUT)/bin
TABcp -p gcc.sh $(OUTPUT)/bin/x86_64-linux-musl-gcc
"#
    .replace("TAB", "\t")
    .replace("@SITE@", site)
}

pub const MAKEFILE: &str = r#"# A small tree shaped like Heads's top-level Makefile.
all:
modules-y :=
pwd := $(shell pwd)
config := $(pwd)/config
build = $(pwd)/build/$(CONFIG_TARGET_ARCH)
packages = $(pwd)/packages/$(CONFIG_TARGET_ARCH)
INSTALL = $(pwd)/install/$(CONFIG_TARGET_ARCH)
CPUS ?= $(shell nproc)
MAKE_JOBS := -j$(CPUS) --load-average=$(CPUS)
BOARD ?= alpha
CONFIG := $(pwd)/boards/$(BOARD)/$(BOARD).config
ifneq "y" "$(shell [ -r '$(CONFIG)' ] && echo y)"
$(error $(CONFIG): board configuration does not exist)
endif
CONFIG_TARGET_ARCH := x86
include $(CONFIG)
MUSL_ARCH := x86_64
BUILD_LOG := $(shell mkdir -p "$(build)/log")
initrd_tmp_dir := $(shell mktemp -d)
modules-y += initrd
include modules/musl-cross-make
musl_dep := musl-cross-make
heads_cc := $(CROSS)gcc --sysroot $(INSTALL) -isystem $(INSTALL)/include -L$(INSTALL)/lib
CROSS_TOOLS := CC="$(heads_cc)" AR=ar
include modules/*
define define_module =
  $(eval $1_base_dir = $(or $($1_base_dir),$($1_dir)))
  $(eval $1_module_file = $(or $($1_module_file),$1))
  ifneq ("$($1_repo)","")
    $(eval $1_patch_name = $1$(if $($1_patch_version),-$($1_patch_version),))
  else
    $(eval $1_patch_version ?= $(if $(filter %-$($1_version),$1),,$($1_version)))
    $(eval $1_patch_name = $1$(if $($1_patch_version),-,)$($1_patch_version))
  endif
  $(eval $1_config_file_path := $(build)/$($1_dir)/$(or $($1_config_file),.config))
endef
define map =
$(foreach _,$2,$(eval $(call $1,$_)))
endef
$(call map, define_module, $(modules-y))
all:
	touch $(pwd)/THE-REAL-BUILD-RAN
"#;

pub fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Heads {
    pub fn new() -> Heads {
        let tmp = tempfile::tempdir().unwrap();
        let h = tmp.path().join("heads");
        let mirror = tmp.path().join("mirror");
        std::fs::create_dir_all(&mirror).unwrap();
        write(&h, "Makefile", MAKEFILE);

        // The toolchain: fetches its packages (unless sources/ has them),
        // then installs a compiler wrapper under $(CROSS_PATH).
        let server = Server::start();
        let site = server.url("");
        let sha1 = |b: &[u8]| {
            use sha1::Digest;
            hex::encode(sha1::Sha1::digest(b))
        };
        let mut hashes: Vec<(String, String)> = Vec::new();
        for (file, at) in MCM_PACKAGES {
            let stem = file.trim_end_matches(".tar.gz");
            let pkg = tarball(stem, &[("README", &format!("{stem}\n"))]);
            server.route(&format!("{at}{file}"), Reply::Ok(pkg.clone()));
            hashes.push((
                format!("hashes/{file}.sha1"),
                format!("{}  {file}\n", sha1(&pkg)),
            ));
        }
        let config_sub = b"#!/bin/sh\necho x86_64-pc-linux-gnu\n".to_vec();
        server.route("/config.sub?hb=0a1b2c3d", Reply::Ok(config_sub.clone()));
        server.route("/mirror/config.sub", Reply::Ok(config_sub.clone()));
        hashes.push((
            "hashes/config.sub.0a1b2c3d.sha1".to_string(),
            format!("{}  config.sub\n", sha1(&config_sub)),
        ));
        // A version musl-cross-make knows but this config does not use.
        hashes.push((
            "hashes/gcc-2.9.tar.gz.sha1".to_string(),
            format!("{}  gcc-2.9.tar.gz\n", "0".repeat(40)),
        ));
        let makefile = mcm_makefile(&site);
        let mut files: Vec<(&str, &str)> = hashes
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        files.push(("Makefile", &makefile));
        // The host compiler, minus --sysroot (the sysroot holds no libc).
        files.push(("gcc.sh", GCC_SH));
        let tc = tarball("musl-cross-make-1.0", &files);
        std::fs::write(mirror.join("musl-cross-make-1.0.tar.gz"), &tc).unwrap();
        write(
            &h,
            "modules/musl-cross-make",
            format!(
                "CONFIG_MUSL ?= y\nmodules-$(CONFIG_MUSL) += musl-cross-make\n\
                 musl-cross-make_version := 1.0\n\
                 musl-cross-make_dir := musl-cross-make-$(musl-cross-make_version)\n\
                 musl-cross-make_tar := musl-cross-make-$(musl-cross-make_version).tar.gz\n\
                 musl-cross-make_url := file://{}/$(musl-cross-make_tar)\n\
                 musl-cross-make_hash := {}\n\
                 CROSS_PATH ?= $(pwd)/crossgcc/$(CONFIG_TARGET_ARCH)\n\
                 musl-cross-make_target := OUTPUT=\"$(CROSS_PATH)\" $(MAKE_JOBS) install\n\
                 CROSS := $(CROSS_PATH)/bin/$(subst -,_,$(MUSL_ARCH))-linux-musl-\n\
                 musl-cross-make_output := $(CROSS)gcc\n",
                mirror.display(),
                sha256(&tc)
            ),
        );

        // A plain tarball module with a patch directory.
        let greet = tarball(
            "greet-1.0",
            &[
                ("greet.c", "const char *greet(void) { return \"hello\"; }\n"),
                ("greet.h", "const char *greet(void);\n"),
                (
                    "Makefile",
                    "install:\n\t$(CC) -c greet.c -o greet.o\n\t$(AR) rcs libgreet.a greet.o\n\tmkdir -p $(DESTDIR)/lib $(DESTDIR)/include\n\tcp libgreet.a $(DESTDIR)/lib/\n\tcp greet.h $(DESTDIR)/include/\n",
                ),
            ],
        );
        std::fs::write(mirror.join("greet-1.0.tar.gz"), &greet).unwrap();
        write(
            &h,
            "modules/greet",
            format!(
                "modules-y += greet\ngreet_version := 1.0\ngreet_dir := greet-$(greet_version)\n\
                 greet_tar := greet-$(greet_version).tar.gz\ngreet_url := file://{}/$(greet_tar)\n\
                 greet_hash := {}\n\
                 greet_target := $(MAKE_JOBS) $(CROSS_TOOLS) DESTDIR=\"$(INSTALL)\" install\n\
                 greet_libraries := libgreet.a\ngreet_depends := $(musl_dep)\n",
                mirror.display(),
                sha256(&greet)
            ),
        );
        write(
            &h,
            "patches/greet-1.0/0001-louder.patch",
            "--- a/greet.c\n+++ b/greet.c\n@@ -1 +1 @@\n-const char *greet(void) { return \"hello\"; }\n+const char *greet(void) { return \"HELLO\"; }\n",
        );

        // Modules defined through define … $(eval $(call …)).
        let mut blob_hashes = String::new();
        for v in ["1.0", "2.0"] {
            let b = tarball(
                &format!("blob-{v}"),
                &[("Makefile", &format!("all:\n\techo blob {v} > blob.bin\n"))],
            );
            std::fs::write(mirror.join(format!("blob-{v}.tar.gz")), &b).unwrap();
            blob_hashes.push_str(&format!(
                "blob-{v}_hash := {}\n$(eval $(call blob_module,{v}))\n",
                sha256(&b)
            ));
        }
        write(
            &h,
            "modules/blob",
            format!(
                "define blob_module =\n\tblob-$(1)_version := $(1)\n\tblob-$(1)_module_file := blob\n\
                 \tblob-$(1)_dir := blob-$(1)\n\tblob-$(1)_tar := blob-$(1).tar.gz\n\
                 \tblob-$(1)_url := file://{}/blob-$(1).tar.gz\n\tblob-$(1)_output := blob.bin\n\
                 \tblob-$(1)_depends := $(musl_dep)\nendef\n{blob_hashes}\
                 modules-y += blob-$(CONFIG_BLOB_VERSION)\n",
                mirror.display()
            ),
        );

        // A git module pinned by commit, over file://.
        let repo = tmp.path().join("tool-src");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        write(&repo, "Makefile", "all:\n\techo tool > tool.out\n");
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "tool"]);
        let git_rev = git(&repo, &["rev-parse", "HEAD"]);
        let bare = tmp.path().join("tool.git");
        git(
            tmp.path(),
            &[
                "clone",
                "-q",
                "--bare",
                repo.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        write(
            &h,
            "modules/tool",
            format!(
                "modules-y += tool\ntool_repo := file://{}\ntool_commit_hash := {git_rev}\n\
                 tool_version := git\ntool_dir := tool-git\ntool_output := tool.out\n\
                 tool_depends := $(musl_dep)\n",
                bare.display()
            ),
        );

        // A module whose variables depend on a CONFIG_… switch, and reads a dependency.
        let app = tarball(
            "app-1.0",
            &[
                (
                    "app.c",
                    "#include <stdio.h>\n#include <greet.h>\nint main(void){puts(greet());return LOUD;}\n",
                ),
                (
                    "Makefile",
                    "app:\n\t$(CC) -DLOUD=$(LOUD) app.c -lgreet -o app\n",
                ),
            ],
        );
        std::fs::write(mirror.join("app-1.0.tar.gz"), &app).unwrap();
        write(
            &h,
            "modules/app",
            format!(
                "modules-$(CONFIG_APP) += app\napp_version := 1.0\napp_dir := app-1.0\n\
                 app_tar := app-1.0.tar.gz\napp_url := file://{}/app-1.0.tar.gz\napp_hash := {}\n\
                 ifeq \"$(CONFIG_APP_LOUD)\" \"y\"\napp_loud := 1\nelse\napp_loud := 0\nendif\n\
                 app_target := $(CROSS_TOOLS) LOUD=$(app_loud)\napp_output := app\n\
                 app_depends := greet $(musl_dep)\n",
                mirror.display(),
                sha256(&app)
            ),
        );

        // The board variant: built once per board config file.
        let kernel = tarball(
            "kernel-1.0",
            &[("Makefile", "image: .config\n\tcat .config > image\n")],
        );
        std::fs::write(mirror.join("kernel-1.0.tar.gz"), &kernel).unwrap();
        write(
            &h,
            "modules/kernel",
            format!(
                "modules-y += kernel\nkernel_version := 1.0\nkernel_dir := kernel-1.0\n\
                 kernel_tar := kernel-1.0.tar.gz\nkernel_url := file://{}/kernel-1.0.tar.gz\nkernel_hash := {}\n\
                 kernel_config := $(pwd)/$(CONFIG_KERNEL_CONFIG)\nkernel_target := image\n\
                 kernel_configure := $(pwd)/bin/prep.sh > prepared\n\
                 kernel_output := image\nkernel_depends := $(musl_dep)\n",
                mirror.display(),
                sha256(&kernel)
            ),
        );
        write(&h, "bin/prep.sh", "#!/bin/sh\necho prepared\n");
        let script = h.join("bin/prep.sh");
        let mut perm = std::fs::metadata(&script).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&script, perm).unwrap();
        write(&h, "config/kernel-alpha.config", "CONFIG_ALPHA=y\n");
        write(&h, "config/kernel-beta.config", "CONFIG_BETA=y\n");
        for b in ["alpha", "beta"] {
            write(
                &h,
                &format!("boards/{b}/{b}.config"),
                format!(
                    "CONFIG_APP=y\nCONFIG_APP_LOUD=y\nCONFIG_BLOB_VERSION=1.0\n\
                     CONFIG_KERNEL_CONFIG=config/kernel-{b}.config\n"
                ),
            );
        }
        write(
            &h,
            "boards/gamma/gamma.config",
            "CONFIG_KERNEL_CONFIG=config/kernel-alpha.config\n$(error gamma needs a vendor blob that is not here)\n",
        );
        Heads {
            tmp,
            git_rev,
            server,
        }
    }

    pub fn heads(&self) -> PathBuf {
        self.tmp.path().join("heads")
    }

    pub fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.out().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn import(&self, extra: &[&str]) -> std::process::Output {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("strata"));
        c.arg("import")
            .arg("heads")
            .arg(self.heads())
            .arg("-o")
            .arg(self.out())
            .args(extra)
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", self.tmp.path().join(".xdg-cache"))
            .stdin(std::process::Stdio::null());
        let o = c.output().unwrap();
        // The user's mirror, as for a Heads checkout behind a firewall:
        // musl-cross-make's config.sub URL (savannah) is not served here.
        // A re-import keeps the table.
        let toml = self.out().join("strata.toml");
        if let Ok(t) = std::fs::read_to_string(&toml)
            && !t.contains("[mirrors]")
            && !extra.contains(&"--check")
        {
            // As a re-import writes it back, so the next import changes nothing.
            let mirror = format!(
                "\n\n# Kept from the previous strata.toml: tables the import does not generate.\n\
                 [mirrors]\nbefore = [\"{}\"]\n",
                self.server.url("/mirror/")
            );
            std::fs::write(&toml, format!("{}{mirror}", t.trim_end())).unwrap();
        }
        o
    }

    /// `strata -C OUT ARGS` with the test's cache.
    pub fn strata(&self, args: &[&str]) -> std::process::Output {
        Command::new(assert_cmd::cargo::cargo_bin("strata"))
            .arg("-C")
            .arg(self.out())
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", self.tmp.path().join(".xdg-cache"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
