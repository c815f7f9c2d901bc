//! The HTTP face of the simulator: authenticates each request, resolves its path, authorizes
//! it, and hands it to discovery, OpenAPI, or the object handlers. Errors become Status bodies;
//! a bug that panics answers 500 instead of dropping the connection.

mod attach;
mod body;
mod discovery;
mod logs;
mod objects;
mod openapi;
mod reviews;
mod route;
mod table;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Response, header};

pub use body::Body;

use crate::auth::{Attributes, Decision, UserInfo, forbidden_message};
use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};
use route::{ObjectPath, Route};

/// Answers one request (never fails: errors become Status responses).
pub async fn handle(cluster: Arc<Cluster>, req: hyper::Request<Incoming>) -> Response<Body> {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let served = std::panic::AssertUnwindSafe(serve(&cluster, req));
    let response = match futures_util::FutureExt::catch_unwind(served).await {
        Ok(result) => result.unwrap_or_else(|e| body::error(&e)),
        Err(_) => body::error(&ApiError::internal("the simulator failed while serving this request")),
    };
    if std::env::var_os("AZP_KUBE_WORLD_LOG").is_some() {
        eprintln!("world: {method} {uri} -> {}", response.status().as_u16());
    }
    response
}

async fn serve(cluster: &Arc<Cluster>, req: hyper::Request<Incoming>) -> ApiResult<Response<Body>> {
    let header_value = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let user = cluster.auth.authenticate(header_value).ok_or_else(ApiError::unauthorized)?;
    if cluster.take_throttle() {
        return Err(ApiError::too_many_requests());
    }
    let planned = cluster.faults.plan(req.method().as_str(), req.uri().path());
    if !planned.delay.is_zero() {
        tokio::time::sleep(planned.delay).await;
    }
    if let Some(status) = planned.status {
        return Err(ApiError::injected(status));
    }
    let (parts, incoming) = req.into_parts();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let route = route::parse(parts.uri.path(), &cluster.registry)?;
    let registry = &cluster.registry;
    let found = |doc: Option<serde_json::Value>| {
        doc.map(|d| body::json(200, &d)).ok_or_else(|| ApiError::no_route(parts.uri.path()))
    };
    let path = match route {
        Route::Object(path) => path,
        other => {
            authorize_path(cluster, &user, parts.uri.path())?;
            return match other {
                Route::Version => Ok(body::json(200, &discovery::version(cluster.version))),
                Route::Health => Ok(body::text(200, "ok")),
                Route::CoreVersions => Ok(body::json(200, &discovery::core_versions())),
                Route::Groups => Ok(body::json(200, &discovery::groups(registry))),
                Route::Group(group) => found(discovery::group(registry, &group)),
                Route::Resources(group, version) => found(discovery::resources(registry, &group, &version)),
                Route::OpenApiV3 => Ok(body::json(200, &openapi::index(registry))),
                Route::OpenApiV3Doc(group, version) => {
                    found(openapi::document(registry, cluster.version, &group, &version))
                }
                Route::OpenApiV2 | Route::Object(_) => Err(ApiError::no_route(parts.uri.path())),
            };
        }
    };
    authorize_object(cluster, &user, &parts.method, &path, &query)?;
    if path.subresource.as_deref() == Some("attach")
        && let (Some(ns), Some(name)) = (path.namespace.clone(), path.name.clone())
    {
        let req = hyper::Request::from_parts(parts, incoming);
        return attach::serve(cluster.clone(), req, &ns, &name, &query).await;
    }
    let content_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = incoming
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("failed to read the request body: {e}")))?
        .to_bytes();
    let accept = parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let table = table::wanted(accept);
    let request = objects::ObjectRequest { method: parts.method, path, query, content_type, body: bytes, user, table };
    objects::dispatch(cluster, request).await
}

fn authorize_path(cluster: &Cluster, user: &UserInfo, path: &str) -> ApiResult<()> {
    let attrs = Attributes { verb: "get".into(), path: path.into(), ..Default::default() };
    match cluster.auth.authorize(user, &attrs) {
        Decision::Allow => Ok(()),
        Decision::Deny(_) => Err(ApiError::forbidden(
            format!("forbidden: User \"{}\" cannot get path \"{path}\"", user.username),
            None,
            "",
        )),
    }
}

/// The subresources a WebSocket upgrade connects to.
const CONNECT_SUBRESOURCES: &[&str] = &["attach", "exec", "portforward"];

/// The authorization attributes of a resource request. The verb comes from the HTTP method
/// (kube-apiserver's RequestInfoFactory): a WebSocket upgrade is a GET, so `get`.
fn attributes(method: &Method, path: &ObjectPath, query: &HashMap<String, String>) -> Attributes {
    let watching = query.get("watch").is_some_and(|w| w == "1" || w == "true");
    let verb = match (method.as_str(), path.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    };
    Attributes {
        verb: verb.into(),
        group: path.rt.group.clone(),
        resource: path.rt.plural.clone(),
        subresource: path.subresource.clone().unwrap_or_default(),
        namespace: path.namespace.clone().unwrap_or_default(),
        name: path.name.clone().unwrap_or_default(),
        path: String::new(),
    }
}

fn authorize_object(
    cluster: &Cluster,
    user: &UserInfo,
    method: &Method,
    path: &ObjectPath,
    query: &HashMap<String, String>,
) -> ApiResult<()> {
    let attrs = attributes(method, path, query);
    if let Decision::Deny(_) = cluster.auth.authorize(user, &attrs) {
        return Err(ApiError::forbidden(forbidden_message(user, &attrs), Some(path.rt.target()), &attrs.name));
    }
    // From 1.35 the pod's connect handler asks again for `create` and answers a refusal
    // with the authorizer's reason only (RBAC gives none), not the usual sentence.
    let connects = path.rt.group.is_empty()
        && path.rt.plural == "pods"
        && CONNECT_SUBRESOURCES.contains(&attrs.subresource.as_str());
    if connects && attrs.verb != "create" && cluster.version.websocket_upgrade_needs_create() {
        let create = Attributes { verb: "create".into(), ..attrs };
        if let Decision::Deny(reason) = cluster.auth.authorize(user, &create) {
            let message = format!("pods \"{}\" is forbidden: {reason}", create.name);
            return Err(ApiError::forbidden(message, Some(path.rt.target()), &create.name));
        }
    }
    Ok(())
}
