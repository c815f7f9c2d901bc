//! The tasks, and the terminal commands beside them (`context`, `eks-token`).
//! Each module only orchestrates the concern modules, in the order a user
//! would describe the steps.

pub mod cancel;
pub mod context_command;
pub mod eks_token;
pub mod inputs;
mod kaniko_build;
mod multicluster_helm;
mod syntax;

use crate::azp::inputs::{InputReader, TaskSpec};
use crate::azp::report::Outcome;
use crate::azp::{Agent, Env};

/// Runs one task to its end.
pub fn run(spec: &'static TaskSpec, env: &Env, agent: &Agent) -> anyhow::Result<Outcome> {
    match spec.name {
        name if name == inputs::kaniko_build::SPEC.name => kaniko_build::run(env, agent),
        name if name == inputs::multicluster_helm::SPEC.name => multicluster_helm::run(env, agent),
        name => anyhow::bail!("azp-kube has no task named {name}"),
    }
}

/// Reads a task's inputs and registers every secret among them with the
/// agent before anything else is printed, even when a later input is bad.
fn read_inputs<T>(
    env: &Env,
    agent: &Agent,
    spec: &'static TaskSpec,
    read: impl FnOnce(&InputReader<'_>) -> Result<T, crate::azp::inputs::InputError>,
) -> Result<T, crate::azp::inputs::InputError> {
    let reader = InputReader::new(env, spec);
    let inputs = read(&reader);
    for secret in reader.take_secrets() {
        agent.set_secret(secret.expose());
    }
    inputs
}

/// Shows a list of `name: value` lines in a collapsible group.
fn show_plan(agent: &Agent, title: &str, lines: &[(&str, String)]) {
    agent.group(title);
    for (name, value) in lines.iter().filter(|(_, v)| !v.is_empty()) {
        agent.line(&format!("{name}: {value}"));
    }
    agent.end_group();
}

/// An optional value for display.
fn shown<T: std::fmt::Display>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}
