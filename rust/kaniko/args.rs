//! The kaniko executor's arguments for a build. Each value is one argv entry
//! (`--flag=value`): no shell ever sees them. The kubelet expands `$(NAME)`
//! in a container's arguments from its environment, so every literal `$` is
//! doubled, and values that must stay out of the pod spec (secret build
//! arguments, a presigned URL) are `$(NAME)` references to environment
//! variables filled from the build's Secret.

use std::collections::BTreeMap;

use super::reference::ImageReference;
use crate::azp::Secret;

/// Where the executor reads the context from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// `s3://bucket/key`, read with the pod's own AWS identity.
    S3 { bucket: String, key: String },
    /// A presigned https URL: the pod needs no AWS rights. Whoever holds it
    /// can read the context until it expires, so it is a secret.
    Url(Secret),
    /// The pod's stdin, fed through attach.
    Stdin,
}

/// The environment variable that holds a presigned context URL.
pub const CONTEXT_URL_ENV: &str = "AZP_KUBE_CONTEXT_URL";

/// The environment variable that holds the secret build argument `key`
/// (prefixed, so that no build argument can change the executor's own
/// environment, such as `PATH` or `HTTPS_PROXY`).
pub fn build_arg_env(key: &str) -> String {
    format!("AZP_KUBE_BUILD_ARG_{key}")
}

/// One `--build-arg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildArg {
    /// `KEY=VALUE`, written into the pod spec.
    Plain { key: String, value: String },
    /// A value only the build's Secret holds.
    Secret { key: String, value: Secret },
}

/// What kaniko builds and where it pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub context: ContextSource,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    pub destinations: Vec<ImageReference>,
    pub build_args: Vec<BuildArg>,
    pub target: Option<String>,
    pub labels: Vec<String>,
    pub cache: bool,
    pub cache_repo: Option<String>,
    pub cache_ttl: Option<String>,
    pub push: bool,
    pub verbosity: String,
    /// Further flags, passed as they are.
    pub extra_args: Vec<String>,
}

/// Where the digest goes: the container's termination message, which the
/// task reads from the pod status (no race with a registry lookup).
pub const DIGEST_FILE: &str = "/dev/termination-log";

/// Flags the task sets itself; `extraArgs` may not override them.
pub const RESERVED_FLAGS: &[&str] = &["--context", "-c", "--dockerfile", "-f", "--destination", "-d", "--digest-file"];

/// The executor's argv (without the program).
pub fn executor_args(build: &Build) -> Vec<String> {
    let literal = |arg: String| arg.replace('$', "$$");
    let context = match &build.context {
        ContextSource::Url(_) => format!("--context=$({CONTEXT_URL_ENV})"),
        ContextSource::S3 { bucket, key } => literal(format!("--context=s3://{bucket}/{key}")),
        ContextSource::Stdin => "--context=tar://stdin".into(),
    };
    let mut args = vec![context, literal(format!("--dockerfile={}", build.dockerfile))];
    args.extend(build.destinations.iter().map(|d| literal(format!("--destination={d}"))));
    args.extend(build.build_args.iter().map(|arg| match arg {
        BuildArg::Plain { key, value } => literal(format!("--build-arg={key}={value}")),
        BuildArg::Secret { key, .. } => format!("--build-arg={key}=$({})", build_arg_env(key)),
    }));
    if let Some(target) = &build.target {
        args.push(literal(format!("--target={target}")));
    }
    args.extend(build.labels.iter().map(|l| literal(format!("--label={l}"))));
    if build.cache {
        args.push("--cache=true".into());
        if let Some(repo) = &build.cache_repo {
            args.push(literal(format!("--cache-repo={repo}")));
        }
        if let Some(ttl) = &build.cache_ttl {
            args.push(literal(format!("--cache-ttl={ttl}")));
        }
    }
    if !build.push {
        args.push("--no-push".into());
    }
    args.push(format!("--digest-file={DIGEST_FILE}"));
    args.push(literal(format!("--verbosity={}", build.verbosity)));
    // Plain text: the pipeline log shows no colours, and it parses cleanly.
    args.push("--log-format=text".into());
    args.extend(build.extra_args.iter().cloned().map(literal));
    args
}

