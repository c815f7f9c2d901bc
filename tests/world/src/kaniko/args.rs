//! The kaniko executor's command line as osscontainertools/kaniko v1.28.3 reads it
//! (cmd/executor/cmd/root.go), through cobra v1.10.2 and pflag v1.0.10: `--flag=value`,
//! `--flag value` (the next argument, even one starting with `-`), `-xVALUE`, `-x=VALUE`,
//! `-x VALUE`; switches as `--flag` or `--flag=<Go bool>`; `--` ends the flags. Values of
//! bool, int and duration flags are checked as pflag checks them; an unknown flag or a bad
//! value is an error worded like cobra's. The executor has subcommands (version, push,
//! login), so cobra takes a positional argument for a command name: an unknown one is an
//! error, a real one is not simulated.

/// The executor's flags of v1.28.3 that take a string value (repeatable ones included).
const VALUE_FLAGS: &[&str] = &[
    "verbosity",
    "log-format",
    "dockerfile",
    "context",
    "context-sub-path",
    "bucket",
    "destination",
    "snapshot-mode",
    "custom-platform",
    "build-arg",
    "kaniko-dir",
    "tar-path",
    "target",
    "cache-repo",
    "cache-dir",
    "digest-file",
    "image-name-with-digest-file",
    "image-name-tag-with-digest-file",
    "oci-layout-path",
    "compression",
    "image-format",
    "label",
    "git",
    "ignore-path",
    "annotation",
    "secret",
    "insecure-registry",
    "skip-tls-verify-registry",
    "registry-certificate",
    "registry-client-cert",
    "registry-map",
    "registry-mirror",
    "credential-helpers",
    "snapshotMode",
    "customPlatform",
    "tarPath",
];

/// Its int flags (pflag's `IntVar`: Go's `strconv.ParseInt(s, 0, 64)`).
const INT_FLAGS: &[&str] = &["image-fs-extract-retry", "compression-level", "push-retry", "image-download-retry"];

/// Its duration flags (pflag's `DurationVar`: Go's `time.ParseDuration`).
const DURATION_FLAGS: &[&str] = &["cache-ttl"];

/// Its switches, with cobra's `help`.
const BOOL_FLAGS: &[&str] = &[
    "log-timestamp",
    "force",
    "single-snapshot",
    "reproducible",
    "no-push",
    "no-push-cache",
    "cache",
    "compressed-caching",
    "pre-cleanup",
    "cleanup",
    "ignore-var-run",
    "use-new-run",
    "cache-copy-layers",
    "cache-run-layers",
    "skip-push-permission-check",
    "preserve-context",
    "materialize",
    "dryrun",
    "insecure",
    "skip-tls-verify",
    "insecure-pull",
    "skip-tls-verify-pull",
    "push-ignore-immutable-tag-errors",
    "skip-default-registry-fallback",
    "force-build-metadata",
    "skip-unused-stages",
    "whitelist-var-run",
    "help",
];

/// Shorthands: `-v`, `-f`, `-c`, `-b`, `-d`, and cobra's `-h`.
fn long_name(shorthand: char) -> Option<&'static str> {
    Some(match shorthand {
        'v' => "verbosity",
        'f' => "dockerfile",
        'c' => "context",
        'b' => "bucket",
        'd' => "destination",
        'h' => "help",
        _ => return None,
    })
}

/// The executor's subcommands (and cobra's own).
const SUBCOMMANDS: &[&str] = &["version", "push", "login", "help", "completion"];

/// The parsed flags that change what the simulated executor does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// `--context` (default `/workspace/`).
    pub context: String,
    /// `--bucket`: replaces the context (`gs://` when it names no scheme).
    pub bucket: String,
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
    /// `--target`, a string slice: every use adds its comma-separated stages; the first
    /// is the one built and pushed.
    pub targets: Vec<String>,
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
    /// `--no-push`.
    pub no_push: bool,
    /// `--no-push-cache`.
    pub no_push_cache: bool,
    /// `--dryrun`.
    pub dryrun: bool,
    /// `--verbosity` (default `info`).
    pub verbosity: String,
    /// `--log-format` (default `color`).
    pub log_format: String,
    /// `--insecure`.
    pub insecure: bool,
    /// `--skip-tls-verify`.
    pub skip_tls_verify: bool,
}

/// What cobra does with a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the executor with these flags.
    Run(Box<Args>),
    /// `--help`/`-h`: print the usage and exit 0.
    Help,
    /// Print `Error: <message>` (and the usage when `usage`) and exit 1.
    Fail { message: String, usage: bool },
}

