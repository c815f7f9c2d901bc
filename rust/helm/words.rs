//! The `arguments` input: split like a POSIX shell would (quotes and
//! backslashes), never run through one, then read as helm reads it (spf13/pflag:
//! `--flag value`, `--flag=value`, bundled shorthands `-in ns`, `-nns`, `-n=ns`,
//! `--` ending the flags) and checked flag by flag against the flags of
//! `helm upgrade` in Helm 3 and Helm 4.

/// Extra arguments that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("unterminated {0} quote")]
    Unterminated(&'static str),
    #[error("{flag} is not allowed: {reason}")]
    Refused { flag: String, reason: &'static str },
    #[error("{0} is not a flag of helm upgrade")]
    Unknown(String),
    #[error("{0} needs a value")]
    NoValue(String),
    #[error("word {position}{after} is not a flag: the release and the chart come from their inputs")]
    Positional { position: usize, after: String },
}

/// How a flag takes its value (pflag: a bool flag, and a flag with
/// `NoOptDefVal`, never take the next word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// `--flag`, or `--flag=false`.
    Nothing,
    /// `--flag value` or `--flag=value`.
    Value,
    /// `--flag` alone, or `--flag=value`; never the next word.
    OptionalValue,
}

/// A flag of `helm upgrade` (its own and helm's global ones) in Helm 3.17
/// or Helm 4.1, as helm registers it (cmd/helm/upgrade.go,
/// pkg/cmd/upgrade.go, pkg/cmd/flags.go, pkg/cli/environment.go).
struct Flag {
    name: &'static str,
    short: Option<char>,
    takes: Takes,
    /// Why the task refuses it, if it does.
    refused: Option<&'static str>,
}

const KUBECONFIG: &str = "the task uses its own private kubeconfig";
const CLUSTER: &str = "the task's kubeconfig names the cluster";
const IDENTITY: &str = "the task's kubeconfig provides the identity the task checked";
const NAMESPACE: &str = "use the namespace input";
const PRINTS: &str = "it prints the release's values and rendered manifest (Secrets included) to the log";
const PRIVATE: &str = "helm's configuration and caches stay private to the step";
const RUNS: &str = "it runs a program or plugin from the agent on the rendered manifest (Secrets included)";

const fn flag(name: &'static str, takes: Takes) -> Flag {
    Flag { name, short: None, takes, refused: None }
}

const fn short(name: &'static str, short: char, takes: Takes) -> Flag {
    Flag { name, short: Some(short), takes, refused: None }
}

const fn refused(name: &'static str, short: Option<char>, takes: Takes, reason: &'static str) -> Flag {
    Flag { name, short, takes, refused: Some(reason) }
}

use Takes::{Nothing, OptionalValue, Value};

