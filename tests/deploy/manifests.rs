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

/// Names of the pod's volumes that carry the PAT Secret (directly or projected).
fn pat_volumes(spec: &Value, secret: &str) -> Vec<String> {
    let carries = |volume: &Value| {
        volume["secret"]["secretName"] == secret
            || volume["projected"]["sources"]
                .as_array()
                .is_some_and(|sources| sources.iter().any(|s| s["secret"]["name"] == secret))
    };
    spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| carries(v))
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

fn mounts(container: &Value) -> Vec<String> {
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_container_that_runs_job_steps_gets_no_pat_while_register_and_its_sidecar_do() {
    let helm = world().tools().helm4.as_path();
    for (scenario, extra) in scenarios() {
        let secret = if extra.iter().any(|v| v.starts_with("azp.existingSecret=")) {
            "azp-pat"
        } else {
            "pool-azure-agent-token"
        };
        let objects = render(helm, &extra);
        let agents: Vec<&Value> =
            objects.iter().filter(|o| matches!(o["kind"].as_str(), Some("ScaledJob" | "Deployment"))).collect();
        assert_eq!(agents.len(), 1, "{scenario}: one agent workload");
        let spec = pod_specs(agents[0])[0];
        let pat = pat_volumes(spec, secret);
        assert_eq!(pat.len(), 1, "{scenario}: the PAT is one volume: {spec}");
        assert_ne!(spec["shareProcessNamespace"], true, "{scenario}: the agent would see the sidecar's files in /proc");

        let agent = &spec["containers"];
        assert_eq!(agent.as_array().unwrap().len(), 1, "{scenario}: one container runs jobs");
        let agent = &agent[0];
        assert_eq!(agent["name"], "agent");
        assert!(!mounts(agent).iter().any(|m| pat.contains(m)), "{scenario}: the agent mounts the PAT: {agent}");
        assert_eq!(agent["args"][0], "run", "{scenario}");
        assert!(
            !mounts(agent).contains(&"registration".to_string()),
            "{scenario}: deregister's record is not the agent's"
        );
        let env = agent["env"].as_array().unwrap();
        assert!(!env.iter().any(|e| e["name"] == "AZP_TOKEN_FILE" || e["name"] == "AZP_TOKEN"), "{scenario}: {env:?}");
        assert!(!env.iter().any(|e| !e["valueFrom"].is_null()), "{scenario}: {env:?}");
        assert!(agent["envFrom"].is_null(), "{scenario}");

        // register configures the agent, then a native sidecar holds the PAT
        // until the agent has stopped, to remove the registration.
        let inits = spec["initContainers"].as_array().expect("init containers");
        let names: Vec<_> = inits.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["register", "deregister"], "{scenario}");
        for init in inits {
            assert_eq!(init["args"][0], init["name"], "{scenario}");
            assert!(mounts(init).iter().any(|m| pat.contains(m)), "{scenario}: {init}");
        }
        assert!(inits[0]["restartPolicy"].is_null(), "{scenario}: register runs to completion first");
        assert_eq!(inits[1]["restartPolicy"], "Always", "{scenario}: deregister is a native sidecar");
        let handover = |c: &Value| mounts(c).contains(&"handover".to_string());
        assert!(handover(agent) && handover(&inits[0]) && handover(&inits[1]), "{scenario}");
    }
}
