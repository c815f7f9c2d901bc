//! `pods/<name>/attach` over WebSocket, in the channel protocol kubectl and kube-rs speak
//! (`v5.channel.k8s.io`, `v4.channel.k8s.io`): each binary message starts with its channel
//! (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize); v5 adds `[255, channel]` to close a
//! channel. Bytes on channel 0 go to the container's stdin; closing it (v5 close, a close
//! frame, or the connection ending) ends stdin (stdinOnce). The container's output is sent
//! on channel 1 when asked for, and its exit as a Status on channel 3.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::{Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::body::Body;
use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};

const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query.get(key).is_some_and(|v| v == "true" || v == "1")
}

/// Answers an attach request with a WebSocket upgrade.
pub async fn serve(
    cluster: Arc<Cluster>,
    mut req: hyper::Request<hyper::body::Incoming>,
    ns: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> ApiResult<Response<Body>> {
    let pods = cluster.resource("", "pods")?;
    let pod = cluster.store.get(&pods, ns, name)?;
    let containers: Vec<&Value> = pod["spec"]["containers"].as_array().into_iter().flatten().collect();
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) => containers
            .iter()
            .find(|s| s["name"] == c.as_str())
            .ok_or_else(|| ApiError::bad_request(format!("container {c} is not valid for pod {name}")))?,
        None => containers.first().ok_or_else(|| ApiError::bad_request("the pod has no containers"))?,
    };
    let container_name = container["name"].as_str().unwrap_or_default().to_string();
    let (want_stdin, want_stdout) = (flag(query, "stdin"), flag(query, "stdout") || flag(query, "stderr"));
    if !want_stdin && !want_stdout {
        return Err(ApiError::bad_request("you must specify at least 1 of stdin, stdout, stderr"));
    }
    if want_stdin && container["stdin"] != true {
        return Err(ApiError::bad_request(format!(
            "container {container_name} in pod {name} does not have stdin enabled (stdin: true)"
        )));
    }
    if pod["status"]["phase"] == "Succeeded" || pod["status"]["phase"] == "Failed" {
        return Err(ApiError::bad_request(format!(
            "cannot attach a container in a completed pod; current phase is {}",
            pod["status"]["phase"].as_str().unwrap_or_default()
        )));
    }
    let headers = req.headers();
    let is_websocket =
        headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = headers.get(header::SEC_WEBSOCKET_KEY).map(|k| k.as_bytes().to_vec());
    let (true, Some(key)) = (is_websocket, key) else {
        return Err(ApiError::bad_request("attach needs a WebSocket upgrade (SPDY is not served)"));
    };
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .collect();
    let Some(protocol) = PROTOCOLS.iter().find(|p| offered.iter().any(|o| o == *p)) else {
        return Err(ApiError::bad_request(format!("none of the offered subprotocols {offered:?} is served")));
    };
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_string();
    let upgrade = hyper::upgrade::on(&mut req);
    let v5 = *protocol == PROTOCOLS[0];
    tokio::spawn(async move {
        // A client that goes away before the upgrade completes has nothing to stream.
        let Ok(upgraded) = upgrade.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        session(cluster, ws, uid, container_name, want_stdin, want_stdout, v5).await;
    });
    let mut response = Response::new(http_body_util::BodyExt::boxed(
        http_body_util::Empty::<Bytes>::new().map_err(|never: std::convert::Infallible| match never {}),
    ));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, header::HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, header::HeaderValue::from_static("Upgrade"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    if let Ok(v) = header::HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    h.insert(header::SEC_WEBSOCKET_PROTOCOL, header::HeaderValue::from_static(protocol));
    Ok(response)
}

use http_body_util::BodyExt as _;

async fn session<S>(
    cluster: Arc<Cluster>,
    ws: WebSocketStream<S>,
    uid: String,
    container: String,
    want_stdin: bool,
    want_stdout: bool,
    v5: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = v5;
    let (mut sink, mut stream) = ws.split();
    let mut stdin = if want_stdin {
        cluster.stdin.take_when_started(&uid, &container, Duration::from_secs(30)).await
    } else {
        None
    };
    // The log appears when the container starts.
    let mut log = None;
    for _ in 0..600 {
        log = cluster.logs.get(&uid, &container);
        if log.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(log) = log else {
        let _ = sink.send(status_message(&failure("container not found"))).await;
        let _ = sink.send(normal_close()).await;
        return;
    };
    let mut changes = log.subscribe();
    let mut sent = if want_stdout { 0 } else { usize::MAX };
    let mut client_open = true;
    loop {
        if want_stdout {
            let (lines, _) = log.lines_from(sent);
            sent += lines.len();
            let mut chunk = vec![STDOUT];
            for line in &lines {
                chunk.extend_from_slice(&line.text);
            }
            if chunk.len() > 1 && sink.send(Message::binary(chunk)).await.is_err() {
                return;
            }
        }
        if log.lines_from(usize::MAX).1 {
            break;
        }
        tokio::select! {
            message = stream.next(), if client_open => match message {
                Some(Ok(Message::Binary(data))) => match data.first() {
                    Some(&STDIN) if data.len() > 1 => {
                        if let Some(tx) = &stdin
                            && tx.send(Bytes::copy_from_slice(&data[1..])).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    Some(&CLOSE) if data.get(1) == Some(&STDIN) => stdin = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    stdin = None;
                    client_open = false;
                }
                Some(Ok(_)) => {}
            },
            changed = changes.changed() => if changed.is_err() { break },
        }
    }
    drop(stdin);
    if client_open {
        let status = exit_status(&cluster, &uid, &container).await;
        let _ = sink.send(status_message(&status)).await;
        let _ = sink.send(normal_close()).await;
    }
}

/// A close frame with code 1000: client-go treats a close without a code (1005) as an
/// error on every stream.
fn normal_close() -> Message {
    Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "".into(),
    }))
}

fn status_message(status: &Value) -> Message {
    let mut bytes = vec![STATUS];
    bytes.extend_from_slice(status.to_string().as_bytes());
    Message::binary(bytes)
}

fn failure(message: &str) -> Value {
    json!({"metadata": {}, "status": "Failure", "message": message})
}

/// The Status a v4 client gets when the container ends: Success, or NonZeroExitCode.
async fn exit_status(cluster: &Cluster, uid: &str, container: &str) -> Value {
    let Ok(pods) = cluster.resource("", "pods") else { return json!({"metadata": {}, "status": "Success"}) };
    for _ in 0..100 {
        let pod = cluster.store.list(&pods, None).0.into_iter().find(|p| p["metadata"]["uid"] == uid);
        let Some(pod) = pod else { break };
        let state = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == container)
            .map(|s| s["state"]["terminated"].clone())
            .unwrap_or(Value::Null);
        if let Some(code) = state["exitCode"].as_i64() {
            if code == 0 {
                return json!({"metadata": {}, "status": "Success"});
            }
            return json!({"metadata": {}, "status": "Failure",
                "message": format!("command terminated with non-zero exit code: error executing command [attach], exit code {code}"),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}});
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    json!({"metadata": {}, "status": "Success"})
}
