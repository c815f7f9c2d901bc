//! KanikoBuild@1: pack the context, ship it, run a kaniko pod, follow its
//! log, report the digest, and clean up whatever happens.

mod params;
mod report;
mod transfer;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use tracing::{info, warn};

use self::params::{Plan, Transport};
use self::report::Report;
use self::transfer::Tampering;
use super::cancel::{self, Canceled};
use super::read_inputs;
use crate::aws::s3::{ContextStore, ObjectVersion, PendingUpload};
use crate::aws::{AwsTarget, credentials, sdk_config};
use crate::azp::report::Outcome;
use crate::azp::untrusted::LineSplitter;
use crate::azp::{Agent, Env};
use crate::context::{self, ContextPlan};
use crate::kaniko::args::{BuildArg, CONTEXT_SUB_PATH, ContextSource};
use crate::kaniko::pod::{CONTAINER, pod_spec, values_secret};
use crate::kaniko::reference::is_sha256_digest;
use crate::kube::client;
use crate::kube::pod::{Error as PodError, Failure, RunningPod, State};
use crate::kube::secret::PodSecret;
use crate::tasks::inputs::kaniko_build::{Inputs, SPEC};

/// How long clean-up may take after a cancel (the agent kills at 10 s).
const CLEANUP_DEADLINE: Duration = Duration::from_secs(4);

/// How long a build whose context did not reach the pod waits for the pod's own end.
const STDIN_FAILURE_GRACE: Duration = Duration::from_secs(5);

/// Lines of the build log kept for the error message.
const LOG_TAIL: usize = 20;

/// How long a presigned context URL stays valid (at most timeoutMinutes):
/// kaniko fetches the context as soon as its container starts, and a pod
/// that has not started by then has failed for another reason.
const CONTEXT_URL_LIFETIME: Duration = Duration::from_secs(15 * 60);

pub fn run(env: &Env, agent: &Agent) -> anyhow::Result<Outcome> {
    let inputs = read_inputs(env, agent, &SPEC, Inputs::read)?;
    let plan = params::Plan { proxy: super::agent_proxy(env, agent)?, ..params::resolve(&inputs, env)? };
    for arg in &plan.build.build_args {
        if let BuildArg::Secret { value, .. } = arg {
            agent.set_secret(value.expose());
        }
    }
    let context = context::plan(&plan.pack).map_err(context_input_error)?.packed_under(CONTEXT_SUB_PATH);
    show_context(agent, &context);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let cancellation = cancel::on_signals()?;
        let cleanup = Cleanup::default();
        // The pod's own deadline does not run while it is unscheduled: a
        // deadline of our own, with room for the upload, covers that.
        let deadline = plan.timeout + Duration::from_secs(300);
        // A bug that panics in the build must still leave nothing behind: the
        // clean-up below runs after a panic too (this relies on unwinding).
        let building = std::panic::AssertUnwindSafe(build(env, agent, &plan, context, &cleanup)).catch_unwind();
        let result = tokio::select! {
            result = tokio::time::timeout(deadline, building) => match result {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => Err(internal_error(panic.as_ref())),
                Err(_) => Err(anyhow::anyhow!("the build did not finish within timeoutMinutes (and 5 minutes for the upload)")),
            },
            () = cancellation.cancelled() => Err(Canceled.into()),
        };
        let _ = tokio::time::timeout(CLEANUP_DEADLINE, cleanup.run(&plan, result.is_ok())).await;
        result.map(|()| Outcome::Succeeded)
    })
}

/// The error for a panic in the build (whose message the panic hook printed already).
fn internal_error(panic: &(dyn std::any::Any + Send)) -> anyhow::Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|m| m.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    anyhow::anyhow!("internal error in the build ({message}); what it started is deleted. Please report it")
}

/// Test switch (debug builds only, see [`Env::test_switch`]): the build panics
/// once its pod is started, to show that the clean-up still runs.
const PANIC_SWITCH: &str = "AZP_KUBE_PANIC_AFTER_POD_START";

