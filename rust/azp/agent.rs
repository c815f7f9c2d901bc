//! The channel to the agent: every line the task prints goes through here.
//!
//! Our own messages are checked too: any `##vso[` inside a plain line is
//! neutralised, so text that holds user input cannot become a command.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::command::{Command, Issue, TaskResult};
use super::untrusted;

type Sink = Box<dyn Write + Send>;

/// Writes commands and log lines for the agent. Cheap to clone.
#[derive(Clone)]
pub struct Agent {
    sink: Arc<Mutex<Sink>>,
}

/// Options of `task.setvariable`.
#[derive(Debug, Clone, Copy, Default)]
pub struct VariableOptions {
    /// Visible to later jobs and stages as `<step>.<name>`.
    pub is_output: bool,
    /// Masked in logs and only passed to tasks that ask for it.
    pub is_secret: bool,
}

impl Agent {
    /// Writes to standard output, which the agent reads line by line.
    pub fn stdout() -> Self {
        Self::to_writer(std::io::stdout())
    }

    /// Writes to any writer (tests).
    pub fn to_writer(writer: impl Write + Send + 'static) -> Self {
        Self { sink: Arc::new(Mutex::new(Box::new(writer))) }
    }

    /// An agent whose lines wait in a [`HeldLog`] until it is released, so
    /// that work running beside other work shows its log in one piece.
    /// `task.setsecret` is not held: the real agent masks from then on.
    pub fn held(&self) -> (Agent, HeldLog) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = HoldingSink { parent: self.clone(), lines: lines.clone(), partial: Vec::new() };
        (Self::to_writer(sink), HeldLog { parent: self.clone(), lines })
    }

    /// Writes whole lines at once, so that concurrent writers never interleave
    /// inside a line.
    fn write_lines(&self, lines: &[String]) {
        let mut sink = self.sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for line in lines {
            // Losing a log line is better than failing the task over it.
            let _ = writeln!(sink, "{line}");
        }
        let _ = sink.flush();
    }

    fn command(&self, command: Command) {
        self.write_lines(&[command.to_string()]);
    }

    /// A plain log line of our own. Line breaks start new lines.
    pub fn line(&self, text: &str) {
        let lines: Vec<String> = text.split('\n').map(untrusted::neutralise).collect();
        self.write_lines(&lines);
    }

    /// Lines of third-party output (pod logs, helm), already split.
    pub fn untrusted_lines(&self, lines: &[String]) {
        self.write_lines(lines);
    }

    /// `##[<kind>]text` formatting lines (group, section, command, debug, …).
    fn formatted(&self, kind: &str, text: &str) {
        let lines: Vec<String> = text.split('\n').map(|l| format!("##[{kind}]{}", untrusted::neutralise(l))).collect();
        self.write_lines(&lines);
    }

    pub fn group(&self, title: &str) {
        self.formatted("group", title);
    }

    pub fn end_group(&self) {
        self.write_lines(&["##[endgroup]".to_string()]);
    }

    pub fn section(&self, text: &str) {
        self.formatted("section", text);
    }

    /// Shows a command line the task runs (never with secrets in it).
    pub fn shell_command(&self, text: &str) {
        self.formatted("command", text);
    }

    pub fn debug(&self, text: &str) {
        self.formatted("debug", text);
    }

    /// A bare `##[error]` line: styled, but no issue on the step.
    pub fn error_line(&self, text: &str) {
        self.formatted("error", text);
    }

    /// A bare `##[warning]` line: styled, but no issue on the step.
    pub fn warning_line(&self, text: &str) {
        self.formatted("warning", text);
    }

    pub fn set_variable(&self, name: &str, value: &str, options: VariableOptions) {
        let flag = |b: bool| if b { "true" } else { "false" };
        self.command(
            Command::new("task.setvariable")
                .property("variable", name)
                .property("isoutput", flag(options.is_output))
                .property("issecret", flag(options.is_secret))
                .data(value),
        );
    }

    /// Asks the agent to mask a value from now on. Multi-line secrets fail the
    /// step on the agent's side, so each line is registered on its own.
    pub fn set_secret(&self, value: &str) {
        for line in value.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()) {
            self.command(Command::new("task.setsecret").data(line));
        }
    }

    pub fn complete(&self, result: TaskResult, message: &str) {
        self.command(Command::new("task.complete").property("result", result.as_str()).data(message));
    }

    pub fn log_issue(&self, issue: &Issue) {
        self.command(issue.command());
    }

    /// Progress of the step, clamped to 0–100 as the agent does.
    pub fn set_progress(&self, percent: u32, operation: &str) {
        self.command(Command::new("task.setprogress").property("value", percent.min(100).to_string()).data(operation));
    }

    /// Writes `markdown` to `path` and attaches it as the step's summary (the
    /// file must exist until the step ends, or the agent fails the step: put
    /// it in the agent's temp directory). A summary that cannot be written is
    /// only a warning: the work it describes is done, a pushed image pushed.
    pub fn attach_summary(&self, path: &Path, markdown: &str) {
        match std::fs::write(path, markdown) {
            Ok(()) => self.command(Command::new("task.uploadsummary").data(path.to_string_lossy())),
            Err(e) => self.warning_line(&format!("cannot write the summary {}: {e}", path.display())),
        }
    }

    pub fn add_attachment(&self, kind: &str, name: &str, path: &Path) {
        self.command(
            Command::new("task.addattachment")
                .property("type", kind)
                .property("name", name)
                .data(path.to_string_lossy()),
        );
    }
}

