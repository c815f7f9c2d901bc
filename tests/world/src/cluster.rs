//! The simulated cluster's state and its write operations: create, replace and patch run
//! admission, keep `status` apart from the main resource, honour dry runs and register
//! CustomResourceDefinitions. HTTP handlers and controllers both go through here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::admission;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::patch::{self, PatchType};
use crate::pods::{Behaviours, LogStore};
use crate::resources::{Registry, ResourceType};
use crate::store::Store;

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but `status` (for resources with a status subresource).
    Main,
    /// The `status` subresource.
    Status,
}

/// A PATCH request.
#[derive(Debug, Clone)]
pub struct Patch {
    /// The patch type (from Content-Type).
    pub kind: PatchType,
    /// The decoded patch body.
    pub body: Value,
    /// `fieldManager` (server-side apply).
    pub manager: String,
}

/// The simulated cluster.
pub struct Cluster {
    /// Served resources.
    pub registry: Registry,
    /// Stored objects.
    pub store: Store,
    /// Tokens and authorization.
    pub auth: Auth,
    /// Pod behaviours chosen per image.
    pub behaviours: Behaviours,
    /// Container logs.
    pub logs: LogStore,
    /// Faults on demand.
    pub faults: crate::faults::Faults,
    /// Stdin of running containers (for attach).
    pub stdin: crate::pods::StdinMap,
    /// The Kubernetes version this cluster reports and behaves as.
    pub version: crate::version::ServerVersion,
    watch_epoch: watch::Sender<u64>,
    throttled: AtomicU32,
}

impl Cluster {
    /// A cluster of the default version with the default namespaces, accepting
    /// `admin_token` for the admin.
    pub fn new(admin_token: &str) -> Arc<Self> {
        Self::of_version(admin_token, crate::version::ServerVersion::default())
    }