/// The build, step by step.
async fn build(env: &Env, agent: &Agent, plan: &Plan, context: ContextPlan, cleanup: &Cleanup) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut report = Report::new(plan, &context);
    let kube = client::connect(&plan.cluster, env, plan.proxy.as_ref()).await?;
    let pods: Api<Pod> = Api::namespaced(kube, &plan.pod.namespace);

    let mut build = plan.build.clone();
    build.dockerfile = context.dockerfile().to_string_lossy().into_owned();
    let mut stdin_context = None;
    let mut shipped = None;
    let mut pod = plan.pod.clone();
    match &plan.transport {
        Transport::S3 { presigned, .. } => {
            let (source, uploaded, region) = upload_context(env, agent, plan, context, cleanup, &mut report).await?;
            build.context = source;
            shipped = Some(uploaded);
            // kaniko's S3 client does not follow a redirect to the bucket's region.
            if !presigned && region.is_some() {
                pod.aws_region = region;
            }
        }
        Transport::Stream => stdin_context = Some(context),
    }
    report.timings.upload = started.elapsed();

    // What the pod spec must not show goes into a Secret the pod reads.
    let secret = match values_secret(&build, &pod) {
        Some(secret) => Some(create_secret(&pods, &pod.namespace, &secret, cleanup).await?),
        None => None,
    };
    let spec = pod_spec(&build, &pod, secret.as_ref().map(|s| s.name.as_str()));
    let running = RunningPod::create(pods, &plan.pod.namespace, &spec).await?;
    cleanup.set_pod(running.clone());
    info!("Started pod {}/{}", running.namespace, running.name);
    if env.test_switch(PANIC_SWITCH).is_some() {
        panic!("{PANIC_SWITCH} is set");
    }
    if let Some(secret) = &secret
        && let Err(e) = secret.own_by(&running.name, &running.uid).await
    {
        // The clean-up still deletes it; only a killed task would leave it.
        warn!("{e}");
    }
    report.pod = running.name.clone();

    let queued = Instant::now();
    let mut states = Box::pin(running.states(CONTAINER));
    let first = wait_until_started(&mut states, plan.unschedulable_grace).await?;
    report.timings.queue = queued.elapsed();

    let building = Instant::now();
    let tail = Arc::new(Mutex::new(Tail::default()));
    let finished = async {
        let mut watching = std::pin::pin!(wait_until_finished(first, &mut states));
        let Some(context) = stdin_context else { return watching.await };
        let sent = tokio::select! {
            sent = send_context(&running, context, &mut report) => sent,
            // The container ended before it read everything: its own failure says why.
            state = &mut watching => return state,
        };
        match sent {
            Ok(()) => watching.await,
            // A pod that ends now (it may have ended before the attach) says more; one that
            // does not would wait on its stdin until the deadline.
            Err(error) => match tokio::time::timeout(STDIN_FAILURE_GRACE, &mut watching).await {
                Ok(state) => state,
                Err(_) => Err(stream_error(error, &running.namespace)),
            },
        }
    };
    agent.group("kaniko build log");
    let log = follow_log(agent, &running, tail.clone());
    let state = {
        let (mut finished, mut log) = (std::pin::pin!(finished), std::pin::pin!(log));
        tokio::select! {
            state = &mut finished => {
                // The log ends with the pod; after a failure of our own the pod is deleted.
                if state.is_ok() {
                    log.await;
                }
                state
            }
            () = &mut log => finished.await,
        }
    };
    agent.end_group();
    report.timings.build = building.elapsed();

    let state = state?;
    // Kaniko may have read someone else's bytes if the object was written
    // (or removed) since the upload: then nothing it built is reported.
    let tampering = match &shipped {
        Some(shipped) => transfer::tampering(&shipped.store, &shipped.key, &shipped.object).await,
        None => Ok(None),
    };
    let outcome = match state {
        State::Succeeded { message } => {
            if let (Some(shipped), Some(tampering)) = (&shipped, tampering?) {
                cleanup.mark_failed();
                return Err(tampered(shipped, tampering, cleanup));
            }
            message
        }
        State::Failed(failure) => {
            cleanup.mark_failed();
            // A failed build reports no image anyway; an overwritten context is
            // still the cause to tell (a deleted one, kaniko names itself).
            if let (Some(shipped), Ok(Some(Tampering::Overwritten))) = (&shipped, tampering) {
                return Err(tampered(shipped, Tampering::Overwritten, cleanup));
            }
            return Err(explain(failure, &tail.lock().unwrap_or_else(|p| p.into_inner()).lines));
        }
        State::Waiting(_) | State::Running => unreachable!("wait_until_finished returns an end state"),
    };
    let digest = outcome.unwrap_or_default().trim().to_string();
    if !is_sha256_digest(&digest) {
        cleanup.mark_failed();
        anyhow::bail!("kaniko finished but did not report an image digest (termination message {digest:?})");
    }
    report.timings.total = started.elapsed();
    report.finish(agent, env, &build, &digest);
    Ok(())
}

