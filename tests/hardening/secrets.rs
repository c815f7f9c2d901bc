//! Secrets: a cross-account deploy with an AWS service connection (keys and
//! a session token), a chart repository password and EKS tokens. Every
//! secret the run handles is registered with the agent, and none appears in
//! the log, in an error, in the argument list of any process started during
//! the run, in the environment of helm and of the kubeconfig's exec entry,
//! in the private kubeconfig helm is given, or in a file left in the agent's
//! temp folder. The role's external ID is in no argument list either.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azp_harness::{StepResult, TaskRun};
use azp_kube_world::World;

use crate::support::{AwsKeys, deploys_the_test_chart, scanned_run, task, with_aws_connection};

const ROLE: &str = "arn:aws:iam::222222222222:role/secrets-deployer";
const CONNECTION: &str = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
const ACCESS_KEY: &str = "AKIAZPKUBESECRETTEST";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENsecret";
const PASSWORD: &str = "chart-repo-pa55word-secret";
const EXTERNAL_ID: &str = "tenant-external-id-4d2c";
/// The job's access token to Azure DevOps, mapped in as `SYSTEM_ACCESSTOKEN`.
const JOB_TOKEN: &str = "azdo-job-access-token-secrets-9f3b";

/// What the watcher saw of the processes on the machine.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) command_lines: BTreeSet<String>,
    /// The environments of helm and of `azp-kube eks-token`.
    pub(crate) helm_environments: BTreeSet<String>,
}

