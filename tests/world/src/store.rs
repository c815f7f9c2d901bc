//! Generic object storage: every resource kept as JSON, one global resourceVersion counter,
//! an event history for watches to resume from, and a broadcast of live events.
//!
//! The store only enforces what holds for every resource (names, uids, resourceVersions,
//! generations, namespaces that exist); admission and controllers sit above it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult, Target};
use crate::resources::ResourceType;

/// How many events the history keeps before the oldest are compacted away.
const HISTORY: usize = 50_000;

/// Identifies a resource independently of its version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId {
    /// API group; empty for core.
    pub group: String,
    /// Plural name.
    pub plural: String,
}

impl ResourceId {
    /// The id of a served resource type.
    pub fn of(rt: &ResourceType) -> Self {
        Self { group: rt.group.clone(), plural: rt.plural.clone() }
    }

    /// A core or grouped resource by name.
    pub fn new(group: &str, plural: &str) -> Self {
        Self { group: group.into(), plural: plural.into() }
    }
}

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// Added, modified or deleted.
    pub kind: EventType,
    /// The object's resource.
    pub resource: ResourceId,
    /// The object's namespace ("" for cluster-scoped).
    pub namespace: String,
    /// The object after the change (for DELETED: its last state).
    pub object: Value,
    /// The object before the change, for MODIFIED.
    pub previous: Option<Value>,
}

type Key = (String, String);

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: HashMap<ResourceId, BTreeMap<Key, Value>>,
    history: VecDeque<Arc<Event>>,
    compacted_to: u64,
}

/// A live subscription plus the history that precedes it.
pub struct Subscription {
    /// Events after the requested resourceVersion, oldest first.
    pub replay: Vec<Arc<Event>>,
    /// Events from now on.
    pub live: broadcast::Receiver<Arc<Event>>,
}

