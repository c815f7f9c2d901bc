//! What the workload controllers share: owner references, the pods an owner controls,
//! creating and deleting pods to reach a count, readiness, and template hashes.

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::deletion::DeleteOptions;

/// The (kind, name) of an object's controller, from its ownerReferences.
pub fn controller_of(obj: &Value) -> Option<(String, String)> {
    let owner = obj["metadata"]["ownerReferences"].as_array()?.iter().find(|r| r["controller"] == true)?;
    Some((owner["kind"].as_str()?.to_string(), owner["name"].as_str()?.to_string()))
}

/// A controller owner reference to `owner`.
pub fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    })
}

/// Objects of `group/plural` in the owner's namespace that it controls.
pub fn owned_by(cluster: &Cluster, group: &str, plural: &str, owner: &Value) -> Vec<Value> {
    let uid = &owner["metadata"]["uid"];
    let ns = owner["metadata"]["namespace"].as_str().unwrap_or_default();
    cluster
        .store
        .list_id(&crate::store::ResourceId::new(group, plural), Some(ns))
        .into_iter()
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == *uid && r["controller"] == true))
        })
        .collect()
}

/// Whether a pod is Ready.
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|l| l.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Whether a pod is being deleted.
pub fn is_terminating(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

/// A short stable hash of a JSON value (FNV-1a), spelled like the API's name suffixes.
pub fn hash_of(value: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf29ce484222325;
    for b in value.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (0..10).map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char).collect()
}

/// A pod for `owner` from its template, with extra labels and a name or name prefix.
pub fn pod_from_template(owner: &Value, template: &Value, labels: &Value, name: PodName) -> Value {
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    for (k, v) in labels.as_object().into_iter().flatten() {
        meta["labels"][k] = v.clone();
    }
    match name {
        PodName::Exact(n) => meta["name"] = json!(n),
        PodName::Prefix(p) => meta["generateName"] = json!(p),
    }
    meta["ownerReferences"] = json!([owner_ref(owner)]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]})
}

/// How a new pod is named.
pub enum PodName {
    /// A fixed name (StatefulSet ordinals).
    Exact(String),
    /// A `generateName` prefix.
    Prefix(String),
}

/// Creates a pod in the owner's namespace (a clash or a vanished namespace is retried on the next event).
pub fn create_pod(cluster: &Cluster, owner: &Value, pod: Value) {
    let ns = owner["metadata"]["namespace"].as_str().unwrap_or_default();
    if let Ok(pods) = cluster.resource("", "pods") {
        let _ = cluster.create(&pods, ns, pod, false);
    }
}

/// Deletes a pod gracefully.
pub fn delete_pod(cluster: &Cluster, pod: &Value) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    if let Ok(pods) = cluster.resource("", "pods") {
        let _ = cluster.delete(&pods, ns, name, &DeleteOptions::default());
    }
}

/// Brings the owner's live pods to `count` (creating from the template with `labels` under
/// the owner's name as prefix, or deleting the newest); returns the live pods.
pub fn scale_pods(cluster: &Cluster, owner: &Value, template: &Value, labels: &Value, count: usize) -> Vec<Value> {
    let mut pods: Vec<Value> =
        owned_by(cluster, "", "pods", owner).into_iter().filter(|p| !is_terminating(p)).collect();
    let prefix = format!("{}-", owner["metadata"]["name"].as_str().unwrap_or_default());
    for _ in pods.len()..count {
        create_pod(cluster, owner, pod_from_template(owner, template, labels, PodName::Prefix(prefix.clone())));
    }
    if pods.len() > count {
        pods.sort_by(|a, b| {
            a["metadata"]["creationTimestamp"].as_str().cmp(&b["metadata"]["creationTimestamp"].as_str())
        });
        for extra in pods.split_off(count) {
            delete_pod(cluster, &extra);
        }
    }
    pods
}

/// Replicas as an integer (default 1).
pub fn replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_distinct() {
        let a = hash_of(&json!({"a": 1}));
        assert_eq!(a, hash_of(&json!({"a": 1})));
        assert_ne!(a, hash_of(&json!({"a": 2})));
        assert_eq!(a.len(), 10);
    }

    #[test]
    fn finds_the_controller() {
        let pod = json!({"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": true}]}});
        assert_eq!(controller_of(&pod), Some(("ReplicaSet".into(), "rs".into())));
    }
}
