//! Parsing unified diffs, including git's extended headers.
//!
//! Text outside file sections (a `git format-patch` mail header, the
//! signature after the last hunk) is ignored, as GNU patch does. Paths are
//! taken with `-p1` semantics. Binary patches are refused: strata applies
//! text patches only.

use std::fmt;

/// One line of a hunk, with its line terminator (none when the patch says
/// `\ No newline at end of file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HunkLine {
    Context(Vec<u8>),
    Remove(Vec<u8>),
    Add(Vec<u8>),
}

/// One `@@ -a,b +c,d @@` hunk.
#[derive(Clone, Debug)]
pub struct Hunk {
    pub old_start: usize,
    pub old_len: usize,
    pub new_start: usize,
    pub new_len: usize,
    pub header: String,
    /// 1-based line of the header in the patch file.
    pub line: usize,
    pub lines: Vec<HunkLine>,
}

impl Hunk {
    /// The lines the file must contain for the hunk to apply.
    pub fn old_lines(&self) -> Vec<&[u8]> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                HunkLine::Context(b) | HunkLine::Remove(b) => Some(b.as_slice()),
                HunkLine::Add(_) => None,
            })
            .collect()
    }

    /// The lines the hunk leaves in their place.
    pub fn new_lines(&self) -> Vec<&[u8]> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                HunkLine::Context(b) | HunkLine::Add(b) => Some(b.as_slice()),
                HunkLine::Remove(_) => None,
            })
            .collect()
    }
}

/// What a file section does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Modify,
    Create,
    Delete,
    Rename,
}

/// The changes to one file.
#[derive(Clone, Debug)]
pub struct FilePatch {
    /// Path before the change (`None` for a created file).
    pub old_path: Option<String>,
    /// Path after the change (`None` for a deleted file).
    pub new_path: Option<String>,
    pub change: Change,
    /// Mode of a created file or new mode of a changed one (e.g. 0o755).
    pub new_mode: Option<u32>,
    pub hunks: Vec<Hunk>,
    /// 1-based line in the patch file where this section starts.
    pub line: usize,
}

impl FilePatch {
    /// The path to report in messages.
    pub fn display_path(&self) -> &str {
        self.new_path
            .as_deref()
            .or(self.old_path.as_deref())
            .unwrap_or("?")
    }
}

/// A malformed patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::error::Error for ParseError {}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

struct Builder {
    fp: FilePatch,
    git: bool,
    rename_from: Option<String>,
    rename_to: Option<String>,
}

impl Builder {
    fn new(line: usize, git: bool) -> Builder {
        Builder {
            fp: FilePatch {
                old_path: None,
                new_path: None,
                change: Change::Modify,
                new_mode: None,
                hunks: Vec::new(),
                line,
            },
            git,
            rename_from: None,
            rename_to: None,
        }
    }

    fn finish(mut self) -> Result<Option<FilePatch>, ParseError> {
        if let (Some(from), Some(to)) = (self.rename_from.take(), self.rename_to.take()) {
            self.fp.old_path = Some(from);
            self.fp.new_path = Some(to);
            self.fp.change = Change::Rename;
        }
        let fp = self.fp;
        if fp.old_path.is_none() && fp.new_path.is_none() {
            return Ok(None);
        }
        if fp.change == Change::Modify && fp.hunks.is_empty() && fp.new_mode.is_none() {
            return Ok(None);
        }
        Ok(Some(fp))
    }
}

/// Strips the first path component (`-p1`) and any `\t<timestamp>` suffix.
fn strip_path(raw: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(raw);
    let s = s.split('\t').next().unwrap_or("").trim_end();
    let s = s.trim_matches('"');
    if s == "/dev/null" {
        return None;
    }
    Some(match s.split_once('/') {
        Some((_, rest)) => rest.to_string(),
        None => s.to_string(),
    })
}