/// The object store.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(16_384);
        Self { inner: Mutex::new(Inner { rv: 1, ..Inner::default() }), events }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Subscribes to live events only.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// One object.
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        let inner = self.lock();
        lookup(&inner, &ResourceId::of(rt), ns, name).cloned().ok_or_else(|| ApiError::not_found(rt.target(), name))
    }

    /// One object by resource id, if present.
    pub fn find(&self, id: &ResourceId, ns: &str, name: &str) -> Option<Value> {
        lookup(&self.lock(), id, ns, name).cloned()
    }

    /// All objects of a resource, in one namespace or all, with the list's resourceVersion.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        (list_in(&inner, &ResourceId::of(rt), ns), inner.rv)
    }

    /// All objects of a resource by id.
    pub fn list_id(&self, id: &ResourceId, ns: Option<&str>) -> Vec<Value> {
        list_in(&self.lock(), id, ns)
    }

    /// Lists objects and subscribes to later events atomically (for watch-list and rv=0 watches).
    pub fn list_and_subscribe(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
    ) -> (Vec<Value>, u64, broadcast::Receiver<Arc<Event>>) {
        let inner = self.lock();
        let items = list_in(&inner, &ResourceId::of(rt), ns);
        (items, inner.rv, self.events.subscribe())
    }

    /// Events after `rv` and a subscription to what follows; 410 when `rv` was compacted.
    pub fn watch_from(&self, rv: u64) -> ApiResult<Subscription> {
        let inner = self.lock();
        if rv < inner.compacted_to {
            return Err(ApiError::expired(rv, inner.compacted_to));
        }
        let replay = inner.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Ok(Subscription { replay, live: self.events.subscribe() })
    }

    /// Forgets the event history, so watches from any older resourceVersion get 410.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.compacted_to = inner.rv;
    }

    /// Stores a new object: names it (generateName), stamps uid, resourceVersion,
    /// creationTimestamp and generation, and refuses a taken name or a missing namespace.
    pub fn create(&self, rt: &ResourceType, ns: &str, mut obj: Value) -> ApiResult<Value> {
        let mut inner = self.lock();
        let id = ResourceId::of(rt);
        if rt.namespaced {
            check_namespace(&inner, ns)?;
        }
        let name = match obj["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
            Some(name) => name.to_string(),
            None => generate_name(&inner, &id, ns, obj["metadata"]["generateName"].as_str().unwrap_or_default()),
        };
        if lookup(&inner, &id, ns, &name).is_some() {
            return Err(ApiError::already_exists(rt.target(), &name));
        }
        inner.rv += 1;
        let rv = inner.rv;
        let meta = meta_mut(&mut obj);
        meta.insert("name".into(), json!(name));
        if rt.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("creationTimestamp".into(), json!(now()));
        meta.insert("generation".into(), json!(1));
        meta.remove("deletionTimestamp");
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        inner.objects.entry(id.clone()).or_default().insert((ns.to_string(), name), obj.clone());
        self.publish(&mut inner, EventType::Added, id, ns, obj.clone(), None);
        Ok(obj)
    }

    /// Replaces an object with what `change` makes of it. Keeps identity fields, checks
    /// `expected_rv` (409 when stale), bumps generation when more than metadata/status changed,
    /// and removes the object if it is being deleted and has no finalizers left.
    pub fn update<F>(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        expected_rv: Option<&str>,
        change: F,
    ) -> ApiResult<Value>
    where
        F: FnOnce(&Value) -> ApiResult<Value>,
    {
        let mut inner = self.lock();
        let id = ResourceId::of(rt);
        let current = lookup(&inner, &id, ns, name).cloned().ok_or_else(|| ApiError::not_found(rt.target(), name))?;
        if let Some(expected) = expected_rv.filter(|rv| !rv.is_empty())
            && current["metadata"]["resourceVersion"].as_str() != Some(expected)
        {
            return Err(ApiError::conflict(rt.target(), name));
        }
        let mut next = change(&current)?;
        if next == current {
            return Ok(current);
        }
        for field in ["name", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"] {
            match current["metadata"].get(field) {
                Some(v) if field != "deletionTimestamp" || next["metadata"].get(field).is_none() => {
                    meta_mut(&mut next).insert(field.into(), v.clone())
                }
                _ => None,
            };
        }
        if rt.namespaced {
            meta_mut(&mut next).insert("namespace".into(), json!(ns));
        }
        next["apiVersion"] = json!(rt.api_version());
        next["kind"] = json!(rt.kind);
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        let bumped = if spec_of(&current) != spec_of(&next) { generation + 1 } else { generation };
        meta_mut(&mut next).insert("generation".into(), json!(bumped));
        inner.rv += 1;
        let rv = inner.rv;
        meta_mut(&mut next).insert("resourceVersion".into(), json!(rv.to_string()));
        let finished = !next["metadata"]["deletionTimestamp"].is_null()
            && next["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
        let key = (ns.to_string(), name.to_string());
        if finished {
            inner.objects.entry(id.clone()).or_default().remove(&key);
            self.publish(&mut inner, EventType::Deleted, id, ns, next.clone(), None);
        } else {
            inner.objects.entry(id.clone()).or_default().insert(key, next.clone());
            self.publish(&mut inner, EventType::Modified, id, ns, next.clone(), Some(current));
        }
        Ok(next)
    }

    /// Removes an object now and emits DELETED.
    pub fn remove(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        let mut inner = self.lock();
        let id = ResourceId::of(rt);
        let key = (ns.to_string(), name.to_string());
        let mut obj = inner
            .objects
            .get_mut(&id)
            .and_then(|m| m.remove(&key))
            .ok_or_else(|| ApiError::not_found(rt.target(), name))?;
        inner.rv += 1;
        let rv = inner.rv;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.publish(&mut inner, EventType::Deleted, id, ns, obj.clone(), None);
        Ok(obj)
    }

    /// Objects (resource, namespace, name) that list `uid` among their ownerReferences.
    pub fn dependents(&self, uid: &str) -> Vec<(ResourceId, String, String)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (id, objects) in &inner.objects {
            for ((ns, name), obj) in objects {
                let owned = obj["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(uid)));
                if owned {
                    out.push((id.clone(), ns.clone(), name.clone()));
                }
            }
        }
        out
    }

    /// Every object (resource, name) in a namespace.
    pub fn in_namespace(&self, ns: &str) -> Vec<(ResourceId, String)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (id, objects) in &inner.objects {
            out.extend(objects.keys().filter(|(n, _)| n == ns).map(|(_, name)| (id.clone(), name.clone())));
        }
        out
    }

    fn publish(
        &self,
        inner: &mut Inner,
        kind: EventType,
        resource: ResourceId,
        ns: &str,
        object: Value,
        previous: Option<Value>,
    ) {
        let event = Arc::new(Event { rv: inner.rv, kind, resource, namespace: ns.to_string(), object, previous });
        inner.history.push_back(event.clone());
        while inner.history.len() > HISTORY {
            if let Some(old) = inner.history.pop_front() {
                inner.compacted_to = old.rv;
            }
        }
        // No receiver is fine: nobody watches yet.
        let _ = self.events.send(event);
    }
}

