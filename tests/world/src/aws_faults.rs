//! A fault proxy for AWS: a plain-HTTP reverse proxy on a loopback port in front of moto,
//! so that tests can make S3, STS and EKS misbehave the way the real services sometimes
//! do, with the task's real AWS SDK clients on one side and real moto on the other.
//!
//! moto always answers, and answers right; the proxy is where the faults come from. Rules
//! match a request by method, path prefix, query keys (`partNumber`, `uploadId`,
//! `uploads`) and body substrings (`Action=AssumeRole&`), and then:
//!
//! - answer with a canned AWS error instead of forwarding ([`AwsError`]: S3's XML
//!   `SlowDown` and `AccessDenied`, STS's query-protocol `Throttling`, or a JSON error);
//! - reset the connection after reading part of the request body (an RST, as a dropped
//!   load balancer connection looks to the client);
//! - rewrite the response body (DescribeCluster's `"ACTIVE"` → `"CREATING"`);
//! - delay the request.
//!
//! Rules are consumed as they fire (like [`crate::faults`] for the Kubernetes API), and
//! each [`AwsFaultProxy`] has its own, so tests running in parallel do not disturb each
//! other. Requests pass through as streams: a body is only read into memory when a rule
//! needs to look into it (and then only bodies up to [`BODY_MATCH_LIMIT`]), a response
//! only when a rule rewrites it.

use std::os::fd::{AsRawFd as _, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full, combinators::BoxBody};
use hyper::body::{Body as _, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, header};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// The largest request body read to look for a rule's body substring; a larger body (or
/// one of unknown length) matches no rule that looks into bodies.
pub const BODY_MATCH_LIMIT: u64 = 64 * 1024;

/// Which requests a rule applies to; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    /// Only this HTTP method.
    pub method: Option<String>,
    /// Only paths starting with this (`/bucket/` for one bucket's objects).
    pub path_prefix: Option<String>,
    /// Only requests whose query has each of these keys (`partNumber`, `uploads`).
    pub query_keys: Vec<String>,
    /// Only requests whose body contains each of these (`Action=AssumeRole&`).
    pub body_contains: Vec<String>,
}

impl Match {
    /// Every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Also restrict to one HTTP method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Also restrict to paths starting with `prefix`.
    pub fn path(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Also require the query key `key` (with or without a value).
    pub fn query(mut self, key: &str) -> Self {
        self.query_keys.push(key.into());
        self
    }

    /// Also require `text` in the request body.
    pub fn body(mut self, text: &str) -> Self {
        self.body_contains.push(text.into());
        self
    }

    fn matches_head(&self, method: &str, path: &str, query: &str) -> bool {
        let keys = || query.split('&').map(|pair| pair.split('=').next().unwrap_or_default());
        self.method.as_ref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path_prefix.as_ref().is_none_or(|p| path.starts_with(p.as_str()))
            && self.query_keys.iter().all(|key| keys().any(|k| k == key))
    }

    fn matches_body(&self, body: Option<&[u8]>) -> bool {
        self.body_contains.is_empty()
            || body.is_some_and(|body| self.body_contains.iter().all(|text| contains(body, text.as_bytes())))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A canned AWS error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: String,
}

const REQUEST_ID: &str = "AWSFAULTPROXY0001";

impl AwsError {
    /// An S3 (REST-XML) error: `<Error><Code>…</Code><Message>…</Message>…</Error>`.
    pub fn s3(status: u16, code: &str, message: &str) -> Self {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
             <RequestId>{REQUEST_ID}</RequestId><HostId>aws-fault-proxy</HostId></Error>"
        );
        Self {
            status,
            headers: vec![
                ("content-type".into(), "application/xml".into()),
                ("x-amz-request-id".into(), REQUEST_ID.into()),
            ],
            body,
        }
    }

    /// S3's 503 SlowDown.
    pub fn slow_down() -> Self {
        Self::s3(503, "SlowDown", "Please reduce your request rate.")
    }

    /// S3's 403 AccessDenied.
    pub fn access_denied() -> Self {
        Self::s3(403, "AccessDenied", "Access Denied")
    }

    /// An error of a query-protocol service (STS, IAM): `<ErrorResponse><Error><Type>…`.
    pub fn query(status: u16, code: &str, message: &str) -> Self {
        let kind = if status >= 500 { "Receiver" } else { "Sender" };
        let body = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{kind}</Type>\n    \
             <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>{REQUEST_ID}</RequestId>\n\
             </ErrorResponse>"
        );
        Self {
            status,
            headers: vec![("content-type".into(), "text/xml".into()), ("x-amzn-requestid".into(), REQUEST_ID.into())],
            body,
        }
    }

