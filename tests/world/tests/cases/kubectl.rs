//! kubectl 1.34: apply, get, get -w, logs -f, delete --wait, auth can-i; the `create`
//! commands (protobuf bodies) and table output.

use std::time::{Duration, Instant};

use azp_kube_world::Behaviour;
use serde_json::Value;

use crate::support::{ok, run, world};

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

/// The lines a child writes, as they come.
fn lines_of(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

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
        .env("HOME", w.dir())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl get -w");
    let lines = lines_of(watch.stdout.take().expect("stdout"));
    let next = || lines.recv_timeout(Duration::from_secs(15)).expect("kubectl get -w printed a line");
    assert_eq!(next(), "configmap/settings");
    ok(w, kubectl, &["create", "configmap", "late", "-n", &ns, "--from-literal=a=b"]);
    assert_eq!(next(), "configmap/late");
    let _ = watch.kill();
    let _ = watch.wait();

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

#[test]
fn kubectl_create_commands_and_table_output() {
    let w = world();
    let kubectl = &w.tools().kubectl;
    let ns = format!("create-{}", std::process::id());
    // These commands send protobuf bodies.
    ok(w, kubectl, &["create", "namespace", &ns]);
    ok(w, kubectl, &["create", "serviceaccount", "builder", "-n", &ns]);
    assert!(!ok(w, kubectl, &["create", "token", "builder", "-n", &ns]).trim().is_empty());
    ok(w, kubectl, &["create", "role", "reader", "--verb=get,list", "--resource=pods", "-n", &ns]);
    ok(
        w,
        kubectl,
        &["create", "rolebinding", "reader", "--role=reader", &format!("--serviceaccount={ns}:builder"), "-n", &ns],
    );
    ok(w, kubectl, &["create", "secret", "generic", "creds", "--from-literal=user=me", "-n", &ns]);
    let subject = ok(w, kubectl, &["get", "rolebinding", "reader", "-n", &ns, "-o", "jsonpath={.subjects[0].name}"]);
    assert_eq!(subject, "builder");
    assert!(ok(w, kubectl, &["auth", "whoami"]).contains("admin"));

    w.set_behaviour("registry.world/idle:1", Behaviour::serve(&[]));
    ok(w, kubectl, &["run", "idle", "-n", &ns, "--image=registry.world/idle:1"]);
    ok(w, kubectl, &["wait", "pod/idle", "-n", &ns, "--for=condition=Ready", "--timeout=20s"]);
    let table = ok(w, kubectl, &["get", "pods", "-n", &ns]);
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(table.contains("1/1") && table.contains("Running"), "{table}");
    ok(w, kubectl, &["delete", "namespace", &ns, "--wait", "--timeout=20s"]);
    let gone = run(w, kubectl, &["get", "namespace", &ns]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NotFound"));
}
