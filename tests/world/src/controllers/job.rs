//! Jobs: run pods until `completions` succeed (condition Complete) or more than
//! `backoffLimit` fail (condition Failed, reason BackoffLimitExceeded).

use serde_json::{Value, json};

use super::owned::{PodName, create_pod, delete_pod, is_ready, is_terminating, owned_by, pod_from_template};
use super::write_status;
use crate::cluster::Cluster;

pub fn reconcile_job(cluster: &Cluster, job: &Value) {
    if job["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"))
    {
        return;
    }
    let spec = &job["spec"];
    let completions = spec["completions"].as_i64().unwrap_or(1);
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1);
    let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
    let pods = owned_by(cluster, "", "pods", job);
    let phase_count = |phase: &str| pods.iter().filter(|p| p["status"]["phase"] == phase).count() as i64;
    let (succeeded, failed) = (phase_count("Succeeded"), phase_count("Failed"));
    let active: Vec<&Value> = pods
        .iter()
        .filter(|p| !is_terminating(p) && p["status"]["phase"] != "Succeeded" && p["status"]["phase"] != "Failed")
        .collect();
    let now = crate::store::now();
    let start = job["status"]["startTime"].as_str().map(str::to_string).unwrap_or_else(|| now.clone());
    let mut status = json!({
        "startTime": start, "active": active.len(), "succeeded": succeeded, "failed": failed,
        "ready": active.iter().filter(|p| is_ready(p)).count(), "terminating": 0, "uncountedTerminatedPods": {},
    });
    let condition = |kind: &str, reason: &str, message: &str| json!({"type": kind, "status": "True", "reason": reason, "message": message, "lastProbeTime": now, "lastTransitionTime": now});
    if succeeded >= completions {
        status["completionTime"] = json!(now);
        status["conditions"] = json!([
            condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
            condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
        ]);
    } else if failed > backoff_limit {
        for pod in &active {
            delete_pod(cluster, pod);
        }
        status["active"] = json!(0);
        status["conditions"] = json!([
            condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
            condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        ]);
    } else {
        let wanted = parallelism.min(completions - succeeded) - active.len() as i64;
        let uid = job["metadata"]["uid"].clone();
        let labels = json!({"controller-uid": uid, "batch.kubernetes.io/controller-uid": uid});
        let prefix = format!("{}-", job["metadata"]["name"].as_str().unwrap_or_default());
        for _ in 0..wanted.max(0) {
            create_pod(
                cluster,
                job,
                pod_from_template(job, &spec["template"], &labels, PodName::Prefix(prefix.clone())),
            );
        }
    }
    write_status(cluster, "batch", "jobs", job, status);
}
