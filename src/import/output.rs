//! Writing (or, with `--check`, only comparing) the generated project.
//!
//! Only files that start with the import's marker line are ever replaced or
//! removed; anything else in the output directory, hand-written modules
//! included, is left alone and named in the report. A file whose bytes are
//! already right is not rewritten (its mtime stays), and every write goes
//! through `fsutil::write_atomic`, so a killed import leaves either the old
//! or the new file.

use super::error::ImportError;
use super::render::MARKER;
use super::report::FileChange;
use crate::fsutil::write_atomic;
use std::collections::BTreeMap;
use std::path::Path;

fn generated(path: &Path) -> Option<bool> {
    let bytes = std::fs::read(path).ok()?;
    Some(bytes.starts_with(MARKER.as_bytes()))
}

/// Compares `files` (relative path → content) with what `out` holds and,
/// unless `check`, brings `out` in line. Returns one entry per file touched
/// or considered.
pub fn sync(
    out: &Path,
    files: &BTreeMap<String, String>,
    check: bool,
) -> Result<Vec<FileChange>, ImportError> {
    let mut changes = Vec::new();
    for (rel, content) in files {
        let path = out.join(rel);
        let change = match std::fs::read(&path) {
            Ok(old) if old == content.as_bytes() => "unchanged",
            Ok(old) if !old.starts_with(MARKER.as_bytes()) => "left alone (not written by strata)",
            Ok(_) => "changed",
            Err(_) => "new",
        };
        if !check && (change == "changed" || change == "new") {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(ImportError::io(dir))?;
            }
            write_atomic(&path, content.as_bytes()).map_err(ImportError::io(&path))?;
        }
        changes.push(FileChange {
            path: rel.clone(),
            change: change.to_string(),
        });
    }
    // Generated module files no board builds any more.
    let dir = out.join("modules");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut stale = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("modules/{name}");
            if name.ends_with(".toml")
                && !files.contains_key(&rel)
                && generated(&e.path()) == Some(true)
            {
                stale.push((rel, e.path()));
            }
        }
        stale.sort();
        for (rel, path) in stale {
            if !check {
                std::fs::remove_file(&path).map_err(ImportError::io(&path))?;
                crate::fsutil::sync_dir(&dir).map_err(ImportError::io(&dir))?;
            }
            changes.push(FileChange {
                path: rel,
                change: "removed".to_string(),
            });
        }
    }
    Ok(changes)
}

/// Heads the kept tables of `strata.toml` (see [`keep_user_tables`]).
pub const KEPT: &str = "# Kept from the previous strata.toml: tables the import does not generate.";

/// The root of a TOML table header line (`[mirrors]` → `mirrors`,
/// `[target.x230]` → `target`, `[[a.b]]` → `a`), or None for another line.
fn table_root(line: &str) -> Option<&str> {
    let l = line.trim();
    let inner = l.strip_prefix('[')?.trim_start_matches('[');
    let end = inner.find(']')?;
    let name = inner[..end].trim();
    let root = name
        .split('.')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    Some(root)
}

/// `generated` (the import's `strata.toml`) followed by every table of
/// `old` (the file it replaces) that the import does not generate: the
/// import owns `[project]`, `[target.*]` and `[layer.*]`; what a user added
/// (`[mirrors]`, `[settings]`, `[cache]`, …) is carried over verbatim, its
/// comments and order included, so a re-import never deletes it.
pub fn keep_user_tables(generated: &str, old: &str) -> String {
    let mut kept = String::new();
    let mut keep = false;
    for line in old.lines() {
        if let Some(root) = table_root(line) {
            keep = !matches!(root, "project" | "target" | "layer");
        }
        if keep && line != KEPT {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let kept = kept.trim_matches('\n');
    if kept.is_empty() {
        return generated.to_string();
    }
    format!("{}\n\n{KEPT}\n{kept}\n", generated.trim_end_matches('\n'))
}

/// Did anything change (for `--check`)?
pub fn drifted(changes: &[FileChange]) -> bool {
    changes
        .iter()
        .any(|c| matches!(c.change.as_str(), "new" | "changed" | "removed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_tables_are_kept_and_keeping_is_idempotent() {
        let gen1 = "# Generated\n[project]\nname = \"heads\"\n\n[target.a]\nmodules = []\n";
        let old = "# Generated\n[project]\nname = \"heads\"\n\n[mirrors]\n# mine\nafter = [\"file:///m/\"]\n\n[target.a]\nmodules = [\"x\"]\n\n[cache]\ndir = \"/c\"\n";
        let once = keep_user_tables(gen1, old);
        assert!(once.starts_with(gen1.trim_end()), "{once}");
        assert!(
            once.contains("[mirrors]\n# mine\nafter = [\"file:///m/\"]\n"),
            "{once}"
        );
        assert!(once.contains("[cache]\ndir = \"/c\"\n"), "{once}");
        assert!(!once.contains("modules = [\"x\"]"), "{once}");
        let t: toml::Table = toml::from_str(&once).unwrap();
        assert!(t.contains_key("mirrors") && t.contains_key("cache"));
        assert_eq!(keep_user_tables(gen1, &once), once);
        assert_eq!(keep_user_tables(gen1, gen1), gen1);
    }
}
