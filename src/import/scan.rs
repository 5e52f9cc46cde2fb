//! A line scan of Heads's module files for what the variable translation
//! cannot carry: rule bodies written directly in the module file (Heads
//! targets such as `coreboot.save_in_defconfig_format_in_place`, or extra
//! prerequisites) and `$(shell …)` calls, whose value depends on the host
//! that evaluated them. This is reporting only; the values themselves always
//! come from GNU make, never from this scan.

use std::path::Path;

/// What a module file holds beyond variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileScan {
    /// `(line, target)` of each rule outside `define … endef`.
    pub rules: Vec<(usize, String)>,
    /// Each rule's prerequisites as written, by its line.
    pub prereqs: std::collections::BTreeMap<usize, String>,
    /// `(line, text)` of each line calling `$(shell …)`.
    pub shells: Vec<(usize, String)>,
    /// Modules whose `<m>_version` the file assigns on more than one line
    /// outside `define` (Heads's `linux`, one version per
    /// `CONFIG_LINUX_VERSION`): the version is the board's choice, so the
    /// strata name always carries it, whichever boards are imported.
    pub versioned: std::collections::BTreeSet<String>,
}

/// Scans `modules/<file>`; an unreadable file scans as empty.
pub fn scan_file(path: &Path) -> FileScan {
    std::fs::read_to_string(path)
        .map(|t| scan(&t))
        .unwrap_or_default()
}

pub fn scan(text: &str) -> FileScan {
    let mut out = FileScan::default();
    let mut depth = 0usize;
    let mut continued = false;
    let mut versions: std::collections::BTreeMap<String, usize> = Default::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let was_continued = continued;
        continued = line.ends_with('\\');
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        if line.contains("$(shell") {
            out.shells.push((n, line.trim().to_string()));
        }
        let word = trimmed.split_whitespace().next().unwrap_or("");
        if word == "define" {
            depth += 1;
            continue;
        }
        if word == "endef" {
            depth = depth.saturating_sub(1);
            continue;
        }
        if depth > 0 || was_continued {
            continue;
        }
        if let Some(m) = version_assignment(trimmed) {
            *versions.entry(m).or_default() += 1;
        }
        if line.starts_with('\t') {
            continue;
        }
        if matches!(
            word,
            "ifeq"
                | "ifneq"
                | "ifdef"
                | "ifndef"
                | "else"
                | "endif"
                | "include"
                | "-include"
                | "export"
                | "override"
                | "unexport"
        ) {
            continue;
        }
        if let Some(target) = rule_target(trimmed) {
            let rest = trimmed[trimmed.find(target.as_str()).unwrap_or(0) + target.len()..]
                .trim_start()
                .trim_start_matches(':')
                .trim();
            out.prereqs.insert(n, rest.to_string());
            out.rules.push((n, target));
        }
    }
    out.versioned = versions
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(m, _)| m)
        .collect();
    out
}

/// `m` of a line `m_version := …` (`=`, `?=`, `:=`), where `m` is a
/// literal module name.
fn version_assignment(line: &str) -> Option<String> {
    let (lhs, _) = line.split_once('=')?;
    let lhs = lhs.trim_end_matches([':', '?', '+']).trim();
    let m = lhs.strip_suffix("_version")?;
    let literal = !m.is_empty()
        && m.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    literal.then(|| m.to_string())
}

/// The target of a rule line (`target: prerequisites`), or None for an
/// assignment or anything else.
fn rule_target(line: &str) -> Option<String> {
    let mut paren = 0i32;
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'(' | b'{' => paren += 1,
            b')' | b'}' => paren -= 1,
            b'=' if paren == 0 => return None,
            b':' if paren == 0 => {
                if b.get(i + 1) == Some(&b'=') || b.get(i + 1..i + 3) == Some(b":=") {
                    return None;
                }
                let t = line[..i].trim();
                return (!t.is_empty()).then(|| t.to_string());
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rules_and_shells_but_not_assignments_or_defines() {
        let text = "a_version := 1\nb ?= $(shell uname)\ndefine x =\nfoo: bar\nendef\n\
                    $(build)/$(a_dir)/.build: extra\n\tcp a b\nc_target := \\\n\tx: y\n";
        let s = scan(text);
        assert_eq!(s.rules, vec![(6, "$(build)/$(a_dir)/.build".to_string())]);
        assert_eq!(s.prereqs[&6], "extra");
        assert_eq!(s.shells.len(), 1);
        assert_eq!(s.shells[0].0, 2);
    }

    #[test]
    fn a_version_assigned_per_board_is_found() {
        let text = "ifeq \"$(CONFIG_V)\" \"1\"\nlx_version := 1\nelse\n\tlx_version := 2\nendif\n\
                    one_version := 3\n#lx_version := 9\ndefine d =\nx_version := 1\nx_version := 2\nendef\n";
        let s = scan(text);
        assert_eq!(s.versioned.iter().collect::<Vec<_>>(), ["lx"]);
    }
}