    /// STS's 400 Throttling ("Rate exceeded").
    pub fn throttling() -> Self {
        Self::query(400, "Throttling", "Rate exceeded")
    }

    /// An error of a REST-JSON service (EKS): `x-amzn-ErrorType` and `{"message": …}`.
    pub fn json(status: u16, error_type: &str, message: &str) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-amzn-errortype".into(), error_type.into()),
                ("x-amzn-requestid".into(), REQUEST_ID.into()),
            ],
            body: serde_json::json!({ "message": message }).to_string(),
        }
    }

    /// Adds a header (`Retry-After`, …).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    fn response(&self) -> Response<Body> {
        let mut response = Response::builder().status(self.status);
        for (name, value) in &self.headers {
            response = response.header(name, value);
        }
        response.body(full(self.body.clone())).unwrap_or_else(|_| Response::new(full(self.body.clone())))
    }
}

#[derive(Debug, Clone)]
enum Action {
    Answer(AwsError),
    Reset { after: u64 },
    Rewrite { from: String, to: String },
    Delay(Duration),
}

impl Action {
    /// Whether the request is not forwarded.
    fn is_terminal(&self) -> bool {
        matches!(self, Action::Answer(_) | Action::Reset { .. })
    }
}

#[derive(Debug, Clone)]
struct Rule {
    action: Action,
    remaining: u32,
    matches: Match,
}

/// What to do to one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    /// Wait this long first.
    pub delay: Duration,
    /// Answer this instead of forwarding.
    pub answer: Option<AwsError>,
    /// Read this many bytes of the body (at most), then reset the connection.
    pub reset_after: Option<u64>,
    /// Replace these texts in the forwarded answer's body, in order.
    pub rewrites: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    fired: u64,
    requests: u64,
}

/// Decides, from a request body, whether to answer it instead of moto (IAM checks moto
/// skips, such as [`crate::web_identity`]'s); `None` forwards it.
pub type Gate = Arc<dyn Fn(&[u8]) -> Option<AwsError> + Send + Sync>;

/// The fault plan of one proxy.
#[derive(Default)]
pub struct AwsFaults {
    state: Mutex<State>,
    /// Bodies containing the text go through the gate.
    gate: Mutex<Option<(String, Gate)>>,
}

impl AwsFaults {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, n: u32, matches: Match, action: Action) {
        self.lock().rules.push(Rule { action, remaining: n, matches });
    }

    /// Answers the next `n` matching requests with `error` (the request body is read first,
    /// so the client sees the answer, not a broken pipe).
    pub fn fail_next(&self, n: u32, matches: Match, error: AwsError) {
        self.add(n, matches, Action::Answer(error));
    }

    /// Resets the connection of the next `n` matching requests after reading up to
    /// `after_bytes` of their bodies.
    pub fn reset_next(&self, n: u32, matches: Match, after_bytes: u64) {
        self.add(n, matches, Action::Reset { after: after_bytes });
    }

    /// Replaces `from` with `to` in the answers to the next `n` matching requests.
    pub fn rewrite_next(&self, n: u32, matches: Match, from: &str, to: &str) {
        self.add(n, matches, Action::Rewrite { from: from.into(), to: to.into() });
    }

    /// Delays the next `n` matching requests by `delay`.
    pub fn delay_next(&self, n: u32, matches: Match, delay: Duration) {
        self.add(n, matches, Action::Delay(delay));
    }

    /// Forgets every rule (the counters stay).
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// How many times a rule has fired.
    pub fn fired(&self) -> u64 {
        self.lock().fired
    }

    /// How many requests the proxy has seen.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Lets requests whose body contains `body_contains` through only if `gate` says so
    /// (replacing an earlier gate); unlike rules, a gate is never used up.
    pub fn set_gate(&self, body_contains: &str, gate: Gate) {
        *self.gate.lock().unwrap_or_else(|e| e.into_inner()) = Some((body_contains.into(), gate));
    }

    fn gate_answer(&self, body: Option<&[u8]>) -> Option<AwsError> {
        let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (text, gate) = gate?;
        let body = body.filter(|b| contains(b, text.as_bytes()))?;
        gate(body)
    }

    /// Whether a live rule (or the gate) needs this request's body to decide.
    pub fn wants_body(&self, method: &str, path: &str, query: &str) -> bool {
        self.gate.lock().unwrap_or_else(|e| e.into_inner()).is_some()
            || self.lock().rules.iter().any(|r| {
                r.remaining > 0 && !r.matches.body_contains.is_empty() && r.matches.matches_head(method, path, query)
            })
    }

    /// Consumes the rules that match a request (`body` when it was read); what to do to it.
    /// Delays add up; the first matching answer or reset wins (later ones are not consumed);
    /// rewrites apply only to a forwarded request.
    pub fn plan(&self, method: &str, path: &str, query: &str, body: Option<&[u8]>) -> Planned {
        let mut state = self.lock();
        state.requests += 1;
        let applies =
            |r: &Rule| r.remaining > 0 && r.matches.matches_head(method, path, query) && r.matches.matches_body(body);
        let terminal = state.rules.iter().position(|r| r.action.is_terminal() && applies(r));
        let mut planned = Planned::default();
        let mut fired = 0;
        for (i, rule) in state.rules.iter_mut().enumerate() {
            if !applies(rule) {
                continue;
            }
            match &rule.action {
                Action::Delay(d) => planned.delay += *d,
                Action::Answer(e) if terminal == Some(i) => planned.answer = Some(e.clone()),
                Action::Reset { after } if terminal == Some(i) => planned.reset_after = Some(*after),
                Action::Rewrite { from, to } if terminal.is_none() => planned.rewrites.push((from.clone(), to.clone())),
                _ => continue,
            }
            rule.remaining -= 1;
            fired += 1;
        }
        state.rules.retain(|r| r.remaining > 0);
        state.fired += fired;
        drop(state);
        if planned.answer.is_none() && planned.reset_after.is_none() {
            planned.answer = self.gate_answer(body);
        }
        planned
    }
}

