//! The import report: per module what was translated and what was not (with
//! the reason), per board whether it evaluated or the `$(error …)` it stopped
//! with. Rendered as text for people and as JSON for tools; nothing the
//! import could not carry over is left out of it.

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The Heads tree imported.
    pub heads: String,
    /// The project written.
    pub out: String,
    /// `GNU Make x.y` used to evaluate.
    pub make: String,
    pub boards: BTreeMap<String, BoardReport>,
    pub modules: BTreeMap<String, ModuleReport>,
    /// Output files: what happened to each (written, unchanged, removed, left alone).
    pub files: Vec<FileChange>,
    /// What the tree's Makefile code wrote into strata's copy of the tree
    /// while it was evaluated (the tree itself is never written to).
    pub writes: Vec<TreeWrite>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TreeWrite {
    /// Relative to the tree.
    pub path: String,
    /// `created`, `changed` or `removed`.
    pub change: String,
    /// The tree's make files that run code and mention the path's name:
    /// most likely the writer.
    pub named_in: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BoardReport {
    /// `imported` or `error`.
    pub status: String,
    /// The `$(error …)` (or other failure) make stopped with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Modules the target selects.
    pub modules: Vec<String>,
    /// Entries of `modules-y` that are not modules, and `BOARD_TARGETS`
    /// that are not the board's image, with the reason.
    pub skipped: Vec<String>,
    /// The files `strata build <board>` leaves in `install/`.
    pub install: Vec<String>,
    /// What of the board's own make code (`BOARD_TARGETS`) was not
    /// translated, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_translated: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ModuleReport {
    /// The Heads module name (before a version suffix was added).
    pub heads_name: String,
    /// `modules/<file>` that defines it.
    pub module_file: String,
    /// Boards that build it.
    pub boards: usize,
    pub translated: Vec<String>,
    /// What was not translated, each with its reason.
    pub not_translated: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileChange {
    /// Relative to the output directory.
    pub path: String,
    /// `new`, `changed`, `unchanged`, `removed`, or `left alone`.
    pub change: String,
}

impl Report {
    pub fn fully_translated(&self) -> usize {
        self.modules
            .values()
            .filter(|m| m.not_translated.is_empty())
            .count()
    }

    pub fn boards_imported(&self) -> usize {
        self.boards
            .values()
            .filter(|b| b.status == "imported")
            .count()
    }

    /// The modules not fully translated, grouped by their module file: the
    /// modules one file defines (coreboot's variants) share most reasons, so
    /// each reason is printed once, naming the modules it applies to when it
    /// is not all of them.
    fn untranslated_text(&self) -> String {
        let mut files: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, m) in &self.modules {
            if !m.not_translated.is_empty() {
                files.entry(&m.module_file).or_default().push(name);
            }
        }
        let mut s = String::new();
        for (file, names) in files {
            let mut reasons: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for n in &names {
                for r in &self.modules[*n].not_translated {
                    reasons.entry(r).or_default().push(n);
                }
            }
            if names.len() == 1 {
                s.push_str(&format!(
                    "module {} (modules/{file}): not fully translated\n",
                    names[0]
                ));
            } else {
                s.push_str(&format!(
                    "{} modules of modules/{file} ({}): not fully translated\n",
                    names.len(),
                    names.join(", ")
                ));
            }
            for (r, ms) in reasons {
                if ms.len() == names.len() {
                    s.push_str(&format!("  - {r}\n"));
                } else {
                    s.push_str(&format!("  - {r} [{}]\n", ms.join(", ")));
                }
            }
        }
        s
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "imported {} into {} with {}\n",
            self.heads, self.out, self.make
        ));
        s.push_str(&format!(
            "boards: {} imported, {} failed; modules: {} ({} fully translated)\n",
            self.boards_imported(),
            self.boards.len() - self.boards_imported(),
            self.modules.len(),
            self.fully_translated()
        ));
        for (name, b) in &self.boards {
            if let Some(e) = &b.error {
                s.push_str(&format!("board {name}: not imported: $(error {e})\n"));
            }
        }
        let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
        for b in self.boards.values() {
            for x in &b.skipped {
                *skipped.entry(x).or_default() += 1;
            }
        }
        for (x, n) in skipped {
            s.push_str(&format!("{n} board(s): {x}\n"));
        }
        let mut untranslated: BTreeMap<&str, usize> = BTreeMap::new();
        for b in self.boards.values() {
            for x in &b.not_translated {
                *untranslated.entry(x).or_default() += 1;
            }
        }
        for (x, n) in untranslated {
            s.push_str(&format!("{n} board(s): {x}\n"));
        }
        if !self.writes.is_empty() {
            s.push_str(
                "make wrote into strata's copy of the tree while evaluating it \
                 (the tree itself was not touched):\n",
            );
        }
        for w in &self.writes {
            s.push_str(&format!("  {}: {}", w.path, w.change));
            if !w.named_in.is_empty() {
                s.push_str(&format!(" (named in {})", w.named_in.join(", ")));
            }
            s.push('\n');
        }
        s.push_str(&self.untranslated_text());
        for f in &self.files {
            if f.change != "unchanged" {
                s.push_str(&format!("{}: {}\n", f.path, f.change));
            }
        }
        s
    }
}
