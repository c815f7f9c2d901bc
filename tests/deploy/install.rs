//! The chart installed into the world (KEDA's CRDs applied first) with helm 4
//! and helm 3: every object is created, an upgrade applies, and uninstall
//! removes them all.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::*;

/// Applies deploy/crds (KEDA's kinds) once per test binary.
pub fn keda_crds() {
    static APPLIED: OnceLock<()> = OnceLock::new();
    APPLIED.get_or_init(|| {
        let kubectl = world().tools().kubectl.as_path();
        let crds = repo().join("deploy/crds/keda.yaml").display().to_string();
        ok(kubectl, &["apply", "-f", &crds]);
        for crd in ["scaledjobs.keda.sh", "scaledobjects.keda.sh", "triggerauthentications.keda.sh"] {
            ok(kubectl, &["wait", &format!("crd/{crd}"), "--for=condition=established", "--timeout=20s"]);
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

    // An upgrade changes the scaler and re-runs the template agent's hook Job.
    let chart = chart();
    let mut values: Vec<String> = vec!["--reuse-values".into(), "--set".into(), "keda.maxReplicaCount=3".into()];
    values.extend(extra.iter().map(|s| s.to_string()));
    ok(helm, &chart_args("upgrade", &chart, &ns, &values));
    let scaler = if extra.contains(&"mode=Deployment") { "scaledobject" } else { "scaledjob" };
    let max = ok(
        &world().tools().kubectl,
        &["get", scaler, "pool-azure-agent", "-n", &ns, "-o", "jsonpath={.spec.maxReplicaCount}"],
    );
    assert_eq!(max, "3", "{helm:?} upgrade");
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
