//! The world's ECR registry: HTTPS (the world's certificate) and ECR's basic
//! authentication in front of the world's docker-registry, so that a client must log
//! in with a password from moto's `ecr:GetAuthorizationToken`.
//!
//! Real ECR answers an anonymous request with 401 and `WWW-Authenticate: Basic`, takes
//! user `AWS` and the password from the decoded `authorizationToken`, and authorises
//! each repository for the token's caller (its own account, or another account the
//! repository policy lets in: 403 `DENIED` otherwise). moto issues the password
//! `<account>-auth-token` for the caller's account (moto/ecr/responses.py
//! `get_authorization_token`, moto 5.x), so that is the password this front accepts,
//! and the account in it is the caller's. Repositories belong to the world's account
//! unless [`EcrAuth::create_repository`] says otherwise. Everything else (storage,
//! manifests, blobs) is the docker-registry's; `X-Forwarded-Proto` makes its upload
//! locations point back here.
//!
//! Unlike ECR (HTTPS only), the port also answers plain HTTP: helm 3 pulls from a
//! loopback registry over plain HTTP whatever it is told (its containerd resolver
//! treats localhost and 127.0.0.0/8 as plain-HTTP hosts), while helm 4 uses HTTPS.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// Who owns which repository, who may pull from it, and what was refused.
#[derive(Debug)]
pub struct EcrAuth {
    default_owner: String,
    /// Repository name → (owner account, other accounts its policy lets in).
    repositories: Mutex<BTreeMap<String, (String, BTreeSet<String>)>>,
    unauthenticated: AtomicUsize,
    denied: AtomicUsize,
}

/// What the front does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Pass it to the registry.
    Forward,
    /// 401: no ECR login, or one that moto did not issue.
    Unauthenticated,
    /// 403: a login of an account the repository does not let in.
    Denied { account: String, repository: String },
}

impl EcrAuth {
    /// Repositories not created otherwise belong to `default_owner`.
    pub fn new(default_owner: &str) -> Self {
        Self {
            default_owner: default_owner.into(),
            repositories: Mutex::default(),
            unauthenticated: AtomicUsize::new(0),
            denied: AtomicUsize::new(0),
        }
    }

    /// Makes `account` the owner of `repository` (`charts/web`), letting in `readers` too.
    pub fn create_repository(&self, account: &str, repository: &str, readers: &[&str]) {
        let readers = readers.iter().map(|r| r.to_string()).collect();
        let mut repositories = self.repositories.lock().unwrap_or_else(|e| e.into_inner());
        repositories.insert(repository.into(), (account.into(), readers));
    }

    /// Requests refused with 401 so far.
    pub fn unauthenticated(&self) -> usize {
        self.unauthenticated.load(Ordering::Relaxed)
    }

    /// Requests refused with 403 so far.
    pub fn denied(&self) -> usize {
        self.denied.load(Ordering::Relaxed)
    }

    /// Decides on a request for `path` with this `Authorization` header.
    pub fn decide(&self, path: &str, authorization: Option<&str>) -> Decision {
        let Some(account) = authorization.and_then(login_account) else {
            self.unauthenticated.fetch_add(1, Ordering::Relaxed);
            return Decision::Unauthenticated;
        };
        let Some(repository) = repository_of(path) else { return Decision::Forward };
        let repositories = self.repositories.lock().unwrap_or_else(|e| e.into_inner());
        let allowed = match repositories.get(repository) {
            Some((owner, readers)) => *owner == account || readers.contains(&account),
            None => account == self.default_owner,
        };
        if allowed {
            return Decision::Forward;
        }
        self.denied.fetch_add(1, Ordering::Relaxed);
        Decision::Denied { account, repository: repository.into() }
    }
}

/// The account of a login moto issued: `Basic base64("AWS:<12 digits>-auth-token")`.
fn login_account(authorization: &str) -> Option<String> {
    let encoded = authorization.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let password = decoded.strip_prefix("AWS:")?;
    let account = password.strip_suffix("-auth-token")?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then(|| account.to_string())
}

/// `charts/web` of `/v2/charts/web/manifests/1.0.0` (and of blobs, tags, uploads);
/// None for the version check `/v2/` and the catalogue.
fn repository_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    ["/manifests/", "/blobs/", "/tags/"].iter().filter_map(|marker| rest.find(marker)).min().map(|end| &rest[..end])
}

