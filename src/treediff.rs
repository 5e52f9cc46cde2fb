//! Comparing two file trees and saying, per file, how they differ: for
//! `strata build --check`, which unpacks a cached artifact and its rebuild
//! side by side.
//!
//! Each difference is one of: a file only on one side (added / removed), a
//! different file type, mode, symlink target or content. Content is shown as
//! a short unified diff when both sides are text (UTF-8 without NUL), else
//! as the first differing byte offset with a few hex bytes of each side,
//! which is what diffoscope and reprotest lead with.
//!
//! The decision a reader may question: the line diff is a plain
//! longest-common-subsequence table over the lines left once the common
//! head and tail are cut off, with a size cap beyond which only the first
//! differing line is shown. Reproducibility differences are nearly always a
//! few lines (a date, a path, a random id), so a Myers diff or a dependency
//! for it would buy nothing here.
//!
//! A content or symlink difference that disappears once the rebuild's build
//! directory is replaced by the original's is reported as `build-path`: the
//! file embeds its build directory (not relocatable) but is otherwise the same.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// How one path differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Only in the new tree.
    Added,
    /// Only in the old tree.
    Removed,
    /// A file on one side, a directory or symlink on the other.
    Type,
    Mode,
    Symlink,
    Content,
    /// The same once the new tree's build directory is replaced by the old one's.
    BuildPath,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Added => "added",
            Kind::Removed => "removed",
            Kind::Type => "type",
            Kind::Mode => "mode",
            Kind::Symlink => "symlink",
            Kind::Content => "content",
            Kind::BuildPath => "build-path",
        }
    }
}

/// One differing path (relative to the trees' roots) and what differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub path: String,
    pub kind: Kind,
    /// For people: a unified diff, the first differing bytes, the two modes…
    pub detail: String,
}

/// Where the new tree was built and where the old one was: a difference
/// that vanishes once `new` is replaced by `old` is a [`Kind::BuildPath`].
pub struct Relocation<'a> {
    pub new: &'a [u8],
    pub old: &'a [u8],
}

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File { mode: u32, path: PathBuf },
    Dir { mode: u32 },
    Symlink(PathBuf),
}

/// Text diffs are shown for files up to this size.
const TEXT_LIMIT: u64 = 1 << 20;
/// Lines of diff shown per file.
const SHOWN_LINES: usize = 12;
/// Bytes of each side shown at the first binary difference.
const SHOWN_BYTES: usize = 8;

/// Every difference between the trees `old` and `new`, sorted by path.
pub fn compare(old: &Path, new: &Path, reloc: Option<&Relocation>) -> io::Result<Vec<Difference>> {
    let a = entries(old)?;
    let b = entries(new)?;
    let mut out = Vec::new();
    let paths: std::collections::BTreeSet<&PathBuf> = a.keys().chain(b.keys()).collect();
    for p in paths {
        let diff = |kind, detail: String| Difference {
            path: p.to_string_lossy().into_owned(),
            kind,
            detail,
        };
        match (a.get(p), b.get(p)) {
            (Some(x), None) => out.push(diff(
                Kind::Removed,
                format!("only in the cached artifact ({})", describe(x)),
            )),
            (None, Some(y)) => out.push(diff(
                Kind::Added,
                format!("only in the rebuild ({})", describe(y)),
            )),
            (Some(x), Some(y)) => {
                if let Some(d) = compare_entry(x, y, reloc)? {
                    out.push(diff(d.0, d.1));
                }
            }
            (None, None) => unreachable!("path came from one of the maps"),
        }
    }
    Ok(out)
}

fn describe(e: &Entry) -> String {
    match e {
        Entry::File { .. } => "file".into(),
        Entry::Dir { .. } => "directory".into(),
        Entry::Symlink(t) => format!("symlink to {}", t.display()),
    }
}

