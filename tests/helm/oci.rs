//! OCI charts from ECR: the world's test chart pushed with real helm to the world's
//! ECR registry (which refuses anonymous requests and takes only logins moto's
//! `ecr:GetAuthorizationToken` issued), then deployed by `oci://<account>.dkr.ecr.…`
//! reference with helm 3 and helm 4 and no password input: the task gets the token
//! (with the deploy identity, or with `registryRoleArn` for a central account) and
//! logs helm in through stdin into the step's private registry config.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use azp_harness::{StepResult, TaskRun};
use azp_kube_world::World;

use super::{ALLOWED_ROLE, agent_temp, assert_no_private_dir, assert_no_secret_in_log, chart, config_map};
use super::{cross_account_cluster, irsa_run, task, world};

/// The pipelines' own charts: in the world's account, readable by the deploy role's.
const APPS: &str = "apps";
/// The central account's charts, readable only with its role.
const CENTRAL_ACCOUNT: &str = "999999999999";
const CENTRAL: &str = "central";
const CENTRAL_READER: &str = "arn:aws:iam::999999999999:role/charts-reader";
const VERSION: &str = "1.0.0";

/// The world's test chart in both repositories, pushed once per test binary.
fn published() -> &'static World {
    static PUSHED: OnceLock<()> = OnceLock::new();
    let world = world();
    PUSHED.get_or_init(|| {
        let ecr = world.ecr();
        ecr.create_repository(azp_kube_world::world::ACCOUNT, &format!("{APPS}/world-app"), &["222222222222"]);
        ecr.create_repository(CENTRAL_ACCOUNT, &format!("{CENTRAL}/world-app"), &[]);
        world.push_ecr_chart(&chart(), VERSION, APPS, None).unwrap();
        world
            .push_ecr_chart(&chart(), VERSION, CENTRAL, Some("arn:aws:iam::999999999999:role/charts-publisher"))
            .unwrap();
    });
    world
}

/// helm with homes and registry config of its own under `dir`, trusting the world's CA.
fn helm_tool(helm: &Path, dir: &Path) -> Command {
    let mut command = Command::new(helm);
    for (name, sub) in [("HELM_CONFIG_HOME", "config"), ("HELM_CACHE_HOME", "cache"), ("HELM_DATA_HOME", "data")] {
        command.env(name, dir.join(sub));
    }
    command.env("HELM_REGISTRY_CONFIG", dir.join("registry.json"));
    command.env("SSL_CERT_FILE", world().ca_file());
    command
}

fn endpoint() -> String {
    world().ecr_registry_endpoint().expect("the world runs an ECR registry")
}

/// `oci://<account>.dkr.ecr.us-east-1.amazonaws.com/<namespace>/world-app`.
fn ecr_chart(account: &str, namespace: &str) -> String {
    format!("oci://{}/{namespace}/world-app", world().ecr_host(account))
}

/// The task deploying `chart` from ECR onto the world's EKS cluster as the
/// deploy role (web identity → deployer-ok), with `helm` and no password input.
fn ecr_deploy(home: &Path, helm: &Path, chart: &str, namespace: &str) -> TaskRun {
    cross_account_cluster();
    world().add_access_entry(ALLOWED_ROLE, "deployer", &["system:masters"]);
    irsa_run(world(), staged(), home)
        .env("SSL_CERT_FILE", &world().ca_file().display().to_string())
        .input("clusterName", world().cluster_name())
        .input("regionName", world().region())
        .input("assumeRoleArn", ALLOWED_ROLE)
        .input("chartType", "Name")
        .input("chartName", chart)
        .input("chartVersion", VERSION)
        .input("releaseName", "web")
        .input("namespace", namespace)
        .input("waitForExecution", "false")
        .input("helmPath", &helm.display().to_string())
}

fn staged() -> &'static azp_harness::StagedTask {
    static TASK: OnceLock<azp_harness::StagedTask> = OnceLock::new();
    TASK.get_or_init(task)
}

/// Nothing the step wrote outside the agent's temp folder (HOME stays empty).
fn assert_home_untouched(home: &Path) {
    let entries: Vec<_> = std::fs::read_dir(home).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["agent-temp"], "nothing written to HOME (~/.config/helm, ~/.docker)");
}