fn parse_range(s: &str) -> Option<(usize, usize)> {
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

fn parse_header(line: &str) -> Option<(usize, usize, usize, usize)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let (a, b) = parse_range(old)?;
    let (c, d) = parse_range(new)?;
    Some((a, b, c, d))
}

/// Parses a whole patch file into its file sections.
pub fn parse(bytes: &[u8]) -> Result<Vec<FilePatch>, ParseError> {
    let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
    let mut out = Vec::new();
    let mut cur: Option<Builder> = None;
    let mut i = 0;
    let err = |line: usize, message: String| ParseError { line, message };
    while i < lines.len() {
        let raw = lines[i];
        let text = raw.strip_suffix(b"\n").unwrap_or(raw);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let s = String::from_utf8_lossy(text);
        let lineno = i + 1;
        if let Some(rest) = s.strip_prefix("diff --git ") {
            if let Some(b) = cur.take() {
                out.extend(b.finish()?);
            }
            let mut b = Builder::new(lineno, true);
            if let Some((a, bb)) = rest.split_once(" b/") {
                b.fp.old_path = strip_path(a.as_bytes());
                b.fp.new_path = Some(bb.to_string());
            }
            cur = Some(b);
            i += 1;
            continue;
        }
        if s.starts_with("--- ") && i + 1 < lines.len() && lines[i + 1].starts_with(b"+++ ") {
            let reuse = matches!(&cur, Some(b) if b.git && b.fp.hunks.is_empty());
            if !reuse {
                if let Some(b) = cur.take() {
                    out.extend(b.finish()?);
                }
                cur = Some(Builder::new(lineno, false));
            }
            let b = cur.as_mut().expect("set above");
            let next = lines[i + 1];
            let next = next.strip_suffix(b"\n").unwrap_or(next);
            b.fp.old_path = strip_path(&text[4..]);
            b.fp.new_path = strip_path(&next[4..]);
            if b.fp.old_path.is_none() {
                b.fp.change = Change::Create;
            } else if b.fp.new_path.is_none() {
                b.fp.change = Change::Delete;
            }
            i += 2;
            continue;
        }
        if s.starts_with("@@ ") {
            let Some(b) = cur.as_mut() else {
                return Err(err(lineno, "hunk before any file header".into()));
            };
            let (old_start, old_len, new_start, new_len) = parse_header(&s)
                .ok_or_else(|| err(lineno, format!("malformed hunk header `{s}`")))?;
            let mut hunk = Hunk {
                old_start,
                old_len,
                new_start,
                new_len,
                header: s.to_string(),
                line: lineno,
                lines: Vec::new(),
            };
            let (mut olds, mut news) = (0, 0);
            i += 1;
            while olds < old_len || news < new_len {
                let Some(l) = lines.get(i) else {
                    return Err(err(
                        lineno,
                        format!("hunk `{s}` ends early: the patch is truncated"),
                    ));
                };
                let body = l.get(1..).unwrap_or(b"\n").to_vec();
                match l.first() {
                    Some(b' ') => {
                        hunk.lines.push(HunkLine::Context(body));
                        olds += 1;
                        news += 1;
                    }
                    // An empty line inside a hunk is an empty context line
                    // whose leading space an editor removed.
                    Some(b'\n') | Some(b'\r') => {
                        hunk.lines.push(HunkLine::Context(l.to_vec()));
                        olds += 1;
                        news += 1;
                    }
                    Some(b'-') => {
                        hunk.lines.push(HunkLine::Remove(body));
                        olds += 1;
                    }
                    Some(b'+') => {
                        hunk.lines.push(HunkLine::Add(body));
                        news += 1;
                    }
                    Some(b'\\') => no_newline(&mut hunk),
                    _ => {
                        return Err(err(
                            i + 1,
                            format!(
                                "hunk `{s}` has {olds}/{old_len} old and {news}/{new_len} new lines: the patch is truncated or corrupt"
                            ),
                        ));
                    }
                }
                i += 1;
            }
            if lines.get(i).is_some_and(|l| l.starts_with(b"\\")) {
                no_newline(&mut hunk);
                i += 1;
            }
            b.fp.hunks.push(hunk);
            continue;
        }
        if let Some(b) = cur.as_mut().filter(|b| b.git) {
            if let Some(m) = s.strip_prefix("new file mode ") {
                b.fp.change = Change::Create;
                b.fp.old_path = None;
                b.fp.new_mode = u32::from_str_radix(m.trim(), 8).ok();
            } else if s.starts_with("deleted file mode ") {
                b.fp.change = Change::Delete;
                b.fp.new_path = None;
            } else if let Some(m) = s.strip_prefix("new mode ") {
                b.fp.new_mode = u32::from_str_radix(m.trim(), 8).ok();
            } else if let Some(p) = s.strip_prefix("rename from ") {
                b.rename_from = Some(p.to_string());
            } else if let Some(p) = s.strip_prefix("rename to ") {
                b.rename_to = Some(p.to_string());
            } else if s.starts_with("GIT binary patch") || s.starts_with("Binary files ") {
                return Err(err(
                    lineno,
                    format!(
                        "binary patch for {}: strata applies text patches only",
                        b.fp.display_path()
                    ),
                ));
            }
        }
        i += 1;
    }
    if let Some(b) = cur.take() {
        out.extend(b.finish()?);
    }
    Ok(out)
}