/// The context object this build uploaded, as S3 described it then.
struct Shipped {
    store: ContextStore,
    key: String,
    object: ObjectVersion,
}

/// The error for a context object someone else wrote or deleted during the
/// build. An overwritten object is evidence: it is kept.
fn tampered(shipped: &Shipped, tampering: Tampering, cleanup: &Cleanup) -> anyhow::Error {
    let (what, after) = match tampering {
        Tampering::Overwritten => {
            cleanup.keep_object();
            ("overwritten", "the object is left in place for inspection")
        }
        Tampering::Deleted => ("deleted", "rerun the build"),
    };
    anyhow::anyhow!(
        "s3://{}/{} was {what} by someone else during the build, so kaniko may have built another context \
         than this one: the image it pushed is not reported; {after}",
        shipped.store.bucket,
        shipped.key
    )
}

/// Uploads the context under a key of its own and says where the pod finds
/// it, and in which region the bucket is.
async fn upload_context(
    env: &Env,
    agent: &Agent,
    plan: &Plan,
    context: ContextPlan,
    cleanup: &Cleanup,
    report: &mut Report,
) -> anyhow::Result<(ContextSource, Shipped, Option<String>)> {
    let Transport::S3 { bucket, key_prefix, region, endpoint, presigned, delete_after_build } = &plan.transport else {
        unreachable!("only S3 transports upload")
    };
    let mut target = AwsTarget { region: region.clone(), endpoint_url: endpoint.clone(), proxy: plan.proxy.clone() };
    let registering = |config: &_| {
        let agent = agent.clone();
        credentials::reporting(config, move |obtained| {
            credentials::secret_values(obtained).for_each(|secret| agent.set_secret(secret));
        })
    };
    let mut config = registering(&sdk_config(env, &target, None).await);
    let mut store = ContextStore::new(&config, bucket, endpoint.is_some());
    if region.is_none() {
        // S3 answers a client of another region with a redirect the SDKs do not follow.
        match store.region().await {
            Some(home) if config.region().is_none_or(|r| r.as_ref() != home) => {
                info!("The bucket {bucket} is in {home}: the upload and the pod use that region");
                target.region = Some(home);
                config = registering(&sdk_config(env, &target, None).await);
                store = ContextStore::new(&config, bucket, endpoint.is_some());
            }
            Some(_) => {}
            None => info!("S3 did not say which region the bucket {bucket} is in: the agent's region is used"),
        }
    }
    let region = config.region().map(|r| r.to_string());
    cleanup.set_store(store.clone());
    let included = context.summary().included_bytes.max(1);
    let uploaded = transfer::pack_and_upload(&store, key_prefix, context, &cleanup.pending, |sent| {
        let percent = (sent.saturating_mul(100) / included).min(99) as u32;
        agent.set_progress(percent, &format!("uploaded {} MiB of the build context", sent >> 20));
    })
    .await?;
    let key = uploaded.key.clone();
    if *delete_after_build {
        cleanup.set_object(key.clone());
    }
    info!("Uploaded the build context to s3://{bucket}/{key} ({} bytes)", uploaded.written.bytes);
    report.context_key = key.clone();
    report.context_bytes = uploaded.written.bytes;
    report.pack = uploaded.stats;
    let Some(object) = transfer::described(&store, &uploaded).await? else {
        cleanup.keep_object();
        anyhow::bail!(
            "s3://{bucket}/{key} was replaced or removed by someone else right after this build uploaded it, so \
             no build was started; the object is left in place for inspection"
        );
    };
    let source = if *presigned {
        let presigned = store.presign_get(&key, plan.timeout.min(CONTEXT_URL_LIFETIME)).await?;
        presigned.secrets.iter().for_each(|secret| agent.set_secret(secret));
        if presigned.shortened {
            warn!(
                "The presigned context URL is valid for only {} s: the AWS credentials that sign it expire soon after",
                presigned.lifetime.as_secs()
            );
        }
        ContextSource::Url(presigned.url)
    } else {
        ContextSource::S3 { bucket: bucket.clone(), key: key.clone() }
    };
    Ok((source, Shipped { store, key, object }, region))
}

