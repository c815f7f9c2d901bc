//! What the agent makes of a step's output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::mask::SecretMasker;
use crate::parse::{AgentCommand, parse_line};

/// How many errors and how many warnings the agent attaches to one step.
const ISSUE_CAP: usize = 10;

/// The step's result, as the agent decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StepResult {
    Succeeded,
    SucceededWithIssues,
    Failed,
    Canceled,
    Skipped,
}

/// An issue attached to the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// `error` or `warning`.
    pub kind: String,
    pub message: String,
    pub source_path: Option<String>,
    pub line_number: Option<String>,
    pub code: Option<String>,
}

/// A variable the step set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub value: String,
    pub is_output: bool,
    pub is_secret: bool,
}

/// Everything the agent would take from one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub result: StepResult,
    /// The `task.complete` message, if any.
    pub result_message: Option<String>,
    /// The launcher's exit code; `None` when it died from a signal.
    pub exit_code: Option<i32>,
    /// Issues the agent keeps: the first 10 errors and the first 10 warnings.
    pub issues: Vec<Issue>,
    pub variables: BTreeMap<String, Variable>,
    /// Values registered with `task.setsecret` (and secret variables).
    pub secrets: Vec<String>,
    /// `(type, name, path)` of each `task.addattachment`.
    pub attachments: Vec<(String, String, PathBuf)>,
    /// Files attached with `task.uploadsummary`, with their content read at
    /// the end of the run (the agent uploads them then).
    pub summaries: Vec<(PathBuf, Option<String>)>,
    /// `(percent, operation)` of each `task.setprogress`.
    pub progress: Vec<(u32, String)>,
    /// The log as the web view shows it: each line masked as the agent
    /// writes it, with the secrets registered before it (never after).
    pub log: Vec<String>,
    /// Every command, in order.
    pub commands: Vec<AgentCommand>,
    masker: SecretMasker,
}

impl Outcome {
    /// Reads the lines of a finished step. `declared_outputs` are the names in
    /// task.json's `outputVariables`, which are outputs even without `isoutput`.
    pub fn from_lines(lines: &[String], exit_code: Option<i32>, declared_outputs: &[String]) -> Self {
        let mut outcome = Outcome {
            result: StepResult::Succeeded,
            result_message: None,
            exit_code,
            issues: Vec::new(),
            variables: BTreeMap::new(),
            secrets: Vec::new(),
            attachments: Vec::new(),
            summaries: Vec::new(),
            progress: Vec::new(),
            log: Vec::new(),
            commands: Vec::new(),
            masker: SecretMasker::default(),
        };
        for line in lines {
            match parse_line(line) {
                Some(command) => {
                    if let Some(shown) = outcome.apply(&command, declared_outputs) {
                        outcome.write(&shown);
                    }
                    outcome.commands.push(command);
                }
                None => outcome.write(line),
            }
        }
        if exit_code != Some(0) {
            outcome.merge(StepResult::Failed);
            let code = exit_code.map_or("a signal".to_string(), |c| c.to_string());
            outcome.write(&format!("##[error]Exit code {code} returned from process"));
        }
        outcome
    }

    /// Writes a line to the log, masked with what is registered by now.
    fn write(&mut self, line: &str) {
        self.log.push(self.masker.mask(line));
    }

    fn add_secret(&mut self, value: &str) {
        self.secrets.push(value.to_string());
        self.masker.add(value);
    }

