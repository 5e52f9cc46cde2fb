//! `strata import heads` + `strata build BOARD` against GNU make building the
//! same Heads-shaped tree (tests/heads_fixture/rom.rs): the ROM,
//! `initrd.cpio.xz` and `hashes.txt` must be byte-identical, and after a
//! change to an initrd script, a board config and a module patch strata
//! rebuilds the pieces make rebuilds and the outputs stay identical.

mod common;
mod heads_fixture;

use heads_fixture::rom;
use heads_fixture::text;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Rom {
    _tmp: tempfile::TempDir,
    heads: PathBuf,
    out: PathBuf,
    cache: PathBuf,
}

impl Rom {
    fn new() -> Rom {
        let tmp = tempfile::tempdir().unwrap();
        let heads = rom::write_tree(tmp.path());
        let out = tmp.path().join("out");
        let cache = tmp.path().join(".xdg-cache");
        Rom {
            heads,
            out,
            cache,
            _tmp: tmp,
        }
    }

    fn strata(&self, args: &[&str]) -> std::process::Output {
        Command::new(assert_cmd::cargo::cargo_bin("strata"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", &self.cache)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    fn import(&self) -> std::process::Output {
        let (h, o) = (self.heads.to_str().unwrap(), self.out.to_str().unwrap());
        let out = self.strata(&["import", "heads", h, "-o", o, "--json"]);
        if out.status.success() {
            let root = self.heads.parent().unwrap();
            std::fs::write(self.out.join("strata.local.toml"), rom::local_toml(root)).unwrap();
        }
        out
    }

    /// `strata build rom1 --json`: the modules whose steps ran.
    fn build(&self) -> Vec<String> {
        self.build_board("rom1")
    }

    /// `strata build <board> --json`: the modules whose steps ran.
    fn build_board(&self, board: &str) -> Vec<String> {
        let o = self.strata(&["-C", self.out.to_str().unwrap(), "build", board, "--json"]);
        assert!(o.status.success(), "strata build: {}", text(&o));
        let mut ran: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "step-finished")
            .filter_map(|v| {
                v["data"]["module"]
                    .as_str()
                    .map(|m| m.split('@').next().unwrap().to_string())
            })
            .collect();
        ran.sort();
        ran.dedup();
        ran
    }

    /// make's and strata's copies of one output.
    fn pair(&self, file: &str) -> (Vec<u8>, Vec<u8>) {
        let made = self.heads.join("build/x86/rom1").join(file);
        let built = self.out.join("install/rom1").join(file);
        (
            std::fs::read(&made).unwrap_or_else(|e| panic!("{}: {e}", made.display())),
            std::fs::read(&built).unwrap_or_else(|e| panic!("{}: {e}", built.display())),
        )
    }

    /// The ROM, initrd.cpio.xz and bzImage byte-identical; hashes.txt and
    /// sizes.txt too after a clean build. After an incremental make, Heads's
    /// lists only the pieces that run rebuilt (it starts them afresh at every
    /// parse), so each of its lines must be one of strata's.
    fn assert_identical(&self, clean: bool) {
        for f in ["hashes.txt", "sizes.txt"].iter().filter(|_| !clean) {
            let (made, built) = self.pair(f);
            let built = String::from_utf8_lossy(&built);
            for l in String::from_utf8_lossy(&made).lines() {
                assert!(
                    built.lines().any(|b| b == l),
                    "{f}: `{l}` not in strata's:\n{built}"
                );
            }
        }
        let texts: &[&str] = if clean {
            &["hashes.txt", "sizes.txt"]
        } else {
            &[]
        };
        for f in [rom::ROM_FILE, "initrd.cpio.xz", "bzImage"]
            .iter()
            .chain(texts)
        {
            let (made, built) = self.pair(f);
            if f.ends_with(".txt") {
                assert_eq!(
                    String::from_utf8_lossy(&built),
                    String::from_utf8_lossy(&made),
                    "{f} differs"
                );
            }
            assert!(
                made == built,
                "{f} differs ({} vs {} bytes)",
                made.len(),
                built.len()
            );
        }
    }
}

fn has_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn edit(path: &Path, from: &str, to: &str) {
    let t = std::fs::read_to_string(path).unwrap();
    assert!(t.contains(from), "{}: no `{from}`", path.display());
    std::fs::write(path, t.replace(from, to)).unwrap();
}

#[test]
fn strata_builds_the_rom_make_builds_byte_for_byte_and_rebuilds_what_make_rebuilds() {
    let r = Rom::new();
    // Import before make runs: the import never writes into the tree.
    let o = r.import();
    assert!(o.status.success(), "import: {}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let install: Vec<&str> = v["data"]["boards"]["rom1"]["install"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for f in [rom::ROM_FILE, "initrd.cpio.xz", "hashes.txt", "bzImage"] {
        assert!(
            install.contains(&format!("rom1/{f}").as_str()),
            "{install:?}"
        );
    }
    // A re-import of the unchanged tree changes nothing (the board's
    // etc/config, names and paths are deterministic).
    let (h, o) = (r.heads.to_str().unwrap(), r.out.to_str().unwrap());
    let check = r.strata(&["import", "heads", h, "-o", o, "--check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    rom::make_build(&r.heads);
    let first = r.build();
    for m in [
        "initrd",
        "rom",
        "coreboot-1.0",
        "coreboot-1.0-cbmem",
        "linux",
        "hello",
        "libdemo",
    ] {
        assert!(first.iter().any(|x| x == m), "{m} did not build: {first:?}");
    }
    r.assert_identical(true);
    // The bootsplash and the flash descriptor the coreboot config names
    // are in the ROM, by Heads's relative paths.
    let (_, built) = r.pair(rom::ROM_FILE);
    for b in [rom::BOOTSPLASH, rom::IFD] {
        assert!(has_bytes(&built, b.as_bytes()), "the ROM lacks {b}");
    }
    for p in [
        "CONFIG_BOOTSPLASH_FILE=\"../../../branding/Heads/bootsplash.jpg\"",
        "CONFIG_IFD_BIN_PATH=\"../../../blobs/xx30/ifd.bin\"",
    ] {
        assert!(
            has_bytes(&built, p.as_bytes()),
            "the ROM's config lacks {p}"
        );
    }
    // The kernel config's `@BLOB_DIR@/dev.cpio`: Heads's relative path,
    // and the blob, are in the kernel image.
    let (_, image) = r.pair("bzImage");
    assert!(has_bytes(
        &image,
        b"CONFIG_INITRAMFS_SOURCE=\"../../../blobs/dev.cpio\""
    ));
    let dev = std::fs::read(r.heads.join("blobs/dev.cpio")).unwrap();
    assert!(has_bytes(&image, &dev), "the kernel lacks blobs/dev.cpio");
    for f in &install {
        assert!(
            r.out.join("install").join(f).is_file(),
            "{f} not in install/"
        );
    }

    // An initrd script: make rebuilds heads.cpio, the initrd, coreboot, the ROM.
    edit(
        &r.heads.join("initrd/init"),
        "exec /bin/hello",
        "exec /bin/hello --again",
    );
    rom::make_build(&r.heads);
    assert_eq!(r.build(), ["coreboot-1.0", "initrd", "rom"]);
    r.assert_identical(false);

    // A module patch: hello again, then everything after it.
    edit(
        &r.heads.join("patches/hello-1.0/0001-greeting.patch"),
        "hello, rom",
        "hello, ROM",
    );
    let o = r.import();
    assert!(o.status.success(), "import: {}", text(&o));
    rom::make_build_clean_module(&r.heads, "hello-1.0");
    rom::make_build(&r.heads);
    assert_eq!(r.build(), ["coreboot-1.0", "hello", "initrd", "rom"]);
    r.assert_identical(false);

    // The kernel's uapi header (through its patch): Heads installs it into
    // install/x86 before the toolchain's build, and every module built with
    // the toolchain after it; busybox prints its #define. strata rebuilds
    // the headers module and the modules depending on it.
    let tools = r.out.join("install/rom1/tools.cpio");
    let has = |p: &Path, s: &str| {
        let b = std::fs::read(p).unwrap();
        b.windows(s.len()).any(|w| w == s.as_bytes())
    };
    assert!(has(&tools, "busybox on patched headers"));
    edit(
        &r.heads.join("patches/linux-1.0/0001-banner.patch"),
        "on patched headers",
        "on changed headers",
    );
    rom::make_build_clean_module(&r.heads, "linux-1.0");
    rom::make_build(&r.heads);
    assert_eq!(
        r.build(),
        [
            "busybox",
            "coreboot-1.0",
            "coreboot-1.0-cbmem",
            "hello",
            "initrd",
            "libdemo",
            "linux",
            "linux-headers",
            "rom"
        ]
    );
    assert!(has(&tools, "busybox on changed headers"));
    r.assert_identical(false);

    // A board config: coreboot's config changes the ROM, not the initrd's tools.
    edit(
        &r.heads.join("config/coreboot-rom1.config"),
        "CONFIG_VENDOR_FIXTURE=y",
        "CONFIG_VENDOR_FIXTURE=y\nCONFIG_EXTRA=y",
    );
    rom::make_build(&r.heads);
    assert_eq!(r.build(), ["coreboot-1.0", "rom"]);
    r.assert_identical(false);

    // The bootsplash the coreboot config names (`@BRAND_DIR@/…`): a param
    // of coreboot, so strata rebuilds coreboot and the ROM. Heads's make
    // does not track it (coreboot's `.build` waits only for the kernel and
    // the initrd): a Heads user removes coreboot's `.build` stamp, as here.
    edit(
        &r.heads.join("branding/Heads/bootsplash.jpg"),
        "JPEG v1",
        "JPEG v2",
    );
    std::fs::remove_file(r.heads.join("build/x86/coreboot-1.0/rom1/.build")).unwrap();
    rom::make_build(&r.heads);
    assert_eq!(r.build(), ["coreboot-1.0", "rom"]);
    r.assert_identical(false);
    let (_, built) = r.pair(rom::ROM_FILE);
    let splash = rom::BOOTSPLASH.replace("v1", "v2");
    assert!(has_bytes(&built, splash.as_bytes()), "the new bootsplash");

    // Each piece rebuilt from its cached dependencies gives the same artifact.
    let o = r.strata(&["-C", r.out.to_str().unwrap(), "build", "--check", "rom1"]);
    assert!(o.status.success(), "build --check: {}", text(&o));
}

#[test]
fn two_boards_share_the_image_modules_and_each_matches_make() {
    let r = Rom::new();
    let o = r.import();
    assert!(o.status.success(), "import: {}", text(&o));
    // The same modules on both boards: one initrd, one coreboot, one rom,
    // each with an instance per board.
    for m in ["initrd", "rom", "coreboot-1.0", "linux"] {
        assert!(r.out.join(format!("modules/{m}.toml")).is_file(), "{m}");
        assert!(
            !r.out.join(format!("modules/{m}+rom2.toml")).exists(),
            "{m}+rom2"
        );
    }
    for b in ["rom1", "rom2"] {
        rom::make_board(&r.heads, b);
    }
    let o = r.strata(&["-C", r.out.to_str().unwrap(), "build", "rom1", "rom2"]);
    assert!(o.status.success(), "strata build: {}", text(&o));
    for b in ["rom1", "rom2"] {
        let rom_file = rom::ROM_FILE.replace("rom1", b);
        for f in [rom_file.as_str(), "initrd.cpio.xz", "bzImage", "hashes.txt"] {
            let made = std::fs::read(r.heads.join("build/x86").join(b).join(f)).unwrap();
            // Two targets: each in install/<target>/.
            let built = std::fs::read(r.out.join("install").join(b).join(b).join(f)).unwrap();
            assert!(made == built, "{b}: {f} differs");
        }
    }
    let rom1 = std::fs::read(r.heads.join("build/x86/rom1").join(rom::ROM_FILE)).unwrap();
    let rom2 = std::fs::read(
        r.heads
            .join("build/x86/rom2")
            .join(rom::ROM_FILE.replace("rom1", "rom2")),
    )
    .unwrap();
    assert_ne!(rom1, rom2, "the boards' ROMs should differ");
}

#[test]
fn a_board_with_an_embedded_controller_matches_make() {
    let r = Rom::new();
    let o = r.import();
    assert!(o.status.success(), "import: {}", text(&o));
    // The EC module file's three rules are translated, none reported.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mods = v["data"]["modules"].as_object().unwrap();
    let ec: Vec<(&String, &serde_json::Value)> = mods
        .iter()
        .filter(|(_, m)| m["module_file"] == "dasharo-ec")
        .collect();
    assert!(!ec.is_empty(), "no EC module: {:?}", mods.keys());
    for (n, m) in &ec {
        assert_eq!(m["not_translated"], serde_json::json!([]), "{n}: {m}");
    }
    rom::make_board(&r.heads, "rom3");
    let o = r.strata(&["-C", r.out.to_str().unwrap(), "build", "rom3"]);
    assert!(o.status.success(), "strata build: {}", text(&o));
    let rom_file = rom::ROM_FILE.replace("rom1", "rom3");
    for f in [rom_file.as_str(), "initrd.cpio.xz", "bzImage", "hashes.txt"] {
        let made = std::fs::read(r.heads.join("build/x86/rom3").join(f)).unwrap();
        let built = std::fs::read(r.out.join("install/rom3").join(f)).unwrap();
        assert!(
            made == built,
            "rom3: {f} differs ({} vs {} bytes)",
            made.len(),
            built.len()
        );
    }
    // The ROM holds make's padded EC image, whole.
    let ec_rom = std::fs::read(r.heads.join("build/x86/dasharo-ec-1.0-rom3/ec.rom")).unwrap();
    assert_eq!(ec_rom.len(), 128 * 1024);
    assert!(ec_rom.starts_with(b"EC FIRMWARE vendor/model3\n"));
    let rom = std::fs::read(r.heads.join("build/x86/rom3").join(&rom_file)).unwrap();
    assert!(
        rom.windows(ec_rom.len()).any(|w| w == ec_rom.as_slice()),
        "the ROM does not hold the EC image"
    );
}

#[test]
fn a_board_bundling_its_initrd_into_the_kernel_matches_make() {
    let r = Rom::new();
    let o = r.import();
    assert!(o.status.success(), "import: {}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let install = v["data"]["boards"]["rom4"]["install"].to_string();
    assert!(install.contains("\"rom4/bzImage.bundled\""), "{install}");
    // linux's bundled-image and headers rules are translated, and the toolchain's hook.
    for (n, m) in v["data"]["modules"].as_object().unwrap() {
        let notes = m["not_translated"].to_string();
        for rule in [".bundled`", "limits.h`", "_dir)/.build`", ".configured`"] {
            assert!(!notes.contains(rule), "{n}: {notes}");
        }
    }
    rom::make_board(&r.heads, "rom4");
    let ran = r.build_board("rom4");
    assert!(ran.iter().any(|m| m == "linux-bundled"), "{ran:?}");
    let rom_file = rom::ROM_FILE.replace("rom1", "rom4");
    let same = |files: &[&str]| {
        for f in files {
            let made = std::fs::read(r.heads.join("build/x86/rom4").join(f)).unwrap();
            let built = std::fs::read(r.out.join("install/rom4").join(f)).unwrap();
            assert!(
                made == built,
                "rom4: {f} differs ({} vs {} bytes)",
                made.len(),
                built.len()
            );
        }
    };
    same(&[
        rom_file.as_str(),
        "initrd.cpio.xz",
        "bzImage",
        "bzImage.bundled",
        "hashes.txt",
        "sizes.txt",
    ]);
    // The bundled kernel holds the initrd, the first one Heads's empty cpio.
    let bundled = std::fs::read(r.out.join("install/rom4/bzImage.bundled")).unwrap();
    let image = std::fs::read(r.out.join("install/rom4/bzImage")).unwrap();
    let hello = b"hello, rom";
    assert!(bundled.windows(hello.len()).any(|w| w == hello));
    assert!(!image.windows(hello.len()).any(|w| w == hello));
    let cfg = b"CONFIG_INITRAMFS_SOURCE=\"../../rom4/initrd.cpio\"";
    assert!(
        bundled.windows(cfg.len()).any(|w| w == cfg),
        "Heads's relative path"
    );

    // An initrd script: make rebuilds the bundled image incrementally in its
    // object tree, strata from a clean tree; the bytes are the same.
    edit(
        &r.heads.join("initrd/init"),
        "exec /bin/hello",
        "exec /bin/hello --bundled",
    );
    rom::make_board(&r.heads, "rom4");
    let ran = r.build_board("rom4");
    assert!(ran.iter().any(|m| m == "linux-bundled"), "{ran:?}");
    assert!(
        !ran.iter().any(|m| m.starts_with("linux+") || m == "linux"),
        "{ran:?}"
    );
    same(&[
        rom_file.as_str(),
        "initrd.cpio.xz",
        "bzImage",
        "bzImage.bundled",
    ]);
    let bundled = std::fs::read(r.out.join("install/rom4/bzImage.bundled")).unwrap();
    let again = b"--bundled";
    assert!(bundled.windows(again.len()).any(|w| w == again));
    // Each piece rebuilt from its cached dependencies gives the same artifact.
    let o = r.strata(&["-C", r.out.to_str().unwrap(), "build", "--check", "rom4"]);
    assert!(o.status.success(), "build --check: {}", text(&o));
}

#[test]
fn a_blob_neither_in_the_tree_nor_made_stops_coreboot_naming_the_script_that_makes_it() {
    let r = Rom::new();
    edit(
        &r.heads.join("config/coreboot-rom1.config"),
        "CONFIG_VENDOR_FIXTURE=y",
        "CONFIG_VENDOR_FIXTURE=y\nCONFIG_VGA_BIOS_FILE=\"@BLOB_DIR@/xx30/vga.rom\"",
    );
    let o = r.import();
    assert!(o.status.success(), "import: {}", text(&o));
    let o = r.strata(&["-C", r.out.to_str().unwrap(), "build", "rom1"]);
    assert!(!o.status.success(), "built without vga.rom");
    let err = text(&o);
    for want in [
        "board rom1",
        "its config coreboot-rom1.config names blobs/xx30/vga.rom",
        "blobs/xx30/vbios_fixture.sh",
    ] {
        assert!(err.contains(want), "no `{want}` in: {err}");
    }
    // Made by the tree's script (as a Heads user does), the build goes on:
    // the blobs dir is a param, so no re-import is needed.
    let s = Command::new("sh")
        .arg(r.heads.join("blobs/xx30/vbios_fixture.sh"))
        .status()
        .unwrap();
    assert!(s.success());
    let o = r.strata(&["-C", r.out.to_str().unwrap(), "build", "rom1"]);
    assert!(o.status.success(), "strata build: {}", text(&o));
    let rom = std::fs::read(r.out.join("install/rom1").join(rom::ROM_FILE)).unwrap();
    assert!(has_bytes(
        &rom,
        b"CONFIG_VGA_BIOS_FILE=\"../../../blobs/xx30/vga.rom\""
    ));
}

/// make's and strata's copies of `files` of `board` are byte-identical
/// (`hashes.txt`, `sizes.txt` compared as text).
fn same_as_make(r: &Rom, board: &str, files: &[String]) {
    for f in files {
        let made = std::fs::read(r.heads.join("build/x86").join(board).join(f)).unwrap();
        let built = std::fs::read(r.out.join("install").join(board).join(f)).unwrap();
        if f.ends_with(".txt") {
            assert_eq!(
                String::from_utf8_lossy(&built),
                String::from_utf8_lossy(&made),
                "{board}: {f} differs"
            );
        }
        assert!(made == built, "{board}: {f} differs");
    }
}

/// The board's install list in `import heads --json`.
fn install_list(o: &std::process::Output, board: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["data"]["boards"][board]["install"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_board_split_over_two_flash_chips_gets_both_halves_hashed_as_make_does() {
    let r = Rom::new();
    let o = r.import();
    assert!(o.status.success(), "import: {}", text(&o));
    let rom_file = rom::ROM_FILE.replace("rom1", "rom5");
    let (bottom, top) = (
        "heads-rom5-strata-import-bottom.rom".to_string(),
        "heads-rom5-strata-import-top.rom".to_string(),
    );
    let install = install_list(&o, "rom5");
    for f in [&rom_file, &bottom, &top] {
        assert!(install.contains(&format!("rom5/{f}")), "{install:?}");
    }
    rom::make_board(&r.heads, "rom5");
    let ran = r.build_board("rom5");
    assert!(ran.iter().any(|m| m.starts_with("rom")), "{ran:?}");
    let files = [
        &rom_file,
        &bottom,
        &top,
        "initrd.cpio.xz",
        "hashes.txt",
        "sizes.txt",
    ];
    same_as_make(&r, "rom5", &files.map(|f| f.to_string()));
    // The halves are the ROM's first 8 MiB and the next 4 MiB (its top,
    // with the reset vector); hashes.txt ends with them, then the ROM
    // (make's order: `all`'s recipe hashes the ROM last).
    let dir = r.out.join("install/rom5");
    let whole = std::fs::read(dir.join(&rom_file)).unwrap();
    assert_eq!(whole.len(), 12 << 20);
    assert_eq!(std::fs::read(dir.join(&bottom)).unwrap(), whole[..8 << 20]);
    assert_eq!(std::fs::read(dir.join(&top)).unwrap(), whole[8 << 20..]);
    assert!(whole.ends_with(b"RESET-VECTOR-TOP"));
    let hashes = std::fs::read_to_string(dir.join("hashes.txt")).unwrap();
    let last: Vec<&str> = hashes.lines().rev().take(3).collect();
    for (l, f) in last.iter().zip([&rom_file, &top, &bottom]) {
        assert!(l.ends_with(&format!("/{f}")), "{hashes}");
    }
}

#[test]
fn a_blob_a_target_copies_into_the_board_dir_is_installed_as_make_leaves_it() {
    let r = Rom::new();
    rom::add_blob_board(&r.heads);
    let o = r.import();
    assert!(o.status.success(), "import: {}", text(&o));
    let install = install_list(&o, "rom6");
    assert!(
        install.contains(&"rom6/xy_tb.bin".to_string()),
        "{install:?}"
    );
    rom::make_board(&r.heads, "rom6");
    let ran = r.build_board("rom6");
    assert!(
        ran.iter().any(|m| m.starts_with("blobs-xy")),
        "the blob module ran: {ran:?}"
    );
    let rom_file = rom::ROM_FILE.replace("rom1", "rom6");
    let files = [
        rom_file.as_str(),
        "xy_tb.bin",
        "initrd.cpio.xz",
        "hashes.txt",
    ];
    same_as_make(&r, "rom6", &files.map(|f| f.to_string()));
    assert_eq!(
        std::fs::read(r.out.join("install/rom6/xy_tb.bin")).unwrap(),
        b"THUNDERBOLT-FIXTURE\n"
    );
}

#[test]
fn a_talos_shaped_board_gets_heads_package_and_its_hashes_end_as_makes() {
    let r = Rom::new();
    let o = r.import();
    assert!(o.status.success(), "import: {}", text(&o));
    let b = "talos-2";
    let rom_file = rom::ROM_FILE.replace("rom1", b);
    let copy = "heads-talos-2-strata-import-bzImage.bundled".to_string();
    let tgz = "heads-talos-2-strata-import.tgz".to_string();
    let install = install_list(&o, b);
    for f in [&rom_file, &copy, &tgz] {
        assert!(install.contains(&format!("{b}/{f}")), "{install:?}");
    }
    assert!(!install.iter().any(|f| f.ends_with(".zip")), "{install:?}");
    rom::make_board(&r.heads, b);
    let o = r.strata(&["-C", r.out.to_str().unwrap(), "build", b]);
    assert!(o.status.success(), "strata build: {}", text(&o));
    let bootblock = rom::ROM_FILE
        .replace("rom1", b)
        .replace(".rom", ".bootblock");
    let files = [
        &rom_file,
        &copy,
        &bootblock,
        "bzImage.bundled",
        "hashes.txt",
        "sizes.txt",
    ];
    same_as_make(&r, b, &files.map(|f| f.to_string()));
    // `all` hashes its first prerequisite: the bundled kernel's copy.
    let hashes = std::fs::read_to_string(r.out.join("install").join(b).join("hashes.txt")).unwrap();
    assert!(
        hashes
            .lines()
            .last()
            .unwrap()
            .ends_with(&format!("/{copy}")),
        "{hashes}"
    );
    assert!(!hashes.contains(&rom_file), "{hashes}");
    // The package: the same members, in the same order, with the same bytes
    // (tar's and gzip's metadata are strata's own, fixed).
    let members = |p: &Path| -> Vec<(String, Vec<u8>)> {
        let f = std::fs::File::open(p).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut body).unwrap();
                (name, body)
            })
            .collect()
    };
    let made = members(&r.heads.join("build/x86").join(b).join(&tgz));
    let built = members(&r.out.join("install").join(b).join(&tgz));
    let names: Vec<&str> = built.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [bootblock.as_str(), &rom_file, &copy, "sha256sum.txt"]
    );
    assert!(made == built, "the package's members differ");
    // Built twice, the package is the same bytes.
    let first = std::fs::read(r.out.join("install").join(b).join(&tgz)).unwrap();
    let o = r.strata(&["-C", r.out.to_str().unwrap(), "build", "--check", b]);
    assert!(o.status.success(), "build --check: {}", text(&o));
    let again = std::fs::read(r.out.join("install").join(b).join(&tgz)).unwrap();
    assert_eq!(first, again);
}
