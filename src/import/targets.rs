//! A board's `BOARD_TARGETS` (Heads's `targets/<name>.mk`, included by its
//! Makefile), as more of the `rom` module's outputs:
//!
//! | Heads | strata (`rom`) |
//! |---|---|
//! | `split_8mb4mb`: `heads-<BOARD>-<v>-bottom.rom` (`dd bs=65536 count=128 skip=0` of the ROM) and `-top.rom` (`count=64 skip=128`), each hashed into `hashes.txt`/`sizes.txt` | the same `dd`s, their lines before the ROM's |
//! | `ppc_tgz`: a copy of the bundled kernel as `heads-<BOARD>-<v>-zImage.bundled`, and `heads-<BOARD>-<v>.tgz` of the ROM, the bootblock and that copy plus `sha256sum.txt` (`sha256sum * > sha256sum.txt && tar zcf … *`) | the same copy and members; the tgz's tar and gzip metadata are fixed (see [`tgz`]) |
//!
//! The decision a reader would question is the last line of `hashes.txt`:
//! Heads's `all` recipe hashes `$<`, its first prerequisite. Its Makefile
//! gives `all` the ROM and the update package first in a rule with a recipe
//! (`ifeq ($(wildcard split_8mb4mb.mk),)` tests the working dir, where the
//! file never is), which the later `all payload:` recipe overrides while
//! the prerequisites stay first: `$<` is the ROM, hashed after the split
//! halves. On Talos II (no update package, so no such rule) the first
//! prerequisite is `ppc_tgz.mk`'s copy of the bundled kernel: its line
//! replaces the ROM's. The other targets are not the image's: `qemu`'s are
//! developer run targets outside `all`, the `*_me_blobs`/`optiplex_blobs`
//! ones download blobs (modules of their own, staged under
//! [`super::image::BLOBS_DIR`]).

use super::model::Param;
use std::path::Path;

/// The `dd` arguments of `split_8mb4mb.mk`'s two halves.
const BOTTOM: &str = "bs=65536 count=128 skip=0";
const TOP: &str = "bs=65536 count=64 skip=128";

/// What a board's `BOARD_TARGETS` add to its `rom`.
#[derive(Debug, Default)]
pub struct Targets {
    /// Shell making the targets' files in `$out` (the ROM, bootblock and
    /// bundled image are there already).
    pub make: String,
    /// Files (shell words relative to `$out`) whose lines `hashes.txt` and
    /// `sizes.txt` get before `all`'s own.
    pub hashed: Vec<String>,
    /// The file `all`'s recipe hashes when it is not the ROM.
    pub all_hashes: Option<String>,
    /// `rom`'s params for them (`HEADS_GIT_VERSION`).
    pub params: Vec<(String, Param)>,
    /// File names `strata build BOARD` leaves in `install/<BOARD>/`.
    pub install: Vec<String>,
    /// The targets translated, for the report.
    pub done: Vec<String>,
    /// The targets not translated, with the reason.
    pub not_translated: Vec<String>,
    /// The targets outside the board's image (`qemu`'s run targets).
    pub skipped: Vec<String>,
}

