//! The kaniko executor's command line, parsed the way cobra/pflag parse it: `--flag=value`
//! and `--flag value` for value flags, `--flag` or `--flag=true|false` for booleans, the
//! short forms `-c`, `-f`, `-d`, `-v`; an unknown flag is an error worded like cobra's.

/// Value flags of the executor (osscontainertools/kaniko cmd/executor/cmd/root.go).
const VALUE_FLAGS: &[&str] = &[
    "context",
    "context-sub-path",
    "dockerfile",
    "destination",
    "build-arg",
    "label",
    "annotation",
    "target",
    "digest-file",
    "image-name-with-digest-file",
    "image-name-tag-with-digest-file",
    "cache-repo",
    "cache-dir",
    "cache-ttl",
    "snapshot-mode",
    "push-retry",
    "image-download-retry",
    "image-fs-extract-retry",
    "registry-mirror",
    "registry-map",
    "registry-certificate",
    "registry-client-cert",
    "insecure-registry",
    "skip-tls-verify-registry",
    "verbosity",
    "log-format",
    "custom-platform",
    "kaniko-dir",
    "ignore-path",
    "oci-layout-path",
    "tar-path",
    "git",
    "secret",
    "credential-helpers",
    "compression",
    "compression-level",
];

/// Boolean flags of the executor.
const BOOL_FLAGS: &[&str] = &[
    "cache",
    "cache-run-layers",
    "cache-copy-layers",
    "compressed-caching",
    "no-push",
    "no-push-cache",
    "insecure",
    "insecure-pull",
    "skip-tls-verify",
    "skip-tls-verify-pull",
    "skip-push-permission-check",
    "push-ignore-immutable-tag-errors",
    "reproducible",
    "single-snapshot",
    "skip-unused-stages",
    "use-new-run",
    "cleanup",
    "force",
    "ignore-var-run",
    "log-timestamp",
    "preserve-context",
    "materialize",
    "skip-default-registry-fallback",
    "help",
];

/// The parsed flags that change what the simulated executor does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// `--context` (kaniko's default is `dir:///workspace`).
    pub context: String,
    /// `--context-sub-path`.
    pub context_sub_path: String,
    /// `--dockerfile` (default `Dockerfile`).
    pub dockerfile: String,
    /// Every `--destination`.
    pub destinations: Vec<String>,
    /// Every `--build-arg` (`NAME=value`, or a bare `NAME` read from the environment).
    pub build_args: Vec<String>,
    /// Every `--label`.
    pub labels: Vec<String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--digest-file`.
    pub digest_file: Option<String>,
    /// `--image-name-with-digest-file`.
    pub image_name_with_digest_file: Option<String>,
    /// `--image-name-tag-with-digest-file`.
    pub image_name_tag_with_digest_file: Option<String>,
    /// `--cache`.
    pub cache: bool,
    /// `--cache-repo`.
    pub cache_repo: Option<String>,
    /// `--cache-ttl`.
    pub cache_ttl: Option<String>,
    /// `--no-push`.
    pub no_push: bool,
    /// `--verbosity` (default `info`).
    pub verbosity: String,
    /// `--log-format` (default `color`).
    pub log_format: String,
    /// `--insecure`.
    pub insecure: bool,
    /// `--skip-tls-verify`.
    pub skip_tls_verify: bool,
}

/// Parses the executor's arguments (without the program name). The error is what cobra
/// prints first (`unknown flag: --xyz`).
pub fn parse(argv: &[String]) -> Result<Args, String> {
    let mut args = Args {
        context: "dir:///workspace/".into(),
        dockerfile: "Dockerfile".into(),
        verbosity: "info".into(),
        log_format: "color".into(),
        ..Default::default()
    };
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        let (name, inline) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            }
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let (letter, rest) = short.split_at(1);
            let long = match letter {
                "c" => "context",
                "f" => "dockerfile",
                "d" => "destination",
                "v" => "verbosity",
                "h" => "help",
                _ => return Err(format!("unknown shorthand flag: '{letter}' in {arg}")),
            };
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            (long.to_string(), (!rest.is_empty()).then(|| rest.to_string()))
        } else {
            // The executor takes no positional arguments; cobra ignores them for it.
            continue;
        };
        if BOOL_FLAGS.contains(&name.as_str()) {
            let value = match inline.as_deref() {
                None | Some("true") | Some("1") | Some("t") | Some("TRUE") | Some("True") => true,
                Some("false") | Some("0") | Some("f") | Some("FALSE") | Some("False") => false,
                Some(other) => {
                    return Err(format!(
                        "invalid argument \"{other}\" for \"--{name}\" flag: strconv.ParseBool: parsing \"{other}\": invalid syntax"
                    ));
                }
            };
            match name.as_str() {
                "cache" => args.cache = value,
                "no-push" => args.no_push = value,
                "insecure" => args.insecure = value,
                "skip-tls-verify" => args.skip_tls_verify = value,
                _ => {}
            }
            continue;
        }
        if !VALUE_FLAGS.contains(&name.as_str()) {
            return Err(format!("unknown flag: --{name}"));
        }
        let value = match inline {
            Some(v) => v,
            None => match argv.get(i) {
                Some(v) => {
                    i += 1;
                    v.clone()
                }
                None => return Err(format!("flag needs an argument: --{name}")),
            },
        };
        match name.as_str() {
            "context" => args.context = value,
            "context-sub-path" => args.context_sub_path = value,
            "dockerfile" => args.dockerfile = value,
            "destination" => args.destinations.push(value),
            "build-arg" => args.build_args.push(value),
            "label" => args.labels.push(value),
            "target" => args.target = Some(value),
            "digest-file" => args.digest_file = Some(value),
            "image-name-with-digest-file" => args.image_name_with_digest_file = Some(value),
            "image-name-tag-with-digest-file" => args.image_name_tag_with_digest_file = Some(value),
            "cache-repo" => args.cache_repo = Some(value),
            "cache-ttl" => args.cache_ttl = Some(value),
            "verbosity" => args.verbosity = value,
            "log-format" => args.log_format = value,
            _ => {}
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn both_forms_and_repeats() {
        let a = parse(&argv(&[
            "--context=s3://b/k.tar.gz",
            "--dockerfile",
            "sub/Dockerfile",
            "--destination=r/a:1",
            "-d",
            "r/a:2",
            "--build-arg",
            "A=1",
            "--cache",
            "--no-push=false",
            "--target=final",
            "--snapshot-mode=redo",
        ]))
        .expect("parses");
        assert_eq!(a.context, "s3://b/k.tar.gz");
        assert_eq!(a.dockerfile, "sub/Dockerfile");
        assert_eq!(a.destinations, ["r/a:1", "r/a:2"]);
        assert_eq!(a.build_args, ["A=1"]);
        assert!(a.cache && !a.no_push);
        assert_eq!(a.target.as_deref(), Some("final"));
    }

    #[test]
    fn unknown_flags_fail_like_cobra() {
        assert_eq!(parse(&argv(&["--xyz=1"])), Err("unknown flag: --xyz".into()));
        assert_eq!(parse(&argv(&["--destination"])), Err("flag needs an argument: --destination".into()));
    }
}
