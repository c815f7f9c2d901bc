//! A kaniko-compatible container runtime: it reads the executor's arguments, fetches the
//! context as kaniko does, builds it for real with buildah, pushes every destination to the
//! world's registry, writes the digest where `--digest-file` says (the termination message
//! for `/dev/termination-log`), streams the build output as the container log, and exits
//! 0 or 1 as kaniko would.

pub mod args;
pub mod build;
pub mod context;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use serde_json::Value;

use crate::cluster::Cluster;
use crate::pods::{ContainerExit, ContainerRun, ContainerRuntime, RunFuture};
use build::{Buildah, Logger, Outcome};

/// Whether an image is a kaniko executor (`…/kaniko` or `…/executor`, any tag).
pub fn is_executor(image: &str) -> bool {
    let repository = crate::pods::repository(image);
    repository.ends_with("/kaniko") || repository.ends_with("/executor")
}

/// The runtime. One per world; builds run one at a time (vfs storage is shared).
#[derive(Clone)]
pub struct Kaniko(Arc<Inner>);

/// The runtime's state.
pub struct Inner {
    cluster: Weak<Cluster>,
    buildah: Buildah,
    sts_endpoint: Option<String>,
    /// Held for a whole build; true once the base image is in the registry.
    lock: tokio::sync::Mutex<bool>,
}

impl Kaniko {
    /// A runtime building under `dir`, pushing to `registry`, assuming roles at `sts_endpoint`.
    pub fn new(cluster: &Arc<Cluster>, dir: PathBuf, registry: String, sts_endpoint: Option<String>) -> Self {
        Self(Arc::new(Inner {
            cluster: Arc::downgrade(cluster),
            buildah: Buildah { dir, registry },
            sts_endpoint,
            lock: tokio::sync::Mutex::new(false),
        }))
    }
}