/// The board's targets: `names` is `$(BOARD_TARGETS)`, `version`
/// `$(HEADS_GIT_VERSION)`, `image` `$(LINUX_IMAGE_FILE)` when the board
/// has a bundled kernel (`CONFIG_LINUX_BUNDLED`), `bootblock` whether the
/// ROM has a bootblock beside it (`$bootblock` in `rom`'s shell).
pub fn board_targets(
    heads: &Path,
    board: &str,
    names: &str,
    version: &str,
    image: Option<&str>,
    bootblock: bool,
) -> Targets {
    let mut t = Targets::default();
    let prefix = "heads-$STRATA_PARAM_BOARD-$STRATA_PARAM_HEADS_GIT_VERSION";
    let named = |suffix: &str| format!("heads-{board}-{version}{suffix}");
    for name in names.split_whitespace() {
        let file = format!("targets/{name}.mk");
        let text = std::fs::read_to_string(heads.join(&file)).unwrap_or_default();
        match name {
            "split_8mb4mb" if text.contains(BOTTOM) && text.contains(TOP) => {
                for (half, dd) in [("bottom", BOTTOM), ("top", TOP)] {
                    t.make.push_str(&format!(
                        "{half}=\"{prefix}-{half}.rom\"\n\
                         dd if=\"$out/$rom\" of=\"$out/${half}\" {dd} status=none\n"
                    ));
                    t.hashed.push(format!("\"${half}\""));
                    t.install.push(named(&format!("-{half}.rom")));
                }
                t.done.push(format!(
                    "{file}: the ROM's bottom and top halves (dd {BOTTOM}, {TOP}) → rom, hashed before the ROM as make does"
                ));
            }
            "ppc_tgz" if image.is_some() && bootblock => {
                let image = image.unwrap_or_default();
                t.make.push_str(&format!(
                    "bundled_copy=\"{prefix}-{image}.bundled\"\n\
                     cp -a --remove-destination \"$out/{image}.bundled\" \"$out/$bundled_copy\"\n{}",
                    tgz(prefix)
                ));
                t.all_hashes = Some("\"$bundled_copy\"".to_string());
                t.install.push(named(&format!("-{image}.bundled")));
                t.install.push(named(".tgz"));
                t.done.push(format!(
                    "{file}: the bundled kernel's copy and the .tgz of the ROM, bootblock and copy → rom; `all` hashes the copy, not the ROM, as make does"
                ));
            }
            // Blob downloads: fixed-output modules of their own (blobs.rs).
            n if n.ends_with("_blobs") => {}
            "qemu" => t.skipped.push(format!(
                "{file}: developer run targets (`run`, disk images), outside `all`; not part of the board's image"
            )),
            _ => t.not_translated.push(format!(
                "{file}: a shape strata does not know; not translated"
            )),
        }
    }
    if !t.install.is_empty() {
        t.params.push((
            "HEADS_GIT_VERSION".to_string(),
            Param::Value(version.to_string()),
        ));
    }
    t
}

/// `ppc_tgz.mk`'s package: the ROM, the bootblock and the bundled copy
/// with their `sha256sum.txt`, members in the shell's `*` order (C locale).
/// Heads's `tar zcf` records each copy's wall-clock mtime, the builder's
/// owner and gzip's timestamp; strata's members are dated 1970-01-01,
/// owned by 0:0, and gzip writes no name or time, so the tgz is
/// reproducible while its members' names, order and bytes are Heads's.
fn tgz(prefix: &str) -> String {
    format!(
        "pkg=\"$STRATA_BUILD_DIR/pkg\"; rm -rf \"$pkg\"; mkdir -p \"$pkg\"\n\
         cp \"$out/$rom\" \"$out/$bootblock\" \"$out/$bundled_copy\" \"$pkg/\"\n\
         ( cd \"$pkg\" && export LC_ALL=C && sha256sum -- * > sha256sum.txt \\\n  \
         && tar --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - -- * | gzip -n -9 > \"$out/{prefix}.tgz\" )\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_is_translated_or_named_in_the_report() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("targets")).unwrap();
        std::fs::write(
            t.path().join("targets/split_8mb4mb.mk"),
            format!("x: ; dd {BOTTOM}\ny: ; dd {TOP}\n"),
        )
        .unwrap();
        let s = board_targets(
            t.path(),
            "x230",
            "split_8mb4mb xx30_me_blobs",
            "v1",
            None,
            false,
        );
        assert_eq!(
            s.install,
            ["heads-x230-v1-bottom.rom", "heads-x230-v1-top.rom"]
        );
        assert_eq!(s.hashed, ["\"$bottom\"", "\"$top\""]);
        assert!(s.all_hashes.is_none());
        // The blob target is blobs.rs's: neither translated here nor reported.
        assert!(s.not_translated.is_empty() && s.skipped.is_empty());
        assert_eq!(s.done.len(), 1);
        let p = board_targets(t.path(), "talos-2", "ppc_tgz", "v1", Some("zImage"), true);
        assert_eq!(
            p.install,
            ["heads-talos-2-v1-zImage.bundled", "heads-talos-2-v1.tgz"]
        );
        assert_eq!(p.all_hashes.as_deref(), Some("\"$bundled_copy\""));
        let q = board_targets(t.path(), "q", "qemu", "v1", None, false);
        assert!(q.install.is_empty() && q.params.is_empty());
        assert!(q.skipped[0].starts_with("targets/qemu.mk: developer run targets"));
        let u = board_targets(t.path(), "u", "split_8mb4mb_new", "v1", None, false);
        assert!(u.not_translated[0].contains("not translated"));
    }
}
