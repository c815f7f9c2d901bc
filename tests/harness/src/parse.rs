//! The agent's grammar for `##vso[area.event k=v;…]data`: the prefix anywhere
//! in a line, the header up to the first `]`, properties split on `;` then on
//! the first `=`, keys case-insensitive, empty values dropped, and values and
//! data unescaped (`%3B %0D %0A %5D`, then `%AZP25`).

use std::collections::BTreeMap;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCommand {
    /// `area.event`, lower case.
    pub name: String,
    /// Property keys in lower case.
    pub properties: BTreeMap<String, String>,
    pub data: String,
}

impl AgentCommand {
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(&key.to_ascii_lowercase()).map(String::as_str)
    }
}

/// The command in a line, if the agent would see one.
pub fn parse_line(line: &str) -> Option<AgentCommand> {
    let start = line.find("##vso[")?;
    let rest = &line[start + "##vso[".len()..];
    let end = rest.find(']')?;
    let header = &rest[..end];
    let data = &rest[end + 1..];
    let (name, props) = match header.find(' ') {
        Some(at) => (&header[..at], &header[at + 1..]),
        None => (header, ""),
    };
    if name.split('.').count() != 2 {
        return None;
    }
    let mut properties = BTreeMap::new();
    for prop in props.split(';').filter(|p| !p.is_empty()) {
        if let Some((key, value)) = prop.split_once('=')
            && !value.is_empty()
        {
            properties.insert(key.to_ascii_lowercase(), unescape(value));
        }
    }
    Some(AgentCommand { name: name.to_ascii_lowercase(), properties, data: unescape(data) })
}

/// The agent's unescaping: `%3B %0D %0A %5D` first, then `%AZP25`.
pub fn unescape(value: &str) -> String {
    value.replace("%3B", ";").replace("%0D", "\r").replace("%0A", "\n").replace("%5D", "]").replace("%AZP25", "%")
}

/// The agent's mangling of an input or variable name.
pub fn mangle(name: &str) -> String {
    name.replace(['.', ' '], "_").to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anywhere_in_a_line() {
        let c = parse_line("text ##vso[task.setvariable variable=a;isOutput=true]v=1").unwrap();
        assert_eq!(c.name, "task.setvariable");
        assert_eq!(c.property("isoutput"), Some("true"));
        assert_eq!(c.data, "v=1");
    }

    #[test]
    fn values_keep_equals_and_empty_values_drop() {
        let c = parse_line("##vso[a.b k=x=y;e=]").unwrap();
        assert_eq!(c.property("k"), Some("x=y"));
        assert_eq!(c.property("e"), None);
    }

    #[test]
    fn not_a_command() {
        assert!(parse_line("**vso[task.complete]").is_none());
        assert!(parse_line("##vso[nodot]").is_none());
        assert!(parse_line("##vso[task.complete").is_none());
    }
}