/// Parses the executor's arguments (without the program name) as cobra does: first the
/// command lookup (`Command.Find`), then the flags.
pub fn parse(argv: &[String]) -> Command {
    if let Some(word) = command_words(argv).first() {
        let message = if SUBCOMMANDS.contains(&word.as_str()) {
            format!("the world does not simulate the executor's {word:?} command")
        } else {
            format!("unknown command {word:?} for \"executor\"")
        };
        return Command::Fail { message, usage: false };
    }
    match parse_flags(argv) {
        Ok(Some(args)) => Command::Run(Box::new(args)),
        Ok(None) => Command::Help,
        Err(message) => Command::Fail { message, usage: true },
    }
}

/// The positional words cobra's `stripFlags` finds before `--`: a `--flag` or `-x` without
/// `=` that is not a switch hides the word after it.
fn command_words(argv: &[String]) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = argv;
    while let Some((arg, tail)) = rest.split_first() {
        rest = tail;
        if arg == "--" {
            break;
        }
        let long_value = arg.strip_prefix("--").is_some_and(|n| !n.contains('=') && !BOOL_FLAGS.contains(&n));
        let short_value = arg.len() == 2
            && arg.starts_with('-')
            && !arg.contains('=')
            && long_name(arg.chars().nth(1).unwrap_or_default()) != Some("help");
        if long_value || short_value {
            if rest.len() <= 1 {
                break;
            }
            rest = &rest[1..];
        } else if !arg.is_empty() && !arg.starts_with('-') {
            words.push(arg.clone());
        }
    }
    words
}

/// pflag's `parseArgs`; `Ok(None)` for help.
fn parse_flags(argv: &[String]) -> Result<Option<Args>, String> {
    let mut args = Args {
        context: "/workspace/".into(),
        dockerfile: "Dockerfile".into(),
        verbosity: "info".into(),
        log_format: "color".into(),
        ..Default::default()
    };
    let mut help = false;
    let mut targets_set = false;
    let mut queue = argv.iter();
    while let Some(arg) = queue.next() {
        if arg == "--" {
            break;
        }
        let (name, value) = if let Some(long) = arg.strip_prefix("--") {
            if long.is_empty() || long.starts_with(['-', '=']) {
                return Err(format!("bad flag syntax: {arg}"));
            }
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            if !is_flag(name) {
                return Err(format!("unknown flag: --{name}"));
            }
            let value = match inline {
                Some(v) => v,
                None if BOOL_FLAGS.contains(&name) => "true".into(),
                None => queue.next().cloned().ok_or_else(|| format!("flag needs an argument: --{name}"))?,
            };
            (name.to_string(), value)
        } else if arg.len() > 1 && arg.starts_with('-') {
            let letters = &arg[1..];
            let letter = letters.chars().next().unwrap_or_default();
            let name = long_name(letter).ok_or_else(|| format!("unknown shorthand flag: {letter:?} in {arg}"))?;
            let tail = &letters[letter.len_utf8()..];
            let value = if name == "help" {
                // -h takes no value; letters after it would be more shorthands.
                if let Some(next) = tail.chars().next().filter(|c| long_name(*c).is_none()) {
                    return Err(format!("unknown shorthand flag: {next:?} in {arg}"));
                }
                "true".to_string()
            } else if let Some(v) = tail.strip_prefix('=') {
                v.to_string()
            } else if !tail.is_empty() {
                tail.to_string()
            } else {
                queue.next().cloned().ok_or_else(|| format!("flag needs an argument: {letter:?} in {arg}"))?
            };
            (name.to_string(), value)
        } else {
            // A positional argument; cobra has already looked at these.
            continue;
        };
        let invalid = |why: String| {
            let shown = match name.as_str() {
                "verbosity" | "dockerfile" | "context" | "bucket" | "destination" => {
                    format!("-{}, --{name}", name_shorthand(&name))
                }
                _ => format!("--{name}"),
            };
            format!("invalid argument {value:?} for {shown:?} flag: {why}")
        };
        if BOOL_FLAGS.contains(&name.as_str()) {
            let on = go_bool(&value)
                .ok_or_else(|| invalid(format!("strconv.ParseBool: parsing {value:?}: invalid syntax")))?;
            match name.as_str() {
                "cache" => args.cache = on,
                "no-push" => args.no_push = on,
                "no-push-cache" => args.no_push_cache = on,
                "dryrun" => args.dryrun = on,
                "insecure" => args.insecure = on,
                "skip-tls-verify" => args.skip_tls_verify = on,
                "help" => help = on,
                _ => {}
            }
            continue;
        }
        if INT_FLAGS.contains(&name.as_str()) && go_int(&value).is_none() {
            return Err(invalid(format!("strconv.ParseInt: parsing {value:?}: invalid syntax")));
        }
        if DURATION_FLAGS.contains(&name.as_str()) {
            go_duration(&value).map_err(invalid)?;
        }
        match name.as_str() {
            "context" => args.context = value,
            "bucket" => args.bucket = value,
            "context-sub-path" => args.context_sub_path = value,
            "dockerfile" => args.dockerfile = value,
            "destination" => args.destinations.push(value),
            "build-arg" => args.build_args.push(value),
            "label" => args.labels.push(value),
            "target" => {
                // pflag's StringSlice: the first use replaces the default, later ones add.
                let stages = value.split(',').filter(|s| !s.is_empty()).map(str::to_string);
                if !targets_set {
                    args.targets.clear();
                    targets_set = true;
                }
                args.targets.extend(stages);
            }
            "digest-file" => args.digest_file = Some(value),
            "image-name-with-digest-file" => args.image_name_with_digest_file = Some(value),
            "image-name-tag-with-digest-file" => args.image_name_tag_with_digest_file = Some(value),
            "cache-repo" => args.cache_repo = Some(value),
            "verbosity" => args.verbosity = value,
            "log-format" => args.log_format = value,
            _ => {}
        }
    }
    Ok((!help).then_some(args))
}

