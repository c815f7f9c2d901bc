//! The kubelet: schedules each new pod to the one node and drives it through its lifecycle
//! with the behaviours chosen per image: Pending → Running → Succeeded/Failed, restarts,
//! image pull errors, unschedulable pods, eviction, lost nodes, `activeDeadlineSeconds`
//! (DeadlineExceeded), and graceful deletion (the pod disappears once its containers stop).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::NODE_NAME;
use super::behaviour::Behaviour;
use super::events::{self, Involved, Level};
use super::runtime::{ContainerExit, ContainerRun, ContainerRuntime};
use super::status::{condition, container_mut, container_status, running, set_condition, terminated, waiting};
use crate::cluster::Cluster;
use crate::resources::ResourceType;
use crate::store::{Event, EventType, ResourceId, now};

/// Runs pods. One per cluster.
pub struct Kubelet {
    cluster: Arc<Cluster>,
    pods: Arc<ResourceType>,
    running: Mutex<HashMap<String, CancellationToken>>,
}

/// What ends a pod from outside its containers.
enum PodFault {
    Evicted(String),
    NodeLost,
}

impl Kubelet {
    /// Starts the kubelet's event loop on the current tokio runtime.
    pub fn start(cluster: Arc<Cluster>) -> Option<Arc<Self>> {
        let pods = cluster.resource("", "pods").ok()?;
        let kubelet = Arc::new(Self { cluster: cluster.clone(), pods, running: Mutex::default() });
        let rx = cluster.store.subscribe();
        tokio::spawn(kubelet.clone().event_loop(rx));
        Some(kubelet)
    }

