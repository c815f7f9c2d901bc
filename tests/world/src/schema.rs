//! Objects checked against the real API types, as kube-apiserver decodes a request body:
//! a field of the wrong type is refused whatever the client asked; an unknown field is
//! refused with `fieldValidation=Strict`, reported in a `Warning` header with `Warn` (the
//! default when the request names none: apiserver handlers/rest.go `fieldValidation`) and
//! dropped silently with `Ignore`. Unknown fields are never stored.
//!
//! The types are k8s-openapi's for the version the world is built with (`v1_34`): decoding
//! into them and encoding back keeps exactly the known fields, so a key of the request
//! that does not come back is unknown. Custom resources are not checked here.

use k8s_openapi::api::{apps, batch, coordination, core, networking, policy, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceType;

/// What to do with unknown fields (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Refuse the request.
    Strict,
    /// Drop them and warn.
    #[default]
    Warn,
    /// Drop them.
    Ignore,
}

impl FieldValidation {
    /// The directive of a request's `fieldValidation` query parameter.
    pub fn from_query(value: Option<&str>) -> ApiResult<Self> {
        match value.unwrap_or_default() {
            "" | "Warn" => Ok(Self::Warn),
            "Strict" => Ok(Self::Strict),
            "Ignore" => Ok(Self::Ignore),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            ))),
        }
    }
}

/// The object, re-encoded from the typed value: what the API keeps of `obj`.
fn typed<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, serde_json::Error> {
    serde_json::to_value(serde_json::from_value::<T>(obj.clone())?)
}

/// `obj` through the real type of `api_version`/`kind`; None for kinds without one here.
fn through_type(api_version: &str, kind: &str, obj: &Value) -> Option<Result<Value, serde_json::Error>> {
    use core::v1 as c;
    Some(match (api_version, kind) {
        ("v1", "Namespace") => typed::<c::Namespace>(obj),
        ("v1", "Pod") => typed::<c::Pod>(obj),
        ("v1", "Secret") => typed::<c::Secret>(obj),
        ("v1", "ConfigMap") => typed::<c::ConfigMap>(obj),
        ("v1", "ServiceAccount") => typed::<c::ServiceAccount>(obj),
        ("v1", "Service") => typed::<c::Service>(obj),
        ("v1", "Endpoints") => typed::<c::Endpoints>(obj),
        ("v1", "Event") => typed::<c::Event>(obj),
        ("v1", "PersistentVolumeClaim") => typed::<c::PersistentVolumeClaim>(obj),
        ("v1", "Node") => typed::<c::Node>(obj),
        ("apps/v1", "Deployment") => typed::<apps::v1::Deployment>(obj),
        ("apps/v1", "StatefulSet") => typed::<apps::v1::StatefulSet>(obj),
        ("apps/v1", "DaemonSet") => typed::<apps::v1::DaemonSet>(obj),
        ("apps/v1", "ReplicaSet") => typed::<apps::v1::ReplicaSet>(obj),
        ("apps/v1", "ControllerRevision") => typed::<apps::v1::ControllerRevision>(obj),
        ("batch/v1", "Job") => typed::<batch::v1::Job>(obj),
        ("batch/v1", "CronJob") => typed::<batch::v1::CronJob>(obj),
        ("rbac.authorization.k8s.io/v1", "Role") => typed::<rbac::v1::Role>(obj),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => typed::<rbac::v1::RoleBinding>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => typed::<rbac::v1::ClusterRole>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => typed::<rbac::v1::ClusterRoleBinding>(obj),
        ("networking.k8s.io/v1", "Ingress") => typed::<networking::v1::Ingress>(obj),
        ("networking.k8s.io/v1", "NetworkPolicy") => typed::<networking::v1::NetworkPolicy>(obj),
        ("policy/v1", "PodDisruptionBudget") => typed::<policy::v1::PodDisruptionBudget>(obj),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => {
            typed::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>(obj)
        }
        ("coordination.k8s.io/v1", "Lease") => typed::<coordination::v1::Lease>(obj),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            typed::<apiextensions::v1::CustomResourceDefinition>(obj)
        }
        _ => return None,
    })
}