fn compare_entry(
    x: &Entry,
    y: &Entry,
    reloc: Option<&Relocation>,
) -> io::Result<Option<(Kind, String)>> {
    use std::os::unix::ffi::OsStrExt;
    Ok(match (x, y) {
        (Entry::Dir { mode: m }, Entry::Dir { mode: n }) if m != n => {
            Some((Kind::Mode, format!("mode {m:o} → {n:o}")))
        }
        (Entry::Dir { .. }, Entry::Dir { .. }) => None,
        (Entry::Symlink(s), Entry::Symlink(t)) if s != t => {
            let relocated = reloc.is_some_and(|r| {
                replace(t.as_os_str().as_bytes(), r.new, r.old) == s.as_os_str().as_bytes()
            });
            let kind = if relocated {
                Kind::BuildPath
            } else {
                Kind::Symlink
            };
            Some((kind, format!("target {} → {}", s.display(), t.display())))
        }
        (Entry::Symlink(_), Entry::Symlink(_)) => None,
        (Entry::File { mode: m, path: p }, Entry::File { mode: n, path: q }) => {
            match content(p, q, reloc)? {
                Some(d) => Some(d),
                None if m != n => Some((Kind::Mode, format!("mode {m:o} → {n:o}"))),
                None => None,
            }
        }
        _ => Some((Kind::Type, format!("{} → {}", describe(x), describe(y)))),
    })
}

/// How the contents of `old` and `new` differ, if they do.
fn content(
    old: &Path,
    new: &Path,
    reloc: Option<&Relocation>,
) -> io::Result<Option<(Kind, String)>> {
    let (ma, mb) = (fs::metadata(old)?, fs::metadata(new)?);
    if ma.len() == mb.len() && same_bytes(old, new)? {
        return Ok(None);
    }
    if ma.len() > TEXT_LIMIT || mb.len() > TEXT_LIMIT {
        return first_difference(old, new, ma.len(), mb.len()).map(|d| Some((Kind::Content, d)));
    }
    let (a, b) = (fs::read(old)?, fs::read(new)?);
    let kind = match reloc {
        Some(r) if replace(&b, r.new, r.old) == a => Kind::BuildPath,
        _ => Kind::Content,
    };
    let detail = match (text(&a), text(&b)) {
        (Some(x), Some(y)) => unified(x, y),
        _ => binary_detail(&a, &b),
    };
    let detail = if kind == Kind::BuildPath {
        format!("embeds its build directory: not relocatable\n{detail}")
    } else {
        detail
    };
    Ok(Some((kind, detail)))
}

fn text(b: &[u8]) -> Option<&str> {
    if b.contains(&0) {
        return None;
    }
    std::str::from_utf8(b).ok()
}

/// `haystack` with every `from` replaced by `to`.
fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// The first differing offset of two large files, read in chunks.
fn first_difference(a: &Path, b: &Path, la: u64, lb: u64) -> io::Result<String> {
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let mut offset = 0u64;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        let k = n.min(m);
        let at = (0..k).find(|&i| ba[i] != bb[i]).or((n != m).then_some(k));
        if let Some(i) = at {
            // The bytes shown may run past this chunk: a few bytes only.
            let shown = |buf: &[u8], len: usize| buf[i.min(len)..len.min(i + SHOWN_BYTES)].to_vec();
            return Ok(offset_detail(
                offset + i as u64,
                &shown(&ba, n),
                &shown(&bb, m),
                la,
                lb,
            ));
        }
        if n == 0 {
            return Ok("the files are equal".into());
        }
        offset += n as u64;
    }
}

