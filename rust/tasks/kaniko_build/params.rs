//! KanikoBuild's inputs, checked and resolved into a plan before anything
//! touches the network. Every error names the input it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::azp::Env;
use crate::azp::inputs::InputError;
use crate::azp::proxy::ProxySettings;
use crate::context::{self, PackOptions};
use crate::kaniko::args::{self, Build, ContextSource};
use crate::kaniko::pod::PodOptions;
use crate::kaniko::reference;
use crate::kube::Connection;
use crate::kube::names::{self, Resource};
use crate::tasks::inputs::kaniko_build::{ConnectionType, ContextTransport, Inputs, SPEC};
use crate::tasks::syntax::{check_go_duration, check_url};

/// How the context reaches the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Uploaded to S3; the pod reads `s3://` itself, or a presigned URL.
    S3 {
        bucket: String,
        key_prefix: String,
        region: Option<String>,
        endpoint: Option<String>,
        presigned: bool,
        delete_after_build: bool,
    },
    /// Into the pod's stdin through attach.
    Stream,
}

/// A build, resolved from valid inputs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub cluster: Connection,
    pub pack: PackOptions,
    pub transport: Transport,
    /// The build; its context source is filled in once the context is shipped.
    pub build: Build,
    pub pod: PodOptions,
    pub timeout: Duration,
    pub keep_pod_on_failure: bool,
    /// How long the pod may stay unschedulable (a cluster autoscaler may add a
    /// node) before the build gives up; tests shorten it with the test switch
    /// [`UNSCHEDULABLE_GRACE_SWITCH`].
    pub unschedulable_grace: Duration,
    /// The agent's proxy, for the task's own connections (S3, the cluster);
    /// the build pod does not get it.
    pub proxy: Option<ProxySettings>,
}

/// The default of [`Plan::unschedulable_grace`].
pub const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(120);
/// Test switch (debug builds only, see [`Env::test_switch`]) for [`Plan::unschedulable_grace`].
pub const UNSCHEDULABLE_GRACE_SWITCH: &str = "AZP_KUBE_UNSCHEDULABLE_GRACE_SECONDS";

fn invalid(name: &str, reason: impl Into<String>) -> InputError {
    InputError::invalid(SPEC.input(name), reason)
}

/// Checks every input and resolves the plan: each check belongs to the
/// concern that owns the concept; here they are only called in order, and
/// their errors named after the input.
pub fn resolve(inputs: &Inputs, env: &Env) -> Result<Plan, InputError> {
    let cluster = connection(inputs)?;
    let namespace = build_namespace(inputs.namespace.as_deref(), env)?;
    if let Some(account) = &inputs.service_account {
        names::check_dns1123_subdomain(account).map_err(|e| invalid("serviceAccount", e))?;
    }
    let repository = env.var("BUILD_SOURCESDIRECTORY").map(Path::new);
    let context_dir =
        context::context_dir(inputs.build_context.as_deref(), repository).map_err(|e| invalid("buildContext", e))?;
    let dockerfile = PathBuf::from(&inputs.dockerfile);
    context::check_dockerfile_path(&context_dir, &dockerfile).map_err(|e| invalid("dockerfile", e))?;
    let transport = transport(inputs, env)?;
    let build = build(inputs, env)?;
    let timeout_minutes: u32 =
        inputs.timeout_minutes.parse().ok().filter(|m| (1..=1440).contains(m)).ok_or_else(|| {
            let minutes = &inputs.timeout_minutes;
            invalid("timeoutMinutes", format!("{minutes:?} must be a whole number of minutes from 1 to 1440"))
        })?;
    let pod = pod(inputs, env, namespace, &transport, timeout_minutes)?;
    Ok(Plan {
        cluster,
        pack: PackOptions { context_dir, dockerfile, use_dockerignore: inputs.use_dockerignore },
        transport,
        build,
        pod,
        timeout: Duration::from_secs(u64::from(timeout_minutes) * 60),
        keep_pod_on_failure: inputs.keep_pod_on_failure,
        unschedulable_grace: env.test_seconds(UNSCHEDULABLE_GRACE_SWITCH).unwrap_or(UNSCHEDULABLE_GRACE),
        proxy: None,
    })
}

fn connection(inputs: &Inputs) -> Result<Connection, InputError> {
    Ok(match inputs.connection_type {
        ConnectionType::InCluster => Connection::InCluster,
        ConnectionType::KubernetesServiceConnection => Connection::ServiceConnection(
            inputs
                .kubernetes_service_connection
                .clone()
                .ok_or_else(|| invalid("kubernetesServiceConnection", "is required"))?,
        ),
        ConnectionType::KubeconfigFile => {
            let path = inputs.kubeconfig.clone().ok_or_else(|| invalid("kubeconfig", "is required"))?;
            if !path.is_file() {
                return Err(invalid("kubeconfig", format!("{} is not a file", path.display())));
            }
            Connection::KubeconfigFile(path)
        }
    })
}

