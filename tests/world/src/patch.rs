//! PATCH semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch
//! for built-in types (lists merged by their merge keys, `$patch` directives), and server-side
//! apply (fields a manager applied before and no longer applies are removed; its field set is
//! recorded in `metadata.managedFields`).

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

/// The PATCH body types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml`
    Apply,
}

impl PatchType {
    /// The patch type for a Content-Type, if it is one.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let mime = content_type.split(';').next().unwrap_or_default().trim();
        match mime {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies a JSON patch document (a list of operations).
pub fn json_patch(target: &Value, ops: &Value) -> ApiResult<Value> {
    let patch: json_patch::Patch =
        serde_json::from_value(ops.clone()).map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &patch).map_err(|e| ApiError::invalid_patch(&e.to_string()))?;
    Ok(out)
}

/// Applies a JSON merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// The merge key of a list field in built-in types, decided by field name and element shape.
fn merge_key(field: &str, element: &Value) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" | "imagePullSecrets" => {
            Some("name")
        }
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ports" if element.get("containerPort").is_some() => Some("containerPort"),
        "ports" => Some("port"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        _ => None,
    }
}

fn is_primitive_set(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch for built-in types.
pub fn strategic_merge(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    merge_into(&mut out, patch);
    out
}

fn merge_into(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch_map.clone();
        replaced.remove("$patch");
        *target = Value::Object(replaced);
        return;
    }
    if !target.is_object() {
        *target = json!({});
    }
    let Some(target_map) = target.as_object_mut() else { return };
    for (key, value) in patch_map {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let drop: Vec<&Value> = value.as_array().map(|a| a.iter().collect()).unwrap_or_default();
            if let Some(list) = target_map.get_mut(field).and_then(Value::as_array_mut) {
                list.retain(|v| !drop.contains(&v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Object(_) => merge_into(target_map.entry(key.clone()).or_insert(Value::Null), value),
            Value::Array(items) => {
                let current = target_map.remove(key).unwrap_or(Value::Null);
                target_map.insert(key.clone(), merge_list(key, current, items));
            }
            _ => {
                target_map.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_list(field: &str, current: Value, patch: &[Value]) -> Value {
    let mut list = match current {
        Value::Array(list) => list,
        _ => Vec::new(),
    };
    if is_primitive_set(field) {
        for item in patch {
            if !list.contains(item) {
                list.push(item.clone());
            }
        }
        return Value::Array(list);
    }
    let Some(key) = patch.first().and_then(|first| merge_key(field, first)) else {
        return Value::Array(patch.iter().filter(|v| v.get("$patch").is_none()).cloned().collect());
    };
    if patch.iter().any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace")) {
        return Value::Array(patch.iter().filter(|v| v.get("$patch").is_none()).cloned().collect());
    }
    for item in patch {
        let position =
            list.iter().position(|existing| existing.get(key).is_some() && existing.get(key) == item.get(key));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (Some(i), false) => merge_into(&mut list[i], item),
            (None, true) => {}
            (None, false) => {
                let mut fresh = Value::Null;
                merge_into(&mut fresh, item);
                list.push(fresh);
            }
        }
    }
    Value::Array(list)
}

/// Server-side apply of `config` by `manager` onto `live` (None when the object is new).
/// Returns the object to store, with the manager's field set in `managedFields`.
pub fn server_side_apply(live: Option<&Value>, config: &Value, manager: &str, api_version: &str) -> Value {
    let mut config = config.clone();
    if let Some(meta) = config["metadata"].as_object_mut() {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    let fields = field_set(&config, "");
    let mut result = match live {
        None => config.clone(),
        Some(live) => {
            let mut result = live.clone();
            if let Some(previous) = previous_fields(live, manager) {
                remove_unapplied(&mut result, &previous, &fields);
            }
            merge_into(&mut result, &config);
            result
        }
    };
    let mut entries: Vec<Value> = live
        .and_then(|l| l["metadata"]["managedFields"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !(e["manager"] == manager && e["operation"] == "Apply"))
        .collect();
    entries.push(json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": crate::store::now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }));
    crate::store::meta_mut(&mut result).insert("managedFields".into(), Value::Array(entries));
    result
}

fn previous_fields(live: &Value, manager: &str) -> Option<Value> {
    live["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == "Apply")
        .map(|e| e["fieldsV1"].clone())
}

/// The FieldsV1 set of a configuration: `f:<field>` for map keys, `k:<key json>` for elements
/// of keyed lists; other lists are atomic.
fn field_set(value: &Value, field: &str) -> Value {
    match value {
        Value::Object(map) => {
            let mut set = Map::new();
            for (k, v) in map {
                if field.is_empty() && (k == "apiVersion" || k == "kind") {
                    continue;
                }
                set.insert(format!("f:{k}"), field_set(v, k));
            }
            Value::Object(set)
        }
        Value::Array(items) => {
            let mut set = Map::new();
            for item in items {
                if let Some(key) = merge_key(field, item) {
                    let id = json!({ key: item[key] }).to_string();
                    set.insert(format!("k:{id}"), field_set(item, ""));
                }
            }
            Value::Object(set)
        }
        _ => json!({}),
    }
}

/// Removes from `target` what `previous` owned and `current` no longer mentions.
fn remove_unapplied(target: &mut Value, previous: &Value, current: &Value) {
    let Some(previous) = previous.as_object() else { return };
    for (path, children) in previous {
        let still = current.get(path);
        if let Some(field) = path.strip_prefix("f:") {
            if field == "name" || field == "namespace" {
                continue;
            }
            let Some(map) = target.as_object_mut() else { continue };
            match still {
                None => {
                    map.remove(field);
                }
                Some(next) => {
                    if let Some(child) = map.get_mut(field) {
                        remove_unapplied(child, children, next);
                    }
                }
            }
        } else if let Some(key_json) = path.strip_prefix("k:") {
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(key_json) else { continue };
            let Some(list) = target.as_array_mut() else { continue };
            let matches = |item: &Value| key.iter().all(|(k, v)| item.get(k) == Some(v));
            match still {
                None => list.retain(|item| !matches(item)),
                Some(next) => {
                    if let Some(item) = list.iter_mut().find(|i| matches(i)) {
                        remove_unapplied(item, children, next);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategic_merges_containers_by_name() {
        let live = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "spec": {"containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}]}});
        let out = strategic_merge(&live, &patch);
        assert_eq!(out["spec"]["containers"], json!([{"name": "b", "image": "z"}]));
    }

    #[test]
    fn strategic_null_deletes_and_plain_lists_replace() {
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "args": ["x"]});
        let out = strategic_merge(&live, &json!({"metadata": {"labels": {"a": null}}, "args": ["y"]}));
        assert_eq!(out, json!({"metadata": {"labels": {"b": "2"}}, "args": ["y"]}));
    }

    #[test]
    fn apply_removes_fields_no_longer_applied() {
        let first =
            server_side_apply(None, &json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}), "helm", "v1");
        let second =
            server_side_apply(Some(&first), &json!({"metadata": {"name": "c"}, "data": {"a": "3"}}), "helm", "v1");
        assert_eq!(second["data"], json!({"a": "3"}));
        assert_eq!(second["metadata"]["managedFields"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn json_and_merge_patches() {
        let obj = json!({"a": {"b": 1}});
        assert_eq!(merge_patch(&obj, &json!({"a": {"b": null, "c": 2}})), json!({"a": {"c": 2}}));
        let out = json_patch(&obj, &json!([{"op": "replace", "path": "/a/b", "value": 5}])).expect("patch");
        assert_eq!(out, json!({"a": {"b": 5}}));
        assert_eq!(json_patch(&obj, &json!([{"op": "remove", "path": "/x"}])).err().map(|e| e.code), Some(422));
    }
}
