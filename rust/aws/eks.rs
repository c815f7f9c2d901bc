//! EKS: describing a cluster (with the assumed identity) and making tokens
//! for it.
//!
//! A token is what `aws eks get-token` prints: `k8s-aws-v1.` and the base64url
//! (no padding) of a presigned STS `GetCallerIdentity` GET URL, signed with
//! the header `x-k8s-aws-id: <cluster>` and `X-Amz-Expires=60`. The SDK cannot
//! presign STS, so the URL is signed here with `aws-sigv4`.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;

use crate::azp::Env;

/// How long a token is trusted by the caller: the server accepts 15 minutes,
/// the AWS CLI says 14.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);
/// Test switch (debug builds only, see [`Env::test_switch`]): declares a
/// shorter token lifetime (seconds) so that clients ask for a new token sooner,
/// for test clusters that accept tokens for less than EKS's 15 minutes.
pub const TOKEN_LIFETIME_VAR: &str = "AZP_KUBE_EKS_TOKEN_LIFETIME_SECONDS";
/// The token's prefix.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// Test switch (debug builds only, see [`Env::test_switch`]): fixes the clock
/// of `eks-token` (RFC 3339, or seconds since the epoch).
pub const FIXED_TIME_VAR: &str = "AZP_KUBE_FIXED_TIME";

/// A step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot describe EKS cluster {cluster} in {region}")]
    Describe {
        cluster: String,
        region: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("EKS cluster {cluster} does not exist in {region} (as seen by {identity})")]
    NotFound { cluster: String, region: String, identity: String },
    #[error("EKS cluster {cluster} is {status}, not ACTIVE: wait until it is ready (or check that the name is right)")]
    NotActive { cluster: String, status: String },
    #[error("EKS cluster {cluster} has no {what} in its description")]
    Incomplete { cluster: String, what: &'static str },
    #[error("cannot sign the EKS token: {0}")]
    Sign(String),
    /// Only debug builds read the switch (and only they can name it).
    #[cfg(debug_assertions)]
    #[error("{FIXED_TIME_VAR}={0:?} is neither RFC 3339 nor seconds since the epoch (1970 to 9999)")]
    Clock(String),
}

/// What DescribeCluster says about a cluster: the task turns it into a
/// `kube::ExecCluster` (aws does not know kube).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub region: String,
    /// `https://…`
    pub endpoint: String,
    /// The CA bundle, base64 PEM (as `certificate-authority-data`).
    pub ca_data: String,
    /// Kubernetes version (`1.34`).
    pub version: Option<String>,
}

/// DescribeCluster with the given (assumed) identity; refuses a cluster that
/// is not ACTIVE.
pub async fn describe_cluster(config: &SdkConfig, name: &str, identity: &str) -> Result<Cluster, Error> {
    let region = config.region().map(ToString::to_string).unwrap_or_default();
    let out = match aws_sdk_eks::Client::new(config).describe_cluster().name(name).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            return Err(Error::NotFound { cluster: name.into(), region, identity: identity.into() });
        }
        Err(e) => {
            let source = super::sdk_message(&e).into();
            return Err(Error::Describe { cluster: name.into(), region, source });
        }
    };
    let incomplete = |what| Error::Incomplete { cluster: name.into(), what };
    let cluster = out.cluster().ok_or_else(|| incomplete("cluster"))?;
    let status = cluster.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "in an unknown state".into());
    if status != "ACTIVE" {
        return Err(Error::NotActive { cluster: name.into(), status });
    }
    Ok(Cluster {
        name: name.into(),
        region,
        endpoint: cluster.endpoint().ok_or_else(|| incomplete("endpoint"))?.to_string(),
        ca_data: cluster
            .certificate_authority()
            .and_then(|c| c.data())
            .ok_or_else(|| incomplete("certificate authority"))?
            .to_string(),
        version: cluster.version().map(str::to_string),
    })
}

