//! The agent's secret masker, as the log shows its effect.
//!
//! Follows microsoft/azure-pipelines-agent (main, 2026): `TaskSetSecretCommand`
//! adds the command's (already unescaped) data as one value; `HostContext`
//! adds three value encoders (`JsonStringEscape`, `UriDataEscape`,
//! `BackslashEscape`) whose results are masked too, and the URL password
//! regex of `AdditionalMaskingRegexes`. Masking happens when a line is
//! written, with the values registered up to that moment: nothing printed
//! before a `task.setsecret` is masked afterwards. Every match is replaced,
//! overlapping matches merge into one `***`. The minimum secret length
//! (`AZP_IGNORE_SECRETS_SHORTER_THAN`) defaults to 0: every value counts.

/// The values registered so far, with their encoded forms.
#[derive(Debug, Clone, Default)]
pub struct SecretMasker {
    values: Vec<String>,
}

impl SecretMasker {
    /// Registers a value (`task.setsecret`, or a secret variable).
    pub fn add(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        for form in [value.to_string(), json_string_escape(value), uri_data_escape(value), backslash_escape(value)] {
            if !form.is_empty() && !self.values.contains(&form) {
                self.values.push(form);
            }
        }
    }

    /// The line as the agent writes it.
    pub fn mask(&self, line: &str) -> String {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for value in &self.values {
            ranges.extend(line.match_indices(value.as_str()).map(|(at, m)| (at, at + m.len())));
        }
        ranges.extend(url_passwords(line));
        if ranges.is_empty() {
            return line.to_string();
        }
        ranges.sort_unstable();
        let mut masked = String::with_capacity(line.len());
        let mut written = 0;
        let mut iter = ranges.into_iter().peekable();
        while let Some((start, mut end)) = iter.next() {
            while let Some(&(next_start, next_end)) = iter.peek() {
                if next_start > end {
                    break;
                }
                end = end.max(next_end);
                iter.next();
            }
            if start >= written {
                masked.push_str(&line[written..start]);
                masked.push_str("***");
                written = end;
            } else if end > written {
                written = end;
            }
        }
        masked.push_str(&line[written..]);
        masked
    }
}

/// Newtonsoft's `JsonConvert.ToString` without the quotes.
fn json_string_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// .NET's `Uri.EscapeDataString`: everything but RFC 3986's unreserved
/// characters, as upper-case percent escapes of the UTF-8 bytes.
fn uri_data_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The agent's `BackslashEscape` encoder: it undoes four backslash escapes.
fn backslash_escape(value: &str) -> String {
    value.replace("\\\\", "\\").replace("\\'", "'").replace("\\\"", "\"").replace("\\t", "\t")
}

/// The password of `scheme://user:password@host`, as the agent's URL regex
/// finds it: after `//`, a user without `:/?#` or a newline, a `:`, then
/// unreserved, percent-encoded, sub-delimiter or `:` characters up to `@`.
fn url_passwords(line: &str) -> Vec<(usize, usize)> {
    let bytes = line.as_bytes();
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_.~-!$&'()*+,;=:%".contains(&b);
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = line[from..].find("//") {
        let user_start = from + at + 2;
        from = user_start;
        let Some(colon) = line[user_start..].find([':', '/', '?', '#', '\n']) else {
            break;
        };
        let colon = user_start + colon;
        if colon == user_start || bytes[colon] != b':' {
            continue;
        }
        // The password runs to the last `@` reachable through allowed bytes
        // (the regex is greedy and backtracks to an `@`).
        let mut end = colon + 1;
        let mut last_at = None;
        while end < bytes.len() && (allowed(bytes[end]) || bytes[end] == b'@') {
            if bytes[end] == b'@' {
                last_at = Some(end);
            }
            end += 1;
        }
        if let Some(at_sign) = last_at.filter(|&a| a > colon + 1 && !line[colon + 1..a].contains('@')) {
            found.push((colon + 1, at_sign));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> SecretMasker {
        let mut m = SecretMasker::default();
        values.iter().for_each(|v| m.add(v));
        m
    }

    #[test]
    fn values_and_their_encodings_are_masked() {
        let m = masker(&["p@ss w0rd\"x"]);
        assert_eq!(m.mask("a p@ss w0rd\"x b"), "a *** b");
        assert_eq!(m.mask("json: p@ss w0rd\\\"x"), "json: ***");
        assert_eq!(m.mask("url: p%40ss%20w0rd%22x"), "url: ***");
    }

    #[test]
    fn a_comma_escaped_with_a_backslash_is_not_matched() {
        // The agent's BackslashEscape undoes \\ \' \" \t only: helm's `\,` stays visible.
        let m = masker(&["p@ss,w0rd"]);
        assert_eq!(m.mask("--set key=p@ss\\,w0rd"), "--set key=p@ss\\,w0rd");
    }

    #[test]
    fn overlapping_matches_merge() {
        let m = masker(&["abcd", "cdef"]);
        assert_eq!(m.mask("xabcdefy"), "x***y");
    }

    #[test]
    fn url_passwords_are_masked_without_registration() {
        let m = SecretMasker::default();
        assert_eq!(m.mask("fetch https://user:hunter2@example.com/x"), "fetch https://user:***@example.com/x");
        assert_eq!(m.mask("see https://example.com/a:b"), "see https://example.com/a:b");
    }
}
