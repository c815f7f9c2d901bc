//! KanikoBuild's inputs, checked and resolved into a plan before anything
//! touches the network. Every error names the input it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Toleration;

use crate::azp::Env;
use crate::azp::inputs::InputError;
use crate::context::PackOptions;
use crate::kaniko::args::{Build, ContextSource, RESERVED_FLAGS};
use crate::kaniko::pod::PodOptions;
use crate::kaniko::reference::{self, ImageReference};
use crate::kube::client::Connection;
use crate::kube::names;
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
    /// node) before the build gives up; `AZP_KUBE_UNSCHEDULABLE_GRACE_SECONDS`.
    pub unschedulable_grace: Duration,
}

/// The default of [`Plan::unschedulable_grace`].
const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(120);

fn invalid(name: &str, reason: impl Into<String>) -> InputError {
    InputError::invalid(SPEC.input(name), reason)
}

/// Checks every input and resolves the plan.
pub fn resolve(inputs: &Inputs, env: &Env) -> Result<Plan, InputError> {
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

    let cluster = match connection_type {
        ConnectionType::InCluster => Connection::InCluster,
        ConnectionType::KubernetesServiceConnection => Connection::ServiceConnection(
            kubernetes_service_connection
                .clone()
                .ok_or_else(|| invalid("kubernetesServiceConnection", "is required"))?,
        ),
        ConnectionType::KubeconfigFile => {
            let path = kubeconfig.clone().ok_or_else(|| invalid("kubeconfig", "is required"))?;
            if !path.is_file() {
                return Err(invalid("kubeconfig", format!("{} is not a file", path.display())));
            }
            Connection::KubeconfigFile(path)
        }
    };
    names::check_dns1123_label(namespace, 63).map_err(|e| invalid("namespace", e))?;
    if let Some(account) = service_account {
        names::check_dns1123_subdomain(account).map_err(|e| invalid("serviceAccount", e))?;
    }

    let context_dir = resolve_context(build_context.as_deref(), env)?;
    let dockerfile_path = PathBuf::from(dockerfile);
    if dockerfile_path.is_absolute() && !dockerfile_path.starts_with(&context_dir) {
        return Err(invalid("dockerfile", format!("{dockerfile} is outside the build context")));
    }

    let transport = match context_transport {
        ContextTransport::Stream => Transport::Stream,
        ContextTransport::S3 | ContextTransport::S3PresignedUrl => {
            let bucket = bucket.clone().ok_or_else(|| invalid("bucket", "is required"))?;
            check_bucket(&bucket).map_err(|e| invalid("bucket", e))?;
            if let Some(region) = region {
                crate::aws::arn::check_region(region).map_err(|e| invalid("region", e.to_string()))?;
            }
            if let Some(endpoint) = s3_endpoint {
                check_url(endpoint).map_err(|e| invalid("s3Endpoint", e))?;
            }
            if *context_transport == ContextTransport::S3PresignedUrl {
                check_presigned_endpoint(s3_endpoint.as_deref(), env)?;
            }
            let key_prefix = key_prefix.clone().unwrap_or_default();
            if key_prefix.starts_with('/') || key_prefix.contains("..") || key_prefix.chars().any(char::is_control) {
                return Err(invalid("keyPrefix", format!("{key_prefix:?} must be a relative key prefix")));
            }
            Transport::S3 {
                bucket,
                key_prefix,
                region: region.clone(),
                endpoint: s3_endpoint.clone(),
                presigned: *context_transport == ContextTransport::S3PresignedUrl,
                delete_after_build: *delete_context_after_build,
            }
        }
    };

    let destinations = destinations
        .iter()
        .map(|d| parse_destination(d).map_err(|e| invalid("destinations", e)))
        .collect::<Result<Vec<ImageReference>, _>>()?;
    for arg in build_args {
        check_build_arg(arg).map_err(|e| invalid("buildArgs", e))?;
    }
    if let Some(target) = target {
        check_stage(target).map_err(|e| invalid("target", e))?;
    }
    for label in labels {
        check_image_label(label).map_err(|e| invalid("labels", e))?;
    }
    if let Some(repo) = cache_repo {
        let parsed = reference::parse(repo).map_err(|e| invalid("cacheRepo", e))?;
        if parsed.tag.is_some() || parsed.digest.is_some() {
            return Err(invalid("cacheRepo", format!("{repo:?} must be a repository, without tag or digest")));
        }
    }
    if let Some(ttl) = cache_ttl {
        check_go_duration(ttl).map_err(|e| invalid("cacheTTL", e))?;
    }
    if let Some(map) = registry_config_map {
        names::check_dns1123_subdomain(map).map_err(|e| invalid("registryConfigMap", e))?;
    }
    reference::parse(kaniko_image).map_err(|e| invalid("kanikoImage", e))?;
    let quantity = |name: &str, value: &Option<String>| -> Result<Option<f64>, InputError> {
        value.as_deref().map(|v| names::parse_quantity(v).map_err(|e| invalid(name, e))).transpose()
    };
    if quantity("cpuRequest", cpu_request)?.is_some_and(|q| q <= 0.0) {
        return Err(invalid("cpuRequest", "must be more than 0"));
    }
    let request = quantity("memoryRequest", memory_request)?;
    let limit = quantity("memoryLimit", memory_limit)?;
    for (name, value) in [("memoryRequest", request), ("memoryLimit", limit)] {
        if value.is_some_and(|q| q < 1024.0 * 1024.0) {
            return Err(invalid(name, "is below 1Mi, too little for any build"));
        }
    }
    if let (Some(request), Some(limit)) = (request, limit)
        && request > limit
    {
        return Err(invalid("memoryRequest", "is larger than memoryLimit"));
    }
    let node_selector = key_values("nodeSelector", node_selector, true)?;
    let tolerations = tolerations
        .iter()
        .map(|t| parse_toleration(t).map_err(|e| invalid("tolerations", e)))
        .collect::<Result<_, _>>()?;
    let user_labels = key_values("podLabels", pod_labels, true)?;
    let annotations = key_values("podAnnotations", pod_annotations, false)?;
    let timeout_minutes: u32 = timeout_minutes.parse().ok().filter(|m| (1..=1440).contains(m)).ok_or_else(|| {
        invalid("timeoutMinutes", format!("{timeout_minutes:?} must be a whole number of minutes from 1 to 1440"))
    })?;
    for arg in extra_args {
        check_extra_arg(arg).map_err(|e| invalid("extraArgs", e))?;
    }

    let mut pod_labels = build_labels(env);
    pod_labels.extend(user_labels);
    let (aws_region, pod_s3_endpoint) = match &transport {
        Transport::S3 { region, endpoint, presigned: false, .. } => {
            (region.clone().or_else(|| env.var("AWS_REGION").map(str::to_string)), endpoint.clone())
        }
        _ => (None, None),
    };
    let build_id = label_value(env.var("BUILD_BUILDID").unwrap_or("local"));
    Ok(Plan {
        cluster,
        pack: PackOptions { context_dir, dockerfile: dockerfile_path, use_dockerignore: *use_dockerignore },
        transport,
        build: Build {
            context: ContextSource::Stdin,
            dockerfile: dockerfile.clone(),
            destinations,
            build_args: build_args.clone(),
            target: target.clone(),
            labels: labels.clone(),
            cache: *cache,
            cache_repo: cache_repo.clone(),
            cache_ttl: cache_ttl.clone(),
            push: *push_image,
            verbosity: verbosity.as_str().to_string(),
            extra_args: extra_args.clone(),
        },
        pod: PodOptions {
            namespace: namespace.clone(),
            generate_name: format!("kaniko-{}-", build_id.to_lowercase().replace(['_', '.'], "-")),
            service_account: service_account.clone(),
            image: kaniko_image.clone(),
            labels: pod_labels,
            annotations,
            cpu_request: cpu_request.clone(),
            memory_request: memory_request.clone(),
            memory_limit: memory_limit.clone(),
            node_selector,
            tolerations,
            active_deadline_seconds: i64::from(timeout_minutes) * 60,
            registry_config_map: registry_config_map.clone(),
            aws_region,
            s3_endpoint: pod_s3_endpoint,
        },
        timeout: Duration::from_secs(u64::from(timeout_minutes) * 60),
        keep_pod_on_failure: *keep_pod_on_failure,
        unschedulable_grace: env
            .var("AZP_KUBE_UNSCHEDULABLE_GRACE_SECONDS")
            .and_then(|s| s.parse().ok())
            .map_or(UNSCHEDULABLE_GRACE, Duration::from_secs),
    })
}

