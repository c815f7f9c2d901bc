//! Pod behaviours chosen per image: failure modes (image pull, unschedulable, OOMKilled,
//! evicted, node lost, activeDeadlineSeconds) with the events that explain them, and
//! `pods/log` options.

use std::time::Duration;

use azp_kube_world::Behaviour;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::{Value, json};

use crate::support::{client, world};

async fn pods() -> Api<Pod> {
    let w = world();
    let ns = w.unique_namespace("pods").expect("namespace");
    Api::namespaced(client(w.kubeconfig()).await, &ns)
}

async fn start(pods: &Api<Pod>, name: &str, spec: Value) {
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod");
    pods.create(&PostParams::default(), &pod).await.expect("create");
}

/// Waits until the pod's JSON satisfies `ready`, and returns it.
async fn until(pods: &Api<Pod>, name: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let cond = move |p: Option<&Pod>| p.is_some_and(|p| ready(&serde_json::to_value(p).unwrap_or_default()));
    let pod = tokio::time::timeout(Duration::from_secs(20), await_condition(pods.clone(), name, cond)).await;
    serde_json::to_value(pod.expect("in time").expect("watch").expect("pod")).expect("json")
}

fn single(image: &str, restart: &str) -> Value {
    json!({"restartPolicy": restart, "containers": [{"name": "main", "image": image}]})
}

#[tokio::test]
async fn failure_modes_show_in_pod_status() {
    let w = world();
    let pods = pods().await;
    w.set_behaviour("registry.world/nopull", Behaviour::pull_error());
    w.set_behaviour("registry.world/huge", Behaviour::unschedulable("0/1 nodes are available: 1 Insufficient memory."));
    w.set_behaviour("registry.world/oom", Behaviour::oom_killed(Duration::from_millis(200)));
    w.set_behaviour("registry.world/evicted", Behaviour::evicted(Duration::from_millis(200)));
    w.set_behaviour("registry.world/lost", Behaviour::node_lost(Duration::from_millis(200)));
    w.set_behaviour("registry.world/forever", Behaviour::serve(&[]));
    for (name, image) in
        [("nopull", "nopull:1"), ("huge", "huge:1"), ("oom", "oom:1"), ("evicted", "evicted:1"), ("lost", "lost:1")]
    {
        start(&pods, name, single(&format!("registry.world/{image}"), "Never")).await;
    }
    let mut deadline = single("registry.world/forever:1", "Never");
    deadline["activeDeadlineSeconds"] = json!(1);
    start(&pods, "deadline", deadline).await;

    let waiting = |p: &Value| p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff";
    assert_eq!(until(&pods, "nopull", waiting).await["status"]["phase"], "Pending");
    let scheduled = until(&pods, "huge", |p| p["status"]["conditions"][0]["reason"] == "Unschedulable").await;
    assert_eq!(scheduled["status"]["conditions"][0]["message"], "0/1 nodes are available: 1 Insufficient memory.");
    let oom = until(&pods, "oom", |p| p["status"]["phase"] == "Failed").await;
    assert_eq!(oom["status"]["containerStatuses"][0]["state"]["terminated"]["reason"], "OOMKilled");
    assert_eq!(until(&pods, "evicted", |p| p["status"]["phase"] == "Failed").await["status"]["reason"], "Evicted");
    assert_eq!(until(&pods, "lost", |p| p["status"]["phase"] == "Unknown").await["status"]["reason"], "NodeLost");
    let expired = until(&pods, "deadline", |p| p["status"]["phase"] == "Failed").await;
    assert_eq!(expired["status"]["reason"], "DeadlineExceeded");

    let events: Api<Event> = Api::namespaced(pods.clone().into_client(), pods.namespace().unwrap_or_default());
    let reasons = |name: &'static str| {
        let events = events.clone();
        async move {
            let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
            let list = events.list(&params).await.expect("events");
            list.items.into_iter().filter_map(|e| e.reason).collect::<Vec<_>>()
        }
    };
    assert!(reasons("huge").await.contains(&"FailedScheduling".to_string()));
    let pull = reasons("nopull").await;
    assert!(pull.contains(&"Scheduled".to_string()) && pull.contains(&"Failed".to_string()), "{pull:?}");
}

#[tokio::test]
async fn logs_honour_container_tail_and_timestamps() {
    let w = world();
    let pods = pods().await;
    w.set_behaviour("registry.world/chatty:1", Behaviour::exit(&["a", "b", "c", "d"], 0, Duration::from_millis(200)));
    let spec = json!({"restartPolicy": "Never", "containers": [
        {"name": "one", "image": "registry.world/chatty:1"},
        {"name": "two", "image": "registry.world/chatty:1"},
    ]});
    start(&pods, "duo", spec).await;
    until(&pods, "duo", |p| p["status"]["phase"] == "Succeeded").await;
    let err = pods.logs("duo", &LogParams::default()).await.expect_err("two containers need a name");
    assert!(
        err.to_string().contains("a container name must be specified for pod duo, choose one of: [one two]"),
        "{err}"
    );
    let tail = LogParams { container: Some("two".into()), tail_lines: Some(2), ..LogParams::default() };
    assert_eq!(pods.logs("duo", &tail).await.expect("logs"), "c\nd\n");
    let stamped = LogParams { container: Some("one".into()), timestamps: true, ..LogParams::default() };
    let text = pods.logs("duo", &stamped).await.expect("logs");
    let first = text.lines().next().expect("a line");
    let (stamp, line) = first.split_once(' ').expect("timestamp and text");
    assert!(stamp.parse::<jiff::Timestamp>().is_ok() && line == "a", "{first}");
}

/// The kubelet's `getPhase` (kubernetes pkg/kubelet/kubelet_pods.go, a 1.3x copy read through the code search, not pinned to 1.34): a pod stays
/// Pending while one of its containers waits to start, even when another runs, and is
/// Running once all have started. (The world once said Running before any container
/// had started, so a client that then asked for the log got "waiting to start".)
#[tokio::test]
async fn a_pod_is_pending_until_every_container_has_started() {
    let w = world();
    let pods = pods().await;
    w.set_behaviour("registry.world/phase-serve", Behaviour::serve(&["up"]));
    let secret_env = json!([{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]);
    start(
        &pods,
        "two",
        json!({"restartPolicy": "Never", "containers": [
            {"name": "first", "image": "registry.world/phase-serve:1"},
            {"name": "second", "image": "registry.world/phase-serve:1", "env": secret_env},
        ]}),
    )
    .await;
    let state = |p: &Value, i: usize| p["status"]["containerStatuses"][i]["state"].clone();
    let half = until(&pods, "two", |p| {
        state(p, 0)["running"].is_object() && state(p, 1)["waiting"]["reason"] == "CreateContainerConfigError"
    })
    .await;
    assert_eq!(half["status"]["phase"], "Pending", "{half}");
    // The running container's log can be read (its line comes a moment after the start).
    let first = LogParams { container: Some("first".into()), ..LogParams::default() };
    let mut log = String::new();
    for _ in 0..100 {
        log = pods.logs("two", &first).await.expect("the running container's log");
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log, "up\n");

    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(pods.clone().into_client(), pods.namespace().unwrap());
    let secret =
        serde_json::from_value(json!({"metadata": {"name": "later"}, "stringData": {"token": "t"}})).expect("secret");
    secrets.create(&PostParams::default(), &secret).await.expect("create the secret");
    let running = until(&pods, "two", |p| p["status"]["phase"] == "Running").await;
    assert!(state(&running, 0)["running"].is_object() && state(&running, 1)["running"].is_object(), "{running}");
}
