//! KanikoBuild@1: pack the context, ship it, run a kaniko pod, report the digest.
//!
//! For now the task reads and checks its inputs and shows what it would do;
//! the build itself comes with the KanikoBuild issue.

use super::inputs::kaniko_build::{Inputs, SPEC};
use super::{not_implemented, read_inputs, show_plan, shown};
use crate::azp::report::Outcome;
use crate::azp::{Agent, Env};

pub fn run(env: &Env, agent: &Agent) -> anyhow::Result<Outcome> {
    let inputs = read_inputs(env, agent, &SPEC, Inputs::read)?;
    describe(agent, &inputs);
    not_implemented(&SPEC)
}

/// Shows every input. The destructuring is exhaustive on purpose: a renamed
/// or removed input in task.json breaks the build here.
fn describe(agent: &Agent, inputs: &Inputs) {
    let Inputs {
        connection_type,
        kubernetes_service_connection,
        kubeconfig,
        namespace,
        service_account,
        build_context,
        dockerfile,
        use_dockerignore,
        context_transport,
        bucket,
        key_prefix,
        region,
        s3_endpoint,
        delete_context_after_build,
        destinations,
        build_args,
        target,
        labels,
        cache,
        cache_repo,
        cache_ttl,
        registry_config_map,
        push_image,
        kaniko_image,
        cpu_request,
        memory_request,
        memory_limit,
        node_selector,
        tolerations,
        pod_labels,
        pod_annotations,
        timeout_minutes,
        keep_pod_on_failure,
        extra_args,
        verbosity,
    } = inputs;
    let connection = match kubernetes_service_connection {
        Some(_) => format!("{} (service connection)", connection_type.as_str()),
        None => connection_type.as_str().to_string(),
    };
    show_plan(
        agent,
        "KanikoBuild: inputs",
        &[
            ("Cluster", connection),
            ("Kubeconfig", kubeconfig.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
            ("Namespace", namespace.clone()),
            ("Service account", shown(service_account)),
            (
                "Build context",
                build_context.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(repository)".into()),
            ),
            ("Dockerfile", dockerfile.clone()),
            ("Honour .dockerignore", use_dockerignore.to_string()),
            ("Context transport", context_transport.as_str().to_string()),
            ("Bucket", shown(bucket)),
            ("Key prefix", shown(key_prefix)),
            ("Region", shown(region)),
            ("S3 endpoint", shown(s3_endpoint)),
            ("Delete context after build", delete_context_after_build.to_string()),
            ("Destinations", destinations.join(", ")),
            (
                "Build arguments",
                build_args.iter().map(|a| a.split('=').next().unwrap_or_default()).collect::<Vec<_>>().join(", "),
            ),
            ("Target", shown(target)),
            ("Labels", labels.join(", ")),
            ("Cache", cache.to_string()),
            ("Cache repository", shown(cache_repo)),
            ("Cache TTL", shown(cache_ttl)),
            ("Registry config map", shown(registry_config_map)),
            ("Push", push_image.to_string()),
            ("Kaniko image", kaniko_image.clone()),
            ("CPU request", shown(cpu_request)),
            ("Memory request", shown(memory_request)),
            ("Memory limit", shown(memory_limit)),
            ("Node selector", node_selector.join(", ")),
            ("Tolerations", tolerations.join(", ")),
            ("Pod labels", pod_labels.join(", ")),
            ("Pod annotations", pod_annotations.join(", ")),
            ("Timeout (minutes)", timeout_minutes.clone()),
            ("Keep pod on failure", keep_pod_on_failure.to_string()),
            ("Extra arguments", extra_args.join(" ")),
            ("Verbosity", verbosity.as_str().to_string()),
        ],
    );
}
