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
    if context.starts_with("s3://") {
        let (bucket, key) = s3_location(context)?;
        return s3(&bucket, &key, pod).await;
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
        let endpoint = crate::forward_proxy::cluster_network_url(endpoint);
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
    let address = crate::forward_proxy::resolve(&host);
    let tcp = tokio::net::TcpStream::connect((address, port)).await.map_err(|e| format!("Get \"{url}\": {e}"))?;
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

/// Unpacks a gzip'd tar (concatenated gzip members included) into `dir`; with
/// `leave_archive`, from `dir/context.tar.gz`, which stays (as kaniko's s3 fetcher leaves it).
pub async fn unpack(bytes: &[u8], dir: &Path, leave_archive: bool) -> Result<(), String> {
    let file = if leave_archive { dir.join("context.tar.gz") } else { dir.with_extension("tar.gz") };
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
    if !leave_archive {
        let _ = tokio::fs::remove_file(&file).await;
    }
    if !out.status.success() {
        return Err(format!("unpacking the build context: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// kaniko's `bucket.GetNameAndFilepathFromURI` (pkg/util/bucket, v1.28.3): Go's `url.Parse`
/// of the context, the bucket is the host, the key the path without its first `/` (or
/// `context.tar.gz` when empty). So `#` starts a fragment and `?` a query, both cut off,
/// and `%XX` is decoded in the key (a bad escape is url.Parse's error).
pub fn s3_location(context: &str) -> Result<(String, String), String> {
    let parse_error = |why: String| format!("getting bucketname and filepath from context: parse {context:?}: {why}");
    if context.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(parse_error("net/url: invalid control character in URL".into()));
    }
    let (url, fragment) = context.split_once('#').map_or((context, None), |(u, f)| (u, Some(f)));
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let bucket = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let key = percent_decode(path).map_err(parse_error)?;
    if let Some(fragment) = fragment {
        percent_decode(fragment).map_err(parse_error)?;
    }
    let key = key.strip_prefix('/').unwrap_or(&key);
    let key = if key.is_empty() { "context.tar.gz" } else { key };
    Ok((bucket.to_string(), key.to_string()))
}

/// Go's `url.unescape` of a path: `%XX` becomes its byte; `+` stays.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok().filter(|_| h.bytes().all(|b| b.is_ascii_hexdigit()))) {
            Some(byte) => out.push(byte),
            None => {
                let bad: String = text[i..].chars().take(3).collect();
                return Err(format!("invalid URL escape {bad:?}"));
            }
        }
        i += 3;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Whether kaniko leaves the downloaded archive in the context folder: its s3 fetcher
/// writes `context.tar.gz` there and never deletes it (pkg/buildcontext/s3.go); the https
/// fetcher deletes it after unpacking, and stdin is unpacked as a stream.
pub fn archive_left_behind(context: &str) -> bool {
    context.starts_with("s3://")
}

/// kaniko's context after `--context-sub-path`: `filepath.Join(BuildContextDir, sub)`,
/// which must exist (`os.Stat`).
pub fn sub_path(context_dir: &Path, sub: &str) -> Result<std::path::PathBuf, String> {
    let mut root = context_dir.to_path_buf();
    for part in sub.split('/') {
        match part {
            "" | "." => {}
            ".." if root != context_dir => {
                root.pop();
            }
            ".." => return Err(format!("the world does not simulate a context sub path above the context ({sub})")),
            part => root.push(part),
        }
    }
    if !root.exists() {
        let shown = std::path::Path::new("/kaniko/buildcontext").join(root.strip_prefix(context_dir).unwrap_or(&root));
        return Err(format!("stat {}: no such file or directory", shown.display()));
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_contexts_are_urls_as_go_parses_them() {
        let at = |c: &str| s3_location(c).map(|(b, k)| format!("{b} {k}"));
        assert_eq!(at("s3://b/k/ctx.tar.gz"), Ok("b k/ctx.tar.gz".into()));
        assert_eq!(at("s3://b/a?b/ctx.tar.gz"), Ok("b a".into()), "a query ends the key");
        assert_eq!(at("s3://b/a#b/ctx.tar.gz"), Ok("b a".into()), "a fragment ends the key");
        assert_eq!(at("s3://b/a%41b+c/x"), Ok("b aAb+c/x".into()), "escapes are decoded, + stays");
        assert_eq!(at("s3://b"), Ok("b context.tar.gz".into()));
        assert_eq!(at("s3://b/"), Ok("b context.tar.gz".into()));
        let bad = at("s3://b/a%zz/x").unwrap_err();
        assert!(bad.ends_with("parse \"s3://b/a%zz/x\": invalid URL escape \"%zz\""), "{bad}");
        assert!(at("s3://b/a%4").unwrap_err().contains("invalid URL escape \"%4\""));
    }
}
