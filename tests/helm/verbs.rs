//! helm's other verbs on a real release, with helm 3 and 4: `test` (the test
//! pod's log in the step's log), `rollback` (to the previous revision and to
//! a named one), `uninstall` (and again, missing, refused or allowed).

use std::time::Duration;

use azp_harness::{Outcome, StepResult};
use azp_kube_world::Behaviour;

use super::*;

/// The world's chart with its test pod running `probe`.
fn chart_with_probe(probe: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&chart(), dir.path());
    let test_pod = dir.path().join("templates/tests/test-connection.yaml");
    let text = std::fs::read_to_string(&test_pod).unwrap().replace("registry.world/probe:1", probe);
    std::fs::write(&test_pod, text).unwrap();
    dir
}

fn message(namespace: &str) -> Option<String> {
    let out = Command::new(&world().tools().kubectl)
        .args(["--kubeconfig", &world().kubeconfig_path().display().to_string(), "-n", namespace])
        .args(["get", "configmap", "web-config", "-o", "jsonpath={.data.message}"])
        .output()
        .unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn every_verb_on_a_real_release(helm: &Path, probe: &str) {
    world().set_behaviour(probe, Behaviour::exit(&["probe reached web:80"], 0, Duration::from_millis(100)));
    let chart = chart_with_probe(probe);
    let namespace = world().unique_namespace("verbs").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let step = |command: &str| {
        run(&task, home.path())
            .input("connectionType", "Kubeconfig file")
            .input("kubeconfig", &world().kubeconfig_path().display().to_string())
            .input("command", command)
            .input("releaseName", "web")
            .input("namespace", &namespace)
            .input("timeout", "30s")
            .input("helmPath", &helm.display().to_string())
    };
    let upgrade = |message: &str| {
        step("upgrade")
            .input("chartType", "FilePath")
            .input("chartPath", &chart.path().display().to_string())
            .input("overrideValues", &format!("hook=false\nmessage={message}"))
            .run()
    };
    let succeeded = |outcome: &Outcome| {
        assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    };
    succeeded(&upgrade("one"));
    succeeded(&upgrade("two"));

    let tested = step("test").run();
    succeeded(&tested);
    assert!(tested.log_text().contains("probe reached web:80"), "the test pod's log: {}", tested.log_text());
    assert_eq!(tested.output("releaseRevision"), Some("2"));

    let back = step("rollback").run();
    succeeded(&back);
    assert_eq!((back.output("releaseRevision"), back.output("releaseStatus")), (Some("3"), Some("deployed")));
    assert_eq!(message(&namespace).as_deref(), Some("one"), "rolled back to the previous revision");
    let to_two = step("rollback").input("revision", "2").run();
    succeeded(&to_two);
    assert_eq!(to_two.output("releaseRevision"), Some("4"));
    assert_eq!(message(&namespace).as_deref(), Some("two"), "rolled back to revision 2");

    let removed = step("uninstall").run();
    succeeded(&removed);
    assert_eq!(removed.output("releaseStatus"), Some("uninstalled"));
    assert_eq!(removed.output("releaseRevision"), Some("4"));
    assert_eq!(message(&namespace), None, "the release's objects are gone");

    let missing = step("uninstall").run();
    assert_eq!(missing.result, StepResult::Failed);
    let error = &missing.errors()[0].message;
    assert!(error.contains("does not exist") && error.contains("ignoreMissingRelease"), "{error}");
    let allowed = step("uninstall").input("ignoreMissingRelease", "true").run();
    succeeded(&allowed);
    assert_eq!(allowed.output("releaseStatus"), Some("uninstalled"));
}

#[test]
fn every_verb_on_a_real_release_with_helm4() {
    every_verb_on_a_real_release(&world().tools().helm4, "registry.world/probe-helm4:1");
}

#[test]
fn every_verb_on_a_real_release_with_helm3() {
    every_verb_on_a_real_release(&world().tools().helm3, "registry.world/probe-helm3:1");
}

#[test]
fn a_failing_release_test_fails_the_step_and_shows_why() {
    let probe = "registry.world/probe-failing:1";
    world().set_behaviour(probe, Behaviour::exit(&["probe could not reach web:80"], 1, Duration::from_millis(100)));
    let chart = chart_with_probe(probe);
    let namespace = world().unique_namespace("verbs-fail").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let helm = world().tools().helm4.display().to_string();
    let installed = run(&task, home.path())
        .with_chart_from_world()
        .input("chartPath", &chart.path().display().to_string())
        .input("releaseName", "web")
        .input("namespace", &namespace)
        .input("overrideValues", "hook=false")
        .input("waitForExecution", "false")
        .input("helmPath", &helm)
        .run();
    assert_eq!(installed.result, StepResult::Succeeded, "{}", installed.log_text());
    let tested = run(&task, home.path())
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &world().kubeconfig_path().display().to_string())
        .input("command", "test")
        .input("releaseName", "web")
        .input("namespace", &namespace)
        .input("timeout", "30s")
        .input("helmPath", &helm)
        .run();
    assert_eq!(tested.result, StepResult::Failed, "{}", tested.log_text());
    assert_eq!(tested.errors().len(), 1, "{:?}", tested.errors());
    assert!(
        tested.errors()[0].message.contains(&format!("helm test of {namespace}/web failed")),
        "{:?}",
        tested.errors()
    );
    assert_ne!(tested.output("helmExitCode"), Some("0"));
}