/// A running proxy in front of one upstream (moto); stopped when dropped.
pub struct AwsFaultProxy {
    port: u16,
    faults: Arc<AwsFaults>,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl AwsFaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let faults = Arc::new(AwsFaults::default());
        let stop = CancellationToken::new();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = {
            let (upstream, faults, stop) = (upstream.to_string(), faults.clone(), stop.clone());
            std::thread::Builder::new()
                .name("aws-fault-proxy".into())
                .spawn(move || runtime.block_on(serve(listener, upstream, faults, stop)))?
        };
        Ok(Self { port, faults, stop, thread: Some(thread) })
    }

    /// The proxy's URL (`http://127.0.0.1:PORT`), for `s3Endpoint` and `AWS_ENDPOINT_URL*`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The rules.
    pub fn faults(&self) -> &AwsFaults {
        &self.faults
    }
}

impl Drop for AwsFaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            // A panicked proxy thread has nothing left to stop.
            let _ = thread.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, upstream: String, faults: Arc<AwsFaults>, stop: CancellationToken) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        // The socket stays open (owned by hyper) while its requests are handled.
        let reset = Reset { fd: tcp.as_raw_fd(), now: Arc::new(tokio::sync::Notify::new()) };
        let (upstream, faults) = (upstream.clone(), faults.clone());
        tokio::spawn(async move {
            let now = reset.now.clone();
            let service = service_fn(move |req| handle(req, upstream.clone(), faults.clone(), reset.clone()));
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
            // A reset drops the connection as it is: no answer, no FIN, the socket closed.
            tokio::select! {
                _ = connection => {}
                () = now.notified() => {}
            }
        });
    }
}

/// How a handler resets its connection.
#[derive(Clone)]
struct Reset {
    fd: RawFd,
    now: Arc<tokio::sync::Notify>,
}