const FLAGS: &[Flag] = &[
    // helm upgrade's own flags.
    flag("atomic", Nothing),
    flag("ca-file", Value),
    flag("cert-file", Value),
    flag("cleanup-on-fail", Nothing),
    flag("create-namespace", Nothing),
    flag("dependency-update", Nothing),
    flag("description", Value),
    flag("devel", Nothing),
    flag("disable-openapi-validation", Nothing),
    refused("dry-run", None, OptionalValue, "it deploys nothing and prints the rendered manifest (Secrets included)"),
    flag("enable-dns", Nothing),
    flag("force", Nothing),
    flag("force-conflicts", Nothing),
    flag("force-replace", Nothing),
    refused("help", Some('h'), Nothing, "it prints help instead of deploying"),
    flag("hide-notes", Nothing),
    flag("hide-secret", Nothing),
    flag("history-max", Value),
    flag("insecure-skip-tls-verify", Nothing),
    short("install", 'i', Nothing),
    flag("key-file", Value),
    flag("keyring", Value),
    short("labels", 'l', Value),
    flag("no-hooks", Nothing),
    refused("output", Some('o'), Value, PRINTS),
    flag("pass-credentials", Nothing),
    refused("password", None, Value, "use the helmRepoPassword input, which reaches helm through stdin"),
    flag("plain-http", Nothing),
    refused("post-renderer", None, Value, RUNS),
    refused("post-renderer-args", None, Value, RUNS),
    flag("recreate-pods", Nothing),
    flag("render-subchart-notes", Nothing),
    flag("repo", Value),
    flag("reset-then-reuse-values", Nothing),
    flag("reset-values", Nothing),
    flag("reuse-values", Nothing),
    flag("rollback-on-failure", Nothing),
    flag("server-side", Value),
    flag("set", Value),
    flag("set-file", Value),
    flag("set-json", Value),
    flag("set-literal", Value),
    flag("set-string", Value),
    flag("skip-crds", Nothing),
    flag("skip-schema-validation", Nothing),
    flag("take-ownership", Nothing),
    flag("timeout", Value),
    flag("username", Value),
    short("values", 'f', Value),
    flag("verify", Nothing),
    flag("version", Value),
    // A bool in Helm 3; a strategy with a default (`--wait` alone) in Helm 4.
    flag("wait", OptionalValue),
    flag("wait-for-jobs", Nothing),
    // helm's global flags.
    flag("burst-limit", Value),
    flag("color", Value),
    flag("colour", Value),
    refused("content-cache", None, Value, PRIVATE),
    refused("debug", None, Nothing, PRINTS),
    refused("kube-apiserver", None, Value, CLUSTER),
    refused("kube-as-group", None, Value, IDENTITY),
    refused("kube-as-user", None, Value, IDENTITY),
    refused("kube-ca-file", None, Value, "the task's kubeconfig holds the cluster's CA"),
    refused("kube-context", None, Value, KUBECONFIG),
    refused("kube-insecure-skip-tls-verify", None, Nothing, "the task verifies the cluster's certificate"),
    refused("kube-tls-server-name", None, Value, CLUSTER),
    refused("kube-token", None, Value, IDENTITY),
    refused("kubeconfig", None, Value, KUBECONFIG),
    refused("namespace", Some('n'), Value, NAMESPACE),
    flag("qps", Value),
    refused("registry-config", None, Value, PRIVATE),
    refused("repository-cache", None, Value, PRIVATE),
    refused("repository-config", None, Value, PRIVATE),
];

/// Splits `text` into arguments like `sh` would, without expansions.
/// Not `shlex` or `shell-words`: both take a word that starts with `#` for a
/// comment and drop the rest of the line silently, and neither says which
/// quote is left open.
pub fn split(text: &str) -> Result<Vec<String>, Error> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err(Error::Unterminated("single")),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => current.push(c),
                            Some('\n') => {}
                            Some(c) => current.extend(['\\', c]),
                            None => return Err(Error::Unterminated("double")),
                        },
                        Some(c) => current.push(c),
                        None => return Err(Error::Unterminated("double")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// Reads `args` as pflag reads them and refuses, with the reason, any flag
/// that would take helm to another cluster, context, identity or namespace,
/// print values or manifests, load a post-renderer or move helm's
/// configuration out of the step's private directory; also flags helm does
/// not know and words that are not flags (helm would take them for the
/// release or the chart).
pub fn check(args: &[String]) -> Result<(), Error> {
    let mut words = args.iter().enumerate();
    while let Some((index, word)) = words.next() {
        let position = index + 1;
        let positional = || {
            let after = index.checked_sub(1).map(|i| &args[i]).filter(|w| w.starts_with('-'));
            Error::Positional {
                position,
                after: after.map(|w| format!(" (after {})", flag_part(w))).unwrap_or_default(),
            }
        };
        if word == "--" || !word.starts_with('-') || word.len() == 1 {
            return Err(positional());
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            let flag = long_flag(name).ok_or_else(|| Error::Unknown(format!("--{name}")))?;
            refuse(flag)?;
            if flag.takes == Value && !inline && words.next().is_none() {
                return Err(Error::NoValue(format!("--{name}")));
            }
            continue;
        }
        // Shorthands, bundled as pflag allows: `-in ns` is `-i -n ns`.
        let mut shorthands = word[1..].chars();
        while let Some(c) = shorthands.next() {
            let flag = FLAGS.iter().find(|f| f.short == Some(c)).ok_or_else(|| Error::Unknown(format!("-{c}")))?;
            refuse(flag)?;
            let rest = shorthands.as_str();
            if rest.starts_with('=') || (flag.takes == Value && !rest.is_empty()) {
                break; // `-n=ns`, `-nns`: the rest is the value.
            }
            if flag.takes == Value && words.next().is_none() {
                return Err(Error::NoValue(format!("-{c}")));
            }
        }
    }
    Ok(())
}

fn long_flag(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name)
}