/// Creates the build's Secret and registers it for clean-up.
async fn create_secret(
    pods: &Api<Pod>,
    namespace: &str,
    secret: &Secret,
    cleanup: &Cleanup,
) -> anyhow::Result<PodSecret> {
    let api: Api<Secret> = Api::namespaced(pods.clone().into_client(), namespace);
    let created = PodSecret::create(api, namespace, secret).await?;
    *cleanup.secret.lock().unwrap_or_else(|p| p.into_inner()) = Some(created.clone());
    Ok(created)
}

/// `azp-kube context --upload s3://bucket/prefix/`: a terminal command, so
/// it prints the key to stdout and the sizes to stderr.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn upload_context_cli(env: &Env, args: &crate::cli::ContextArgs) -> anyhow::Result<()> {
    let url = args.upload.as_deref().unwrap_or_default();
    let (bucket, key_prefix) = url
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/').or(Some((rest, ""))))
        .filter(|(bucket, _)| !bucket.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--upload {url:?} must be s3://BUCKET/PREFIX/"))?;
    let plan = context::plan(&context::PackOptions {
        context_dir: args.context.clone(),
        dockerfile: args.dockerfile.clone(),
        use_dockerignore: args.use_dockerignore,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        // A terminal command: the agent's proxy variables, if any, else HTTPS_PROXY.
        let proxy = crate::azp::proxy::ProxySettings::read(env)?;
        let target = AwsTarget { region: args.region.clone(), endpoint_url: args.s3_endpoint.clone(), proxy };
        let store = ContextStore::new(&sdk_config(env, &target, None).await, bucket, args.s3_endpoint.is_some());
        let uploaded = transfer::pack_and_upload(&store, key_prefix, plan, &PendingUpload::default(), |_| {}).await?;
        let stats = uploaded.stats.map(|s| format!("; {s}")).unwrap_or_default();
        println!("s3://{bucket}/{}", uploaded.key);
        eprintln!("uploaded: {} bytes{stats}", uploaded.written.bytes);
        Ok(())
    })
}

/// Streams the packed context into the pod's stdin.
async fn send_context(running: &RunningPod, context: ContextPlan, report: &mut Report) -> Result<(), PodError> {
    let (chunks, stats) = transfer::pack(context);
    let sent = running.send_stdin(CONTAINER, chunks).await?;
    report.context_bytes = sent;
    report.pack = stats.await.ok();
    Ok(())
}

/// The error for a context that did not reach the pod's stdin; a refusal names the
/// permission (the WebSocket attach is a GET: Kubernetes authorizes it as `get`, and
/// from 1.35 also as `create`).
fn stream_error(error: PodError, namespace: &str) -> anyhow::Error {
    let hint = match &error {
        PodError::AttachRefused { code: 403, .. } => format!(
            " The agent's Kubernetes identity needs the verbs get and create on pods/attach in namespace \
             {namespace} (the chart in deploy/ grants both), or use another contextTransport."
        ),
        _ => String::new(),
    };
    anyhow::anyhow!("contextTransport Stream: the build context did not reach the kaniko pod: {error}.{hint}")
}

/// Waits until the container runs (or ends). Problems that waiting will not
/// fix end the build at once; an unschedulable pod gets a grace period.
async fn wait_until_started(
    states: &mut (impl futures::Stream<Item = Result<State, crate::kube::pod::Error>> + Unpin),
    grace: Duration,
) -> anyhow::Result<State> {
    // tokio's clock, which tests can pause and advance.
    let mut unschedulable: Option<(tokio::time::Instant, String)> = None;
    loop {
        // Nothing changes while a pod stays unschedulable: wake up when its grace ends.
        let next = match &unschedulable {
            Some((since, message)) => {
                let left = grace.saturating_sub(since.elapsed());
                match tokio::time::timeout(left, states.next()).await {
                    Ok(next) => next,
                    Err(_) => return Err(explain(Failure::Unschedulable(message.clone()), &[])),
                }
            }
            None => states.next().await,
        };
        let Some(state) = next else { anyhow::bail!("the watch on the kaniko pod ended before it started") };
        match state? {
            State::Waiting(None) => {}
            State::Waiting(Some(Failure::Unschedulable(message))) => {
                if unschedulable.is_none() {
                    warn!("The kaniko pod cannot be scheduled yet: {message}");
                }
                let since = unschedulable.map_or_else(tokio::time::Instant::now, |(since, _)| since);
                unschedulable = Some((since, message));
            }
            State::Waiting(Some(failure)) => return Err(explain(failure, &[])),
            state => return Ok(state),
        }
    }
}

