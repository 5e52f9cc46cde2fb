//! `[[download]]`s pinned by their module's own source (`sha1-from`):
//! musl-cross-make keeps the SHA-1 of every tarball its Makefile fetches in
//! `hashes/`, coreboot in `util/crossgcc/sum/`, and the versions in
//! variables (`GCC_VER = …` in musl-cross-make's Makefile). A module file
//! that copied them would go stale with each source bump; instead it names
//! where they are, and this module reads them out of the verified source
//! package (without unpacking it) and returns ordinary sha1-pinned
//! downloads, which `fetch` then verifies and records in `strata.lock`.
//!
//! The decision a reader may question: the resolved pin is not a key input.
//! It needs none: it is a function of the source archive, whose sha256 (or
//! git rev) is already in the unpack key, and of the `sha1-from` text, which
//! is (see `Pin::label`).

use crate::manifest::{Download, Module, Pin, SourcePin};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SourcePinError {
    #[error(
        "module {module}: no file of its source matches sha1-from `{pattern}`\n  hint: check the download's sha1-from in {manifest} against the source tree (`strata prepare {module}`)"
    )]
    NoMatch {
        module: String,
        pattern: String,
        manifest: String,
    },
    #[error(
        "module {module}: sha1-from `{pattern}` matches {} files of its source ({})\n  hint: make the pattern in {manifest} match one file",
        matches.len(), matches.join(", ")
    )]
    Ambiguous {
        module: String,
        pattern: String,
        matches: Vec<String>,
        manifest: String,
    },
    #[error(
        "module {module}: {path} in its source does not start with a sha1 (40 hex digits)\n  hint: sha1-from must name a sum file (`<sha1>  <file>` lines)"
    )]
    BadSum { module: String, path: String },
    #[error(
        "module {module}: `{{{var}}}` is not set by {}\n  hint: name a variable the file assigns (`NAME = value`), or set vars-from in {manifest}",
        vars_from.as_deref().unwrap_or("any vars-from file")
    )]
    UnknownVar {
        module: String,
        var: String,
        vars_from: Option<String>,
        manifest: String,
    },
    #[error(
        "module {module}: the resolved file name `{file}` is not a plain file name\n  hint: set file = \"…\" in the download in {manifest}"
    )]
    BadFile {
        module: String,
        file: String,
        manifest: String,
    },
    #[error(
        "module {module}: the download URL `{url}` is not http://, https:// or an absolute file:///\n  hint: check the url of the download in {manifest} and the variables it uses"
    )]
    BadUrl {
        module: String,
        url: String,
        manifest: String,
    },
    #[error("module {module}: reading its source for sha1-from: {source}")]
    Read {
        module: String,
        source: crate::unpack::UnpackError,
    },
}

/// Whether any download of `m` is pinned by its source.
pub fn needs_source(m: &Module) -> bool {
    m.downloads
        .iter()
        .any(|d| matches!(d.pin, Pin::Sha1From(_)))
}

/// `NAME = value` assignments of a Makefile or shell script (`=`, `:=`,
/// `?=`, `NAME=value`); a later plain assignment wins, `?=` only fills a
/// gap. `$(X)` and `${X}` in values are expanded from the same set.
pub fn parse_vars(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('\t') || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((lhs, rhs)) = line.split_once('=') else {
            continue;
        };
        let weak = lhs.ends_with('?');
        let name = lhs.trim_end_matches([':', '?', '+']).trim();
        let name = name.strip_prefix("export ").unwrap_or(name).trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let mut value = rhs.trim().to_string();
        if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')))
        {
            value = value[1..value.len() - 1].to_string();
        }
        if weak {
            vars.entry(name.to_string()).or_insert(value);
        } else {
            vars.insert(name.to_string(), value);
        }
    }
    let raw = vars.clone();
    for v in vars.values_mut() {
        for _ in 0..8 {
            let next = expand_refs(v, &raw);
            if next == *v {
                break;
            }
            *v = next;
        }
    }
    vars
}