/// `\ No newline at end of file`: the previous line has no terminator.
fn no_newline(hunk: &mut Hunk) {
    if let Some(HunkLine::Context(b) | HunkLine::Remove(b) | HunkLine::Add(b)) =
        hunk.lines.last_mut()
        && b.ends_with(b"\n")
    {
        b.pop();
        if b.ends_with(b"\r") {
            b.pop();
            b.push(b'\r');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_create_delete_rename() {
        let p = b"From abc Mon Sep 17 00:00:00 2001\nSubject: x\n\n---\n\
diff --git a/new.c b/new.c\nnew file mode 100755\nindex 0000000..e69de29\n--- /dev/null\n+++ b/new.c\n@@ -0,0 +1,2 @@\n+int a;\n+int b;\n\
diff --git a/old.c b/old.c\ndeleted file mode 100644\n--- a/old.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n\
diff --git a/x.c b/y.c\nsimilarity index 100%\nrename from x.c\nrename to y.c\n-- \n2.39.2\n";
        let fps = parse(p).unwrap();
        assert_eq!(fps.len(), 3);
        assert_eq!(fps[0].change, Change::Create);
        assert_eq!(fps[0].new_path.as_deref(), Some("new.c"));
        assert_eq!(fps[0].new_mode, Some(0o100755));
        assert_eq!(
            fps[0].hunks[0].new_lines(),
            vec![&b"int a;\n"[..], b"int b;\n"]
        );
        assert_eq!(fps[1].change, Change::Delete);
        assert_eq!(fps[2].change, Change::Rename);
        assert_eq!(fps[2].old_path.as_deref(), Some("x.c"));
        assert_eq!(fps[2].new_path.as_deref(), Some("y.c"));
    }

    #[test]
    fn no_newline_marker() {
        let p = b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n";
        let fps = parse(p).unwrap();
        assert_eq!(fps[0].hunks[0].old_lines(), vec![&b"a"[..]]);
        assert_eq!(fps[0].hunks[0].new_lines(), vec![&b"b\n"[..]]);
    }

    #[test]
    fn truncated_hunk_is_an_error() {
        let p = b"--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n";
        assert!(parse(p).unwrap_err().message.contains("truncated"));
    }

    #[test]
    fn binary_is_refused() {
        let p = b"diff --git a/x.bin b/x.bin\nindex 1..2\nGIT binary patch\nliteral 1\n";
        assert!(parse(p).unwrap_err().message.contains("binary"));
    }
}