fn transport(inputs: &Inputs, env: &Env) -> Result<Transport, InputError> {
    let presigned = match inputs.context_transport {
        ContextTransport::Stream => return Ok(Transport::Stream),
        ContextTransport::S3 => false,
        ContextTransport::S3PresignedUrl => true,
    };
    let bucket = inputs.bucket.clone().ok_or_else(|| invalid("bucket", "is required"))?;
    crate::aws::s3::check_bucket(&bucket).map_err(|e| invalid("bucket", e))?;
    if let Some(region) = &inputs.region {
        crate::aws::arn::check_region(region).map_err(|e| invalid("region", e.to_string()))?;
    }
    if let Some(endpoint) = &inputs.s3_endpoint {
        check_url(endpoint).map_err(|e| invalid("s3Endpoint", e))?;
    }
    if presigned {
        check_presigned_endpoint(inputs.s3_endpoint.as_deref(), env)?;
    }
    let key_prefix = inputs.key_prefix.clone().unwrap_or_default();
    args::check_key_prefix(&key_prefix).map_err(|e| invalid("keyPrefix", e))?;
    Ok(Transport::S3 {
        bucket,
        key_prefix,
        region: inputs.region.clone(),
        endpoint: inputs.s3_endpoint.clone(),
        presigned,
        delete_after_build: inputs.delete_context_after_build,
    })
}