fn is_flag(name: &str) -> bool {
    [VALUE_FLAGS, INT_FLAGS, DURATION_FLAGS, BOOL_FLAGS].iter().any(|list| list.contains(&name))
}

fn name_shorthand(name: &str) -> char {
    "vfcbd".chars().find(|c| long_name(*c) == Some(name)).unwrap_or('?')
}

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Option<bool> {
    if ["1", "t", "T", "TRUE", "true", "True"].contains(&text) {
        Some(true)
    } else if ["0", "f", "F", "FALSE", "false", "False"].contains(&text) {
        Some(false)
    } else {
        None
    }
}

/// Go's `strconv.ParseInt(text, 0, 64)` for the forms kaniko's flags meet: an optional
/// sign, then decimal, `0x` hex, `0o`/`0` octal or `0b` binary digits, `_` between digits.
fn go_int(text: &str) -> Option<i64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (radix, digits) = match unsigned.get(..2) {
        Some("0x" | "0X") => (16, &unsigned[2..]),
        Some("0b" | "0B") => (2, &unsigned[2..]),
        Some("0o" | "0O") => (8, &unsigned[2..]),
        _ if unsigned.len() > 1 && unsigned.starts_with('0') => (8, &unsigned[1..]),
        _ => (10, unsigned),
    };
    let digits = digits.replace('_', "");
    let magnitude = i128::from_str_radix(&digits, radix).ok().filter(|_| !digits.starts_with(['+', '-']))?;
    let value = if text.starts_with('-') { -magnitude } else { magnitude };
    i64::try_from(value).ok()
}

