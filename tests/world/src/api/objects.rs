//! The verbs on resource paths: get, list, create, update (PUT), patch, delete and
//! deletecollection, plus the `status`, `scale`, `log`, `token` and `finalize` subresources.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, Response};
use serde_json::{Value, json};

use super::body::{self, Body};
use super::route::ObjectPath;
use super::{logs, reviews, table, watch};
use crate::auth::UserInfo;
use crate::cluster::{Cluster, Part, Patch};
use crate::deletion::{DeleteOptions, Deleted, success_status};
use crate::error::{ApiError, ApiResult};
use crate::patch::PatchType;
use crate::schema::{self, FieldValidation};
use crate::selectors::{FieldSelector, LabelSelector};

/// A request on a resource path.
pub struct ObjectRequest {
    /// HTTP method.
    pub method: Method,
    /// The resolved path.
    pub path: ObjectPath,
    /// Query parameters.
    pub query: HashMap<String, String>,
    /// Content-Type of the body.
    pub content_type: String,
    /// Raw body.
    pub body: Bytes,
    /// The authenticated user.
    pub user: UserInfo,
    /// The client asked for a Table (server-side printing).
    pub table: bool,
}

impl ObjectRequest {
    fn namespace(&self) -> &str {
        self.path.namespace.as_deref().unwrap_or_default()
    }

    fn decoded(&self) -> ApiResult<Value> {
        body::decode(&self.content_type, &self.body)
    }

    fn dry_run(&self) -> bool {
        self.query.contains_key("dryRun")
    }

    /// The warnings for the object a write would store, or its refusal (`fieldValidation`).
    fn check_fields(&self, obj: &Value) -> ApiResult<Vec<String>> {
        let directive = FieldValidation::from_query(self.query.get("fieldValidation").map(String::as_str))?;
        schema::check_request(&self.path.rt, obj, directive)
    }

    fn flag(&self, key: &str) -> bool {
        self.query.get(key).is_some_and(|v| v == "1" || v == "true")
    }
}

/// Dispatches a resource request by method, name and subresource.
pub async fn dispatch(cluster: &Arc<Cluster>, req: ObjectRequest) -> ApiResult<Response<Body>> {
    let rt = req.path.rt.clone();
    if !rt.stored {
        if req.method != Method::POST {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({})",
                rt.plural
            )));
        }
        return Ok(body::json(201, &reviews::answer(cluster, &rt.kind, &req.decoded()?, &req.user)?));
    }
    if rt.namespaced && req.path.namespace.is_none() && (req.path.name.is_some() || req.method != Method::GET) {
        return Err(ApiError::no_route(&format!("{} without a namespace", rt.plural)));
    }
    let name = req.path.name.clone();
    let sub = req.path.subresource.clone();
    match (req.method.clone(), name.as_deref(), sub.as_deref()) {
        (Method::GET, None, _) if req.flag("watch") => watch::serve(cluster.clone(), &req),
        (Method::GET, None, _) => list(cluster, &req),
        (Method::GET, Some(name), Some("log")) => logs::serve(cluster.clone(), req.namespace(), name, &req.query),
        (Method::GET, Some(name), Some("scale")) => {
            Ok(body::json(200, &scale_of(&cluster.store.get(&rt, req.namespace(), name)?)))
        }
        (Method::GET, Some(name), _) => {
            let obj = cluster.store.get(&rt, req.namespace(), name)?;
            Ok(body::json(200, &if req.table { table::render(&rt.kind, &[obj], None) } else { obj }))
        }
        (Method::POST, None, None) => create(cluster, &req),
        (Method::POST, Some(name), Some("token")) => token(cluster, &req, name),
        (Method::PUT, Some(name), Some("scale")) | (Method::PATCH, Some(name), Some("scale")) => {
            scale(cluster, &req, name)
        }
        (Method::PUT, Some(name), sub) => {
            let incoming = req.decoded()?;
            let warnings = req.check_fields(&incoming)?;
            let obj = cluster.replace(&rt, req.namespace(), name, incoming, part(sub)?, req.dry_run())?;
            Ok(body::with_warnings(body::json(200, &obj), &warnings))
        }
        (Method::PATCH, Some(name), sub) => patch(cluster, &req, name, part(sub)?),
        (Method::DELETE, Some(name), None) => {
            let opts = DeleteOptions::from_request(&req.decoded()?, &req.query);
            match cluster.delete(&rt, req.namespace(), name, &opts)? {
                Deleted::Gone(obj) => Ok(body::json(200, &success_status(&rt, &obj))),
                Deleted::Pending(obj) => Ok(body::json(200, &obj)),
            }
        }
        (Method::DELETE, None, None) => {
            let opts = DeleteOptions::from_request(&req.decoded()?, &req.query);
            let (labels, fields) = selectors(&req.query)?;
            let items = cluster.delete_collection(&rt, req.path.namespace.as_deref(), &opts, |o| {
                labels.matches(o) && fields.matches(o)
            })?;
            Ok(body::json(200, &list_doc(&rt.kind, &rt.api_version(), cluster.store.current_rv(), items)))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            rt.plural
        ))),
    }
}

