//! Secrets: a cross-account deploy with an AWS service connection (keys and
//! a session token), a chart repository password and EKS tokens. Every
//! secret the run handles is registered with the agent, and none appears in
//! the log, in an error, in the argument list of any process started during
//! the run, or in the private kubeconfig helm is given.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azp_harness::{StepResult, TaskRun};
use azp_kube_world::World;

use crate::support::task;

const ROLE: &str = "arn:aws:iam::222222222222:role/secrets-deployer";
const CONNECTION: &str = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
const ACCESS_KEY: &str = "AKIAZPKUBESECRETTEST";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENsecret";
const PASSWORD: &str = "chart-repo-pa55word-secret";

/// Every process command line seen while the flag is up.
pub(crate) fn watch_command_lines(
    running: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeSet<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while running.load(Ordering::Relaxed) {
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                if let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) {
                    let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
                    seen.lock().unwrap().insert(line);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

/// The cluster `world` in the role's account, and an access entry for the role.
fn target_cluster(world: &World) {
    world.create_cluster_in_account_of(ROLE).unwrap();
    world.add_access_entry(ROLE, "deployer", &["system:masters"]);
}

#[test]
fn no_secret_reaches_a_log_an_error_or_an_argument_list() {
    let world = World::start().unwrap();
    target_cluster(&world);
    let dir = tempfile::tempdir().unwrap();
    // A chart repository on loopback.
    let repo_dir = dir.path().join("repo");
    std::fs::create_dir_all(&repo_dir).unwrap();
    let chart = azp_harness::repo_root().join("tests/world/testdata/chart");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let helm = &world.tools().helm4;
    assert!(Command::new(helm).arg("package").arg(&chart).arg("-d").arg(&repo_dir).status().unwrap().success());
    assert!(
        Command::new(helm).args(["repo", "index"]).arg(&repo_dir).args(["--url", &url]).status().unwrap().success()
    );
    let mut server = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
        .current_dir(&repo_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // helm, through a wrapper that also keeps the kubeconfig it is given.
    let kubeconfigs = dir.path().join("kubeconfigs.log");
    let wrapper = dir.path().join("helm");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncat \"$KUBECONFIG\" >> '{}' 2>/dev/null\nexec '{}' \"$@\"\n",
            kubeconfigs.display(),
            helm.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = watch_command_lines(watching.clone(), seen.clone());
    let task = task("MulticlusterHelmV1");
    let home = tempfile::tempdir().unwrap();
    let mut run =
        TaskRun::new(task.path()).timeout(Duration::from_secs(180)).env("HOME", &home.path().display().to_string());
    for (name, value) in world.env() {
        if name.starts_with("AWS_") && !name.starts_with("AWS_ACCESS_KEY") && !name.starts_with("AWS_SECRET") {
            run = run.env(&name, &value);
        }
    }
    let outcome = run
        .env(
            &format!("ENDPOINT_AUTH_{CONNECTION}"),
            &format!(
                r#"{{"parameters":{{"username":"{ACCESS_KEY}","password":"{SECRET_KEY}","sessionToken":"{SESSION_TOKEN}"}},"scheme":"UsernamePassword"}}"#
            ),
        )
        .input("awsCredentials", CONNECTION)
        .input("clusterName", world.cluster_name())
        .input("regionName", world.region())
        .input("assumeRoleArn", ROLE)
        .input("chartType", "Name")
        .input("chartName", "world-app")
        .input("helmRepoName", "local")
        .input("helmRepoUrl", &url)
        .input("helmRepoUsername", "ci")
        .input("helmRepoPassword", PASSWORD)
        .input("releaseName", "web")
        .input("namespace", "web")
        .input("overrideValues", "hook=false")
        .input("helmPath", &wrapper.display().to_string())
        .run();
    watching.store(false, Ordering::Relaxed);
    watcher.join().unwrap();
    let _ = server.kill();
    let _ = server.wait();

    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    for secret in [ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, PASSWORD] {
        assert!(outcome.secrets.iter().any(|s| s == secret), "registered: {secret:.6}…");
    }
    // The assumed role's keys were registered too.
    assert!(outcome.secrets.len() > 4, "{} secrets registered", outcome.secrets.len());
    let command_lines = seen.lock().unwrap();
    assert!(command_lines.iter().any(|l| l.contains("eks-token")) || kubeconfig_runs_eks_token(&kubeconfigs));
    let kubeconfig_text = std::fs::read_to_string(&kubeconfigs).unwrap_or_default();
    assert!(kubeconfig_text.contains("eks-token"), "helm gets the exec kubeconfig");
    for secret in outcome.secrets.iter().filter(|s| s.len() >= 8) {
        let short = &secret[..6];
        assert!(!outcome.log_text().contains(secret.as_str()), "in the log: {short}…");
        assert!(outcome.errors().iter().all(|e| !e.message.contains(secret.as_str())), "in an error: {short}…");
        assert!(command_lines.iter().all(|l| !l.contains(secret.as_str())), "in an argument list: {short}…");
        assert!(!kubeconfig_text.contains(secret.as_str()), "in the kubeconfig: {short}…");
    }
    // No EKS token in any argument list either.
    assert!(command_lines.iter().all(|l| !l.contains("k8s-aws-v1.")), "an EKS token in an argument list");
    assert!(!kubeconfig_text.contains("k8s-aws-v1."), "an EKS token written into the kubeconfig");
}

fn kubeconfig_runs_eks_token(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains("eks-token"))
}