/// Serves the front on `listener` until `stop`, passing allowed requests to the
/// docker-registry on `127.0.0.1:backend`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    backend: u16,
    auth: Arc<EcrAuth>,
    stop: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(config);
    let host = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let (acceptor, auth, host) = (acceptor.clone(), auth.clone(), host.clone());
        tokio::spawn(async move {
            // A TLS handshake starts with 0x16; anything else is plain HTTP.
            let mut first = [0u8; 1];
            if !matches!(tcp.peek(&mut first).await, Ok(1)) {
                return;
            }
            if first[0] != 0x16 {
                return serve_connection(TokioIo::new(tcp), auth, host, backend, "http").await;
            }
            // A client that fails the handshake has nothing to ask.
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            serve_connection(TokioIo::new(tls), auth, host, backend, "https").await;
        });
    }
}

async fn serve_connection<I>(io: I, auth: Arc<EcrAuth>, host: String, backend: u16, scheme: &'static str)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let (auth, host) = (auth.clone(), host.clone());
        async move { Ok::<_, std::convert::Infallible>(answer(&auth, &host, backend, scheme, request).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
}

async fn answer(
    auth: &EcrAuth,
    host: &str,
    backend: u16,
    scheme: &'static str,
    mut request: Request<Incoming>,
) -> Response<Body> {
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match auth.decide(request.uri().path(), authorization) {
        Decision::Forward => {}
        Decision::Unauthenticated => {
            // ECR's challenge: a realm of the registry, service ecr.amazonaws.com.
            let challenge = format!("Basic realm=\"{scheme}://{host}/\",service=\"ecr.amazonaws.com\"");
            return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required", Some(challenge));
        }
        Decision::Denied { account, repository } => {
            let message =
                format!("User in account {account} is not authorized to perform: ecr:BatchGetImage on {repository}");
            return error(StatusCode::FORBIDDEN, "DENIED", &message, None);
        }
    }
    request.headers_mut().insert("x-forwarded-proto", header::HeaderValue::from_static(scheme));
    match forward(backend, request).await {
        Ok(response) => response.map(|body| body.map_err(|e| Box::new(e) as BoxError).boxed()),
        Err(e) => error(StatusCode::BAD_GATEWAY, "UNAVAILABLE", &e.to_string(), None),
    }
}

async fn forward(backend: u16, request: Request<Incoming>) -> Result<Response<Incoming>, BoxError> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        // Ends when the answer has been read (or the client went away).
        let _ = connection.await;
    });
    Ok(sender.send_request(request).await?)
}

/// A registry error document (distribution's `{"errors": [...]}`).
fn error(status: StatusCode, code: &str, message: &str, challenge: Option<String>) -> Response<Body> {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string();
    let mut response = Response::builder().status(status).header(header::CONTENT_TYPE, "application/json");
    if let Some(challenge) = challenge {
        response = response.header(header::WWW_AUTHENTICATE, challenge);
    }
    let body = Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed();
    response
        .body(body)
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).map_err(|never| match never {}).boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_password: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password))
    }

    #[test]
    fn only_moto_logins_get_in_and_only_to_repositories_that_let_their_account_in() {
        let auth = EcrAuth::new("123456789012");
        auth.create_repository("999999999999", "central/web", &["111111111111"]);
        let own = basic("AWS:123456789012-auth-token");
        let central = basic("AWS:999999999999-auth-token");
        let reader = basic("AWS:111111111111-auth-token");
        let path = "/v2/central/web/manifests/1.0.0";
        assert_eq!(auth.decide("/v2/", None), Decision::Unauthenticated);
        assert_eq!(auth.decide(path, Some(&basic("AWS:guess"))), Decision::Unauthenticated);
        assert_eq!(auth.decide(path, Some(&basic("bob:123456789012-auth-token"))), Decision::Unauthenticated);
        assert_eq!(auth.decide("/v2/", Some(&own)), Decision::Forward, "a login to the registry itself");
        let denied = Decision::Denied { account: "123456789012".into(), repository: "central/web".into() };
        assert_eq!(auth.decide(path, Some(&own)), denied);
        assert_eq!(auth.decide(path, Some(&central)), Decision::Forward);
        assert_eq!(auth.decide("/v2/central/web/blobs/sha256:ab", Some(&reader)), Decision::Forward);
        assert_eq!(auth.decide("/v2/charts/web/tags/list", Some(&own)), Decision::Forward, "the world's own");
        assert_eq!(
            auth.decide("/v2/charts/web/blobs/uploads/", Some(&central)).clone(),
            Decision::Denied { account: "999999999999".into(), repository: "charts/web".into() }
        );
        assert_eq!((auth.unauthenticated(), auth.denied()), (3, 2));
    }
}
