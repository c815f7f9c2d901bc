//! How a run ends: one result for the agent, one exit code for the process.
//!
//! A failure becomes exactly one `task.logissue type=error` naming what went
//! wrong (the whole error chain on one line), then `task.complete
//! result=Failed`. Under the agent the process then exits 0, so the step shows
//! that one error and not a second "exit code 1"; from a terminal it exits 1.

use std::process::ExitCode;

use super::agent::Agent;
use super::command::{Issue, IssueType, TaskResult};
use super::env::Env;

/// How a task ended, when not with one error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Done, with problems the user should look at.
    SucceededWithIssues(String),
    /// Failed, with each error already reported as an issue of its own (one
    /// per failed target); the message only sums them up.
    Failed(String),
}

/// The one-line message of an error chain: causes joined with `: `, each
/// said once. Many errors (ours and libraries') put their source into their
/// own message and also return it as `source()`; a cause whose text is
/// already said is left out, and one that repeats the text before it
/// replaces it.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let text = text.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        if text.is_empty() || said.iter().any(|s| s.contains(&text)) {
            continue;
        }
        match said.last_mut() {
            Some(last) if text.contains(last.as_str()) => *last = text,
            _ => said.push(text),
        }
    }
    said.join(": ")
}

/// Reports the end of a run and picks the exit code.
pub fn finish(agent: &Agent, env: &Env, result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Succeeded) => {
            agent.complete(TaskResult::Succeeded, "");
            ExitCode::SUCCESS
        }
        Ok(Outcome::SucceededWithIssues(message)) => {
            agent.complete(TaskResult::SucceededWithIssues, &message);
            ExitCode::SUCCESS
        }
        Ok(Outcome::Failed(message)) => {
            agent.complete(TaskResult::Failed, &message);
            if env.under_agent() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(error) => {
            let message = one_line(&error);
            if env.system_debug() {
                agent.debug(&format!("{error:?}"));
            }
            agent.log_issue(&Issue::new(IssueType::Error, message.clone()));
            agent.complete(TaskResult::Failed, &message);
            if env.under_agent() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn chains_become_one_line() {
        let error = Err::<(), _>(anyhow::anyhow!("connection refused\nat line 2"))
            .context("cannot reach the cluster")
            .unwrap_err();
        assert_eq!(one_line(&error), "cannot reach the cluster: connection refused at line 2");
    }

    #[test]
    fn each_cause_is_said_once() {
        // kube's shape: a message that embeds its source, which it also returns.
        #[derive(Debug, thiserror::Error)]
        #[error("environment variable not found")]
        struct NotFound;
        #[derive(Debug, thiserror::Error)]
        #[error("failed to read an incluster environment variable: {0}")]
        struct ReadVar(#[source] NotFound);
        #[derive(Debug, thiserror::Error)]
        #[error("not running in a Kubernetes pod: {0}")]
        struct InCluster(#[source] ReadVar);
        let error = anyhow::Error::new(InCluster(ReadVar(NotFound)));
        assert_eq!(
            one_line(&error),
            "not running in a Kubernetes pod: failed to read an incluster environment variable: environment variable not found"
        );
        let error = anyhow::anyhow!("cannot reach the cluster: 403").context("cannot reach the cluster");
        assert_eq!(one_line(&error), "cannot reach the cluster: 403");
    }
}
