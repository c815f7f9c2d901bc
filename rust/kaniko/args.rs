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

/// The folder the packed context sits in inside its archive, given to kaniko as
/// `--context-sub-path`. kaniko's s3 fetcher downloads the archive as `context.tar.gz`
/// into the folder it unpacks it in and never deletes it (pkg/buildcontext/s3.go,
/// v1.28.3): with the context one folder down, `COPY . /app` cannot pick it up.
pub const CONTEXT_SUB_PATH: &str = "context";

/// Whether an executor flag takes a value or is a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--flag=value`, `--flag value`, `-xvalue`, `-x value`.
    Value,
    /// `--flag` or `--flag=true|false`; never takes the next argument.
    Bool,
}

/// The executor's flags as kaniko v1.28.3 declares them (cmd/executor/cmd/root.go,
/// `init`, `AddKanikoOptionsFlags`, `AddRegistryOptionsFlags`), with cobra's `help`:
/// (name, shorthand, kind). Checked against that version's source; update with the image.
pub const EXECUTOR_FLAGS: &[(&str, Option<char>, FlagKind)] = {
    use FlagKind::{Bool, Value};
    &[
        ("verbosity", Some('v'), Value),
        ("log-format", None, Value),
        ("log-timestamp", None, Bool),
        ("force", None, Bool),
        ("dockerfile", Some('f'), Value),
        ("context", Some('c'), Value),
        ("context-sub-path", None, Value),
        ("bucket", Some('b'), Value),
        ("destination", Some('d'), Value),
        ("snapshot-mode", None, Value),
        ("custom-platform", None, Value),
        ("build-arg", None, Value),
        ("image-fs-extract-retry", None, Value),
        ("kaniko-dir", None, Value),
        ("tar-path", None, Value),
        ("single-snapshot", None, Bool),
        ("reproducible", None, Bool),
        ("target", None, Value),
        ("no-push", None, Bool),
        ("no-push-cache", None, Bool),
        ("cache-repo", None, Value),
        ("cache-dir", None, Value),
        ("digest-file", None, Value),
        ("image-name-with-digest-file", None, Value),
        ("image-name-tag-with-digest-file", None, Value),
        ("oci-layout-path", None, Value),
        ("compression", None, Value),
        ("image-format", None, Value),
        ("compression-level", None, Value),
        ("cache", None, Bool),
        ("compressed-caching", None, Bool),
        ("pre-cleanup", None, Bool),
        ("cleanup", None, Bool),
        ("cache-ttl", None, Value),
        ("ignore-var-run", None, Bool),
        ("label", None, Value),
        ("use-new-run", None, Bool),
        ("git", None, Value),
        ("cache-copy-layers", None, Bool),
        ("cache-run-layers", None, Bool),
        ("ignore-path", None, Value),
        ("skip-push-permission-check", None, Bool),
        ("annotation", None, Value),
        ("preserve-context", None, Bool),
        ("materialize", None, Bool),
        ("secret", None, Value),
        ("dryrun", None, Bool),
        ("insecure", None, Bool),
        ("skip-tls-verify", None, Bool),
        ("insecure-pull", None, Bool),
        ("skip-tls-verify-pull", None, Bool),
        ("push-retry", None, Value),
        ("push-ignore-immutable-tag-errors", None, Bool),
        ("image-download-retry", None, Value),
        ("insecure-registry", None, Value),
        ("skip-tls-verify-registry", None, Value),
        ("registry-certificate", None, Value),
        ("registry-client-cert", None, Value),
        ("registry-map", None, Value),
        ("registry-mirror", None, Value),
        ("skip-default-registry-fallback", None, Bool),
        ("credential-helpers", None, Value),
        ("snapshotMode", None, Value),
        ("customPlatform", None, Value),
        ("tarPath", None, Value),
        ("force-build-metadata", None, Bool),
        ("skip-unused-stages", None, Bool),
        ("whitelist-var-run", None, Bool),
        ("help", Some('h'), Bool),
    ]
};

