//! Context diffs (`diff -c`): `***************` hunks with an old part
//! (`*** a,b ****`) and a new part (`--- c,d ----`).
//!
//! Each hunk is turned into the same line list a unified hunk has, so one
//! applier serves both. A part that holds only context is left out by diff;
//! it is then rebuilt from the context lines of the other part. Changed lines
//! (`!`) are removals in the old part and additions in the new one; walking
//! both parts along their shared context lines puts every removal before the
//! additions that replace it, which is the order a unified diff has.

use super::error::ParseError;
use super::hunk::{Hunk, HunkLine};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    Same,
    Change,
}

/// A `*** a,b ****` or `--- c,d ----` range line: the first line number.
fn range(line: &str, open: &str, close: &str) -> Option<usize> {
    let inner = line
        .strip_prefix(open)?
        .trim_end()
        .strip_suffix(close)?
        .trim();
    let first = inner.split(',').next()?;
    first.parse().ok()
}

fn body(l: &[u8]) -> Vec<u8> {
    l.get(2..)
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| b"\n".to_vec())
}

fn text(l: &[u8]) -> String {
    String::from_utf8_lossy(l)
        .trim_end_matches(['\n', '\r'])
        .to_string()
}

/// Reads one part's lines starting at `i`; `adds` is the marker of lines
/// that only this part has (`-` or `+`).
fn part(lines: &[&[u8]], mut i: usize, adds: u8) -> (Vec<(Tag, Vec<u8>)>, usize) {
    let mut out: Vec<(Tag, Vec<u8>)> = Vec::new();
    while let Some(l) = lines.get(i) {
        match (l.first(), l.get(1)) {
            (Some(b' '), Some(b' ')) => out.push((Tag::Same, body(l))),
            (Some(b'!'), Some(b' ')) => out.push((Tag::Change, body(l))),
            (Some(&c), Some(b' ')) if c == adds => out.push((Tag::Change, body(l))),
            (Some(b'\n'), None) | (Some(b'\r'), Some(b'\n')) => out.push((Tag::Same, l.to_vec())),
            (Some(b'\\'), _) => {
                if let Some((_, b)) = out.last_mut()
                    && b.ends_with(b"\n")
                {
                    b.pop();
                }
            }
            _ => break,
        }
        i += 1;
    }
    (out, i)
}

/// Parses the hunk whose `***************` line is `lines[at]`; returns it
/// and the index of the first line after it.
pub fn parse_hunk(lines: &[&[u8]], at: usize) -> Result<(Hunk, usize), ParseError> {
    let head_line = at + 1;
    let head = lines.get(head_line).map(|l| text(l)).unwrap_or_default();
    let old_start = range(&head, "*** ", "****").ok_or_else(|| {
        ParseError::new(
            head_line + 1,
            format!("context diff hunk: expected `*** a,b ****`, found `{head}`"),
        )
    })?;
    let (old, i) = part(lines, head_line + 1, b'-');
    let mid = lines.get(i).map(|l| text(l)).unwrap_or_default();
    range(&mid, "--- ", "----").ok_or_else(|| {
        ParseError::new(
            i + 1,
            format!("context diff hunk `{head}`: expected `--- c,d ----`, found `{mid}`"),
        )
    })?;
    let (new, end) = part(lines, i + 1, b'+');
    let old = if old.is_empty() {
        new.iter()
            .filter(|(t, _)| *t == Tag::Same)
            .cloned()
            .collect()
    } else {
        old
    };
    let new = if new.is_empty() {
        old.iter()
            .filter(|(t, _)| *t == Tag::Same)
            .cloned()
            .collect()
    } else {
        new
    };
    let mut out = Vec::new();
    let (mut a, mut b) = (0, 0);
    loop {
        if let Some((Tag::Change, l)) = old.get(a) {
            out.push(HunkLine::Remove(l.clone()));
            a += 1;
        } else if let Some((Tag::Change, l)) = new.get(b) {
            out.push(HunkLine::Add(l.clone()));
            b += 1;
        } else {
            match (old.get(a), new.get(b)) {
                (Some((_, x)), Some((_, y))) if x == y => {
                    out.push(HunkLine::Context(x.clone()));
                    a += 1;
                    b += 1;
                }
                (None, None) => break,
                _ => {
                    return Err(ParseError::new(
                        head_line + 1,
                        format!(
                            "context diff hunk `{head}`: the old and new parts disagree on their context lines"
                        ),
                    ));
                }
            }
        }
    }
    let old_len = old.len();
    Ok((
        Hunk {
            old_start,
            old_len,
            header: head,
            line: head_line + 1,
            lines: out,
        },
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<&[u8]> {
        s.as_bytes().split_inclusive(|b| *b == b'\n').collect()
    }

    #[test]
    fn change_and_insert() {
        let p = "***************\n*** 1,3 ****\n  a\n! b\n  c\n--- 1,4 ----\n  a\n! B\n  c\n+ d\n";
        let (h, end) = parse_hunk(&lines(p), 0).unwrap();
        assert_eq!(end, 10);
        assert_eq!(h.old_lines(), vec![&b"a\n"[..], b"b\n", b"c\n"]);
        assert_eq!(h.new_lines(), vec![&b"a\n"[..], b"B\n", b"c\n", b"d\n"]);
    }

    #[test]
    fn omitted_parts_are_rebuilt_from_context() {
        let ins = "***************\n*** 1,2 ****\n--- 1,3 ----\n  a\n+ x\n  b\n";
        let (h, _) = parse_hunk(&lines(ins), 0).unwrap();
        assert_eq!(h.old_lines(), vec![&b"a\n"[..], b"b\n"]);
        assert_eq!(h.new_lines(), vec![&b"a\n"[..], b"x\n", b"b\n"]);
        let del = "***************\n*** 1,3 ****\n  a\n- x\n  b\n--- 1,2 ----\n";
        let (h, _) = parse_hunk(&lines(del), 0).unwrap();
        assert_eq!(h.new_lines(), vec![&b"a\n"[..], b"b\n"]);
    }
}
