//! The tasks, and the terminal commands beside them (`context`, `eks-token`).
//! Each module only orchestrates the concern modules, in the order a user
//! would describe the steps.

pub mod cancel;
#[cfg(feature = "kaniko-build")]
pub mod context_command;
#[cfg(feature = "multicluster-helm")]
pub mod eks_token;
pub mod inputs;
#[cfg(feature = "kaniko-build")]
mod kaniko_build;
#[cfg(feature = "multicluster-helm")]
mod multicluster_helm;
mod syntax;

use crate::azp::inputs::{InputReader, TaskSpec};
use crate::azp::proxy::ProxySettings;
use crate::azp::report::Outcome;
use crate::azp::{Agent, Env};

/// Runs one task to its end.
pub fn run(spec: &'static TaskSpec, env: &Env, agent: &Agent) -> anyhow::Result<Outcome> {
    // The agent's proxy password, before anything else is printed.
    if let Some(password) = env.var(crate::azp::proxy::PASSWORD_VAR) {
        agent.set_secret(password);
    }
    let result = match spec.name {
        #[cfg(feature = "kaniko-build")]
        name if name == inputs::kaniko_build::SPEC.name => kaniko_build::run(env, agent),
        #[cfg(feature = "multicluster-helm")]
        name if name == inputs::multicluster_helm::SPEC.name => multicluster_helm::run(env, agent),
        name => anyhow::bail!("azp-kube has no task named {name}"),
    };
    result.map_err(explain_proxy_refusal)
}

/// A connection the agent's proxy refused for its credentials says so
/// first: the clients only say "proxy authorization required" deep in the chain.
fn explain_proxy_refusal(error: anyhow::Error) -> anyhow::Error {
    // hyper-util's TunnelError::ProxyAuthRequired, under the AWS SDK, kube and the OIDC request.
    let refused = error.chain().any(|cause| cause.to_string().contains("proxy authorization required"));
    if !refused {
        return error;
    }
    error.context(
        "the agent's proxy refused the connection for want of valid credentials (HTTP 407 Proxy Authentication \
         Required): check the agent's proxy username and password (Agent.ProxyUsername and Agent.ProxyPassword, set by config.sh \
         --proxyusername and --proxypassword)",
    )
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

/// The agent's proxy (`Agent.ProxyUrl` and friends; [`run`] registered its
/// password as a secret first), said in the log.
fn agent_proxy(env: &Env, agent: &Agent) -> anyhow::Result<Option<ProxySettings>> {
    let proxy = ProxySettings::read(env)?;
    if let Some(proxy) = &proxy {
        let bypass: Vec<&str> = proxy.bypass_list().collect();
        let bypass = if bypass.is_empty() { "nothing".to_string() } else { bypass.join(", ") };
        let auth = if proxy.basic_auth().is_some() { ", with the agent's proxy credentials" } else { "" };
        let address = proxy.address().to_string();
        agent.line(&format!("Agent proxy: {}{auth}; around it: {bypass}", address.trim_end_matches('/')));
    }
    Ok(proxy)
}

/// Shows a list of `name: value` lines in a collapsible group.
#[cfg(feature = "multicluster-helm")]
fn show_plan(agent: &Agent, title: &str, lines: &[(&str, String)]) {
    agent.group(title);
    for (name, value) in lines.iter().filter(|(_, v)| !v.is_empty()) {
        agent.line(&format!("{name}: {value}"));
    }
    agent.end_group();
}

/// An optional value for display.
#[cfg(feature = "multicluster-helm")]
fn shown<T: std::fmt::Display>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}
