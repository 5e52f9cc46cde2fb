//! File names in patch headers: C quoting, `-pN`, timestamps, `/dev/null`.
//!
//! A name is "absent" (the file does not exist on that side) when it is
//! `/dev/null` or when its timestamp is the Unix epoch, which is how
//! `diff -N` marks a created or deleted file; the epoch may be written in UTC
//! (`1970-01-01 00:00:00 +0000`) or in local time with its zone
//! (`1969-12-31 19:00:00 -0500`), so the timestamp is converted, not
//! compared as text. Names are C-quoted by git and newer diffs when they hold
//! unusual bytes; `"caf\303\251.txt"` is `café.txt`.

/// One side of a `---`/`+++` (or `***`) header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderName {
    /// The name as written (unquoted), before `-pN`.
    pub raw: Vec<u8>,
    /// `/dev/null` or an epoch timestamp: the file does not exist on this side.
    pub absent: bool,
}

/// Decodes a C-quoted string starting at `s[0] == '"'`; returns the bytes
/// and how many input bytes were used, or `None` if it is not terminated.
pub fn unquote(s: &[u8]) -> Option<(Vec<u8>, usize)> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some((out, i + 1)),
            b'\\' => {
                let c = *s.get(i + 1)?;
                i += 2;
                match c {
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b't' => out.push(b'\t'),
                    b'n' => out.push(b'\n'),
                    b'v' => out.push(11),
                    b'f' => out.push(12),
                    b'r' => out.push(b'\r'),
                    b'0'..=b'7' => {
                        let mut v = u32::from(c - b'0');
                        for _ in 0..2 {
                            match s.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push((v & 0xff) as u8);
                    }
                    other => out.push(other),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

/// Parses the text after `--- `, `+++ ` or `*** `.
pub fn header_name(field: &[u8]) -> HeaderName {
    let field = trim_eol(field);
    let (raw, rest) = if let Some((name, used)) = unquote(field) {
        (name, &field[used..])
    } else {
        match field.iter().position(|&b| b == b'\t') {
            Some(t) => (field[..t].to_vec(), &field[t..]),
            None => (trim_end(field).to_vec(), &field[field.len()..]),
        }
    };
    let stamp = String::from_utf8_lossy(rest);
    let absent = raw == b"/dev/null" || is_epoch(stamp.trim());
    HeaderName { raw, absent }
}

/// The two names of a `diff --git a/X b/Y` line (still with their prefixes).
pub fn git_names(rest: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let rest = trim_eol(rest);
    if let Some((a, used)) = unquote(rest) {
        let tail = rest[used..].strip_prefix(b" ")?;
        let b = match unquote(tail) {
            Some((b, _)) => b,
            None => tail.to_vec(),
        };
        return Some((a, b));
    }
    // The second name may be quoted while the first is not.
    if let Some(q) = rest.windows(2).position(|w| w == b" \"")
        && let Some((b, _)) = unquote(&rest[q + 1..])
    {
        return Some((rest[..q].to_vec(), b));
    }
    // Unquoted names with spaces are ambiguous; git splits where both
    // halves name the same file after their first component.
    if rest.len() % 2 == 1 {
        let half = rest.len() / 2;
        let (a, b) = (&rest[..half], &rest[half + 1..]);
        if rest[half] == b' ' && after_first(a) == after_first(b) {
            return Some((a.to_vec(), b.to_vec()));
        }
    }
    let sp = rest
        .windows(3)
        .position(|w| w == b" b/")
        .or_else(|| rest.iter().position(|&b| b == b' '))?;
    Some((rest[..sp].to_vec(), rest[sp + 1..].to_vec()))
}

fn after_first(p: &[u8]) -> &[u8] {
    match p.iter().position(|&b| b == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// Drops `n` leading components (`-pN`); `None` when there are fewer.
pub fn strip(raw: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut s = raw;
    for _ in 0..n {
        let i = s.iter().position(|&b| b == b'/')?;
        s = &s[i + 1..];
        while s.first() == Some(&b'/') {
            s = &s[1..];
        }
    }
    Some(s.to_vec())
}

fn trim_eol(s: &[u8]) -> &[u8] {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    s.strip_suffix(b"\r").unwrap_or(s)
}

fn trim_end(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..end]
}

/// Whether a header timestamp denotes the Unix epoch.
pub fn is_epoch(stamp: &str) -> bool {
    let mut parts = stamp.split_whitespace();
    let (Some(date), Some(time)) = (parts.next(), parts.next()) else {
        return ctime_epoch(stamp);
    };
    let zone = parts.next();
    let d: Vec<i64> = date.split('-').filter_map(|x| x.parse().ok()).collect();
    let time = time.split('.').next().unwrap_or("");
    let t: Vec<i64> = time.split(':').filter_map(|x| x.parse().ok()).collect();
    if d.len() != 3 || t.len() != 3 {
        return ctime_epoch(stamp);
    }
    let sane = (1..=9999).contains(&d[0])
        && (1..=12).contains(&d[1])
        && (1..=31).contains(&d[2])
        && t.iter().all(|v| (0..=60).contains(v));
    if !sane {
        return false;
    }
    let secs = days_from_civil(d[0], d[1], d[2]) * 86400 + t[0] * 3600 + t[1] * 60 + t[2];
    match zone.and_then(parse_zone) {
        Some(off) => secs - off == 0,
        // Local time without a zone: any time on the two days around it.
        None => (-86400..86400).contains(&secs),
    }
}

/// `Thu Jan  1 00:00:00 1970`, the form of old `diff -c`.
fn ctime_epoch(stamp: &str) -> bool {
    let w: Vec<&str> = stamp.split_whitespace().collect();
    matches!(
        w.as_slice(),
        [_, "Jan", "1", _, "1970", ..] | [_, "Dec", "31", _, "1969", ..]
    )
}

fn parse_zone(z: &str) -> Option<i64> {
    let (sign, digits) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits[2..].parse().ok()?;
    Some(sign * (h * 3600 + m * 60))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_names_decode_octal_escapes() {
        let h = header_name(b"\"a/caf\\303\\251 \\\"x\\\".txt\"\t2020-01-01 00:00:00 +0000\n");
        assert_eq!(h.raw, "a/café \"x\".txt".as_bytes());
        assert!(!h.absent);
        let (a, b) = git_names(b"\"a/caf\\303\\251\" \"b/caf\\303\\251\"").unwrap();
        assert_eq!(
            (a.as_slice(), b.as_slice()),
            ("a/café".as_bytes(), "b/café".as_bytes())
        );
    }

    #[test]
    fn epoch_in_any_zone_means_absent() {
        assert!(header_name(b"a/f\t1970-01-01 00:00:00.000000000 +0000").absent);
        assert!(header_name(b"a/f\t1969-12-31 19:00:00.000000000 -0500").absent);
        assert!(header_name(b"a/f\tThu Jan  1 00:00:00 1970").absent);
        assert!(header_name(b"/dev/null").absent);
        assert!(!header_name(b"a/f\t1970-01-01 00:00:01 +0000").absent);
        assert!(!header_name(b"a/f\t2026-11-25 15:38:54.230408150 +0000").absent);
        assert!(!header_name(b"a/f").absent);
    }

    #[test]
    fn git_names_with_spaces_split_in_the_middle() {
        let (a, b) = git_names(b"a/x y b/x y").unwrap();
        assert_eq!((a.as_slice(), b.as_slice()), (&b"a/x y"[..], &b"b/x y"[..]));
        let (a, b) = git_names(b"a/old b/new").unwrap();
        assert_eq!((a.as_slice(), b.as_slice()), (&b"a/old"[..], &b"b/new"[..]));
    }

    #[test]
    fn strip_components() {
        assert_eq!(strip(b"a/b/c", 1).unwrap(), b"b/c");
        assert_eq!(strip(b"a/b/c", 0).unwrap(), b"a/b/c");
        assert_eq!(strip(b"a//b/c", 2).unwrap(), b"c");
        assert!(strip(b"c", 1).is_none());
    }
}
