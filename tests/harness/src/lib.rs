//! The agent's view of a task, for tests (and later the local demo).
//!
//! [`TaskRun`] starts `node <task>/run.js` as the agent's Node handler does:
//! an environment built from an inputs map (agent name mangling, task.json
//! defaults for inputs not given, values trimmed, `TF_BUILD=True`, the system
//! variables), stdin closed, stdout and stderr read line by line. [`parse`]
//! reads those lines with the agent's grammar and [`Outcome`] holds what the
//! agent would make of them: the step result, the issues it keeps, output
//! variables, secrets, attachments and the log with secrets masked.

mod capture;
mod mask;
mod outcome;
mod parse;
mod peak_rss;
mod run;
mod stage;

pub use capture::Capture;
pub use mask::SecretMasker;
pub use outcome::{Issue, Outcome, StepResult, Variable};
pub use parse::{AgentCommand, mangle, parse_line, unescape};
pub use peak_rss::PeakRss;
pub use run::{RunningTask, TaskRun};
pub use stage::{StagedTask, built_vsix, packaged_task, repo_root, unpack_vsix};
