//! `GIT binary patch` sections: base85 lines, zlib data, literal or delta.
//!
//! A section holds a forward hunk and usually a reverse one; only the forward
//! hunk is applied (strata never reverses). Each data line starts with a
//! length letter (`A`–`Z` = 1–26 bytes, `a`–`z` = 27–52) followed by base85
//! in groups of five characters; the decoded stream is zlib-compressed and
//! inflates to exactly the size the `literal N`/`delta N` line announces. A
//! delta is git's copy/insert format against the current file, and its header
//! carries the source size, which is checked before anything is copied.

use super::error::ParseError;
use std::io::Read;

/// How the forward hunk produces the new content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinaryHunk {
    /// The whole new content.
    Literal(Vec<u8>),
    /// Copy/insert instructions against the old content.
    Delta(Vec<u8>),
}

const ALPHABET: &[u8; 85] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";

fn digit(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Decodes one data line (without its line end).
fn decode_line(line: &[u8]) -> Option<Vec<u8>> {
    let (&len, data) = line.split_first()?;
    let len = match len {
        b'A'..=b'Z' => usize::from(len - b'A') + 1,
        b'a'..=b'z' => usize::from(len - b'a') + 27,
        _ => return None,
    };
    if data.len() != len.div_ceil(4) * 5 {
        return None;
    }
    let mut out = Vec::with_capacity(len + 3);
    for group in data.chunks(5) {
        let mut acc: u64 = 0;
        for &c in group {
            acc = acc * 85 + u64::from(digit(c)?);
        }
        if acc > u64::from(u32::MAX) {
            return None;
        }
        out.extend_from_slice(&(acc as u32).to_be_bytes());
    }
    out.truncate(len);
    Some(out)
}

/// Parses the hunks after a `GIT binary patch` line at `lines[start]`.
/// Returns the forward hunk and the index of the first line after the section.
pub fn parse(lines: &[&[u8]], start: usize) -> Result<(BinaryHunk, usize), ParseError> {
    let (forward, mut i) = parse_hunk(lines, start + 1)?;
    // An optional reverse hunk follows; it is read only to be skipped.
    if let Some(l) = lines.get(i)
        && (l.starts_with(b"literal ") || l.starts_with(b"delta "))
    {
        i = parse_hunk(lines, i)?.1;
    }
    Ok((forward, i))
}

fn parse_hunk(lines: &[&[u8]], at: usize) -> Result<(BinaryHunk, usize), ParseError> {
    let head = lines
        .get(at)
        .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
        .unwrap_or_default();
    let (kind, size) = head
        .split_once(' ')
        .and_then(|(k, n)| Some((k.to_string(), n.parse::<usize>().ok()?)))
        .filter(|(k, _)| k == "literal" || k == "delta")
        .ok_or_else(|| {
            ParseError::new(
                at + 1,
                format!("GIT binary patch: expected `literal N` or `delta N`, found `{head}`"),
            )
        })?;
    let mut deflated = Vec::new();
    let mut i = at + 1;
    while let Some(raw) = lines.get(i) {
        let l = raw.strip_suffix(b"\n").unwrap_or(raw);
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        i += 1;
        if l.is_empty() {
            break;
        }
        let bytes = decode_line(l).ok_or_else(|| {
            ParseError::new(i, "GIT binary patch: corrupt base85 line".to_string())
        })?;
        deflated.extend_from_slice(&bytes);
    }
    // The size is the patch's word: reserve no more than a sane amount.
    let mut data = Vec::with_capacity(size.min(1 << 24));
    flate2::read::ZlibDecoder::new(deflated.as_slice())
        .take((size as u64).saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| {
            ParseError::new(at + 1, format!("GIT binary patch: corrupt zlib data: {e}"))
        })?;
    if data.len() != size {
        return Err(ParseError::new(
            at + 1,
            format!(
                "GIT binary patch: `{head}` inflates to {} bytes",
                data.len()
            ),
        ));
    }
    Ok((
        if kind == "literal" {
            BinaryHunk::Literal(data)
        } else {
            BinaryHunk::Delta(data)
        },
        i,
    ))
}

fn varint(d: &[u8], i: &mut usize) -> Option<usize> {
    let mut v = 0usize;
    let mut shift = 0;
    loop {
        let b = *d.get(*i)?;
        *i += 1;
        v |= usize::from(b & 0x7f).checked_shl(shift)?;
        shift += 7;
        if b & 0x80 == 0 {
            return Some(v);
        }
        if shift > 63 {
            return None;
        }
    }
}

/// Applies a git delta to `old`; the error says why it does not fit.
pub fn apply_delta(old: &[u8], delta: &[u8]) -> Result<Vec<u8>, String> {
    let mut i = 0;
    let bad = || "the delta is corrupt".to_string();
    let src = varint(delta, &mut i).ok_or_else(bad)?;
    let dst = varint(delta, &mut i).ok_or_else(bad)?;
    if src != old.len() {
        return Err(format!(
            "it expects a {src}-byte file, the tree has {} bytes",
            old.len()
        ));
    }
    let mut out = Vec::with_capacity(dst.min(1 << 24));
    while i < delta.len() {
        let cmd = delta[i];
        i += 1;
        if cmd & 0x80 != 0 {
            let mut off = 0usize;
            let mut size = 0usize;
            for bit in 0..4 {
                if cmd & (1 << bit) != 0 {
                    off |= usize::from(*delta.get(i).ok_or_else(bad)?) << (8 * bit);
                    i += 1;
                }
            }
            for bit in 0..3 {
                if cmd & (0x10 << bit) != 0 {
                    size |= usize::from(*delta.get(i).ok_or_else(bad)?) << (8 * bit);
                    i += 1;
                }
            }
            if size == 0 {
                size = 0x10000;
            }
            let end = off.checked_add(size).ok_or_else(bad)?;
            out.extend_from_slice(old.get(off..end).ok_or_else(bad)?);
        } else if cmd != 0 {
            let n = usize::from(cmd);
            out.extend_from_slice(delta.get(i..i + n).ok_or_else(bad)?);
            i += n;
        } else {
            return Err(bad());
        }
        if out.len() > dst {
            return Err(bad());
        }
    }
    if out.len() != dst {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_line(chunk: &[u8]) -> Vec<u8> {
        let mut line = vec![if chunk.len() <= 26 {
            b'A' + chunk.len() as u8 - 1
        } else {
            b'a' + chunk.len() as u8 - 27
        }];
        for g in chunk.chunks(4) {
            let mut w = [0u8; 4];
            w[..g.len()].copy_from_slice(g);
            let mut v = u32::from_be_bytes(w);
            let mut five = [0u8; 5];
            for c in five.iter_mut().rev() {
                *c = ALPHABET[(v % 85) as usize];
                v /= 85;
            }
            line.extend_from_slice(&five);
        }
        line.push(b'\n');
        line
    }

    #[test]
    fn literal_roundtrip() {
        use std::io::Write;
        let content: Vec<u8> = (0..200u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&content).unwrap();
        let deflated = z.finish().unwrap();
        let mut text = format!("GIT binary patch\nliteral {}\n", content.len()).into_bytes();
        for c in deflated.chunks(52) {
            text.extend(encode_line(c));
        }
        text.extend_from_slice(b"\nliteral 0\nHcmV?d00001\n\n");
        let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
        let (hunk, next) = parse(&lines, 0).unwrap();
        assert_eq!(hunk, BinaryHunk::Literal(content));
        assert_eq!(next, lines.len());
    }

    proptest::proptest! {
        /// Any delta against any file applies or fails cleanly.
        #[test]
        fn no_panic_on_any_delta(
            old in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            delta in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let _ = apply_delta(&old, &delta);
            let mut framed = vec![old.len() as u8 & 0x7f, 0x7f];
            framed.extend_from_slice(&delta);
            let _ = apply_delta(&old, &framed);
        }
    }

    #[test]
    fn delta_copies_and_inserts() {
        let old = b"0123456789";
        // src 10, dst 7: copy 4 bytes from offset 2, insert "xyz".
        let delta = [10, 7, 0x80 | 0x01 | 0x10, 2, 4, 3, b'x', b'y', b'z'];
        assert_eq!(apply_delta(old, &delta).unwrap(), b"2345xyz");
        assert!(
            apply_delta(b"short", &delta)
                .unwrap_err()
                .contains("10-byte")
        );
    }
}