/// The kaniko build: what to build and where to push it.
fn build(inputs: &Inputs, env: &Env) -> Result<Build, InputError> {
    let destinations = inputs
        .destinations
        .iter()
        .map(|d| reference::parse_destination(d).map_err(|e| invalid("destinations", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let secret_values: Vec<&str> = env.secret_values().collect();
    let build_args = (inputs.build_args.iter().enumerate())
        .map(|(i, line)| args::parse_build_arg(i + 1, line, &secret_values).map_err(|e| invalid("buildArgs", e)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(target) = &inputs.target {
        args::check_stage(target).map_err(|e| invalid("target", e))?;
    }
    for label in &inputs.labels {
        args::check_image_label(label).map_err(|e| invalid("labels", e))?;
    }
    if let Some(repo) = &inputs.cache_repo {
        reference::parse_cache_repository(repo).map_err(|e| invalid("cacheRepo", e))?;
    }
    let (cache, cache_repo) = args::resolve_cache(inputs.cache, &inputs.cache_repo, inputs.push_image, &destinations);
    if let Some(ttl) = &inputs.cache_ttl {
        check_go_duration(ttl).map_err(|e| invalid("cacheTTL", e))?;
    }
    args::check_extra_args(&inputs.extra_args).map_err(|e| invalid("extraArgs", e))?;
    Ok(Build {
        context: ContextSource::Stdin,
        dockerfile: inputs.dockerfile.clone(),
        destinations,
        build_args,
        target: inputs.target.clone(),
        labels: inputs.labels.clone(),
        cache,
        cache_repo,
        cache_ttl: inputs.cache_ttl.clone(),
        push: inputs.push_image,
        verbosity: inputs.verbosity.as_str().to_string(),
        extra_args: inputs.extra_args.clone(),
    })
}

/// The kaniko pod: where it runs, with what, and for how long.
fn pod(
    inputs: &Inputs,
    env: &Env,
    namespace: String,
    transport: &Transport,
    timeout_minutes: u32,
) -> Result<PodOptions, InputError> {
    if let Some(map) = &inputs.registry_config_map {
        names::check_dns1123_subdomain(map).map_err(|e| invalid("registryConfigMap", e))?;
    }
    reference::parse(&inputs.kaniko_image).map_err(|e| invalid("kanikoImage", e))?;
    let (cpu_request, memory_request, memory_limit) =
        (&inputs.cpu_request, &inputs.memory_request, &inputs.memory_limit);
    names::check_resources(cpu_request.as_deref(), memory_request.as_deref(), memory_limit.as_deref()).map_err(
        |(resource, e)| {
            let input = match resource {
                Resource::CpuRequest => "cpuRequest",
                Resource::MemoryRequest => "memoryRequest",
                Resource::MemoryLimit => "memoryLimit",
            };
            invalid(input, e)
        },
    )?;
    let node_selector = names::key_values(&inputs.node_selector, true).map_err(|e| invalid("nodeSelector", e))?;
    let tolerations = (inputs.tolerations.iter())
        .map(|t| names::parse_toleration(t).map_err(|e| invalid("tolerations", e)))
        .collect::<Result<_, _>>()?;
    let mut labels = build_labels(env);
    labels.extend(names::key_values(&inputs.pod_labels, true).map_err(|e| invalid("podLabels", e))?);
    let annotations = names::key_values(&inputs.pod_annotations, false).map_err(|e| invalid("podAnnotations", e))?;
    let (aws_region, s3_endpoint) = match transport {
        Transport::S3 { region, endpoint, presigned: false, .. } => {
            (crate::aws::region(env, region.as_deref()), endpoint.clone())
        }
        _ => (None, None),
    };
    let build_id = names::label_value(env.var("BUILD_BUILDID").unwrap_or("local"));
    Ok(PodOptions {
        namespace,
        generate_name: format!("kaniko-{}-", build_id.to_lowercase().replace(['_', '.'], "-")),
        service_account: inputs.service_account.clone(),
        image: inputs.kaniko_image.clone(),
        labels,
        annotations,
        cpu_request: cpu_request.clone(),
        memory_request: memory_request.clone(),
        memory_limit: memory_limit.clone(),
        node_selector,
        tolerations,
        active_deadline_seconds: i64::from(timeout_minutes) * 60,
        registry_config_map: inputs.registry_config_map.clone(),
        aws_region,
        s3_endpoint,
    })
}

/// The `namespace` input, else the build namespace the azure-agent chart gives
/// its agents (never their own namespace, where steps must not manage pods).
fn build_namespace(input: Option<&str>, env: &Env) -> Result<String, InputError> {
    let (namespace, source) = match (input, env.var("AZP_BUILD_NAMESPACE")) {
        (Some(namespace), _) => (namespace, ""),
        (None, Some(namespace)) => (namespace, " (from AZP_BUILD_NAMESPACE)"),
        (None, None) => {
            return Err(invalid("namespace", "is required: this agent names no build namespace (AZP_BUILD_NAMESPACE)"));
        }
    };
    names::check_dns1123_label(namespace, 63).map_err(|e| invalid("namespace", format!("{e}{source}")))?;
    Ok(namespace.to_string())
}

/// kaniko fetches a URL context only over https:// (its build contexts are gs://, s3://,
/// dir://, git://, https:// and tar://), so a presigned URL must come from an https://
/// endpoint: the `s3Endpoint` input, else the agent's own endpoint setting.
fn check_presigned_endpoint(given: Option<&str>, env: &Env) -> Result<(), InputError> {
    let Some((endpoint, source)) = crate::aws::s3::endpoint(given, env) else { return Ok(()) };
    if endpoint.starts_with("https://") {
        return Ok(());
    }
    let source = source.map(|name| format!(" (from {name})")).unwrap_or_default();
    Err(invalid(
        "s3Endpoint",
        format!(
            "{endpoint}{source} is not an https:// URL, and kaniko fetches a presigned URL only over https:// \
             (it refuses http:// build contexts); give an https:// s3Endpoint, or use contextTransport S3 or Stream"
        ),
    ))
}

/// Labels that tie the pod to the pipeline run, so a person can find it.
fn build_labels(env: &Env) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "kaniko".to_string()),
        ("app.kubernetes.io/managed-by".to_string(), "azp-kube".to_string()),
    ]);
    for (label, variable) in [
        ("azp-kube/pipeline", "SYSTEM_DEFINITIONID"),
        ("azp-kube/build-id", "BUILD_BUILDID"),
        ("azp-kube/job", "SYSTEM_JOBID"),
        ("azp-kube/attempt", "SYSTEM_JOBATTEMPT"),
    ] {
        if let Some(value) = env.var(variable) {
            labels.insert(label.to_string(), names::label_value(value));
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pods_region_falls_back_to_aws_default_region_as_the_sdk_does() {
        let env = Env::from_vars([
            ("INPUT_CONTEXTTRANSPORT", "S3"),
            ("INPUT_BUCKET", "contexts"),
            ("INPUT_DESTINATIONS", "registry.local/app:1"),
            ("INPUT_NAMESPACE", "builds"),
            ("AWS_DEFAULT_REGION", "us-east-2"),
        ]);
        let inputs = Inputs::read(&crate::azp::inputs::InputReader::new(&env, &SPEC)).unwrap();
        let plan = resolve(&inputs, &env).unwrap();
        assert_eq!(plan.pod.aws_region.as_deref(), Some("us-east-2"));
    }
}