fn refuse(flag: &Flag) -> Result<(), Error> {
    match flag.refused {
        Some(reason) => Err(Error::Refused { flag: format!("--{}", flag.name), reason }),
        None => Ok(()),
    }
}

/// The flag of `--flag=value`, without the value.
fn flag_part(word: &str) -> &str {
    word.split_once('=').map_or(word, |(flag, _)| flag)
}

/// The flags whose values are chart values (and may be secrets).
const VALUE_FLAGS: &[&str] = &["--set", "--set-string", "--set-json", "--set-literal", "--set-file"];

/// Flags whose whole value is a secret (refused, but shown in the inputs
/// group before the check).
const SECRET_FLAGS: &[&str] = &["--password", "--kube-token"];

/// A command line as shown in the log: the values of `--set` and its
/// siblings reduced to their keys (`--set password=…`), whatever their
/// encoding, so no value reaches the log or an error in any form; the
/// values of [`SECRET_FLAGS`] not at all.
pub fn shown(args: &[String]) -> String {
    let hidden = |flag: &str| VALUE_FLAGS.contains(&flag) || SECRET_FLAGS.contains(&flag);
    let mut out = Vec::with_capacity(args.len());
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.split_once('=') {
            Some((flag, value)) if hidden(flag) => out.push(format!("{flag}={}", keys_of(flag, value))),
            _ if hidden(word) => {
                out.push(word.clone());
                out.extend(words.next().map(|value| keys_of(word, value)));
            }
            _ => out.push(word.clone()),
        }
    }
    out.join(" ")
}

/// `--set-literal` takes one key and the whole rest as its value; a secret
/// flag's value has no key.
fn keys_of(flag: &str, value: &str) -> String {
    if SECRET_FLAGS.contains(&flag) {
        return "…".into();
    }
    if flag == "--set-literal" {
        let key = value.split_once('=').map_or("", |(key, _)| key);
        return keys_only(&format!("{key}="));
    }
    keys_only(value)
}