/// Flags `extraArgs` may not set, with what owns them: the task sets them from its
/// inputs, reads what they write, or needs the build they would skip.
const RESERVED_FLAGS: &[(&[&str], &str)] = &[
    (&["context", "bucket", "context-sub-path"], "the task ships the build context itself"),
    (&["dockerfile"], "use the dockerfile input"),
    (&["destination", "no-push"], "use the destinations and pushImage inputs"),
    (&["build-arg", "label", "target"], "use the buildArgs, labels and target inputs"),
    (&["cache", "cache-repo", "cache-ttl"], "use the cache, cacheRepo and cacheTTL inputs"),
    (
        &["digest-file", "image-name-with-digest-file", "image-name-tag-with-digest-file"],
        "the task reads the digest from the container's termination message",
    ),
    (&["verbosity", "log-format"], "use the verbosity input; the task reads kaniko's log as text"),
    (&["help", "dryrun"], "the task needs a built image and its digest"),
];

/// Checks `extraArgs` as cobra/pflag will parse them after the task's own flags: each
/// line is one argument; a value flag without `=` takes the next line as its value (even
/// one starting with `-`); `-xVALUE`, `-x=VALUE` and `-x VALUE` are shorthands. Refuses a
/// reserved flag in any spelling, flags the executor does not have, positional arguments
/// (the executor would take the first for a subcommand, or fail) and `--`.
pub fn check_extra_args(args: &[String]) -> Result<(), String> {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (name, inline) = if let Some(long) = arg.strip_prefix("--") {
            if long.is_empty() || long.starts_with(['-', '=']) {
                return Err(format!(
                    "{arg:?} is not a flag: write one executor flag per line, such as --snapshot-mode=redo"
                ));
            }
            let (name, value) = long.split_once('=').map_or((long, None), |(n, v)| (n, Some(v)));
            let known = EXECUTOR_FLAGS.iter().any(|(flag, _, _)| *flag == name);
            if !known {
                return Err(format!("--{name} is not a flag of the kaniko executor v1.28.3"));
            }
            (name.to_string(), value.map(str::to_string))
        } else if let Some(letters) = arg.strip_prefix('-').filter(|l| !l.is_empty()) {
            let letter = letters.chars().next().unwrap_or_default();
            let Some((name, _, kind)) = EXECUTOR_FLAGS.iter().find(|(_, short, _)| *short == Some(letter)) else {
                return Err(format!("-{letter} (in {arg:?}) is not a flag of the kaniko executor v1.28.3"));
            };
            check_reserved(name, arg)?;
            // Every executor shorthand but -h takes a value: the rest of the word is it.
            let tail = &letters[letter.len_utf8()..];
            let value = tail.strip_prefix('=').unwrap_or(tail);
            if *kind == FlagKind::Value && value.is_empty() && rest.next().is_none() {
                return Err(format!("{arg} needs a value"));
            }
            continue;
        } else {
            return Err(format!(
                "{arg:?} is not a flag: write one executor flag per line, such as --snapshot-mode=redo"
            ));
        };
        check_reserved(&name, arg)?;
        let kind = EXECUTOR_FLAGS.iter().find(|(flag, _, _)| *flag == name).map(|(_, _, kind)| *kind);
        match (kind, inline.as_deref()) {
            (Some(FlagKind::Bool), Some(value)) if parse_go_bool(value).is_none() => {
                return Err(format!("--{name} is true or false, not {value:?}"));
            }
            (Some(FlagKind::Value), None) if rest.next().is_none() => return Err(format!("--{name} needs a value")),
            _ => {}
        }
    }
    Ok(())
}

fn check_reserved(name: &str, arg: &str) -> Result<(), String> {
    match RESERVED_FLAGS.iter().find(|(names, _)| names.contains(&name)) {
        Some((_, why)) => Err(format!("{arg:?} sets --{name}, which the task sets itself ({why})")),
        None => Ok(()),
    }
}