/// Fills `buf` unless the file ends first; returns how much was read.
fn read_full(f: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn binary_detail(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let end = |v: &[u8]| v.len().min(at + SHOWN_BYTES);
    offset_detail(
        at as u64,
        &a[at.min(a.len())..end(a)],
        &b[at.min(b.len())..end(b)],
        a.len() as u64,
        b.len() as u64,
    )
}

fn offset_detail(at: u64, a: &[u8], b: &[u8], la: u64, lb: u64) -> String {
    let hex = |v: &[u8]| {
        if v.is_empty() {
            "(end of file)".to_string()
        } else {
            v.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let sizes = if la == lb {
        format!("both {la} bytes")
    } else {
        format!("{la} → {lb} bytes")
    };
    format!(
        "binary files differ ({sizes}); first difference at byte {at} (0x{at:x}): cached {} | rebuilt {}",
        hex(a),
        hex(b)
    )
}

/// A short unified diff of two texts (`-` cached, `+` rebuilt).
pub fn unified(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let mut lines: Vec<String> = Vec::new();
    // One line of context on each side of the changed block.
    let ctx_before = head.min(1);
    let ctx_after = tail.min(1);
    for l in &a[head - ctx_before..head] {
        lines.push(format!(" {l}"));
    }
    if ma.len().saturating_mul(mb.len()) <= 250_000 {
        lines.extend(lcs_diff(ma, mb));
    } else {
        lines.extend(ma.iter().take(1).map(|l| format!("-{l}")));
        lines.extend(mb.iter().take(1).map(|l| format!("+{l}")));
    }
    for l in &a[a.len() - tail..a.len() - tail + ctx_after] {
        lines.push(format!(" {l}"));
    }
    let total = lines.len();
    lines.truncate(SHOWN_LINES);
    if total > SHOWN_LINES {
        lines.push(format!("… {} more diff lines", total - SHOWN_LINES));
    }
    if ma.is_empty() && mb.is_empty() {
        // Only line endings differ (e.g. a final newline).
        lines.push("(the files differ only in line endings or a final newline)".into());
    }
    let range = |start: usize, len: usize| format!("{},{len}", start + 1);
    format!(
        "--- cached\n+++ rebuilt\n@@ -{} +{} @@\n{}",
        range(head - ctx_before, ma.len() + ctx_before + ctx_after),
        range(head - ctx_before, mb.len() + ctx_before + ctx_after),
        lines.join("\n")
    )
}

/// `-`/`+`/` ` lines turning `a` into `b`, by a longest common subsequence.
fn lcs_diff(a: &[&str], b: &[&str]) -> Vec<String> {
    let (n, m) = (a.len(), b.len());
    // len[i][j]: LCS length of a[i..] and b[j..].
    let mut len = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            len[i][j] = if a[i] == b[j] {
                len[i + 1][j + 1] + 1
            } else {
                len[i + 1][j].max(len[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(format!(" {}", a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || len[i + 1][j] >= len[i][j + 1]) {
            // Removals before additions, as diff(1) shows them.
            out.push(format!("-{}", a[i]));
            i += 1;
        } else {
            out.push(format!("+{}", b[j]));
            j += 1;
        }
    }
    out
}

/// Every path under `root` (relative) with what it is. Keyed by the path
/// itself, not its text: two names that differ only in bytes that are not
/// UTF-8 are two files.
fn entries(root: &Path) -> io::Result<BTreeMap<PathBuf, Entry>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for e in fs::read_dir(&dir).map_err(crate::fsutil::with_path(&dir))? {
            let e = e?;
            let rel = rel.join(e.file_name());
            let abs = e.path();
            let md = fs::symlink_metadata(&abs).map_err(crate::fsutil::with_path(&abs))?;
            let mode = md.permissions().mode() & 0o7777;
            let entry = if md.file_type().is_symlink() {
                Entry::Symlink(fs::read_link(&abs)?)
            } else if md.is_dir() {
                stack.push(rel.clone());
                Entry::Dir { mode }
            } else {
                Entry::File { mode, path: abs }
            };
            out.insert(rel, entry);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_differ_only_in_non_utf8_bytes_are_different_files() {
        use std::os::unix::ffi::OsStrExt;
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        fs::write(a.path().join(std::ffi::OsStr::from_bytes(b"x\xff")), "same").unwrap();
        fs::write(b.path().join(std::ffi::OsStr::from_bytes(b"x\xfe")), "same").unwrap();
        let d = compare(a.path(), b.path(), None).unwrap();
        let kinds: Vec<_> = d.iter().map(|d| d.kind).collect();
        // Sorted by bytes: b's `x\xfe` (only in the rebuild), then a's `x\xff`.
        assert_eq!(kinds, [Kind::Added, Kind::Removed], "{d:?}");
    }

    fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let p = t.path().join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, c).unwrap();
        }
        t
    }

    #[test]
    fn equal_trees_have_no_difference() {
        let a = tree(&[("x/y", b"1"), ("z", b"2")]);
        let b = tree(&[("x/y", b"1"), ("z", b"2")]);
        assert!(compare(a.path(), b.path(), None).unwrap().is_empty());
    }

    #[test]
    fn names_added_removed_mode_symlink_and_type_differences() {
        let a = tree(&[("gone", b"1"), ("same", b"s"), ("kind", b"f")]);
        let b = tree(&[("new", b"1"), ("same", b"s")]);
        fs::create_dir(b.path().join("kind")).unwrap();
        fs::set_permissions(b.path().join("same"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(a.path().join("same"), fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink("one", a.path().join("link")).unwrap();
        std::os::unix::fs::symlink("two", b.path().join("link")).unwrap();
        let d = compare(a.path(), b.path(), None).unwrap();
        let got: Vec<(&str, Kind)> = d.iter().map(|d| (d.path.as_str(), d.kind)).collect();
        assert_eq!(
            got,
            [
                ("gone", Kind::Removed),
                ("kind", Kind::Type),
                ("link", Kind::Symlink),
                ("new", Kind::Added),
                ("same", Kind::Mode),
            ]
        );
        assert_eq!(d[4].detail, "mode 644 → 755");
        assert_eq!(d[2].detail, "target one → two");
    }

    #[test]
    fn a_text_difference_is_a_unified_diff_with_context() {
        let a = tree(&[("t", b"a\nb\nbuilt at 1\nc\nd\n")]);
        let b = tree(&[("t", b"a\nb\nbuilt at 2\nc\nd\n")]);
        let d = compare(a.path(), b.path(), None).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, Kind::Content);
        assert_eq!(
            d[0].detail,
            "--- cached\n+++ rebuilt\n@@ -2,3 +2,3 @@\n b\n-built at 1\n+built at 2\n c"
        );
    }

    #[test]
    fn a_line_diff_keeps_common_lines_between_changes() {
        let out = lcs_diff(&["1", "x", "2"], &["1", "2", "y"]);
        assert_eq!(out, [" 1", "-x", " 2", "+y"]);
    }

    #[test]
    fn a_binary_difference_shows_the_first_offset_and_bytes() {
        let a = tree(&[("b", b"\x7fELF\0\x01\x02\x03\x04")]);
        let b = tree(&[("b", b"\x7fELF\0\x01\x09\x03\x04")]);
        let d = compare(a.path(), b.path(), None).unwrap();
        assert_eq!(
            d[0].detail,
            "binary files differ (both 9 bytes); first difference at byte 6 (0x6): cached 02 03 04 | rebuilt 09 03 04"
        );
    }

    #[test]
    fn a_large_file_difference_is_found_past_the_first_chunk() {
        let mut x = vec![7u8; 3 * 1024 * 1024];
        let a = tree(&[("big", &x)]);
        x[2 * 1024 * 1024 + 5] = 8;
        let b = tree(&[("big", &x)]);
        let d = compare(a.path(), b.path(), None).unwrap();
        let at = 2 * 1024 * 1024 + 5;
        assert!(
            d[0].detail
                .contains(&format!("first difference at byte {at} ")),
            "{}",
            d[0].detail
        );
        assert!(d[0].detail.contains("cached 07 07 07"), "{}", d[0].detail);
        assert!(d[0].detail.contains("rebuilt 08 07 07"), "{}", d[0].detail);
    }

    #[test]
    fn a_difference_only_in_the_build_path_is_named_so() {
        let a = tree(&[("cfg", b"prefix=/p/build/m\n")]);
        let b = tree(&[("cfg", b"prefix=/p/build/.strata/check/9/build/m\n")]);
        let reloc = Relocation {
            new: b"/p/build/.strata/check/9/build",
            old: b"/p/build",
        };
        let d = compare(a.path(), b.path(), Some(&reloc)).unwrap();
        assert_eq!(d[0].kind, Kind::BuildPath);
        assert!(d[0].detail.starts_with("embeds its build directory"));
        let d = compare(a.path(), b.path(), None).unwrap();
        assert_eq!(d[0].kind, Kind::Content);
    }
}
