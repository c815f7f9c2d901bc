//! Fetching a build context the way kaniko does (pkg/buildcontext): `s3://bucket/key` with
//! the pod's `AWS_REGION`, `S3_ENDPOINT`, `S3_FORCE_PATH_STYLE` and the identity of its
//! service account, a plain GET for `https://` that must answer 200, or `tar://stdin`;
//! other prefixes are refused as kaniko refuses them.
//! The result is a gzip'd tar (possibly multi-member), unpacked with GNU tar.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

/// Static or assumed AWS credentials for the pod.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Session token of assumed credentials.
    pub session_token: Option<String>,
}

/// What the context fetcher knows about the pod.
pub struct PodAws<'a> {
    /// The container's environment (`value` entries).
    pub env: &'a HashMap<String, String>,
    /// `eks.amazonaws.com/role-arn` of the pod's service account.
    pub role_arn: Option<String>,
    /// The world's STS (moto), standing in for the regional STS endpoint.
    pub sts_endpoint: Option<String>,
}

/// Fetches the context's bytes.
pub async fn fetch(context: &str, pod: &PodAws<'_>, stdin: Option<mpsc::Receiver<Bytes>>) -> Result<Vec<u8>, String> {
    if let Some(rest) = context.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').ok_or_else(|| format!("invalid S3 context {context}"))?;
        return s3(bucket, key, pod).await;
    }
    // kaniko's pkg/buildcontext GetBuildContext knows these prefixes only (v1.28.3).
    if !["gs://", "dir://", "tar://", "s3://", "git://", "https://"].iter().any(|p| context.starts_with(p)) {
        return Err("unknown build context prefix provided, please use one of the following: \
                    gs://, dir://, tar://, s3://, git://, https://"
            .into());
    }
    if context.starts_with("https://") {
        return http_get(context).await;
    }
    if context == "tar://stdin" {
        let Some(mut stdin) = stdin else {
            return Err("getting build context: no stdin: the container needs stdin: true".into());
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = stdin.recv().await {
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err("unexpected EOF".into());
        }
        return Ok(bytes);
    }
    Err(format!("unsupported build context {context}: this world serves s3://, http(s):// and tar://stdin"))
}

async fn credentials(pod: &PodAws<'_>, region: &str) -> Result<Credentials, String> {
    if let (Some(role), Some(sts)) = (&pod.role_arn, &pod.sts_endpoint) {
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new(region.to_string()))
            .endpoint_url(sts)
            .build();
        let out = aws_sdk_sts::Client::from_conf(config)
            .assume_role_with_web_identity()
            .role_arn(role)
            .role_session_name("kaniko")
            .web_identity_token("eyJhbGciOiJSUzI1NiJ9.e30.world")
            .send()
            .await
            .map_err(|e| format!("WebIdentityErr: failed to retrieve credentials: {}", aws_error(&e)))?;
        let c = out.credentials().ok_or("WebIdentityErr: no credentials in the answer")?;
        return Ok(Credentials {
            access_key: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            session_token: Some(c.session_token().to_string()),
        });
    }
    match (pod.env.get("AWS_ACCESS_KEY_ID"), pod.env.get("AWS_SECRET_ACCESS_KEY")) {
        (Some(a), Some(s)) => Ok(Credentials {
            access_key: a.clone(),
            secret_key: s.clone(),
            session_token: pod.env.get("AWS_SESSION_TOKEN").cloned(),
        }),
        _ => Err("failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: \
                  GetMetadata, request canceled, context deadline exceeded"
            .into()),
    }
}