/// The values the executor reads from the build's Secret, by environment
/// variable: the presigned URL and the secret build arguments.
pub fn secret_env(build: &Build) -> BTreeMap<String, Secret> {
    let mut env = BTreeMap::new();
    if let ContextSource::Url(url) = &build.context {
        env.insert(CONTEXT_URL_ENV.to_string(), url.clone());
    }
    for arg in &build.build_args {
        if let BuildArg::Secret { key, value } = arg {
            env.insert(build_arg_env(key), value.clone());
        }
    }
    env
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kaniko::reference::parse;

    pub(crate) fn sample() -> Build {
        Build {
            context: ContextSource::S3 { bucket: "contexts".into(), key: "kaniko-contexts/abc.tar.gz".into() },
            dockerfile: "docker/Dockerfile".into(),
            destinations: vec![parse("registry.local/app:1").unwrap(), parse("registry.local/app:latest").unwrap()],
            build_args: vec![
                BuildArg::Plain { key: "VERSION".into(), value: "1.2.3".into() },
                BuildArg::Secret { key: "NPM_TOKEN".into(), value: Secret::new("npm-s3cr3t") },
            ],
            target: Some("runtime".into()),
            labels: vec!["org.opencontainers.image.revision=abc".into()],
            cache: true,
            cache_repo: Some("registry.local/app/cache".into()),
            cache_ttl: Some("24h".into()),
            push: true,
            verbosity: "info".into(),
            extra_args: vec!["--snapshot-mode=redo".into()],
        }
    }

    #[test]
    fn golden_args() {
        assert_eq!(
            executor_args(&sample()),
            [
                "--context=s3://contexts/kaniko-contexts/abc.tar.gz",
                "--dockerfile=docker/Dockerfile",
                "--destination=registry.local/app:1",
                "--destination=registry.local/app:latest",
                "--build-arg=VERSION=1.2.3",
                "--build-arg=NPM_TOKEN=$(AZP_KUBE_BUILD_ARG_NPM_TOKEN)",
                "--target=runtime",
                "--label=org.opencontainers.image.revision=abc",
                "--cache=true",
                "--cache-repo=registry.local/app/cache",
                "--cache-ttl=24h",
                "--digest-file=/dev/termination-log",
                "--verbosity=info",
                "--log-format=text",
                "--snapshot-mode=redo",
            ]
        );
    }

    #[test]
    fn stdin_without_cache_or_push() {
        let build = Build { context: ContextSource::Stdin, cache: false, push: false, extra_args: vec![], ..sample() };
        let args = executor_args(&build);
        assert_eq!(args[0], "--context=tar://stdin");
        assert!(secret_env(&Build { build_args: vec![], ..build.clone() }).is_empty());
        assert!(args.contains(&"--no-push".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--cache")));
    }

    #[test]
    fn values_are_single_arguments_never_shell_words() {
        let value = "$(touch pwned); echo 'a b'".to_string();
        let build = Build { build_args: vec![BuildArg::Plain { key: "X".into(), value }], ..sample() };
        // Doubled `$`: the kubelet turns `$$` back into `$` and expands nothing.
        assert!(executor_args(&build).contains(&"--build-arg=X=$$(touch pwned); echo 'a b'".to_string()));
    }

    #[test]
    fn secret_values_stay_out_of_the_arguments() {
        let url = "https://s3.example/contexts/abc.tar.gz?X-Amz-Signature=f00d";
        let build = Build { context: ContextSource::Url(Secret::new(url)), ..sample() };
        let args = executor_args(&build);
        assert_eq!(args[0], "--context=$(AZP_KUBE_CONTEXT_URL)");
        assert!(args.iter().all(|a| !a.contains("f00d") && !a.contains("npm-s3cr3t")), "{args:?}");
        let env = secret_env(&build);
        let exposed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
        assert_eq!(exposed, [("AZP_KUBE_BUILD_ARG_NPM_TOKEN", "npm-s3cr3t"), ("AZP_KUBE_CONTEXT_URL", url)]);
    }
}
