//! The Heads tree's files a coreboot or linux config names through Heads's
//! config installer. `bin/prepare_module_config.sh TEMPLATE RESULT
//! BOARD_BUILD BRAND_NAME` finds the tree from its own location
//! (`realpath "$(dirname "$0")/.."`) and writes `@BLOB_DIR@` as
//! `<tree>/blobs` and `@BRAND_DIR@` as `<tree>/branding/<BRAND_NAME>`,
//! both relative to the dir the module builds from, into the config (which
//! coreboot puts into the ROM). A module building in Heads's layout
//! (`.heads/build/<arch>/…`, see `module.rs`) gets the script and those
//! dirs at their Heads places under `.heads/`, so the script's tree is
//! `.heads` and the relative paths are Heads's own.
//!
//! The decision a reader would question: each `blobs/<subdir>` and the
//! brand's dir is a `{ dir = … }` param (its bytes and modes in the key), so
//! a changed bootsplash or blob rebuilds exactly the module and what
//! depends on it; blobs a dependency generates (staged under
//! `$STRATA_SYSROOT/heads-blobs/`, [`super::image::BLOBS_DIR`]) are laid over
//! the tree's; a blob neither has stops the configure with an error naming
//! the board, the file and the tree's script that makes it.

use super::model::Param;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What a config template names through the installer's placeholders.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Named {
    /// Files under `@BRAND_DIR@/` (e.g. `bootsplash.jpg`).
    pub brand: BTreeSet<String>,
    /// Files under `@BLOB_DIR@/`, by subdir (`""` for a file at its top).
    pub blobs: BTreeMap<String, BTreeSet<String>>,
}

impl Named {
    pub fn is_empty(&self) -> bool {
        self.brand.is_empty() && self.blobs.is_empty()
    }
}

/// The paths after `@BLOB_DIR@/` and `@BRAND_DIR@/` in a template's text.
pub fn named(template: &str) -> Named {
    let mut n = Named::default();
    for (mark, is_blob) in [("@BLOB_DIR@/", true), ("@BRAND_DIR@/", false)] {
        for (i, _) in template.match_indices(mark) {
            let rest = &template[i + mark.len()..];
            let end = rest
                .find(|c: char| c == '"' || c == '\'' || c.is_whitespace())
                .unwrap_or(rest.len());
            let path = &rest[..end];
            if path.is_empty() || path.split('/').any(|c| c.is_empty() || c == "..") {
                continue;
            }
            if !is_blob {
                n.brand.insert(path.to_string());
                continue;
            }
            let (sub, file) = path.rsplit_once('/').unwrap_or(("", path));
            n.blobs
                .entry(sub.to_string())
                .or_default()
                .insert(file.to_string());
        }
    }
    n
}

/// Single-quoted for the shell.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The tree's scripts that make blob `file` of `blobs/<sub>/`: the
/// `blobs/<sub>/*.sh` naming it, else every `blobs/**/*.sh` naming it.
fn makers(heads: &Path, sub: &str, file: &str) -> Vec<String> {
    let scan = |dir: &Path, rel: &str| -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".sh"))
            .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(file)))
            .map(|e| format!("{rel}{}", e.file_name().to_string_lossy()))
            .collect();
        found.sort();
        found
    };
    let own = scan(&heads.join("blobs").join(sub), &format!("blobs/{sub}/"));
    if !own.is_empty() || sub.is_empty() {
        return own;
    }
    scan(&heads.join("blobs"), "blobs/")
}

/// What a layout module needs for the dirs its config names.
#[derive(Debug, Default)]
pub struct Setup {
    /// Shell laying them out under `$STRATA_BUILD_DIR/.heads`.
    pub shell: String,
    /// The target's params: `(name, value)`, paths relative to the output dir.
    pub params: Vec<(String, Param)>,
    /// What was translated, for the report.
    pub done: Vec<String>,
}

