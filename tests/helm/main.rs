//! MulticlusterHelm@1 end to end: the task run as the agent runs it, against
//! the test world (API simulator, moto, real helm 3 and 4), and `azp-kube
//! eks-token` against the AWS CLI's token.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use azp_harness::{StagedTask, StepResult, TaskRun};
use azp_kube_world::World;
use base64::Engine as _;

mod aws_faults;
mod fan_out;
mod interrupted;
mod isolation;
mod migration;
mod oci;
mod oidc;
mod proxy;
mod verbs;

const ROLE: &str = "arn:aws:iam::222222222222:role/deployer";
const AT: &str = "1700000000";

fn world() -> &'static World {
    World::shared()
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_azp-kube"))
}

fn task() -> StagedTask {
    StagedTask::new("MulticlusterHelmV1", binary())
}

fn chart() -> PathBuf {
    azp_harness::repo_root().join("tests/world/testdata/chart")
}

/// A run with the world's AWS environment, and a HOME and an agent temp
/// directory of its own (`<home>/agent-temp`, kept after the run).
fn run(task: &StagedTask, home: &Path) -> TaskRun {
    let temp = agent_temp(home);
    std::fs::create_dir_all(&temp).unwrap();
    let mut run = TaskRun::new(task.path())
        .timeout(Duration::from_secs(120))
        .env("HOME", &home.display().to_string())
        .env("AGENT_TEMPDIRECTORY", &temp.display().to_string());
    run = run.envs(world().env().into_iter().filter(|(k, _)| k != "KUBECONFIG"));
    run
}

/// The world's test chart on the world's cluster, through the admin kubeconfig.
trait WithChartFromWorld {
    fn with_chart_from_world(self) -> Self;
}

impl WithChartFromWorld for TaskRun {
    fn with_chart_from_world(self) -> Self {
        self.input("connectionType", "Kubeconfig file")
            .input("kubeconfig", &world().kubeconfig_path().display().to_string())
            .input("chartType", "FilePath")
            .input("chartPath", &chart().display().to_string())
    }
}

fn agent_temp(home: &Path) -> PathBuf {
    home.join("agent-temp")
}

