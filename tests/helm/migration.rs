//! A HelmDeploy@1 step moved to MulticlusterHelm@1: HelmDeploy's input names
//! (task.json `aliases`, resolved by the server as the harness does), its
//! pickList spelling, its switches, and the warning for its comma lists.

use super::*;

/// The world's admin kubeconfig as a Kubernetes service connection of the
/// kubeconfig kind, the way the agent hands one to a task.
fn with_kubeconfig_connection(run: TaskRun, id: &str) -> TaskRun {
    let kubeconfig = std::fs::read_to_string(world().kubeconfig_path()).unwrap();
    run.env(&format!("ENDPOINT_AUTH_{id}"), r#"{"parameters":{},"scheme":"Kubernetes"}"#)
        .env(&format!("ENDPOINT_AUTH_PARAMETER_{id}_KUBECONFIG"), &kubeconfig)
        .env(&format!("ENDPOINT_DATA_{id}_AUTHORIZATIONTYPE"), "Kubeconfig")
}

fn helmdeploy_step(helm: &Path, force_flag: &str) {
    let namespace = world().unique_namespace("migrated").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let connection = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
    // As HelmDeploy@1 spells it: `kubernetesServiceEndpoint`, `version`,
    // `Kubernetes Service Connection`, and a comma-separated overrideValues.
    let run = run(&task, home.path())
        .input("connectionType", "Kubernetes Service Connection")
        .input("kubernetesServiceEndpoint", connection)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .input("namespace", &namespace)
        .input("overrideValues", "message=hello,replicas=2")
        .input("force", "true")
        .input("waitForExecution", "false")
        .input("helmPath", &helm.display().to_string());
    let outcome = with_kubeconfig_connection(run, connection).run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let log = outcome.log_text();
    assert!(log.contains(&format!(" {force_flag}")), "the force switch reaches helm: {log}");
    let warnings = outcome.warnings();
    let warning = warnings.iter().find(|w| w.message.contains("overrideValues line 1")).expect("a migration warning");
    assert!(warning.message.contains("message=… / replicas=…"), "{}", warning.message);
    assert!(!warning.message.contains("hello"), "a value in a warning: {}", warning.message);
    // What the warning is about: the whole rest of the line became the value.
    assert_eq!(config_map(&namespace, "web-config")["data"]["message"], "hello,replicas=2");
}

#[test]
fn a_helmdeploy_step_runs_with_its_own_input_names_on_helm4() {
    helmdeploy_step(&world().tools().helm4, "--force-replace");
}

#[test]
fn a_helmdeploy_step_runs_with_its_own_input_names_on_helm3() {
    helmdeploy_step(&world().tools().helm3, "--force");
}

/// helm writes "this chart is deprecated" to stderr and still deploys.
fn deprecated_chart() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&chart(), dir.path());
    let chart_yaml = dir.path().join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(&chart_yaml, format!("{text}\ndeprecated: true\n")).unwrap();
    dir
}

#[test]
fn fail_on_stderr_fails_a_deploy_that_helm_warned_about() {
    let chart = deprecated_chart();
    let task = task();
    for (helm, fail_on_stderr) in
        [(&world().tools().helm4, "true"), (&world().tools().helm3, "true"), (&world().tools().helm3, "false")]
    {
        let namespace = world().unique_namespace("stderr").unwrap();
        let home = tempfile::tempdir().unwrap();
        let outcome = run(&task, home.path())
            .with_chart_from_world()
            .input("chartPath", &chart.path().display().to_string())
            .input("releaseName", "web")
            .input("namespace", &namespace)
            .input("waitForExecution", "false")
            .input("failOnStderr", fail_on_stderr)
            .input("helmPath", &helm.display().to_string())
            .run();
        let log = outcome.log_text();
        assert!(log.to_lowercase().contains("chart is deprecated"), "helm warned: {log}");
        assert_eq!(outcome.output("releaseStatus"), Some("deployed"), "{log}");
        if fail_on_stderr == "true" {
            assert_eq!(outcome.result, StepResult::Failed, "{}: {log}", helm.display());
            assert!(outcome.errors()[0].message.contains("failOnStderr"), "{:?}", outcome.errors());
        } else {
            assert_eq!(outcome.result, StepResult::Succeeded, "{:?}", outcome.errors());
        }
    }
}

#[test]
fn reset_and_reuse_values_together_are_refused_before_helm_runs() {
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let outcome = run(&task, home.path())
        .with_chart_from_world()
        .input("releaseName", "web")
        .input("namespace", "never-created")
        .input("resetValues", "true")
        .input("reuseValues", "true")
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert!(outcome.errors()[0].message.starts_with("input reuseValues:"), "{:?}", outcome.errors());
    assert!(!outcome.log_text().contains("##[command]helm"), "helm ran: {}", outcome.log_text());
}