    /// The stdin of a running container that set `stdin: true` (for attach).
    pub fn stdin(&self, uid: &str, container: &str) -> Option<mpsc::Sender<Bytes>> {
        self.cluster.stdin.get(uid, container)
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn event_loop(self: Arc<Self>, mut rx: broadcast::Receiver<Arc<Event>>) {
        let id = ResourceId::of(&self.pods);
        loop {
            match rx.recv().await {
                Ok(event) if event.resource == id => self.on_event(&event),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => self.resync(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn resync(self: &Arc<Self>) {
        for pod in self.cluster.store.list(&self.pods, None).0 {
            let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_string();
            if !self.running().contains_key(&uid) && pod["spec"]["nodeName"].is_null() {
                self.spawn(&pod);
            }
        }
    }

    fn on_event(self: &Arc<Self>, event: &Event) {
        let pod = &event.object;
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        match event.kind {
            EventType::Added => self.spawn(pod),
            EventType::Modified if !pod["metadata"]["deletionTimestamp"].is_null() => {
                let token = self.running().get(&uid).cloned();
                match token {
                    Some(token) => token.cancel(),
                    None => self.finish_deletion(&event.namespace, pod),
                }
            }
            EventType::Modified => {}
            EventType::Deleted => {
                if let Some(token) = self.running().remove(&uid) {
                    token.cancel();
                }
                self.cluster.logs.remove_pod(&uid);
            }
        }
    }

    fn spawn(self: &Arc<Self>, pod: &Value) {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let cancel = CancellationToken::new();
        self.running().insert(uid.clone(), cancel.clone());
        let run = PodRun {
            kubelet: self.clone(),
            ns: pod["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
            name: pod["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            uid,
            cancel,
        };
        tokio::spawn(run.run());
    }

    fn finish_deletion(&self, ns: &str, pod: &Value) {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        // Already removed by a concurrent path: nothing left to do.
        let _ = self.cluster.store.remove(&self.pods, ns, name);
    }
}

/// One pod's lifecycle task.
struct PodRun {
    kubelet: Arc<Kubelet>,
    ns: String,
    name: String,
    uid: String,
    cancel: CancellationToken,
}

impl PodRun {
    async fn run(self) {
        self.lifecycle().await;
        self.kubelet.running().remove(&self.uid);
        if let Some(pod) = self.current()
            && !pod["metadata"]["deletionTimestamp"].is_null()
        {
            self.kubelet.finish_deletion(&self.ns, &pod);
        }
    }

    fn current(&self) -> Option<Value> {
        let pod = self.kubelet.cluster.store.find(&ResourceId::of(&self.kubelet.pods), &self.ns, &self.name)?;
        (pod["metadata"]["uid"].as_str() == Some(self.uid.as_str())).then_some(pod)
    }

    /// Changes the stored pod; false once it is gone.
    fn update(&self, change: impl FnOnce(&mut Value)) -> bool {
        let uid = self.uid.clone();
        let result = self.kubelet.cluster.store.update(&self.kubelet.pods, &self.ns, &self.name, None, |current| {
            if current["metadata"]["uid"].as_str() != Some(uid.as_str()) {
                return Err(crate::error::ApiError::conflict(self.kubelet.pods.target(), &self.name));
            }
            let mut next = current.clone();
            change(&mut next);
            Ok(next)
        });
        result.is_ok()
    }

    fn event(&self, component: &str, level: Level, reason: &str, message: &str) {
        let pod = Involved { namespace: &self.ns, name: &self.name, uid: &self.uid };
        events::record(&self.kubelet.cluster, &pod, component, level, reason, message);
    }

    fn status(&self, change: impl FnOnce(&mut Value)) -> bool {
        self.update(|pod| change(&mut pod["status"]))
    }

    async fn lifecycle(&self) {
        let Some(pod) = self.current() else { return };
        let spec = pod["spec"].clone();
        let restart = spec["restartPolicy"].as_str().unwrap_or("Always").to_string();
        let behaviours = &self.kubelet.cluster.behaviours;
        let containers: Vec<Value> = spec["containers"].as_array().cloned().unwrap_or_default();
        let inits: Vec<Value> = spec["initContainers"].as_array().cloned().unwrap_or_default();
        let behaviour_of = |c: &Value| behaviours.for_image(c["image"].as_str().unwrap_or_default(), &restart);
        let all: Vec<(Value, Behaviour)> =
            inits.iter().chain(&containers).map(|c| (c.clone(), behaviour_of(c))).collect();

        if let Some(message) = all.iter().find_map(|(_, b)| match b {
            Behaviour::Unschedulable { message } => Some(message.clone()),
            _ => None,
        }) {
            self.status(|s| {
                set_condition(s, condition("PodScheduled", "False", Some("Unschedulable"), Some(&message)))
            });
            self.event("default-scheduler", Level::Warning, "FailedScheduling", &message);
            self.cancel.cancelled().await;
            return;
        }
        if !self.bind(&inits, &containers) {
            return;
        }
        let assigned = format!("Successfully assigned {}/{} to {NODE_NAME}", self.ns, self.name);
        self.event("default-scheduler", Level::Normal, "Scheduled", &assigned);
        if let Some((container, message)) = all.iter().find_map(|(c, b)| match b {
            Behaviour::PullError { message } => Some((c.clone(), message.clone())),
            _ => None,
        }) {
            self.fail_pull(&container, &message).await;
            return;
        }
        let runtime_of = |b: &Behaviour| match b {
            Behaviour::Run(runtime) => runtime.clone(),
            _ => Arc::new(super::ScriptRuntime { forever: true, ..Default::default() }) as Arc<dyn ContainerRuntime>,
        };
        let init_restart = if restart == "Never" { "Never" } else { "OnFailure" };
        for (init, behaviour) in all.iter().take(inits.len()) {
            let exit = self
                .run_container(init, "initContainerStatuses", runtime_of(behaviour), init_restart, self.cancel.clone())
                .await;
            if self.cancel.is_cancelled() {
                return;
            }
            if exit.exit_code != 0 {
                self.status(|s| s["phase"] = json!("Failed"));
                return;
            }
        }
        let fault = all.iter().find_map(|(_, b)| match b {
            Behaviour::Evicted { after, message } => Some((*after, PodFault::Evicted(message.clone()))),
            Behaviour::NodeLost { after } => Some((*after, PodFault::NodeLost)),
            _ => None,
        });
        let mains: Vec<(Value, Arc<dyn ContainerRuntime>)> =
            all.iter().skip(inits.len()).map(|(c, b)| (c.clone(), runtime_of(b))).collect();
        self.run_main(mains, &restart, spec["activeDeadlineSeconds"].as_u64(), fault).await;
    }

    fn bind(&self, inits: &[Value], containers: &[Value]) -> bool {
        let now = now();
        self.update(|pod| {
            pod["spec"]["nodeName"] = json!(NODE_NAME);
            let status = &mut pod["status"];
            status["phase"] = json!("Pending");
            status["hostIP"] = json!("10.0.0.10");
            status["hostIPs"] = json!([{"ip": "10.0.0.10"}]);
            status["startTime"] = json!(now);
            set_condition(status, condition("PodScheduled", "True", None, None));
            set_condition(
                status,
                condition("Initialized", if inits.is_empty() { "True" } else { "False" }, None, None),
            );
            set_condition(status, condition("Ready", "False", Some("ContainersNotReady"), None));
            set_condition(status, condition("ContainersReady", "False", Some("ContainersNotReady"), None));
            status["containerStatuses"] =
                containers.iter().map(|c| container_status(c, waiting("ContainerCreating", None))).collect();
            if !inits.is_empty() {
                status["initContainerStatuses"] =
                    inits.iter().map(|c| container_status(c, waiting("PodInitializing", None))).collect();
            }
        })
    }

    async fn fail_pull(&self, container: &Value, message: &str) {
        let name = container["name"].as_str().unwrap_or_default();
        let image = container["image"].as_str().unwrap_or_default();
        let list = self.list_of(name);
        let pull_message =
            format!("rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": {message}");
        self.status(|s| {
            if let Some(cs) = container_mut(s, list, name) {
                cs["state"] = waiting("ErrImagePull", Some(&pull_message));
            }
        });
        self.event("kubelet", Level::Warning, "Failed", &format!("Failed to pull image \"{image}\": {pull_message}"));
        self.event("kubelet", Level::Warning, "Failed", "Error: ErrImagePull");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = self.cancel.cancelled() => return,
        }
        let backoff = format!("Back-off pulling image \"{image}\": ErrImagePull: {pull_message}");
        self.status(|s| {
            if let Some(cs) = container_mut(s, list, name) {
                cs["state"] = waiting("ImagePullBackOff", Some(&backoff));
            }
        });
        self.event("kubelet", Level::Normal, "BackOff", &backoff);
        self.cancel.cancelled().await;
    }

    fn list_of(&self, container: &str) -> &'static str {
        let pod = self.current().unwrap_or_default();
        let is_init =
            pod["spec"]["initContainers"].as_array().is_some_and(|l| l.iter().any(|c| c["name"] == container));
        if is_init { "initContainerStatuses" } else { "containerStatuses" }
    }

    async fn run_main(
        &self,
        mains: Vec<(Value, Arc<dyn ContainerRuntime>)>,
        restart: &str,
        deadline: Option<u64>,
        fault: Option<(Duration, PodFault)>,
    ) {
        let pod_ip = format!("10.244.0.{}", rand::random_range(2..=254));
        // The sandbox has its IP; the phase stays Pending until every container has started.
        self.status(|s| {
            s["podIP"] = json!(pod_ip);
            s["podIPs"] = json!([{"ip": pod_ip}]);
            set_condition(s, condition("Initialized", "True", None, None));
        });
        let stop = self.cancel.child_token();
        let runs = mains
            .iter()
            .map(|(c, runtime)| self.run_container(c, "containerStatuses", runtime.clone(), restart, stop.clone()));
        let all = futures_util::future::join_all(runs);
        tokio::pin!(all);
        let deadline = async {
            match deadline {
                Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
                None => std::future::pending().await,
            }
        };
        let (fault_after, fault) = match fault {
            Some((after, fault)) => (Some(after), Some(fault)),
            None => (None, None),
        };
        let fault_timer = async {
            match fault_after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            exits = &mut all => {
                let phase = if exits.iter().all(|e| e.exit_code == 0) { "Succeeded" } else { "Failed" };
                self.status(|s| {
                    s["phase"] = json!(phase);
                    set_condition(s, condition("Ready", "False", Some("PodCompleted"), None));
                    set_condition(s, condition("ContainersReady", "False", Some("PodCompleted"), None));
                });
            }
            _ = deadline => {
                stop.cancel();
                all.await;
                self.fail_pod("DeadlineExceeded", "Pod was active on the node longer than the specified deadline");
            }
            _ = fault_timer => match fault {
                Some(PodFault::Evicted(message)) => {
                    stop.cancel();
                    all.await;
                    self.fail_pod("Evicted", &message);
                }
                _ => {
                    let message = format!("Node {NODE_NAME} which was running pod {} is unresponsive", self.name);
                    self.status(|s| {
                        s["phase"] = json!("Unknown");
                        s["reason"] = json!("NodeLost");
                        s["message"] = json!(message);
                        set_condition(s, condition("Ready", "Unknown", Some("NodeLost"), Some(&message)));
                    });
                    all.await;
                }
            },
        }
    }

    fn fail_pod(&self, reason: &str, message: &str) {
        self.event("kubelet", Level::Warning, reason, message);
        self.status(|s| {
            s["phase"] = json!("Failed");
            s["reason"] = json!(reason);
            s["message"] = json!(message);
            set_condition(s, condition("Ready", "False", Some("PodFailed"), None));
        });
    }

    /// The container as it starts (environment resolved, arguments expanded).
    /// While that fails the container waits in `CreateContainerConfigError`
    /// and the kubelet tries again; `None` once cancelled.
    async fn config_of(
        &self,
        container: &Value,
        list: &'static str,
        name: &str,
        cancel: &CancellationToken,
    ) -> Option<Value> {
        loop {
            match super::env::resolve(&self.kubelet.cluster, &self.ns, container) {
                Ok(resolved) => return Some(resolved),
                Err(message) => {
                    self.status(|s| {
                        if let Some(cs) = container_mut(s, list, name) {
                            cs["state"] = waiting("CreateContainerConfigError", Some(&message));
                        }
                    });
                    self.event("kubelet", Level::Warning, "Failed", &format!("Error: {message}"));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = cancel.cancelled() => return None,
            }
        }
    }

    /// Runs one container, restarting it as `restart` says; writes its states on the way.
    async fn run_container(
        &self,
        container: &Value,
        list: &'static str,
        runtime: Arc<dyn ContainerRuntime>,
        restart: &str,
        cancel: CancellationToken,
    ) -> ContainerExit {
        let name = container["name"].as_str().unwrap_or_default().to_string();
        let mut restarts = 0u32;
        loop {
            let container = match self.config_of(container, list, &name, &cancel).await {
                Some(resolved) => resolved,
                None => return ContainerExit::killed(),
            };
            let container = &container;
            let started = now();
            let container_id = format!("containerd://{}", crate::auth::random_token());
            let log = self.kubelet.cluster.logs.open(&self.uid, &name);
            let is_main = list == "containerStatuses";
            self.status(|s| {
                if let Some(cs) = container_mut(s, list, &name) {
                    cs["state"] = running(&started);
                    cs["ready"] = json!(is_main);
                    cs["started"] = json!(true);
                    cs["containerID"] = json!(container_id);
                    cs["imageID"] =
                        json!(format!("{}@sha256:{}", cs["image"].as_str().unwrap_or_default(), "0".repeat(64)));
                }
                if is_main {
                    running_once_all_started(s);
                }
                refresh_ready(s);
            });
            let image = container["image"].as_str().unwrap_or_default();
            self.event(
                "kubelet",
                Level::Normal,
                "Pulled",
                &format!("Container image \"{image}\" already present on machine"),
            );
            self.event("kubelet", Level::Normal, "Created", &format!("Created container: {name}"));
            self.event("kubelet", Level::Normal, "Started", &format!("Started container {name}"));
            let stdin = (container["stdin"] == true).then(|| {
                let (tx, rx) = mpsc::channel(64);
                self.kubelet.cluster.stdin.insert(&self.uid, &name, tx);
                rx
            });
            let run = ContainerRun {
                pod: self.current().unwrap_or_default(),
                container: container.clone(),
                log: log.clone(),
                stdin,
                cancel: cancel.clone(),
            };
            let mut exit = runtime.run(run).await;
            if cancel.is_cancelled() {
                self.event("kubelet", Level::Normal, "Killing", &format!("Stopping container {name}"));
            }
            log.close();
            self.kubelet.cluster.stdin.take(&self.uid, &name);
            if exit.message.is_none()
                && exit.exit_code != 0
                && container["terminationMessagePolicy"] == "FallbackToLogsOnError"
            {
                exit.message = Some(log.tail(80, 2048));
            }
            let again = match restart {
                "Always" => true,
                "OnFailure" => exit.exit_code != 0,
                _ => false,
            };
            let state = terminated(&exit, &started, &container_id);
            if !again || cancel.is_cancelled() {
                self.status(|s| {
                    if let Some(cs) = container_mut(s, list, &name) {
                        cs["state"] = state;
                        cs["ready"] = json!(false);
                        cs["started"] = json!(false);
                    }
                    refresh_ready(s);
                });
                return exit;
            }
            restarts += 1;
            let backoff = Duration::from_millis(500 * 2u64.pow(restarts.min(4)));
            let message = format!(
                "back-off {}s restarting failed container={name} pod={}_{}({})",
                backoff.as_secs(),
                self.name,
                self.ns,
                self.uid
            );
            self.status(|s| {
                if let Some(cs) = container_mut(s, list, &name) {
                    cs["lastState"] = state;
                    cs["state"] = waiting("CrashLoopBackOff", Some(&message));
                    cs["ready"] = json!(false);
                    cs["started"] = json!(false);
                    cs["restartCount"] = json!(restarts);
                }
                refresh_ready(s);
            });
            self.event(
                "kubelet",
                Level::Warning,
                "BackOff",
                &format!("Back-off restarting failed container {name} in pod {}_{}({})", self.name, self.ns, self.uid),
            );
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = cancel.cancelled() => return ContainerExit::killed(),
            }
        }
    }
}

/// Recomputes the Ready and ContainersReady conditions from the container statuses.
/// The kubelet's `getPhase` (kubernetes pkg/kubelet/kubelet_pods.go, a 1.3x copy read through the code search, not pinned to 1.34) for a pod
/// whose containers are starting: Running once no regular container waits to start
/// for the first time (one restarting counts as stopped), Pending until then. A client
/// that sees Running can read every container's log.
fn running_once_all_started(status: &mut Value) {
    if status["phase"] == "Succeeded" || status["phase"] == "Failed" {
        return;
    }
    let waiting = status["containerStatuses"].as_array().is_none_or(|list| {
        list.iter().any(|c| c["state"]["waiting"].is_object() && !c["lastState"]["terminated"].is_object())
    });
    if !waiting {
        status["phase"] = json!("Running");
    }
}

fn refresh_ready(status: &mut Value) {
    if status["phase"] != "Running" {
        return;
    }
    let all_ready = status["containerStatuses"].as_array().is_some_and(|l| l.iter().all(|c| c["ready"] == true));
    let (value, reason) = if all_ready { ("True", None) } else { ("False", Some("ContainersNotReady")) };
    for kind in ["ContainersReady", "Ready"] {
        let unchanged = status["conditions"]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["type"] == kind && c["status"] == value));
        if !unchanged {
            set_condition(status, condition(kind, value, reason, None));
        }
    }
}
