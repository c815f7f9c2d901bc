//! Running one pod to its end: create, watch (one name-selected watch,
//! resumed on disconnect; no polling), follow the log, feed stdin, delete.
//!
//! What state a pod is in, and why it failed, is a pure function of the pod
//! ([`state`]) so it can be tested on recorded objects.
//!
//! The API going away for a while (a control-plane upgrade, a network blip)
//! does not end a build: the watch and the log are resumed until the API has
//! been unreachable for [`API_OUTAGE_LIMIT`]. Refusals (401, 403, 404) are not
//! waited out.

use std::time::{Duration, Instant};

use futures::{AsyncReadExt as _, Stream, StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ContainerState, Pod};
use kube::api::{Api, AttachParams, DeleteParams, LogParams, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use tokio::io::AsyncWriteExt as _;

/// Why a pod did not succeed. Each names what the user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("cannot pull image {image}: {reason}: {message}")]
    ImagePull { image: String, reason: String, message: String },
    #[error("the pod cannot be scheduled: {0}")]
    Unschedulable(String),
    #[error("the container ran out of memory (OOMKilled)")]
    OomKilled,
    #[error("the pod ran past its deadline of {0} s (DeadlineExceeded) and was stopped")]
    DeadlineExceeded(i64),
    #[error("the pod was evicted: {0}")]
    Evicted(String),
    #[error("the pod's node was lost: {0}")]
    NodeLost(String),
    #[error("the container exited with code {code}{}", reason_suffix(.reason))]
    Exited { code: i32, reason: Option<String>, message: Option<String> },
    #[error("the container could not start: {reason}: {message}")]
    CannotStart { reason: String, message: String },
    #[error("the pod was deleted by someone else")]
    Deleted,
}

fn reason_suffix(reason: &Option<String>) -> String {
    reason.as_ref().filter(|r| r.as_str() != "Error").map(|r| format!(" ({r})")).unwrap_or_default()
}

/// Where a pod is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not started yet; with a problem when something stands in the way.
    Waiting(Option<Failure>),
    Running,
    /// Exited 0; the container's termination message.
    Succeeded {
        message: Option<String>,
    },
    Failed(Failure),
}

/// Reasons a container waits with that will not go away by waiting.
const FATAL_WAITING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The state of `container` in `pod`.
pub fn state(pod: &Pod, container: &str) -> State {
    let Some(status) = &pod.status else { return State::Waiting(None) };
    let deadline = pod.spec.as_ref().and_then(|s| s.active_deadline_seconds).unwrap_or_default();
    let pod_reason = status.reason.clone().unwrap_or_default();
    let pod_message = status.message.clone().unwrap_or_default();
    let container_status = status.container_statuses.iter().flatten().find(|c| c.name == container);
    let container_state = container_status.and_then(|c| c.state.as_ref());
    match status.phase.as_deref() {
        Some("Succeeded") => {
            let message = terminated(container_state).and_then(|t| t.message.clone());
            State::Succeeded { message }
        }
        Some("Failed") => State::Failed(match pod_reason.as_str() {
            "DeadlineExceeded" => Failure::DeadlineExceeded(deadline),
            "Evicted" => Failure::Evicted(pod_message),
            "NodeLost" => Failure::NodeLost(pod_message),
            _ => match terminated(container_state) {
                Some(t) if t.reason.as_deref() == Some("OOMKilled") => Failure::OomKilled,
                Some(t) => Failure::Exited { code: t.exit_code, reason: t.reason.clone(), message: t.message.clone() },
                None => Failure::Exited { code: -1, reason: Some(pod_reason), message: Some(pod_message) },
            },
        }),
        // A terminated container in a running pod is not the end yet: the
        // pod's phase (and reason, such as Evicted) follows.
        Some("Running") => State::Running,
        _ => {
            let waiting = container_state.and_then(|s| s.waiting.as_ref());
            if let Some(w) = waiting.filter(|w| w.reason.as_deref().is_some_and(|r| FATAL_WAITING.contains(&r))) {
                let reason = w.reason.clone().unwrap_or_default();
                let message = w.message.clone().unwrap_or_default();
                let image = container_status.map(|c| c.image.clone()).unwrap_or_default();
                let failure = if reason.contains("Image") {
                    Failure::ImagePull { image, reason, message }
                } else {
                    Failure::CannotStart { reason, message }
                };
                return State::Waiting(Some(failure));
            }
            let unschedulable = status.conditions.iter().flatten().find(|c| {
                c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
            });
            State::Waiting(unschedulable.map(|c| Failure::Unschedulable(c.message.clone().unwrap_or_default())))
        }
    }
}