/// Go's `strconv.ParseBool`, which pflag's bool flags use.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The executor's argv (without the program).
pub fn executor_args(build: &Build) -> Vec<String> {
    let literal = |arg: String| arg.replace('$', "$$");
    let context = match &build.context {
        ContextSource::Url(_) => format!("--context=$({CONTEXT_URL_ENV})"),
        ContextSource::S3 { bucket, key } => literal(format!("--context=s3://{bucket}/{key}")),
        ContextSource::Stdin => "--context=tar://stdin".into(),
    };
    let mut args = vec![
        context,
        format!("--context-sub-path={CONTEXT_SUB_PATH}"),
        literal(format!("--dockerfile={}", build.dockerfile)),
    ];
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

/// One `buildArgs` line. A value that holds a secret variable's value goes
/// to the pod through the build's Secret. Errors name the line and the key,
/// never the value.
pub fn parse_build_arg(number: usize, line: &str, secret_values: &[&str]) -> Result<BuildArg, String> {
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

/// A `--target` stage name.
pub fn check_stage(target: &str) -> Result<(), String> {
    let valid = target.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && target.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid { Ok(()) } else { Err(format!("{target:?} is not a stage name")) }
}

/// Longest label line accepted (it travels as one executor argument).
const MAX_LABEL: usize = 4096;

/// An image `--label` line, `KEY=VALUE`.
pub fn check_image_label(label: &str) -> Result<(), String> {
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

/// The cache as kaniko can run it. kaniko refuses `--cache` with `--no-push` unless a
/// cache repository is named (`cacheFlagsValid`, cmd/executor/cmd/root.go v1.28.3), as it
/// cannot infer one then: name the one task.json promises (`<first destination's
/// repository>/cache`), or turn the cache off when there is no destination to derive it.
pub fn resolve_cache(
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
            let repo = super::reference::default_cache_repository(first);
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
pub fn check_key_prefix(prefix: &str) -> Result<(), String> {
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
                "--context-sub-path=context",
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
    fn extra_args_are_read_as_pflag_reads_them() {
        let check = |lines: &[&str]| check_extra_args(&lines.iter().map(|l| l.to_string()).collect::<Vec<_>>());
        for ok in [
            &["--snapshot-mode=redo"][..],
            &["--snapshot-mode", "redo"],
            &["--compressed-caching=false", "--single-snapshot"],
            // The value of a value flag may start with '-': it is not a flag then.
            &["--ignore-path", "--destination=x"],
            &["--registry-mirror", "mirror.local"],
        ] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
        for (bad, why) in [
            (&["-cs3://evil/ctx.tar.gz"][..], "sets --context"),
            (&["-devil.example/x:1"], "sets --destination"),
            (&["-fDockerfile.evil"], "sets --dockerfile"),
            (&["-f=x"], "sets --dockerfile"),
            (&["-d", "evil.example/x:1"], "sets --destination"),
            (&["--bucket=gs://evil"], "sets --bucket"),
            (&["-bevil"], "sets --bucket"),
            (&["--image-name-with-digest-file=/dev/termination-log"], "termination message"),
            (&["--image-name-tag-with-digest-file", "/dev/termination-log"], "termination message"),
            (&["--context-sub-path=.."], "sets --context-sub-path"),
            (&["--no-push"], "sets --no-push"),
            (&["-vtrace"], "sets --verbosity"),
            (&["-h"], "sets --help"),
            (&["--dryrun"], "sets --dryrun"),
            (&["--image-format=oci", "version"], "not a flag"),
            (&["--", "--destination=x"], "not a flag"),
            (&["---destination=x"], "not a flag"),
            (&["--snapshot-mode"], "needs a value"),
            (&["--single-snapshot=yes"], "true or false"),
            (&["--xyz=1"], "not a flag of the kaniko executor"),
            (&["-x"], "not a flag of the kaniko executor"),
        ] {
            let err = check(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
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
        let destinations = [crate::kaniko::reference::parse("registry.local/team/app:1").unwrap()];
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
}
