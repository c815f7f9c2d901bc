//! `/openapi/v3`: an index of group/versions and, per group/version, a document with one path
//! per kind whose `patch` operation carries `x-kubernetes-group-version-kind` and a
//! `fieldValidation` parameter. That is what helm and kubectl need to skip client-side
//! schema validation and send `fieldValidation=Strict` instead. No schemas are published, so
//! kubectl computes strategic merge patches from its built-in types.

use serde_json::{Map, Value, json};

use crate::resources::Registry;
use crate::version::ServerVersion;

fn doc_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// `/openapi/v3`.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let path = doc_path(&group, &version);
            let url = format!("/openapi/v3/{path}?hash=world{}", registry.in_group_version(&group, &version).len());
            paths.insert(path, json!({ "serverRelativeURL": url }));
        }
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`, if served.
pub fn document(registry: &Registry, server: ServerVersion, group: &str, version: &str) -> Option<Value> {
    let types = registry.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for t in types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let prefix = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
        let scope = if t.namespaced { "/namespaces/{namespace}" } else { "" };
        let parameters = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
        ]);
        let operation = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", t.kind),
                "parameters": parameters,
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK"}},
            })
        };
        paths.insert(
            format!("{prefix}{scope}/{}/{{name}}", t.plural),
            json!({"get": operation("get"), "put": operation("put"), "patch": operation("patch"), "delete": operation("delete")}),
        );
        paths.insert(
            format!("{prefix}{scope}/{}", t.plural),
            json!({"get": operation("list"), "post": operation("post")}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": server.git_version()},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_carry_gvk_and_field_validation() {
        let reg = Registry::builtin();
        assert!(index(&reg)["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string());
        let doc = document(&reg, ServerVersion::default(), "apps", "v1").expect("apps");
        let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(patch["parameters"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "fieldValidation")));
    }
}