    /// A cluster that reports and behaves as Kubernetes `version`.
    pub fn of_version(admin_token: &str, version: crate::version::ServerVersion) -> Arc<Self> {
        let cluster = Arc::new(Self {
            version,
            registry: Registry::builtin(),
            store: Store::new(),
            auth: Auth::new(admin_token),
            behaviours: Behaviours::default(),
            logs: LogStore::default(),
            stdin: crate::pods::StdinMap::default(),
            faults: crate::faults::Faults::default(),
            watch_epoch: watch::channel(0).0,
            throttled: AtomicU32::new(0),
        });
        if let Ok(namespaces) = cluster.resource("", "namespaces") {
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                // Creating the default namespaces cannot clash in a fresh store.
                let _ = cluster.create(&namespaces, "", json!({"metadata": {"name": ns}}), false);
            }
        }
        if let Ok(nodes) = cluster.resource("", "nodes") {
            let node = json!({"metadata": {"name": crate::pods::NODE_NAME, "labels": {"kubernetes.io/hostname": crate::pods::NODE_NAME}},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                           "addresses": [{"type": "InternalIP", "address": "10.0.0.10"}]}});
            let _ = cluster.create(&nodes, "", node, false);
        }
        cluster
    }

    /// The served resource `group/plural` (its first served version).
    pub fn resource(&self, group: &str, plural: &str) -> ApiResult<Arc<ResourceType>> {
        self.registry
            .all()
            .into_iter()
            .find(|t| t.group == group && t.plural == plural)
            .ok_or_else(|| ApiError::no_route(&format!("{group}/{plural}")))
    }

    /// Ends every open watch stream (clients then resume from their last resourceVersion).
    pub fn close_watches(&self) {
        self.watch_epoch.send_modify(|e| *e += 1);
    }

    /// Changes when [`Cluster::close_watches`] is called.
    pub fn watch_epoch(&self) -> watch::Receiver<u64> {
        self.watch_epoch.subscribe()
    }

    /// Answers the next `n` requests with 429 TooManyRequests.
    pub fn throttle_next(&self, n: u32) {
        self.throttled.store(n, Ordering::SeqCst);
    }

    /// Consumes one throttled request, if any are pending.
    pub fn take_throttle(&self) -> bool {
        self.throttled.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }

    /// Creates an object after admission (a dry run stores nothing).
    pub fn create(&self, rt: &ResourceType, ns: &str, mut obj: Value, dry_run: bool) -> ApiResult<Value> {
        check_namespace_field(rt, ns, &obj)?;
        crate::schema::known_fields_only(rt, &mut obj)?;
        admission::admit(rt, &mut obj, None)?;
        if dry_run {
            if let Some(name) = obj["metadata"]["name"].as_str()
                && self.store.get(rt, ns, name).is_ok()
            {
                return Err(ApiError::already_exists(rt.target(), name));
            }
            return Ok(obj);
        }
        let created = self.store.create(rt, ns, obj)?;
        self.after_write(rt, &created);
        Ok(created)
    }

    /// Replaces an object (PUT). A body without resourceVersion updates unconditionally.
    pub fn replace(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        obj: Value,
        part: Part,
        dry_run: bool,
    ) -> ApiResult<Value> {
        check_namespace_field(rt, ns, &obj)?;
        if let Some(body_name) = obj["metadata"]["name"].as_str().filter(|n| *n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let expected = obj["metadata"]["resourceVersion"].as_str().map(str::to_string);
        let compute = |current: &Value| next_version(rt, current, obj.clone(), part);
        self.write(rt, ns, name, expected.as_deref(), dry_run, compute)
    }

    /// Patches an object; a server-side apply of a missing object creates it.
    pub fn patch(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        patch: &Patch,
        part: Part,
        dry_run: bool,
    ) -> ApiResult<Value> {
        if patch.kind == PatchType::Apply {
            if let Some(body_name) = patch.body["metadata"]["name"].as_str().filter(|n| *n != name) {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
            if self.store.get(rt, ns, name).is_err() && part == Part::Main {
                let mut obj = patch::server_side_apply(None, &patch.body, &patch.manager, &rt.api_version());
                crate::store::meta_mut(&mut obj).insert("name".into(), json!(name));
                return self.create(rt, ns, obj, dry_run);
            }
        }
        let compute = |current: &Value| {
            let patched = patched(rt, current, patch)?;
            let wanted = patched["metadata"]["resourceVersion"].as_str();
            if wanted.is_some_and(|rv| Some(rv) != current["metadata"]["resourceVersion"].as_str()) {
                return Err(ApiError::conflict(rt.target(), name));
            }
            next_version(rt, current, patched, part)
        };
        self.write(rt, ns, name, None, dry_run, compute)
    }

    fn write<F>(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        expected: Option<&str>,
        dry_run: bool,
        compute: F,
    ) -> ApiResult<Value>
    where
        F: FnOnce(&Value) -> ApiResult<Value>,
    {
        if dry_run {
            let current = self.store.get(rt, ns, name)?;
            return compute(&current);
        }
        let updated = self.store.update(rt, ns, name, expected, compute)?;
        self.after_write(rt, &updated);
        Ok(updated)
    }

    fn after_write(&self, rt: &ResourceType, obj: &Value) {
        if rt.group == "apiextensions.k8s.io"
            && rt.plural == "customresourcedefinitions"
            && obj["metadata"]["deletionTimestamp"].is_null()
        {
            self.registry.register_crd(obj);
        }
    }
}

/// `current` with `patch` applied, before anything checks or completes it.
pub fn patched(rt: &ResourceType, current: &Value, patch: &Patch) -> ApiResult<Value> {
    Ok(match patch.kind {
        PatchType::Json => patch::json_patch(current, &patch.body)?,
        PatchType::Merge => patch::merge_patch(current, &patch.body),
        PatchType::Strategic => patch::strategic_merge(current, &patch.body),
        PatchType::Apply => patch::server_side_apply(Some(current), &patch.body, &patch.manager, &rt.api_version()),
    })
}

/// The object a write stores: the main resource keeps the current status (and vice versa),
/// and only the fields the API type knows.
fn next_version(rt: &ResourceType, current: &Value, incoming: Value, part: Part) -> ApiResult<Value> {
    match part {
        Part::Status => {
            let mut next = current.clone();
            next["status"] = incoming["status"].clone();
            crate::schema::known_fields_only(rt, &mut next)?;
            Ok(next)
        }
        Part::Main => {
            let mut next = incoming;
            if rt.has_status() {
                next["status"] = current["status"].clone();
            }
            crate::schema::known_fields_only(rt, &mut next)?;
            admission::admit(rt, &mut next, Some(current))?;
            Ok(next)
        }
    }
}

fn check_namespace_field(rt: &ResourceType, ns: &str, obj: &Value) -> ApiResult<()> {
    match obj["metadata"]["namespace"].as_str() {
        Some(body_ns) if rt.namespaced && !body_ns.is_empty() && body_ns != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}
