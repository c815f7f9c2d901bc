//! The command line: `azp-kube <task> [--input value …]`.
//!
//! Every task.json input is also a flag (kebab case, or its task.json name),
//! so the same code runs from a terminal for local debugging. A flag wins over
//! the `INPUT_*` variable of the same input.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::azp::env::mangle;
use crate::azp::inputs::{InputKind, TaskSpec};
use crate::tasks::inputs::ALL as TASKS;

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Run a task, with inputs given as flags turned into `INPUT_*` variables.
    Task { spec: &'static TaskSpec, inputs: Vec<(String, String)> },
    /// Show or write the build context that KanikoBuild would send.
    #[cfg(feature = "kaniko-build")]
    Context(ContextArgs),
    /// Print an EKS token as a kubectl/helm ExecCredential.
    #[cfg(feature = "multicluster-helm")]
    EksToken(EksTokenArgs),
}

/// `azp-kube eks-token`: the exec credential plugin of the private kubeconfig.
#[cfg(feature = "multicluster-helm")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksTokenArgs {
    pub cluster: String,
    pub region: String,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    /// A private folder where credentials may be cached for their lifetime.
    pub cache_dir: Option<PathBuf>,
}

/// `azp-kube context`: the build context as KanikoBuild packs it.
#[cfg(feature = "kaniko-build")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextArgs {
    pub context: PathBuf,
    /// The Dockerfile, relative to the context.
    pub dockerfile: PathBuf,
    pub use_dockerignore: bool,
    /// List the entries that go into the tar, one per line.
    pub list: bool,
    /// Write the tar.gz here (`-` for standard output).
    pub output: Option<PathBuf>,
    /// Upload the tar.gz as KanikoBuild does: `s3://bucket/prefix/`.
    pub upload: Option<String>,
    pub region: Option<String>,
    pub s3_endpoint: Option<String>,
}

fn command() -> Command {
    let mut command = Command::new("azp-kube")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Azure Pipelines tasks for kaniko builds and multi-cluster Helm deploys")
        .long_about(
            "Runs the tasks of the azp-kube extension. The agent starts it through the task's run.js \
             with inputs in INPUT_* variables; from a terminal, give the same inputs as flags.",
        )
        .subcommand_required(true)
        .arg_required_else_help(true);
    for spec in TASKS {
        command = command.subcommand(task_command(spec));
    }
    // The terminal commands go with the task they serve.
    #[cfg(feature = "kaniko-build")]
    let command = command.subcommand(context_command());
    #[cfg(feature = "multicluster-helm")]
    let command = command.subcommand(eks_token_command());
    command
}

#[cfg(feature = "multicluster-helm")]
fn eks_token_command() -> Command {
    let text = |name: &'static str, help: &'static str| Arg::new(name).long(name).value_name("VALUE").help(help);
    Command::new("eks-token")
        .about("Prints an EKS token as an ExecCredential (the kubeconfig exec plugin of MulticlusterHelm)")
        .long_about(
            "Prints a client.authentication.k8s.io/v1 ExecCredential with a token for an EKS cluster, \
             exactly as `aws eks get-token` makes it: a presigned STS GetCallerIdentity URL signed with \
             the x-k8s-aws-id header. Credentials come from the default AWS chain, then the role if given.",
        )
        .arg(text("cluster", "Name of the EKS cluster").required(true))
        .arg(text("region", "Region of the cluster").required(true))
        .arg(text("role-arn", "Role to assume first"))
        .arg(text("external-id", "External ID for the role (else read from --cache-dir)"))
        .arg(text("session-name", "Session name for the role"))
        .arg(text(
            "cache-dir",
            "Private folder to cache credentials in for their lifetime, where MulticlusterHelm also hands over \
             the base credentials and the external ID (never in an argument list or helm's environment)",
        ))
}

#[cfg(feature = "kaniko-build")]
fn context_command() -> Command {
    Command::new("context")
        .about("Shows or writes the build context that KanikoBuild would send")
        .long_about(
            "Packs a build context as KanikoBuild does: .dockerignore with Docker's rules \
             (<dockerfile>.dockerignore first), the Dockerfile and .dockerignore always included, \
             symlinks kept as symlinks. --list prints one line per entry (directories end in /); \
             --output writes the tar.gz.",
        )
        .arg(Arg::new("context").long("context").value_name("DIR").required(true).help("The build context folder"))
        .arg(
            Arg::new("dockerfile")
                .long("dockerfile")
                .value_name("PATH")
                .default_value("Dockerfile")
                .help("The Dockerfile, relative to the context"),
        )
        .arg(
            Arg::new("no-dockerignore")
                .long("no-dockerignore")
                .action(ArgAction::SetTrue)
                .help("Send everything but the ignore files, ignoring .dockerignore"),
        )
        .arg(Arg::new("list").long("list").action(ArgAction::SetTrue).help("List the entries that go into the tar"))
        .arg(Arg::new("output").long("output").value_name("FILE").help("Write the tar.gz to FILE (- for stdout)"))
        .arg(
            Arg::new("upload")
                .long("upload")
                .value_name("s3://BUCKET/PREFIX/")
                .help("Upload the tar.gz as KanikoBuild does (a new object under a random key)"),
        )
        .arg(Arg::new("region").long("region").value_name("REGION").requires("upload").help("Region of the bucket"))
        .arg(
            Arg::new("s3-endpoint")
                .long("s3-endpoint")
                .value_name("URL")
                .requires("upload")
                .help("Endpoint of an S3-compatible store"),
        )
        .group(clap::ArgGroup::new("what").args(["list", "output", "upload"]).required(true))
}