    /// Applies one command; returns what the log shows for it, if anything.
    fn apply(&mut self, command: &AgentCommand, declared_outputs: &[String]) -> Option<String> {
        let flag = |key: &str| command.property(key).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        match command.name.as_str() {
            "task.complete" => {
                let result = match command.property("result") {
                    Some("Succeeded") => StepResult::Succeeded,
                    Some("SucceededWithIssues") => StepResult::SucceededWithIssues,
                    Some("Failed") => StepResult::Failed,
                    Some("Canceled") => StepResult::Canceled,
                    Some("Skipped") => StepResult::Skipped,
                    // The agent throws on an unknown result, which fails the step.
                    _ => StepResult::Failed,
                };
                self.merge(result);
                self.result_message = Some(self.masker.mask(&command.data)).filter(|m| !m.is_empty());
                None
            }
            "task.logissue" => {
                let kind = command.property("type").unwrap_or("").to_ascii_lowercase();
                let shown = format!("##[{kind}]{}", command.data);
                let kept = self.issues.iter().filter(|i| i.kind == kind).count();
                if kept < ISSUE_CAP && (kind == "error" || kind == "warning") {
                    self.issues.push(Issue {
                        kind,
                        message: self.masker.mask(&command.data),
                        source_path: command.property("sourcepath").map(str::to_string),
                        line_number: command.property("linenumber").map(str::to_string),
                        code: command.property("code").map(str::to_string),
                    });
                }
                Some(shown)
            }
            "task.setvariable" => {
                let name = command.property("variable")?.to_string();
                let is_secret = flag("issecret");
                if is_secret {
                    self.add_secret(&command.data);
                }
                let is_output = flag("isoutput") || declared_outputs.contains(&name);
                self.variables.insert(name, Variable { value: command.data.clone(), is_output, is_secret });
                None
            }
            "task.setsecret" => {
                self.add_secret(&command.data);
                None
            }
            "task.setprogress" => {
                let value = command.property("value").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                self.progress.push((value.clamp(0, 100) as u32, command.data.clone()));
                None
            }
            "task.uploadsummary" => {
                let path = PathBuf::from(&command.data);
                let content = std::fs::read_to_string(&path).ok();
                if content.is_none() {
                    // A missing summary file fails the step on the agent's side.
                    self.merge(StepResult::Failed);
                }
                self.summaries.push((path, content));
                None
            }
            "task.addattachment" => {
                let kind = command.property("type").unwrap_or_default().to_string();
                let name = command.property("name").unwrap_or_default().to_string();
                self.attachments.push((kind, name, PathBuf::from(&command.data)));
                None
            }
            _ => None,
        }
    }

    /// Results merge pessimistically.
    fn merge(&mut self, result: StepResult) {
        let rank = |r: StepResult| match r {
            StepResult::Succeeded => 0,
            StepResult::SucceededWithIssues => 1,
            StepResult::Skipped => 2,
            StepResult::Canceled => 3,
            StepResult::Failed => 4,
        };
        if rank(result) > rank(self.result) {
            self.result = result;
        }
    }

    /// A line as the agent would write it now, with every secret the step
    /// registered (for text that is not part of the step's log).
    pub fn mask(&self, line: &str) -> String {
        self.masker.mask(line)
    }

    pub fn errors(&self) -> Vec<&Issue> {
        self.issues.iter().filter(|i| i.kind == "error").collect()
    }

    pub fn warnings(&self) -> Vec<&Issue> {
        self.issues.iter().filter(|i| i.kind == "warning").collect()
    }

    /// An output variable's value.
    pub fn output(&self, name: &str) -> Option<&str> {
        self.variables.get(name).filter(|v| v.is_output).map(|v| v.value.as_str())
    }

    /// The whole masked log, one string.
    pub fn log_text(&self) -> String {
        self.log.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn succeeded_unless_told_otherwise() {
        assert_eq!(Outcome::from_lines(&lines("hello"), Some(0), &[]).result, StepResult::Succeeded);
        assert_eq!(Outcome::from_lines(&lines("hello"), Some(2), &[]).result, StepResult::Failed);
        let o = Outcome::from_lines(&lines("##vso[task.complete result=Failed;]boom"), Some(0), &[]);
        assert_eq!((o.result, o.result_message.as_deref()), (StepResult::Failed, Some("boom")));
        let o = Outcome::from_lines(&lines("##vso[task.complete result=failed]"), Some(0), &[]);
        assert_eq!(o.result, StepResult::Failed, "result is case-sensitive; unknown fails the step");
    }

    #[test]
    fn secrets_are_masked_and_outputs_found() {
        let o = Outcome::from_lines(
            &lines(
                "##vso[task.setsecret]s3cr3t\nthe s3cr3t leaked\n##vso[task.setvariable variable=imageDigest]sha256:1",
            ),
            Some(0),
            &["imageDigest".to_string()],
        );
        assert_eq!(o.log, vec!["the *** leaked"]);
        assert_eq!(o.output("imageDigest"), Some("sha256:1"));
    }

    #[test]
    fn a_secret_printed_before_it_is_registered_stays_visible() {
        // The agent masks at write time: the old harness masked the whole log
        // with the final list and would have hidden this leak.
        let o = Outcome::from_lines(&lines("early s3cr3t\n##vso[task.setsecret]s3cr3t\nlate s3cr3t"), Some(0), &[]);
        assert_eq!(o.log, vec!["early s3cr3t", "late ***"]);
    }

    #[test]
    fn issues_are_masked_too() {
        let o = Outcome::from_lines(
            &lines("##vso[task.setsecret]s3cr3t\n##vso[task.logissue type=error]bad s3cr3t"),
            Some(1),
            &[],
        );
        assert_eq!(o.log[0], "##[error]bad ***");
    }
}
