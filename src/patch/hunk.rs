//! Text hunks and applying them to a file's bytes with fuzz 0.
//!
//! Lines keep their terminators (`\n`, `\r\n`, or none for the last line of
//! a file without a final newline), so CRLF files stay CRLF and a missing
//! final newline is matched exactly. Hunks are applied one after the other,
//! each to the result of the previous one, so hunks out of order (which
//! git apply accepts) work; a hunk that comes after the previous one in the
//! file is never matched before the end of the previous one, as GNU patch
//! never moves back over a hunk it has applied. The search starts at the
//! line the header names (shifted by what the earlier hunks moved) and tries
//! the nearest offsets first; context is never dropped.

use super::error::PatchError;

/// One line of a hunk, with its line terminator (none when the patch says
/// `\ No newline at end of file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HunkLine {
    Context(Vec<u8>),
    Remove(Vec<u8>),
    Add(Vec<u8>),
}

/// One hunk (`@@ -a,b +c,d @@`, or a context diff's `*** a,b ****`).
#[derive(Clone, Debug)]
pub struct Hunk {
    /// 1-based first old line (the line after which to insert when the old
    /// side is empty).
    pub old_start: usize,
    pub old_len: usize,
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

    /// Whether the hunk only adds lines to an empty file (`@@ -0,0 …`).
    pub fn creates(&self) -> bool {
        self.old_start == 0 && self.old_lines().is_empty()
    }

    /// Marks the last line read as having no line terminator.
    pub fn no_newline(&mut self) {
        if let Some(HunkLine::Context(b) | HunkLine::Remove(b) | HunkLine::Add(b)) =
            self.lines.last_mut()
            && b.ends_with(b"\n")
        {
            b.pop();
        }
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

enum Anchor {
    Start,
    End,
}

/// Where GNU patch (with fuzz 0) insists that a hunk matches.
fn anchor(h: &Hunk) -> Option<Anchor> {
    if h.lines.iter().all(|l| matches!(l, HunkLine::Add(_))) {
        return None;
    }
    let context = |l: &&HunkLine| matches!(l, HunkLine::Context(_));
    let prefix = h.lines.iter().take_while(context).count();
    let suffix = h.lines.iter().rev().take_while(context).count();
    if prefix < suffix && h.old_start <= 1 {
        Some(Anchor::Start)
    } else if suffix < prefix {
        Some(Anchor::End)
    } else {
        None
    }
}

/// Applies `hunks` in order to `old`; `patch` and `file` name the error.
pub fn apply_hunks(
    patch: &str,
    file: &str,
    old: &[u8],
    hunks: &[Hunk],
) -> Result<Vec<u8>, PatchError> {
    let mut image: Vec<&[u8]> = old.split_inclusive(|b| *b == b'\n').collect();
    let mut floor = 0usize;
    let mut prev_end = 0usize;
    let mut shift: isize = 0;
    for (n, h) in hunks.iter().enumerate() {
        let old_block = h.old_lines();
        let new_block = h.new_lines();
        let nominal = if old_block.is_empty() {
            h.old_start
        } else {
            h.old_start.saturating_sub(1)
        };
        if nominal < prev_end {
            // Out of order: search the whole result so far.
            floor = 0;
        }
        let expected = nominal.saturating_add_signed(shift);
        let found = match anchor(h) {
            // GNU patch: a hunk with less context before than after, at the
            // top of the file, matches only at the start; one with less
            // context after than before matches only at the end.
            Some(Anchor::Start) => Some(0).filter(|_| floor == 0),
            Some(Anchor::End) => image.len().checked_sub(old_block.len()),
            None => find(&image, &old_block, expected, floor),
        }
        .filter(|&at| at >= floor && image.get(at..at + old_block.len()) == Some(&old_block[..]));
        let Some(at) = found else {
            let reversed = !new_block.is_empty()
                && new_block != old_block
                && find(&image, &new_block, expected, floor).is_some();
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
                    diff: describe_mismatch(file, &image, &old_block, expected),
                }
            });
        };
        image.splice(at..at + old_block.len(), new_block.iter().copied());
        floor = at + new_block.len();
        prev_end = nominal.saturating_add(old_block.len());
        shift = (floor as isize).saturating_sub(prev_end.min(isize::MAX as usize) as isize);
    }
    Ok(image.concat())
}

