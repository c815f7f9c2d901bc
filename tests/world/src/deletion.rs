//! DELETE semantics: preconditions, dry runs, graceful pod deletion (Terminating until the
//! kubelet stops the containers), finalizers, namespaces that empty themselves, and the
//! propagation policies (dependents are collected by the garbage collector controller).

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceType;
use crate::store::{ResourceId, now};

/// How dependents are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete the owner now; the garbage collector deletes dependents afterwards.
    #[default]
    Background,
    /// Delete dependents first, then the owner.
    Foreground,
    /// Keep dependents, removing their owner references.
    Orphan,
}

/// Parsed `DeleteOptions` (from the body and the query).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `propagationPolicy`.
    pub propagation: Propagation,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads options from a DeleteOptions body and the query parameters.
    pub fn from_request(body: &Value, query: &std::collections::HashMap<String, String>) -> Self {
        let grace_period = body["gracePeriodSeconds"]
            .as_i64()
            .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
        let policy =
            body["propagationPolicy"].as_str().map(str::to_string).or_else(|| query.get("propagationPolicy").cloned());
        let orphan = body["orphanDependents"].as_bool() == Some(true);
        let propagation = match policy.as_deref() {
            Some("Foreground") => Propagation::Foreground,
            Some("Orphan") => Propagation::Orphan,
            _ if orphan => Propagation::Orphan,
            _ => Propagation::Background,
        };
        let dry_run = body["dryRun"].as_array().is_some_and(|d| !d.is_empty()) || query.contains_key("dryRun");
        Self {
            grace_period,
            propagation,
            uid: body["preconditions"]["uid"].as_str().map(str::to_string),
            resource_version: body["preconditions"]["resourceVersion"].as_str().map(str::to_string),
            dry_run,
        }
    }
}

/// The outcome of a delete.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    /// The object is gone.
    Gone(Value),
    /// The object is terminating (graceful deletion or finalizers).
    Pending(Value),
}

impl Cluster {
    /// Deletes one object.
    pub fn delete(&self, rt: &ResourceType, ns: &str, name: &str, opts: &DeleteOptions) -> ApiResult<Deleted> {
        let obj = self.store.get(rt, ns, name)?;
        check_preconditions(rt, name, &obj, opts)?;
        if opts.dry_run {
            return Ok(Deleted::Gone(obj));
        }
        let is_pod = rt.group.is_empty() && rt.plural == "pods";
        let is_namespace = rt.group.is_empty() && rt.plural == "namespaces";
        let terminating = !obj["metadata"]["deletionTimestamp"].is_null();
        if terminating && !(is_pod && opts.grace_period == Some(0)) {
            return Ok(Deleted::Pending(obj));
        }
        if opts.propagation == Propagation::Orphan {
            self.orphan_dependents(&obj);
        }
        if opts.propagation == Propagation::Foreground {
            self.delete_dependents(&obj);
        }
        let has_finalizers = obj["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        let graceful_pod = is_pod && opts.grace_period != Some(0);
        if has_finalizers || graceful_pod || is_namespace {
            let grace = opts.grace_period.or(obj["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30);
            let marked = self.store.update(rt, ns, name, None, |current| {
                let mut next = current.clone();
                next["metadata"]["deletionTimestamp"] = json!(now());
                if is_pod {
                    next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                }
                if is_namespace {
                    next["status"]["phase"] = json!("Terminating");
                }
                Ok(next)
            })?;
            return Ok(Deleted::Pending(marked));
        }
        let gone = self.store.remove(rt, ns, name)?;
        if rt.crd.is_none() && rt.plural == "customresourcedefinitions" {
            self.remove_crd(&gone);
        }
        Ok(Deleted::Gone(gone))
    }

    /// Deletes every object of a resource in a namespace that matches a filter.
    pub fn delete_collection<F>(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        opts: &DeleteOptions,
        keep: F,
    ) -> ApiResult<Vec<Value>>
    where
        F: Fn(&Value) -> bool,
    {
        let (items, _) = self.store.list(rt, ns);
        let mut deleted = Vec::new();
        for item in items.into_iter().filter(|i| keep(i)) {
            let item_ns = item["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
            let name = item["metadata"]["name"].as_str().unwrap_or_default().to_string();
            match self.delete(rt, &item_ns, &name, opts) {
                Ok(Deleted::Gone(obj) | Deleted::Pending(obj)) => deleted.push(obj),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// Deletes (in the background) every object owned by `owner`.
    pub fn delete_dependents(&self, owner: &Value) {
        let Some(uid) = owner["metadata"]["uid"].as_str() else { return };
        for (id, ns, name) in self.store.dependents(uid) {
            if let Some(rt) = self.type_of(&id) {
                // A dependent that vanished meanwhile needs no deleting.
                let _ = self.delete(&rt, &ns, &name, &DeleteOptions::default());
            }
        }
    }

    /// Empties a terminating namespace and removes it.
    pub fn finish_namespace(&self, name: &str) {
        for (id, obj_name) in self.store.in_namespace(name) {
            if let Some(rt) = self.type_of(&id) {
                let _ = self.store.remove(&rt, name, &obj_name);
            }
        }
        if let Ok(rt) = self.resource("", "namespaces") {
            let _ = self.store.remove(&rt, "", name);
        }
    }

    fn orphan_dependents(&self, owner: &Value) {
        let Some(uid) = owner["metadata"]["uid"].as_str() else { return };
        for (id, ns, name) in self.store.dependents(uid) {
            let Some(rt) = self.type_of(&id) else { continue };
            let _ = self.store.update(&rt, &ns, &name, None, |current| {
                let mut next = current.clone();
                if let Some(refs) = next["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"].as_str() != Some(uid));
                }
                Ok(next)
            });
        }
    }

    fn remove_crd(&self, crd: &Value) {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        let group = crd["spec"]["group"].as_str().unwrap_or_default();
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
        if let Ok(rt) = self.resource(group, plural) {
            for item in self.store.list(&rt, None).0 {
                let ns = item["metadata"]["namespace"].as_str().unwrap_or_default();
                let _ = self.store.remove(&rt, ns, item["metadata"]["name"].as_str().unwrap_or_default());
            }
        }
        self.registry.unregister_crd(name);
    }

    /// The served type of a stored resource.
    pub fn type_of(&self, id: &ResourceId) -> Option<std::sync::Arc<ResourceType>> {
        self.resource(&id.group, &id.plural).ok()
    }
}

fn check_preconditions(rt: &ResourceType, name: &str, obj: &Value, opts: &DeleteOptions) -> ApiResult<()> {
    let meta = &obj["metadata"];
    if let Some(uid) = opts.uid.as_deref().filter(|u| !u.is_empty())
        && meta["uid"].as_str() != Some(uid)
    {
        let mut err = ApiError::conflict(rt.target(), name);
        err.message = format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            meta["uid"].as_str().unwrap_or_default()
        );
        return Err(err);
    }
    if let Some(rv) = opts.resource_version.as_deref().filter(|r| !r.is_empty())
        && meta["resourceVersion"].as_str() != Some(rv)
    {
        return Err(ApiError::conflict(rt.target(), name));
    }
    Ok(())
}

/// The Status body of a completed delete, like the real API's.
pub fn success_status(rt: &ResourceType, obj: &Value) -> Value {
    let mut details = json!({"name": obj["metadata"]["name"], "kind": rt.plural, "uid": obj["metadata"]["uid"]});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