impl Reset {
    /// Makes the close of the socket an RST instead of a FIN (SO_LINGER with a zero
    /// timeout), then has the connection dropped; never returns.
    async fn reset(&self) -> ! {
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: `fd` is the open socket of the connection being served (hyper owns it and
        // closes it only once this handler's connection is dropped); setsockopt only reads
        // `linger`.
        unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        self.now.notify_one();
        std::future::pending().await
    }
}

async fn handle(
    req: Request<Incoming>,
    upstream: String,
    faults: Arc<AwsFaults>,
    reset: Reset,
) -> Result<Response<Body>, BoxError> {
    let (parts, incoming) = req.into_parts();
    let (method, path) = (parts.method.as_str(), parts.uri.path());
    let query = parts.uri.query().unwrap_or_default();
    let small = incoming.size_hint().upper().is_some_and(|n| n <= BODY_MATCH_LIMIT);
    let (buffered, mut incoming) = if small && faults.wants_body(method, path, query) {
        (Some(incoming.collect().await?.to_bytes()), None)
    } else {
        (None, Some(incoming))
    };
    let planned = faults.plan(method, path, query, buffered.as_deref());
    if !planned.delay.is_zero() {
        tokio::time::sleep(planned.delay).await;
    }
    if let Some(after) = planned.reset_after {
        if let Some(mut body) = incoming.take() {
            let mut read = 0;
            while read < after {
                match body.frame().await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
                    _ => break,
                }
            }
        }
        reset.reset().await;
    }
    if let Some(error) = planned.answer {
        if let Some(body) = incoming.take() {
            // Whatever the client still sends is read, so that it reads the answer.
            let _ = body.collect().await;
        }
        return Ok(error.response());
    }
    let body: Body = match (buffered, incoming) {
        (Some(bytes), _) => full(bytes),
        (None, Some(incoming)) => incoming.map_err(BoxError::from).boxed(),
        (None, None) => Empty::new().map_err(|never| match never {}).boxed(),
    };
    let mut forwarded = Request::builder().method(parts.method.clone()).uri(parts.uri.clone());
    for (name, value) in &parts.headers {
        // hyper answers `Expect: 100-continue` itself; the connection is the proxy's own.
        if name != header::EXPECT && name != header::CONNECTION {
            forwarded = forwarded.header(name, value);
        }
    }
    let response = match forward(&upstream, forwarded.body(body)?).await {
        Ok(response) => response,
        Err(e) => return Ok(AwsError::s3(502, "BadGateway", &format!("the AWS fault proxy: {e}")).response()),
    };
    let (mut head, incoming) = response.into_parts();
    head.headers.remove(header::CONNECTION);
    if planned.rewrites.is_empty() {
        return Ok(Response::from_parts(head, incoming.map_err(BoxError::from).boxed()));
    }
    let bytes = incoming.collect().await?.to_bytes();
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    for (from, to) in &planned.rewrites {
        text = text.replace(from.as_str(), to);
    }
    head.headers.remove(header::CONTENT_LENGTH);
    head.headers.remove(header::TRANSFER_ENCODING);
    Ok(Response::from_parts(head, full(text)))
}