#[test]
fn the_ecr_registry_refuses_an_anonymous_pull() {
    let world = published();
    let dir = tempfile::tempdir().unwrap();
    let before = world.ecr().unauthenticated();
    let reference = format!("oci://{}/{APPS}/world-app", endpoint());
    for helm in [&world.tools().helm3, &world.tools().helm4] {
        let out = helm_tool(helm, dir.path())
            .args(["pull", &reference, "--version", VERSION, "-d"])
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: an anonymous pull succeeded", helm.display());
        let refused = ["401", "unauthorized", "no basic auth credentials", "basic credential not found"];
        assert!(refused.iter().any(|r| stderr.to_lowercase().contains(r)), "{stderr}");
    }
    assert!(world.ecr().unauthenticated() > before, "the registry refused them");
    assert!(!dir.path().join(format!("world-app-{VERSION}.tgz")).exists());
}

/// Acceptance: an ECR chart, no password input, a registry that refuses
/// anonymous pulls: the deploy role's token opens it.
fn deploys_an_ecr_chart_with_the_deploy_identity(helm: &Path) {
    let world = published();
    let namespace = world.unique_namespace("ecr").unwrap();
    let home = tempfile::tempdir().unwrap();
    let outcome = ecr_deploy(home.path(), helm, &ecr_chart(azp_kube_world::world::ACCOUNT, APPS), &namespace).run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let log = outcome.log_text();
    let host = world.ecr_host(azp_kube_world::world::ACCOUNT);
    assert!(
        log.contains(&format!(
            "ECR registry {host}: a 12-hour login from ecr:GetAuthorizationToken by the deploy identity"
        )),
        "{log}"
    );
    let login = format!("##[command]helm registry login {} --username AWS --password-stdin", endpoint());
    assert!(log.contains(&login), "{log}");
    assert!(log.contains(&format!("oci://{}/{APPS}/world-app --namespace", endpoint())), "{log}");
    // moto's password for the deploy role's account is registered before use, and shown nowhere.
    assert!(outcome.secrets.iter().any(|s| s == "222222222222-auth-token"), "{:?}", outcome.secrets.len());
    assert_no_secret_in_log(&outcome);
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
    assert_eq!(config_map(&namespace, "web-config")["metadata"]["name"], "web-config", "the chart is installed");
    assert_no_private_dir(&agent_temp(home.path()));
    assert_home_untouched(home.path());
}

#[test]
fn deploys_an_ecr_chart_with_helm3_and_no_password_input() {
    deploys_an_ecr_chart_with_the_deploy_identity(&world().tools().helm3);
}

#[test]
fn deploys_an_ecr_chart_with_helm4_and_no_password_input() {
    deploys_an_ecr_chart_with_the_deploy_identity(&world().tools().helm4);
}

/// A chart in a central account: the deploy role's own token is refused
/// (the repository does not let its account in); with `registryRoleArn`,
/// assumed from the agent's web identity, the deploy goes through.
#[test]
fn a_chart_in_a_central_account_is_read_with_registry_role_arn() {
    let world = published();
    let namespace = world.unique_namespace("central").unwrap();
    let chart = ecr_chart(CENTRAL_ACCOUNT, CENTRAL);
    let helm = &world.tools().helm4;
    let home = tempfile::tempdir().unwrap();
    let denied = world.ecr().denied();
    let refused = ecr_deploy(home.path(), helm, &chart, &namespace).run();
    assert_eq!(refused.result, StepResult::Failed, "{}", refused.log_text());
    assert!(world.ecr().denied() > denied, "the registry refused the deploy role's token");
    let message = &refused.errors()[0].message;
    assert!(message.contains("403") || message.to_lowercase().contains("denied"), "{message}");
    let hint = format!("set registryRoleArn to a role of account {CENTRAL_ACCOUNT} that may pull");
    assert!(message.contains(&hint), "{message}");
    let home = tempfile::tempdir().unwrap();
    let outcome = ecr_deploy(home.path(), helm, &chart, &namespace).input("registryRoleArn", CENTRAL_READER).run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let log = outcome.log_text();
    assert!(log.contains(&format!("by role {CENTRAL_READER}")), "{log}");
    assert!(outcome.secrets.iter().any(|s| s == "999999999999-auth-token"), "the central account's password");
    assert_no_secret_in_log(&outcome);
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
    assert_no_private_dir(&agent_temp(home.path()));
}

