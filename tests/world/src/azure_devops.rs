//! Azure DevOps as a workload identity issuer: the job's OIDC token endpoint
//! (`System.OidcRequestUri`, the distributed-task `oidctoken` API) on a loopback port.
//!
//! A `POST …/oidctoken?serviceConnectionId=<id>` with the job's access token as bearer gets
//! `{"oidcToken": "<JWT>"}`: RS256, issuer `https://vstoken.dev.azure.com/<organisation id>`,
//! subject `sc://<organisation>/<project>/<connection name>`, audience
//! `api://AzureADTokenExchange`. A missing or unknown (or expired) job token is refused with
//! 401, an unknown connection with 400. [`crate::web_identity`] checks the tokens where STS
//! would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

/// The audience Azure DevOps puts in every service connection's ID token.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
/// The organisation, project and the ids the world's job runs under.
pub const ORGANISATION: &str = "world-org";
pub const PROJECT: &str = "deploys";
const ORGANISATION_ID: &str = "5b0d4c8e-1f2a-4e3b-9c7d-6a5f4e3d2c1b";
const PROJECT_ID: &str = "8e7d6c5b-4a3f-4e2d-9c1b-0a9f8e7d6c5b";
const PLAN_ID: &str = "2f1e0d9c-8b7a-4f6e-9d5c-4b3a2f1e0d9c";
const JOB_ID: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

/// How long an ID token lives unless a test says otherwise.
const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(600);

/// The signing key and what the endpoint knows.
struct Issuer {
    key: KeyPair,
    public_key: Vec<u8>,
    /// Job access token → when it stops being accepted.
    job_tokens: Mutex<HashMap<String, SystemTime>>,
    /// Service connection id → name.
    connections: Mutex<HashMap<String, String>>,
    lifetime: Mutex<Duration>,
    issued: AtomicU64,
}

/// A public key that verifies the world's ID tokens, and the issuer they name.
#[derive(Clone)]
pub struct IssuerKey {
    issuer: String,
    public_key: Vec<u8>,
}

impl IssuerKey {
    /// The `iss` claim (`https://vstoken.dev.azure.com/<organisation id>`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether `signature` is this issuer's over `message` (RS256).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.public_key).verify(message, signature).is_ok()
    }
}

