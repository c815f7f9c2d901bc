//! Decodes `application/vnd.kubernetes.protobuf` request bodies into JSON objects.
//!
//! The wire form is the magic `k8s\0` followed by a `runtime.Unknown` envelope whose `raw`
//! bytes are the typed message. Clients send this for the objects below (helm: release
//! Secrets/ConfigMaps and DeleteOptions; kubectl: SelfSubjectAccessReview); answers stay JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf body into the JSON form of the object it carries.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let envelope =
        body.strip_prefix(MAGIC).ok_or_else(|| ApiError::bad_request("protobuf body lacks the k8s magic prefix"))?;
    let unknown =
        Unknown::decode(envelope).map_err(|e| ApiError::bad_request(format!("invalid protobuf envelope: {e}")))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let bad = |e: prost::DecodeError| ApiError::bad_request(format!("invalid protobuf {kind}: {e}"));
    let mut obj = match kind.as_str() {
        "Secret" => secret(core::Secret::decode(raw.as_slice()).map_err(bad)?),
        "ConfigMap" => config_map(core::ConfigMap::decode(raw.as_slice()).map_err(bad)?),
        "Namespace" => namespace(core::Namespace::decode(raw.as_slice()).map_err(bad)?),
        "DeleteOptions" => delete_options(meta::DeleteOptions::decode(raw.as_slice()).map_err(bad)?),
        "SelfSubjectAccessReview" => {
            access_review(authz::SelfSubjectAccessReview::decode(raw.as_slice()).map_err(bad)?)
        }
        _ => return Err(ApiError::unsupported_media_type(&format!("application/vnd.kubernetes.protobuf ({kind})"))),
    };
    obj["kind"] = json!(kind);
    if !api_version.is_empty() {
        obj["apiVersion"] = json!(api_version);
    }
    Ok(obj)
}

fn object_meta(m: Option<meta::ObjectMeta>) -> Value {
    let m = m.unwrap_or_default();
    let mut out = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.insert(k.into(), json!(v));
        }
    };
    put("name", m.name);
    put("generateName", m.generate_name);
    put("namespace", m.namespace);
    put("uid", m.uid);
    put("resourceVersion", m.resource_version);
    if !m.labels.is_empty() {
        out.insert("labels".into(), json!(m.labels));
    }
    if !m.annotations.is_empty() {
        out.insert("annotations".into(), json!(m.annotations));
    }
    if !m.finalizers.is_empty() {
        out.insert("finalizers".into(), json!(m.finalizers));
    }
    if !m.owner_references.is_empty() {
        let refs: Vec<Value> = m
            .owner_references
            .into_iter()
            .map(|r| {
                json!({"apiVersion": r.api_version, "kind": r.kind, "name": r.name, "uid": r.uid,
                       "controller": r.controller, "blockOwnerDeletion": r.block_owner_deletion})
            })
            .collect();
        out.insert("ownerReferences".into(), Value::Array(refs));
    }
    Value::Object(out)
}

fn bytes_map(map: std::collections::BTreeMap<String, Vec<u8>>) -> Value {
    Value::Object(map.into_iter().map(|(k, v)| (k, json!(STANDARD.encode(v)))).collect())
}

fn secret(s: core::Secret) -> Value {
    let mut out = json!({ "metadata": object_meta(s.metadata) });
    if !s.data.is_empty() {
        out["data"] = bytes_map(s.data);
    }
    if !s.string_data.is_empty() {
        out["stringData"] = json!(s.string_data);
    }
    if let Some(t) = s.r#type {
        out["type"] = json!(t);
    }
    if let Some(i) = s.immutable {
        out["immutable"] = json!(i);
    }
    out
}

fn config_map(c: core::ConfigMap) -> Value {
    let mut out = json!({ "metadata": object_meta(c.metadata) });
    if !c.data.is_empty() {
        out["data"] = json!(c.data);
    }
    if !c.binary_data.is_empty() {
        out["binaryData"] = bytes_map(c.binary_data);
    }
    if let Some(i) = c.immutable {
        out["immutable"] = json!(i);
    }
    out
}

fn namespace(n: core::Namespace) -> Value {
    let finalizers = n.spec.map(|s| s.finalizers).unwrap_or_default();
    json!({ "metadata": object_meta(n.metadata), "spec": { "finalizers": finalizers } })
}

fn delete_options(d: meta::DeleteOptions) -> Value {
    let mut out = json!({});
    if let Some(g) = d.grace_period_seconds {
        out["gracePeriodSeconds"] = json!(g);
    }
    if let Some(p) = d.propagation_policy {
        out["propagationPolicy"] = json!(p);
    }
    if let Some(o) = d.orphan_dependents {
        out["orphanDependents"] = json!(o);
    }
    if !d.dry_run.is_empty() {
        out["dryRun"] = json!(d.dry_run);
    }
    if let Some(p) = d.preconditions {
        out["preconditions"] = json!({"uid": p.uid, "resourceVersion": p.resource_version});
    }
    out
}

fn access_review(r: authz::SelfSubjectAccessReview) -> Value {
    let spec = r.spec.unwrap_or_default();
    let mut out = json!({ "metadata": object_meta(r.metadata), "spec": {} });
    if let Some(a) = spec.resource_attributes {
        out["spec"]["resourceAttributes"] = json!({
            "namespace": a.namespace.unwrap_or_default(), "verb": a.verb.unwrap_or_default(),
            "group": a.group.unwrap_or_default(), "version": a.version.unwrap_or_default(),
            "resource": a.resource.unwrap_or_default(), "subresource": a.subresource.unwrap_or_default(),
            "name": a.name.unwrap_or_default(),
        });
    }
    if let Some(a) = spec.non_resource_attributes {
        out["spec"]["nonResourceAttributes"] =
            json!({"path": a.path.unwrap_or_default(), "verb": a.verb.unwrap_or_default()});
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    fn envelope(kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: Some("v1".into()), kind: Some(kind.into()) }),
            raw: Some(raw),
            content_encoding: None,
            content_type: None,
        };
        [MAGIC.to_vec(), unknown.encode_to_vec()].concat()
    }

    #[test]
    fn decodes_a_helm_release_secret() {
        let secret = core::Secret {
            metadata: Some(meta::ObjectMeta {
                name: Some("sh.helm.release.v1.web.v1".into()),
                labels: [("owner".to_string(), "helm".to_string())].into(),
                ..Default::default()
            }),
            data: [("release".to_string(), b"abc".to_vec())].into(),
            r#type: Some("helm.sh/release.v1".into()),
            ..Default::default()
        };
        let obj = decode(&envelope("Secret", secret.encode_to_vec())).expect("decode");
        assert_eq!(obj["metadata"]["name"], "sh.helm.release.v1.web.v1");
        assert_eq!(obj["data"]["release"], STANDARD.encode("abc"));
        assert_eq!(obj["type"], "helm.sh/release.v1");
    }

    #[test]
    fn rejects_unknown_kinds_and_garbage() {
        assert_eq!(decode(&envelope("Pod", vec![])).err().map(|e| e.code), Some(415));
        assert_eq!(decode(b"nope").err().map(|e| e.code), Some(400));
    }
}
