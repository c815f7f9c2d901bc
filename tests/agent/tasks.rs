//! Both tasks, started through run.js as the agent starts them.

use azp_harness::StepResult;

use crate::{run_of, staged};

#[test]
fn kaniko_build_without_destinations_names_the_input() {
    let task = staged("KanikoBuildV1");
    let outcome = run_of(&task).input("bucket", "contexts").run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_eq!(outcome.exit_code, Some(0), "under the agent a failure exits 0");
    let errors = outcome.errors();
    assert_eq!(errors.len(), 1, "{:?}", outcome.log);
    assert_eq!(errors[0].message, "Input required: Destinations (destinations)");
}

#[test]
fn kaniko_build_bucket_is_required_only_when_visible() {
    let task = staged("KanikoBuildV1");
    let missing = run_of(&task).input("destinations", "registry.local/app:1").run();
    assert_eq!(missing.errors()[0].message, "Input required: S3 bucket (bucket)");
    let streamed =
        run_of(&task).input("destinations", "registry.local/app:1").input("contextTransport", "Stream").run();
    assert_eq!(streamed.result, StepResult::Failed);
    assert_eq!(streamed.errors().len(), 1);
    assert!(!streamed.errors()[0].message.contains("bucket"), "{:?}", streamed.errors());
}

#[test]
fn kaniko_build_without_a_dockerfile_names_the_input() {
    let task = staged("KanikoBuildV1");
    let outcome = run_of(&task)
        .env("AZP_BUILD_NAMESPACE", "azure-agent-build")
        .input("destinations", "registry.local/app:1\nregistry.local/app:latest")
        .input("bucket", "contexts")
        .input("buildArgs", "VERSION=1.2.3")
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    let errors = outcome.errors();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.starts_with("input dockerfile: "), "{}", errors[0].message);
    assert!(errors[0].message.contains("does not exist"), "{}", errors[0].message);
}

#[test]
fn kaniko_build_in_cluster_outside_a_pod_says_so() {
    let task = staged("KanikoBuildV1");
    let sources = tempfile::tempdir().unwrap();
    std::fs::write(sources.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let outcome = run_of(&task)
        .sources(sources.path())
        .env("AZP_BUILD_NAMESPACE", "azure-agent-build")
        .input("destinations", "registry.local/app:1")
        .input("contextTransport", "Stream")
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    let errors = outcome.errors();
    assert_eq!(errors.len(), 1, "{:?}", outcome.log);
    assert!(errors[0].message.contains("not running in a Kubernetes pod"), "{}", errors[0].message);
}

#[test]
fn multicluster_helm_without_release_names_the_input() {
    let task = staged("MulticlusterHelmV1");
    let outcome = run_of(&task).input("clusterName", "dev").input("chartName", "repo/app").run();
    assert_eq!(outcome.result, StepResult::Failed);
    let errors = outcome.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "Input required: Release name (releaseName)");
}

#[test]
fn multicluster_helm_cluster_name_is_required_for_eks_only() {
    let task = staged("MulticlusterHelmV1");
    let eks = run_of(&task).input("releaseName", "web").input("chartName", "repo/app").run();
    assert_eq!(
        eks.errors()[0].message,
        "input clusterName: the EKS cluster name is required (or targets, to deploy to several clusters)"
    );
    let in_cluster = run_of(&task)
        .input("releaseName", "web")
        .input("chartName", "repo/app")
        .input("connectionType", "In-cluster")
        // Hidden by its visibleRule: ignored, as the editor ignores it.
        .input("assumeRoleArn", "not an arn")
        .run();
    assert_eq!(in_cluster.result, StepResult::Failed, "outside a pod there is no in-cluster identity");
    assert_eq!(in_cluster.errors().len(), 1);
    let message = &in_cluster.errors()[0].message;
    assert!(!message.contains("clusterName") && !message.contains("assumeRoleArn"), "{message}");
    assert!(!in_cluster.log_text().contains("not an arn"));
}