/// The running endpoint; stopped when dropped.
pub struct AzureDevOps {
    port: u16,
    issuer: Arc<Issuer>,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl AzureDevOps {
    /// Starts the endpoint on a free loopback port with a new RSA key.
    pub fn start() -> std::io::Result<Self> {
        let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| std::io::Error::other("RSA key generation"))?;
        let public_key = aws_lc_rs::signature::KeyPair::public_key(&key).as_ref().to_vec();
        let issuer = Arc::new(Issuer {
            key,
            public_key,
            job_tokens: Mutex::default(),
            connections: Mutex::default(),
            lifetime: Mutex::new(ID_TOKEN_LIFETIME),
            issued: AtomicU64::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = CancellationToken::new();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = {
            let (issuer, stop) = (issuer.clone(), stop.clone());
            std::thread::Builder::new()
                .name("azure-devops".into())
                .spawn(move || runtime.block_on(serve(listener, issuer, stop)))?
        };
        Ok(Self { port, issuer, stop, thread: Some(thread) })
    }

    /// The `iss` of the tokens, and the key that verifies them.
    pub fn issuer_key(&self) -> IssuerKey {
        IssuerKey { issuer: issuer(), public_key: self.issuer.public_key.clone() }
    }

    /// The `sub` of a connection's tokens: `sc://<organisation>/<project>/<connection name>`.
    pub fn subject(connection_name: &str) -> String {
        format!("sc://{ORGANISATION}/{PROJECT}/{connection_name}")
    }

    /// Registers a service connection; returns its id.
    pub fn add_connection(&self, name: &str) -> String {
        let id = format!("{}-0000-4000-8000-{:012x}", &hex_id()[..8], rand::random::<u64>() & 0xffff_ffff_ffff);
        lock(&self.issuer.connections).insert(id.clone(), name.into());
        id
    }

    /// A new job access token, accepted for `lifetime`.
    pub fn job_token(&self, lifetime: Duration) -> String {
        let token = format!("azdo-job-{}", hex_id());
        lock(&self.issuer.job_tokens).insert(token.clone(), SystemTime::now() + lifetime);
        token
    }

    /// The job's `System.OidcRequestUri`.
    pub fn oidc_request_uri(&self) -> String {
        format!(
            "http://127.0.0.1:{}/{ORGANISATION}/{PROJECT_ID}/_apis/distributedtask/hubs/build/plans/{PLAN_ID}/jobs/{JOB_ID}/oidctoken",
            self.port
        )
    }

    /// The agent's variables for a job of this organisation (`SYSTEM_OIDCREQUESTURI`, …)
    /// with `job_token` as the `SystemVssConnection` access token.
    pub fn job_env(&self, job_token: &str) -> Vec<(String, String)> {
        [
            ("SYSTEM_OIDCREQUESTURI", self.oidc_request_uri()),
            ("SYSTEM_COLLECTIONURI", format!("http://127.0.0.1:{}/{ORGANISATION}/", self.port)),
            ("SYSTEM_TEAMPROJECTID", PROJECT_ID.into()),
            ("SYSTEM_TEAMPROJECT", PROJECT.into()),
            ("SYSTEM_HOSTTYPE", "build".into()),
            ("SYSTEM_PLANID", PLAN_ID.into()),
            ("SYSTEM_JOBID", JOB_ID.into()),
            (
                "ENDPOINT_AUTH_SYSTEMVSSCONNECTION",
                format!(r#"{{"parameters":{{"AccessToken":"{job_token}"}},"scheme":"OAuth"}}"#),
            ),
            ("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN", job_token.into()),
            ("ENDPOINT_AUTH_SCHEME_SYSTEMVSSCONNECTION", "OAuth".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// ID tokens issued from now on live `lifetime`.
    pub fn set_id_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.issuer.lifetime) = lifetime;
    }

    /// How many ID tokens were issued.
    pub fn issued(&self) -> u64 {
        self.issuer.issued.load(Ordering::SeqCst)
    }
}

impl Drop for AzureDevOps {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            // A panicked endpoint thread has nothing left to stop.
            let _ = thread.join();
        }
    }
}

fn issuer() -> String {
    format!("https://vstoken.dev.azure.com/{ORGANISATION_ID}")
}

fn hex_id() -> String {
    format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn serve(listener: std::net::TcpListener, issuer: Arc<Issuer>, stop: CancellationToken) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let issuer = issuer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let issuer = issuer.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&issuer, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

fn answer(status: u16, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

fn refusal(status: u16, message: &str) -> Response<Full<Bytes>> {
    answer(status, serde_json::json!({ "message": message, "typeKey": "VssServiceException" }))
}

async fn handle(issuer: &Issuer, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    // The request is read whole: the client sends `{}`.
    let _ = body.collect().await;
    let expected_path = format!(
        "/{ORGANISATION}/{PROJECT_ID}/_apis/distributedtask/hubs/build/plans/{PLAN_ID}/jobs/{JOB_ID}/oidctoken"
    );
    if parts.method != hyper::Method::POST || parts.uri.path() != expected_path {
        return refusal(404, "no such API");
    }
    let bearer =
        parts.headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let valid_until = bearer.and_then(|token| lock(&issuer.job_tokens).get(token).copied());
    if valid_until.is_none_or(|until| until <= SystemTime::now()) {
        // As Azure DevOps refuses an unknown or expired job token.
        return refusal(401, "TF400813: The user '' is not authorized to access this resource.");
    }
    let query = parts.uri.query().unwrap_or_default();
    let connection_id = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("serviceConnectionId"))
        .map(|(_, v)| v.into_owned());
    let Some(name) = connection_id.and_then(|id| lock(&issuer.connections).get(&id).cloned()) else {
        return refusal(400, "the service connection does not exist or the pipeline is not authorised to use it");
    };
    let lifetime = *lock(&issuer.lifetime);
    let token = sign(issuer, &AzureDevOps::subject(&name), lifetime);
    issuer.issued.fetch_add(1, Ordering::SeqCst);
    answer(200, serde_json::json!({ "oidcToken": token }))
}

fn sign(signer: &Issuer, subject: &str, lifetime: Duration) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = serde_json::json!({ "typ": "JWT", "alg": "RS256", "kid": "world-1" });
    let claims = serde_json::json!({
        "jti": hex_id(),
        "sub": subject,
        "aud": AUDIENCE,
        "iss": issuer(),
        "nbf": now,
        "iat": now,
        "exp": now + lifetime.as_secs().max(1),
    });
    let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut signature = vec![0; signer.key.public_modulus_len()];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    // Signing with a key just generated cannot fail but for memory.
    let _ = signer.key.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature);
    format!("{signed}.{}", b64(&signature))
}