/// kaniko fetches a URL context only over https:// (its build contexts are gs://, s3://,
/// dir://, git://, https:// and tar://), so a presigned URL must come from an https://
/// endpoint: the `s3Endpoint` input, else the agent's own endpoint setting.
fn check_presigned_endpoint(given: Option<&str>, env: &Env) -> Result<(), InputError> {
    let configured = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .into_iter()
        .find_map(|name| env.var(name).filter(|v| !v.is_empty()).map(|v| (v, format!(" (from {name})"))));
    let Some((endpoint, source)) = given.map(|e| (e, String::new())).or(configured) else { return Ok(()) };
    if endpoint.starts_with("https://") {
        return Ok(());
    }
    Err(invalid(
        "s3Endpoint",
        format!(
            "{endpoint}{source} is not an https:// URL, and kaniko fetches a presigned URL only over https:// \
             (it refuses http:// build contexts); give an https:// s3Endpoint, or use contextTransport S3 or Stream"
        ),
    ))
}

/// The context folder: inside the repository, even through symlinks.
fn resolve_context(given: Option<&Path>, env: &Env) -> Result<PathBuf, InputError> {
    let sources = env.var("BUILD_SOURCESDIRECTORY").map(PathBuf::from);
    let dir = match (given, &sources) {
        (Some(dir), Some(sources)) if dir.is_relative() => sources.join(dir),
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(sources)) => sources.clone(),
        (None, None) => PathBuf::from("."),
    };
    let real =
        dir.canonicalize().map_err(|e| invalid("buildContext", format!("{} cannot be read: {e}", dir.display())))?;
    if !real.is_dir() {
        return Err(invalid("buildContext", format!("{} is not a directory", dir.display())));
    }
    if let Some(sources) = sources.and_then(|s| s.canonicalize().ok())
        && !real.starts_with(&sources)
    {
        return Err(invalid(
            "buildContext",
            format!("{} leaves the repository {} (through '..' or a symlink)", dir.display(), sources.display()),
        ));
    }
    Ok(real)
}

