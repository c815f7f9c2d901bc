//! Discovery documents in the legacy form (`/version`, `/api`, `/api/v1`, `/apis`,
//! `/apis/<group>[/<version>]`). Aggregated-discovery requests get the same plain JSON,
//! which makes clients fall back to the legacy form.

use serde_json::{Value, json};

use crate::resources::Registry;
use crate::version::ServerVersion;

/// Resources in kubectl's `all` category.
const IN_ALL: &[&str] =
    &["pods", "services", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs"];

/// `/version`.
pub fn version(version: ServerVersion) -> Value {
    json!({
        "major": "1", "minor": version.minor.to_string(), "gitVersion": version.git_version(),
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-08-27T00:00:00Z", "goVersion": "go1.24.6", "compiler": "gc", "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis`.
pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> =
        registry.groups().iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| group_doc(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, if the group is served.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let (group, versions) = registry.groups().into_iter().find(|(g, _)| g == name && !g.is_empty())?;
    let mut doc = group_doc(&group, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// `/api/v1` or `/apis/<group>/<version>`, if served.
pub fn resources(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = registry.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for t in &types {
        let mut entry = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind, "verbs": t.verbs(),
        });
        if !t.short_names.is_empty() {
            entry["shortNames"] = json!(t.short_names);
        }
        if t.crd.is_some() || IN_ALL.contains(&t.plural.as_str()) {
            entry["categories"] = json!(["all"]);
        }
        list.push(entry);
        for sub in &t.subresources {
            let (kind, verbs) = match sub.as_str() {
                "log" | "attach" | "exec" | "binding" | "token" => (t.kind.as_str(), vec!["get", "create"]),
                "scale" => ("Scale", vec!["get", "patch", "update"]),
                _ => (t.kind.as_str(), vec!["get", "patch", "update"]),
            };
            list.push(json!({"name": format!("{}/{}", t.plural, sub), "singularName": "", "namespaced": t.namespaced, "kind": kind, "verbs": verbs}));
        }
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_groups_and_resources() {
        let reg = Registry::builtin();
        let doc = groups(&reg);
        assert!(doc["groups"].as_array().is_some_and(|g| g.iter().any(|g| g["name"] == "apps")));
        let core = resources(&reg, "", "v1").expect("core");
        assert!(core["resources"].as_array().is_some_and(|r| r.iter().any(|r| r["name"] == "pods/log")));
        assert!(resources(&reg, "nope", "v1").is_none());
    }
}