/// The world's chart with the Secret's password from `.Values.password`
/// (so it shows nowhere else).
fn chart_with_password() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&chart(), dir.path());
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-secret\ntype: Opaque\n\
                  stringData:\n  password: {{ .Values.password | quote }}\n  user: app\n";
    std::fs::write(dir.path().join("templates/secret.yaml"), secret).unwrap();
    dir
}

fn a_diff_shows_what_an_upgrade_would_change_and_changes_nothing(helm: &Path) {
    let before = chart_with_password();
    let after = chart_with_password();
    std::fs::remove_file(after.path().join("templates/service.yaml")).unwrap();
    let extra = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra\ndata:\n  a: b\n";
    std::fs::write(after.path().join("templates/extra.yaml"), extra).unwrap();
    let namespace = world().unique_namespace("diff").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let step = |command: &str, chart: &Path, values: &str| {
        run(&task, home.path())
            .with_chart_from_world()
            .input("command", command)
            .input("chartPath", &chart.display().to_string())
            .input("releaseName", "web")
            .input("namespace", &namespace)
            .input("overrideValues", &format!("hook=false\n{values}"))
            .input("waitForExecution", "false")
            .input("helmPath", &helm.display().to_string())
            .run()
    };
    let installed = step("upgrade", before.path(), "message=first\npassword=before-pw-123");
    assert_eq!(installed.result, StepResult::Succeeded, "{}", installed.log_text());

    let diff = step("diff", after.path(), "message=second\npassword=after-pw-456");
    assert_eq!(diff.result, StepResult::Succeeded, "{:?}\n{}", diff.errors(), diff.log_text());
    assert_eq!(diff.output("hasChanges"), Some("true"));
    let log = diff.log_text();
    for line in [
        "ConfigMap web-config: changed",
        "ConfigMap web-extra: added",
        "Service web: removed",
        "Secret web-secret: changed",
        "-  message: first",
        "+  message: second",
        "+  password: (hidden, changed)",
        "   user: (hidden)",
    ] {
        assert!(log.contains(line), "{line:?} missing from the log:\n{log}");
    }
    let summary = diff.summaries.iter().find_map(|(_, text)| text.clone()).expect("a summary");
    assert!(summary.contains("| `Service web` | removed |"), "{summary}");
    for secret in ["before-pw-123", "after-pw-456"] {
        assert!(!log.contains(secret) && !summary.contains(secret), "{secret} shown");
    }

    // Nothing changed in the cluster: one revision, the Service still there, the old message.
    assert_eq!(message(&namespace).as_deref(), Some("first"));
    let service = Command::new(&world().tools().kubectl)
        .args(["--kubeconfig", &world().kubeconfig_path().display().to_string(), "-n", &namespace])
        .args(["get", "service", "web"])
        .output()
        .unwrap();
    assert!(service.status.success(), "the Service is still there");
    let same = step("diff", before.path(), "message=first\npassword=before-pw-123");
    assert_eq!(same.result, StepResult::Succeeded, "{}", same.log_text());
    assert_eq!(same.output("hasChanges"), Some("false"), "{}", same.log_text());
    assert_eq!(same.output("releaseRevision"), None, "a diff reports no revision");
    let history = release_history(helm, &namespace, "web", home.path());
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");

    // Before the first deploy (into a namespace that does not exist yet): everything is new.
    let first = run(&task, home.path())
        .with_chart_from_world()
        .input("command", "diff")
        .input("chartPath", &after.path().display().to_string())
        .input("releaseName", "fresh")
        .input("namespace", &format!("{namespace}-new"))
        .input("overrideValues", "hook=false\npassword=first-pw-789")
        .input("helmPath", &helm.display().to_string())
        .run();
    assert_eq!(first.result, StepResult::Succeeded, "{:?}\n{}", first.errors(), first.log_text());
    assert_eq!(first.output("hasChanges"), Some("true"));
    let log = first.log_text();
    assert!(log.contains("is not installed") && log.contains("Deployment fresh: added"), "{log}");
    assert!(!log.contains("first-pw-789"), "{log}");
}

#[test]
fn a_diff_shows_what_an_upgrade_would_change_and_changes_nothing_with_helm4() {
    a_diff_shows_what_an_upgrade_would_change_and_changes_nothing(&world().tools().helm4);
}

#[test]
fn a_diff_shows_what_an_upgrade_would_change_and_changes_nothing_with_helm3() {
    a_diff_shows_what_an_upgrade_would_change_and_changes_nothing(&world().tools().helm3);
}
