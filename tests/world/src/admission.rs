//! Admission: the defaults and validation the real API applies on create and update, for the
//! fields clients and controllers rely on (pod and template defaults, Service cluster IPs,
//! workload strategies, Secret `stringData`, CRD status). Pure functions over JSON.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceType;
use crate::selectors::LabelSelector;

/// Applies defaults to a new or replaced object and validates it; `old` is set on update.
pub fn admit(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    validate_shape(rt, obj)?;
    if old.is_none() {
        validate_name(rt, obj)?;
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => {
            validate_pod_spec(rt, obj, &obj["spec"], "spec")?;
            pod_spec_defaults(&mut obj["spec"]);
            if old.is_none() {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        ("", "namespaces") => namespace_defaults(obj),
        ("", "services") => service_defaults(obj, old),
        ("", "secrets") => secret_defaults(obj),
        ("", "persistentvolumeclaims") => {
            obj["status"] = json!({"phase": "Bound", "accessModes": obj["spec"]["accessModes"].clone()});
        }
        ("apps", "deployments") => {
            workload_template(rt, obj)?;
            default(&mut obj["spec"], "replicas", json!(1));
            default(&mut obj["spec"], "revisionHistoryLimit", json!(10));
            default(&mut obj["spec"], "progressDeadlineSeconds", json!(600));
            default(&mut obj["spec"], "strategy", json!({"type": "RollingUpdate"}));
            if obj["spec"]["strategy"]["type"] == "RollingUpdate" {
                default(&mut obj["spec"]["strategy"], "rollingUpdate", json!({}));
                default(&mut obj["spec"]["strategy"]["rollingUpdate"], "maxUnavailable", json!("25%"));
                default(&mut obj["spec"]["strategy"]["rollingUpdate"], "maxSurge", json!("25%"));
            }
        }
        ("apps", "replicasets") => {
            workload_template(rt, obj)?;
            default(&mut obj["spec"], "replicas", json!(1));
        }
        ("apps", "statefulsets") => {
            workload_template(rt, obj)?;
            default(&mut obj["spec"], "replicas", json!(1));
            default(&mut obj["spec"], "podManagementPolicy", json!("OrderedReady"));
            default(&mut obj["spec"], "revisionHistoryLimit", json!(10));
            default(
                &mut obj["spec"],
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
        }
        ("apps", "daemonsets") => {
            workload_template(rt, obj)?;
            default(&mut obj["spec"], "revisionHistoryLimit", json!(10));
            default(
                &mut obj["spec"],
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
        }
        ("batch", "jobs") => job_defaults(rt, obj)?,
        ("apiextensions.k8s.io", "customresourcedefinitions") => crd_defaults(rt, obj)?,
        _ => {}
    }
    Ok(())
}

fn default(target: &mut Value, key: &str, value: Value) {
    if !target.is_object() {
        *target = json!({});
    }
    if target[key].is_null() {
        target[key] = value;
    }
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().or(obj["metadata"]["generateName"].as_str()).unwrap_or_default()
}

fn invalid(rt: &ResourceType, obj: &Value, field: &str, message: &str) -> ApiError {
    ApiError::invalid(&rt.kind, &rt.group, name_of(obj), &[(field.to_string(), message.to_string())])
}

/// The JSON type a well-known field must have.
#[derive(Clone, Copy)]
enum Shape {
    Object,
    StringMap,
    Array,
}

/// Fields whose type every object must respect, so later steps never meet a surprise.
const SHAPES: &[(&str, Shape)] = &[
    ("metadata", Shape::Object),
    ("metadata.labels", Shape::StringMap),
    ("metadata.annotations", Shape::StringMap),
    ("metadata.finalizers", Shape::Array),
    ("metadata.ownerReferences", Shape::Array),
    ("spec", Shape::Object),
    ("status", Shape::Object),
    ("data", Shape::Object),
    ("stringData", Shape::StringMap),
    ("spec.selector", Shape::Object),
    ("spec.selector.matchLabels", Shape::StringMap),
    ("spec.template", Shape::Object),
    ("spec.template.metadata", Shape::Object),
    ("spec.template.metadata.labels", Shape::StringMap),
    ("spec.template.spec", Shape::Object),
    ("spec.containers", Shape::Array),
    ("spec.initContainers", Shape::Array),
    ("spec.template.spec.containers", Shape::Array),
    ("spec.template.spec.initContainers", Shape::Array),
    ("spec.ports", Shape::Array),
];

fn validate_shape(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    for (path, shape) in SHAPES {
        let value = path.split('.').fold(obj, |v, key| &v[key]);
        let fits = match shape {
            _ if value.is_null() => true,
            Shape::Object => value.is_object(),
            Shape::StringMap => value.as_object().is_some_and(|m| m.values().all(Value::is_string)),
            Shape::Array => value.as_array().is_some_and(|a| a.iter().all(|v| v.is_object() || v.is_string())),
        };
        if !fits {
            let what = match shape {
                Shape::Object => "an object",
                Shape::StringMap => "a map of strings",
                Shape::Array => "a list",
            };
            return Err(invalid(rt, obj, path, &format!("Invalid value: must be {what}")));
        }
    }
    Ok(())
}

fn validate_name(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let generate = obj["metadata"]["generateName"].as_str().unwrap_or_default();
    if name.is_empty() && generate.is_empty() {
        return Err(invalid(rt, obj, "metadata.name", "Required value: name or generateName is required"));
    }
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if !name.is_empty() && !valid(name) {
        let message = format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        );
        return Err(invalid(rt, obj, "metadata.name", &message));
    }
    Ok(())
}

fn validate_pod_spec(rt: &ResourceType, obj: &Value, spec: &Value, path: &str) -> ApiResult<()> {
    let containers = spec["containers"].as_array().filter(|c| !c.is_empty());
    let Some(containers) = containers else {
        return Err(invalid(rt, obj, &format!("{path}.containers"), "Required value"));
    };
    for (i, c) in containers.iter().enumerate() {
        if c["name"].as_str().is_none_or(str::is_empty) {
            return Err(invalid(rt, obj, &format!("{path}.containers[{i}].name"), "Required value"));
        }
        if c["image"].as_str().is_none_or(str::is_empty) {
            return Err(invalid(rt, obj, &format!("{path}.containers[{i}].image"), "Required value"));
        }
    }
    Ok(())
}

/// Defaults of a pod spec (also used inside workload templates).
fn pod_spec_defaults(spec: &mut Value) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    if spec["serviceAccountName"].is_null() {
        spec["serviceAccountName"] = spec["serviceAccount"].as_str().map_or(json!("default"), |s| json!(s));
    }
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array_mut().into_iter().flatten() {
            let image = c["image"].as_str().unwrap_or_default();
            let tag = image.rsplit('/').next().and_then(|last| last.split_once(':')).map(|(_, t)| t);
            let pull =
                if tag.is_none_or(|t| t == "latest") && !image.contains('@') { "Always" } else { "IfNotPresent" };
            default(c, "imagePullPolicy", json!(pull));
            default(c, "terminationMessagePath", json!("/dev/termination-log"));
            default(c, "terminationMessagePolicy", json!("File"));
            default(c, "resources", json!({}));
            for p in c["ports"].as_array_mut().into_iter().flatten() {
                default(p, "protocol", json!("TCP"));
            }
        }
    }
}

/// Validates and defaults the pod template and selector of a workload.
fn workload_template(rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    let snapshot = obj.clone();
    validate_pod_spec(rt, &snapshot, &snapshot["spec"]["template"]["spec"], "spec.template.spec")?;
    let selector = &snapshot["spec"]["selector"];
    if selector.is_null() {
        return Err(invalid(rt, &snapshot, "spec.selector", "Required value"));
    }
    if !LabelSelector::from_object(selector).matches(&snapshot["spec"]["template"]) {
        return Err(invalid(
            rt,
            &snapshot,
            "spec.template.metadata.labels",
            "Invalid value: `selector` does not match template `labels`",
        ));
    }
    pod_spec_defaults(&mut obj["spec"]["template"]["spec"]);
    Ok(())
}

fn job_defaults(rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    let snapshot = obj.clone();
    validate_pod_spec(rt, &snapshot, &snapshot["spec"]["template"]["spec"], "spec.template.spec")?;
    match snapshot["spec"]["template"]["spec"]["restartPolicy"].as_str() {
        Some("Never") | Some("OnFailure") => {}
        other => {
            let message = format!(
                "Unsupported value: \"{}\": supported values: \"OnFailure\", \"Never\"",
                other.unwrap_or("Always")
            );
            return Err(invalid(rt, &snapshot, "spec.template.spec.restartPolicy", &message));
        }
    }
    pod_spec_defaults(&mut obj["spec"]["template"]["spec"]);
    let spec = &mut obj["spec"];
    default(spec, "parallelism", json!(1));
    default(spec, "completions", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    let job_name = snapshot["metadata"]["name"].clone();
    default(&mut spec["template"], "metadata", json!({}));
    default(&mut spec["template"]["metadata"], "labels", json!({}));
    default(&mut spec["template"]["metadata"]["labels"], "job-name", job_name.clone());
    default(&mut spec["template"]["metadata"]["labels"], "batch.kubernetes.io/job-name", job_name);
    Ok(())
}

fn namespace_defaults(obj: &mut Value) {
    let name = obj["metadata"]["name"].clone();
    default(&mut obj["metadata"], "labels", json!({}));
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    default(obj, "spec", json!({}));
    default(&mut obj["spec"], "finalizers", json!(["kubernetes"]));
    if obj["metadata"]["deletionTimestamp"].is_null() {
        obj["status"] = json!({"phase": "Active"});
    }
}

fn service_defaults(obj: &mut Value, old: Option<&Value>) {
    let spec = &mut obj["spec"];
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    default(spec, "ipFamilies", json!(["IPv4"]));
    default(spec, "ipFamilyPolicy", json!("SingleStack"));
    default(spec, "internalTrafficPolicy", json!("Cluster"));
    for p in spec["ports"].as_array_mut().into_iter().flatten() {
        default(p, "protocol", json!("TCP"));
        let port = p["port"].clone();
        default(p, "targetPort", port);
    }
    if spec["type"] != "ExternalName" && spec["clusterIP"].as_str().is_none_or(str::is_empty) {
        let kept = old.and_then(|o| o["spec"]["clusterIP"].as_str()).map(str::to_string);
        let ip =
            kept.unwrap_or_else(|| format!("10.96.{}.{}", rand::random_range(0..=255), rand::random_range(1..=254)));
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
    }
    if spec["type"] == "LoadBalancer" {
        obj["status"] = json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}});
    } else {
        default(obj, "status", json!({"loadBalancer": {}}));
    }
}