/// Go's `time.ParseDuration` (go/src/time/format.go): accepts the same texts; the error is
/// Go's. The value itself is not needed by the world.
fn go_duration(text: &str) -> Result<(), String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    if body == "0" {
        return Ok(());
    }
    if body.is_empty() {
        return Err(invalid());
    }
    let bytes = body.as_bytes();
    let mut at = 0;
    let mut nanos: u128 = 0;
    while at < bytes.len() {
        let number_start = at;
        let whole_end = at + bytes[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        let mut number_end = whole_end;
        if bytes.get(whole_end) == Some(&b'.') {
            number_end = whole_end + 1 + bytes[whole_end + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        }
        let fraction = body.get(whole_end + 1..number_end).unwrap_or_default();
        if whole_end == number_start && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_end =
            number_end + bytes[number_end..].iter().take_while(|b| **b != b'.' && !b.is_ascii_digit()).count();
        let unit = &body[number_end..unit_end];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {text:?}"));
        }
        let per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        let mut term: u128 = 0;
        for digit in body[number_start..whole_end].bytes() {
            term = term * 10 + u128::from(digit - b'0');
            if term > 1 << 63 {
                return Err(invalid());
            }
        }
        term *= per_unit;
        // As Go: up to 19 fraction digits count, in floating point.
        let kept = &fraction[..fraction.len().min(19)];
        if let Ok(numerator) = kept.parse::<u64>() {
            term += (numerator as f64 * (per_unit as f64 / 10f64.powi(kept.len() as i32))) as u128;
        }
        nanos += term;
        if term > 1 << 63 || nanos > 1 << 63 {
            return Err(invalid());
        }
        at = unit_end;
    }
    if nanos == 1 << 63 && !text.starts_with('-') {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn run(a: &[&str]) -> Args {
        match parse(&argv(a)) {
            Command::Run(args) => *args,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    fn fail(a: &[&str]) -> String {
        match parse(&argv(a)) {
            Command::Fail { message, .. } => message,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    #[test]
    fn both_forms_shorthands_and_repeats() {
        let a = run(&[
            "--context=s3://b/k.tar.gz",
            "--dockerfile",
            "sub/Dockerfile",
            "--destination=r/a:1",
            "-d",
            "r/a:2",
            "-dr/a:3",
            "-d=r/a:4",
            "--build-arg",
            "A=1",
            "--cache",
            "--no-push=false",
            "--target=first,second",
            "--target=third",
            "--snapshot-mode=redo",
            "--ignore-path",
            "--not-a-flag-but-a-value",
        ]);
        assert_eq!(a.context, "s3://b/k.tar.gz");
        assert_eq!(a.dockerfile, "sub/Dockerfile");
        assert_eq!(a.destinations, ["r/a:1", "r/a:2", "r/a:3", "r/a:4"]);
        assert_eq!(a.build_args, ["A=1"]);
        assert!(a.cache && !a.no_push);
        assert_eq!(a.targets, ["first", "second", "third"], "a string slice keeps every --target");
        assert_eq!(run(&["-bmy-bucket", "-cdir:///x"]).bucket, "my-bucket");
    }

    #[test]
    fn the_real_executor_flags_of_v1_28_3_are_accepted() {
        let a = run(&[
            "--image-format=oci",
            "--dryrun",
            "--pre-cleanup",
            "--bucket=s3://b/k",
            "--log-timestamp",
            "--whitelist-var-run=false",
            "--snapshotMode=full",
            "--compression-level=0x3",
            "--push-retry",
            "2",
            "--cache-ttl=1h30m",
        ]);
        assert!(a.dryrun);
        assert_eq!(a.bucket, "s3://b/k");
    }

    #[test]
    fn errors_are_cobra_s() {
        assert_eq!(fail(&["--xyz=1"]), "unknown flag: --xyz");
        assert_eq!(fail(&["--destination"]), "flag needs an argument: --destination");
        assert_eq!(fail(&["-x"]), "unknown shorthand flag: 'x' in -x");
        assert_eq!(fail(&["---x"]), "bad flag syntax: ---x");
        assert_eq!(fail(&["--context=x", "build"]), "unknown command \"build\" for \"executor\"");
        assert!(fail(&["version"]).contains("does not simulate"));
        assert_eq!(
            fail(&["--cache=yes"]),
            "invalid argument \"yes\" for \"--cache\" flag: strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
        assert_eq!(
            fail(&["--cache-ttl=1..5h"]),
            "invalid argument \"1..5h\" for \"--cache-ttl\" flag: time: missing unit in duration \"1..5h\""
        );
        assert!(fail(&["--push-retry=two"]).contains("strconv.ParseInt"));
        // A value hides the word after a flag from the command lookup.
        assert_eq!(run(&["--label", "build"]).labels, ["build"]);
        // Positional arguments after "--" are ignored.
        assert_eq!(run(&["--", "anything"]).context, "/workspace/");
        assert_eq!(parse(&argv(&["--context=x", "-h"])), Command::Help);
    }

    #[test]
    fn durations_as_go_parses_them() {
        for ok in ["336h", "1.5h", ".5h", "1.h", "0", "-1h", "+2m", "9223372036854775807ns", "3\u{b5}s"] {
            assert_eq!(go_duration(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".h", "1..5h", "1.2.3h", "10", "1d", "h", "9223372036854775808ns", "3000000h", "1h 2m"] {
            assert!(go_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(go_int("0x10"), Some(16));
        assert_eq!(go_int("-010"), Some(-8));
        assert_eq!(go_int("1_000"), Some(1000));
        assert_eq!(go_int("1.5"), None);
    }
}
