//! The rendered manifests: no cluster-admin, no privileged container, no PAT in
//! any pod's environment, for every scenario and both helms.

use base64::Engine as _;
use serde_json::Value;

use crate::support::*;

#[test]
fn no_cluster_admin_no_privileged_container_and_no_pat_in_any_pod_environment() {
    for (helm_name, helm) in helms() {
        for (scenario, extra) in scenarios() {
            let objects = render(helm, &extra);
            let context = format!("{helm_name} {scenario}");
            check_rbac(&context, &objects);
            let mut pods = 0;
            for object in &objects {
                for spec in pod_specs(object) {
                    pods += 1;
                    check_pod(&context, object, spec);
                }
            }
            assert!(pods >= 1, "{context}: no pod spec rendered");
            check_pat_only_in_its_secret(&context, &objects);
        }
    }
}

fn check_rbac(context: &str, objects: &[Value]) {
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        assert!(!matches!(kind, "ClusterRole" | "ClusterRoleBinding"), "{context}: cluster-wide {kind}");
        if kind == "RoleBinding" {
            let role = &object["roleRef"];
            assert_eq!(role["kind"], "Role", "{context}: bound to a namespaced Role");
            assert_ne!(role["name"], "cluster-admin", "{context}");
            assert_ne!(role["name"], "admin", "{context}");
        }
        if kind == "Role" {
            for rule in object["rules"].as_array().unwrap() {
                let words =
                    |key: &str| rule[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>();
                assert!(
                    !words("verbs").contains(&"*") && !words("resources").contains(&"*"),
                    "{context}: wildcard {rule}"
                );
                assert!(
                    !words("verbs").contains(&"escalate") && !words("verbs").contains(&"bind"),
                    "{context}: {rule}"
                );
            }
        }
    }
}

fn check_pod(context: &str, object: &Value, spec: &Value) {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    assert_ne!(spec["hostNetwork"], true, "{context} {name}");
    assert_ne!(spec["hostPID"], true, "{context} {name}");
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{context} {name}: non-root agent");
    assert_eq!(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{context} {name}");
    for container in containers(spec) {
        let security = &container["securityContext"];
        assert_ne!(security["privileged"], true, "{context} {name}: privileged container");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{context} {name}");
        assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]), "{context} {name}");
        assert!(security["capabilities"]["add"].is_null(), "{context} {name}: added capabilities");
        for env in container["env"].as_array().into_iter().flatten() {
            let value = env["value"].as_str().unwrap_or_default();
            assert!(!value.contains(PAT), "{context} {name}: the PAT in env {}", env["name"]);
            assert!(env["valueFrom"]["secretKeyRef"].is_null(), "{context} {name}: a Secret in env {}", env["name"]);
            let key = env["name"].as_str().unwrap_or_default();
            assert!(!key.contains("TOKEN") || key == "AZP_TOKEN_FILE", "{context} {name}: env {key}");
        }
        for source in container["envFrom"].as_array().into_iter().flatten() {
            assert!(source["secretRef"].is_null(), "{context} {name}: envFrom a Secret");
        }
        assert!(container["args"].to_string().find(PAT).is_none(), "{context} {name}: the PAT in args");
    }
    assert!(!spec.to_string().contains(PAT), "{context} {name}: the PAT in a pod spec");
}

/// The PAT is in the chart's Secret (base64) and nowhere else.
fn check_pat_only_in_its_secret(context: &str, objects: &[Value]) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(PAT);
    for object in objects {
        let text = object.to_string();
        if object["kind"] == "Secret" {
            assert_eq!(object["data"]["token"], encoded.as_str(), "{context}");
        } else {
            assert!(!text.contains(PAT) && !text.contains(&encoded), "{context}: the PAT in a {}", object["kind"]);
        }
    }
}