/// Every process command line seen while the flag is up, and the
/// environment of every process that is helm (`helm_path`) or the exec entry.
pub(crate) fn watch_processes(
    running: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    helm_path: String,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while running.load(Ordering::Relaxed) {
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                if let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) {
                    let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
                    if (line.contains(&helm_path) || line.contains("eks-token"))
                        && let Ok(environ) = std::fs::read(entry.path().join("environ"))
                    {
                        let environ = String::from_utf8_lossy(&environ).replace('\0', "\n");
                        seen.lock().unwrap().helm_environments.insert(environ);
                    }
                    seen.lock().unwrap().command_lines.insert(line);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

/// Every process seen from [`Watch::start`] to [`Watch::stop`] (see [`watch_processes`]).
pub(crate) struct Watch {
    running: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: std::thread::JoinHandle<()>,
}

impl Watch {
    pub(crate) fn start(helm: &std::path::Path) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let running = Arc::new(AtomicBool::new(true));
        let thread = watch_processes(running.clone(), seen.clone(), helm.display().to_string());
        Self { running, seen, thread }
    }

    pub(crate) fn stop(self) -> Seen {
        self.running.store(false, Ordering::Relaxed);
        self.thread.join().unwrap();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// `dir/helm`, which appends every file of the step's private folder (the folder of
/// its `KUBECONFIG`) it can read to the returned log, each after a line `== <path>`,
/// then runs `helm`.
pub(crate) fn private_folder_copier(dir: &std::path::Path, helm: &std::path::Path) -> (PathBuf, PathBuf) {
    let log = dir.join("private-files.log");
    let keep = format!(
        "for f in $(find \"$(dirname \"$KUBECONFIG\")\" -type f); do echo \"== $f\"; cat \"$f\"; echo; done >> '{}' 2>/dev/null",
        log.display()
    );
    (helm_wrapper(dir, helm, &keep), log)
}

/// `dir/helm`: a script that runs `first` (a shell line), then `helm`.
pub(crate) fn helm_wrapper(dir: &std::path::Path, helm: &std::path::Path, first: &str) -> std::path::PathBuf {
    let wrapper = dir.join("helm");
    std::fs::write(&wrapper, format!("#!/bin/sh\n{first}\nexec '{}' \"$@\"\n", helm.display())).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    wrapper
}

/// The text of every file under `dir`.
pub(crate) fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
            files.push((path, text));
        }
    }
    files
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
    let listening = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && std::time::Instant::now() < listening {
        std::thread::sleep(Duration::from_millis(50));
    }
    // helm, through a wrapper that also keeps the kubeconfig it is given.
    let kubeconfigs = dir.path().join("kubeconfigs.log");
    let wrapper =
        helm_wrapper(dir.path(), helm, &format!("cat \"$KUBECONFIG\" >> '{}' 2>/dev/null", kubeconfigs.display()));

    let watch = Watch::start(helm);
    let task = task("MulticlusterHelmV1");
    let home = tempfile::tempdir().unwrap();
    let agent_temp = dir.path().join("agent-temp");
    let run = scanned_run(&task, home.path(), &agent_temp).env("SYSTEM_ACCESSTOKEN", JOB_TOKEN);
    let keys = AwsKeys { access_key: ACCESS_KEY, secret_key: SECRET_KEY, session_token: SESSION_TOKEN };
    let outcome = with_aws_connection(run, &world, CONNECTION, &keys)
        .input("clusterName", world.cluster_name())
        .input("regionName", world.region())
        .input("assumeRoleArn", ROLE)
        .input("externalId", EXTERNAL_ID)
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
    let seen = watch.stop();
    let _ = server.kill();
    let _ = server.wait();

    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    for secret in [ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, PASSWORD] {
        assert!(outcome.secrets.iter().any(|s| s == secret), "registered: {secret:.6}…");
    }
    // The assumed role's keys were registered too.
    assert!(outcome.secrets.len() > 4, "{} secrets registered", outcome.secrets.len());
    let command_lines = &seen.command_lines;
    assert!(command_lines.iter().any(|l| l.contains("eks-token")) || kubeconfig_runs_eks_token(&kubeconfigs));
    assert!(!seen.helm_environments.is_empty(), "helm's environment was read");
    let left = files_under(&agent_temp);
    assert!(left.iter().any(|(p, _)| p.extension().is_some_and(|e| e == "md")), "the summary is there: {left:?}");
    let kubeconfig_text = std::fs::read_to_string(&kubeconfigs).unwrap_or_default();
    assert!(kubeconfig_text.contains("eks-token"), "helm gets the exec kubeconfig");
    for secret in outcome.secrets.iter().filter(|s| s.len() >= 8) {
        let short = &secret[..6];
        assert!(!outcome.log_text().contains(secret.as_str()), "in the log: {short}…");
        assert!(outcome.errors().iter().all(|e| !e.message.contains(secret.as_str())), "in an error: {short}…");
        assert!(command_lines.iter().all(|l| !l.contains(secret.as_str())), "in an argument list: {short}…");
        assert!(!kubeconfig_text.contains(secret.as_str()), "in the kubeconfig: {short}…");
        assert!(seen.helm_environments.iter().all(|e| !e.contains(secret.as_str())), "in helm's environment: {short}…");
        for (path, text) in &left {
            assert!(!text.contains(secret.as_str()), "in {} left in the agent's temp folder: {short}…", path.display());
        }
    }
    assert!(
        seen.helm_environments.iter().all(|e| !e.contains(JOB_TOKEN)),
        "SYSTEM_ACCESSTOKEN in a child's environment"
    );
    assert!(command_lines.iter().all(|l| !l.contains(EXTERNAL_ID)), "the external ID in an argument list");
    assert!(!kubeconfig_text.contains(EXTERNAL_ID), "the external ID in the kubeconfig");
    // No EKS token in any argument list either.
    assert!(command_lines.iter().all(|l| !l.contains("k8s-aws-v1.")), "an EKS token in an argument list");
    assert!(!kubeconfig_text.contains("k8s-aws-v1."), "an EKS token written into the kubeconfig");
}

fn kubeconfig_runs_eks_token(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains("eks-token"))
}

/// An IRSA agent (web identity) that assumes a role in the cluster's
/// account, with `System.Debug` on: both sessions it obtains (the web
/// identity's and the role's) are registered, each secret key and session
/// token, and none appears in the log the agent shows.
#[test]
fn web_identity_credentials_are_registered_and_absent_from_a_debug_log() {
    let world = World::start().unwrap();
    target_cluster(&world);
    let home = tempfile::tempdir().unwrap();
    let task = task("MulticlusterHelmV1");
    let run = TaskRun::new(task.path())
        .timeout(Duration::from_secs(180))
        .env("HOME", &home.path().display().to_string())
        .env("SYSTEM_DEBUG", "true")
        .envs(world.irsa_env("arn:aws:iam::123456789012:role/azure-agent").unwrap());
    let outcome = deploys_the_test_chart(run, &world, &world.tools().helm4).input("assumeRoleArn", ROLE).run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.log.iter().any(|l| l.starts_with("##[debug]")), "System.Debug is on");
    let registered: BTreeSet<&str> = outcome.secrets.iter().map(String::as_str).collect();
    // Two sessions, each a secret key and a session token.
    assert!(registered.len() >= 4, "{} values registered", registered.len());
    for secret in registered.iter().filter(|s| s.len() >= 8) {
        assert!(!outcome.log_text().contains(secret), "in the log: {:.6}…", secret);
    }
}
