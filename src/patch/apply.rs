//! Applying parsed patches to a tree.

use super::parse::{Change, FilePatch, Hunk, parse};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Why a patch did not apply. Every variant names the patch and the file.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("patch {patch} is malformed at {source}")]
    Parse {
        patch: String,
        source: super::ParseError,
    },
    #[error(
        "patch {patch}: Reversed (or previously applied) patch detected: hunk #{hunk} ({header}) for {file} is already applied\n  hint: the source already contains this change; remove the patch from the module, or check that the tarball is the one you meant"
    )]
    Reversed {
        patch: String,
        file: String,
        hunk: usize,
        header: String,
    },
    #[error(
        "patch {patch}: Reversed (or previously applied) patch detected: it creates {file}, which already exists with the same content\n  hint: the source already contains this change; remove the patch from the module"
    )]
    AlreadyCreated { patch: String, file: String },
    #[error(
        "patch {patch}: it creates {file}, which already exists with other content\n  hint: the patch does not match this source version"
    )]
    Exists { patch: String, file: String },
    #[error("patch {patch}: {file} does not exist{}\n  hint: the patch does not match this source version", if *previously_applied { " (the patch looks previously applied)" } else { "" })]
    Missing {
        patch: String,
        file: String,
        previously_applied: bool,
    },
    #[error(
        "patch {patch}: hunk #{hunk} ({header}) does not apply to {file} (fuzz 0):\n{diff}\n  hint: refresh the patch against this source version"
    )]
    Hunk {
        patch: String,
        file: String,
        hunk: usize,
        header: String,
        diff: String,
    },
    #[error("patch {patch}: path `{file}` leaves the source tree")]
    UnsafePath { patch: String, file: String },
    #[error("patch {patch}: {file}: {source}")]
    Io {
        patch: String,
        file: String,
        source: io::Error,
    },
}

/// What applying one file section produces.
enum Outcome {
    Write {
        path: String,
        bytes: Vec<u8>,
        mode: Option<u32>,
    },
    Remove(String),
}

/// Applies the patch file `bytes` (named `patch` in messages) to `tree`.
pub fn apply_patch(tree: &Path, patch: &str, bytes: &[u8]) -> Result<(), PatchError> {
    let files = parse(bytes).map_err(|source| PatchError::Parse {
        patch: patch.to_string(),
        source,
    })?;
    let mut outcomes = Vec::new();
    for fp in &files {
        outcomes.extend(apply_file(tree, patch, fp)?);
    }
    for o in outcomes {
        match o {
            Outcome::Write { path, bytes, mode } => {
                let dest = tree.join(&path);
                let io_err = |source| PatchError::Io {
                    patch: patch.to_string(),
                    file: path.clone(),
                    source,
                };
                if let Some(dir) = dest.parent() {
                    fs::create_dir_all(dir).map_err(io_err)?;
                }
                let old_mode = fs::metadata(&dest).ok().map(|m| m.permissions().mode());
                let tmp = dest.with_file_name(format!(
                    ".{}.strata-patch",
                    dest.file_name().unwrap_or_default().to_string_lossy()
                ));
                fs::write(&tmp, &bytes).map_err(io_err)?;
                let mode = match (mode, old_mode) {
                    (Some(m), _) => m & 0o7777,
                    (None, Some(m)) => m & 0o7777,
                    (None, None) => 0o644,
                };
                fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io_err)?;
                fs::rename(&tmp, &dest).map_err(io_err)?;
            }
            Outcome::Remove(path) => {
                fs::remove_file(tree.join(&path)).map_err(|source| PatchError::Io {
                    patch: patch.to_string(),
                    file: path.clone(),
                    source,
                })?;
            }
        }
    }
    Ok(())
}

fn checked(tree: &Path, patch: &str, path: &str) -> Result<PathBuf, PatchError> {
    let p = Path::new(path);
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(PatchError::UnsafePath {
            patch: patch.to_string(),
            file: path.to_string(),
        });
    }
    Ok(tree.join(p))
}

fn read(tree: &Path, patch: &str, path: &str) -> Result<Option<Vec<u8>>, PatchError> {
    match fs::read(checked(tree, patch, path)?) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PatchError::Io {
            patch: patch.to_string(),
            file: path.to_string(),
            source,
        }),
    }
}

