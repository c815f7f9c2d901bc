//! EKS authentication: bearer tokens `k8s-aws-v1.<base64url presigned STS GetCallerIdentity
//! URL>` checked the way EKS (aws-iam-authenticator) checks them — the STS host, only
//! allowlisted query keys, `x-k8s-aws-id` among the signed headers, a signature made for
//! this cluster's name, a date younger than the token time-to-live — then the URL is called
//! against moto's STS and the caller's ARN (an assumed role mapped to its role ARN) is looked
//! up in the cluster's access-entry table. Anything else is not an EKS user (401).
//!
//! moto does not check signatures, so this module checks them itself: static keys are
//! signed with the world's secret `testing`, assumed-role keys with the secret moto handed
//! out (the launcher records them in a file).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::auth::{Authenticator, UserInfo};

/// The prefix of EKS bearer tokens.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The secret of the world's static AWS keys.
pub const STATIC_SECRET: &str = "testing";
/// How long EKS accepts a token by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

const ALLOWED_KEYS: &[&str] = &[
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
];

/// An access entry: who a principal is inside the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// User name (`{{SessionName}}` is replaced by the role session's name).
    pub username: String,
    /// Kubernetes groups.
    pub groups: Vec<String>,
}

/// The EKS token authenticator of one cluster.
pub struct EksAuthenticator {
    sts_host: String,
    /// Other hosts a token may be presigned for (proxies in front of moto's STS).
    sts_aliases: RwLock<Vec<String>>,
    cluster_name: String,
    credentials_file: PathBuf,
    entries: RwLock<HashMap<String, AccessEntry>>,
    ttl: RwLock<Duration>,
    /// Verified tokens: token → (caller ARN, signing time).
    verified: Mutex<HashMap<String, (String, SystemTime)>>,
}

impl EksAuthenticator {
    /// An authenticator for `cluster_name` trusting the STS at `sts_host` (`127.0.0.1:PORT`).
    pub fn new(sts_host: &str, cluster_name: &str, credentials_file: PathBuf) -> Self {
        Self {
            sts_host: sts_host.into(),
            sts_aliases: RwLock::default(),
            cluster_name: cluster_name.into(),
            credentials_file,
            entries: RwLock::default(),
            ttl: RwLock::new(DEFAULT_TTL),
            verified: Mutex::default(),
        }
    }

    /// Maps an IAM principal (user or role ARN) to a Kubernetes user and groups.
    pub fn add_access_entry(&self, principal_arn: &str, username: &str, groups: &[&str]) {
        let entry = AccessEntry { username: username.into(), groups: groups.iter().map(|g| g.to_string()).collect() };
        self.entries.write().unwrap_or_else(|e| e.into_inner()).insert(principal_arn.into(), entry);
    }