/// The lines of a [`Agent::held`] agent, not shown yet.
pub struct HeldLog {
    parent: Agent,
    lines: Arc<Mutex<Vec<String>>>,
}

impl HeldLog {
    /// Shows the held lines as one group titled `title`. The agent does not
    /// nest groups: a group inside becomes a section.
    pub fn release(self, title: &str) {
        let held = std::mem::take(&mut *self.lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let mut lines = Vec::with_capacity(held.len() + 2);
        lines.push(format!("##[group]{}", untrusted::neutralise(title)));
        for line in held {
            match line.strip_prefix("##[group]") {
                Some(inner) => lines.push(format!("##[section]{inner}")),
                None if line == "##[endgroup]" => {}
                None => lines.push(line),
            }
        }
        lines.push("##[endgroup]".into());
        self.parent.write_lines(&lines);
    }
}

/// Keeps whole lines for a [`HeldLog`]; passes `task.setsecret` on at once.
struct HoldingSink {
    parent: Agent,
    lines: Arc<Mutex<Vec<String>>>,
    partial: Vec<u8>,
}

impl Write for HoldingSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            if line.starts_with("##vso[task.setsecret") {
                self.parent.write_lines(&[line]);
            } else {
                self.lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(line);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azp_harness::Capture;

    #[test]
    fn plain_lines_cannot_carry_commands() {
        let capture = Capture::default();
        let agent = Agent::to_writer(capture.clone());
        agent.line("path ##vso[task.complete result=Failed]x\nsecond");
        assert_eq!(capture.text(), "path **vso[task.complete result=Failed]x\nsecond\n");
    }

    #[test]
    fn a_summary_that_cannot_be_written_is_a_warning_and_is_not_attached() {
        let dir = tempfile::tempdir().unwrap();
        let capture = Capture::default();
        let agent = Agent::to_writer(capture.clone());
        let path = dir.path().join("summary.md");
        agent.attach_summary(&path, "### Done\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "### Done\n");
        assert_eq!(capture.text(), format!("##vso[task.uploadsummary]{}\n", path.display()));
        let missing = dir.path().join("gone/summary.md");
        let capture = Capture::default();
        Agent::to_writer(capture.clone()).attach_summary(&missing, "### Done\n");
        let text = capture.text();
        assert!(text.starts_with(&format!("##[warning]cannot write the summary {}: ", missing.display())), "{text}");
        assert!(!text.contains("task.uploadsummary"), "{text}");
    }

    #[test]
    fn multi_line_secrets_are_registered_line_by_line() {
        let capture = Capture::default();
        Agent::to_writer(capture.clone()).set_secret("abc\r\ndef\n");
        assert_eq!(capture.text(), "##vso[task.setsecret]abc\n##vso[task.setsecret]def\n");
    }

    #[test]
    fn a_held_log_shows_in_one_group_and_its_secrets_are_registered_at_once() {
        let capture = Capture::default();
        let agent = Agent::to_writer(capture.clone());
        let (held_agent, held) = agent.held();
        held_agent.group("AWS identity");
        held_agent.line("one");
        held_agent.set_secret("s3cr3t");
        held_agent.end_group();
        agent.line("beside");
        assert_eq!(capture.text(), "##vso[task.setsecret]s3cr3t\nbeside\n", "only the secret went through");
        held.release("Target dev");
        assert_eq!(
            capture.text(),
            "##vso[task.setsecret]s3cr3t\nbeside\n##[group]Target dev\n##[section]AWS identity\none\n##[endgroup]\n"
        );
    }
}
