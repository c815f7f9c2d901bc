//! Deployments and ReplicaSets. A Deployment owns one ReplicaSet per pod template (named
//! `<deployment>-<template hash>`, labelled `pod-template-hash`, same template); old ones are
//! scaled to zero once the new one is fully ready. Status fields and conditions are the ones
//! helm 3's ready checker and helm 4's kstatus read.

use serde_json::{Value, json};

use super::owned::{hash_of, is_ready, owned_by, owner_ref, replicas, scale_pods};
use super::write_status;
use crate::cluster::Cluster;

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

pub fn reconcile_deployment(cluster: &Cluster, dep: &Value) {
    let Ok(rs_type) = cluster.resource("apps", "replicasets") else { return };
    let ns = dep["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = dep["metadata"]["name"].as_str().unwrap_or_default();
    let template = &dep["spec"]["template"];
    let hash = hash_of(template);
    let wanted = replicas(dep);
    let owned = owned_by(cluster, "apps", "replicasets", dep);
    let revision =
        |rs: &Value| rs["metadata"]["annotations"][REVISION].as_str().and_then(|r| r.parse::<i64>().ok()).unwrap_or(0);
    let newest = owned.iter().map(revision).max().unwrap_or(0);
    let current = owned.iter().find(|rs| rs["metadata"]["labels"][HASH_LABEL] == hash.as_str()).cloned();
    let new_rs = match current {
        Some(rs) if replicas(&rs) == wanted => rs,
        Some(rs) => {
            let rs_name = rs["metadata"]["name"].as_str().unwrap_or_default().to_string();
            cluster
                .store
                .update(&rs_type, ns, &rs_name, None, |cur| {
                    let mut next = cur.clone();
                    next["spec"]["replicas"] = json!(wanted);
                    Ok(next)
                })
                .unwrap_or(rs)
        }
        None => {
            let mut rs_template = template.clone();
            rs_template["metadata"]["labels"][HASH_LABEL] = json!(hash);
            let mut selector = dep["spec"]["selector"].clone();
            selector["matchLabels"][HASH_LABEL] = json!(hash);
            let rs = json!({
                "metadata": {
                    "name": format!("{name}-{hash}"),
                    "labels": rs_template["metadata"]["labels"],
                    "annotations": {REVISION: (newest + 1).to_string(), "deployment.kubernetes.io/desired-replicas": wanted.to_string()},
                    "ownerReferences": [owner_ref(dep)],
                },
                "spec": {"replicas": wanted, "selector": selector, "template": rs_template},
            });
            match cluster.create(&rs_type, ns, rs, false) {
                Ok(rs) => rs,
                Err(_) => return,
            }
        }
    };
    let new_name = new_rs["metadata"]["name"].clone();
    let new_ready = new_rs["status"]["readyReplicas"].as_i64().unwrap_or(0);
    let rolled_out = new_ready >= wanted && new_rs["status"]["observedGeneration"] == new_rs["metadata"]["generation"];
    if rolled_out {
        for old in owned.iter().filter(|rs| rs["metadata"]["name"] != new_name && replicas(rs) != 0) {
            let old_name = old["metadata"]["name"].as_str().unwrap_or_default();
            let _ = cluster.store.update(&rs_type, ns, old_name, None, |cur| {
                let mut next = cur.clone();
                next["spec"]["replicas"] = json!(0);
                Ok(next)
            });
        }
    }
    let all = owned_by(cluster, "apps", "replicasets", dep);
    let sum = |field: &str| all.iter().map(|rs| rs["status"][field].as_i64().unwrap_or(0)).sum::<i64>();
    let (total, ready, available) = (sum("replicas"), sum("readyReplicas"), sum("availableReplicas"));
    let updated = new_rs["status"]["replicas"].as_i64().unwrap_or(0);
    let complete = rolled_out && total == wanted && updated == wanted;
    let min_available = wanted - max_unavailable(dep, wanted);
    let now = crate::store::now();
    let rs_name = new_name.as_str().unwrap_or_default();
    let progressing = if complete {
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed."), "lastUpdateTime": now, "lastTransitionTime": now})
    } else {
        json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": format!("ReplicaSet \"{rs_name}\" is progressing."), "lastUpdateTime": now, "lastTransitionTime": now})
    };
    let available_condition = if available >= min_available {
        json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now})
    } else {
        json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now})
    };
    let mut status = json!({
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": total, "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": available,
        "conditions": [available_condition, progressing],
    });
    if wanted - available > 0 {
        status["unavailableReplicas"] = json!(wanted - available);
    }
    write_status(cluster, "apps", "deployments", dep, status);
}

/// `maxUnavailable` resolved against the replica count (percentages round down).
fn max_unavailable(dep: &Value, replicas: i64) -> i64 {
    let value = &dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"];
    if dep["spec"]["strategy"]["type"] != "RollingUpdate" {
        return 0;
    }
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(percent) => replicas * percent / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

pub fn reconcile_replicaset(cluster: &Cluster, rs: &Value) {
    let count = usize::try_from(replicas(rs)).unwrap_or(0);
    let pods = scale_pods(cluster, rs, &rs["spec"]["template"], &json!({}), count);
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let status = json!({
        "replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "readyReplicas": ready,
        "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"],
    });
    write_status(cluster, "apps", "replicasets", rs, status);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_unavailable_resolves_percentages() {
        let dep =
            |v: Value| json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": v}}}});
        assert_eq!(max_unavailable(&dep(json!("25%")), 1), 0);
        assert_eq!(max_unavailable(&dep(json!("25%")), 4), 1);
        assert_eq!(max_unavailable(&dep(json!(2)), 4), 2);
    }
}