/// `$(X)` / `${X}` replaced by `vars[X]` (unknown ones left as they are).
fn expand_refs(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let close = match after.chars().next() {
            Some('(') => ')',
            Some('{') => '}',
            _ => {
                out.push('$');
                rest = after;
                continue;
            }
        };
        match after.find(close) {
            Some(j) if vars.contains_key(&after[1..j]) => {
                out.push_str(&vars[&after[1..j]]);
                rest = &after[j + 1..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `{NAME}` in `s` replaced from `vars`; the first unknown name is the error.
fn fill(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let name = &rest[i + 1..i + j];
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => return Err(name.to_string()),
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Does `path` match `pattern`, where `*` stands for any run of characters
/// other than `/`?
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), path.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star.filter(|_| s[mark] != b'/') {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The pattern with every `{NAME}` widened to `*`: what to read from the
/// archive before the variables are known.
fn widened(pattern: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push('*');
                }
            }
            '}' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            c => out.push(c),
        }
    }
    out
}

/// Every download of `m` with its pin resolved: `sha1-from` ones read out of
/// the verified source package `archive`; the others as declared.
pub fn resolve(m: &Module, archive: &Path) -> Result<Vec<Download>, SourcePinError> {
    if !needs_source(m) {
        return Ok(m.downloads.clone());
    }
    let pins: Vec<&SourcePin> = m
        .downloads
        .iter()
        .filter_map(|d| match &d.pin {
            Pin::Sha1From(p) => Some(p),
            _ => None,
        })
        .collect();
    let globs: Vec<String> = pins
        .iter()
        .flat_map(|p| p.path.split('|').map(|a| widened(a.trim())))
        .collect();
    let var_files: Vec<&str> = pins.iter().filter_map(|p| p.vars_from.as_deref()).collect();
    let want = |rel: &str| var_files.contains(&rel) || globs.iter().any(|g| glob_match(g, rel));
    let files: BTreeMap<String, Vec<u8>> =
        crate::unpack::peek::read_files(archive, m.strip_components, &want)
            .map_err(|source| SourcePinError::Read {
                module: m.name.clone(),
                source,
            })?
            .into_iter()
            .collect();
    m.downloads
        .iter()
        .map(|d| match &d.pin {
            Pin::Sha1From(p) => resolve_one(m, d, p, &files),
            _ => Ok(d.clone()),
        })
        .collect()
}

fn resolve_one(
    m: &Module,
    d: &Download,
    p: &SourcePin,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Download, SourcePinError> {
    let manifest = m.manifest_path.display().to_string();
    let mut vars = p
        .vars_from
        .as_ref()
        .and_then(|f| files.get(f))
        .map(|b| parse_vars(&String::from_utf8_lossy(b)))
        .unwrap_or_default();
    let unknown = |var: String| SourcePinError::UnknownVar {
        module: m.name.clone(),
        var,
        vars_from: p.vars_from.clone(),
        manifest: manifest.clone(),
    };
    let pattern = fill(&p.path, &vars).map_err(unknown)?;
    // `a|b`: alternatives (coreboot's iasl sum is `R<ver>` or, before 4.21,
    // `acpica-unix2-<ver>`); together they must match one file.
    let matches: Vec<&String> = files
        .keys()
        .filter(|f| pattern.split('|').any(|a| glob_match(a.trim(), f)))
        .collect();
    let sum_file = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(SourcePinError::NoMatch {
                module: m.name.clone(),
                pattern,
                manifest,
            });
        }
        many => {
            return Err(SourcePinError::Ambiguous {
                module: m.name.clone(),
                pattern,
                matches: many.iter().map(|s| s.to_string()).collect(),
                manifest,
            });
        }
    };
    let text = String::from_utf8_lossy(&files[sum_file]).into_owned();
    let sha1 = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if sha1.len() != 40 || !sha1.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SourcePinError::BadSum {
            module: m.name.clone(),
            path: sum_file.clone(),
        });
    }
    let file = if d.file.is_empty() {
        let base = sum_file.rsplit('/').next().unwrap_or(sum_file);
        base.rsplit_once('.')
            .map_or(base, |(stem, _)| stem)
            .to_string()
    } else {
        fill(&d.file, &vars).map_err(unknown)?
    };
    if file.is_empty() || file.contains('/') || file.starts_with('.') {
        return Err(SourcePinError::BadFile {
            module: m.name.clone(),
            file,
            manifest,
        });
    }
    // `{stem}`: the file without its archive suffix (`gcc-14.2.0`);
    // `{version}`: the stem after its first `-` (`14.2.0`).
    let stem = match file.find(".tar") {
        Some(i) => &file[..i],
        None => file.rsplit_once('.').map_or(file.as_str(), |(s, _)| s),
    };
    let version = stem.split_once('-').map_or(stem, |(_, v)| v);
    vars.insert("stem".to_string(), stem.to_string());
    vars.insert("version".to_string(), version.to_string());
    vars.insert("file".to_string(), file.clone());
    // A URL using a variable the source does not set is left out (the
    // Makefile offers sites for cases this one is not); none left is an error.
    let mut urls = Vec::new();
    let mut missing = None;
    for u in &d.urls {
        match fill(u, &vars) {
            Ok(u) => urls.push(u),
            Err(v) => missing = missing.or(Some(v)),
        }
    }
    if let (true, Some(v)) = (urls.is_empty(), missing) {
        return Err(unknown(v));
    }
    if let Some(u) = urls.iter().find(|u| {
        !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with("file:///"))
    }) {
        return Err(SourcePinError::BadUrl {
            module: m.name.clone(),
            url: u.clone(),
            manifest,
        });
    }
    Ok(Download {
        urls,
        file,
        pin: Pin::Sha1(sha1),
        dest: d.dest.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_stay_within_one_component() {
        assert!(glob_match("sum/gmp-*.cksum", "sum/gmp-6.3.0.tar.xz.cksum"));
        assert!(!glob_match("sum/gmp-*.cksum", "sum/gmp-6/x.cksum"));
        assert!(glob_match(
            "hashes/gcc-9.4.0.tar.*.sha1",
            "hashes/gcc-9.4.0.tar.xz.sha1"
        ));
        assert!(!glob_match(
            "hashes/gcc-9.4.0.tar.*.sha1",
            "hashes/gcc-9.4.1.tar.xz.sha1"
        ));
        assert!(glob_match("R*.cksum", "R10_20_22.tar.gz.cksum"));
        assert!(!glob_match("a", "ab"));
        assert_eq!(
            widened("hashes/gcc-{GCC_VER}.tar.*.sha1"),
            "hashes/gcc-*.tar.*.sha1"
        );
    }

    #[test]
    fn make_and_shell_assignments_are_read_and_expanded() {
        let v = parse_vars(
            "GNU_SITE = https://ftp.gnu.org/pub/gnu\nGCC_SITE = $(GNU_SITE)/gcc\nGCC_VER = 9.2.0\n\
             GCC_VER := 9.4.0\nMUSL_VER ?= 1.2.3\nMUSL_VER ?= 0\nGMP_VERSION=\"6.3.0\"\n\
             \tRECIPE = no\n# C = no\nifeq ($(X),y)\n",
        );
        assert_eq!(v["GCC_SITE"], "https://ftp.gnu.org/pub/gnu/gcc");
        assert_eq!(v["GCC_VER"], "9.4.0");
        assert_eq!(v["MUSL_VER"], "1.2.3");
        assert_eq!(v["GMP_VERSION"], "6.3.0");
        assert!(!v.contains_key("RECIPE") && !v.contains_key("C"));
        assert_eq!(
            fill("{GCC_SITE}/gcc-{GCC_VER}/", &v).unwrap(),
            "https://ftp.gnu.org/pub/gnu/gcc/gcc-9.4.0/"
        );
        assert_eq!(fill("{NOPE}", &v).unwrap_err(), "NOPE");
    }
}
