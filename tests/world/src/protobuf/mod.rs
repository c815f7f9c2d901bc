//! Decodes `application/vnd.kubernetes.protobuf` request bodies into JSON objects.
//!
//! The wire form is the magic `k8s\0` followed by a `runtime.Unknown` envelope whose `raw`
//! bytes are the typed message. Clients send this for the objects below (helm: release
//! Secrets/ConfigMaps and DeleteOptions; kubectl: SelfSubjectAccessReview and the objects of
//! `kubectl create namespace|secret|configmap|serviceaccount|token|role|rolebinding|...`);
//! answers stay JSON. Kinds with pod templates (`kubectl create deployment|job`) are not
//! decoded and get 415.

mod objects;
mod rbac;

use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::core::v1 as corev1;
use k8s_pb::api::rbac::v1 as rbacv1;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Value, json};

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
    let raw = raw.as_slice();
    let mut obj = match kind.as_str() {
        "Secret" => objects::secret(corev1::Secret::decode(raw).map_err(bad)?),
        "ConfigMap" => objects::config_map(corev1::ConfigMap::decode(raw).map_err(bad)?),
        "Namespace" => objects::namespace(corev1::Namespace::decode(raw).map_err(bad)?),
        "ServiceAccount" => objects::service_account(corev1::ServiceAccount::decode(raw).map_err(bad)?),
        "DeleteOptions" => objects::delete_options(meta::DeleteOptions::decode(raw).map_err(bad)?),
        "SelfSubjectAccessReview" => rbac::access_review(authz::SelfSubjectAccessReview::decode(raw).map_err(bad)?),
        "SelfSubjectRulesReview" => {
            let review = authz::SelfSubjectRulesReview::decode(raw).map_err(bad)?;
            let namespace = review.spec.and_then(|s| s.namespace).unwrap_or_default();
            json!({ "metadata": objects::object_meta(review.metadata), "spec": {"namespace": namespace} })
        }
        "SelfSubjectReview" => {
            json!({ "metadata": objects::object_meta(authn::SelfSubjectReview::decode(raw).map_err(bad)?.metadata) })
        }
        "TokenRequest" => rbac::token_request(authn::TokenRequest::decode(raw).map_err(bad)?),
        "Role" => rbac::role(rbacv1::Role::decode(raw).map_err(bad)?),
        "ClusterRole" => rbac::cluster_role(rbacv1::ClusterRole::decode(raw).map_err(bad)?),
        "RoleBinding" => rbac::role_binding(rbacv1::RoleBinding::decode(raw).map_err(bad)?),
        "ClusterRoleBinding" => rbac::cluster_role_binding(rbacv1::ClusterRoleBinding::decode(raw).map_err(bad)?),
        _ => return Err(ApiError::unsupported_media_type(&format!("application/vnd.kubernetes.protobuf ({kind})"))),
    };
    obj["kind"] = json!(kind);
    if !api_version.is_empty() {
        obj["apiVersion"] = json!(api_version);
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
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
        let secret = corev1::Secret {
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
        assert_eq!(obj["data"]["release"], base64::engine::general_purpose::STANDARD.encode("abc"));
        assert_eq!(obj["type"], "helm.sh/release.v1");
    }

    #[test]
    fn decodes_a_role_binding() {
        let binding = rbacv1::RoleBinding {
            metadata: Some(meta::ObjectMeta { name: Some("b".into()), ..Default::default() }),
            subjects: vec![rbacv1::Subject {
                kind: Some("ServiceAccount".into()),
                name: Some("sa".into()),
                namespace: Some("ns".into()),
                api_group: None,
            }],
            role_ref: Some(rbacv1::RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: Some("Role".into()),
                name: Some("r".into()),
            }),
        };
        let obj = decode(&envelope("RoleBinding", binding.encode_to_vec())).expect("decode");
        assert_eq!(obj["subjects"][0]["name"], "sa");
        assert_eq!(obj["roleRef"]["kind"], "Role");
    }

    #[test]
    fn rejects_unknown_kinds_and_garbage() {
        assert_eq!(decode(&envelope("Pod", vec![])).err().map(|e| e.code), Some(415));
        assert_eq!(decode(b"nope").err().map(|e| e.code), Some(400));
    }
}
