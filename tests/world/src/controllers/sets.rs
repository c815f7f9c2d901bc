//! StatefulSets (pods `<name>-<ordinal>`, replaced when their revision label is stale) and
//! DaemonSets (one pod on the one node), with the status fields readiness checkers read.

use serde_json::{Value, json};

use super::owned::{
    PodName, create_pod, delete_pod, hash_of, is_ready, is_terminating, owned_by, pod_from_template, replicas,
    scale_pods,
};
use super::write_status;
use crate::cluster::Cluster;

const REVISION_LABEL: &str = "controller-revision-hash";

pub fn reconcile_statefulset(cluster: &Cluster, sts: &Value) {
    let name = sts["metadata"]["name"].as_str().unwrap_or_default();
    let revision = format!("{name}-{}", hash_of(&sts["spec"]["template"]));
    let wanted = usize::try_from(replicas(sts)).unwrap_or(0);
    let pods = owned_by(cluster, "", "pods", sts);
    for ordinal in 0..wanted {
        let pod_name = format!("{name}-{ordinal}");
        match pods.iter().find(|p| p["metadata"]["name"] == pod_name.as_str()) {
            None => {
                let labels = json!({REVISION_LABEL: revision, "statefulset.kubernetes.io/pod-name": pod_name, "apps.kubernetes.io/pod-index": ordinal.to_string()});
                create_pod(
                    cluster,
                    sts,
                    pod_from_template(sts, &sts["spec"]["template"], &labels, PodName::Exact(pod_name)),
                );
            }
            Some(pod) if !is_terminating(pod) && pod["metadata"]["labels"][REVISION_LABEL] != revision.as_str() => {
                delete_pod(cluster, pod)
            }
            Some(_) => {}
        }
    }
    for pod in &pods {
        let ordinal =
            pod["metadata"]["name"].as_str().and_then(|n| n.rsplit('-').next()).and_then(|o| o.parse::<usize>().ok());
        if ordinal.is_none_or(|o| o >= wanted) && !is_terminating(pod) {
            delete_pod(cluster, pod);
        }
    }
    let live: Vec<&Value> = pods.iter().filter(|p| !is_terminating(p)).collect();
    let updated = live.iter().filter(|p| p["metadata"]["labels"][REVISION_LABEL] == revision.as_str()).count();
    let ready = live.iter().filter(|p| is_ready(p)).count();
    let current_revision =
        if updated == wanted && ready == wanted { json!(revision) } else { sts["status"]["currentRevision"].clone() };
    let status = json!({
        "observedGeneration": sts["metadata"]["generation"], "replicas": live.len(), "readyReplicas": ready,
        "currentReplicas": updated, "updatedReplicas": updated, "availableReplicas": ready,
        "currentRevision": current_revision, "updateRevision": revision, "collisionCount": 0,
    });
    write_status(cluster, "apps", "statefulsets", sts, status);
}

pub fn reconcile_daemonset(cluster: &Cluster, ds: &Value) {
    let revision = hash_of(&ds["spec"]["template"]);
    for stale in owned_by(cluster, "", "pods", ds) {
        if !is_terminating(&stale) && stale["metadata"]["labels"][REVISION_LABEL] != revision.as_str() {
            delete_pod(cluster, &stale);
        }
    }
    let pods = scale_pods(cluster, ds, &ds["spec"]["template"], &json!({REVISION_LABEL: revision}), 1);
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let updated = pods.iter().filter(|p| p["metadata"]["labels"][REVISION_LABEL] == revision.as_str()).count();
    let mut status = json!({
        "observedGeneration": ds["metadata"]["generation"], "desiredNumberScheduled": 1, "currentNumberScheduled": pods.len(),
        "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": updated,
    });
    if ready == 0 {
        status["numberUnavailable"] = json!(1);
    }
    write_status(cluster, "apps", "daemonsets", ds, status);
}