/// A registry that is not ECR's, with `helmRepoUsername`/`helmRepoPassword`:
/// the password goes through stdin as before.
#[test]
fn another_oci_registry_takes_the_password_inputs() {
    let world = published();
    let namespace = world.unique_namespace("oci").unwrap();
    let password = world.ecr_password(None).unwrap();
    let home = tempfile::tempdir().unwrap();
    let chart = format!("oci://{}/{APPS}/world-app", endpoint());
    let outcome = ecr_deploy(home.path(), &world.tools().helm3, &chart, &namespace)
        .input("chartType", "OCI")
        .input("helmRepoUsername", "AWS")
        .input("helmRepoPassword", &password)
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let log = outcome.log_text();
    assert!(!log.contains("ecr:GetAuthorizationToken"), "{log}");
    assert!(log.contains("--username AWS --password-stdin"), "{log}");
    assert!(outcome.secrets.contains(&password));
    assert_no_secret_in_log(&outcome);
}

/// Bad ECR inputs fail naming the input, before any connection: the run has
/// no AWS endpoint and no cluster to reach.
#[test]
fn bad_ecr_inputs_fail_before_any_call() {
    let task = task();
    let central = "oci://999999999999.dkr.ecr.us-east-1.amazonaws.com/central/world-app";
    let cases = [
        (
            vec![("chartName", central.to_string()), ("registryRoleArn", "charts-reader".into())],
            "input registryRoleArn:",
        ),
        (
            vec![
                ("chartName", "oci://registry.example.com/charts/web".into()),
                ("registryRoleArn", CENTRAL_READER.into()),
            ],
            "input registryRoleArn: is only for a chart in Amazon ECR",
        ),
        (
            vec![("chartName", "oci://99999999999.dkr.ecr.us-east-1.amazonaws.com/charts/web".into())],
            "input chartName:",
        ),
        (vec![("chartName", "oci://999999999999.dkr.ecr.us-east-1.amazonaws.com".into())], "input chartName:"),
    ];
    for (inputs, expected) in cases {
        let home = tempfile::tempdir().unwrap();
        let mut run = TaskRun::new(task.path())
            .env("HOME", &home.path().display().to_string())
            .input("clusterName", "dev")
            .input("regionName", "eu-west-1")
            .input("chartType", "Name")
            .input("releaseName", "web");
        for (name, value) in &inputs {
            run = run.input(name, value);
        }
        let outcome = run.run();
        assert_eq!(outcome.result, StepResult::Failed);
        let message = &outcome.errors()[0].message;
        assert!(message.contains(expected), "{inputs:?}: {message}");
        assert!(!outcome.log_text().contains("AWS identity"), "nothing was asked of AWS");
    }
}

/// Off EKS (a kubeconfig file), the agent's own AWS identity is the base:
/// `registryRoleArn` is assumed from it for the central account's chart.
#[test]
fn a_kubeconfig_target_reads_an_ecr_chart_with_the_agents_identity() {
    let world = published();
    let namespace = world.unique_namespace("ecr-kubeconfig").unwrap();
    let home = tempfile::tempdir().unwrap();
    let outcome = super::run(staged(), home.path())
        .env("SSL_CERT_FILE", &world.ca_file().display().to_string())
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &world.kubeconfig_path().display().to_string())
        .input("chartType", "OCI")
        .input("chartName", &ecr_chart(CENTRAL_ACCOUNT, CENTRAL))
        .input("chartVersion", VERSION)
        .input("registryRoleArn", CENTRAL_READER)
        .input("releaseName", "web")
        .input("namespace", &namespace)
        .input("waitForExecution", "false")
        .input("helmPath", &world.tools().helm3.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.log_text().contains(&format!("by role {CENTRAL_READER}")), "{}", outcome.log_text());
    assert!(outcome.secrets.iter().any(|s| s == "999999999999-auth-token"));
    assert_no_secret_in_log(&outcome);
    assert_no_private_dir(&agent_temp(home.path()));
    assert_home_untouched(home.path());
}
