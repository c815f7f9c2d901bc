//! Core `Event` objects about pods, as the scheduler and kubelet record them (Scheduled,
//! FailedScheduling, Pulling, Failed, BackOff, Started, Killing, ...), so that
//! `kubectl describe` and event-reading clients see why a pod is stuck or failed.

use serde_json::json;

use super::NODE_NAME;
use crate::cluster::Cluster;

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Informational.
    Normal,
    /// Something went wrong.
    Warning,
}

/// The pod an event is about.
pub struct Involved<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Pod name.
    pub name: &'a str,
    /// Pod uid.
    pub uid: &'a str,
}

/// Records an event from `component` about a pod (a missing namespace just drops it).
pub fn record(cluster: &Cluster, pod: &Involved<'_>, component: &str, level: Level, reason: &str, message: &str) {
    let Ok(events) = cluster.resource("", "events") else { return };
    let now = crate::store::now();
    let event = json!({
        "metadata": {"generateName": format!("{}.", pod.name)},
        "involvedObject": {"kind": "Pod", "namespace": pod.namespace, "name": pod.name, "uid": pod.uid, "apiVersion": "v1"},
        "reason": reason,
        "message": message,
        "type": match level { Level::Normal => "Normal", Level::Warning => "Warning" },
        "source": {"component": component, "host": NODE_NAME},
        "reportingComponent": component,
        "reportingInstance": NODE_NAME,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let _ = cluster.create(&events, pod.namespace, event, false);
}
