//! `--set` lines for helm's strvals parser: one `key=value` per input line,
//! where the value may hold commas (strvals would split there) and
//! backslashes (strvals' escape character).

/// An override line that is not `key=value`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line} ({text:?}) is not key=value")]
pub struct BadLine {
    pub line: usize,
    pub text: String,
}

/// Checks every line and escapes it for `--set`/`--set-string`.
pub fn set_values(lines: &[String]) -> Result<Vec<String>, BadLine> {
    lines
        .iter()
        .enumerate()
        .map(|(i, text)| escape_line(text).ok_or(BadLine { line: i + 1, text: key_only(text) }))
        .collect()
}

/// A line written as HelmDeploy@1 reads `overrideValues` (`a=1,b=2`, split
/// at commas): here a line is one `key=value`, so `a` would become `1,b=2`.
/// Returns the keys the user most likely meant; never any value.
pub fn helmdeploy_list_keys(line: &str) -> Option<Vec<String>> {
    let (key, value) = line.trim().split_once('=')?;
    if value.starts_with('{') && value.ends_with('}') {
        return None;
    }
    let mut keys = vec![key.trim().to_string()];
    for part in value.split(',').skip(1) {
        let (key, _) = part.split_once('=')?;
        let key = key.trim();
        let is_key = !key.is_empty()
            && key.starts_with(|c: char| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || "._-[]".contains(c));
        if !is_key {
            return None;
        }
        keys.push(key.to_string());
    }
    (keys.len() > 1).then_some(keys)
}

/// `key=value` with the value escaped: `\` → `\\`, `,` → `\,`. A value that
/// is a whole strvals list (`{a,b}`) is kept as it is.
fn escape_line(text: &str) -> Option<String> {
    let (key, value) = text.trim().split_once('=')?;
    let key = key.trim();
    // A key like `--set` would read as a flag to anyone copying the line.
    if key.is_empty() || key.contains(',') || key.starts_with('-') {
        return None;
    }
    if value.starts_with('{') && value.ends_with('}') {
        return Some(format!("{key}={value}"));
    }
    Some(format!("{key}={}", escape(value)))
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '\\' || c == ',' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What of a bad line may be shown: the part before `=`, never a value.
fn key_only(text: &str) -> String {
    match text.split_once('=') {
        Some((key, _)) => format!("{key}=…"),
        None if text.len() > 40 => format!("{}…", text.chars().take(40).collect::<String>()),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Option<String> {
        escape_line(line)
    }

    #[test]
    fn escaping_table() {
        assert_eq!(one("image.ref=r/web:1").as_deref(), Some("image.ref=r/web:1"));
        assert_eq!(one("hosts=a.example.com,b.example.com").as_deref(), Some("hosts=a.example.com\\,b.example.com"));
        assert_eq!(one("path=C:\\dir").as_deref(), Some("path=C:\\\\dir"));
        assert_eq!(one("query=a=b&c=d").as_deref(), Some("query=a=b&c=d"));
        assert_eq!(one("list={a,b}").as_deref(), Some("list={a,b}"));
        assert_eq!(one("  spaced = x ").as_deref(), Some("spaced= x"));
        assert_eq!(one("empty=").as_deref(), Some("empty="));
        assert_eq!(one("no-equals"), None);
        assert_eq!(one("=value"), None);
        assert_eq!(one("a,b=c"), None);
    }

    #[test]
    fn helmdeploy_comma_lists_are_recognised_by_their_keys() {
        let keys = |line| helmdeploy_list_keys(line);
        assert_eq!(keys("a=1,b=2"), Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(
            keys("image.tag=1, replicas=3,ingress.hosts[0]=x"),
            Some(vec!["image.tag".to_string(), "replicas".to_string(), "ingress.hosts[0]".to_string()])
        );
        // A comma inside a value, not a list.
        assert_eq!(keys("hosts=a.example.com,b.example.com"), None);
        assert_eq!(keys("query=a=b,c"), None);
        assert_eq!(keys("list={a=1,b=2}"), None);
        assert_eq!(keys("url=https://x/?a=1,2=3"), None);
        assert_eq!(keys("one=1"), None);
    }

    #[test]
    fn errors_name_the_line_but_not_the_value() {
        let err = set_values(&["a=1".into(), ",x=secret".into()]).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
