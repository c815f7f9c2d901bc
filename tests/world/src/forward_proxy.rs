//! A forward HTTP proxy, as a corporate network puts in front of its agents: clients open
//! tunnels with `CONNECT host:port` (RFC 9110 §9.3.6), optionally authenticated with
//! `Proxy-Authorization: Basic …` (a missing or wrong one gets `407` with
//! `Proxy-Authenticate: Basic`), and the proxy counts the tunnels per target host.
//!
//! Names under [`PROXIED_DOMAIN`] (`moto.proxied.invalid`, `cluster.proxied.invalid`) resolve
//! to 127.0.0.1 inside the proxy only: `.invalid` never resolves anywhere else (RFC 6761
//! §6.4), so a client that ignores the proxy cannot reach a service addressed by such a
//! name. The world's certificates name `*.proxied.invalid` (see [`crate::tls`]). Other
//! hosts are resolved as usual and connected directly.
//!
//! Only `CONNECT` is served; a request in absolute form (`GET http://…`, plain HTTP through
//! the proxy) is answered `405`, which every client under test avoids (all of the world's
//! services speak HTTPS).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

/// The domain whose names only the proxy resolves.
pub const PROXIED_DOMAIN: &str = "proxied.invalid";

/// The largest request head the proxy reads.
const HEAD_LIMIT: usize = 16 * 1024;

/// What went through a proxy.
#[derive(Debug, Default, Clone)]
struct Counts {
    /// Tunnels opened, per target host (lower case, without port).
    tunnels: BTreeMap<String, usize>,
    /// Tunnels opened, per `host:port`.
    addresses: BTreeMap<String, usize>,
    /// Requests refused with 407.
    refused: usize,
}

/// A running forward proxy; it stops when dropped.
pub struct ForwardProxy {
    port: u16,
    counts: Arc<Mutex<Counts>>,
    stop: CancellationToken,
}

impl ForwardProxy {
    /// Starts a proxy on a loopback port of `runtime`, requiring `credentials`
    /// (user, password) when given.
    pub fn start(runtime: &tokio::runtime::Handle, credentials: Option<(&str, &str)>) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let expected = credentials.map(|(user, password)| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        });
        let counts = Arc::new(Mutex::new(Counts::default()));
        let stop = CancellationToken::new();
        runtime.spawn(serve(listener, expected, counts.clone(), stop.clone()));
        Ok(Self { port, counts, stop })
    }

    /// The proxy's URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Tunnels opened to `host` so far.
    pub fn tunnels_to(&self, host: &str) -> usize {
        self.lock().tunnels.get(&host.to_ascii_lowercase()).copied().unwrap_or(0)
    }

    /// Tunnels opened to `host:port` so far (services of the world share 127.0.0.1).
    pub fn tunnels_to_address(&self, address: &str) -> usize {
        self.lock().addresses.get(&address.to_ascii_lowercase()).copied().unwrap_or(0)
    }

    /// Tunnels opened so far, per target host.
    pub fn tunnels(&self) -> BTreeMap<String, usize> {
        self.lock().tunnels.clone()
    }

    /// Requests refused for missing or wrong credentials.
    pub fn refused(&self) -> usize {
        self.lock().refused
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `url` with its host replaced by `name.proxied.invalid` (`https://127.0.0.1:8443` →
/// `https://moto.proxied.invalid:8443`): the same service, reachable through the proxy only.
pub fn proxied_url(url: &str, name: &str) -> String {
    let proxied = format!("{name}.{PROXIED_DOMAIN}");
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let port = authority.rsplit_once(':').map(|(_, p)| format!(":{p}")).unwrap_or_default();
            format!("{scheme}://{proxied}{port}{path}")
        }
        None => url.to_string(),
    }
}

/// `url` with a proxied name's host back on 127.0.0.1: how the cluster's own network
/// reaches the service. The world's kaniko (a build pod) uses it, as a pod reaches S3 over
/// the cluster's network (a VPC endpoint, a NAT), never through the agent's proxy.
pub fn cluster_network_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else { return url.to_string() };
    let host = parsed.host_str().unwrap_or_default().to_string();
    if resolve(&host) != host {
        let _ = parsed.set_host(Some(resolve(&host)));
    }
    parsed.to_string().trim_end_matches('/').to_string()
}