fn terminated(state: Option<&ContainerState>) -> Option<&k8s_openapi::api::core::v1::ContainerStateTerminated> {
    state.and_then(|s| s.terminated.as_ref())
}

/// How long the API may stay unreachable before following a pod gives up.
pub const API_OUTAGE_LIMIT: Duration = Duration::from_secs(120);

/// Whether an error of a call to the API may go away by itself.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status_is_transient(status.code),
        // Connection refused or reset, TLS and HTTP errors, timeouts.
        _ => true,
    }
}

fn status_is_transient(code: u16) -> bool {
    // 410 Gone: the watch's resource version is too old; the watcher relists.
    code == 410 || code == 429 || code >= 500
}

fn watch_error_is_transient(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            is_transient(e)
        }
        watcher::Error::WatchError(status) => status_is_transient(status.code),
        watcher::Error::NoResourceVersion => false,
    }
}

/// The current stretch of failed calls to the API, if any.
#[derive(Debug)]
struct Outage {
    since: Option<Instant>,
    /// Whether to tell the user it began and ended (once per pod, by the watch).
    report: bool,
}

impl Outage {
    fn reported() -> Self {
        Self { since: None, report: true }
    }

    fn quiet() -> Self {
        Self { since: None, report: false }
    }

    /// Notes a failed call; whether to keep trying.
    fn keep_trying(&mut self, error: &dyn std::fmt::Display, transient: bool, limit: Duration) -> bool {
        let since = *self.since.get_or_insert_with(|| {
            if transient && self.report {
                tracing::warn!(
                    "Lost contact with the Kubernetes API ({error}); retrying for up to {} s",
                    limit.as_secs()
                );
            }
            Instant::now()
        });
        transient && since.elapsed() < limit
    }

    /// Notes a call that worked.
    fn over(&mut self) {
        if let Some(since) = self.since.take().filter(|_| self.report) {
            tracing::info!("The Kubernetes API answers again after {} s", since.elapsed().as_secs());
        }
    }
}

/// A failed call to the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the pod in namespace {namespace}: {source}")]
    Create { namespace: String, source: kube::Error },
    #[error("lost the watch on pod {name}: {source}")]
    Watch { name: String, source: watcher::Error },
    #[error("lost contact with the Kubernetes API for more than {} s while watching pod {name}: {source}", API_OUTAGE_LIMIT.as_secs())]
    Unreachable { name: String, source: watcher::Error },
    #[error("the watch on pod {name} ended")]
    WatchEnded { name: String },
    #[error("the API server refused to attach to pod {name} ({code} {reason}: {})", message.trim_end_matches([':', ' ']))]
    AttachRefused { name: String, code: u16, reason: String, message: String },
    #[error("cannot attach to pod {name}: {source}")]
    Attach { name: String, source: kube::Error },
    #[error("cannot send the input of pod {name}: {source}")]
    Stdin { name: String, source: std::io::Error },
    #[error("cannot delete pod {name}: {source}")]
    Delete { name: String, source: kube::Error },
    #[error("cannot read the log of pod {name}: {source}")]
    Log { name: String, source: kube::Error },
}

/// A pod this process created.
#[derive(Clone)]
pub struct RunningPod {
    api: Api<Pod>,
    pub name: String,
    pub namespace: String,
    /// Set by the server; what an ownerReference to the pod names.
    pub uid: String,
}

