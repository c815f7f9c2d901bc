//! The log as the Azure DevOps web view shows it, on a terminal: stage and
//! job headers, `Starting:`/`Finishing:` around each step with the task's
//! banner, `##[group]` blocks as indented blocks under a ▸ header,
//! `##[section]`, errors and warnings highlighted, each step's result, the
//! attached Markdown summaries as text, and the run's summary at the end.
//! ANSI colours only when asked (a TTY without `--no-color`).

use std::io::Write;
use std::time::Duration;

use azp_harness::{Issue, StepResult};

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BLUE: &str = "\x1b[34m";
const MAGENTA: &str = "\x1b[35m";
const CYAN: &str = "\x1b[36m";

/// Writes the rendered log.
pub struct Renderer {
    out: Box<dyn Write>,
    color: bool,
    in_group: bool,
}

/// Whether stdout is a terminal.
pub fn stdout_is_tty() -> bool {
    // SAFETY: isatty(2) on a file descriptor number; no memory is touched.
    unsafe { libc::isatty(1) == 1 }
}

/// The mark and word of a result.
pub fn result_word(result: StepResult) -> (&'static str, &'static str) {
    match result {
        StepResult::Succeeded => ("✓", "Succeeded"),
        StepResult::SucceededWithIssues => ("!", "Succeeded with issues"),
        StepResult::Failed => ("✗", "Failed"),
        StepResult::Canceled => ("⊘", "Canceled"),
        StepResult::Skipped => ("⊘", "Skipped"),
    }
}

impl Renderer {
    pub fn new(out: Box<dyn Write>, color: bool) -> Self {
        Self { out, color, in_group: false }
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color { format!("{style}{text}{RESET}") } else { text.to_string() }
    }

    fn result_style(result: StepResult) -> &'static str {
        match result {
            StepResult::Succeeded => GREEN,
            StepResult::SucceededWithIssues => YELLOW,
            StepResult::Failed => RED,
            StepResult::Canceled | StepResult::Skipped => DIM,
        }
    }

    fn painted_result(&self, result: StepResult) -> String {
        let (mark, word) = result_word(result);
        self.paint(Self::result_style(result), &format!("{mark} {word}"))
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    pub fn title(&mut self, text: &str) {
        let text = self.paint(BOLD, text);
        self.line(&text);
    }

    pub fn note(&mut self, text: &str) {
        let text = self.paint(DIM, &format!("note: {text}"));
        self.line(&text);
    }

    pub fn warning(&mut self, indent: usize, text: &str) {
        let text = self.paint(YELLOW, &format!("{:indent$}WARNING: {text}", ""));
        self.line(&text);
    }

    pub fn blank(&mut self) {
        self.line("");
    }

    pub fn stage_start(&mut self, name: &str, display: Option<&str>) {
        self.blank();
        let label = match display {
            Some(d) if d != name => format!("Stage {name} · {d}"),
            _ => format!("Stage {name}"),
        };
        let bar = "━".repeat(72usize.saturating_sub(label.chars().count() + 4));
        let text = self.paint(&format!("{BOLD}{MAGENTA}"), &format!("━━ {label} {bar}"));
        self.line(&text);
    }

    pub fn stage_skipped(&mut self, name: &str, why: &str) {
        self.stage_start(name, None);
        let result = self.painted_result(StepResult::Skipped);
        self.line(&format!("  {result}  {why}"));
    }

    pub fn job_start(&mut self, name: &str, display: Option<&str>) {
        let label = match display {
            Some(d) if d != name => format!("Job {name} · {d}"),
            _ => format!("Job {name}"),
        };
        let text = self.paint(&format!("{BOLD}{CYAN}"), &format!("  ── {label} ──"));
        self.line(&text);
    }

    pub fn job_end(&mut self, name: &str, result: StepResult, took: Duration) {
        let result = self.painted_result(result);
        self.line(&format!("  ── Job {name}: {result} ({:.1} s)", took.as_secs_f64()));
    }

    pub fn job_skipped(&mut self, name: &str, why: &str) {
        self.job_start(name, None);
        let result = self.painted_result(StepResult::Skipped);
        self.line(&format!("    {result}  {why}"));
    }

    /// `Starting: <step>` and the task's banner, as the agent prints it.
    pub fn step_start(&mut self, display: &str, banner: &[(String, String)]) {
        let text = self.paint(BOLD, &format!("    Starting: {display}"));
        self.line(&text);
        let rule = format!("    {}", "=".repeat(78));
        self.line(&rule);
        for (key, value) in banner {
            self.line(&format!("    {key:<13}: {value}"));
        }
        self.line(&rule);
        self.in_group = false;
    }

    /// One line of the step's log (after the agent's processing).
    pub fn step_line(&mut self, raw: &str) {
        let indent = if self.in_group { "        " } else { "    " };
        if let Some(title) = raw.strip_prefix("##[group]") {
            self.in_group = true;
            let text = self.paint(&format!("{BOLD}{CYAN}"), &format!("    ▸ {title}"));
            self.line(&text);
        } else if raw.starts_with("##[endgroup]") {
            self.in_group = false;
        } else if let Some(text) = raw.strip_prefix("##[section]") {
            let text = self.paint(&format!("{BOLD}{GREEN}"), &format!("{indent}{text}"));
            self.line(&text);
        } else if let Some(text) = raw.strip_prefix("##[error]") {
            let text = self.paint(&format!("{BOLD}{RED}"), &format!("{indent}ERROR: {text}"));
            self.line(&text);
        } else if let Some(text) = raw.strip_prefix("##[warning]") {
            let text = self.paint(YELLOW, &format!("{indent}WARNING: {text}"));
            self.line(&text);
        } else if let Some(text) = raw.strip_prefix("##[command]") {
            let text = self.paint(BLUE, &format!("{indent}{text}"));
            self.line(&text);
        } else if let Some(text) = raw.strip_prefix("##[debug]") {
            let text = self.paint(DIM, &format!("{indent}DEBUG: {text}"));
            self.line(&text);
        } else {
            self.line(&format!("{indent}{raw}"));
        }
    }

    pub fn step_end(&mut self, display: &str, result: StepResult, took: Duration, issues: &[Issue]) {
        self.in_group = false;
        let text = self.paint(BOLD, &format!("    Finishing: {display}"));
        self.line(&text);
        let result = self.painted_result(result);
        let (errors, warnings) = (
            issues.iter().filter(|i| i.kind == "error").count(),
            issues.iter().filter(|i| i.kind == "warning").count(),
        );
        let mut counts = String::new();
        if errors > 0 {
            counts.push_str(&format!(", {errors} error(s)"));
        }
        if warnings > 0 {
            counts.push_str(&format!(", {warnings} warning(s)"));
        }
        self.line(&format!("    {result}  {display} ({:.1} s{counts})", took.as_secs_f64()));
    }

    pub fn step_skipped(&mut self, display: &str) {
        let result = self.painted_result(StepResult::Skipped);
        self.line(&format!("    {result}  {display}"));
    }

    /// An attached Markdown summary, rendered as text.
    pub fn summary(&mut self, markdown: &str) {
        let title = self.paint(DIM, "    ┌ attached summary");
        self.line(&title);
        for line in markdown_to_text(markdown).lines() {
            self.line(&format!("    │ {line}"));
        }
        let end = self.paint(DIM, "    └");
        self.line(&end);
    }

    /// The run's summary: each stage's result, the errors, the overall result.
    pub fn run_summary(&mut self, stages: &[(String, StepResult)], errors: &[String], result: StepResult) {
        self.blank();
        self.title("Run summary");
        let width = stages.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(0);
        for (name, stage_result) in stages {
            let painted = self.painted_result(*stage_result);
            self.line(&format!("  {name:<width$}  {painted}"));
        }
        if !errors.is_empty() {
            self.line(&format!("  Errors ({})", errors.len()));
            for error in errors {
                let text = self.paint(RED, &format!("    {error}"));
                self.line(&text);
            }
        }
        let painted = self.painted_result(result);
        self.line(&format!("Result: {painted}"));
    }
}