/// Where a target host is found: proxied names on loopback, others as they resolve.
pub fn resolve(host: &str) -> &str {
    if host.ends_with(&format!(".{PROXIED_DOMAIN}")) { "127.0.0.1" } else { host }
}

async fn serve(
    listener: tokio::net::TcpListener,
    expected: Option<String>,
    counts: Arc<Mutex<Counts>>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((client, _)) = accepted else { continue };
        let (expected, counts, stop) = (expected.clone(), counts.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                // A client that goes away or sends garbage has nothing to tunnel.
                _ = tunnel(client, expected.as_deref(), &counts) => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

async fn tunnel(
    mut client: tokio::net::TcpStream,
    expected: Option<&str>,
    counts: &Mutex<Counts>,
) -> std::io::Result<()> {
    let head = read_head(&mut client).await?;
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (request.next().unwrap_or_default(), request.next().unwrap_or_default());
    if method != "CONNECT" {
        return answer(&mut client, "405 Method Not Allowed", "Allow: CONNECT\r\n").await;
    }
    let authorization = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, value)| value.trim());
    if let Some(expected) = expected
        && authorization != Some(expected)
    {
        counts.lock().unwrap_or_else(|e| e.into_inner()).refused += 1;
        return answer(
            &mut client,
            "407 Proxy Authentication Required",
            "Proxy-Authenticate: Basic realm=\"world\"\r\n",
        )
        .await;
    }
    let Some((host, port)) = target.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?))) else {
        return answer(&mut client, "400 Bad Request", "").await;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let Ok(mut upstream) = tokio::net::TcpStream::connect((resolve(&host), port)).await else {
        return answer(&mut client, "502 Bad Gateway", "").await;
    };
    {
        let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.addresses.entry(format!("{host}:{port}")).or_default() += 1;
        *counts.tunnels.entry(host).or_default() += 1;
    }
    client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await.map(drop)
}

/// Reads up to the end of the request head (the client sends nothing more before 200).
async fn read_head(client: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= HEAD_LIMIT || client.read(&mut byte).await? == 0 {
            return Err(std::io::Error::other("no complete request head"));
        }
        head.push(byte[0]);
    }
    Ok(head)
}

async fn answer(client: &mut tokio::net::TcpStream, status: &str, headers: &str) -> std::io::Result<()> {
    client
        .write_all(format!("HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_urls_keep_scheme_port_and_path() {
        assert_eq!(proxied_url("https://127.0.0.1:8443", "moto"), "https://moto.proxied.invalid:8443");
        assert_eq!(proxied_url("https://127.0.0.1:1/a/b", "cluster"), "https://cluster.proxied.invalid:1/a/b");
        assert_eq!(cluster_network_url("https://moto.proxied.invalid:8443"), "https://127.0.0.1:8443");
        assert_eq!(cluster_network_url("https://s3.amazonaws.com"), "https://s3.amazonaws.com");
    }

    #[test]
    fn tunnels_are_counted_and_credentials_checked() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = target.local_addr().unwrap().port();
        let proxy = ForwardProxy::start(runtime.handle(), Some(("u", "p"))).unwrap();
        let ask = |auth: &str| {
            use std::io::{Read as _, Write as _};
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
            let request = format!("CONNECT x.proxied.invalid:{port} HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = [0u8; 64];
            let n = stream.read(&mut answer).unwrap();
            String::from_utf8_lossy(&answer[..n]).into_owned()
        };
        assert!(ask("").starts_with("HTTP/1.1 407"));
        assert!(ask("Proxy-Authorization: Basic dTp3cm9uZw==\r\n").starts_with("HTTP/1.1 407"));
        assert!(ask("Proxy-Authorization: Basic dTpw\r\n").starts_with("HTTP/1.1 200"));
        assert_eq!((proxy.tunnels_to("X.proxied.invalid"), proxy.refused()), (1, 2));
        assert_eq!(proxy.tunnels_to_address(&format!("x.proxied.invalid:{port}")), 1);
    }
}
