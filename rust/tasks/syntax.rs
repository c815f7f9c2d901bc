//! Syntax checks that more than one task's parameters need.

/// A Go duration such as `336h`, `90m`, `1h30m`.
pub fn check_go_duration(text: &str) -> Result<(), String> {
    let error = || format!("{text:?} is not a duration such as 336h, 90m or 1h30m");
    let mut rest = text;
    if rest.is_empty() {
        return Err(error());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(error)?;
        if digits == 0 {
            return Err(error());
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .into_iter()
            .filter(|u| rest.starts_with(u))
            .max_by_key(|u| u.len())
            .ok_or_else(error)?;
        rest = &rest[unit.len()..];
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host.
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
        for ok in ["336h", "90m", "1h30m", "1.5h", "10s", "100ms"] {
            assert!(check_go_duration(ok).is_ok(), "{ok}");
        }
        for bad in ["", "h", "10", "1d", "-1h", "10 m", "ten minutes"] {
            assert!(check_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(check_url("http://127.0.0.1:9000").is_ok());
        assert!(check_url("https://s3.example.com").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("https://").is_err());
    }
}
