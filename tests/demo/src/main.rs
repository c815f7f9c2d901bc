//! `azp-kube-demo [--pipeline FILE] [--real] [--no-color] [--var NAME=VALUE]…`
//!
//! Runs an Azure Pipelines YAML file of azp-kube tasks on this machine and
//! prints the log as the Azure DevOps web view shows it. Without `--real` it
//! starts the local world (Kubernetes API simulator, moto, registry) and runs
//! the pipeline against it; with `--real` no world is started and the tasks
//! get your environment as it is (KUBECONFIG, AWS profile and keys).
//!
//! Exit code: 0 when the run succeeded, 1 when it failed, 2 when the
//! pipeline was refused or the world could not start.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use azp_harness::StepResult;
use azp_kube_demo::render::{Renderer, stdout_is_tty};
use azp_kube_demo::runner::{Runner, ServiceConnection, TaskFolders, check_tasks};
use azp_kube_demo::world::{KANIKO_NAMESPACE, LocalWorld, MANAGEMENT_CONNECTION};
use azp_kube_demo::yaml;

const USAGE: &str = "usage: azp-kube-demo [--pipeline FILE] [--real] [--no-color] [--var NAME=VALUE]... [--sources DIR]
                     [--binary PATH | --package DIR]

  --pipeline FILE    the Azure Pipelines YAML to run (default examples/azure-pipelines.yml)
  --real             start no local world: the tasks use your KUBECONFIG and AWS environment
  --no-color         no ANSI colours (the default when stdout is not a terminal)
  --var NAME=VALUE   a variable as the pipeline's settings would define it (repeatable)
  --sources DIR      the checkout the steps see (default: the current directory)
  --binary PATH      the azp-kube binary (default: next to this program)
  --package DIR      run each task from an unpacked VSIX instead, with its own shipped binary";

struct Args {
    pipeline: PathBuf,
    real: bool,
    color: bool,
    variables: Vec<(String, String)>,
    sources: Option<PathBuf>,
    binary: Option<PathBuf>,
    package: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        pipeline: PathBuf::from("examples/azure-pipelines.yml"),
        real: false,
        color: stdout_is_tty() && std::env::var_os("NO_COLOR").is_none(),
        variables: Vec::new(),
        sources: None,
        binary: None,
        package: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--pipeline" => args.pipeline = PathBuf::from(value("--pipeline")?),
            "--real" => args.real = true,
            "--no-color" => args.color = false,
            "--var" => {
                let text = value("--var")?;
                let (name, v) = text.split_once('=').ok_or(format!("--var {text}: write NAME=VALUE"))?;
                args.variables.push((name.to_string(), v.to_string()));
            }
            "--sources" => args.sources = Some(PathBuf::from(value("--sources")?)),
            "--binary" => args.binary = Some(PathBuf::from(value("--binary")?)),
            "--package" => args.package = Some(PathBuf::from(value("--package")?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// `azp-kube` next to this program (both are in target/debug).
fn default_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let binary = exe.parent()?.join("azp-kube");
    binary.is_file().then_some(binary)
}

fn branch(sources: &Path) -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--abbrev-ref", "HEAD"])
        .current_dir(sources)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|b| !b.is_empty() && b != "HEAD")
        .unwrap_or_else(|| "main".to_string())
}

