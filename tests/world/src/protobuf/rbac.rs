//! Authorization objects from protobuf: SelfSubjectAccessReview, TokenRequest, and the RBAC
//! kinds `kubectl create role|clusterrole|rolebinding|clusterrolebinding` send.

use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::rbac::v1 as rbac;
use serde_json::{Value, json};

use super::objects::{object_meta, put};

pub fn access_review(r: authz::SelfSubjectAccessReview) -> Value {
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

pub fn token_request(t: authn::TokenRequest) -> Value {
    let spec = t.spec.unwrap_or_default();
    let mut out = json!({ "metadata": object_meta(t.metadata), "spec": {} });
    put(&mut out["spec"], "audiences", json!(spec.audiences));
    put(&mut out["spec"], "expirationSeconds", json!(spec.expiration_seconds));
    if let Some(b) = spec.bound_object_ref {
        out["spec"]["boundObjectRef"] =
            json!({"kind": b.kind, "apiVersion": b.api_version, "name": b.name, "uid": b.u_id});
    }
    out
}

fn rules(rules: Vec<rbac::PolicyRule>) -> Value {
    let rules: Vec<Value> = rules
        .into_iter()
        .map(|r| {
            let mut rule = json!({"verbs": r.verbs});
            put(&mut rule, "apiGroups", json!(r.api_groups));
            put(&mut rule, "resources", json!(r.resources));
            put(&mut rule, "resourceNames", json!(r.resource_names));
            put(&mut rule, "nonResourceURLs", json!(r.non_resource_ur_ls));
            rule
        })
        .collect();
    Value::Array(rules)
}

fn binding(metadata: Value, subjects: Vec<rbac::Subject>, role_ref: Option<rbac::RoleRef>) -> Value {
    let subjects: Vec<Value> = subjects
        .into_iter()
        .map(|s| {
            let mut subject = json!({"kind": s.kind, "name": s.name});
            put(&mut subject, "apiGroup", json!(s.api_group));
            put(&mut subject, "namespace", json!(s.namespace));
            subject
        })
        .collect();
    let role_ref = role_ref.unwrap_or_default();
    json!({"metadata": metadata, "subjects": subjects, "roleRef": {"apiGroup": role_ref.api_group, "kind": role_ref.kind, "name": role_ref.name}})
}

pub fn role(r: rbac::Role) -> Value {
    json!({"metadata": object_meta(r.metadata), "rules": rules(r.rules)})
}

pub fn cluster_role(r: rbac::ClusterRole) -> Value {
    json!({"metadata": object_meta(r.metadata), "rules": rules(r.rules)})
}

pub fn role_binding(b: rbac::RoleBinding) -> Value {
    binding(object_meta(b.metadata), b.subjects, b.role_ref)
}

pub fn cluster_role_binding(b: rbac::ClusterRoleBinding) -> Value {
    binding(object_meta(b.metadata), b.subjects, b.role_ref)
}