#[test]
fn multicluster_helm_registers_connection_secrets_before_anything_else() {
    let task = staged("MulticlusterHelmV1");
    let connection = "5d3c1e70-8f0a-4c4b-9a0e-1f2e3d4c5b6a";
    let outcome = run_of(&task)
        .input("clusterName", "dev")
        .input("releaseName", "web")
        .input("chartName", "repo/app")
        .input("helmRepoPassword", "repo-pa55word")
        .input("awsCredentials", connection)
        .env(
            &format!("ENDPOINT_AUTH_{connection}"),
            r#"{"parameters":{"username":"AKIDEXAMPLE","password":"wJalrXUtnFEMI"},"scheme":"UsernamePassword"}"#,
        )
        // Nothing listens there: the AWS calls fail at once, on this machine.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
        .env("AWS_REGION", "eu-west-1")
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_eq!(outcome.errors().len(), 1);
    let log = outcome.log_text();
    for secret in ["repo-pa55word", "AKIDEXAMPLE", "wJalrXUtnFEMI"] {
        assert!(!log.contains(secret) && !outcome.errors()[0].message.contains(secret), "{secret} never shown");
    }
    for secret in ["repo-pa55word", "AKIDEXAMPLE", "wJalrXUtnFEMI"] {
        assert!(outcome.secrets.iter().any(|s| s == secret), "{secret} registered");
    }
    // Registered before anything else was printed.
    let first = outcome.commands.first().unwrap();
    assert_eq!(first.name, "task.setsecret");
}

#[test]
fn a_bad_pick_list_value_names_the_input_and_its_options() {
    let task = staged("KanikoBuildV1");
    let outcome = run_of(&task).input("destinations", "r/a:1").input("contextTransport", "FTP").run();
    assert_eq!(
        outcome.errors()[0].message,
        "input contextTransport must be one of \"S3\", \"S3 presigned URL\", \"Stream\", not \"FTP\""
    );
}

#[test]
fn from_a_terminal_a_failure_exits_non_zero() {
    let output = std::process::Command::new(crate::binary())
        .args(["kaniko-build", "--bucket", "contexts"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("##vso[task.logissue type=error]Input required: Destinations (destinations)"), "{stdout}");
}

#[test]
fn version_and_help() {
    let version = std::process::Command::new(crate::binary()).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("azp-kube {}", env!("CARGO_PKG_VERSION")));
    let help = std::process::Command::new(crate::binary()).args(["kaniko-build", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--build-context"), "{help}");
    assert!(help.contains("Build context"), "{help}");
}

#[test]
fn a_kubeconfig_connection_registers_its_credentials_not_its_lines() {
    // The agent masks a registered value in every later line of the job, so
    // registering a kubeconfig line by line hid `namespace: default` and the
    // like everywhere, while a token printed without its key stayed visible.
    let task = staged("KanikoBuildV1");
    let connection = "3e5b7d1f-2a4c-4e6f-8a0b-1c2d3e4f5a6b";
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:9\n\
                      contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: default\n\
                      current-context: c\nusers:\n- name: u\n  user:\n    token: kubeconfig-bearer-t0ken\n";
    let outcome = run_of(&task)
        .input("connectionType", "Kubernetes service connection")
        .input("kubernetesServiceConnection", connection)
        .input("destinations", "registry.local/app:1")
        .input("contextTransport", "Stream")
        .env(&format!("ENDPOINT_AUTH_{connection}"), r#"{"parameters":{},"scheme":"Kubernetes"}"#)
        .env(&format!("ENDPOINT_AUTH_PARAMETER_{connection}_KUBECONFIG"), kubeconfig)
        .env(&format!("ENDPOINT_DATA_{connection}_AUTHORIZATIONTYPE"), "Kubeconfig")
        .run();
    assert!(outcome.secrets.iter().any(|s| s == "kubeconfig-bearer-t0ken"), "{:?}", outcome.secrets.len());
    for structural in ["apiVersion: v1", "kind: Config", "namespace: default", "users:", "- name: u"] {
        assert!(!outcome.secrets.iter().any(|s| s.contains(structural)), "{structural:?} registered as a secret");
    }
    assert!(!outcome.log_text().contains("kubeconfig-bearer-t0ken"));
}
