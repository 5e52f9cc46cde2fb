//! `strata import heads`: turn a Heads tree into a strata project.
//!
//! The tree is evaluated by GNU make itself, one board at a time and boards
//! in parallel ([`make`]); each module's evaluated variables are rewritten
//! from Heads's shared paths to strata's variables ([`rewrite`]), merged
//! across boards ([`translate`]) and written as `modules/<name>.toml` and
//! `strata.toml` ([`render`], [`output`]), with a [`report`] of everything
//! that could not be carried over. Why make and not a parser: Heads's
//! module files use the whole language (`define`, `$(eval $(call …))`,
//! conditionals on `CONFIG_…`), and only make evaluates it exactly.

mod blobs;
mod config_dirs;
mod ec;
pub mod error;
pub mod farm;
pub mod image;
mod kernel;
pub mod make;
pub mod model;
mod module;
pub mod output;
pub mod render;
pub mod report;
pub mod rewrite;
pub mod scan;
mod targets;
mod toolchain;
pub mod translate;

pub use error::ImportError;
pub use report::Report;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// What to import.
#[derive(Debug, Clone)]
pub struct Options {
    pub heads: PathBuf,
    /// Default: `<heads>/strata`.
    pub out: Option<PathBuf>,
    /// Default: every board.
    pub boards: Vec<String>,
    /// Compare only; write nothing.
    pub check: bool,
}

/// The result: the report, and whether the output differs (or differed) from
/// what the tree evaluates to. When no board evaluated, nothing was written
/// (`report.boards_imported() == 0`; the command then fails).
pub struct Outcome {
    pub report: Report,
    pub drifted: bool,
}

/// `to` relative to `from`, both absolute and normalized.
fn relative(from: &Path, to: &Path) -> String {
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); f.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// An absolute path with symlinks resolved as far as it exists.
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => absolute(parent).join(name),
        _ => std::env::current_dir().unwrap_or_default().join(p),
    }
}

pub fn import(opts: &Options) -> Result<Outcome, ImportError> {
    for (what, missing) in [
        ("Makefile", "Makefile"),
        ("modules", "modules/"),
        ("boards", "boards/"),
    ] {
        if !opts.heads.join(what).exists() {
            return Err(ImportError::NotHeads {
                dir: opts.heads.clone(),
                missing,
            });
        }
    }
    let heads = absolute(&opts.heads);
    let out = absolute(&opts.out.clone().unwrap_or_else(|| heads.join("strata")));
    let make = make::Make::find()?;
    let all = make::list_boards(&heads)?;
    let boards = if opts.boards.is_empty() {
        all
    } else {
        for b in &opts.boards {
            if !all.contains(b) {
                return Err(ImportError::UnknownBoard {
                    board: b.clone(),
                    dir: heads.clone(),
                });
            }
        }
        let mut b = opts.boards.clone();
        b.sort();
        b.dedup();
        b
    };
    if boards.is_empty() {
        return Err(ImportError::NoBoards { dir: heads.clone() });
    }
    let farm = farm::Farm::new(&heads)?;
    let evals = make::evaluate(&make, &farm, &boards);
    let default = make::default_board(&make, &farm);
    let writes = farm
        .writes()
        .into_iter()
        .map(|w| report::TreeWrite {
            named_in: farm::named_in(&heads, &w.path),
            path: w.path,
            change: w.change.to_string(),
        })
        .collect();
    let pwd = farm.pwd().to_string_lossy().into_owned();
    let tmp = farm.tmp().to_string_lossy().into_owned();
    let heads_from_out = relative(&out, &heads);
    let paths = model::Paths {
        heads: &heads,
        heads_from_out: &heads_from_out,
        pwd: &pwd,
        tmp: &tmp,
    };
    let mut imp = translate::translate(&paths, &evals);
    // Heads's default BOARD is the project's `default` target.
    if let Some(t) = default.and_then(|b| imp.targets.get(&b).cloned()) {
        imp.targets.insert("default".to_string(), t);
    }
    let mut files = BTreeMap::new();
    for m in imp.modules.values() {
        // A split module (`<name>+<board>`) keeps its base's pins.
        let base = m.name.split('+').next().unwrap_or(&m.name);
        let fixed = imp.fixed.get(&m.name).or_else(|| imp.fixed.get(base));
        files.insert(
            format!("modules/{}.toml", m.name),
            render::module_file(m, fixed),
        );
    }
    let mut project = render::project_file(&imp);
    // Tables the user added to a generated strata.toml survive a re-import.
    if let Ok(old) = std::fs::read_to_string(out.join("strata.toml"))
        && old.starts_with(render::MARKER)
    {
        project = output::keep_user_tables(&project, &old);
    }
    files.insert("strata.toml".to_string(), project);
    // With no board evaluated there is nothing to write: syncing would
    // remove every generated module file of a previous import.
    let changes = if imp.report.boards_imported() == 0 {
        Vec::new()
    } else {
        output::sync(&out, &files, opts.check)?
    };
    let drifted = output::drifted(&changes);
    imp.report.writes = writes;
    imp.report.heads = heads.display().to_string();
    imp.report.out = out.display().to_string();
    imp.report.make = format!("GNU Make {}", make.version);
    imp.report.files = changes;
    Ok(Outcome {
        report: imp.report,
        drifted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/a/heads/strata"), Path::new("/a/heads")),
            ".."
        );
        assert_eq!(
            relative(Path::new("/x/out"), Path::new("/a/heads")),
            "../../a/heads"
        );
        assert_eq!(relative(Path::new("/a"), Path::new("/a")), ".");
    }
}
