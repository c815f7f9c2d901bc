//! Third-party output (pod logs, helm) on its way to the pipeline log.
//!
//! The agent reads a command wherever `##vso[` appears in a line, and styles a
//! line that starts with `##[`. Build logs and helm output are written by
//! others, so every line of theirs passes through [`sanitise`]: ANSI escapes
//! and control characters go (they could hide or split a prefix, and .NET's
//! line reader also breaks lines at a lone CR), then both prefixes are
//! neutralised the way the agent itself does (`##vso[` → `**vso[`), so the
//! text stays readable. [`LineSplitter`] cuts a byte stream into such lines
//! with bounded memory, whatever the input's line length or encoding.

use std::borrow::Cow;

/// Longest line kept in one piece; longer ones are cut (memory stays bounded).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Makes one line of text safe to print: no command, no formatting prefix.
pub fn neutralise(line: &str) -> String {
    let mut out = replace_ignore_ascii_case(line, "##vso[", "**vso[").into_owned();
    let indent = out.len() - out.trim_start().len();
    if out[indent..].starts_with("##[") {
        out.replace_range(indent..indent + 2, "**");
    }
    out
}

/// Turns raw bytes of one third-party line into a safe, printable line.
pub fn sanitise(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    neutralise(&strip_controls(&text))
}

/// Removes ANSI escape sequences (CSI, OSC and two-byte escapes) and control
/// characters other than tab; a CR in the middle of a line becomes a space.
fn strip_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ST (ESC \).
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {
                if chars.peek().is_some() {
                    out.push(' ');
                }
            }
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn replace_ignore_ascii_case<'a>(text: &'a str, pattern: &str, with: &str) -> Cow<'a, str> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains(pattern) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in lower.match_indices(pattern) {
        out.push_str(&text[last..at]);
        out.push_str(with);
        last = at + pattern.len();
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

/// Cuts a stream of bytes into sanitised lines. A line longer than the limit
/// is emitted in pieces, so memory stays bounded.
#[derive(Debug)]
pub struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::new(MAX_LINE_BYTES)
    }
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self { pending: Vec::new(), max: max.max(16) }
    }

    /// Adds bytes and returns the lines they complete.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.append(&bytes[..end], &mut lines);
                    lines.push(sanitise(&std::mem::take(&mut self.pending)));
                    bytes = &bytes[end + 1..];
                }
                None => {
                    self.append(bytes, &mut lines);
                    bytes = &[];
                }
            }
        }
        lines
    }

    /// The last, unterminated line, if any.
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| sanitise(&std::mem::take(&mut self.pending)))
    }

    fn append(&mut self, mut bytes: &[u8], lines: &mut Vec<String>) {
        while self.pending.len() + bytes.len() > self.max {
            let room = self.max - self.pending.len();
            self.pending.extend_from_slice(&bytes[..room]);
            bytes = &bytes[room..];
            let cut = utf8_boundary(&self.pending);
            let rest = self.pending.split_off(cut);
            lines.push(sanitise(&self.pending));
            self.pending = rest;
        }
        self.pending.extend_from_slice(bytes);
    }
}

/// Where to cut a buffer so that a multi-byte character is not split (at most
/// three bytes are carried over to the next piece).
fn utf8_boundary(buf: &[u8]) -> usize {
    match std::str::from_utf8(buf) {
        Ok(_) => buf.len(),
        Err(e) if e.error_len().is_none() && buf.len() - e.valid_up_to() <= 3 => e.valid_up_to(),
        Err(_) => buf.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_anywhere_are_neutralised() {
        assert_eq!(neutralise("x ##vso[task.setvariable variable=a]b"), "x **vso[task.setvariable variable=a]b");
        assert_eq!(neutralise("##VSO[task.complete]"), "**vso[task.complete]");
        assert_eq!(neutralise("##vso[a]##vso[b]"), "**vso[a]**vso[b]");
    }

    #[test]
    fn leading_formatting_is_neutralised_but_inner_kept() {
        assert_eq!(neutralise("##[error]boom"), "**[error]boom");
        assert_eq!(neutralise("   ##[group]x"), "   **[group]x");
        assert_eq!(neutralise("see ##[error] here"), "see ##[error] here");
    }

    #[test]
    fn escapes_cannot_hide_a_prefix() {
        assert_eq!(sanitise(b"##\x1b[0mvso[task.complete]"), "**vso[task.complete]");
        assert_eq!(sanitise(b"\x1b]0;title\x07##[error]x"), "**[error]x");
        assert_eq!(sanitise(b"a\x00##vso[x]"), "a**vso[x]");
        assert_eq!(sanitise(b"\x1b[31mred\x1b[0m"), "red");
    }

    #[test]
    fn lone_carriage_return_cannot_start_a_line() {
        assert_eq!(sanitise(b"progress\r##vso[task.complete]"), "progress **vso[task.complete]");
        assert_eq!(sanitise(b"windows line\r"), "windows line");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(sanitise(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn long_lines_are_cut_on_character_boundaries() {
        let mut splitter = LineSplitter::new(16);
        let mut lines = splitter.push("ééééééééééé\n".as_bytes()); // 22 bytes
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| !l.contains('\u{fffd}')));
        assert_eq!(lines.concat(), "ééééééééééé");
        lines = splitter.push(b"tail");
        assert!(lines.is_empty());
        assert_eq!(splitter.finish().as_deref(), Some("tail"));
    }

    #[test]
    fn a_prefix_split_across_chunks_is_still_caught() {
        let mut splitter = LineSplitter::default();
        assert!(splitter.push(b"##v").is_empty());
        assert_eq!(splitter.push(b"so[task.complete]\n"), vec!["**vso[task.complete]".to_string()]);
    }
}