/// Shows the hunk's expected lines next to what the file has at that place.
fn describe_mismatch(file: &str, lines: &[&[u8]], block: &[&[u8]], at: usize) -> String {
    // A header can name any line, far past the end of the file.
    let at = at.min(lines.len());
    let show = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .trim_end_matches(['\n', '\r'])
            .to_string()
    };
    let mut out = format!(
        "  at {file}:{} the patch expects (-) but the file has (+):",
        at + 1
    );
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
        if i >= 11 {
            out.push_str("\n      …");
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hunk(old_start: usize, lines: &[(&str, char)]) -> Hunk {
        let lines: Vec<HunkLine> = lines
            .iter()
            .map(|(t, k)| {
                let b = format!("{t}\n").into_bytes();
                match k {
                    ' ' => HunkLine::Context(b),
                    '-' => HunkLine::Remove(b),
                    _ => HunkLine::Add(b),
                }
            })
            .collect();
        let old_len = lines
            .iter()
            .filter(|l| !matches!(l, HunkLine::Add(_)))
            .count();
        Hunk {
            old_start,
            old_len,
            header: format!("@@ -{old_start} @@"),
            line: 1,
            lines,
        }
    }

    #[test]
    fn hunks_out_of_order_apply_to_the_previous_result() {
        let old = b"a\nb\nc\nd\ne\nf\n";
        let late = hunk(5, &[("e", ' '), ("E", '+'), ("f", ' ')]);
        let early = hunk(1, &[("a", ' '), ("b", '-'), ("B", '+'), ("c", ' ')]);
        let out = apply_hunks("p", "f", old, &[late, early]).unwrap();
        assert_eq!(out, b"a\nB\nc\nd\ne\nE\nf\n");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Any patch text parses or fails cleanly, and its hunks apply or
        /// fail cleanly to any file: no panic, no overflow.
        #[test]
        fn no_panic_on_any_input(patch in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(b"--- a/f\n+++ b/f\n".to_vec()),
                proptest::strategy::Just(b"@@ -18446744073709551615,2 +1 @@\n".to_vec()),
                proptest::strategy::Just(b"@@ -0,0 +1 @@\n+x\n".to_vec()),
                proptest::strategy::Just(b"***************\n*** 1,2 ****\n".to_vec()),
                proptest::strategy::Just(b"--- 1 ----\n".to_vec()),
                proptest::strategy::Just(b"diff --git a/f b/f\nGIT binary patch\n".to_vec()),
                proptest::strategy::Just(b"delta 5\nHcmV?d00001\n\n".to_vec()),
                proptest::strategy::Just(b"literal 18446744073709551615\nHcmV?d00001\n\n".to_vec()),
                proptest::strategy::Just(
                    b"--- a/f\t99999999999999999-01-01 99999999999:00:00 +9999\n+++ b/f\n".to_vec()
                ),
                proptest::strategy::Just(b"*** a/f\n--- b/f\n".to_vec()),
                proptest::strategy::Just(b"diff --git \"a/\\303\" b/x\nrename from \"\\1\nnew mode 120000\n".to_vec()),
                proptest::strategy::Just(b"\\ No newline at end of file\n".to_vec()),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
                proptest::strategy::Just(b" a\n-b\n+c\n".to_vec()),
            ],
            0..12,
        ), file in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let patch = patch.concat();
            if let Ok(sections) = crate::patch::parse(&patch, 1) {
                for s in sections {
                    let _ = apply_hunks("p", "f", &file, &s.hunks);
                }
            }
        }
    }

    #[test]
    fn hunks_with_uneven_context_are_anchored_like_gnu_patch() {
        // Less context before than after, at line 1: only at the start.
        let top = hunk(1, &[("new", '+'), ("a", ' '), ("b", ' '), ("c", ' ')]);
        assert!(apply_hunks("p", "f", b"x\ny\na\nb\nc\nd\n", std::slice::from_ref(&top)).is_err());
        assert_eq!(
            apply_hunks("p", "f", b"a\nb\nc\nd\n", &[top]).unwrap(),
            b"new\na\nb\nc\nd\n"
        );
        // Less context after than before: only at the end.
        let end = hunk(2, &[("b", ' '), ("c", ' '), ("d", ' '), ("new", '+')]);
        assert!(apply_hunks("p", "f", b"a\nb\nc\nd\nz\n", std::slice::from_ref(&end)).is_err());
        assert_eq!(
            apply_hunks("p", "f", b"b\nc\nd\n", &[end]).unwrap(),
            b"b\nc\nd\nnew\n"
        );
    }

    #[test]
    fn crlf_lines_are_kept() {
        let old = b"a\r\nb\r\n";
        let h = Hunk {
            old_start: 1,
            old_len: 2,
            header: String::new(),
            line: 1,
            lines: vec![
                HunkLine::Context(b"a\r\n".to_vec()),
                HunkLine::Remove(b"b\r\n".to_vec()),
                HunkLine::Add(b"c\r\n".to_vec()),
            ],
        };
        assert_eq!(apply_hunks("p", "f", old, &[h]).unwrap(), b"a\r\nc\r\n");
    }
}
