//! Minimal controllers, enough for `helm --wait` and the tasks: Deployments own ReplicaSets,
//! ReplicaSets/StatefulSets/DaemonSets/Jobs own pods and report status from them, namespaces
//! get their default ServiceAccount and empty themselves when deleted, and the garbage
//! collector deletes dependents of deleted owners. All react to store events.

mod deployment;
mod job;
mod owned;
mod sets;

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::cluster::Cluster;
use crate::store::{Event, EventType, ResourceId};

/// Starts the controllers' event loop on the current tokio runtime.
pub fn start(cluster: Arc<Cluster>) {
    let rx = cluster.store.subscribe();
    tokio::spawn(event_loop(cluster, rx));
}

async fn event_loop(cluster: Arc<Cluster>, mut rx: broadcast::Receiver<Arc<Event>>) {
    loop {
        match rx.recv().await {
            Ok(event) => {
                // A bug in one reconcile must not stop every controller.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(&cluster, &event)));
            }
            Err(broadcast::error::RecvError::Lagged(_)) => resync(&cluster),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn handle(cluster: &Cluster, event: &Event) {
    if event.kind == EventType::Deleted {
        cluster.delete_dependents(&event.object);
    }
    let ns = event.namespace.as_str();
    let name = event.object["metadata"]["name"].as_str().unwrap_or_default();
    match (event.resource.group.as_str(), event.resource.plural.as_str()) {
        ("", "pods") => {
            if let Some(owner) = owned::controller_of(&event.object) {
                reconcile(cluster, &owner.0, ns, &owner.1);
            }
        }
        ("", "namespaces") => namespace_changed(cluster, event),
        ("apps", "replicasets") => {
            reconcile(cluster, "ReplicaSet", ns, name);
            if let Some(owner) = owned::controller_of(&event.object) {
                reconcile(cluster, &owner.0, ns, &owner.1);
            }
        }
        ("apps", "deployments") => reconcile(cluster, "Deployment", ns, name),
        ("apps", "statefulsets") => reconcile(cluster, "StatefulSet", ns, name),
        ("apps", "daemonsets") => reconcile(cluster, "DaemonSet", ns, name),
        ("batch", "jobs") => reconcile(cluster, "Job", ns, name),
        _ => {}
    }
}

/// Reconciles one workload by kind, if it still exists.
fn reconcile(cluster: &Cluster, kind: &str, ns: &str, name: &str) {
    let (group, plural) = match kind {
        "Deployment" => ("apps", "deployments"),
        "ReplicaSet" => ("apps", "replicasets"),
        "StatefulSet" => ("apps", "statefulsets"),
        "DaemonSet" => ("apps", "daemonsets"),
        "Job" => ("batch", "jobs"),
        _ => return,
    };
    let Some(obj) = cluster.store.find(&ResourceId::new(group, plural), ns, name) else { return };
    if !obj["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    match kind {
        "Deployment" => deployment::reconcile_deployment(cluster, &obj),
        "ReplicaSet" => deployment::reconcile_replicaset(cluster, &obj),
        "StatefulSet" => sets::reconcile_statefulset(cluster, &obj),
        "DaemonSet" => sets::reconcile_daemonset(cluster, &obj),
        _ => job::reconcile_job(cluster, &obj),
    }
}

fn resync(cluster: &Cluster) {
    for (kind, group, plural) in [
        ("Deployment", "apps", "deployments"),
        ("ReplicaSet", "apps", "replicasets"),
        ("StatefulSet", "apps", "statefulsets"),
        ("DaemonSet", "apps", "daemonsets"),
        ("Job", "batch", "jobs"),
    ] {
        for obj in cluster.store.list_id(&ResourceId::new(group, plural), None) {
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
            reconcile(cluster, kind, ns, obj["metadata"]["name"].as_str().unwrap_or_default());
        }
    }
}

fn namespace_changed(cluster: &Cluster, event: &Event) {
    let name = event.object["metadata"]["name"].as_str().unwrap_or_default();
    match event.kind {
        EventType::Added => {
            if let Ok(sa) = cluster.resource("", "serviceaccounts") {
                // The namespace may already be gone again; then there is nothing to add.
                let _ = cluster.create(&sa, name, json!({"metadata": {"name": "default"}}), false);
            }
        }
        EventType::Modified if !event.object["metadata"]["deletionTimestamp"].is_null() => {
            cluster.finish_namespace(name)
        }
        _ => {}
    }
}

/// Writes an object's status if it changed, keeping condition transition times stable.
fn write_status(cluster: &Cluster, group: &str, plural: &str, obj: &Value, mut status: Value) {
    let Ok(rt) = cluster.resource(group, plural) else { return };
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let _ = cluster.store.update(&rt, ns, name, None, |current| {
        keep_transition_times(&current["status"], &mut status);
        let mut next = current.clone();
        next["status"] = status;
        Ok(next)
    });
}

fn keep_transition_times(old: &Value, new: &mut Value) {
    let Some(conditions) = new["conditions"].as_array_mut() else { return };
    for c in conditions {
        let previous = old["conditions"].as_array().and_then(|l| l.iter().find(|o| o["type"] == c["type"]));
        match previous {
            Some(p) if p["status"] == c["status"] && p["reason"] == c["reason"] => {
                c["lastTransitionTime"] = p["lastTransitionTime"].clone();
                if !p["lastUpdateTime"].is_null() {
                    c["lastUpdateTime"] = p["lastUpdateTime"].clone();
                }
            }
            _ => {}
        }
    }
}
