//! Splitting a patch file into file sections: unified diffs, context diffs
//! and git's extended headers (modes, renames, copies, binary data).
//!
//! Anything outside a section (mail headers of `git format-patch`, `Index:`
//! and `====` lines, `diff -r` command lines, `Only in …`, a signature) is
//! ignored, as GNU patch ignores it; a file with no section at all is
//! "Only garbage" (an error at apply time, since a patch that changes
//! nothing is a mistake; only a 0-byte file is a no-op, see `apply`). Names are taken with `-pN`; git's `rename from`,
//! `copy from` lines carry names without a prefix and are used as written.
//! A `From <40 hex>` mbox line starts a new commit; renames and copies read
//! their source as it was at the start of their commit (see `apply`).

use super::binary::{self, BinaryHunk};
use super::context;
use super::error::ParseError;
use super::hunk::{Hunk, HunkLine};
use super::path::{self, HeaderName};

/// What a file section does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Modify,
    Create,
    Delete,
    Rename,
    Copy,
}

/// The changes to one file.
#[derive(Clone, Debug)]
pub struct FilePatch {
    /// Path before the change (`None` for a created file).
    pub old_path: Option<String>,
    /// Path after the change (`None` for a deleted file).
    pub new_path: Option<String>,
    pub change: Change,
    /// Mode of a created file or new mode of a changed one (e.g. 0o100755).
    pub new_mode: Option<u32>,
    pub hunks: Vec<Hunk>,
    /// A `GIT binary patch` forward hunk, instead of text hunks.
    pub binary: Option<BinaryHunk>,
    /// The blob ids of git's `index OLD..NEW` line.
    pub index: Option<(String, String)>,
    /// Whether the section has a `diff --git` header.
    pub git: bool,
    /// Number of the commit (mbox message) the section belongs to.
    pub commit: usize,
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

#[derive(Default)]
struct Builder {
    line: usize,
    git: bool,
    old: Option<String>,
    new: Option<String>,
    old_absent: bool,
    new_absent: bool,
    new_mode: Option<u32>,
    created: bool,
    deleted: bool,
    rename: (Option<String>, Option<String>),
    copy: (Option<String>, Option<String>),
    hunks: Vec<Hunk>,
    binary: Option<BinaryHunk>,
    index: Option<(String, String)>,
    has_body: bool,
}

impl Builder {
    fn finish(self, commit: usize) -> Option<FilePatch> {
        let mut fp = FilePatch {
            old_path: self.old,
            new_path: self.new,
            change: Change::Modify,
            new_mode: self.new_mode,
            hunks: self.hunks,
            binary: self.binary,
            index: self.index,
            git: self.git,
            commit,
            line: self.line,
        };
        if let (Some(from), Some(to)) = self.copy {
            fp.old_path = Some(from);
            fp.new_path = Some(to);
            fp.change = Change::Copy;
        } else if let (Some(from), Some(to)) = self.rename {
            fp.old_path = Some(from);
            fp.new_path = Some(to);
            fp.change = Change::Rename;
        } else if self.created || self.old_absent {
            fp.old_path = None;
            fp.change = Change::Create;
        } else if self.deleted || self.new_absent {
            fp.new_path = None;
            fp.change = Change::Delete;
        }
        if fp.old_path.is_none() && fp.new_path.is_none() {
            return None;
        }
        let no_effect = fp.change == Change::Modify && !self.has_body && fp.new_mode.is_none();
        if no_effect || (!fp.git && !self.has_body) {
            return None;
        }
        Some(fp)
    }
}

fn eol_trimmed(raw: &[u8]) -> &[u8] {
    let t = raw.strip_suffix(b"\n").unwrap_or(raw);
    t.strip_suffix(b"\r").unwrap_or(t)
}

/// A name after `-pN`, as UTF-8.
fn name(raw: &[u8], strip: usize, line: usize) -> Result<String, ParseError> {
    let stripped = path::strip(raw, strip).ok_or_else(|| {
        ParseError::new(
            line,
            format!(
                "file name `{}` has fewer than {strip} leading directories to strip (-p{strip})",
                String::from_utf8_lossy(raw)
            ),
        )
    })?;
    String::from_utf8(stripped).map_err(|_| {
        ParseError::new(
            line,
            format!("file name `{}` is not UTF-8", String::from_utf8_lossy(raw)),
        )
    })
}

fn plain_name(raw: &[u8], line: usize) -> Result<String, ParseError> {
    let t = eol_trimmed(raw);
    let bytes = match path::unquote(t) {
        Some((b, _)) => b,
        None => t.to_vec(),
    };
    name(&bytes, 0, line)
}

fn mode(s: &[u8]) -> Option<u32> {
    u32::from_str_radix(String::from_utf8_lossy(s).trim(), 8).ok()
}

/// Whether `line` is an mbox separator, `From <40 hex> …`.
fn is_mbox_from(line: &[u8]) -> bool {
    line.strip_prefix(b"From ")
        .is_some_and(|r| r.len() > 40 && r[..40].iter().all(u8::is_ascii_hexdigit) && r[40] == b' ')
}

/// Parses a whole patch file into its file sections, with `-p{strip}` names.
pub fn parse(bytes: &[u8], strip: usize) -> Result<Vec<FilePatch>, ParseError> {
    let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
    let mut out = Vec::new();
    let mut cur: Option<Builder> = None;
    let mut commit = 0usize;
    let mut i = 0;
    let flush = |cur: &mut Option<Builder>, out: &mut Vec<FilePatch>, commit: usize| {
        if let Some(b) = cur.take() {
            out.extend(b.finish(commit));
        }
    };
    while i < lines.len() {
        let raw = lines[i];
        let text = eol_trimmed(raw);
        let lineno = i + 1;
        if is_mbox_from(text) {
            flush(&mut cur, &mut out, commit);
            commit += 1;
            i += 1;
            continue;
        }
        if let Some(rest) = text.strip_prefix(b"diff --git ") {
            flush(&mut cur, &mut out, commit);
            let mut b = Builder {
                line: lineno,
                git: true,
                ..Builder::default()
            };
            if let Some((a, bb)) = path::git_names(rest) {
                b.old = Some(name(&a, strip, lineno)?);
                b.new = Some(name(&bb, strip, lineno)?);
            }
            cur = Some(b);
            i += 1;
            continue;
        }
        let next = lines.get(i + 1).map(|l| eol_trimmed(l));
        let unified = text.starts_with(b"--- ") && next.is_some_and(|n| n.starts_with(b"+++ "));
        let ctx = text.starts_with(b"*** ")
            && next.is_some_and(|n| n.starts_with(b"--- "))
            && lines
                .get(i + 2)
                .is_some_and(|l| eol_trimmed(l) == b"***************");
        if unified || ctx {
            let reuse = matches!(&cur, Some(b) if b.git && !b.has_body);
            if !reuse {
                flush(&mut cur, &mut out, commit);
                cur = Some(Builder {
                    line: lineno,
                    ..Builder::default()
                });
            }
            let b = cur.as_mut().expect("set above");
            let old: HeaderName = path::header_name(&text[4..]);
            let new: HeaderName = path::header_name(&next.expect("checked")[4..]);
            b.old_absent |= old.absent;
            b.new_absent |= new.absent;
            if !b.git {
                if !old.absent {
                    b.old = Some(name(&old.raw, strip, lineno)?);
                }
                if !new.absent {
                    b.new = Some(name(&new.raw, strip, lineno + 1)?);
                }
                if old.absent {
                    b.old = None;
                }
            }
            i += 2;
            continue;
        }
        if text.starts_with(b"@@ ") {
            let Some(b) = cur.as_mut() else {
                return Err(ParseError::new(lineno, "hunk before any file header"));
            };
            let (hunk, end) = unified_hunk(&lines, i)?;
            b.hunks.push(hunk);
            b.has_body = true;
            i = end;
            continue;
        }
        if let Some(b) = cur.as_mut().filter(|_| text == b"***************") {
            let (hunk, end) = context::parse_hunk(&lines, i)?;
            b.hunks.push(hunk);
            b.has_body = true;
            i = end;
            continue;
        }
        if let Some(b) = cur.as_mut().filter(|b| b.git && !b.has_body) {
            if let Some(m) = text.strip_prefix(b"new file mode ") {
                b.created = true;
                b.new_mode = mode(m);
            } else if let Some(ids) = text.strip_prefix(b"index ") {
                let ids = String::from_utf8_lossy(ids);
                let ids = ids.split(' ').next().unwrap_or("");
                if let Some((a, z)) = ids.split_once("..") {
                    b.index = Some((a.to_string(), z.to_string()));
                }
            } else if text.starts_with(b"deleted file mode ") {
                b.deleted = true;
            } else if let Some(m) = text.strip_prefix(b"new mode ") {
                b.new_mode = mode(m);
            } else if let Some(p) = text.strip_prefix(b"rename from ") {
                b.rename.0 = Some(plain_name(p, lineno)?);
            } else if let Some(p) = text.strip_prefix(b"rename to ") {
                b.rename.1 = Some(plain_name(p, lineno)?);
            } else if let Some(p) = text.strip_prefix(b"copy from ") {
                b.copy.0 = Some(plain_name(p, lineno)?);
            } else if let Some(p) = text.strip_prefix(b"copy to ") {
                b.copy.1 = Some(plain_name(p, lineno)?);
            } else if text.starts_with(b"GIT binary patch") {
                let (hunk, end) = binary::parse(&lines, i)?;
                b.binary = Some(hunk);
                b.has_body = true;
                i = end;
                continue;
            } else if text.starts_with(b"Binary files ") {
                return Err(ParseError::new(
                    lineno,
                    format!(
                        "{} is a binary change without its data (`Binary files … differ`); regenerate the patch with `git diff --binary` or `git format-patch --binary`",
                        b.new.as_deref().or(b.old.as_deref()).unwrap_or("?")
                    ),
                ));
            }
        }
        i += 1;
    }
    flush(&mut cur, &mut out, commit);
    Ok(out)
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

/// Reads the unified hunk whose header is `lines[at]`.
fn unified_hunk(lines: &[&[u8]], at: usize) -> Result<(Hunk, usize), ParseError> {
    let lineno = at + 1;
    let s = String::from_utf8_lossy(eol_trimmed(lines[at])).to_string();
    let (old_start, old_len, _, new_len) = parse_header(&s)
        .ok_or_else(|| ParseError::new(lineno, format!("malformed hunk header `{s}`")))?;
    let mut hunk = Hunk {
        old_start,
        old_len,
        header: s.clone(),
        line: lineno,
        lines: Vec::new(),
    };
    let (mut olds, mut news) = (0, 0);
    let mut i = at + 1;
    while olds < old_len || news < new_len {
        let Some(l) = lines.get(i) else {
            return Err(ParseError::new(
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
            // An empty line inside a hunk is an empty context line whose
            // leading space an editor removed.
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
            Some(b'\\') => hunk.no_newline(),
            _ => {
                return Err(ParseError::new(
                    i + 1,
                    format!(
                        "hunk `{s}` has {olds}/{old_len} old and {news}/{new_len} new lines: the patch is truncated or corrupt"
                    ),
                ));
            }
        }
        if olds > old_len || news > new_len {
            return Err(ParseError::new(
                i + 1,
                format!("hunk `{s}` has more lines than its header says"),
            ));
        }
        i += 1;
    }
    if lines.get(i).is_some_and(|l| l.starts_with(b"\\")) {
        hunk.no_newline();
        i += 1;
    }
    Ok((hunk, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_create_delete_rename_copy() {
        let p = b"From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\nSubject: x\n\n---\n\
diff --git a/new.c b/new.c\nnew file mode 100755\nindex 0000000..e69de29\n--- /dev/null\n+++ b/new.c\n@@ -0,0 +1,2 @@\n+int a;\n+int b;\n\
diff --git a/old.c b/old.c\ndeleted file mode 100644\n--- a/old.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n\
diff --git a/x.c b/y.c\nsimilarity index 100%\nrename from x.c\nrename to y.c\n\
diff --git a/x.c b/z.c\nsimilarity index 100%\ncopy from x.c\ncopy to z.c\n\
diff --git a/e b/e\nnew file mode 100644\nindex 0000000..e69de29\n-- \n2.39.2\n";
        let fps = parse(p, 1).unwrap();
        assert_eq!(fps.len(), 5);
        assert_eq!(fps[0].change, Change::Create);
        assert_eq!(fps[0].commit, 1);
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
        assert_eq!(fps[3].change, Change::Copy);
        assert_eq!(fps[4].change, Change::Create);
        assert!(fps[4].hunks.is_empty());
    }

    #[test]
    fn epoch_timestamps_mark_creation_and_deletion() {
        let p = b"diff -Nu a/n b/n\n--- a/n\t1970-01-01 00:00:00.000000000 +0000\n+++ b/n\t2026-01-01 10:00:00.000000000 +0000\n@@ -0,0 +1 @@\n+x\n\
--- a/o\t2026-01-01 10:00:00 +0000\n+++ b/o\t1969-12-31 19:00:00.000000000 -0500\n@@ -1 +0,0 @@\n-x\n";
        let fps = parse(p, 1).unwrap();
        assert_eq!(fps[0].change, Change::Create);
        assert_eq!(fps[0].new_path.as_deref(), Some("n"));
        assert_eq!(fps[1].change, Change::Delete);
        assert_eq!(fps[1].old_path.as_deref(), Some("o"));
    }

    #[test]
    fn no_newline_marker() {
        let p = b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n";
        let fps = parse(p, 1).unwrap();
        assert_eq!(fps[0].hunks[0].old_lines(), vec![&b"a"[..]]);
        assert_eq!(fps[0].hunks[0].new_lines(), vec![&b"b\n"[..]]);
    }

    #[test]
    fn truncated_hunk_is_an_error() {
        let p = b"--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n";
        assert!(parse(p, 1).unwrap_err().message.contains("truncated"));
    }

    #[test]
    fn garbage_gives_no_sections() {
        assert!(parse(b"", 1).unwrap().is_empty());
        assert!(
            parse(b"Subject: x\n\nhello\n--- a/f\n", 1)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn binary_without_data_is_refused() {
        let p = b"diff --git a/x.bin b/x.bin\nindex 1..2 100644\nBinary files a/x.bin and b/x.bin differ\n";
        assert!(parse(p, 1).unwrap_err().message.contains("--binary"));
    }

    #[test]
    fn strip_levels() {
        let p = b"--- f\n+++ f\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(parse(p, 0).unwrap()[0].new_path.as_deref(), Some("f"));
        assert!(parse(p, 1).is_err());
    }
}