fn apply_file(tree: &Path, patch: &str, fp: &FilePatch) -> Result<Vec<Outcome>, PatchError> {
    let p = patch.to_string();
    match fp.change {
        Change::Create => {
            let path = fp.new_path.clone().expect("create has a new path");
            let new = apply_hunks(patch, &path, &[], &fp.hunks)?;
            if let Some(existing) = read(tree, patch, &path)? {
                return Err(if existing == new {
                    PatchError::AlreadyCreated {
                        patch: p,
                        file: path,
                    }
                } else {
                    PatchError::Exists {
                        patch: p,
                        file: path,
                    }
                });
            }
            Ok(vec![Outcome::Write {
                path,
                bytes: new,
                mode: fp.new_mode,
            }])
        }
        Change::Delete => {
            let path = fp.old_path.clone().expect("delete has an old path");
            let Some(old) = read(tree, patch, &path)? else {
                return Err(PatchError::Missing {
                    patch: p,
                    file: path,
                    previously_applied: true,
                });
            };
            let rest = apply_hunks(patch, &path, &old, &fp.hunks)?;
            if !rest.is_empty() {
                return Err(PatchError::Hunk {
                    patch: p,
                    file: path,
                    hunk: fp.hunks.len(),
                    header: "delete".into(),
                    diff: format!(
                        "  the file has {} bytes the patch does not remove",
                        rest.len()
                    ),
                });
            }
            Ok(vec![Outcome::Remove(path)])
        }
        Change::Modify | Change::Rename => {
            let old_path = fp.old_path.clone().expect("modify has an old path");
            let new_path = fp.new_path.clone().unwrap_or_else(|| old_path.clone());
            let (source_path, old) = match read(tree, patch, &old_path)? {
                Some(b) => (old_path.clone(), b),
                None if fp.change == Change::Modify && new_path != old_path => {
                    match read(tree, patch, &new_path)? {
                        Some(b) => (new_path.clone(), b),
                        None => return Err(missing(p, old_path, false)),
                    }
                }
                None => {
                    let applied =
                        fp.change == Change::Rename && read(tree, patch, &new_path)?.is_some();
                    return Err(missing(p, old_path, applied));
                }
            };
            let new = apply_hunks(patch, &source_path, &old, &fp.hunks)?;
            let mut out = Vec::new();
            let target = if fp.change == Change::Rename {
                checked(tree, patch, &new_path)?;
                out.push(Outcome::Remove(source_path));
                new_path
            } else {
                source_path
            };
            out.push(Outcome::Write {
                path: target,
                bytes: new,
                mode: fp.new_mode,
            });
            Ok(out)
        }
    }
}

fn missing(patch: String, file: String, previously_applied: bool) -> PatchError {
    PatchError::Missing {
        patch,
        file,
        previously_applied,
    }
}

/// Finds `block` in `lines` at `expected` or the nearest offset, not before `floor`.
fn find(lines: &[&[u8]], block: &[&[u8]], expected: usize, floor: usize) -> Option<usize> {
    if lines.len() < block.len() {
        return None;
    }
    let last = lines.len() - block.len();
    if floor > last {
        return None;
    }
    let expected = expected.clamp(floor, last);
    let matches = |at: usize| lines[at..at + block.len()] == *block;
    for delta in 0..=(last - floor) {
        if expected + delta <= last && matches(expected + delta) {
            return Some(expected + delta);
        }
        if delta > 0 && expected >= floor + delta && matches(expected - delta) {
            return Some(expected - delta);
        }
        if expected + delta > last && expected < floor + delta {
            break;
        }
    }
    None
}

fn apply_hunks(patch: &str, file: &str, old: &[u8], hunks: &[Hunk]) -> Result<Vec<u8>, PatchError> {
    let lines: Vec<&[u8]> = old.split_inclusive(|b| *b == b'\n').collect();
    let mut out: Vec<u8> = Vec::with_capacity(old.len() + 256);
    let mut done = 0usize;
    let mut offset: isize = 0;
    for (n, h) in hunks.iter().enumerate() {
        let old_block = h.old_lines();
        let new_block = h.new_lines();
        let nominal = if h.old_len == 0 {
            h.old_start
        } else {
            h.old_start.saturating_sub(1)
        };
        let expected = (nominal as isize + offset).max(0) as usize;
        match find(&lines, &old_block, expected, done) {
            Some(at) => {
                for l in &lines[done..at] {
                    out.extend_from_slice(l);
                }
                for l in &new_block {
                    out.extend_from_slice(l);
                }
                done = at + old_block.len();
                offset = at as isize - nominal as isize;
            }
            None => {
                let reversed = !new_block.is_empty()
                    && new_block != old_block
                    && find(&lines, &new_block, expected, done).is_some();
                return Err(if reversed {
                    PatchError::Reversed {
                        patch: patch.to_string(),
                        file: file.to_string(),
                        hunk: n + 1,
                        header: h.header.clone(),
                    }
                } else {
                    PatchError::Hunk {
                        patch: patch.to_string(),
                        file: file.to_string(),
                        hunk: n + 1,
                        header: h.header.clone(),
                        diff: describe_mismatch(file, &lines, &old_block, expected),
                    }
                });
            }
        }
    }
    for l in &lines[done..] {
        out.extend_from_slice(l);
    }
    Ok(out)
}

