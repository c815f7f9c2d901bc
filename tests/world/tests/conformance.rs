//! Conformance of the test world: real kubectl, helm 4, helm 3 and kube-rs against the API
//! simulator over HTTPS, plus moto's EKS view of it, the binary, and process hygiene.
//! Cases share one world (separate namespaces) unless they disturb it (closing watches).

mod support;

use std::time::{Duration, Instant};

use azp_kube_world::{Behaviour, Options, World};
use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, LogParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};
use support::{chart, client, ok, run};

fn world() -> &'static World {
    World::shared()
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: test}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.world/web:1}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"#;

#[test]
fn kubectl_apply_get_watch_logs_delete_and_can_i() {
    let w = world();
    let kubectl = &w.tools().kubectl;
    let ns = w.unique_namespace("kubectl").expect("namespace");
    let manifest = w.dir().join(format!("{ns}.yaml"));
    std::fs::write(&manifest, MANIFEST).expect("manifest");
    let applied = ok(w, kubectl, &["apply", "-n", &ns, "-f", manifest.to_str().expect("utf-8")]);
    assert!(applied.contains("deployment.apps/web created"), "{applied}");
    assert!(ok(w, kubectl, &["apply", "-n", &ns, "-f", manifest.to_str().expect("utf-8")]).contains("unchanged"));

    let svc: Value =
        serde_json::from_str(&ok(w, kubectl, &["get", "service", "web", "-n", &ns, "-o", "json"])).expect("json");
    assert!(svc["spec"]["clusterIP"].as_str().is_some_and(|ip| !ip.is_empty()));
    ok(w, kubectl, &["rollout", "status", "deployment/web", "-n", &ns, "--timeout=20s"]);

    // get -w lists, then watches from the list's resourceVersion.
    let mut watch = std::process::Command::new(kubectl)
        .args(["get", "configmaps", "-w", "-o", "name", "-n", &ns, "--request-timeout=0"])
        .env("KUBECONFIG", w.kubeconfig_path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl get -w");
    std::thread::sleep(Duration::from_millis(700));
    ok(w, kubectl, &["create", "configmap", "late", "-n", &ns, "--from-literal=a=b"]);
    std::thread::sleep(Duration::from_millis(700));
    let _ = watch.kill();
    let seen = String::from_utf8_lossy(&watch.wait_with_output().expect("watch output").stdout).into_owned();
    assert!(seen.contains("configmap/settings") && seen.contains("configmap/late"), "{seen}");

    // logs -f of a running pod streams until the container exits.
    w.set_behaviour(
        "registry.world/ticker:1",
        Behaviour::exit(&["tick 1", "tick 2", "tick 3"], 0, Duration::from_millis(1500)),
    );
    ok(w, kubectl, &["run", "ticker", "-n", &ns, "--image=registry.world/ticker:1", "--restart=Never"]);
    ok(w, kubectl, &["wait", "pod/ticker", "-n", &ns, "--for=jsonpath={.status.phase}=Running", "--timeout=20s"]);
    let logs = ok(w, kubectl, &["logs", "-f", "ticker", "-n", &ns]);
    assert_eq!(logs, "tick 1\ntick 2\ntick 3\n");

    let started = Instant::now();
    ok(w, kubectl, &["delete", "deployment", "web", "-n", &ns, "--wait", "--timeout=20s"]);
    ok(w, kubectl, &["delete", "pod", "ticker", "-n", &ns, "--wait", "--timeout=20s"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    let pods = ok(w, kubectl, &["get", "pods", "-n", &ns, "-o", "name"]);
    assert!(pods.trim().is_empty(), "pods left after deleting their deployment: {pods}");

    assert_eq!(ok(w, kubectl, &["auth", "can-i", "create", "pods", "-n", &ns]).trim(), "yes");
    assert_eq!(ok(w, kubectl, &["auth", "can-i", "*", "*", "--all-namespaces"]).trim(), "yes");
}

fn helm_lifecycle(helm: &std::path::Path, name: &str) {
    let w = world();
    let ns = format!("{name}-{}", std::process::id());
    let release = format!("{name}-app");
    let install =
        ["upgrade", "--install", &release, &chart(), "-n", &ns, "--create-namespace", "--wait", "--timeout", "30s"];
    ok(w, helm, &install);
    let status: Value =
        serde_json::from_str(&ok(w, helm, &["status", &release, "-n", &ns, "-o", "json"])).expect("status json");
    assert_eq!(status["info"]["status"], "deployed");
    assert_eq!(status["version"], 1);

    ok(w, helm, &[&install[..], &["--set", "message=second"]].concat());
    let cm: Value = serde_json::from_str(&ok(
        w,
        &w.tools().kubectl,
        &["get", "configmap", &format!("{release}-config"), "-n", &ns, "-o", "json"],
    ))
    .expect("cm");
    assert_eq!(cm["data"]["message"], "second");
    let history: Value =
        serde_json::from_str(&ok(w, helm, &["history", &release, "-n", &ns, "-o", "json"])).expect("history");
    assert_eq!(history.as_array().map(Vec::len), Some(2));

    ok(w, helm, &["rollback", &release, "1", "-n", &ns, "--wait", "--timeout", "30s"]);
    let cm: Value = serde_json::from_str(&ok(
        w,
        &w.tools().kubectl,
        &["get", "configmap", &format!("{release}-config"), "-n", &ns, "-o", "json"],
    ))
    .expect("cm");
    assert_eq!(cm["data"]["message"], "hello");
    let status: Value =
        serde_json::from_str(&ok(w, helm, &["status", &release, "-n", &ns, "-o", "json"])).expect("status json");
    assert_eq!(status["version"], 3);

    ok(w, helm, &["uninstall", &release, "-n", &ns, "--wait", "--timeout", "30s"]);
    let left = ok(
        w,
        &w.tools().kubectl,
        &["get", "deployments,replicasets,services,configmaps,secrets", "-n", &ns, "-o", "name"],
    );
    assert!(!left.contains(&release), "left after uninstall: {left}");
}

fn helm_failed_wait_rolls_back(helm: &std::path::Path, name: &str, rollback_flag: &str) {
    let w = world();
    w.set_behaviour("registry.world/broken", Behaviour::pull_error());
    let ns = format!("{name}-fail-{}", std::process::id());
    let release = format!("{name}-broken");
    let base =
        ["upgrade", "--install", &release, &chart(), "-n", &ns, "--create-namespace", "--wait", "--timeout", "6s"];
    ok(w, helm, &base);
    let failed =
        run(w, helm, &[&base[..], &["--set", "image=registry.world/broken:1", "--set", "message=bad"]].concat());
    assert!(!failed.status.success(), "an upgrade whose deployment never gets ready must fail --wait");
    let rolled = run(
        w,
        helm,
        &[&base[..], &["--set", "image=registry.world/broken:1", "--set", "message=bad", rollback_flag]].concat(),
    );
    let stderr = String::from_utf8_lossy(&rolled.stderr);
    assert!(!rolled.status.success(), "{stderr}");
    assert!(stderr.to_lowercase().contains("roll"), "{stderr}");
    let status: Value =
        serde_json::from_str(&ok(w, helm, &["status", &release, "-n", &ns, "-o", "json"])).expect("status json");
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    assert!(status["info"]["description"].as_str().is_some_and(|d| d.contains("Rollback")), "{status}");
    let dep: Value =
        serde_json::from_str(&ok(w, &w.tools().kubectl, &["get", "deployment", &release, "-n", &ns, "-o", "json"]))
            .expect("deployment");
    assert_eq!(dep["spec"]["template"]["spec"]["containers"][0]["image"], "registry.world/app:1");
}

#[test]
fn helm4_release_lifecycle() {
    helm_lifecycle(&world().tools().helm4, "helm4");
}

#[test]
fn helm3_release_lifecycle() {
    helm_lifecycle(&world().tools().helm3, "helm3");
}

#[test]
fn helm4_failed_wait_rolls_back_on_failure() {
    helm_failed_wait_rolls_back(&world().tools().helm4, "helm4", "--rollback-on-failure");
}

#[test]
fn helm3_failed_wait_rolls_back_atomically() {
    helm_failed_wait_rolls_back(&world().tools().helm3, "helm3", "--atomic");
}

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
    let w = World::start_with(Options { aws: false }).expect("world");
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

#[tokio::test]
async fn every_client_uses_https_and_a_wrong_token_gets_401() {
    let w = world();
    assert!(w.api_url().starts_with("https://127.0.0.1:"));
    assert!(w.kubeconfig().contains("certificate-authority-data"));
    let intruder = w.kubeconfig_for("intruder", "not-a-token").expect("kubeconfig");
    let env = [("KUBECONFIG", intruder.to_str().expect("utf-8"))];
    for (tool, args) in
        [(&w.tools().kubectl, vec!["get", "pods"]), (&w.tools().helm4, vec!["list"]), (&w.tools().helm3, vec!["list"])]
    {
        let out = support::run_with(w, tool, &args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let refused = stderr.contains("Unauthorized") || stderr.contains("provide credentials");
        assert!(!out.status.success() && refused, "{}: {stderr}", tool.display());
    }
    let text = std::fs::read_to_string(&intruder).expect("read");
    let pods: Api<Pod> = Api::default_namespaced(client(&text).await);
    match pods.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let sa_token = w.service_account_token("default", "builder").expect("token");
    let sa = std::fs::read_to_string(w.kubeconfig_for("builder", &sa_token).expect("kubeconfig")).expect("read");
    let pods: Api<Pod> = Api::default_namespaced(client(&sa).await);
    pods.list(&Default::default()).await.expect("service accounts are authenticated");
}

#[test]
fn eks_describe_cluster_points_at_the_simulator() {
    let w = world();
    let out = ok(w, &w.tools().aws, &["eks", "describe-cluster", "--name", w.cluster_name(), "--output", "json"]);
    let cluster: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(cluster["cluster"]["endpoint"], w.api_url());
    let ca = cluster["cluster"]["certificateAuthority"]["data"].as_str().expect("ca");
    let decoded = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(ca.as_bytes())?;
            c.wait_with_output()
        });
    assert_eq!(String::from_utf8_lossy(&decoded.expect("base64").stdout), w.ca_pem());
}

#[test]
fn world_starts_fast_and_leaves_nothing_behind() {
    let w = World::start().expect("world");
    let took = w.startup_time();
    println!("world started in {:.2} s", took.as_secs_f64());
    assert!(took < Duration::from_secs(3), "world took {took:?} to start");
    let pids = w.child_pids();
    let dir = w.dir().to_path_buf();
    assert!(!pids.is_empty() && dir.exists());
    drop(w);
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "process {pid} outlived the world");
    }
    assert!(!dir.exists(), "{} outlived the world", dir.display());
}

#[test]
fn binary_writes_kubeconfig_and_world_json_and_stops_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_azp-kube-world"))
        .arg("--dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "ready");
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("world.json")).expect("world.json"))
            .expect("json");
    assert!(
        info["api"].as_str().is_some_and(|a| a.starts_with("https://"))
            && info["sts"].is_string()
            && info["region"].is_string()
    );
    let kubectl = &world().tools().kubectl;
    let out = std::process::Command::new(kubectl)
        .args(["get", "namespaces", "-o", "name"])
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .output()
        .expect("kubectl");
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/default"));
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().expect("wait").success());
}