/// The layout of what `named` (read from `template`, a path of the tree,
/// the board's param `template_param`) names, for Heads's module `module`
/// with brand `brand`; `heads` is the tree, `heads_from_out` the tree seen
/// from the output dir. The shell names the board's own config (the param)
/// so boards sharing the module share its text, and the board when the
/// module has the `BOARD` param (`with_board`).
pub fn setup(
    heads: &Path,
    heads_from_out: &str,
    (template, template_param): (&str, &str),
    named: &Named,
    brand: &str,
    (module, with_board): (&str, bool),
) -> Setup {
    let root = "$STRATA_BUILD_DIR/.heads";
    let mut s = Setup::default();
    let dir_param = |s: &mut Setup, rel: &str| {
        let p = format!("HEADS_{}", super::rewrite::env_name(rel));
        let is_dir = heads.join(rel).is_dir();
        let value = format!("{heads_from_out}/{rel}");
        s.params.push((
            p.clone(),
            if is_dir {
                Param::Dir(value)
            } else {
                Param::File(value)
            },
        ));
        s.shell.push_str(&if is_dir {
            format!("mkdir -p \"{root}/{rel}\"\ncp -a \"$STRATA_PARAM_{p}/.\" \"{root}/{rel}/\"\n")
        } else {
            format!("mkdir -p \"$(dirname \"{root}/{rel}\")\"\ncp -a \"$STRATA_PARAM_{p}\" \"{root}/{rel}\"\n")
        });
        s.done.push(format!(
            "{template} names {rel} → $STRATA_PARAM_{p}, at its Heads place {root}/{rel}"
        ));
    };
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    if !named.brand.is_empty() {
        let rel = format!("branding/{brand}");
        if heads.join(&rel).is_dir() {
            dir_param(&mut s, &rel);
        }
        for f in &named.brand {
            wanted.push((format!("{rel}/{f}"), Vec::new()));
        }
    }
    for (sub, files) in &named.blobs {
        if sub.is_empty() {
            for f in files {
                let rel = format!("blobs/{f}");
                if heads.join(&rel).is_file() {
                    dir_param(&mut s, &rel);
                }
            }
        } else if heads.join("blobs").join(sub).is_dir() {
            dir_param(&mut s, &format!("blobs/{sub}"));
        }
        for f in files {
            let rel = match sub.as_str() {
                "" => format!("blobs/{f}"),
                sub => format!("blobs/{sub}/{f}"),
            };
            wanted.push((rel, makers(heads, sub, f)));
        }
    }
    if !named.blobs.is_empty() {
        let g = super::image::BLOBS_DIR;
        s.shell.push_str(&format!(
            "if [ -d \"$STRATA_SYSROOT/{g}\" ]; then mkdir -p \"{root}/blobs\" && cp -a \"$STRATA_SYSROOT/{g}/.\" \"{root}/blobs/\"; fi\n"
        ));
        s.done.push(format!(
            "blobs its dependencies make (staged under {g}/) → laid over {root}/blobs/"
        ));
    }
    for (rel, makers) in wanted {
        let how = match makers.len() {
            0 => "nothing in the tree makes it: add it to the Heads tree".to_string(),
            _ => format!(
                "Heads makes it with {}: run that in the Heads tree (or build the module that makes it)",
                makers.join(" or ")
            ),
        };
        let msg = format!(
            "strata: Heads module {module}{}: its config @C@ names {rel}, which is neither in the Heads tree nor made by a dependency; {how}",
            if with_board { ", board @B@" } else { "" }
        );
        let msg = sq(&msg)
            .replace("@B@", "'\"$STRATA_PARAM_BOARD\"'")
            .replace(
                "@C@",
                &format!("'\"${{STRATA_PARAM_{template_param}##*/}}\"'"),
            );
        s.shell.push_str(&format!(
            "if [ ! -e \"{root}/{rel}\" ]; then echo {msg} >&2; exit 1; fi\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholders_paths_are_read_by_subdir() {
        let n = named(
            "CONFIG_BOOTSPLASH_FILE=\"@BRAND_DIR@/bootsplash.jpg\"\n\
             CONFIG_IFD_BIN_PATH=\"@BLOB_DIR@/xx30/ifd.bin\"\n\
             CONFIG_ME=\"@BLOB_DIR@/xx30/me.bin\"\nX=\"@BLOB_DIR@/dev.cpio\"\n\
             BAD=\"@BLOB_DIR@/../etc/passwd\" NONE=@BLOB_DIR@/\n",
        );
        assert_eq!(n.brand, BTreeSet::from(["bootsplash.jpg".to_string()]));
        assert_eq!(
            n.blobs.keys().collect::<Vec<_>>(),
            vec![&"".to_string(), &"xx30".to_string()]
        );
        assert_eq!(n.blobs["xx30"].len(), 2);
        assert!(named("CONFIG_X=y\n").is_empty());
    }

    #[test]
    fn a_missing_blob_names_the_script_that_makes_it() {
        let t = tempfile::tempdir().unwrap();
        let h = t.path();
        std::fs::create_dir_all(h.join("blobs/xx30")).unwrap();
        std::fs::create_dir_all(h.join("branding/Heads")).unwrap();
        std::fs::write(h.join("blobs/xx30/ifd.bin"), "ifd").unwrap();
        std::fs::write(h.join("branding/Heads/s.jpg"), "jpg").unwrap();
        std::fs::write(h.join("blobs/xx30/vbios.sh"), "mv x \"$BLOBDIR\"/vga.rom\n").unwrap();
        let n = named(
            "A=\"@BLOB_DIR@/xx30/ifd.bin\" B=\"@BLOB_DIR@/xx30/vga.rom\" C=\"@BRAND_DIR@/s.jpg\"",
        );
        let s = setup(
            h,
            "..",
            ("config/cb.config", "CB_CONFIG"),
            &n,
            "Heads",
            ("coreboot-1", true),
        );
        let names: Vec<&str> = s.params.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["HEADS_BRANDING_HEADS", "HEADS_BLOBS_XX30"]);
        assert!(s.shell.contains("blobs/xx30/vbios.sh"), "{}", s.shell);
        assert!(s.shell.contains("heads-blobs"), "{}", s.shell);
        // The check runs in bash and fails on the missing file only.
        let b = tempfile::tempdir().unwrap();
        let run = |shell: &str| {
            std::process::Command::new("bash")
                .arg("-c")
                .arg(shell)
                .env("STRATA_BUILD_DIR", b.path())
                .env("STRATA_SYSROOT", b.path().join("none"))
                .env("STRATA_PARAM_BOARD", "x230")
                .env("STRATA_PARAM_CB_CONFIG", "../config/cb.config")
                .env("STRATA_PARAM_HEADS_BLOBS_XX30", h.join("blobs/xx30"))
                .env(
                    "STRATA_PARAM_HEADS_BRANDING_HEADS",
                    h.join("branding/Heads"),
                )
                .output()
                .unwrap()
        };
        let o = run(&s.shell);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            err.contains(
                "Heads module coreboot-1, board x230: its config cb.config names blobs/xx30/vga.rom"
            ) && err.contains("blobs/xx30/vbios.sh"),
            "{err}"
        );
        std::fs::write(h.join("blobs/xx30/vga.rom"), "vga").unwrap();
        let o = run(&s.shell);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(b.path().join(".heads/blobs/xx30/vga.rom").is_file());
    }
}