/// Waits for the end state, starting from `state`.
async fn wait_until_finished(
    mut state: State,
    states: &mut (impl futures::Stream<Item = Result<State, crate::kube::pod::Error>> + Unpin),
) -> anyhow::Result<State> {
    loop {
        if matches!(state, State::Succeeded { .. } | State::Failed(_)) {
            return Ok(state);
        }
        state = match states.next().await {
            Some(next) => next?,
            None => anyhow::bail!("the watch on the kaniko pod ended before the build did"),
        };
    }
}

/// The last lines of the build log, for the error message.
#[derive(Default)]
struct Tail {
    lines: Vec<String>,
}

/// Follows the build log into the pipeline log, through the untrusted-output
/// filter, keeping the last lines for an error message.
async fn follow_log(agent: &Agent, running: &RunningPod, tail: Arc<Mutex<Tail>>) {
    let mut splitter = LineSplitter::default();
    let keep = |lines: Vec<String>| {
        if lines.is_empty() {
            return;
        }
        agent.untrusted_lines(&lines);
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.lines.extend(lines);
        let excess = tail.lines.len().saturating_sub(LOG_TAIL);
        tail.lines.drain(..excess);
    };
    let followed = running.follow_log(CONTAINER, |bytes| keep(splitter.push(bytes))).await;
    keep(splitter.finish().into_iter().collect());
    if let Err(error) = followed {
        // The build goes on and reports its result; only its log is lost.
        let hint = match &error {
            PodError::Log { source: kube::Error::Api(status), .. } if status.code == 403 => format!(
                " Grant the agent's Kubernetes identity get pods/log in namespace {} (the chart in deploy/ \
                 does) to see it.",
                running.namespace
            ),
            _ => String::new(),
        };
        warn!("The build log cannot be shown; the build goes on without it: {error}.{hint}");
    }
}

/// The error for a failed build: the reason, what to do, and the log's end.
fn explain(failure: Failure, tail: &[String]) -> anyhow::Error {
    let hint = match &failure {
        Failure::OomKilled => {
            " Raise memoryLimit, or add --compressed-caching=false to extraArgs (kaniko then needs less memory)."
        }
        Failure::DeadlineExceeded(_) => " Raise timeoutMinutes if the build needs longer.",
        Failure::ImagePull { .. } => " Check kanikoImage and that the cluster can pull it.",
        Failure::Unschedulable(_) => " Check cpuRequest, memoryRequest, nodeSelector and tolerations.",
        _ => "",
    };
    let mut message = format!("the kaniko build failed: {failure}.{hint}");
    let relevant: Vec<&String> = tail.iter().filter(|l| !l.trim().is_empty()).collect();
    if !relevant.is_empty() {
        let start = relevant.len().saturating_sub(5);
        let lines: Vec<&str> = relevant[start..].iter().map(|l| l.trim()).collect();
        message.push_str(&format!(" Last lines of the build log: {}", lines.join(" | ")));
    }
    anyhow::anyhow!(message)
}

/// Turns context errors into input errors where an input is to blame.
fn context_input_error(error: context::Error) -> anyhow::Error {
    let input = match &error {
        context::Error::ContextMissing { .. } | context::Error::ContextNotDir { .. } => "buildContext",
        context::Error::DockerfileOutside { .. }
        | context::Error::DockerfileMissing { .. }
        | context::Error::DockerfileNotFile { .. } => "dockerfile",
        _ => return anyhow::Error::new(error).context("cannot read the build context"),
    };
    anyhow::anyhow!("input {input}: {error}")
}

/// Shows what goes into the context and what .dockerignore kept out.
fn show_context(agent: &Agent, context: &ContextPlan) {
    let summary = context.summary();
    agent.section(&format!("Build context {}", context.root().display()));
    for line in summary.to_string().lines() {
        agent.line(line);
    }
    for skipped in &summary.skipped {
        warn!(
            "{} {} in the build context is not sent (Docker sends no special files)",
            skipped.kind,
            skipped.path.display()
        );
    }
}