/// Nothing of the step is left in the agent's temp directory but summaries.
fn assert_no_private_dir(agent_temp: &Path) {
    let left: Vec<_> = std::fs::read_dir(agent_temp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("azp-kube-") && !name.ends_with(".md"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn assert_no_secret_in_log(outcome: &azp_harness::Outcome) {
    let log = outcome.log_text();
    for secret in outcome.secrets.iter().filter(|s| s.len() > 3) {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
}

fn config_map(namespace: &str, name: &str) -> serde_json::Value {
    let out = Command::new(&world().tools().kubectl)
        .args(["--kubeconfig", &world().kubeconfig_path().display().to_string(), "-n", namespace])
        .args(["get", "configmap", name, "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn deploys_through_a_kubeconfig_file(helm: &Path) {
    let namespace = world().unique_namespace("helm").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let sources = tempfile::tempdir().unwrap();
    std::fs::write(sources.path().join("values.yaml"), "message: from-file\nreplicas: 1\n").unwrap();
    let run = run(&task, home.path())
        .sources(sources.path())
        .with_chart_from_world()
        .input("releaseName", "web")
        .input("namespace", &namespace)
        .input("valueFile", "values.yaml")
        .input("overrideValues", "message=a,b\\c")
        .input("waitForExecution", "false")
        .input("helmPath", &helm.display().to_string());
    let agent_temp = agent_temp(home.path());
    let outcome = run.run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(outcome.output("releaseRevision"), Some("1"));
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
    assert_eq!(outcome.output("releaseNamespace"), Some(namespace.as_str()));
    assert_eq!(outcome.output("helmExitCode"), Some("0"));
    let config = config_map(&namespace, "web-config");
    assert_eq!(config["data"]["message"], "a,b\\c", "the override wins over the file, commas kept");
    assert!(outcome.log_text().contains("##[command]helm upgrade --install web"), "{}", outcome.log_text());
    assert_no_private_dir(&agent_temp);
    let entries: Vec<_> = std::fs::read_dir(home.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["agent-temp"], "nothing written to HOME (~/.kube, helm's folders)");
    assert_no_secret_in_log(&outcome);
}

#[test]
fn deploys_with_helm4_through_a_kubeconfig_file() {
    deploys_through_a_kubeconfig_file(&world().tools().helm4);
}

#[test]
fn deploys_with_helm3_through_a_kubeconfig_file() {
    deploys_through_a_kubeconfig_file(&world().tools().helm3);
}

/// The world's cluster, also in the target account (222222222222), created
/// there with the role's credentials through the AWS CLI.
fn cross_account_cluster() {
    static CREATED: std::sync::Once = std::sync::Once::new();
    CREATED.call_once(|| create_cluster_in_target_account(world()));
}

fn create_cluster_in_target_account(world: &World) {
    world.create_cluster_in_account_of(ROLE).unwrap();
}

/// Without a role, the agent's own identity describes the cluster (it is in
/// its account) and is refused by the cluster with the access-entry message.
#[test]
fn eks_with_the_agents_own_identity_is_refused_with_the_access_entry_message() {
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let outcome = run(&task, home.path())
        .input("clusterName", world().cluster_name())
        .input("regionName", world().region())
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .input("helmPath", &world().tools().helm4.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    let message = &outcome.errors()[0].message;
    assert!(message.contains("is not allowed into cluster world (us-east-1)"), "{message}");
    assert!(message.contains("add an access entry (or an aws-auth mapping) for it"), "{message}");
    assert_no_private_dir(&agent_temp(home.path()));
}

/// Assumes the role in moto, describes the world's cluster with it, writes
/// the exec kubeconfig; the simulator does not know the role (no access
/// entry), so the preflight ends with the access-entry message.
#[test]
fn eks_without_an_access_entry_is_refused_with_the_access_entry_message() {
    cross_account_cluster();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let run = run(&task, home.path())
        .input("clusterName", world().cluster_name())
        .input("regionName", world().region())
        .input("assumeRoleArn", ROLE)
        .input("externalId", "ext-1")
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .input("helmPath", &world().tools().helm4.display().to_string());
    let agent_temp = agent_temp(home.path());
    let outcome = run.run();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    let log = outcome.log_text();
    assert!(log.contains("AWS identity: role deployer (session azp-kube-1) in account 222222222222"), "{log}");
    let message = &outcome.errors()[0].message;
    assert!(
        message.contains(
            "role deployer (session azp-kube-1) in account 222222222222 is not allowed into cluster world (us-east-1)"
        ) && message.contains("add an access entry (or an aws-auth mapping) for it"),
        "{message}"
    );
    assert!(!outcome.secrets.is_empty(), "the assumed role's keys are registered");
    assert_no_secret_in_log(&outcome);
    assert_no_private_dir(&agent_temp);
    assert!(std::fs::read_dir(home.path()).unwrap().all(|e| e.unwrap().file_name() == "agent-temp"));
}

#[test]
fn a_missing_cluster_is_named_with_the_identity_that_looked() {
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let outcome = run(&task, home.path())
        .input("clusterName", "nope")
        .input("regionName", world().region())
        .input("assumeRoleArn", ROLE)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    let message = &outcome.errors()[0].message;
    assert!(message.contains("EKS cluster nope does not exist in us-east-1 (as seen by role deployer"), "{message}");
}

#[test]
fn bad_inputs_fail_before_any_call() {
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let outcome = TaskRun::new(task.path())
        .env("HOME", &home.path().display().to_string())
        .input("clusterName", "dev")
        .input("regionName", "eu-west-1")
        .input("assumeRoleArn", "arn:aws:iam::22:role/deployer")
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert!(outcome.errors()[0].message.contains("input assumeRoleArn:"), "{:?}", outcome.errors());
    let outcome = TaskRun::new(task.path())
        .with_chart_from_world()
        .input("releaseName", "web")
        .input("arguments", "--kubeconfig /root/.kube/config")
        .run();
    assert!(
        outcome.errors()[0].message.contains("input arguments: --kubeconfig is not allowed"),
        "{:?}",
        outcome.errors()
    );
}

#[test]
fn a_canceled_deploy_stops_helm_and_removes_the_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("helm-stopped");
    let helm = dir.path().join("helm");
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in version) echo v4.1.4; exit 0;; esac\n\
         trap 'touch {}; exit 143' TERM INT\necho fake-helm-ready\nsleep 60 & wait\n",
        marker.display()
    );
    write_script(&helm, &script);
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let run = run(&task, home.path())
        .with_chart_from_world()
        .input("releaseName", "web")
        .input("helmPath", &helm.display().to_string());
    let agent_temp = agent_temp(home.path());
    let mut running = run.spawn();
    assert!(running.wait_for_line(|l| l.contains("##[command]helm upgrade"), Duration::from_secs(60)));
    // The fake helm has set its trap once it says so.
    assert!(running.wait_for_line(|l| l.contains("fake-helm-ready"), Duration::from_secs(30)));
    let canceled = Instant::now();
    running.signal(libc::SIGINT);
    let outcome = running.wait();
    assert!(canceled.elapsed() < Duration::from_secs(5), "{:?}", canceled.elapsed());
    assert_eq!(outcome.result, StepResult::Failed);
    assert!(outcome.errors()[0].message.contains("canceled"), "{:?}", outcome.errors());
    assert!(marker.exists(), "helm was stopped with a signal");
    assert_no_private_dir(&agent_temp);
}

/// The query parameters of an EKS token, by name.
fn token_query(token: &str) -> (String, BTreeMap<String, String>) {
    let body = token.trim().strip_prefix("k8s-aws-v1.").expect("token prefix");
    let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    let (base, query) = url.split_once('?').unwrap();
    let params = query.split('&').map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect();
    (base.to_string(), params)
}

fn eks_token(env: &[(&str, &str)], args: &[&str]) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    let out = Command::new(binary())
        .args(["eks-token", "--cluster", "world", "--region", "us-east-1"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_slice(&out.stdout).unwrap(), took)
}

fn moto_env() -> Vec<(String, String)> {
    world().env().into_iter().filter(|(k, _)| k != "KUBECONFIG").collect()
}

#[test]
fn eks_token_matches_the_aws_cli_field_for_field() {
    let mut env = moto_env();
    env.push(("AWS_SESSION_TOKEN".into(), "FwoGZXIvYXdzEJr//////////wEaDH+token=".into()));
    env.push(("AZP_KUBE_FIXED_TIME".into(), AT.into()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (ours, _) = eks_token(&pairs, &[]);
    let script = azp_harness::repo_root().join("tests/helm/aws_cli_token.py");
    let cli = Command::new(&world().tools().python)
        .arg(script)
        .args(["world", "us-east-1", AT])
        .env_clear()
        .envs(pairs.iter().copied())
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let (our_base, our_query) = token_query(ours["status"]["token"].as_str().unwrap());
    let (cli_base, cli_query) = token_query(&String::from_utf8(cli.stdout).unwrap());
    assert_eq!(our_base, cli_base);
    assert_eq!(our_query, cli_query, "same parameters, same signature");
    assert_eq!(ours["status"]["expirationTimestamp"], "2023-11-14T22:27:20Z");
    assert_eq!(ours["apiVersion"], "client.authentication.k8s.io/v1");
}

#[test]
fn eks_token_with_a_role_caches_the_session_privately() {
    use std::os::unix::fs::PermissionsExt as _;
    let cache = tempfile::tempdir().unwrap();
    let env = moto_env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = cache.path().display().to_string();
    let args = ["--role-arn", ROLE, "--session-name", "azp-kube-1", "--cache-dir", &dir];
    let (first, cold) = eks_token(&pairs, &args);
    let (second, warm) = eks_token(&pairs, &args);
    let (_, plain) = eks_token(&pairs, &[]);
    eprintln!("eks-token: role cold {cold:?}, role cached {warm:?}, no role {plain:?}");
    let (_, q1) = token_query(first["status"]["token"].as_str().unwrap());
    let (_, q2) = token_query(second["status"]["token"].as_str().unwrap());
    assert!(q1["X-Amz-Credential"].starts_with("ASIA"), "assumed-role keys");
    assert_eq!(q1["X-Amz-Credential"], q2["X-Amz-Credential"], "the second token reuses the session");
    let files: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
    // Generous bounds for a shared machine; bench/helm.sh measures properly.
    assert!(warm < Duration::from_millis(500) && plain < Duration::from_millis(500), "{warm:?} {plain:?}");
}

/// A release whose Deployment never becomes ready fails after the timeout;
/// with `atomic` it is rolled back to the revision before (helm history).
fn never_ready_rolls_back(helm: &Path, image: &str) {
    world().set_behaviour(image, azp_kube_world::Behaviour::pull_error());
    let namespace = world().unique_namespace("atomic").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let deploy = |overrides: &str| {
        run(&task, home.path())
            .with_chart_from_world()
            .input("releaseName", "web")
            .input("namespace", &namespace)
            .input("overrideValues", overrides)
            .input("timeout", "6s")
            .input("atomic", "true")
            .input("helmPath", &helm.display().to_string())
            .run()
    };
    let good = deploy("hook=false");
    assert_eq!(good.result, StepResult::Succeeded, "{}", good.log_text());
    let bad = deploy(&format!("hook=false\nimage={image}"));
    assert_eq!(bad.result, StepResult::Failed, "{}", bad.log_text());
    assert_eq!(bad.errors().len(), 1, "{:?}", bad.errors());
    let message = &bad.errors()[0].message;
    assert!(message.contains("rolled back"), "the error says the rollback happened: {message}");
    assert_ne!(bad.output("helmExitCode"), Some("0"));
    let history = release_history(helm, &namespace, "web", home.path());
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(last["status"], "deployed", "{history}");
    assert!(last["description"].as_str().unwrap().contains("Rollback to 1"), "{history}");
}

/// `helm history -o json` of a release in the world's cluster.
fn release_history(helm: &Path, namespace: &str, release: &str, home: &Path) -> serde_json::Value {
    let history = Command::new(helm)
        .args(["history", release, "-n", namespace, "-o", "json"])
        .args(["--kubeconfig", &world().kubeconfig_path().display().to_string()])
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap();
    assert!(history.status.success(), "{}", String::from_utf8_lossy(&history.stderr));
    serde_json::from_slice(&history.stdout).unwrap()
}

#[test]
fn a_never_ready_release_fails_and_atomic_rolls_back_with_helm4() {
    never_ready_rolls_back(&world().tools().helm4, "never.ready/helm4:1");
}

#[test]
fn a_never_ready_release_fails_and_atomic_rolls_back_with_helm3() {
    never_ready_rolls_back(&world().tools().helm3, "never.ready/helm3:1");
}

/// A chart repository on loopback (python's http.server) holding the world's
/// test chart; stopped on drop.
struct ChartRepository {
    url: String,
    server: std::process::Child,
    _dir: tempfile::TempDir,
}

impl ChartRepository {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let helm = &world().tools().helm4;
        let ok = |out: std::process::Output| assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        ok(Command::new(helm).arg("package").arg(chart()).arg("-d").arg(dir.path()).output().unwrap());
        ok(Command::new(helm).args(["repo", "index"]).arg(dir.path()).args(["--url", &url]).output().unwrap());
        let server = Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { url, server, _dir: dir }
    }
}

impl ChartRepository {
    /// The world's test chart from this repository (logging in as `ci`),
    /// onto the world's cluster through the admin kubeconfig.
    fn inputs(&self, run: TaskRun, password: &str) -> TaskRun {
        run.input("connectionType", "Kubeconfig file")
            .input("kubeconfig", &world().kubeconfig_path().display().to_string())
            .input("chartType", "Name")
            .input("chartName", "world-app")
            .input("helmRepoName", "local")
            .input("helmRepoUrl", &self.url)
            .input("helmRepoUsername", "ci")
            .input("helmRepoPassword", password)
    }
}

impl Drop for ChartRepository {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Every helm command line the task runs goes through a wrapper that records
/// it: the repository password never appears in one, nor in the log.
#[test]
fn no_secret_reaches_a_process_argument_list() {
    const PASSWORD: &str = "repo-pa55word-7f3a";
    let repository = ChartRepository::start();
    let namespace = world().unique_namespace("argv").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let recorded = home.path().join("argv.log");
    let wrapper = home.path().join("helm-wrapper");
    write_script(
        &wrapper,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            recorded.display(),
            world().tools().helm4.display()
        ),
    );
    let outcome = repository
        .inputs(run(&task, home.path()), PASSWORD)
        .input("releaseName", "web")
        .input("namespace", &namespace)
        .input("overrideValues", "hook=false")
        .input("waitForExecution", "false")
        .input("helmPath", &wrapper.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.secrets.iter().any(|s| s == PASSWORD), "the password is registered as a secret");
    let argv = std::fs::read_to_string(&recorded).unwrap();
    assert!(argv.contains("repo add --force-update local"), "{argv}");
    assert!(argv.contains("--password-stdin"), "{argv}");
    assert!(argv.contains("upgrade --install web local/world-app"), "{argv}");
    assert!(!argv.contains(PASSWORD), "a password in an argument list: {argv}");
    assert!(!outcome.log_text().contains(PASSWORD));
}

/// helm refuses a release that an earlier, killed run left pending; the
/// error says how to unlock it.
#[test]
fn a_locked_release_says_how_to_unlock_it() {
    let dir = tempfile::tempdir().unwrap();
    let helm = dir.path().join("helm");
    write_script(
        &helm,
        "#!/bin/sh\ncase \"$1\" in\n  version) echo v4.1.4 ;;\n  upgrade) echo 'Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress' >&2; exit 1 ;;\n  history) echo 'REVISION  STATUS'; echo '2  pending-upgrade' ;;\n  status) echo '{\"name\":\"web\",\"namespace\":\"locked\",\"version\":2,\"info\":{\"status\":\"pending-upgrade\"}}' ;;\nesac\n",
    );
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let outcome = run(&task, home.path())
        .with_chart_from_world()
        .input("releaseName", "web")
        .input("namespace", "locked")
        .input("helmPath", &helm.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_eq!(outcome.errors().len(), 1);
    let message = &outcome.errors()[0].message;
    assert!(message.contains("another operation (install/upgrade/rollback) is in progress"), "{message}");
    assert!(message.contains("helm rollback web -n locked"), "{message}");
    assert_eq!(outcome.output("helmExitCode"), Some("1"));
    assert_eq!(outcome.output("releaseStatus"), Some("pending-upgrade"));
}

/// The role the cluster has an access entry for (the `deployer` role has none).
const ALLOWED_ROLE: &str = "arn:aws:iam::222222222222:role/deployer-ok";

/// A run as an agent pod with IRSA: the base identity is a web identity in
/// the agent's account, which the target cluster does not know.
fn irsa_run(world: &World, task: &StagedTask, home: &Path) -> TaskRun {
    let temp = agent_temp(home);
    std::fs::create_dir_all(&temp).unwrap();
    let mut run = TaskRun::new(task.path())
        .timeout(Duration::from_secs(180))
        .env("HOME", &home.display().to_string())
        .env("AGENT_TEMPDIRECTORY", &temp.display().to_string());
    for (name, value) in world.irsa_env("arn:aws:iam::123456789012:role/azure-agent").unwrap() {
        if name != "KUBECONFIG" {
            run = run.env(&name, &value);
        }
    }
    run
}

/// Acceptance 1: web identity → AssumeRole into 222222222222 → the cluster
/// described with the assumed identity → the exec kubeconfig → helm deploys;
/// values files and overrides are applied.
fn cross_account_deploy(helm: &Path) {
    cross_account_cluster();
    world().add_access_entry(ALLOWED_ROLE, "deployer", &["system:masters"]);
    let namespace = world().unique_namespace("eks").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let sources = tempfile::tempdir().unwrap();
    std::fs::write(sources.path().join("values.yaml"), "message: from-file\n").unwrap();
    std::fs::write(sources.path().join("more.yaml"), "message: from-second-file\nreplicas: 2\n").unwrap();
    let outcome = irsa_run(world(), &task, home.path())
        .sources(sources.path())
        .input("clusterName", world().cluster_name())
        .input("regionName", world().region())
        .input("assumeRoleArn", ALLOWED_ROLE)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .input("namespace", &namespace)
        .input("valueFile", "values.yaml\nmore.yaml")
        .input("overrideValuesString", "hook=false")
        .input("helmPath", &helm.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.log_text().contains("AWS identity: role deployer-ok"), "{}", outcome.log_text());
    assert_eq!(outcome.output("releaseRevision"), Some("1"));
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
    assert_eq!(outcome.output("releaseNamespace"), Some(namespace.as_str()));
    let config = config_map(&namespace, "web-config");
    assert_eq!(config["data"]["message"], "from-second-file", "values files apply in order");
    let summary = outcome.summaries.first().and_then(|(_, text)| text.clone()).expect("a summary");
    assert!(summary.contains("deployer-ok") && summary.contains("world"), "{summary}");
    assert_no_secret_in_log(&outcome);
    assert_no_private_dir(&agent_temp(home.path()));
}

#[test]
fn cross_account_deploy_with_helm4() {
    cross_account_deploy(&world().tools().helm4);
}

#[test]
fn cross_account_deploy_with_helm3() {
    cross_account_deploy(&world().tools().helm3);
}

/// Acceptance 3: tokens live 3 s; a post-install hook keeps helm waiting 8 s,
/// so its later requests need a new token, which the exec entry provides.
#[test]
fn a_wait_longer_than_the_token_lifetime_still_succeeds() {
    let world = World::start().unwrap();
    create_cluster_in_target_account(&world);
    world.add_access_entry(ALLOWED_ROLE, "deployer", &["system:masters"]);
    world.set_token_ttl(Duration::from_secs(3));
    world.set_behaviour(
        "registry.world/migrate:1",
        azp_kube_world::Behaviour::exit(&["migrating"], 0, Duration::from_secs(8)),
    );
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let outcome = irsa_run(&world, &task, home.path())
        .input("clusterName", world.cluster_name())
        .input("regionName", world.region())
        .input("assumeRoleArn", ALLOWED_ROLE)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "slow")
        .input("namespace", "slow")
        .input("helmPath", &world.tools().helm4.display().to_string())
        // Tokens say they live 2 s, so helm asks the exec entry for new ones.
        .env("AZP_KUBE_EKS_TOKEN_LIFETIME_SECONDS", "2")
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(started.elapsed() > Duration::from_secs(8), "the wait outlived the token");
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
}

/// Writes an executable shell script (a fake or wrapping helm).
fn write_script(path: &Path, script: &str) {
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// A repository that is itself the chart: `chartPath: .` (or empty) reaches
/// the task as the repository folder, which is the chart.
#[test]
fn a_chart_at_the_repository_root_is_deployed() {
    let namespace = world().unique_namespace("root-chart").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let repository = tempfile::tempdir().unwrap();
    copy_dir(&chart(), repository.path());
    let outcome = run(&task, home.path())
        .sources(repository.path())
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &world().kubeconfig_path().display().to_string())
        .input("chartType", "FilePath")
        .input("chartPath", ".")
        .input("releaseName", "root")
        .input("namespace", &namespace)
        .input("waitForExecution", "false")
        .input("helmPath", &world().tools().helm4.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(outcome.output("releaseRevision"), Some("1"));

    let empty = tempfile::tempdir().unwrap();
    let refused = run(&task, home.path())
        .sources(empty.path())
        .with_chart_from_world()
        .input("chartPath", "")
        .input("releaseName", "root")
        .input("namespace", &namespace)
        .run();
    assert_eq!(refused.result, StepResult::Failed);
    assert!(refused.errors()[0].message.contains("chartPath"), "{:?}", refused.errors());
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
