//! `##vso[area.event key=value;…]data` commands, escaped exactly as the agent
//! unescapes them.
//!
//! The agent decodes `%3B`, `%0D`, `%0A`, `%5D` and then `%AZP25`, in both
//! property values and data. So `%` is encoded first (to `%AZP25`), then CR,
//! LF, and, in property values, `]` and `;`, which would end the header or
//! the property.

use std::fmt;

/// Escapes a property value.
pub fn escape_property(value: &str) -> String {
    escape(value, true)
}

/// Escapes a command's data (the part after `]`).
pub fn escape_data(value: &str) -> String {
    escape(value, false)
}

fn escape(value: &str, property: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%AZP25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ']' if property => out.push_str("%5D"),
            ';' if property => out.push_str("%3B"),
            c => out.push(c),
        }
    }
    out
}

/// One logging command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    area_event: &'static str,
    properties: Vec<(&'static str, String)>,
    data: String,
}

impl Command {
    /// A command such as `task.setvariable`.
    pub fn new(area_event: &'static str) -> Self {
        Self { area_event, properties: Vec::new(), data: String::new() }
    }

    /// Adds a property; an empty value is left out, as the agent would drop it.
    pub fn property(mut self, key: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.properties.push((key, value));
        }
        self
    }

    /// Sets the data.
    pub fn data(mut self, data: impl Into<String>) -> Self {
        self.data = data.into();
        self
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "##vso[{}", self.area_event)?;
        for (i, (key, value)) in self.properties.iter().enumerate() {
            let sep = if i == 0 { ' ' } else { ';' };
            write!(f, "{sep}{key}={}", escape_property(value))?;
        }
        write!(f, "]{}", escape_data(&self.data))
    }
}

/// The result a step can report with `task.complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskResult {
    Succeeded,
    SucceededWithIssues,
    Failed,
}

impl TaskResult {
    /// The exact, case-sensitive spelling the agent accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::SucceededWithIssues => "SucceededWithIssues",
            Self::Failed => "Failed",
        }
    }
}

/// The kind of a `task.logissue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    Error,
    Warning,
}

impl IssueType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// A `task.logissue`, with its optional source location and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub kind: IssueType,
    pub message: String,
    pub source_path: Option<String>,
    pub line_number: Option<u32>,
    pub code: Option<String>,
}

impl Issue {
    pub fn new(kind: IssueType, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source_path: None, line_number: None, code: None }
    }

    pub fn command(&self) -> Command {
        Command::new("task.logissue")
            .property("type", self.kind.as_str())
            .property("sourcepath", self.source_path.clone().unwrap_or_default())
            .property("linenumber", self.line_number.map(|n| n.to_string()).unwrap_or_default())
            .property("code", self.code.clone().unwrap_or_default())
            .data(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_escape_all_five() {
        assert_eq!(escape_property("a;b]c%d\re\nf"), "a%3Bb%5Dc%AZP25d%0De%0Af");
    }

    #[test]
    fn data_keeps_brackets_and_semicolons() {
        assert_eq!(escape_data("a;b]c%d\r\n"), "a;b]c%AZP25d%0D%0A");
    }

    #[test]
    fn percent_first_so_literal_escapes_survive() {
        // A literal "%0A" must not turn into a newline on the agent's side.
        assert_eq!(escape_data("%0A"), "%AZP250A");
        assert_eq!(escape_property("%3B"), "%AZP253B");
    }

    #[test]
    fn command_layout() {
        let c = Command::new("task.setvariable")
            .property("variable", "imageDigest")
            .property("isoutput", "true")
            .property("issecret", "")
            .data("sha256:abc");
        assert_eq!(c.to_string(), "##vso[task.setvariable variable=imageDigest;isoutput=true]sha256:abc");
        assert_eq!(Command::new("task.setsecret").data("x").to_string(), "##vso[task.setsecret]x");
    }
}
