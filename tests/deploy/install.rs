//! The chart installed into the world (KEDA's CRDs applied first) with helm 4
//! and helm 3: every object is created, an upgrade applies, and uninstall
//! removes them all.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::*;

/// Registers KEDA's three kinds (keda.sh/v1alpha1, namespaced; names as in
/// kedacore/keda config/crd/bases @ v2.20.2) once per test binary. The world
/// stores custom objects without checking them, so these CRDs keep any spec;
/// what each KEDA release accepts is checked in validators.rs.
pub fn keda_crds() {
    static APPLIED: OnceLock<()> = OnceLock::new();
    APPLIED.get_or_init(|| {
        let kubectl = world().tools().kubectl.as_path();
        let dir = tempfile::tempdir().unwrap();
        for (kind, plural, short) in
            [("ScaledJob", "scaledjobs", "sj"), ("ScaledObject", "scaledobjects", "so"), ("TriggerAuthentication", "triggerauthentications", "ta")]
        {
            let name = format!("{plural}.keda.sh");
            let open = serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
            let crd = serde_json::json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": name},
                "spec": {"group": "keda.sh", "scope": "Namespaced",
                    "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                        "singular": kind.to_lowercase(), "shortNames": [short]},
                    "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                        "subresources": {"status": {}},
                        "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": open, "status": open}}}}]},
            });
            let file = dir.path().join(format!("{name}.json"));
            std::fs::write(&file, serde_json::to_vec(&crd).unwrap()).unwrap();
            ok(kubectl, &["apply", "--server-side", "-f", &file.display().to_string()]);
            ok(kubectl, &["wait", &format!("crd/{name}"), "--for=condition=established", "--timeout=20s"]);
        }
    });
}

/// Installs the chart as release `pool` in a new namespace; returns it and the Helm namespace.
pub fn install(helm: &Path, prefix: &str, extra: &[&str]) -> (String, String) {
    keda_crds();
    let namespace = world().unique_namespace(prefix).unwrap();
    let deploy_namespace = world().unique_namespace(&format!("{prefix}-web")).unwrap();
    let chart = chart();
    let mut values: Vec<String> =
        ["--set", &format!("azp.token={PAT}"), "--set", &format!("rbac.helmNamespaces={{{deploy_namespace}}}")]
            .iter()
            .map(|s| s.to_string())
            .collect();
    values.extend(extra.iter().map(|s| s.to_string()));
    let mut args = chart_args("install", &chart, &namespace, &values);
    args.extend(["--timeout", "60s"]);
    ok(helm, &args);
    (namespace, deploy_namespace)
}

/// Whether the object exists; `namespace` is empty for cluster-scoped kinds.
fn exists(namespace: &str, kind: &str, name: &str) -> bool {
    let mut args = vec!["get", kind, name, "-o", "name"];
    if !namespace.is_empty() {
        args.extend(["-n", namespace]);
    }
    let out = tool(&world().tools().kubectl, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() || stderr.contains("NotFound"), "kubectl get {kind} {name}: {stderr}");
    out.status.success()
}

fn names(namespace: &str, kind: &str) -> Vec<String> {
    let out = ok(&world().tools().kubectl, &["get", kind, "-n", namespace, "-o", "name"]);
    out.lines().map(str::to_string).collect()
}

fn install_check_uninstall(helm: &Path, prefix: &str, extra: &[&str], workload: &[(&str, &str)]) {
    let (ns, web) = install(helm, prefix, extra);
    let build = format!("{ns}-build");
    let mut expected: Vec<(String, &str, &str)> = vec![
        (String::new(), "namespace", build.as_str()),
        (ns.clone(), "serviceaccount", "azure-agent"),
        (build.clone(), "serviceaccount", "azure-agent-kaniko"),
        (ns.clone(), "secret", "pool-azure-agent-token"),
        (build.clone(), "configmap", "docker-config"),
        (build.clone(), "role", "pool-azure-agent-build"),
        (build.clone(), "rolebinding", "pool-azure-agent-build"),
        (ns.clone(), "triggerauthentication", "pool-azure-agent"),
        (web.clone(), "role", "pool-azure-agent-deploy"),
        (web.clone(), "rolebinding", "pool-azure-agent-deploy"),
    ];
    expected.extend(workload.iter().map(|(kind, name)| (ns.clone(), *kind, *name)));
    for (namespace, kind, name) in &expected {
        assert!(exists(namespace, kind, name), "{kind} {namespace}/{name} was not created");
    }
    assert!(names(&ns, "jobs").is_empty(), "the template agent's hook Job is gone once it succeeded");
    let status = ok(helm, &["status", "pool", "-n", &ns, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["info"]["status"], "deployed");

    // KEDA scales a Deployment pool; an upgrade must leave that count alone.
    let deployment_mode = extra.contains(&"mode=Deployment");
    if deployment_mode {
        let replicas = r#"{"spec":{"replicas":4}}"#;
        ok(&world().tools().kubectl, &["patch", "deployment", "pool-azure-agent", "-n", &ns, "-p", replicas]);
    }

    // An upgrade changes the scaler and re-runs the template agent's hook Job.
    let chart = chart();
    let mut values: Vec<String> = vec!["--reuse-values".into(), "--set".into(), "keda.maxReplicaCount=3".into()];
    values.extend(extra.iter().map(|s| s.to_string()));
    ok(helm, &chart_args("upgrade", &chart, &ns, &values));
    let scaler = if deployment_mode { "scaledobject" } else { "scaledjob" };
    let get = |kind: &str, path: &str| {
        ok(
            &world().tools().kubectl,
            &["get", kind, "pool-azure-agent", "-n", &ns, "-o", &format!("jsonpath={{{path}}}")],
        )
    };
    assert_eq!(get(scaler, ".spec.maxReplicaCount"), "3", "{helm:?} upgrade");
    if deployment_mode {
        assert_eq!(get("deployment", ".spec.replicas"), "4", "{helm:?} upgrade reset the pool KEDA scaled");
    }
    assert!(names(&ns, "jobs").is_empty(), "the upgrade's hook Job is gone too");

    ok(helm, &["uninstall", "pool", "-n", &ns, "--timeout", "60s"]);
    for (namespace, kind, name) in &expected {
        assert!(!exists(namespace, kind, name), "{kind} {namespace}/{name} is left after uninstall");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (pods, secrets) = (names(&ns, "pods"), names(&ns, "secrets"));
        if pods.is_empty() && secrets.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left after uninstall: {pods:?} {secrets:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn helm4_installs_upgrades_and_uninstalls_the_scaled_job_pool() {
    let helm = world().tools().helm4.as_path();
    install_check_uninstall(helm, "pool4", &[], &[("scaledjob", "pool-azure-agent")]);
}

#[test]
fn helm3_installs_upgrades_and_uninstalls_the_scaled_job_pool() {
    let helm = world().tools().helm3.as_path();
    install_check_uninstall(helm, "pool3", &[], &[("scaledjob", "pool-azure-agent")]);
}

#[test]
fn deployment_mode_installs_upgrades_and_uninstalls_with_both_helms() {
    let workload = [("deployment", "pool-azure-agent"), ("scaledobject", "pool-azure-agent")];
    for (name, helm) in helms() {
        install_check_uninstall(helm, &format!("warm-{name}"), &["--set", "mode=Deployment"], &workload);
    }
}