fn parse_destination(text: &str) -> Result<ImageReference, String> {
    let parsed = reference::parse(text)?;
    if parsed.digest.is_some() {
        return Err(format!("{text:?}: a destination names a tag to push, not a digest"));
    }
    Ok(parsed)
}

fn check_build_arg(arg: &str) -> Result<(), String> {
    let name = arg.split_once('=').map_or(arg, |(name, _)| name);
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("{arg:?} must be KEY=VALUE or KEY, with KEY of letters, digits and '_'"));
    }
    if arg.contains('\0') {
        return Err(format!("the value of {name} contains a NUL character"));
    }
    Ok(())
}

fn check_stage(target: &str) -> Result<(), String> {
    let valid = target.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && target.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid { Ok(()) } else { Err(format!("{target:?} is not a stage name")) }
}

/// Longest label line accepted (it travels as one executor argument).
const MAX_LABEL: usize = 4096;

fn check_image_label(label: &str) -> Result<(), String> {
    let Some((key, _)) = label.split_once('=') else {
        return Err(format!("{label:?} must be KEY=VALUE"));
    };
    if key.trim().is_empty() {
        return Err(format!("{label:?} has an empty key"));
    }
    if label.len() > MAX_LABEL {
        return Err(format!("a label of {} characters is longer than {MAX_LABEL}", label.len()));
    }
    if label.contains('\0') {
        return Err(format!("label {key} contains a NUL character"));
    }
    Ok(())
}

fn key_values(name: &str, lines: &[String], label_rules: bool) -> Result<BTreeMap<String, String>, InputError> {
    let mut map = BTreeMap::new();
    for line in lines {
        let (key, value) = line.split_once('=').ok_or_else(|| invalid(name, format!("{line:?} must be KEY=VALUE")))?;
        let (key, value) = (key.trim(), value.trim());
        names::check_qualified_name(key).map_err(|e| invalid(name, e))?;
        if label_rules {
            names::check_label_value(value).map_err(|e| invalid(name, e))?;
        }
        map.insert(key.to_string(), value.to_string());
    }
    Ok(map)
}