    /// Removes an access entry.
    pub fn remove_access_entry(&self, principal_arn: &str) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).remove(principal_arn);
    }

    /// Also accepts tokens presigned for `host` (`127.0.0.1:PORT`), a proxy in front of
    /// the same STS; they are still checked against moto's STS.
    pub fn trust_sts_host(&self, host: &str) {
        let mut aliases = self.sts_aliases.write().unwrap_or_else(|e| e.into_inner());
        if !aliases.iter().any(|a| a == host) {
            aliases.push(host.into());
        }
    }

    /// Tokens older than `ttl` are expired (EKS: 15 minutes).
    pub fn set_token_ttl(&self, ttl: Duration) {
        *self.ttl.write().unwrap_or_else(|e| e.into_inner()) = ttl;
    }

    fn ttl(&self) -> Duration {
        *self.ttl.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a token; the caller's ARN and the signing time, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<(String, SystemTime), String> {
        let cached = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned();
        let (arn, signed) = match cached {
            Some(found) => found,
            None => {
                let found = self.verify_uncached(token)?;
                self.verified.lock().unwrap_or_else(|e| e.into_inner()).insert(token.into(), found.clone());
                found
            }
        };
        let age = SystemTime::now().duration_since(signed).unwrap_or_default();
        if age > self.ttl() {
            return Err(format!("token expired: signed {}s ago", age.as_secs()));
        }
        Ok((arn, signed))
    }

    fn verify_uncached(&self, token: &str) -> Result<(String, SystemTime), String> {
        let encoded = token.strip_prefix(TOKEN_PREFIX).ok_or("not an EKS token")?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|e| format!("token is not base64url: {e}"))?;
        let text = String::from_utf8(bytes).map_err(|_| "token is not UTF-8")?;
        let url = url::Url::parse(&text).map_err(|e| format!("token is not a URL: {e}"))?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let alias = || self.sts_aliases.read().unwrap_or_else(|e| e.into_inner()).contains(&host);
        if host != self.sts_host && !alias() {
            return Err(format!("unexpected STS host {host}"));
        }
        if url.path() != "/" {
            return Err(format!("unexpected path {}", url.path()));
        }
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let mut query: HashMap<String, String> = HashMap::new();
        for (k, v) in &pairs {
            if !ALLOWED_KEYS.contains(&k.to_lowercase().as_str()) {
                return Err(format!("non-allowlisted query parameter {k}"));
            }
            if query.insert(k.to_lowercase(), v.clone()).is_some() {
                return Err(format!("duplicate query parameter {k}"));
            }
        }
        let get = |k: &str| query.get(k).cloned().ok_or_else(|| format!("missing {k}"));
        if get("action")? != "GetCallerIdentity" {
            return Err("unexpected action".into());
        }
        let signed_headers = get("x-amz-signedheaders")?;
        if !signed_headers.split(';').any(|h| h == "x-k8s-aws-id") {
            return Err("x-k8s-aws-id is not signed".into());
        }
        let date = get("x-amz-date")?;
        let signed = parse_amz_date(&date).ok_or("invalid X-Amz-Date")?;
        let expires: u64 = get("x-amz-expires")?.parse().map_err(|_| "invalid X-Amz-Expires")?;
        if expires > 900 {
            return Err("X-Amz-Expires longer than 15 minutes".into());
        }
        if signed > SystemTime::now() + Duration::from_secs(300) {
            return Err("X-Amz-Date is in the future".into());
        }
        let credential = get("x-amz-credential")?;
        let access_key = credential.split('/').next().unwrap_or_default();
        let secret = self.secret_of(access_key);
        let unsigned: Vec<(String, String)> =
            pairs.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("x-amz-signature")).cloned().collect();
        let mut headers = Vec::new();
        for name in signed_headers.split(';') {
            match name {
                "host" => headers.push(("host".to_string(), host.clone())),
                "x-k8s-aws-id" => headers.push((name.to_string(), self.cluster_name.clone())),
                other => return Err(format!("unexpected signed header {other}")),
            }
        }
        let given = get("x-amz-signature")?;
        let scope = credential.split_once('/').map(|(_, s)| s).unwrap_or_default();
        let matches = [EMPTY_SHA256, "UNSIGNED-PAYLOAD"]
            .iter()
            .any(|payload| signature(&secret, &date, scope, &unsigned, &headers, payload) == given);
        if !matches {
            return Err("signature does not match (another cluster, or another secret)".into());
        }
        let arn = caller_arn(&self.sts_host, &url, &self.cluster_name)?;
        Ok((arn, signed))
    }

    fn secret_of(&self, access_key: &str) -> String {
        let recorded = std::fs::read_to_string(&self.credentials_file).unwrap_or_default();
        recorded
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(access_key).and_then(|r| r.strip_prefix(' ')).map(str::to_string))
            .unwrap_or_else(|| STATIC_SECRET.to_string())
    }

    fn user_of(&self, arn: &str) -> Option<UserInfo> {
        let principal = principal_of(arn);
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(&principal)?;
        let session = arn.rsplit('/').next().unwrap_or_default();
        let mut groups = entry.groups.clone();
        groups.push("system:authenticated".into());
        Some(UserInfo { username: entry.username.replace("{{SessionName}}", session), groups })
    }
}

impl Authenticator for EksAuthenticator {
    fn authenticate(&self, token: &str) -> Option<UserInfo> {
        if !token.starts_with(TOKEN_PREFIX) {
            return None;
        }
        let verify = || self.verify(token);
        let verified = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(verify)
            }
            _ => verify(),
        };
        match verified {
            Ok((arn, _)) => self.user_of(&arn),
            Err(reason) => {
                if std::env::var_os("AZP_KUBE_WORLD_LOG").is_some() {
                    eprintln!("world: EKS token refused: {reason}");
                }
                None
            }
        }
    }
}

/// `arn:aws:sts::ACCT:assumed-role/NAME/SESSION` → `arn:aws:iam::ACCT:role/NAME`; other ARNs
/// are principals themselves.
pub fn principal_of(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if let [partition_arn, partition, "sts", _, account, resource] = parts.as_slice()
        && let Some(rest) = resource.strip_prefix("assumed-role/")
    {
        let role = rest.split('/').next().unwrap_or_default();
        return format!("{partition_arn}:{partition}:iam::{account}:role/{role}");
    }
    arn.to_string()
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn uri_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// SigV4 signature of a presigned GET on `/` (query without the signature).
fn signature(
    secret: &str,
    amz_date: &str,
    scope: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    payload_hash: &str,
) -> String {
    let mut encoded: Vec<(String, String)> = query.iter().map(|(k, v)| (uri_encode(k), uri_encode(v))).collect();
    encoded.sort();
    let canonical_query: Vec<String> = encoded.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let canonical =
        format!("GET\n/\n{}\n{canonical_headers}\n{}\n{payload_hash}", canonical_query.join("&"), signed.join(";"));
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let mut parts = scope.split('/');
    let (day, region, service) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), day);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    let k_signing = hmac(&k_service, "aws4_request");
    hex(&hmac(&k_signing, &string_to_sign))
}