/// What to remove at the end: the pod, its Secret, the context object, an
/// unfinished upload. Registered as each comes to exist, run once whatever
/// happened.
#[derive(Default)]
struct Cleanup {
    pod: Mutex<Option<RunningPod>>,
    /// Deleted even when the failed pod is kept: a finished pod needs no values.
    secret: Mutex<Option<PodSecret>>,
    store: Mutex<Option<ContextStore>>,
    object: Mutex<Option<String>>,
    pending: PendingUpload,
    failed: std::sync::atomic::AtomicBool,
}

impl Cleanup {
    fn set_pod(&self, pod: RunningPod) {
        *self.pod.lock().unwrap_or_else(|p| p.into_inner()) = Some(pod);
    }

    fn set_store(&self, store: ContextStore) {
        *self.store.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
    }

    fn set_object(&self, key: String) {
        *self.object.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
    }

    /// Leaves the context object alone: it is no longer (known to be) ours.
    fn keep_object(&self) {
        self.object.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn mark_failed(&self) {
        self.failed.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    async fn run(&self, plan: &Plan, succeeded: bool) {
        let failed = !succeeded || self.failed.load(std::sync::atomic::Ordering::Relaxed);
        let pod = self.pod.lock().unwrap_or_else(|p| p.into_inner()).take();
        let secret = self.secret.lock().unwrap_or_else(|p| p.into_inner()).take();
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner()).take();
        let object = self.object.lock().unwrap_or_else(|p| p.into_inner()).take();
        let delete_pod = async {
            match pod {
                Some(pod) if failed && plan.keep_pod_on_failure => {
                    info!("Kept the failed pod {}/{} for inspection (keepPodOnFailure)", pod.namespace, pod.name);
                }
                Some(pod) => {
                    if let Err(e) = pod.delete().await {
                        warn!("{e}");
                    }
                }
                None => {}
            }
        };
        let delete_object = async {
            let Some(store) = store else { return };
            store.abort_pending(&self.pending).await;
            if let Some(key) = object
                && let Err(e) = store.delete(&key).await
            {
                warn!("{e}");
            }
        };
        let delete_secret = async {
            if let Some(secret) = secret
                && let Err(e) = secret.delete().await
            {
                warn!("{e}");
            }
        };
        tokio::join!(delete_pod, delete_secret, delete_object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unschedulable() -> Result<State, PodError> {
        Ok(State::Waiting(Some(Failure::Unschedulable("0/1 nodes are available: 1 Too many pods.".into()))))
    }

    /// The scheduler retries a pending pod and its watch repeats the reason:
    /// the grace counts from the first report. On tokio's paused clock, so the
    /// default two minutes pass at once.
    #[tokio::test(start_paused = true)]
    async fn an_unschedulable_pod_fails_after_the_default_grace_of_two_minutes() {
        let started = tokio::time::Instant::now();
        let retries = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Some((unschedulable(), ()))
        });
        let mut states = Box::pin(futures::stream::iter([unschedulable()]).chain(retries));
        let waited = tokio::time::timeout(
            Duration::from_secs(600),
            wait_until_started(&mut states, params::UNSCHEDULABLE_GRACE),
        );
        let error = waited.await.expect("gave up within 10 minutes").unwrap_err().to_string();
        assert_eq!(started.elapsed(), Duration::from_secs(120));
        assert!(error.contains("cannot be scheduled") || error.contains("Too many pods"), "{error}");
        assert!(error.contains("cpuRequest"), "{error}");
    }

    /// A node that a cluster autoscaler adds within the grace starts the build.
    #[tokio::test(start_paused = true)]
    async fn a_pod_scheduled_within_the_grace_starts() {
        let scheduled = async {
            tokio::time::sleep(Duration::from_secs(119)).await;
            Ok(State::Running)
        };
        let mut states = Box::pin(
            futures::stream::iter([unschedulable()])
                .chain(futures::stream::once(scheduled))
                .chain(futures::stream::pending()),
        );
        assert_eq!(wait_until_started(&mut states, params::UNSCHEDULABLE_GRACE).await.unwrap(), State::Running);
    }
}