/// The STS endpoint the token is presigned for: `AWS_ENDPOINT_URL_STS`, then
/// `AWS_ENDPOINT_URL`, then the regional endpoint.
pub fn sts_url(env: &Env, region: &str) -> String {
    let configured = env.var("AWS_ENDPOINT_URL_STS").or_else(|| env.var("AWS_ENDPOINT_URL"));
    match configured {
        Some(url) => url.trim_end_matches('/').to_string(),
        None if region.starts_with("cn-") => format!("https://sts.{region}.amazonaws.com.cn"),
        None => format!("https://sts.{region}.amazonaws.com"),
    }
}

/// The EKS token for `cluster`, signed at `now` with these credentials.
pub fn token(
    credentials: &Credentials,
    cluster: &str,
    region: &str,
    sts_url: &str,
    now: SystemTime,
) -> Result<String, Error> {
    let url = format!("{sts_url}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| Error::Sign(e.to_string()))?
        .into();
    let headers = [("x-k8s-aws-id", cluster)];
    let request = SignableRequest::new("GET", url.as_str(), headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| Error::Sign(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params).map_err(|e| Error::Sign(e.to_string()))?.into_parts();
    let mut presigned = url;
    for (name, value) in instructions.params() {
        presigned.push('&');
        presigned.push_str(name);
        presigned.push('=');
        presigned.push_str(&query_escape(value));
    }
    Ok(format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)))
}

/// Percent-encodes a query value as SigV4 does (RFC 3986 unreserved kept).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `client.authentication.k8s.io/v1` ExecCredential helm and kubectl read.
pub fn exec_credential(token: &str, expires: SystemTime) -> String {
    let seconds = expires.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let stamp = jiff::Timestamp::from_second(seconds as i64).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    serde_json::json!({
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1",
        "spec": {},
        "status": { "expirationTimestamp": stamp.unwrap_or_default(), "token": token },
    })
    .to_string()
}

/// When a token made at `now` with these credentials stops being usable.
pub fn token_expiry(credentials: &Credentials, now: SystemTime, lifetime: Duration) -> SystemTime {
    let token = now + lifetime.min(TOKEN_LIFETIME);
    credentials.expiry().map_or(token, |e| e.min(token))
}

/// The clock: now, or in debug builds the time fixed by [`FIXED_TIME_VAR`].
pub fn clock(env: &Env) -> Result<SystemTime, Error> {
    #[cfg(debug_assertions)]
    if let Some(text) = env.test_switch(FIXED_TIME_VAR) {
        return fixed_clock(text);
    }
    #[cfg(not(debug_assertions))]
    let _ = env;
    Ok(SystemTime::now())
}