/// `a=1,b.c={x,y}` → `a=…,b.c=…`. Pairs are split at commas outside
/// braces, brackets and quotes (strvals and JSON); a part whose key is not
/// plainly a key is shown as `…`, never as text.
pub fn keys_only(value: &str) -> String {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0i32, false, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '{' | '[' if !quoted => depth += 1,
            '}' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth <= 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    let key = |part: &str| match part.split_once('=') {
        Some((key, _)) if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "._-[]/".contains(c)) => {
            format!("{key}=…")
        }
        _ => "…".to_string(),
    };
    parts.into_iter().map(key).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        split(text).unwrap()
    }

    #[test]
    fn splitting_table() {
        assert_eq!(words("--a b  c"), ["--a", "b", "c"]);
        assert_eq!(words("--description 'two words'"), ["--description", "two words"]);
        assert_eq!(words(r#"--set-json "a={\"b\":1}""#), ["--set-json", r#"a={"b":1}"#]);
        assert_eq!(words(r"one\ word"), ["one word"]);
        assert_eq!(words("''"), [""]);
        assert_eq!(words("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(words("$HOME `x` ;|&"), ["$HOME", "`x`", ";|&"]);
        assert_eq!(words(" \n\t"), Vec::<String>::new());
        assert_eq!(split("'open"), Err(Error::Unterminated("single")));
        assert_eq!(split("\"open"), Err(Error::Unterminated("double")));
    }

    #[test]
    fn refusal_table() {
        let refused = |text: &str| check(&words(text)).unwrap_err().to_string();
        let table = [
            ("--kubeconfig /home/me/.kube/config", "--kubeconfig is not allowed: the task uses its own private"),
            ("--kube-context=prod", "--kube-context is not allowed"),
            ("--kube-token x", "--kube-token is not allowed: the task's kubeconfig provides the identity"),
            ("--kube-apiserver https://x", "--kube-apiserver"),
            ("--kube-ca-file ca", "--kube-ca-file"),
            ("--kube-as-user admin", "--kube-as-user"),
            ("--kube-as-group=system:masters", "--kube-as-group"),
            ("--kube-insecure-skip-tls-verify", "--kube-insecure-skip-tls-verify"),
            ("-n other", "--namespace is not allowed: use the namespace input"),
            ("-nother", "--namespace is not allowed"),
            ("-n=other", "--namespace is not allowed"),
            ("--namespace=other", "--namespace is not allowed"),
            // Bundled shorthands: -i is --install, then -n / -o.
            ("-in kube-system", "--namespace is not allowed"),
            ("-io json", "--output is not allowed: it prints the release's values"),
            ("-ion", "--output is not allowed"),
            ("--password hunter2", "through stdin"),
            ("-o json", "--output is not allowed"),
            ("--output=yaml", "--output is not allowed"),
            ("--debug", "--debug is not allowed: it prints"),
            ("--debug=true", "--debug is not allowed"),
            ("--dry-run", "--dry-run is not allowed"),
            ("--dry-run=server", "--dry-run is not allowed"),
            ("--post-renderer ./kustomize.sh", "--post-renderer is not allowed: it runs a program"),
            ("--post-renderer-args x", "--post-renderer-args is not allowed"),
            (
                "--repository-config /shared/repositories.yaml",
                "--repository-config is not allowed: helm's configuration",
            ),
            ("--registry-config=/shared/config.json", "--registry-config is not allowed"),
            ("--repository-cache /shared", "--repository-cache is not allowed"),
            ("--content-cache /shared", "--content-cache is not allowed"),
            ("-h", "--help is not allowed"),
            ("-ih", "--help is not allowed"),
            // Not flags of helm upgrade, or not flags at all.
            ("--kube-contxt prod", "--kube-contxt is not a flag of helm upgrade"),
            ("-x", "-x is not a flag of helm upgrade"),
            ("-iz", "-z is not a flag of helm upgrade"),
            ("other-release ./chart", "word 1 is not a flag"),
            ("--force kube-system", "word 2 (after --force) is not a flag"),
            ("--set a=1 b=s3cret", "word 3 is not a flag"),
            ("-- --namespace", "word 1 is not a flag"),
            ("--description", "--description needs a value"),
            ("-f", "-f needs a value"),
        ];
        for (text, expected) in table {
            let message = refused(text);
            assert!(message.contains(expected), "{text}: {message}");
            assert!(!message.contains("s3cret") && !message.contains("hunter2"), "{message}");
        }
        for ok in [
            "--force",
            "--description 'x y'",
            "--description --namespace",
            "--history-max 5",
            "--no-hooks",
            "--set a=b",
            "--server-side=false",
            "--server-side true",
            "-i",
            "-f values.yaml -l team=web",
            "-fvalues.yaml",
            "--wait",
            "--wait=watcher",
            "--atomic=true",
            "--version -1.0",
            "",
        ] {
            assert_eq!(check(&words(ok)), Ok(()), "{ok}");
        }
    }

    #[test]
    fn shown_command_lines_keep_keys_and_drop_values() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let line = shown(&args(&[
            "upgrade",
            "web",
            "--set",
            "password=p@ss\\,w0rd",
            "--set-string=token=abc,user.name=bob",
            "--set-json",
            r#"cfg={"a":"x,y","b":[1,2]},n=3"#,
            "--set-json",
            r#"{"pw":"x"}"#,
            "--set-literal",
            "raw=a,b=c",
            "--set-file",
            "cert=./c.pem",
            "--description",
            "keep me",
        ]));
        assert_eq!(
            line,
            "upgrade web --set password=… --set-string=token=…,user.name=… --set-json cfg=…,n=… --set-json … \
             --set-literal raw=… --set-file cert=… --description keep me"
        );
        for secret in ["p@ss", "w0rd", "abc", "bob", "x,y", "\"pw\"", "a,b", "b=c"] {
            assert!(!line.contains(secret), "{secret}: {line}");
        }
        assert_eq!(shown(&args(&["--password", "hunter2", "--kube-token=t0k"])), "--password … --kube-token=…");
        assert_eq!(keys_only("a=1,{x=2"), "a=…,…");
        assert_eq!(keys_only("noequals"), "…");
    }
}
