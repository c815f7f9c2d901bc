//! `pods/<name>/log`: a container's log as `text/plain`, with `container`, `timestamps`,
//! `sinceTime`, `sinceSeconds`, `tailLines`, `limitBytes` and `follow` (a chunked stream
//! that ends when the container's log closes).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::Response;
use serde_json::Value;

use super::body::{self, Body};
use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};
use crate::pods::LogLine;

struct LogOptions {
    container: String,
    follow: bool,
    timestamps: bool,
    since: Option<jiff::Timestamp>,
    tail: Option<usize>,
    limit: Option<usize>,
}

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn options(pod: &Value, name: &str, query: &HashMap<String, String>) -> ApiResult<LogOptions> {
    let spec = &pod["spec"];
    let names: Vec<&str> = spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["containers"].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    let mains: Vec<&str> =
        spec["containers"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) if names.contains(&c.as_str()) => c.clone(),
        Some(c) => return Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}"))),
        None if mains.len() == 1 => mains[0].to_string(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                mains.join(" ")
            )));
        }
    };
    let since_time = match query.get("sinceTime") {
        Some(t) => Some(
            t.parse::<jiff::Timestamp>().map_err(|e| ApiError::bad_request(format!("invalid sinceTime {t}: {e}")))?,
        ),
        None => None,
    };
    let since_seconds = query
        .get("sinceSeconds")
        .and_then(|s| s.parse::<i64>().ok())
        .map(|s| jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s));
    Ok(LogOptions {
        container,
        follow: flag(query, "follow"),
        timestamps: flag(query, "timestamps"),
        since: since_time.or(since_seconds),
        tail: query.get("tailLines").and_then(|t| t.parse().ok()),
        limit: query.get("limitBytes").and_then(|t| t.parse().ok()),
    })
}

fn waiting_reason(pod: &Value, container: &str) -> Option<String> {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(pod["status"]["initContainerStatuses"].as_array().into_iter().flatten());
    let status = statuses.into_iter().find(|s| s["name"] == container);
    match status {
        None => Some("ContainerCreating".into()),
        Some(s) if s["state"]["waiting"].is_object() && s["restartCount"].as_u64().unwrap_or(0) == 0 => {
            Some(s["state"]["waiting"]["reason"].as_str().unwrap_or("ContainerCreating").to_string())
        }
        Some(_) => None,
    }
}

fn render(line: &LogLine, timestamps: bool) -> Vec<u8> {
    if timestamps { [format!("{} ", line.at).into_bytes(), line.text.clone()].concat() } else { line.text.clone() }
}

/// Serves a pod's log.
pub fn serve(
    cluster: Arc<Cluster>,
    ns: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> ApiResult<Response<Body>> {
    let pods = cluster.resource("", "pods")?;
    let pod = cluster.store.get(&pods, ns, name)?;
    let opts = options(&pod, name, query)?;
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let log = match cluster.logs.get(uid, &opts.container) {
        Some(log) => log,
        None => {
            let reason = waiting_reason(&pod, &opts.container).unwrap_or_else(|| "ContainerCreating".into());
            return Err(ApiError::bad_request(format!(
                "container \"{}\" in pod \"{name}\" is waiting to start: {reason}",
                opts.container
            )));
        }
    };
    let (lines, closed) = log.lines_from(0);
    let read = lines.len();
    let mut selected: Vec<&LogLine> = lines.iter().filter(|l| opts.since.is_none_or(|s| l.at >= s)).collect();
    if let Some(tail) = opts.tail {
        selected = selected.split_off(selected.len().saturating_sub(tail));
    }
    let mut first: Vec<u8> = selected.iter().flat_map(|l| render(l, opts.timestamps)).collect();
    if let Some(limit) = opts.limit {
        first.truncate(limit);
    }
    // An injected fault ends the stream (or the answer) after this many bytes.
    let mut budget = cluster.faults.log_limit().unwrap_or(usize::MAX);
    if !opts.follow || closed {
        first.truncate(budget);
        let mut response = body::text(200, "");
        *response.body_mut() = http_body_util::BodyExt::boxed(http_body_util::Full::new(Bytes::from(first)));
        return Ok(response);
    }
    let (tx, response) = body::stream("text/plain");
    tokio::spawn(async move {
        let mut sent = read;
        let mut changes = log.subscribe();
        let mut send = async |mut chunk: Vec<u8>| {
            let cut = chunk.len() >= budget;
            chunk.truncate(budget);
            budget -= chunk.len();
            let failed = !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err();
            !(failed || cut)
        };
        if !send(first).await {
            return;
        }
        loop {
            let (lines, closed) = log.lines_from(sent);
            sent += lines.len();
            let chunk: Vec<u8> = lines.iter().flat_map(|l| render(l, opts.timestamps)).collect();
            if !send(chunk).await {
                return;
            }
            if closed {
                return;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = tx.closed() => return,
            }
        }
    });
    Ok(response)
}