/// Markdown as plain text: headings underlined, tables aligned, inline
/// markup (`code`, **bold**) stripped.
pub fn markdown_to_text(markdown: &str) -> String {
    let mut out = Vec::new();
    let mut table: Vec<Vec<String>> = Vec::new();
    let flush = |table: &mut Vec<Vec<String>>, out: &mut Vec<String>| {
        if table.is_empty() {
            return;
        }
        let columns = table.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| table.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
            .collect();
        for row in table.drain(..) {
            let cells: Vec<String> = (0..columns)
                .map(|c| {
                    let cell = row.get(c).cloned().unwrap_or_default();
                    format!("{cell:<w$}", w = widths[c])
                })
                .collect();
            out.push(cells.join("  ").trim_end().to_string());
        }
    };
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('|') {
            let cells = split_row(trimmed);
            let separator = cells.iter().all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')));
            let empty = cells.iter().all(String::is_empty);
            if !separator && !empty {
                table.push(cells.iter().map(|c| inline(c)).collect());
            }
            continue;
        }
        flush(&mut table, &mut out);
        if let Some(heading) = trimmed.strip_prefix('#') {
            let heading = inline(heading.trim_start_matches('#').trim());
            out.push(heading.clone());
            out.push("─".repeat(heading.chars().count()));
        } else {
            out.push(inline(line));
        }
    }
    flush(&mut table, &mut out);
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// The cells of `| a | b\|c |`.
fn split_row(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

fn inline(text: &str) -> String {
    text.replace("**", "").replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_and_headings() {
        let md =
            "### Helm release web\n\n| | |\n|---|---|\n| Release | web |\n| Revision | `1` |\n| Source | a\\|b |\n";
        assert_eq!(
            markdown_to_text(md),
            "Helm release web\n────────────────\n\nRelease   web\nRevision  1\nSource    a|b"
        );
    }

    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn groups_are_indented_and_colour_only_when_asked() {
        let buffer = Shared::default();
        let mut r = Renderer::new(Box::new(buffer.clone()), false);
        for line in ["before", "##[group]Packing", "inside", "##[endgroup]", "##[error]boom", "##[section]done"] {
            r.step_line(line);
        }
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "    before\n    ▸ Packing\n        inside\n    ERROR: boom\n    done\n");
        let buffer = Shared::default();
        let mut r = Renderer::new(Box::new(buffer.clone()), true);
        r.step_line("##[error]boom");
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("\x1b[31m"), "{text:?}");
    }
}
