//! Server-side printing: `meta.k8s.io/v1 Table` answers for clients that ask for them in
//! `Accept` (kubectl's default output), with the columns kubectl users know per kind.

use serde_json::{Value, json};

/// Whether an Accept header asks for a Table.
pub fn wanted(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| first.contains("as=Table"))
}

fn age(obj: &Value) -> String {
    let Some(created) = obj["metadata"]["creationTimestamp"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok())
    else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now() - created).get_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn count(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn pod_status(pod: &Value) -> String {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating".into();
    }
    let statuses = pod["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
    let reason = statuses.iter().find_map(|c| {
        let state = &c["state"];
        state["waiting"]["reason"]
            .as_str()
            .or(state["terminated"]["reason"].as_str().filter(|_| pod["status"]["phase"] != "Succeeded"))
    });
    reason.or(pod["status"]["reason"].as_str()).or(pod["status"]["phase"].as_str()).unwrap_or("Pending").to_string()
}

/// Column names and the cells of one object, by kind.
fn columns(kind: &str, obj: &Value) -> (Vec<&'static str>, Vec<Value>) {
    let s = &obj["status"];
    let name = json!(obj["metadata"]["name"]);
    let age = json!(age(obj));
    match kind {
        "Pod" => {
            let statuses = s["containerStatuses"].as_array().cloned().unwrap_or_default();
            let ready = statuses.iter().filter(|c| c["ready"] == true).count();
            let total = obj["spec"]["containers"].as_array().map_or(0, Vec::len);
            let restarts: i64 = statuses.iter().map(|c| count(&c["restartCount"])).sum();
            (
                vec!["Name", "Ready", "Status", "Restarts", "Age"],
                vec![name, json!(format!("{ready}/{total}")), json!(pod_status(obj)), json!(restarts), age],
            )
        }
        "Deployment" => {
            let ready = format!("{}/{}", count(&s["readyReplicas"]), count(&obj["spec"]["replicas"]));
            (
                vec!["Name", "Ready", "Up-to-date", "Available", "Age"],
                vec![
                    name,
                    json!(ready),
                    json!(count(&s["updatedReplicas"])),
                    json!(count(&s["availableReplicas"])),
                    age,
                ],
            )
        }
        "ReplicaSet" => (
            vec!["Name", "Desired", "Current", "Ready", "Age"],
            vec![
                name,
                json!(count(&obj["spec"]["replicas"])),
                json!(count(&s["replicas"])),
                json!(count(&s["readyReplicas"])),
                age,
            ],
        ),
        "Service" => {
            let ports: Vec<String> = obj["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            (
                vec!["Name", "Type", "Cluster-IP", "Ports", "Age"],
                vec![name, obj["spec"]["type"].clone(), obj["spec"]["clusterIP"].clone(), json!(ports.join(",")), age],
            )
        }
        "Job" => {
            let done = s["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["status"] == "True" && (c["type"] == "Complete" || c["type"] == "Failed"));
            let status = done.and_then(|c| c["type"].as_str()).unwrap_or("Running");
            let completions = format!("{}/{}", count(&s["succeeded"]), count(&obj["spec"]["completions"]));
            (vec!["Name", "Status", "Completions", "Age"], vec![name, json!(status), json!(completions), age])
        }
        "Namespace" | "PersistentVolumeClaim" => (vec!["Name", "Status", "Age"], vec![name, s["phase"].clone(), age]),
        _ => (vec!["Name", "Age"], vec![name, age]),
    }
}

/// A Table of objects of one kind.
pub fn render(kind: &str, items: &[Value], resource_version: Option<&str>) -> Value {
    let names = columns(kind, &json!({})).0;
    let definitions: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "type": "string", "format": if *n == "Name" { "name" } else { "" }, "description": "", "priority": 0}))
        .collect();
    let rows: Vec<Value> = items.iter().map(|obj| json!({"cells": columns(kind, obj).1, "object": obj})).collect();
    let mut table = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": definitions, "rows": rows});
    if let Some(rv) = resource_version {
        table["metadata"]["resourceVersion"] = json!(rv);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_show_ready_and_status() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{}]},
            "status": {"phase": "Pending", "containerStatuses": [{"ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}});
        let table = render("Pod", &[pod], Some("7"));
        assert_eq!(table["rows"][0]["cells"][1], "0/1");
        assert_eq!(table["rows"][0]["cells"][2], "ImagePullBackOff");
        assert_eq!(table["columnDefinitions"].as_array().map(Vec::len), Some(5));
        assert!(wanted("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"));
        assert!(!wanted("application/json"));
    }
}