impl RunningPod {
    /// Creates the pod (its name is generated by the server).
    pub async fn create(api: Api<Pod>, namespace: &str, pod: &Pod) -> Result<Self, Error> {
        let created = api
            .create(&PostParams::default(), pod)
            .await
            .map_err(|source| Error::Create { namespace: namespace.to_string(), source })?;
        let name = created.metadata.name.unwrap_or_default();
        let uid = created.metadata.uid.unwrap_or_default();
        Ok(Self { api, name, namespace: namespace.to_string(), uid })
    }

    /// The pod's states as they change, from one watch on its name, resumed
    /// after a disconnect from where it left off. Deletion ends in `Deleted`.
    /// Transient errors are waited out up to [`API_OUTAGE_LIMIT`].
    pub fn states(&self, container: &'static str) -> impl Stream<Item = Result<State, Error>> + Send + 'static {
        let name = self.name.clone();
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let mut outage = Outage::reported();
        watcher::watcher(self.api.clone(), config)
            .default_backoff()
            .filter_map(move |event| {
                std::future::ready(match event {
                    Ok(event) => {
                        outage.over();
                        Some(Ok(event))
                    }
                    Err(source) => {
                        let transient = watch_error_is_transient(&source);
                        let name = name.clone();
                        match outage.keep_trying(&source, transient, API_OUTAGE_LIMIT) {
                            true => None,
                            false if transient => Some(Err(Error::Unreachable { name, source })),
                            false => Some(Err(Error::Watch { name, source })),
                        }
                    }
                })
            })
            .try_filter_map(move |event| async move {
                Ok(match event {
                    Event::Apply(pod) | Event::InitApply(pod) => Some(state(&pod, container)),
                    Event::Delete(_) => Some(State::Failed(Failure::Deleted)),
                    Event::Init | Event::InitDone => None,
                })
            })
    }

    /// Follows the container's log from its start until the container ends,
    /// handing each chunk of bytes to `sink`. A dropped stream is reopened
    /// and what was already seen is skipped, so nothing is shown twice. An
    /// error that waiting does not fix (a refusal) ends it with that error.
    pub async fn follow_log(&self, container: &str, mut sink: impl FnMut(&[u8])) -> Result<(), Error> {
        let mut seen: u64 = 0;
        let mut outage = Outage::quiet();
        loop {
            let params = LogParams { follow: true, container: Some(container.to_string()), ..LogParams::default() };
            let mut read: u64 = 0;
            match self.api.log_stream(&self.name, &params).await {
                Ok(stream) => {
                    outage.over();
                    let mut stream = std::pin::pin!(stream);
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(len @ 1..) = stream.read(&mut buf).await {
                        // Skip what an earlier connection already delivered.
                        let skip = seen.saturating_sub(read).min(len as u64) as usize;
                        if skip < len {
                            sink(&buf[skip..len]);
                        }
                        read += len as u64;
                        seen = seen.max(read);
                    }
                }
                // The watch reports the outage; the log just keeps trying as long.
                Err(error) => {
                    let transient = is_transient(&error);
                    if !outage.keep_trying(&error, transient, API_OUTAGE_LIMIT) {
                        return Err(Error::Log { name: self.name.clone(), source: error });
                    }
                }
            }
            if self.has_finished().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Whether the pod is over (or gone); false while the API does not answer.
    async fn has_finished(&self) -> bool {
        match self.api.get_opt(&self.name).await {
            Ok(Some(pod)) => {
                matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded") | Some("Failed"))
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Attaches to the container's stdin and sends `chunks` into it, then
    /// closes it (the container has `stdinOnce`).
    pub async fn send_stdin<S>(&self, container: &str, chunks: S) -> Result<u64, Error>
    where
        S: Stream<Item = std::io::Result<Vec<u8>>>,
    {
        let params = AttachParams::default().container(container).stdin(true).stdout(false).stderr(false);
        let mut attached = self.api.attach(&self.name, &params).await.map_err(|source| match source {
            kube::Error::Api(status) => Error::AttachRefused {
                name: self.name.clone(),
                code: status.code,
                reason: status.reason,
                message: status.message,
            },
            source => Error::Attach { name: self.name.clone(), source },
        })?;
        let mut stdin = attached.stdin().expect("attached with stdin");
        let io = |source| Error::Stdin { name: self.name.clone(), source };
        let mut sent = 0u64;
        let mut chunks = std::pin::pin!(chunks);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(io)?;
            stdin.write_all(&chunk).await.map_err(io)?;
            sent += chunk.len() as u64;
        }
        stdin.shutdown().await.map_err(io)?;
        drop(stdin);
        let _ = attached.join().await;
        Ok(sent)
    }

    /// Deletes the pod at once (no grace period: it is ours and done).
    pub async fn delete(&self) -> Result<(), Error> {
        let params = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::background() };
        match self.api.delete(&self.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(Error::Delete { name: self.name.clone(), source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_waited_out_up_to_its_limit_and_a_refusal_is_not() {
        let mut outage = Outage::quiet();
        assert!(outage.keep_trying(&"connection refused", true, Duration::from_millis(50)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!outage.keep_trying(&"connection refused", true, Duration::from_millis(50)), "past the limit");
        outage.over();
        assert!(outage.keep_trying(&"connection refused", true, Duration::from_millis(50)), "a new outage");
        assert!(!Outage::quiet().keep_trying(&"403 Forbidden", false, Duration::from_secs(60)));
        let codes: Vec<bool> = [401, 403, 404, 410, 429, 500, 503].into_iter().map(status_is_transient).collect();
        assert_eq!(codes, [false, false, false, true, true, true, true]);
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kaniko-1-abcde"},
            "spec": {"containers": [{"name": "kaniko", "image": "kaniko"}], "activeDeadlineSeconds": 600},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn pending_without_problems_waits() {
        assert_eq!(state(&pod(serde_json::json!({"phase": "Pending"})), "kaniko"), State::Waiting(None));
    }

    #[test]
    fn image_pull_errors() {
        let p = pod(serde_json::json!({"phase": "Pending", "containerStatuses": [{
            "name": "kaniko", "image": "ghcr.io/x/kaniko:nope", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"ghcr.io/x/kaniko:nope\""}}
        }]}));
        let State::Waiting(Some(Failure::ImagePull { image, reason, .. })) = state(&p, "kaniko") else { panic!() };
        assert_eq!((image.as_str(), reason.as_str()), ("ghcr.io/x/kaniko:nope", "ImagePullBackOff"));
    }

    #[test]
    fn unschedulable_carries_the_scheduler_message() {
        let p = pod(serde_json::json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory."
        }]}));
        assert_eq!(
            state(&p, "kaniko"),
            State::Waiting(Some(Failure::Unschedulable("0/3 nodes are available: 3 Insufficient memory.".into())))
        );
    }

    #[test]
    fn outcomes() {
        let terminated = |reason: &str, code: i32, message: &str| {
            serde_json::json!([{"name": "kaniko", "image": "k", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}}}])
        };
        let ok = pod(
            serde_json::json!({"phase": "Succeeded", "containerStatuses": terminated("Completed", 0, "sha256:ab")}),
        );
        assert_eq!(state(&ok, "kaniko"), State::Succeeded { message: Some("sha256:ab".into()) });
        let oom = pod(serde_json::json!({"phase": "Failed", "containerStatuses": terminated("OOMKilled", 137, "")}));
        assert_eq!(state(&oom, "kaniko"), State::Failed(Failure::OomKilled));
        let exit = pod(
            serde_json::json!({"phase": "Failed", "containerStatuses": terminated("Error", 1, "error building image")}),
        );
        let State::Failed(failure) = state(&exit, "kaniko") else { panic!() };
        assert_eq!(failure.to_string(), "the container exited with code 1");
        let deadline = pod(
            serde_json::json!({"phase": "Failed", "reason": "DeadlineExceeded", "message": "Pod was active on the node longer than the specified deadline"}),
        );
        assert_eq!(state(&deadline, "kaniko"), State::Failed(Failure::DeadlineExceeded(600)));
        let evicted = pod(
            serde_json::json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}),
        );
        assert_eq!(
            state(&evicted, "kaniko"),
            State::Failed(Failure::Evicted("The node was low on resource: memory.".into()))
        );
        let running = pod(serde_json::json!({"phase": "Running"}));
        assert_eq!(state(&running, "kaniko"), State::Running);
    }
}