/// `KEY[=VALUE]:EFFECT`, `KEY:EFFECT`, or `:EFFECT` (tolerate every taint with it).
fn parse_toleration(text: &str) -> Result<Toleration, String> {
    const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
    let (selector, effect) = text.rsplit_once(':').ok_or_else(|| format!("{text:?} must be KEY[=VALUE]:EFFECT"))?;
    if !EFFECTS.contains(&effect) {
        return Err(format!("{text:?}: the effect must be one of {}, not {effect:?}", EFFECTS.join(", ")));
    }
    let (key, value) = match selector.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (selector, None),
    };
    if !key.is_empty() {
        names::check_qualified_name(key)?;
    }
    if let Some(value) = value {
        names::check_label_value(value)?;
    }
    Ok(Toleration {
        key: (!key.is_empty()).then(|| key.to_string()),
        operator: Some(if value.is_some() { "Equal" } else { "Exists" }.to_string()),
        value: value.map(str::to_string),
        effect: Some(effect.to_string()),
        toleration_seconds: None,
    })
}

fn check_extra_arg(arg: &str) -> Result<(), String> {
    if !arg.starts_with('-') {
        return Err(format!("{arg:?} is not a flag: write one executor flag per line, such as --snapshot-mode=redo"));
    }
    let flag = arg.split_once('=').map_or(arg, |(flag, _)| flag);
    if RESERVED_FLAGS.contains(&flag) {
        return Err(format!("{flag} is set by the task from its own inputs and cannot be overridden"));
    }
    Ok(())
}

fn check_bucket(bucket: &str) -> Result<(), String> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if valid { Ok(()) } else { Err(format!("{bucket:?} is not an S3 bucket name")) }
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
            labels.insert(label.to_string(), label_value(value));
        }
    }
    labels
}

/// Any text made into a valid label value.
fn label_value(text: &str) -> String {
    let cleaned: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).collect();
    let cleaned: String = cleaned.chars().take(63).collect();
    cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args() {
        assert!(check_build_arg("VERSION=1.2=3").is_ok());
        assert!(check_build_arg("HTTP_PROXY").is_ok());
        assert!(check_build_arg("=x").is_err());
        assert!(check_build_arg("=").is_err());
        assert!(check_build_arg("1X=a").is_err());
        assert!(check_build_arg("A B=c").is_err());
        assert!(check_build_arg("A=b\0c").is_err());
    }

    #[test]
    fn tolerations() {
        let t = parse_toleration("dedicated=build:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_deref(), t.operator.as_deref(), t.value.as_deref()),
            (Some("dedicated"), Some("Equal"), Some("build"))
        );
        let t = parse_toleration("spot:PreferNoSchedule").unwrap();
        assert_eq!(t.operator.as_deref(), Some("Exists"));
        assert!(parse_toleration(":NoExecute").is_ok());
        assert!(parse_toleration("x:NoWay").unwrap_err().contains("NoWay"));
        assert!(parse_toleration("x").is_err());
    }

    #[test]
    fn durations_labels_and_flags() {
        assert!(check_image_label("a=b").is_ok());
        assert!(check_image_label("=b").is_err());
        assert!(check_image_label("nokey").is_err());
        assert!(check_image_label(&format!("k={}", "v".repeat(5000))).is_err());
        assert!(check_extra_arg("--snapshot-mode=redo").is_ok());
        assert!(check_extra_arg("--destination=evil/x:1").is_err());
        assert!(check_extra_arg("snapshot").is_err());
    }

    #[test]
    fn buckets_and_urls() {
        assert!(check_bucket("my-build-contexts").is_ok());
        assert!(check_bucket("My_Bucket").is_err());
        assert!(check_bucket("ab").is_err());
    }

    #[test]
    fn label_values_are_cleaned() {
        assert_eq!(label_value("20261129.3"), "20261129.3");
        assert_eq!(label_value("Job: build #1"), "Job--build--1");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
    }
}
