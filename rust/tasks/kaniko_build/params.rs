//! KanikoBuild's inputs, checked and resolved into a plan before anything
//! touches the network. Every error names the input it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Toleration;

use crate::azp::Env;
use crate::azp::Secret;
use crate::azp::inputs::InputError;
use crate::context::PackOptions;
use crate::kaniko::args::{Build, BuildArg, ContextSource, check_extra_args};
use crate::kaniko::pod::PodOptions;
use crate::kaniko::reference::{self, ImageReference};
use crate::kube::Connection;
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
    /// node) before the build gives up; tests shorten it with the test switch
    /// [`UNSCHEDULABLE_GRACE_SWITCH`].
    pub unschedulable_grace: Duration,
}

/// The default of [`Plan::unschedulable_grace`].
pub const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(120);
/// Test switch (debug builds only, see [`Env::test_switch`]) for [`Plan::unschedulable_grace`].
pub const UNSCHEDULABLE_GRACE_SWITCH: &str = "AZP_KUBE_UNSCHEDULABLE_GRACE_SECONDS";

fn invalid(name: &str, reason: impl Into<String>) -> InputError {
    InputError::invalid(SPEC.input(name), reason)
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
    let namespace = build_namespace(namespace.as_deref(), env)?;
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
            check_key_prefix(&key_prefix).map_err(|e| invalid("keyPrefix", e))?;
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
    let secret_values: Vec<&str> = env.secret_values().collect();
    let build_args = build_args
        .iter()
        .enumerate()
        .map(|(index, line)| parse_build_arg(index + 1, line, &secret_values).map_err(|e| invalid("buildArgs", e)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(target) = target {
        check_stage(target).map_err(|e| invalid("target", e))?;
    }
    for label in labels {
        check_image_label(label).map_err(|e| invalid("labels", e))?;
    }
    if let Some(repo) = cache_repo {
        let parsed = reference::parse_push_target(repo).map_err(|e| invalid("cacheRepo", e))?;
        if parsed.tag.is_some() || parsed.digest.is_some() {
            return Err(invalid("cacheRepo", format!("{repo:?} must be a repository, without tag or digest")));
        }
    }
    let (cache, cache_repo) = resolve_cache(*cache, cache_repo, *push_image, &destinations);
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
    check_extra_args(extra_args).map_err(|e| invalid("extraArgs", e))?;

    let mut pod_labels = build_labels(env);
    pod_labels.extend(user_labels);
    let (aws_region, pod_s3_endpoint) = match &transport {
        Transport::S3 { region, endpoint, presigned: false, .. } => {
            (crate::aws::region(env, region.as_deref()), endpoint.clone())
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
            build_args,
            target: target.clone(),
            labels: labels.clone(),
            cache,
            cache_repo,
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
        unschedulable_grace: env.test_seconds(UNSCHEDULABLE_GRACE_SWITCH).unwrap_or(UNSCHEDULABLE_GRACE),
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
    let parsed = reference::parse_push_target(text)?;
    if parsed.digest.is_some() {
        return Err(format!("{text:?}: a destination names a tag to push, not a digest"));
    }
    Ok(parsed)
}

/// One `buildArgs` line. A value that holds a secret variable's value goes
/// to the pod through the build's Secret. Errors name the line and the key,
/// never the value.
fn parse_build_arg(number: usize, line: &str, secret_values: &[&str]) -> Result<BuildArg, String> {
    let is_key = |key: &str| {
        key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    // Where a secret variable's value starts in the line, if anywhere.
    let secret_at = secret_values.iter().flat_map(|secret| line.match_indices(secret).map(|(at, _)| at)).min();
    let Some((key, value)) = line.split_once('=') else {
        if secret_at.is_some() || !is_key(line) {
            return Err(format!("line {number} must be KEY=VALUE"));
        }
        // kaniko would fill a bare KEY from its own environment, where
        // nothing sets it: KEY would be empty, not the Dockerfile's default.
        return Err(format!(
            "{line} has no value: kaniko would build with {line} set to an empty string, overriding the \
             Dockerfile's ARG default (Docker leaves it unset); write {line}=VALUE, such as {line}=$(variable), \
             or leave the line out"
        ));
    };
    if secret_at.is_some_and(|at| at < key.len()) {
        return Err(format!("line {number}: the key holds a secret variable's value; write KEY=$(variable)"));
    }
    if !is_key(key) {
        return Err(format!("line {number}: the key must be letters, digits and '_', not starting with a digit"));
    }
    if value.contains('\0') {
        return Err(format!("the value of {key} contains a NUL character"));
    }
    let key = key.to_string();
    Ok(match secret_at {
        Some(_) => BuildArg::Secret { key, value: Secret::new(value) },
        None => BuildArg::Plain { key, value: value.to_string() },
    })
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

/// The cache as kaniko can run it. kaniko refuses `--cache` with `--no-push` unless a
/// cache repository is named (`cacheFlagsValid`, cmd/executor/cmd/root.go v1.28.3), as it
/// cannot infer one then: name the one task.json promises (`<first destination's
/// repository>/cache`), or turn the cache off when there is no destination to derive it.
fn resolve_cache(
    cache: bool,
    cache_repo: &Option<String>,
    push: bool,
    destinations: &[ImageReference],
) -> (bool, Option<String>) {
    if !cache || push || cache_repo.is_some() {
        return (cache, cache_repo.clone());
    }
    match destinations.first() {
        Some(first) => {
            let repo = reference::default_cache_repository(first);
            tracing::info!("pushImage is false: cached layers go to {repo} (set cacheRepo to choose another)");
            (true, Some(repo))
        }
        None => {
            tracing::warn!("The layer cache is off: without destinations or cacheRepo kaniko has nowhere to keep it");
            (false, None)
        }
    }
}

/// A key prefix kaniko reads back intact: it parses `s3://bucket/key` as a URL (Go's
/// `url.Parse` in pkg/util/bucket), so `?` and `#` would end the key and `%` would be
/// decoded or refused.
fn check_key_prefix(prefix: &str) -> Result<(), String> {
    if prefix.starts_with('/') || prefix.contains("..") || prefix.chars().any(char::is_control) {
        return Err(format!("{prefix:?} must be a relative key prefix"));
    }
    if let Some(c) = prefix.chars().find(|c| matches!(c, '?' | '#' | '%')) {
        return Err(format!(
            "{prefix:?} contains {c:?}, which kaniko would read as part of a URL (s3://bucket/key), not of the key"
        ));
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
        let plain = |key: &str, value: &str| BuildArg::Plain { key: key.into(), value: value.into() };
        assert_eq!(parse_build_arg(1, "VERSION=1.2=3", &[]), Ok(plain("VERSION", "1.2=3")));
        assert_eq!(parse_build_arg(1, "EMPTY=", &[]), Ok(plain("EMPTY", "")));
        for bad in ["=x", "=", "1X=a", "A B=c", "A=b\0c", "HTTP_PROXY", "not a key"] {
            assert!(parse_build_arg(1, bad, &[]).is_err(), "{bad:?}");
        }
        let bare = parse_build_arg(1, "HTTP_PROXY", &[]).unwrap_err();
        assert!(bare.contains("ARG default"), "{bare}");
    }

    #[test]
    fn build_args_holding_a_secret_value_are_secret_and_never_echoed() {
        let secrets = ["s3cr3t-t0ken", "dGVzdA=="];
        let arg = parse_build_arg(1, "NPM_TOKEN=Bearer s3cr3t-t0ken", &secrets).unwrap();
        assert_eq!(arg, BuildArg::Secret { key: "NPM_TOKEN".into(), value: Secret::new("Bearer s3cr3t-t0ken") });
        for line in ["s3cr3t-t0ken", "dGVzdA==", "BAD KEY=s3cr3t-t0ken", "X=s3cr3t-t0ken\0"] {
            let error = parse_build_arg(4, line, &secrets).unwrap_err();
            assert!(!error.contains("s3cr3t") && !error.contains("dGVzdA"), "{error}");
        }
        let error = parse_build_arg(2, "1X=plain-value", &[]).unwrap_err();
        assert!(error.contains("line 2") && !error.contains("plain-value"), "{error}");
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
    }

    #[test]
    fn key_prefixes_kaniko_reads_intact() {
        assert!(check_key_prefix("kaniko-contexts/team a/").is_ok());
        assert!(check_key_prefix("").is_ok());
        for bad in ["a?b/", "a#b/", "a%41/", "/abs/", "a/../b/"] {
            assert!(check_key_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cache_without_push_gets_a_repository_or_is_turned_off() {
        let destinations = [reference::parse("registry.local/team/app:1").unwrap()];
        let repo = Some("registry.local/cache".to_string());
        assert_eq!(resolve_cache(true, &None, true, &destinations), (true, None), "kaniko derives it when pushing");
        assert_eq!(resolve_cache(true, &repo, false, &destinations), (true, repo.clone()));
        assert_eq!(
            resolve_cache(true, &None, false, &destinations),
            (true, Some("registry.local/team/app/cache".to_string()))
        );
        assert_eq!(resolve_cache(true, &None, false, &[]), (false, None));
        assert_eq!(resolve_cache(false, &None, false, &destinations), (false, None));
    }

    #[test]
    fn buckets_and_urls() {
        assert!(check_bucket("my-build-contexts").is_ok());
        assert!(check_bucket("My_Bucket").is_err());
        assert!(check_bucket("ab").is_err());
    }

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

    #[test]
    fn label_values_are_cleaned() {
        assert_eq!(label_value("20261129.3"), "20261129.3");
        assert_eq!(label_value("Job: build #1"), "Job--build--1");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
    }
}
