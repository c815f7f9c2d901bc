//! The kaniko executor's arguments for a build. Each value is one argv entry
//! (`--flag=value`): no shell ever sees them.

use super::reference::ImageReference;

/// Where the executor reads the context from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// `s3://bucket/key`, read with the pod's own AWS identity.
    S3 { bucket: String, key: String },
    /// A presigned https URL: the pod needs no AWS rights.
    Url(String),
    /// The pod's stdin, fed through attach.
    Stdin,
}

impl ContextSource {
    /// The `--context` value.
    pub fn url(&self) -> String {
        match self {
            Self::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
            Self::Url(url) => url.clone(),
            Self::Stdin => "tar://stdin".into(),
        }
    }
}

/// What kaniko builds and where it pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub context: ContextSource,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    pub destinations: Vec<ImageReference>,
    pub build_args: Vec<String>,
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
    let mut args = vec![format!("--context={}", build.context.url()), format!("--dockerfile={}", build.dockerfile)];
    args.extend(build.destinations.iter().map(|d| format!("--destination={d}")));
    args.extend(build.build_args.iter().map(|a| format!("--build-arg={a}")));
    if let Some(target) = &build.target {
        args.push(format!("--target={target}"));
    }
    args.extend(build.labels.iter().map(|l| format!("--label={l}")));
    if build.cache {
        args.push("--cache=true".into());
        if let Some(repo) = &build.cache_repo {
            args.push(format!("--cache-repo={repo}"));
        }
        if let Some(ttl) = &build.cache_ttl {
            args.push(format!("--cache-ttl={ttl}"));
        }
    }
    if !build.push {
        args.push("--no-push".into());
    }
    args.push(format!("--digest-file={DIGEST_FILE}"));
    args.push(format!("--verbosity={}", build.verbosity));
    // Plain text: the pipeline log shows no colours, and it parses cleanly.
    args.push("--log-format=text".into());
    args.extend(build.extra_args.iter().cloned());
    args
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
            build_args: vec!["VERSION=1.2.3".into(), "HTTP_PROXY".into()],
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
                "--build-arg=HTTP_PROXY",
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
        assert!(args.contains(&"--no-push".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--cache")));
    }

    #[test]
    fn values_are_single_arguments_never_shell_words() {
        let build = Build { build_args: vec!["X=$(touch pwned); echo 'a b'".into()], ..sample() };
        assert!(executor_args(&build).contains(&"--build-arg=X=$(touch pwned); echo 'a b'".to_string()));
    }
}