/// With `--real`, the service connection `management-cluster` is the current
/// context of the user's kubeconfig (`$KUBECONFIG`, else `~/.kube/config`).
fn real_connection() -> Result<ServiceConnection, String> {
    let path = match std::env::var("KUBECONFIG").ok().filter(|v| !v.is_empty()) {
        Some(list) => PathBuf::from(list.split(':').next().unwrap_or_default()),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".kube/config"),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!("--real needs a kubeconfig for the service connection {MANAGEMENT_CONNECTION}: {}: {e}", path.display())
    })?;
    let context = yaml::parse_nodes(&text)
        .ok()
        .and_then(|node| match node {
            yaml::Node::Map { entries, .. } => {
                entries.into_iter().find(|(k, _, _)| k == "current-context").map(|(_, _, v)| v)
            }
            _ => None,
        })
        .and_then(|v| match v {
            yaml::Node::Scalar { value, .. } => Some(value),
            _ => None,
        })
        .unwrap_or_default();
    Ok(ServiceConnection::kubeconfig(
        MANAGEMENT_CONNECTION,
        "0d9c5e7a-1b2c-4d3e-8f40-5a6b7c8d9e01",
        &text,
        &context,
        "",
    ))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("azp-kube-demo: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    azp_kube_demo::runner::cancel_on_interrupt();
    let mut out = Renderer::new(Box::new(std::io::stdout()), args.color);
    let fail = |message: &str| {
        eprintln!("azp-kube-demo: {message}");
        ExitCode::from(2)
    };
    let text = match std::fs::read_to_string(&args.pipeline) {
        Ok(text) => text,
        Err(e) => return fail(&format!("cannot read {}: {e}", args.pipeline.display())),
    };
    let pipeline = match yaml::parse(&text) {
        Ok(p) => p,
        Err(refusal) => return fail(&format!("{}: {refusal}", args.pipeline.display())),
    };
    let repo = azp_harness::repo_root();
    let tasks = match (&args.package, args.binary.clone().or_else(default_binary)) {
        (Some(_), _) if args.binary.is_some() => return fail("--binary and --package: give one"),
        (Some(root), _) => TaskFolders::Packaged { root: root.clone() },
        (None, Some(binary)) => TaskFolders::Staged { binary },
        (None, None) => {
            return fail(
                "the azp-kube binary is not next to this program: run `cargo build -p azp-kube` (scripts/demo.sh does)",
            );
        }
    };
    let sources = match args.sources.clone().map_or_else(std::env::current_dir, Ok).and_then(|p| p.canonicalize()) {
        Ok(dir) => dir,
        Err(e) => return fail(&format!("the sources folder: {e}")),
    };

    let real_connections = match args.real.then(real_connection).transpose() {
        Ok(c) => c.into_iter().collect::<Vec<_>>(),
        Err(e) => return fail(&e),
    };
    let known = if args.real {
        real_connections.clone()
    } else {
        // The world's connections, known before it starts.
        vec![ServiceConnection::kubeconfig(MANAGEMENT_CONNECTION, "-", "", "", "")]
    };
    if let Err(refusal) = check_tasks(&pipeline, &repo, &known) {
        return fail(&format!("{}: {refusal}", args.pipeline.display()));
    }

    out.title(&format!("azp-kube-demo: {}", args.pipeline.display()));
    for note in &pipeline.notes {
        out.note(note);
    }
    let (world, mut env, mut variables, connections) = if args.real {
        out.note("--real: no local world; the tasks use your KUBECONFIG and AWS environment as they are");
        out.note(&format!("service connection {MANAGEMENT_CONNECTION}: the current context of your kubeconfig"));
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| !["INPUT_", "ENDPOINT_", "SECRET_", "VSTS_"].iter().any(|p| k.starts_with(p)))
            .collect();
        // What the azure-agent chart's agents have: their build namespace.
        if !env.iter().any(|(k, _)| k == "AZP_BUILD_NAMESPACE") {
            env.push(("AZP_BUILD_NAMESPACE".to_string(), KANIKO_NAMESPACE.to_string()));
        }
        (None, env, Vec::new(), real_connections)
    } else {
        out.note("starting the local world (Kubernetes API simulators, moto, registry)…");
        let world = match LocalWorld::start() {
            Ok(world) => world,
            Err(e) => return fail(&format!("{e}\n(run `bash scripts/setup.sh` once; scripts/demo.sh does)")),
        };
        for note in &world.notes {
            out.note(note);
        }
        let (env, variables, connections) = (world.env.clone(), world.variables.clone(), world.connections.clone());
        (Some(world), env, variables, connections)
    };
    // Variables given on the command line win over the world's.
    for (name, value) in &args.variables {
        variables.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        variables.push((name.clone(), value.clone()));
    }
    for (name, value) in &variables {
        out.note(&format!("variable {name} = {value} (as in the pipeline's settings)"));
    }
    env.push(("SYSTEM_TEAMPROJECT".into(), "demo".into()));
    let build_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() % 1_000_000)
        .unwrap_or(1);
    let runner = Runner { tasks, repo, branch: branch(&sources), sources, env, variables, build_id, connections };
    let report = runner.run(&pipeline, &mut out);
    out.run_summary(&report.stages, &report.errors, report.result);
    drop(world);
    match report.result {
        StepResult::Succeeded | StepResult::SucceededWithIssues => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}
