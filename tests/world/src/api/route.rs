//! Request paths: discovery and OpenAPI documents, and resource paths
//! (`/api/v1/namespaces/ns/pods/name/log`, `/apis/apps/v1/deployments`, ...).

use std::sync::Arc;

use crate::error::{ApiError, ApiResult};
use crate::resources::{Registry, ResourceType};

/// What a path addresses.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/version`
    Version,
    /// `/healthz`, `/readyz`, `/livez`
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`
    Resources(String, String),
    /// `/openapi/v2`
    OpenApiV2,
    /// `/openapi/v3`
    OpenApiV3,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`
    OpenApiV3Doc(String, String),
    /// A resource path.
    Object(ObjectPath),
}

/// A resource path, resolved against the registry.
#[derive(Debug, Clone)]
pub struct ObjectPath {
    /// The served resource.
    pub rt: Arc<ResourceType>,
    /// Namespace from the path (None for cluster-scoped or all-namespaces requests).
    pub namespace: Option<String>,
    /// Object name, if one object is addressed.
    pub name: Option<String>,
    /// Subresource (`status`, `log`, ...).
    pub subresource: Option<String>,
}

/// Resolves a request path.
pub fn parse(path: &str, registry: &Registry) -> ApiResult<Route> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || ApiError::no_route(path);
    match segments.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz" | "readyz" | "livez", ..] => Ok(Route::Health),
        ["api"] => Ok(Route::CoreVersions),
        ["apis"] => Ok(Route::Groups),
        ["apis", group] => Ok(Route::Group(group.to_string())),
        ["api", version] => Ok(Route::Resources(String::new(), version.to_string())),
        ["apis", group, version] => Ok(Route::Resources(group.to_string(), version.to_string())),
        ["openapi", "v2"] => Ok(Route::OpenApiV2),
        ["openapi", "v3"] => Ok(Route::OpenApiV3),
        ["openapi", "v3", "api", version] => Ok(Route::OpenApiV3Doc(String::new(), version.to_string())),
        ["openapi", "v3", "apis", group, version] => Ok(Route::OpenApiV3Doc(group.to_string(), version.to_string())),
        ["api", version, rest @ ..] => {
            object_path("", version, rest, registry).map(Route::Object).ok_or_else(not_found)
        }
        ["apis", group, version, rest @ ..] => {
            object_path(group, version, rest, registry).map(Route::Object).ok_or_else(not_found)
        }
        _ => Err(not_found()),
    }
}

fn object_path(group: &str, version: &str, rest: &[&str], registry: &Registry) -> Option<ObjectPath> {
    let find = |plural: &str| registry.find(group, version, plural);
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !(group.is_empty() && tail.is_empty() && is_namespace_sub(plural)) => {
            (Some(ns.to_string()), [&[*plural][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let rt = find(rest.first()?)?;
    if namespace.is_some() && !rt.namespaced {
        return None;
    }
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 || subresource.as_ref().is_some_and(|s| !rt.subresources.contains(s)) {
        return None;
    }
    Some(ObjectPath { rt, namespace, name, subresource })
}

fn is_namespace_sub(segment: &str) -> bool {
    segment == "status" || segment == "finalize"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(path: &str) -> ObjectPath {
        match parse(path, &Registry::builtin()) {
            Ok(Route::Object(o)) => o,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let log = object("/api/v1/namespaces/ns/pods/p/log");
        assert_eq!(
            (log.rt.plural.as_str(), log.namespace.as_deref(), log.name.as_deref(), log.subresource.as_deref()),
            ("pods", Some("ns"), Some("p"), Some("log"))
        );
        let ns = object("/api/v1/namespaces/ns");
        assert_eq!((ns.rt.plural.as_str(), ns.name.as_deref(), ns.namespace), ("namespaces", Some("ns"), None));
        let status = object("/api/v1/namespaces/ns/status");
        assert_eq!(status.subresource.as_deref(), Some("status"));
        let all = object("/apis/apps/v1/deployments");
        assert_eq!((all.namespace, all.name), (None, None));
        assert!(parse("/api/v1/namespaces/ns/nothings", &Registry::builtin()).is_err());
        assert!(parse("/api/v1/namespaces/ns/pods/p/nope", &Registry::builtin()).is_err());
    }
}