fn lookup<'a>(inner: &'a Inner, id: &ResourceId, ns: &str, name: &str) -> Option<&'a Value> {
    inner.objects.get(id)?.get(&(ns.to_string(), name.to_string()))
}

fn list_in(inner: &Inner, id: &ResourceId, ns: Option<&str>) -> Vec<Value> {
    inner
        .objects
        .get(id)
        .map(|m| m.iter().filter(|((n, _), _)| ns.is_none_or(|ns| ns == n)).map(|(_, v)| v.clone()).collect())
        .unwrap_or_default()
}

fn check_namespace(inner: &Inner, ns: &str) -> ApiResult<()> {
    let target = Target { group: "", plural: "namespaces" };
    let namespace =
        lookup(inner, &ResourceId::new("", "namespaces"), "", ns).ok_or_else(|| ApiError::not_found(target, ns))?;
    if !namespace["metadata"]["deletionTimestamp"].is_null() {
        return Err(ApiError::forbidden(
            format!("unable to create new content in namespace {ns} because it is being terminated"),
            Some(target),
            ns,
        ));
    }
    Ok(())
}

fn generate_name(inner: &Inner, id: &ResourceId, ns: &str, prefix: &str) -> String {
    loop {
        let name = format!("{prefix}{}", random_suffix(5));
        if lookup(inner, id, ns, &name).is_none() {
            return name;
        }
    }
}

fn spec_of(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

/// The object's metadata as a mutable map (created when missing or not an object).
pub fn meta_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    match obj["metadata"].as_object_mut() {
        Some(map) => map,
        None => unreachable!("metadata was just made an object"),
    }
}

/// Current time, RFC 3339 to the second (the API's `metav1.Time`).
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A random lower-case alphanumeric suffix like the API's name generator makes.
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..len).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn setup() -> (Store, Arc<ResourceType>) {
        let store = Store::new();
        let reg = Registry::builtin();
        let ns = reg.find("", "v1", "namespaces").expect("namespaces");
        store.create(&ns, "", json!({"metadata": {"name": "default"}})).expect("ns");
        (store, reg.find("", "v1", "configmaps").expect("configmaps"))
    }

    #[test]
    fn create_update_conflict_and_watch_resume() {
        let (store, cm) = setup();
        let created = store
            .create(&cm, "default", json!({"metadata": {"generateName": "c-"}, "data": {"a": "1"}}))
            .expect("create");
        let name = created["metadata"]["name"].as_str().expect("name").to_string();
        let rv = created["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
        assert!(name.starts_with("c-"));
        store
            .update(&cm, "default", &name, Some(&rv), |o| Ok(json!({"metadata": o["metadata"], "data": {"a": "2"}})))
            .expect("update");
        let stale = store.update(&cm, "default", &name, Some(&rv), |o| Ok(o.clone()));
        assert_eq!(stale.map(|_| ()).map_err(|e| e.reason), Err("Conflict"));
        let sub = store.watch_from(rv.parse().expect("number")).expect("watch");
        assert_eq!(sub.replay.len(), 1);
        store.compact();
        assert_eq!(store.watch_from(1).err().map(|e| e.code), Some(410));
    }

    #[test]
    fn missing_namespace_is_not_found() {
        let (store, cm) = setup();
        let err = store.create(&cm, "nope", json!({"metadata": {"name": "x"}})).expect_err("no namespace");
        assert_eq!(err.message, "namespaces \"nope\" not found");
    }
}
