//! A tracing layer that speaks to the agent.
//!
//! - `error!` and `warn!` become `task.logissue` entries. The agent attaches
//!   only 10 errors and 10 warnings to a step, so later ones are written as
//!   plain `##[error]`/`##[warning]` lines (styled, no issue);
//! - `info!` becomes a plain line;
//! - `debug!` and `trace!` become `##[debug]` lines, only when `System.Debug`
//!   is true.
//!
//! That is for this crate's events. Libraries speak for themselves only in
//! `##[debug]` lines, whatever their level: kube's HTTP layer logs every
//! failed request as an error, also the ones that are retried and succeed,
//! and those must not show as the step's errors.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::agent::Agent;
use super::command::{Issue, IssueType};

/// How many issues of each type the agent attaches to a step.
pub const ISSUE_CAP: usize = 10;

/// The layer; see the module docs.
pub struct AgentLayer {
    agent: Agent,
    debug: bool,
    errors: AtomicUsize,
    warnings: AtomicUsize,
}

impl AgentLayer {
    pub fn new(agent: Agent, debug: bool) -> Self {
        Self { agent, debug, errors: AtomicUsize::new(0), warnings: AtomicUsize::new(0) }
    }

    fn issue(&self, kind: IssueType, message: String) {
        let counter = match kind {
            IssueType::Error => &self.errors,
            IssueType::Warning => &self.warnings,
        };
        if counter.fetch_add(1, Ordering::Relaxed) < ISSUE_CAP {
            self.agent.log_issue(&Issue::new(kind, message));
        } else if kind == IssueType::Error {
            self.agent.error_line(&message);
        } else {
            self.agent.warning_line(&message);
        }
    }
}

impl<S: Subscriber> Layer<S> for AgentLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        self.debug || (is_ours(metadata) && *metadata.level() <= Level::INFO)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut message = MessageVisitor::default();
        event.record(&mut message);
        let text = message.finish();
        if !is_ours(event.metadata()) {
            if self.debug {
                self.agent.debug(&format!("{}: {text}", event.metadata().target()));
            }
            return;
        }
        match *event.metadata().level() {
            Level::ERROR => self.issue(IssueType::Error, text),
            Level::WARN => self.issue(IssueType::Warning, text),
            Level::INFO => self.agent.line(&text),
            _ if self.debug => self.agent.debug(&text),
            _ => {}
        }
    }
}

/// Whether an event comes from this crate rather than a library.
fn is_ours(metadata: &tracing::Metadata<'_>) -> bool {
    let target = metadata.target();
    target == env!("CARGO_CRATE_NAME") || target.starts_with(concat!(env!("CARGO_CRATE_NAME"), "::"))
}

/// Collects the `message` field first, then the others as `key=value`.
#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    fn finish(self) -> String {
        if self.fields.is_empty() { self.message } else { format!("{}{}", self.message, self.fields) }
    }
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// Installs the layer as the global subscriber.
pub fn init(agent: &Agent, debug: bool) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry().with(AgentLayer::new(agent.clone(), debug));
    // A second call (tests) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[cfg(test)]
mod tests {
    use super::*;
    use azp_harness::Capture;
    use tracing_subscriber::layer::SubscriberExt as _;

    fn capture(debug: bool, body: impl FnOnce()) -> String {
        let capture = Capture::default();
        let layer = AgentLayer::new(Agent::to_writer(capture.clone()), debug);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), body);
        capture.text()
    }

    #[test]
    fn levels_map_to_agent_output() {
        let out = capture(false, || {
            tracing::error!("broken; really]");
            tracing::warn!(pod = "p-1", "slow");
            tracing::info!("plain ##vso[task.complete result=Failed]");
            tracing::debug!("hidden");
        });
        assert_eq!(
            out,
            "##vso[task.logissue type=error]broken; really]\n\
             ##vso[task.logissue type=warning]slow pod=p-1\n\
             plain **vso[task.complete result=Failed]\n"
        );
    }

    #[test]
    fn a_library_s_errors_are_no_issues_of_the_step() {
        let library =
            || tracing::error!(target: "kube_client::client::builder", "failed with error client error (Connect)");
        assert_eq!(capture(false, library), "");
        assert_eq!(
            capture(true, library),
            "##[debug]kube_client::client::builder: failed with error client error (Connect)\n"
        );
    }

    #[test]
    fn debug_lines_only_with_system_debug() {
        let out = capture(true, || tracing::debug!("details"));
        assert_eq!(out, "##[debug]details\n");
    }

    #[test]
    fn issues_are_capped_at_ten_of_each() {
        let out = capture(false, || {
            for i in 0..12 {
                tracing::error!("e{i}");
                tracing::warn!("w{i}");
            }
        });
        assert_eq!(out.matches("##vso[task.logissue type=error]").count(), 10);
        assert_eq!(out.matches("##vso[task.logissue type=warning]").count(), 10);
        assert!(out.contains("##[error]e10\n##[warning]w10\n##[error]e11\n##[warning]w11\n"), "{out}");
    }
}