#[cfg(debug_assertions)]
fn fixed_clock(text: &str) -> Result<SystemTime, Error> {
    // Within jiff's years (to 9999), so that signing and the expiry stamp cannot overflow.
    let at = match text.parse::<i64>() {
        Ok(seconds) => jiff::Timestamp::from_second(seconds).ok(),
        Err(_) => text.parse::<jiff::Timestamp>().ok(),
    };
    match at {
        Some(at) if at.as_second() >= 0 => Ok(at.into()),
        _ => Err(Error::Clock(text.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: u64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn decode(token: &str) -> String {
        let body = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap()
    }

    fn query(url: &str) -> std::collections::BTreeMap<String, String> {
        let (_, query) = url.split_once('?').unwrap();
        query.split('&').map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect()
    }

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token.map(Into::into), None, "t")
    }

    #[test]
    fn token_is_a_presigned_get_caller_identity() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(AT);
        let token = token(&creds(None), "dev", "eu-west-1", "https://sts.eu-west-1.amazonaws.com", at).unwrap();
        assert!(!token.contains('='), "no padding");
        let url = decode(&token);
        assert!(url.starts_with("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"));
        let q = query(&url);
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(q["X-Amz-Credential"], "AKIDEXAMPLE%2F20231114%2Feu-west-1%2Fsts%2Faws4_request");
        assert_eq!(q["X-Amz-Date"], "20231114T221320Z");
        assert_eq!(q["X-Amz-Expires"], "60");
        assert_eq!(q["X-Amz-SignedHeaders"], "host%3Bx-k8s-aws-id");
        assert_eq!(q["X-Amz-Signature"].len(), 64);
        assert!(!q.contains_key("X-Amz-Security-Token"));
        // Same inputs, same token; another cluster, another signature.
        assert_eq!(
            token,
            super::token(&creds(None), "dev", "eu-west-1", "https://sts.eu-west-1.amazonaws.com", at).unwrap()
        );
        let other = super::token(&creds(None), "prod", "eu-west-1", "https://sts.eu-west-1.amazonaws.com", at).unwrap();
        assert_ne!(query(&decode(&other))["X-Amz-Signature"], q["X-Amz-Signature"]);
    }

    #[test]
    fn session_tokens_are_signed_into_the_url() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(AT);
        let url = decode(&token(&creds(Some("FwoG/abc+=")), "dev", "eu-west-1", "http://127.0.0.1:5000", at).unwrap());
        assert!(url.starts_with("http://127.0.0.1:5000/?Action=GetCallerIdentity"), "{url}");
        assert_eq!(query(&url)["X-Amz-Security-Token"], "FwoG%2Fabc%2B%3D");
    }

    #[test]
    fn sts_endpoint_follows_the_overrides() {
        let env = |vars: &[(&str, &str)]| Env::from_vars(vars.iter().copied());
        assert_eq!(sts_url(&env(&[]), "eu-west-1"), "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(sts_url(&env(&[]), "cn-north-1"), "https://sts.cn-north-1.amazonaws.com.cn");
        assert_eq!(sts_url(&env(&[("AWS_ENDPOINT_URL", "http://moto:5000/")]), "eu-west-1"), "http://moto:5000");
        let both = env(&[("AWS_ENDPOINT_URL", "http://a"), ("AWS_ENDPOINT_URL_STS", "http://sts")]);
        assert_eq!(sts_url(&both, "eu-west-1"), "http://sts");
    }

    #[test]
    fn exec_credential_expires_with_the_token_or_the_credentials() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(AT);
        let json: serde_json::Value =
            serde_json::from_str(&exec_credential("k8s-aws-v1.x", token_expiry(&creds(None), at, TOKEN_LIFETIME)))
                .unwrap();
        assert_eq!(json["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(json["kind"], "ExecCredential");
        assert_eq!(json["status"]["token"], "k8s-aws-v1.x");
        assert_eq!(json["status"]["expirationTimestamp"], "2023-11-14T22:27:20Z");
        let short = Credentials::new("a", "b", None, Some(at + Duration::from_secs(300)), "t");
        assert_eq!(token_expiry(&short, at, TOKEN_LIFETIME), at + Duration::from_secs(300));
        assert_eq!(token_expiry(&creds(None), at, Duration::from_secs(2)), at + Duration::from_secs(2));
    }

    #[test]
    fn the_clock_can_be_fixed() {
        let env = |v: &str| Env::from_vars([(FIXED_TIME_VAR, v)]);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(AT);
        assert_eq!(clock(&env("1700000000")).unwrap(), at);
        assert_eq!(clock(&env("2023-11-14T22:13:20Z")).unwrap(), at);
        assert!(clock(&env("yesterday")).is_err());
        assert!(clock(&env("-1")).is_err());
        // Past what SystemTime holds: an error naming the switch, not a panic.
        let error = clock(&env(&i64::MAX.to_string())).unwrap_err().to_string();
        assert!(error.contains(FIXED_TIME_VAR), "{error}");
    }

    #[test]
    #[should_panic(expected = "AZP_KUBE_EKS_TOKEN_LIFETIME_SECONDS=\"2m\" is not whole seconds")]
    fn a_malformed_test_switch_stops_the_test() {
        Env::from_vars([(TOKEN_LIFETIME_VAR, "2m")]).test_seconds(TOKEN_LIFETIME_VAR);
    }
}