fn task_command(spec: &'static TaskSpec) -> Command {
    let mut command =
        Command::new(spec.command).about(format!("{}@{}: {}", spec.name, major(spec.version), spec.friendly_name));
    for input in spec.inputs {
        let mut arg =
            Arg::new(input.name).long(input.flag).help(input.label).long_help(long_help(input.label, input.help));
        if input.flag != input.name {
            arg = arg.alias(input.name);
        }
        arg = match input.kind {
            InputKind::MultiLine => arg.action(ArgAction::Append).value_name("LINE"),
            InputKind::Boolean => arg
                .num_args(0..=1)
                .default_missing_value("true")
                .value_parser(["true", "false", "True", "False", "TRUE", "FALSE"])
                .value_name("BOOL"),
            InputKind::PickList => {
                arg.value_parser(clap::builder::PossibleValuesParser::new(input.options.iter().copied()))
            }
            _ => arg.value_name("VALUE"),
        };
        command = command.arg(arg);
    }
    command
}

fn long_help(label: &str, help: &str) -> String {
    if help.is_empty() { label.to_string() } else { format!("{label}. {help}") }
}

fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// Parses the arguments; `--help`, `--version` and mistakes end in clap's error.
pub fn parse(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<Invocation, clap::Error> {
    let matches = command().try_get_matches_from(args)?;
    let (name, sub) = matches.subcommand().expect("a subcommand is required");
    #[cfg(feature = "multicluster-helm")]
    if name == "eks-token" {
        let text = |id: &str| sub.get_one::<String>(id).cloned();
        return Ok(Invocation::EksToken(EksTokenArgs {
            cluster: text("cluster").expect("required"),
            region: text("region").expect("required"),
            role_arn: text("role-arn"),
            external_id: text("external-id"),
            session_name: text("session-name"),
            cache_dir: text("cache-dir").map(PathBuf::from),
        }));
    }
    #[cfg(feature = "kaniko-build")]
    if name == "context" {
        return Ok(Invocation::Context(ContextArgs {
            context: sub.get_one::<String>("context").map(PathBuf::from).expect("required"),
            dockerfile: sub.get_one::<String>("dockerfile").map(PathBuf::from).expect("defaulted"),
            use_dockerignore: !sub.get_flag("no-dockerignore"),
            list: sub.get_flag("list"),
            output: sub.get_one::<String>("output").map(PathBuf::from),
            upload: sub.get_one::<String>("upload").cloned(),
            region: sub.get_one::<String>("region").cloned(),
            s3_endpoint: sub.get_one::<String>("s3-endpoint").cloned(),
        }));
    }
    let spec = TASKS.iter().copied().find(|t| t.command == name).expect("clap only accepts known subcommands");
    Ok(Invocation::Task { spec, inputs: flag_inputs(spec, sub) })
}

fn flag_inputs(spec: &TaskSpec, matches: &ArgMatches) -> Vec<(String, String)> {
    spec.inputs
        .iter()
        .filter_map(|input| {
            let values: Vec<&String> = matches.get_many::<String>(input.name)?.collect();
            let joined = values.iter().map(|v| v.as_str()).collect::<Vec<_>>().join("\n");
            Some((format!("INPUT_{}", mangle(input.name)), joined))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn flags_become_input_variables() {
        let Ok(Invocation::Task { spec, inputs }) = parse([
            "azp-kube",
            "kaniko-build",
            "--destinations",
            "r/a:1",
            "--destinations",
            "r/a:2",
            "--use-dockerignore=false",
            "--cache",
            "--contextTransport",
            "Stream",
        ]) else {
            panic!("expected a task invocation")
        };
        assert_eq!(spec.name, "KanikoBuild");
        assert!(inputs.contains(&("INPUT_DESTINATIONS".into(), "r/a:1\nr/a:2".into())));
        assert!(inputs.contains(&("INPUT_USEDOCKERIGNORE".into(), "false".into())));
        assert!(inputs.contains(&("INPUT_CACHE".into(), "true".into())));
        assert!(inputs.contains(&("INPUT_CONTEXTTRANSPORT".into(), "Stream".into())));
    }

    #[test]
    fn pick_lists_are_checked_by_the_parser() {
        let err = parse(["azp-kube", "kaniko-build", "--context-transport", "FTP"]).unwrap_err();
        assert!(err.to_string().contains("FTP"));
    }
}
