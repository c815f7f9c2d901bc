//! The agent contract: the only reader of the task's environment (`INPUT_*`,
//! `ENDPOINT_*`, system variables) and the only writer of `##vso` commands.
//!
//! See `../shared/reference/agent-contract.md` for the facts this follows.

pub mod agent;
pub mod command;
pub mod endpoint;
pub mod env;
pub mod inputs;
pub mod log;
#[cfg(feature = "multicluster-helm")]
pub mod oidc;
pub mod proxy;
pub mod report;
pub mod temp;
pub mod untrusted;
pub mod visible_rule;

pub use agent::Agent;
pub use env::Env;

/// A value that must never be printed: its `Debug` and `Display` show `***`.
///
/// Reading one registers it with the agent (`task.setsecret`) so the agent
/// masks it even if it slips into third-party output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must hand it on.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}
