//! helm 4 and helm 3: install (with a post-install Job hook), status, upgrade, `helm test`,
//! history, rollback, uninstall, and a failed `--wait` that rolls back.

use std::path::Path;

use azp_kube_world::Behaviour;
use serde_json::Value;

use crate::support::{chart, ok, run, world};

/// `kubectl get KIND NAME -n NS -o json`.
fn get_json(ns: &str, kind: &str, name: &str) -> Value {
    let w = world();
    serde_json::from_str(&ok(w, &w.tools().kubectl, &["get", kind, name, "-n", ns, "-o", "json"]))
        .expect("kubectl json")
}

/// `helm status RELEASE -n NS -o json`.
fn status_json(helm: &Path, ns: &str, release: &str) -> Value {
    serde_json::from_str(&ok(world(), helm, &["status", release, "-n", ns, "-o", "json"])).expect("status json")
}

fn helm_lifecycle(helm: &Path, name: &str) {
    let w = world();
    let ns = format!("{name}-{}", std::process::id());
    let release = format!("{name}-app");
    let config = format!("{release}-config");
    let chart = chart();
    let install =
        ["upgrade", "--install", &release, &chart, "-n", &ns, "--create-namespace", "--wait", "--timeout", "30s"];
    ok(w, helm, &install);
    let status = status_json(helm, &ns, &release);
    assert_eq!((&status["info"]["status"], &status["version"]), (&"deployed".into(), &1.into()));

    ok(w, helm, &[&install[..], &["--set", "message=second"]].concat());
    assert_eq!(get_json(&ns, "configmap", &config)["data"]["message"], "second");
    w.set_behaviour(
        "registry.world/probe:1",
        Behaviour::exit(&["connected"], 0, std::time::Duration::from_millis(100)),
    );
    let tested = ok(w, helm, &["test", &release, "-n", &ns, "--logs", "--timeout", "30s"]);
    assert!(tested.contains("Succeeded") && tested.contains("connected"), "{tested}");
    let history: Value =
        serde_json::from_str(&ok(w, helm, &["history", &release, "-n", &ns, "-o", "json"])).expect("history");
    assert_eq!(history.as_array().map(Vec::len), Some(2));

    ok(w, helm, &["rollback", &release, "1", "-n", &ns, "--wait", "--timeout", "30s"]);
    assert_eq!(get_json(&ns, "configmap", &config)["data"]["message"], "hello");
    assert_eq!(status_json(helm, &ns, &release)["version"], 3);

    ok(w, helm, &["uninstall", &release, "-n", &ns, "--wait", "--timeout", "30s"]);
    let kinds = "deployments,replicasets,pods,services,configmaps,secrets";
    let left = ok(w, &w.tools().kubectl, &["get", kinds, "-n", &ns, "-o", "name"]);
    // Test pods are not part of the release, so uninstall keeps them (as on a real cluster).
    let left: Vec<&str> = left.lines().filter(|l| l.contains(&release) && !l.ends_with("-test")).collect();
    assert!(left.is_empty(), "left after uninstall: {left:?}");
}

fn helm_failed_wait_rolls_back(helm: &Path, name: &str, rollback_flag: &str) {
    let w = world();
    w.set_behaviour("registry.world/broken", Behaviour::pull_error());
    let ns = format!("{name}-fail-{}", std::process::id());
    let release = format!("{name}-broken");
    let chart = chart();
    let base = ["upgrade", "--install", &release, &chart, "-n", &ns, "--create-namespace", "--wait", "--timeout", "6s"];
    let broken = ["--set", "image=registry.world/broken:1", "--set", "message=bad"];
    ok(w, helm, &base);
    let failed = run(w, helm, &[&base[..], &broken].concat());
    assert!(!failed.status.success(), "an upgrade whose deployment never gets ready must fail --wait");
    let rolled = run(w, helm, &[&base[..], &broken, &[rollback_flag]].concat());
    let stderr = String::from_utf8_lossy(&rolled.stderr);
    assert!(!rolled.status.success(), "{stderr}");
    assert!(stderr.to_lowercase().contains("roll"), "{stderr}");
    let status = status_json(helm, &ns, &release);
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    assert!(status["info"]["description"].as_str().is_some_and(|d| d.contains("Rollback")), "{status}");
    let image = &get_json(&ns, "deployment", &release)["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image, "registry.world/app:1");
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