fn aws_error<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn s3(bucket: &str, key: &str, pod: &PodAws<'_>) -> Result<Vec<u8>, String> {
    let region = pod.env.get("AWS_REGION").or_else(|| pod.env.get("AWS_DEFAULT_REGION")).cloned().unwrap_or_default();
    if region.is_empty() {
        return Err("operation error S3: GetObject, failed to resolve service endpoint, an AWS region is required, \
                    but was not found"
            .into());
    }
    let creds = credentials(pod, &region).await?;
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.clone()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            creds.access_key,
            creds.secret_key,
            creds.session_token,
            None,
            "kaniko",
        ));
    // kaniko's quirk: path style only applies when S3_ENDPOINT is set.
    if let Some(endpoint) = pod.env.get("S3_ENDPOINT").filter(|e| !e.is_empty()) {
        let path_style = pod.env.get("S3_FORCE_PATH_STYLE").is_some_and(|v| v == "true");
        config = config.endpoint_url(endpoint).force_path_style(path_style);
    }
    let client = aws_sdk_s3::Client::from_conf(config.build());
    // S3 answers a client of another region with a redirect that kaniko's SDK does not follow.
    if let Ok(head) = client.head_bucket().bucket(bucket).send().await
        && let Some(home) = head.bucket_region().filter(|home| *home != region)
    {
        return Err(format!(
            "operation error S3: GetObject, https response error StatusCode: 301, api error PermanentRedirect: \
             The bucket you are attempting to access must be addressed using the specified endpoint. Please send \
             all future requests to this endpoint. (the bucket is in {home}, AWS_REGION is {region})"
        ));
    }
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("operation error S3: GetObject, {}", aws_error(&e)))?;
    let body = object.body.collect().await.map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?;
    Ok(body.into_bytes().to_vec())
}

/// Certificates the executor image's CA bundle holds besides the system's: the worlds'
/// own CAs, as a real image holds the public roots real S3 is signed by.
static IMAGE_ROOTS: std::sync::Mutex<Vec<rustls::pki_types::CertificateDer<'static>>> =
    std::sync::Mutex::new(Vec::new());

/// Adds a PEM certificate to the executor image's CA bundle.
pub fn add_image_root(pem: &str) {
    use rustls::pki_types::pem::PemObject as _;
    if let Ok(cert) = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()) {
        IMAGE_ROOTS.lock().unwrap_or_else(|e| e.into_inner()).push(cert);
    }
}

fn image_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    IMAGE_ROOTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A plain GET that must answer 200.
pub async fn http_get(url: &str) -> Result<Vec<u8>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid context URL {url}: {e}"))?;
    let host = parsed.host_str().ok_or_else(|| format!("no host in {url}"))?.to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("Get \"{url}\": {e}"))?;
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = if parsed.scheme() == "https" {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs.into_iter().chain(image_roots()) {
            let _ = roots.add(cert);
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        send(TokioIo::new(tls), request).await?
    } else {
        send(TokioIo::new(tcp), request).await?
    };
    let (parts, body) = response.into_parts();
    if parts.status != 200 {
        return Err(format!("HTTPError: Unable to download file, status code: {}", parts.status.as_u16()));
    }
    Ok(body.collect().await.map_err(|e| format!("Get \"{url}\": {e}"))?.to_bytes().to_vec())
}

async fn send<T>(
    io: TokioIo<T>,
    request: hyper::Request<http_body_util::Empty<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // The connection ends when the response has been read.
        let _ = conn.await;
    });
    sender.send_request(request).await.map_err(|e| e.to_string())
}

/// Unpacks a gzip'd tar (concatenated gzip members included) into `dir`.
pub async fn unpack(bytes: &[u8], dir: &Path) -> Result<(), String> {
    let file = dir.with_extension("tar.gz");
    tokio::fs::create_dir_all(dir).await.map_err(|e| e.to_string())?;
    tokio::fs::write(&file, bytes).await.map_err(|e| e.to_string())?;
    let out = tokio::process::Command::new("tar")
        .args(["--no-same-owner", "-xzf"])
        .arg(&file)
        .arg("-C")
        .arg(dir)
        .output()
        .await
        .map_err(|e| format!("failed to run tar: {e}"))?;
    let _ = tokio::fs::remove_file(&file).await;
    if !out.status.success() {
        return Err(format!("unpacking the build context: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}