fn parse_amz_date(date: &str) -> Option<SystemTime> {
    let t: jiff::Timestamp = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", date)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp();
    let secs = u64::try_from(t.as_second()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Calls the presigned URL (with the `x-k8s-aws-id` header) and reads the caller's ARN.
fn caller_arn(host: &str, url: &url::Url, cluster: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(host).map_err(|e| format!("STS unreachable: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let target = match url.query() {
        Some(q) => format!("/?{q}"),
        None => "/".into(),
    };
    // moto's server picks the service from an Authorization header's credential scope only
    // (never from a presigned query), so the query's signature is repeated as a header.
    let param = |k: &str| url.query_pairs().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.into_owned());
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}, SignedHeaders={}, Signature={}",
        param("X-Amz-Credential").unwrap_or_default(),
        param("X-Amz-SignedHeaders").unwrap_or_default(),
        param("X-Amz-Signature").unwrap_or_default()
    );
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nx-k8s-aws-id: {cluster}\r\nAuthorization: {authorization}\r\n\
         Accept: application/xml\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    if response.split(' ').nth(1) != Some("200") {
        return Err(format!("STS answered: {}", response.lines().next().unwrap_or_default()));
    }
    let start =
        response.find("<Arn>").ok_or_else(|| format!("no Arn in GetCallerIdentity: {response}"))? + "<Arn>".len();
    let end = response[start..].find("</Arn>").ok_or("no Arn in GetCallerIdentity")?;
    Ok(response[start..start + end].to_string())
}

/// AWS credentials to sign a token with.
#[derive(Debug, Clone)]
pub struct Keys<'a> {
    /// Access key id.
    pub access_key: &'a str,
    /// Secret access key.
    pub secret_key: &'a str,
    /// Session token (assumed roles).
    pub session_token: Option<&'a str>,
}

/// Makes an EKS token as `aws eks get-token` does: a GetCallerIdentity URL presigned for
/// `sts_host` (plain HTTP, moto) with `x-k8s-aws-id: cluster` signed and `X-Amz-Expires=60`.
pub fn token(keys: &Keys<'_>, region: &str, sts_host: &str, cluster: &str, at: SystemTime) -> String {
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let ts = jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or_default()).unwrap_or_default();
    let amz_date = ts.strftime("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{}/{region}/sts/aws4_request", &amz_date[..8]);
    let mut query: Vec<(String, String)> = vec![
        ("Action".into(), "GetCallerIdentity".into()),
        ("Version".into(), "2011-06-15".into()),
        ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
        ("X-Amz-Credential".into(), format!("{}/{scope}", keys.access_key)),
        ("X-Amz-Date".into(), amz_date.clone()),
        ("X-Amz-Expires".into(), "60".into()),
        ("X-Amz-SignedHeaders".into(), "host;x-k8s-aws-id".into()),
    ];
    if let Some(session) = keys.session_token {
        query.push(("X-Amz-Security-Token".into(), session.into()));
    }
    let headers = [("host".to_string(), sts_host.to_string()), ("x-k8s-aws-id".to_string(), cluster.to_string())];
    let sig = signature(keys.secret_key, &amz_date, &scope, &query, &headers, EMPTY_SHA256);
    query.push(("X-Amz-Signature".into(), sig));
    let q: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v))).collect();
    let url = format!("http://{sts_host}/?{}", q.join("&"));
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_roles_map_to_their_role() {
        assert_eq!(
            principal_of("arn:aws:sts::222222222222:assumed-role/deployer/azp-kube"),
            "arn:aws:iam::222222222222:role/deployer"
        );
        assert_eq!(principal_of("arn:aws:iam::1:user/moto"), "arn:aws:iam::1:user/moto");
    }

    #[test]
    fn tokens_sign_and_parse_dates() {
        let keys = Keys { access_key: "AKID", secret_key: "s", session_token: Some("tok") };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = token(&keys, "us-east-1", "127.0.0.1:1", "world", at);
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(parse_amz_date("20231114T221320Z"), Some(at));
    }
}