fn part(sub: Option<&str>) -> ApiResult<Part> {
    match sub {
        None | Some("finalize") => Ok(Part::Main),
        Some("status") => Ok(Part::Status),
        Some(other) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the subresource {other}"
        ))),
    }
}

/// Parses `labelSelector` and `fieldSelector`.
pub fn selectors(query: &HashMap<String, String>) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or_default())?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or_default())?;
    Ok((labels, fields))
}

fn list_doc(kind: &str, api_version: &str, rv: u64, items: Vec<Value>) -> Value {
    json!({"kind": format!("{kind}List"), "apiVersion": api_version, "metadata": {"resourceVersion": rv.to_string()}, "items": items})
}

fn list(cluster: &Cluster, req: &ObjectRequest) -> ApiResult<Response<Body>> {
    let rt = &req.path.rt;
    let (labels, fields) = selectors(&req.query)?;
    let (items, rv) = cluster.store.list(rt, req.path.namespace.as_deref());
    let items: Vec<Value> = items.into_iter().filter(|o| labels.matches(o) && fields.matches(o)).collect();
    if req.table {
        return Ok(body::json(200, &table::render(&rt.kind, &items, Some(&rv.to_string()))));
    }
    Ok(body::json(200, &list_doc(&rt.kind, &rt.api_version(), rv, items)))
}

fn create(cluster: &Cluster, req: &ObjectRequest) -> ApiResult<Response<Body>> {
    let rt = &req.path.rt;
    let obj = req.decoded()?;
    if !obj.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    if let Some(kind) = obj["kind"].as_str().filter(|k| *k != rt.kind) {
        return Err(ApiError::bad_request(format!("the kind {kind} does not match the resource {}", rt.plural)));
    }
    let warnings = req.check_fields(&obj)?;
    let created = cluster.create(rt, req.namespace(), obj, req.dry_run())?;
    Ok(body::with_warnings(body::json(201, &created), &warnings))
}

fn patch(cluster: &Cluster, req: &ObjectRequest, name: &str, part: Part) -> ApiResult<Response<Body>> {
    let rt = &req.path.rt;
    let kind = PatchType::from_content_type(&req.content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(&req.content_type))?;
    let manager = req.query.get("fieldManager").cloned().unwrap_or_default();
    if kind == PatchType::Apply && manager.is_empty() {
        return Err(ApiError::bad_request("PATCH with apply requires a fieldManager parameter"));
    }
    let current = cluster.store.get(rt, req.namespace(), name).ok();
    let patch = Patch { kind, body: req.decoded()?, manager };
    // What the patch would store is checked, as the server checks the patched object.
    let warnings = match &current {
        Some(current) => req.check_fields(&crate::cluster::patched(rt, current, &patch)?)?,
        None if kind == PatchType::Apply => req.check_fields(&patch.body)?,
        None => Vec::new(),
    };
    let obj = cluster.patch(rt, req.namespace(), name, &patch, part, req.dry_run())?;
    Ok(body::with_warnings(body::json(if current.is_some() { 200 } else { 201 }, &obj), &warnings))
}

fn scale_of(obj: &Value) -> Value {
    let labels: Vec<String> = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"], "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"]},
        "spec": {"replicas": obj["spec"]["replicas"]},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": labels.join(",")},
    })
}

fn scale(cluster: &Cluster, req: &ObjectRequest, name: &str) -> ApiResult<Response<Body>> {
    let rt = &req.path.rt;
    let replicas = req.decoded()?["spec"]["replicas"]
        .as_i64()
        .ok_or_else(|| ApiError::bad_request("spec.replicas is required"))?;
    let updated = cluster.store.update(rt, req.namespace(), name, None, |current| {
        let mut next = current.clone();
        next["spec"]["replicas"] = json!(replicas);
        Ok(next)
    })?;
    Ok(body::json(200, &scale_of(&updated)))
}

fn token(cluster: &Cluster, req: &ObjectRequest, name: &str) -> ApiResult<Response<Body>> {
    let rt = &req.path.rt;
    if rt.plural != "serviceaccounts" {
        return Err(ApiError::method_not_allowed("token requests are only served for serviceaccounts"));
    }
    cluster.store.get(rt, req.namespace(), name)?;
    let token = cluster.auth.mint_service_account_token(req.namespace(), name);
    let body = req.decoded()?;
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    Ok(body::json(
        201,
        &json!({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": req.namespace()},
            "spec": body["spec"],
            "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()},
        }),
    ))
}