/// One request on a connection of its own to the upstream.
async fn forward(upstream: &str, request: Request<Body>) -> Result<Response<Incoming>, BoxError> {
    let tcp = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        // Ends when the answer has been read (or the client went away).
        let _ = connection.await;
    });
    Ok(sender.send_request(request).await?)
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    #[test]
    fn rules_match_on_method_path_query_and_body_and_are_consumed() {
        let f = AwsFaults::default();
        let parts = Match::any().method("put").path("/bucket/").query("partNumber").query("uploadId");
        f.fail_next(2, parts, AwsError::slow_down());
        assert_eq!(f.plan("PUT", "/bucket/key", "x-id=PutObject", None).answer, None, "no part number");
        assert_eq!(f.plan("PUT", "/other/key", "partNumber=1&uploadId=u", None).answer, None, "another bucket");
        assert_eq!(f.plan("POST", "/bucket/key", "partNumber=1&uploadId=u", None).answer, None, "another method");
        let part = f.plan("PUT", "/bucket/key", "partNumber=1&uploadId=u&x-id=UploadPart", None);
        assert_eq!(part.answer.map(|e| e.status), Some(503));
        assert!(f.plan("PUT", "/bucket/key", "uploadId=u&partNumber=2", None).answer.is_some());
        assert_eq!(f.plan("PUT", "/bucket/key", "uploadId=u&partNumber=3", None), Planned::default(), "consumed");
        assert_eq!((f.fired(), f.requests()), (2, 6));

        let assume = Match::any().method("POST").body("Action=AssumeRole&");
        f.fail_next(1, assume, AwsError::throttling());
        assert!(f.wants_body("POST", "/", ""));
        assert!(!f.wants_body("GET", "/", ""), "a GET cannot match");
        let web = b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15";
        assert_eq!(f.plan("POST", "/", "", Some(web)).answer, None);
        assert_eq!(f.plan("POST", "/", "", None).answer, None, "an unread body matches no body rule");
        let throttled = f.plan("POST", "/", "", Some(b"Action=AssumeRole&Version=2011-06-15&RoleArn=x"));
        assert!(throttled.answer.unwrap().body.contains("<Code>Throttling</Code>"));
        assert!(!f.wants_body("POST", "/", ""), "the rule is used up");

        f.fail_next(1, Match::any().query("uploads"), AwsError::access_denied());
        assert_eq!(f.plan("POST", "/b/k", "uploads=", None).answer.map(|e| e.status), Some(403));
    }

    #[test]
    fn one_terminal_action_per_request_and_delays_and_rewrites_compose() {
        let f = AwsFaults::default();
        f.delay_next(1, Match::any(), Duration::from_millis(5));
        f.rewrite_next(1, Match::any().path("/clusters/"), "\"ACTIVE\"", "\"CREATING\"");
        f.reset_next(1, Match::any().method("PUT"), 1024);
        f.fail_next(1, Match::any().method("PUT"), AwsError::slow_down());
        let put = f.plan("PUT", "/clusters/x", "", None);
        assert_eq!(put.delay, Duration::from_millis(5));
        assert_eq!((put.reset_after, put.answer), (Some(1024), None), "the first terminal rule wins");
        assert!(put.rewrites.is_empty(), "a request that is not forwarded consumes no rewrite");
        assert_eq!(f.plan("PUT", "/b", "", None).answer.map(|e| e.status), Some(503), "the second is still there");
        let get = f.plan("GET", "/clusters/x", "", None);
        assert_eq!(get.rewrites, [("\"ACTIVE\"".to_string(), "\"CREATING\"".to_string())]);
        assert_eq!(get.delay, Duration::ZERO);
        f.fail_next(3, Match::any(), AwsError::json(429, "ThrottlingException", "slow down"));
        f.clear();
        assert_eq!(f.plan("GET", "/", "", None), Planned::default());
        assert_eq!(f.fired(), 4);
    }

    /// An upstream that answers every request with `{"status": "ACTIVE"}` and the request's
    /// body length, one request per connection.
    fn upstream() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i + 4);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() - head_end < length {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let body = format!("{{\"status\": \"ACTIVE\", \"received\": {}}}", request.len() - head_end);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        address
    }

    /// Sends one request through the proxy; the answer, or the I/O error.
    fn send(proxy: &AwsFaultProxy, method: &str, target: &str, body: &[u8]) -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(proxy.host())?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let head = format!(
            "{method} {target} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            proxy.host(),
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        // The proxy may reset while the body is still being sent.
        let _ = stream.write_all(body);
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }

    #[test]
    fn the_proxy_forwards_answers_rewrites_and_resets() {
        let proxy = AwsFaultProxy::start(&upstream()).unwrap();
        let big = vec![b'x'; 3 << 20];
        let passed = send(&proxy, "PUT", "/b/k?partNumber=1&uploadId=u", &big).unwrap();
        assert!(passed.starts_with("HTTP/1.1 200"), "{passed}");
        assert!(passed.contains(&format!("\"received\": {}", big.len())), "streamed through whole: {passed}");

        proxy.faults().fail_next(1, Match::any().query("partNumber"), AwsError::slow_down());
        let slow = send(&proxy, "PUT", "/b/k?partNumber=1&uploadId=u", &big).unwrap();
        assert!(slow.starts_with("HTTP/1.1 503"), "{slow}");
        assert!(slow.contains("<Code>SlowDown</Code>"), "{slow}");

        proxy.faults().rewrite_next(1, Match::any().method("GET").path("/clusters/"), "\"ACTIVE\"", "\"CREATING\"");
        let creating = send(&proxy, "GET", "/clusters/world", b"").unwrap();
        assert!(creating.contains("\"status\": \"CREATING\""), "{creating}");
        let body = creating.split_once("\r\n\r\n").unwrap().1;
        let length = format!("content-length: {}\r\n", body.len());
        assert!(creating.to_lowercase().contains(&length), "the length follows the body: {creating}");

        proxy.faults().reset_next(1, Match::any().method("PUT"), 64 * 1024);
        let reset = send(&proxy, "PUT", "/b/k?partNumber=2&uploadId=u", &big);
        // The client sees the reset on write, on read, or (when the RST races its last
        // write) as an early end: in no case an answer.
        match reset {
            Ok(answer) => assert_eq!(answer, "", "no answer"),
            Err(e) => {
                assert!(matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe), "{e}")
            }
        }

        let sts = b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A2%3Arole%2Fr";
        proxy.faults().fail_next(1, Match::any().body("Action=AssumeRole&"), AwsError::throttling());
        let throttled = send(&proxy, "POST", "/", sts).unwrap();
        assert!(throttled.starts_with("HTTP/1.1 400") && throttled.contains("Throttling"), "{throttled}");
        let assumed = send(&proxy, "POST", "/", sts).unwrap();
        assert!(assumed.contains(&format!("\"received\": {}", sts.len())), "a read body is forwarded: {assumed}");
        assert_eq!((proxy.faults().fired(), proxy.faults().requests()), (4, 6));
    }
}
