//! Core objects from protobuf: ObjectMeta, Secret, ConfigMap, Namespace, ServiceAccount,
//! DeleteOptions.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::{Map, Value, json};

/// Puts `value` under `key` unless it is empty.
pub fn put(out: &mut Value, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        out[key] = value;
    }
}

pub fn object_meta(m: Option<meta::ObjectMeta>) -> Value {
    let m = m.unwrap_or_default();
    let mut out = Value::Object(Map::new());
    put(&mut out, "name", json!(m.name));
    put(&mut out, "generateName", json!(m.generate_name));
    put(&mut out, "namespace", json!(m.namespace));
    put(&mut out, "uid", json!(m.uid));
    put(&mut out, "resourceVersion", json!(m.resource_version));
    put(&mut out, "labels", json!(m.labels));
    put(&mut out, "annotations", json!(m.annotations));
    put(&mut out, "finalizers", json!(m.finalizers));
    let refs: Vec<Value> = m
        .owner_references
        .into_iter()
        .map(|r| {
            json!({"apiVersion": r.api_version, "kind": r.kind, "name": r.name, "uid": r.uid,
                   "controller": r.controller, "blockOwnerDeletion": r.block_owner_deletion})
        })
        .collect();
    put(&mut out, "ownerReferences", Value::Array(refs));
    out
}

fn bytes_map(map: BTreeMap<String, Vec<u8>>) -> Value {
    Value::Object(map.into_iter().map(|(k, v)| (k, json!(STANDARD.encode(v)))).collect())
}

pub fn secret(s: core::Secret) -> Value {
    let mut out = json!({ "metadata": object_meta(s.metadata) });
    put(&mut out, "data", bytes_map(s.data));
    put(&mut out, "stringData", json!(s.string_data));
    put(&mut out, "type", json!(s.r#type));
    put(&mut out, "immutable", json!(s.immutable));
    out
}

pub fn config_map(c: core::ConfigMap) -> Value {
    let mut out = json!({ "metadata": object_meta(c.metadata) });
    put(&mut out, "data", json!(c.data));
    put(&mut out, "binaryData", bytes_map(c.binary_data));
    put(&mut out, "immutable", json!(c.immutable));
    out
}

pub fn namespace(n: core::Namespace) -> Value {
    let finalizers = n.spec.map(|s| s.finalizers).unwrap_or_default();
    json!({ "metadata": object_meta(n.metadata), "spec": { "finalizers": finalizers } })
}

pub fn service_account(s: core::ServiceAccount) -> Value {
    let mut out = json!({ "metadata": object_meta(s.metadata) });
    let pull: Vec<Value> = s.image_pull_secrets.into_iter().map(|r| json!({"name": r.name})).collect();
    put(&mut out, "imagePullSecrets", Value::Array(pull));
    let secrets: Vec<Value> =
        s.secrets.into_iter().map(|r| json!({"name": r.name, "namespace": r.namespace})).collect();
    put(&mut out, "secrets", Value::Array(secrets));
    put(&mut out, "automountServiceAccountToken", json!(s.automount_service_account_token));
    out
}

pub fn delete_options(d: meta::DeleteOptions) -> Value {
    let mut out = json!({});
    put(&mut out, "gracePeriodSeconds", json!(d.grace_period_seconds));
    put(&mut out, "propagationPolicy", json!(d.propagation_policy));
    put(&mut out, "orphanDependents", json!(d.orphan_dependents));
    put(&mut out, "dryRun", json!(d.dry_run));
    if let Some(p) = d.preconditions {
        out["preconditions"] = json!({"uid": p.uid, "resourceVersion": p.resource_version});
    }
    out
}
