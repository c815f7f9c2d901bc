//! Faults on demand, each survived by real clients: watch streams cut after a few events
//! (kube-rs's watcher and helm 4's `--wait`), a followed log stream cut after a few bytes
//! (kube-rs and kubectl follow again and read the rest), and a burst of 503s plus delays
//! (kube-rs's retry policy and client-go's Retry-After handling in helm and kubectl).
//! Each case has a world of its own, since faults disturb every client of a world.

use std::time::{Duration, Instant};

use azp_kube_world::faults::Scope;
use azp_kube_world::{Behaviour, Options, World};
use futures_util::{AsyncReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, LogParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::support::{chart, client, run_with};

fn own_world() -> World {
    World::start_with(Options { aws: false, ..Options::default() }).expect("world")
}

fn ok(w: &World, tool: &std::path::Path, args: &[&str]) -> String {
    let out = run_with(w, tool, args, &[]);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn dropped_watches_are_survived_by_kube_rs_and_helm() {
    let w = own_world();
    let ns = w.unique_namespace("faults").expect("namespace");
    let cms: Api<ConfigMap> = Api::namespaced(client(w.kubeconfig()).await, &ns);
    w.faults().drop_watches_after(2, 10);
    let events = watcher(cms.clone(), watcher::Config::default()).applied_objects();
    let collect = tokio::spawn(async move {
        let mut names = std::collections::BTreeSet::new();
        let mut events = std::pin::pin!(events);
        while names.len() < 8 {
            let cm: ConfigMap = events.try_next().await.expect("the watcher recovers").expect("an event");
            names.insert(cm.metadata.name.unwrap_or_default());
        }
        names
    });
    for i in 0..8 {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}})).expect("cm");
        cms.create(&PostParams::default(), &cm).await.expect("create");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let names = tokio::time::timeout(Duration::from_secs(20), collect).await.expect("in time").expect("task");
    assert_eq!(names.len(), 8);
    assert!(w.faults().fired() >= 2, "watches were cut {} times", w.faults().fired());

    // helm 4 --wait watches (watch-list) until the Deployment is ready.
    let before = w.faults().fired();
    w.faults().drop_watches_after(1, 20);
    let chart = chart();
    let args = ["upgrade", "--install", "cut", &chart, "-n", &ns, "--wait", "--timeout", "40s"];
    ok(&w, &w.tools().helm4, &args);
    assert!(w.faults().fired() > before, "helm's watches were cut");
    w.faults().reset();
}

#[tokio::test]
async fn a_dropped_log_stream_is_survived_by_kube_rs_and_kubectl() {
    let w = own_world();
    let ns = w.unique_namespace("faults").expect("namespace");
    let lines: Vec<String> = (0..10).map(|i| format!("line {i:02} of the build")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    w.set_behaviour("registry.world/chatty:1", Behaviour::exit(&refs, 0, Duration::from_secs(2)));
    let pods: Api<Pod> = Api::namespaced(client(w.kubeconfig()).await, &ns);
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "chatty"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "registry.world/chatty:1"}]}}))
    .expect("pod");
    pods.create(&PostParams::default(), &pod).await.expect("create");
    let running =
        |p: Option<&Pod>| p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some("Running");
    kube::runtime::wait::await_condition(pods.clone(), "chatty", running).await.expect("running");

    w.faults().drop_logs_after(30, 1);
    let follow = LogParams { follow: true, ..Default::default() };
    let read = |pods: Api<Pod>, params: LogParams| async move {
        let stream = pods.log_stream("chatty", &params).await.expect("log stream");
        let mut bytes = Vec::new();
        let mut stream = std::pin::pin!(stream);
        // A cut stream ends like a finished one: no error, just the end.
        stream.read_to_end(&mut bytes).await.expect("read the log");
        String::from_utf8(bytes).expect("utf-8")
    };
    let cut = read(pods.clone(), follow.clone()).await;
    assert_eq!(cut.len(), 30, "the first stream was cut after 30 bytes: {cut:?}");
    // Following again (from the start, as a client that lost its stream does) reads everything.
    let full = read(pods.clone(), follow).await;
    assert!(full.starts_with(&cut) && full.contains("line 09 of the build"), "{full}");

    w.faults().drop_logs_after(20, 1);
    let cut = ok(&w, &w.tools().kubectl, &["logs", "-f", "chatty", "-n", &ns]);
    assert_eq!(cut.len(), 20, "{cut:?}");
    let full = ok(&w, &w.tools().kubectl, &["logs", "-f", "chatty", "-n", &ns]);
    assert!(full.contains("line 09 of the build"), "{full}");
}

#[tokio::test]
async fn a_burst_of_503s_and_delays_are_survived_by_kube_rs_helm_and_kubectl() {
    let w = own_world();
    let ns = w.unique_namespace("faults").expect("namespace");
    let pods: Api<Pod> = Api::namespaced(client(w.kubeconfig()).await, &ns);

    w.faults().fail_next(3, 503, Scope::path(&format!("/api/v1/namespaces/{ns}/pods")));
    pods.list(&Default::default()).await.expect("kube-rs retries 503s");
    assert_eq!(w.faults().fired(), 3);

    w.faults().delay_next(1, Duration::from_millis(400), Scope::path("/api/v1").method("GET"));
    let started = Instant::now();
    pods.list(&Default::default()).await.expect("a delayed list");
    assert!(started.elapsed() >= Duration::from_millis(400));

    let chart = chart();
    w.faults().fail_next(3, 503, Scope::all());
    let args = ["upgrade", "--install", "bursty", &chart, "-n", &ns, "--wait", "--timeout", "40s"];
    ok(&w, &w.tools().helm4, &args);
    w.faults().fail_next(3, 503, Scope::all());
    ok(&w, &w.tools().helm3, &["status", "bursty", "-n", &ns]);
    w.faults().fail_next(2, 503, Scope::path("/api/v1/namespaces").method("GET"));
    ok(&w, &w.tools().kubectl, &["get", "configmaps", "-n", &ns]);
    assert_eq!(w.faults().fired(), 12);

    // A 500 is not retried: the client sees it.
    w.faults().fail_next(1, 500, Scope::path(&format!("/api/v1/namespaces/{ns}/pods")));
    match pods.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 500),
        other => panic!("expected 500, got {other:?}"),
    }
}
