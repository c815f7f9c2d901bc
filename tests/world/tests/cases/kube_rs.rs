//! kube-rs: a pod run end to end (await_condition, log stream, termination message,
//! delete), and a watch that resumes after the server closes it.

use std::time::Duration;

use azp_kube_world::{Behaviour, Options, World};
use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, LogParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;

use crate::support::{client, world};

#[tokio::test]
async fn kube_rs_pod_runs_logs_and_reports_termination() {
    let w = world();
    let ns = w.unique_namespace("kube-rs").expect("namespace");
    w.set_behaviour(
        "registry.world/job:1",
        Behaviour::exit_with_message(&["step one", "step two"], 3, Duration::from_millis(800), "digest: sha256:abc"),
    );
    let pods: Api<Pod> = Api::namespaced(client(w.kubeconfig()).await, &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "job"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "registry.world/job:1"}]},
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod).await.expect("create");
    tokio::time::timeout(Duration::from_secs(20), await_condition(pods.clone(), "job", conditions::is_pod_running()))
        .await
        .expect("running in time")
        .expect("watch");
    let mut lines =
        pods.log_stream("job", &LogParams { follow: true, ..LogParams::default() }).await.expect("log stream").lines();
    let mut seen = Vec::new();
    while let Some(line) = lines.try_next().await.expect("log line") {
        seen.push(line);
    }
    assert_eq!(seen, ["step one", "step two"]);
    let finished = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.phase.as_deref()).is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
    };
    let done = tokio::time::timeout(Duration::from_secs(20), await_condition(pods.clone(), "job", finished))
        .await
        .expect("finished in time")
        .expect("watch")
        .expect("pod");
    let status = done.status.expect("status");
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    let terminated =
        status.container_statuses.expect("statuses")[0].state.clone().expect("state").terminated.expect("terminated");
    assert_eq!((terminated.exit_code, terminated.message.as_deref()), (3, Some("digest: sha256:abc")));
    let uid = done.metadata.uid.expect("uid");
    pods.delete("job", &DeleteParams::default()).await.expect("delete");
    tokio::time::timeout(Duration::from_secs(20), await_condition(pods.clone(), "job", conditions::is_deleted(&uid)))
        .await
        .expect("deleted in time")
        .expect("watch");
}

#[tokio::test]
async fn kube_rs_watch_resumes_after_the_server_closes_it() {
    let w = World::start_with(Options { aws: false, ..Options::default() }).expect("world");
    let cms: Api<ConfigMap> = Api::namespaced(client(w.kubeconfig()).await, "default");
    let cm = |name: &str| {
        serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": name, "labels": {"case": "resume"}}}))
            .expect("cm")
    };
    let from = cms.create(&PostParams::default(), &cm("a")).await.expect("a").metadata.resource_version.expect("rv");
    let params = WatchParams::default().labels("case=resume");
    let mut stream = cms.watch(&params, &from).await.expect("watch").boxed();
    cms.create(&PostParams::default(), &cm("b")).await.expect("b");
    let mut last = from.clone();
    let mut names = Vec::new();
    if let Some(WatchEvent::Added(obj)) = stream.try_next().await.expect("event") {
        last = obj.metadata.resource_version.clone().expect("rv");
        names.push(format!("ADDED {}", obj.metadata.name.expect("name")));
    }
    w.cluster().close_watches();
    assert!(tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("stream closes").is_none());
    // Changes while nobody watches.
    cms.create(&PostParams::default(), &cm("c")).await.expect("c");
    cms.delete("b", &DeleteParams::default()).await.expect("delete b");
    let mut resumed = cms.watch(&params, &last).await.expect("resume").boxed();
    for _ in 0..2 {
        match tokio::time::timeout(Duration::from_secs(5), resumed.try_next())
            .await
            .expect("event in time")
            .expect("event")
        {
            Some(WatchEvent::Added(o)) => names.push(format!("ADDED {}", o.metadata.name.expect("name"))),
            Some(WatchEvent::Deleted(o)) => names.push(format!("DELETED {}", o.metadata.name.expect("name"))),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(names, ["ADDED b", "ADDED c", "DELETED b"]);
    w.cluster().store.compact();
    let mut expired = cms.watch(&params, &from).await.expect("watch").boxed();
    match expired.try_next().await.expect("event") {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
}
