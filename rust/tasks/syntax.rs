//! Syntax checks that more than one task's parameters need.

/// A positive Go duration such as `336h`, `90m`, `1h30m`: what kaniko's `--cache-ttl` and
/// helm's `--timeout` accept (both parse with Go's `time.ParseDuration`).
pub fn check_go_duration(text: &str) -> Result<(), String> {
    match parse_go_duration(text) {
        Ok(nanos) if nanos > 0 => Ok(()),
        Ok(_) => Err(format!("{text:?} must be a duration above zero, such as 336h, 90m or 1h30m")),
        Err(why) => Err(format!("{text:?} is not a duration such as 336h, 90m or 1h30m ({why})")),
    }
}

/// Nanoseconds in each unit Go's `time.ParseDuration` knows (µ as U+00B5 or U+03BC).
const GO_DURATION_UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The nanoseconds of a duration, accepting exactly what Go's `time.ParseDuration` accepts
/// (go/src/time/format.go): an optional sign, then one or more `[digits][.digits]unit`
/// terms, each with at least one digit, or a bare `0`; the error is Go's message.
pub fn parse_go_duration(text: &str) -> Result<i64, String> {
    const LIMIT: u64 = 1 << 63;
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut whole: u64 = 0;
        for digit in rest[..int_len].bytes() {
            whole = whole
                .checked_mul(10)
                .map(|w| w + u64::from(digit - b'0'))
                .filter(|&w| w <= LIMIT)
                .ok_or_else(invalid)?;
        }
        rest = &rest[int_len..];
        // Fraction digits beyond u64 precision are read and ignored, as Go does.
        let (mut fraction, mut scale, mut frac_len) = (0u64, 1f64, 0);
        if let Some(after_dot) = rest.strip_prefix('.') {
            frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for digit in after_dot[..frac_len].bytes() {
                match fraction.checked_mul(10).map(|f| f + u64::from(digit - b'0')) {
                    Some(next) if !overflow && next <= LIMIT && fraction <= (LIMIT - 1) / 10 => {
                        fraction = next;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            rest = &after_dot[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {text:?}"));
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let (_, nanos) = GO_DURATION_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(|| format!("time: unknown unit {unit:?} in duration {text:?}"))?;
        if whole > LIMIT / nanos {
            return Err(invalid());
        }
        let mut term = whole * nanos;
        if fraction > 0 {
            // As Go: the fraction's share is computed in floating point.
            term += (fraction as f64 * (*nanos as f64 / scale)) as u64;
            if term > LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(term).filter(|&t| t <= LIMIT).ok_or_else(invalid)?;
    }
    match (negative, i64::try_from(total)) {
        (false, Ok(nanos)) => Ok(nanos),
        (true, _) => Ok(0i64.wrapping_sub(total as i64)),
        (false, Err(_)) => Err(invalid()),
    }
}

/// An `http://` or `https://` URL with a host.
#[cfg(feature = "kaniko-build")]
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!("{url:?} must be an http:// or https:// URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for ok in ["336h", "90m", "1h30m", "1.5h", "10s", "100ms", "1.h", ".5h", "1h0.5m", "2\u{b5}s", "+3m"] {
            assert!(check_go_duration(ok).is_ok(), "{ok}");
        }
        for bad in ["", "h", "10", "1d", "-1h", "0", "10 m", "ten minutes", ".h", "1..5h", "1.2.3h", "1hh", "-"] {
            assert!(check_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_duration_values_and_messages_match_go() {
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("-1.5s"), Ok(-1_500_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("-0"), Ok(0));
        assert_eq!(parse_go_duration("9223372036854775807ns"), Ok(i64::MAX));
        assert_eq!(parse_go_duration("-9223372036854775808ns"), Ok(i64::MIN));
        assert_eq!(parse_go_duration("1.0000000000000000000001s"), Ok(1_000_000_000), "extra fraction digits");
        assert_eq!(
            parse_go_duration("9223372036854775808ns"),
            Err("time: invalid duration \"9223372036854775808ns\"".into())
        );
        assert_eq!(parse_go_duration("3000000h"), Err("time: invalid duration \"3000000h\"".into()));
        assert_eq!(parse_go_duration(".h"), Err("time: invalid duration \".h\"".into()));
        assert_eq!(parse_go_duration("1..5h"), Err("time: missing unit in duration \"1..5h\"".into()));
        assert_eq!(parse_go_duration("1.2.3h"), Err("time: missing unit in duration \"1.2.3h\"".into()));
        assert_eq!(parse_go_duration("10"), Err("time: missing unit in duration \"10\"".into()));
        assert_eq!(parse_go_duration("1d"), Err("time: unknown unit \"d\" in duration \"1d\"".into()));
        assert_eq!(parse_go_duration("1h 2m"), Err("time: unknown unit \"h \" in duration \"1h 2m\"".into()));
    }

    #[test]
    fn urls() {
        assert!(check_url("http://127.0.0.1:9000").is_ok());
        assert!(check_url("https://s3.example.com").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("https://").is_err());
    }
}
