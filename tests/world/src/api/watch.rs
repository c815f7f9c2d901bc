//! Watches: newline-delimited JSON events streamed over a chunked response.
//!
//! A watch from a resourceVersion replays the history after it (or sends one ERROR event
//! with a 410 Expired Status when that history was compacted); a watch without one, or
//! with `sendInitialEvents=true` (watch-list, used by helm 4), starts with ADDED events for
//! the existing objects, and watch-list ends them with a BOOKMARK annotated
//! `k8s.io/initial-events-end`. Label and field selectors turn objects that leave or enter
//! the selection into DELETED and ADDED events, like the real API. Clients that ask for
//! Tables get each object as a one-row Table.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::body::{self, Body};
use super::objects::{ObjectRequest, selectors};
use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Event, EventType, ResourceId};

struct Filter {
    id: ResourceId,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    api_version: String,
    kind: String,
    table: bool,
}

impl Filter {
    fn selects(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The event a watcher of this selection sees for a store event, if any.
    fn translate(&self, event: &Event) -> Option<(&'static str, Value)> {
        if event.resource != self.id || self.namespace.as_ref().is_some_and(|ns| *ns != event.namespace) {
            return None;
        }
        let now = self.selects(&event.object);
        let before = event.previous.as_ref().is_some_and(|p| self.selects(p));
        let kind = match event.kind {
            EventType::Added if now => "ADDED",
            EventType::Modified if now && before => "MODIFIED",
            EventType::Modified if now => "ADDED",
            EventType::Modified if before => "DELETED",
            EventType::Deleted if now => "DELETED",
            _ => return None,
        };
        Some((kind, self.versioned(&event.object)))
    }

    /// The object as this watcher receives it: in the watched version, or as a Table row.
    fn versioned(&self, obj: &Value) -> Value {
        let mut obj = obj.clone();
        obj["apiVersion"] = json!(self.api_version);
        if self.table { super::table::render(&self.kind, &[obj], None) } else { obj }
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Starts a watch stream.
pub fn serve(cluster: Arc<Cluster>, req: &ObjectRequest) -> ApiResult<Response<Body>> {
    let rt = req.path.rt.clone();
    let (labels, fields) = selectors(&req.query)?;
    let filter = Filter {
        id: ResourceId::of(&rt),
        namespace: req.path.namespace.clone(),
        labels,
        fields,
        api_version: rt.api_version(),
        kind: rt.kind.clone(),
        table: req.table,
    };
    let rv = req.query.get("resourceVersion").cloned().unwrap_or_default();
    let watch_list = req.query.get("sendInitialEvents").is_some_and(|v| v == "true" || v == "1");
    let timeout = req.query.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).map(Duration::from_secs);
    let mut first: Vec<Bytes> = Vec::new();
    let mut after_rv = 0;
    let live = if watch_list || rv.is_empty() || rv == "0" {
        let (items, list_rv, live) = cluster.store.list_and_subscribe(&rt, filter.namespace.as_deref());
        first.extend(items.iter().filter(|o| filter.selects(o)).map(|o| line("ADDED", &filter.versioned(o))));
        if watch_list {
            let bookmark = json!({"kind": rt.kind, "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": list_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
            first.push(line("BOOKMARK", &bookmark));
        }
        after_rv = list_rv;
        Some(live)
    } else {
        let from: u64 = rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
        match cluster.store.watch_from(from) {
            Ok(sub) => {
                for event in &sub.replay {
                    if let Some((kind, obj)) = filter.translate(event) {
                        first.push(line(kind, &obj));
                    }
                    after_rv = event.rv;
                }
                after_rv = after_rv.max(from);
                Some(sub.live)
            }
            Err(err) => {
                first.push(line("ERROR", &err.to_status()));
                None
            }
        }
    };
    let (tx, response) = body::stream("application/json");
    tokio::spawn(pump(cluster, filter, first, live, after_rv, timeout, tx));
    Ok(response)
}

async fn pump(
    cluster: Arc<Cluster>,
    filter: Filter,
    first: Vec<Bytes>,
    live: Option<broadcast::Receiver<Arc<Event>>>,
    mut after_rv: u64,
    timeout: Option<Duration>,
    tx: mpsc::Sender<Bytes>,
) {
    // An injected fault ends the stream after a number of events (initial ones included).
    let mut left = cluster.faults.watch_limit().unwrap_or(usize::MAX);
    for chunk in first {
        if left == 0 || tx.send(chunk).await.is_err() {
            return;
        }
        left -= 1;
    }
    let Some(mut live) = live else { return };
    let mut epoch = cluster.watch_epoch();
    epoch.mark_unchanged();
    let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(3600)));
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            received = live.recv() => match received {
                Ok(event) => event,
                // A watcher that falls behind is closed; the client resumes from its last version.
                Err(_) => return,
            },
            _ = epoch.changed() => return,
            _ = &mut deadline => return,
            _ = tx.closed() => return,
        };
        if event.rv <= after_rv {
            continue;
        }
        after_rv = event.rv;
        if let Some((kind, obj)) = filter.translate(&event) {
            if left == 0 || tx.send(line(kind, &obj)).await.is_err() {
                return;
            }
            left -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType, labels: Value, previous: Option<Value>) -> Event {
        Event {
            rv: 2,
            kind,
            resource: ResourceId::new("", "pods"),
            namespace: "ns".into(),
            object: json!({"metadata": {"labels": labels}}),
            previous: previous.map(|p| json!({"metadata": {"labels": p}})),
        }
    }

    #[test]
    fn selector_changes_become_added_and_deleted() {
        let filter = Filter {
            id: ResourceId::new("", "pods"),
            namespace: Some("ns".into()),
            labels: LabelSelector::parse("app=a").expect("selector"),
            fields: FieldSelector::default(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            table: false,
        };
        let kind = |e: &Event| filter.translate(e).map(|(k, _)| k);
        assert_eq!(kind(&event(EventType::Modified, json!({"app": "b"}), Some(json!({"app": "a"})))), Some("DELETED"));
        assert_eq!(kind(&event(EventType::Modified, json!({"app": "a"}), Some(json!({"app": "b"})))), Some("ADDED"));
        assert_eq!(kind(&event(EventType::Modified, json!({"app": "a"}), Some(json!({"app": "a"})))), Some("MODIFIED"));
        assert_eq!(kind(&event(EventType::Added, json!({"app": "b"}), None)), None);
    }
}