/// The paths of `given`'s fields that `kept` lacks, in the API server's notation
/// (`spec.containers[0].foo`). A `null` is no field.
fn unknown_paths(given: &Value, kept: &Value, path: &str, found: &mut Vec<String>) {
    match (given, kept) {
        (Value::Object(given), Value::Object(kept)) => {
            for (key, value) in given {
                let inner = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match kept.get(key) {
                    Some(kept) => unknown_paths(value, kept, &inner, found),
                    None if value.is_null() => {}
                    None => found.push(inner),
                }
            }
        }
        (Value::Array(given), Value::Array(kept)) => {
            for (i, (given, kept)) in given.iter().zip(kept).enumerate() {
                unknown_paths(given, kept, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Removes the field at `path` (as [`unknown_paths`] writes it) from `obj`.
fn remove_path(obj: &mut Value, path: &str) {
    let mut node = obj;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let (key, indices) = match segment.find('[') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        if segments.peek().is_none() && indices.is_empty() {
            if let Some(map) = node.as_object_mut() {
                map.remove(key);
            }
            return;
        }
        let Some(next) = node.get_mut(key) else { return };
        node = next;
        for index in indices.split(']').filter_map(|i| i.strip_prefix('[')?.parse::<usize>().ok()) {
            let Some(next) = node.get_mut(index) else { return };
            node = next;
        }
    }
}

/// The unknown fields of `obj` for its resource type, or the decoding error of a
/// mistyped field, worded as the API server words it.
pub fn unknown_fields(rt: &ResourceType, obj: &Value) -> ApiResult<Vec<String>> {
    let Some(result) = through_type(&rt.api_version(), &rt.kind, obj) else { return Ok(Vec::new()) };
    let kept = result.map_err(|e| cannot_handle(rt, &e.to_string()))?;
    let mut found = Vec::new();
    unknown_paths(obj, &kept, "", &mut found);
    Ok(found)
}

/// `obj` as the API stores it: a mistyped field is refused, unknown fields are dropped.
pub fn known_fields_only(rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    for path in unknown_fields(rt, obj)? {
        remove_path(obj, &path);
    }
    Ok(())
}

/// Checks a request's object under `directive`: the warnings to send back (one per
/// unknown field with `Warn`), or the Strict refusal.
pub fn check_request(rt: &ResourceType, obj: &Value, directive: FieldValidation) -> ApiResult<Vec<String>> {
    let unknown = unknown_fields(rt, obj)?;
    let messages = unknown.iter().map(|path| format!("unknown field \"{path}\""));
    match directive {
        FieldValidation::Strict if !unknown.is_empty() => {
            let list: Vec<String> = messages.collect();
            Err(cannot_handle(rt, &format!("strict decoding error: {}", list.join(", "))))
        }
        FieldValidation::Strict | FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(messages.collect()),
    }
}

/// 400 BadRequest `<Kind> in version "<v>" cannot be handled as a <Kind>: <why>`.
fn cannot_handle(rt: &ResourceType, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {why}",
        rt.kind, rt.version, rt.kind
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> ResourceType {
        crate::resources::Registry::builtin().find("", "v1", "pods").map(|t| (*t).clone()).unwrap()
    }

    #[test]
    fn unknown_fields_are_named_by_path_and_dropped() {
        let mut pod = json!({"metadata": {"name": "p", "labels": {"any": "label"}, "colour": "red"},
            "spec": {"containers": [{"name": "c", "image": "i", "stdinOnce": true}, {"name": "d", "imagee": "x"}],
                     "restartPolicy": "Never", "nodeSelector": {"disk": "ssd"}},
            "status": null});
        assert_eq!(unknown_fields(&pods(), &pod).unwrap(), ["metadata.colour", "spec.containers[1].imagee"]);
        known_fields_only(&pods(), &mut pod).unwrap();
        assert_eq!(pod["metadata"], json!({"name": "p", "labels": {"any": "label"}}));
        assert_eq!(pod["spec"]["containers"][1], json!({"name": "d"}));
        assert!(unknown_fields(&pods(), &pod).unwrap().is_empty());
    }

    #[test]
    fn strict_refuses_warn_warns_ignore_keeps_quiet() {
        let pod = json!({"spec": {"containers": [{"name": "c", "image": "i", "imagePullPolice": "Always"}]}});
        let strict = check_request(&pods(), &pod, FieldValidation::Strict).unwrap_err();
        assert_eq!(
            (strict.code, strict.message.as_str()),
            (
                400,
                "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \
                 \"spec.containers[0].imagePullPolice\""
            )
        );
        let warnings = check_request(&pods(), &pod, FieldValidation::Warn).unwrap();
        assert_eq!(warnings, ["unknown field \"spec.containers[0].imagePullPolice\""]);
        assert!(check_request(&pods(), &pod, FieldValidation::Ignore).unwrap().is_empty());
    }

    #[test]
    fn a_mistyped_field_is_refused_in_every_mode() {
        let pod = json!({"spec": {"containers": [{"name": "c", "image": 5}]}});
        for mode in [FieldValidation::Strict, FieldValidation::Warn, FieldValidation::Ignore] {
            let error = check_request(&pods(), &pod, mode).unwrap_err();
            assert_eq!(error.code, 400);
            assert!(
                error.message.starts_with("Pod in version \"v1\" cannot be handled as a Pod: "),
                "{}",
                error.message
            );
        }
        assert!(FieldValidation::from_query(Some("strict")).is_err(), "the directive is case-sensitive");
    }
}
