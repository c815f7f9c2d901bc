//! What the API server checks in an object (unknown and mistyped fields, per
//! `fieldValidation`) and the version it reports, seen through kubectl.

use azp_kube_world::{Options, ServerVersion, World};

use crate::support::{ok, run, world};

/// A pod manifest named `name` whose container has `extra` besides its name and image.
fn pod_file(dir: &std::path::Path, name: &str, image: &str, extra: &str) -> String {
    let manifest = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}"}},
            "spec": {{"restartPolicy": "Never", "containers": [{{"name": "c", "image": {image}{extra}}}]}}}}"#
    );
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, manifest).unwrap();
    path.display().to_string()
}

#[test]
fn unknown_fields_follow_field_validation() {
    let w = world();
    let ns = w.unique_namespace("fields").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubectl = &w.tools().kubectl;
    let typo = r#", "imagePullPolice": "Always""#;
    let create = |name: &str, image: &str, extra: &str, validate: &str| {
        let file = pod_file(dir.path(), name, image, extra);
        let out = run(w, kubectl, &["create", "-n", &ns, "-f", &file, &format!("--validate={validate}")]);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let unknown = r#"unknown field "spec.containers[0].imagePullPolice""#;

    let (created, stderr) = create("strict", r#""busybox""#, typo, "strict");
    assert!(!created, "Strict refuses an unknown field");
    assert!(
        stderr.contains(&format!("Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: {unknown}")),
        "{stderr}"
    );

    let (created, stderr) = create("warn", r#""busybox""#, typo, "warn");
    assert!(created, "{stderr}");
    assert!(stderr.contains(&format!("Warning: {unknown}")), "Warn answers with a warning: {stderr}");
    let stored = ok(w, kubectl, &["get", "pod", "warn", "-n", &ns, "-o", "json"]);
    assert!(!stored.contains("imagePullPolice"), "an unknown field is not stored: {stored}");

    let (created, stderr) = create("ignore", r#""busybox""#, typo, "ignore");
    assert!(created && !stderr.contains("Warning"), "Ignore keeps quiet: {stderr}");

    let (created, stderr) = create("mistyped", "5", "", "ignore");
    assert!(!created, "a mistyped field is refused whatever the directive");
    assert!(stderr.contains("Pod in version \"v1\" cannot be handled as a Pod:"), "{stderr}");
}

#[test]
fn version_follows_the_options() {
    let git_version = |w: &World| {
        let out = ok(w, &w.tools().kubectl, &["version", "-o", "json"]);
        let version: serde_json::Value = serde_json::from_str(&out).unwrap();
        version["serverVersion"]["gitVersion"].as_str().unwrap().to_string()
    };
    assert_eq!(git_version(world()), "v1.34.0");
    let newer = World::start_with(Options { aws: false, kubernetes: ServerVersion::V1_35 }).unwrap();
    assert_eq!(git_version(&newer), "v1.35.0");
}