/// Shows the hunk's expected lines next to what the file has at that place.
fn describe_mismatch(file: &str, lines: &[&[u8]], block: &[&[u8]], at: usize) -> String {
    let show = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .trim_end_matches(['\n', '\r'])
            .to_string()
    };
    let mut out = format!(
        "  at {file}:{} the patch expects (-) but the file has (+):",
        at + 1
    );
    let mut shown = 0;
    for (i, want) in block.iter().enumerate() {
        let have = lines.get(at + i).copied();
        if have == Some(*want) {
            out.push_str(&format!("\n      {}", show(want)));
        } else {
            out.push_str(&format!("\n    - {}", show(want)));
            match have {
                Some(h) => out.push_str(&format!("\n    + {}", show(h))),
                None => out.push_str("\n    + <end of file>"),
            }
        }
        shown += 1;
        if shown >= 12 {
            out.push_str("\n      …");
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let path = d.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, c).unwrap();
        }
        d
    }

    const MODIFY: &str = "--- a/f.c\n+++ b/f.c\n@@ -2,3 +2,4 @@\n b\n c\n+new\n d\n";

    #[test]
    fn applies_with_offset_but_no_fuzz() {
        let d = tree(&[("f.c", "x\ny\na\nb\nc\nd\ne\n")]);
        apply_patch(d.path(), "p", MODIFY.as_bytes()).unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("f.c")).unwrap(),
            "x\ny\na\nb\nc\nnew\nd\ne\n"
        );
        // One context line differs: fuzz 0 refuses.
        let d = tree(&[("f.c", "a\nb\nC\nd\n")]);
        let e = apply_patch(d.path(), "p", MODIFY.as_bytes()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("hunk #1") && msg.contains("f.c"), "{msg}");
        assert!(msg.contains("- c") && msg.contains("+ C"), "{msg}");
    }

    #[test]
    fn second_application_is_reported_as_previously_applied() {
        let d = tree(&[("f.c", "a\nb\nc\nd\n")]);
        apply_patch(d.path(), "p", MODIFY.as_bytes()).unwrap();
        let e = apply_patch(d.path(), "p", MODIFY.as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .contains("Reversed (or previously applied) patch detected")
        );
        assert_eq!(
            fs::read_to_string(d.path().join("f.c")).unwrap(),
            "a\nb\nc\nnew\nd\n"
        );
    }

    #[test]
    fn create_twice_is_previously_applied() {
        let p = "diff --git a/n.h b/n.h\nnew file mode 100644\n--- /dev/null\n+++ b/n.h\n@@ -0,0 +1 @@\n+x\n";
        let d = tree(&[]);
        apply_patch(d.path(), "p", p.as_bytes()).unwrap();
        assert_eq!(fs::read_to_string(d.path().join("n.h")).unwrap(), "x\n");
        let e = apply_patch(d.path(), "p", p.as_bytes()).unwrap_err();
        assert!(matches!(e, PatchError::AlreadyCreated { .. }), "{e}");
    }

    #[test]
    fn failing_patch_writes_nothing() {
        let p =
            "--- a/a\n+++ b/a\n@@ -1 +1 @@\n-1\n+one\n--- a/b\n+++ b/b\n@@ -1 +1 @@\n-X\n+two\n";
        let d = tree(&[("a", "1\n"), ("b", "2\n")]);
        assert!(apply_patch(d.path(), "p", p.as_bytes()).is_err());
        assert_eq!(fs::read_to_string(d.path().join("a")).unwrap(), "1\n");
    }

    #[test]
    fn rename_and_delete() {
        let p = "diff --git a/old b/new\nsimilarity index 90%\nrename from old\nrename to new\n--- a/old\n+++ b/new\n@@ -1 +1 @@\n-1\n+2\ndiff --git a/gone b/gone\ndeleted file mode 100644\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n";
        let d = tree(&[("old", "1\n"), ("gone", "bye\n")]);
        apply_patch(d.path(), "p", p.as_bytes()).unwrap();
        assert!(!d.path().join("old").exists() && !d.path().join("gone").exists());
        assert_eq!(fs::read_to_string(d.path().join("new")).unwrap(), "2\n");
    }

    #[test]
    fn paths_cannot_escape() {
        let p = "--- a/../x\n+++ b/../x\n@@ -0,0 +1 @@\n+x\n";
        let d = tree(&[]);
        assert!(matches!(
            apply_patch(d.path(), "p", p.as_bytes()),
            Err(PatchError::UnsafePath { .. }) | Err(PatchError::Missing { .. })
        ));
    }
}