fn secret_defaults(obj: &mut Value) {
    default(obj, "type", json!("Opaque"));
    if let Some(Value::Object(string_data)) = obj.as_object_mut().and_then(|o| o.remove("stringData")) {
        default(obj, "data", json!({}));
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or_default();
            obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
}

fn crd_defaults(rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    let snapshot = obj.clone();
    let spec = &snapshot["spec"];
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let group = spec["group"].as_str().unwrap_or_default();
    if plural.is_empty() || group.is_empty() || spec["names"]["kind"].as_str().is_none() {
        return Err(invalid(rt, &snapshot, "spec.names", "Required value"));
    }
    let expected = format!("{plural}.{group}");
    if snapshot["metadata"]["name"].as_str() != Some(expected.as_str()) {
        return Err(invalid(
            rt,
            &snapshot,
            "metadata.name",
            &format!("Invalid value: must be spec.names.plural+\".\"+spec.group ({expected})"),
        ));
    }
    let mut names = spec["names"].clone();
    default(&mut names, "singular", json!(spec["names"]["kind"].as_str().unwrap_or_default().to_lowercase()));
    default(&mut names, "listKind", json!(format!("{}List", spec["names"]["kind"].as_str().unwrap_or_default())));
    let now = crate::store::now();
    let versions: Vec<Value> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == true)
        .map(|v| v["name"].clone())
        .collect();
    obj["status"] = json!({
        "acceptedNames": names,
        "storedVersions": versions,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn rt(group: &str, plural: &str) -> std::sync::Arc<ResourceType> {
        Registry::builtin().find(group, "v1", plural).expect("resource")
    }

    #[test]
    fn pod_defaults_and_validation() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        admit(&rt("", "pods"), &mut pod, None).expect("admit");
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["status"]["phase"], "Pending");
        let mut bad = json!({"metadata": {"name": "p"}, "spec": {}});
        let err = admit(&rt("", "pods"), &mut bad, None).expect_err("no containers");
        assert_eq!(err.message, "Pod \"p\" is invalid: spec.containers: Required value");
    }

    #[test]
    fn malformed_objects_are_refused_not_panicked_on() {
        for body in [
            json!("x"),
            json!({"metadata": "x"}),
            json!({"metadata": {"name": "a", "labels": {"a": 1}}}),
            json!({"metadata": {"name": "a"}, "spec": {"containers": "x"}}),
        ] {
            let mut obj = body.clone();
            assert!(admit(&rt("", "pods"), &mut obj, None).is_err(), "{body}");
        }
    }

    #[test]
    fn deployment_selector_must_match() {
        let mut dep = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
        assert_eq!(admit(&rt("apps", "deployments"), &mut dep, None).err().map(|e| e.code), Some(422));
    }

    #[test]
    fn service_gets_cluster_ip_and_secret_string_data() {
        let mut svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
        admit(&rt("", "services"), &mut svc, None).expect("admit");
        assert!(svc["spec"]["clusterIP"].as_str().is_some_and(|ip| ip.starts_with("10.96.")));
        let mut secret = json!({"metadata": {"name": "s"}, "stringData": {"a": "b"}});
        admit(&rt("", "secrets"), &mut secret, None).expect("admit");
        assert_eq!(secret["data"]["a"], "Yg==");
        assert_eq!(secret["type"], "Opaque");
    }
}