impl Inner {
    fn role_arn(&self, pod: &Value) -> Option<String> {
        let cluster = self.cluster.upgrade()?;
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = pod["spec"]["serviceAccountName"].as_str().unwrap_or("default");
        let rt = cluster.resource("", "serviceaccounts").ok()?;
        let sa = cluster.store.get(&rt, ns, name).ok()?;
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].as_str().map(str::to_string)
    }

    async fn execute(self: Arc<Self>, mut run: ContainerRun) -> ContainerExit {
        let mut logger = Logger::new(run.log.clone());
        let container = &run.container;
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
        };
        let mut argv = strings(&container["command"]);
        if !argv.is_empty() {
            argv.remove(0);
        }
        argv.extend(strings(&container["args"]));
        let args = match args::parse(&argv) {
            args::Command::Run(a) => a,
            args::Command::Help => {
                logger.raw(USAGE);
                return ContainerExit::code(0);
            }
            args::Command::Fail { message, usage } => return cobra_error(&logger, &message, usage),
        };
        logger.set_format(&args.log_format);
        // The checks of the root command's PersistentPreRunE, in its order (root.go v1.28.3).
        if args.destinations.is_empty() && !args.no_push {
            return cobra_error(&logger, "you must provide --destination, or use --no-push", true);
        }
        if args.cache && !args.no_push_cache && args.cache_repo.is_none() && args.no_push {
            let message = "cache flags invalid: if using cache with --no-push, specify cache repo with --cache-repo";
            return cobra_error(&logger, message, true);
        }
        // --bucket replaces the context; without a scheme it names a GCS bucket.
        let source = match args.bucket.as_str() {
            "" => args.context.clone(),
            bucket if bucket.contains("://") => bucket.to_string(),
            bucket => format!("gs://{bucket}"),
        };
        let env: HashMap<String, String> = container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((e["name"].as_str()?.to_string(), e["value"].as_str().unwrap_or_default().to_string()))
            })
            .collect();
        let pod_aws =
            context::PodAws { env: &env, role_arn: self.role_arn(&run.pod), sts_endpoint: self.sts_endpoint.clone() };
        let source_error = |logger: &Logger, message: &str| {
            cobra_error(logger, &format!("error resolving source context: {message}"), true)
        };
        if matches!(args.verbosity.as_str(), "debug" | "trace") {
            // As kaniko's resolveSourceContext: the whole context value, query included.
            logger.line("DEBU", &format!("Getting source context from {source}"));
        }
        logger.line("INFO", &format!("Retrieving build context from {}", redact(&source)));
        let bytes = tokio::select! {
            b = context::fetch(&source, &pod_aws, run.stdin.take()) => b,
            _ = run.cancel.cancelled() => return ContainerExit::killed(),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => return source_error(&logger, &e),
        };
        let work = self.buildah.dir.join("builds").join(crate::auth::random_token());
        // kaniko's BuildContextDir (/kaniko/buildcontext/).
        let context_dir = work.join("buildcontext");
        let unpacked = context::unpack(&bytes, &context_dir, context::archive_left_behind(&source)).await;
        if let Err(e) = unpacked {
            let _ = tokio::fs::remove_dir_all(&work).await;
            return source_error(&logger, &e);
        }
        logger.line("INFO", &format!("Unpacked build context ({} bytes)", bytes.len()));
        let root = match context::sub_path(&context_dir, &args.context_sub_path) {
            Ok(root) => root,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&work).await;
                return source_error(&logger, &e);
            }
        };
        let exit = if args.dryrun {
            logger.line("INFO", "Dry run: the build plan is not simulated; nothing is built or pushed");
            ContainerExit::code(0)
        } else {
            self.build_and_push(&run, &args, &env, &root, &logger).await
        };
        let _ = tokio::fs::remove_dir_all(&work).await;
        exit
    }

    async fn build_and_push(
        &self,
        run: &ContainerRun,
        args: &args::Args,
        env: &HashMap<String, String>,
        root: &std::path::Path,
        logger: &Logger,
    ) -> ContainerExit {
        let fail = |message: &str| {
            logger.raw(&format!("error building image: {message}"));
            ContainerExit::code(1)
        };
        let dockerfile = root.join(args.dockerfile.trim_start_matches("./"));
        if !dockerfile.is_file() {
            return fail(
                "error resolving dockerfile path: please provide a valid path to a Dockerfile within the build \
                 context with --dockerfile",
            );
        }
        let mut extra = Vec::new();
        for arg in &args.build_args {
            let value = if arg.contains('=') {
                arg.clone()
            } else {
                format!("{arg}={}", env.get(arg).cloned().unwrap_or_default())
            };
            extra.extend(["--build-arg".to_string(), value]);
        }
        for label in &args.labels {
            extra.extend(["--label".to_string(), label.clone()]);
        }
        // kaniko builds every listed stage and pushes the first; buildah builds that one.
        if let Some(target) = args.targets.first() {
            extra.extend(["--target".to_string(), target.clone()]);
        }
        let mut base_ready = self.lock.lock().await;
        if !*base_ready {
            logger.line("INFO", "Preparing the base image busybox");
            if let Err(e) = self.buildah.push_base_image(&run.cancel).await {
                return fail(&e);
            }
            *base_ready = true;
        }
        let tag = format!("localhost/kaniko-{}:latest", crate::auth::random_token());
        let info = |l: &str| logger.line("INFO", l);
        logger.line("INFO", &format!("Using dockerfile: {}", args.dockerfile));
        match self.buildah.build(root, &dockerfile, &extra, &tag, &info, &run.cancel).await {
            Outcome::Done => {}
            Outcome::Cancelled => return ContainerExit::killed(),
            Outcome::Failed(e) => return fail(&e),
        }
        let mut exit = ContainerExit::code(0);
        let termination = run.container["terminationMessagePath"].as_str().unwrap_or("/dev/termination-log");
        if args.no_push {
            logger.line("INFO", "Skipping push to container registry due to --no-push flag");
            // kaniko still writes the image's digest; an OCI layout gives the same manifest.
            let layout = format!("oci:{}", self.buildah.dir.join("tmp").join(crate::auth::random_token()).display());
            if let Ok(digest) = self.buildah.push(&tag, &layout, &|_| {}, &run.cancel).await
                && args.digest_file.as_deref() == Some(termination)
            {
                exit.message = Some(digest);
            }
            let _ = tokio::fs::remove_dir_all(layout.trim_start_matches("oci:")).await;
        } else {
            let mut pushed: Vec<(String, String)> = Vec::new();
            for destination in &args.destinations {
                if destination.split('/').next() != Some(self.buildah.registry.as_str()) {
                    self.buildah.remove(&tag).await;
                    logger.raw(&format!(
                        "error pushing image: failed to push to destination {destination}: Get \"https://{}/v2/\": \
                         dial tcp: lookup {}: no such host",
                        destination.split('/').next().unwrap_or_default(),
                        destination.split('/').next().unwrap_or_default()
                    ));
                    return ContainerExit::code(1);
                }
                match self.buildah.push(&tag, destination, &info, &run.cancel).await {
                    Ok(digest) => {
                        let repo = crate::pods::repository(destination).to_string();
                        logger.line("INFO", &format!("Pushed {repo}@{digest}"));
                        pushed.push((destination.clone(), digest));
                    }
                    Err(Outcome::Cancelled) => return ContainerExit::killed(),
                    Err(other) => {
                        let e = match other {
                            Outcome::Failed(e) => e,
                            _ => "push failed".into(),
                        };
                        self.buildah.remove(&tag).await;
                        logger.raw(&format!("error pushing image: failed to push to destination {destination}: {e}"));
                        return ContainerExit::code(1);
                    }
                }
            }
            let digest = pushed.first().map(|(_, d)| d.clone()).unwrap_or_default();
            let names: Vec<String> =
                pushed.iter().map(|(d, digest)| format!("{}@{digest}", crate::pods::repository(d))).collect();
            let files = [
                (&args.digest_file, digest.clone()),
                (&args.image_name_with_digest_file, names.join("\n")),
                (&args.image_name_tag_with_digest_file, names.join("\n")),
            ];
            for (file, contents) in files {
                if file.as_deref() == Some(termination) {
                    exit.message = Some(contents);
                }
            }
        }
        self.buildah.remove(&tag).await;
        exit
    }
}

/// cobra's usage text for the executor (abridged).
const USAGE: &str = "Usage:\n  executor [flags]\n  executor [command]\n\nRun 'executor --help' for usage.";

/// How cobra ends on an error: `Error: …`, the usage unless the error came from the
/// command lookup, exit 1.
fn cobra_error(logger: &Logger, message: &str, usage: bool) -> ContainerExit {
    logger.raw(&format!("Error: {message}"));
    if usage {
        logger.raw(USAGE);
    } else {
        logger.raw("Run 'executor --help' for usage.");
    }
    ContainerExit::code(1)
}

/// A context URL without its query (presigned signatures stay out of logs).
fn redact(context: &str) -> &str {
    context.split('?').next().unwrap_or(context)
}

impl ContainerRuntime for Kaniko {
    fn run(&self, run: ContainerRun) -> RunFuture {
        Box::pin(self.0.clone().execute(run))
    }
}
