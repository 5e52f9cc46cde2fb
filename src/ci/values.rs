//! Checked scalars of a CircleCI config: Go durations (`no_output_timeout`),
//! counts (`parallelism`) and integers. Every value is parsed with checked
//! arithmetic and refused with an error naming the key, never saturated or
//! wrapped: a config that asks for 10^20 hours is a mistake to report, not a
//! panic in `Duration::from_secs_f64` and not a silent "forever".

use std::time::Duration;

/// The longest duration accepted anywhere in a config: a day, far beyond
/// CircleCI's own job limits, so a typo is caught rather than obeyed.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// `10m`, `1h30m`, `45s`, `500ms`, `1.5h`, or plain seconds (Go durations,
/// as CircleCI takes them). `key` names the field in the error.
pub fn duration(key: &str, text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let bad = |why: &str| {
        format!("`{key}: {text}` {why}\n  hint: write a Go duration such as 10m, 1h30m or 45s")
    };
    if s.is_empty() {
        return Err(bad("is empty"));
    }
    let mut total_ns: u128 = 0;
    let too_long = || {
        format!(
            "`{key}: {text}` is longer than the {}h strata accepts\n  hint: write a Go duration such as 10m, 1h30m or 45s",
            MAX_DURATION.as_secs() / 3600
        )
    };
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u128 = s.parse().map_err(|_| too_long())?;
        total_ns = secs.checked_mul(1_000_000_000).ok_or_else(too_long)?;
    } else {
        let mut rest = s;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .ok_or_else(|| bad("has a number without a unit"))?;
            if num_len == 0 {
                return Err(bad("has a unit without a number"));
            }
            let num = &rest[..num_len];
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit_ns: u128 = match &rest[..unit_len] {
                "h" => 3_600_000_000_000,
                "m" => 60_000_000_000,
                "s" => 1_000_000_000,
                "ms" => 1_000_000,
                "us" | "µs" => 1_000,
                "ns" => 1,
                u => {
                    return Err(bad(&format!(
                        "has an unknown unit `{u}` (use h, m, s or ms)"
                    )));
                }
            };
            rest = &rest[unit_len..];
            let (int, frac) = num.split_once('.').unwrap_or((num, ""));
            if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
                return Err(bad(&format!("has a malformed number `{num}`")));
            }
            let int: u128 = if int.is_empty() {
                0
            } else {
                int.parse().map_err(|_| too_long())?
            };
            let mut part = int.checked_mul(unit_ns).ok_or_else(too_long)?;
            // Fractions to nanosecond precision, digit by digit, no floats.
            let mut scale = unit_ns;
            for d in frac.bytes().take(30) {
                scale /= 10;
                part = part
                    .checked_add(u128::from(d - b'0') * scale)
                    .ok_or_else(too_long)?;
            }
            total_ns = total_ns.checked_add(part).ok_or_else(too_long)?;
        }
    }
    if total_ns > MAX_DURATION.as_nanos() {
        return Err(too_long());
    }
    if total_ns == 0 {
        return Err(bad("is zero"));
    }
    Ok(Duration::from_nanos(total_ns as u64))
}

/// A whole number in `1..=max` (`parallelism`), from a YAML scalar's text.
pub fn count(key: &str, text: &str, max: u64) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{key}: {text}` must be a whole number from 1 to {max}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_are_exact() {
        let d = |s| duration("t", s);
        assert_eq!(d("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(d("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(d(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(d("5"), Ok(Duration::from_secs(5)));
        assert_eq!(d("24h"), Ok(MAX_DURATION));
    }

    #[test]
    fn bad_and_huge_durations_are_errors_naming_the_key() {
        for s in [
            "5x",
            "",
            "h",
            "1..2s",
            "0s",
            "25h",
            "99999999999999999999h",
            "99999999999999999999999999999999999999999999s",
            "18446744073709551616",
        ] {
            let e = duration("no_output_timeout", s).unwrap_err();
            assert!(e.contains("`no_output_timeout: "), "{s}: {e}");
        }
    }

    #[test]
    fn counts_are_bounded() {
        assert_eq!(count("parallelism", "4", 64), Ok(4));
        for s in ["0", "-1", "65", "1.5", "99999999999999999999999", "x"] {
            assert!(
                count("parallelism", s, 64)
                    .unwrap_err()
                    .contains("parallelism")
            );
        }
    }
}
