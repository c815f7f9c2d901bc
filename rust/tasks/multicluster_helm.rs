//! MulticlusterHelm@1: assume a role, reach an EKS cluster, run helm upgrade.
//!
//! For now the task reads and checks its inputs and shows what it would do;
//! the deploy itself comes with the MulticlusterHelm issue.

use super::inputs::multicluster_helm::{Inputs, SPEC};
use super::{not_implemented, read_inputs, show_plan, shown};
use crate::azp::report::Outcome;
use crate::azp::{Agent, Env};

pub fn run(env: &Env, agent: &Agent) -> anyhow::Result<Outcome> {
    let inputs = read_inputs(env, agent, &SPEC, Inputs::read)?;
    describe(agent, &inputs);
    not_implemented(&SPEC)
}

/// Shows every input (never a secret). The destructuring is exhaustive on
/// purpose: a renamed or removed input in task.json breaks the build here.
fn describe(agent: &Agent, inputs: &Inputs) {
    let Inputs {
        connection_type,
        cluster_name,
        kubernetes_service_connection,
        kubeconfig,
        aws_credentials,
        region_name,
        assume_role_arn,
        external_id,
        role_session_name,
        session_duration_seconds,
        namespace,
        create_namespace,
        chart_type,
        chart_name,
        chart_path,
        chart_version,
        release_name,
        value_file,
        override_values,
        override_values_string,
        helm_repo_name,
        helm_repo_url,
        helm_repo_username,
        helm_repo_password,
        install,
        wait_for_execution,
        timeout,
        atomic,
        arguments,
        helm_path,
    } = inputs;
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let set_keys = |lines: &Vec<String>| {
        lines.iter().map(|l| l.split('=').next().unwrap_or_default()).collect::<Vec<_>>().join(", ")
    };
    show_plan(
        agent,
        "MulticlusterHelm: inputs",
        &[
            ("Cluster", connection_type.as_str().to_string()),
            ("EKS cluster", shown(cluster_name)),
            (
                "Kubernetes service connection",
                kubernetes_service_connection.as_ref().map(|_| "yes".to_string()).unwrap_or_default(),
            ),
            ("Kubeconfig", path(kubeconfig)),
            ("AWS credentials", aws_credentials.as_ref().map(|_| "service connection".to_string()).unwrap_or_default()),
            ("Region", shown(region_name)),
            ("Role to assume", shown(assume_role_arn)),
            ("External ID", external_id.as_ref().map(|_| "(set)".to_string()).unwrap_or_default()),
            ("Role session name", shown(role_session_name)),
            ("Session duration (s)", shown(session_duration_seconds)),
            ("Namespace", namespace.clone()),
            ("Create namespace", create_namespace.to_string()),
            ("Chart type", chart_type.as_str().to_string()),
            ("Chart", shown(chart_name)),
            ("Chart path", path(chart_path)),
            ("Chart version", shown(chart_version)),
            ("Release", release_name.clone()),
            ("Values files", value_file.join(", ")),
            ("Set", set_keys(override_values)),
            ("Set string", set_keys(override_values_string)),
            ("Repository", shown(helm_repo_name)),
            ("Repository URL", shown(helm_repo_url)),
            ("Repository user", shown(helm_repo_username)),
            ("Repository password", helm_repo_password.as_ref().map(|_| "(set)".to_string()).unwrap_or_default()),
            ("Install", install.to_string()),
            ("Wait", wait_for_execution.to_string()),
            ("Timeout", shown(timeout)),
            ("Roll back on failure", atomic.to_string()),
            ("Extra arguments", shown(arguments)),
            ("Helm", shown(helm_path)),
        ],
    );
}
