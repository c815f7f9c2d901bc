//! Presigned GET URLs for a build context. Whoever holds one can read the
//! context until it expires, so its lifetime is only what the build needs,
//! never beyond the signing credentials' own expiry (S3 refuses the URL once
//! a session token has expired, whatever the URL says), and the parts that
//! make it work (signature, session token) are returned for masking.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials as _;
use aws_sdk_s3::presigning::PresigningConfig;

use super::{ContextStore, Error};
use crate::aws::{error_chain, sdk_message};
use crate::azp::Secret;

/// The least lifetime worth signing: the pod must still start and fetch.
pub const SHORTEST_LIFETIME: Duration = Duration::from_secs(120);

/// Margin kept before the credentials expire (clock skew, a slow fetch).
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// A presigned URL and what to know about it.
#[derive(Debug, Clone)]
pub struct Presigned {
    pub url: Secret,
    pub lifetime: Duration,
    /// The lifetime was cut to end before the signing credentials expire.
    pub shortened: bool,
    /// Values to register with the agent: the signature and, for temporary
    /// credentials, the session token, as they appear in the URL and decoded.
    pub secrets: Vec<String>,
}

impl ContextStore {
    /// A GET URL for `key` that works without credentials for `wanted`, or
    /// until shortly before the signing credentials expire if that is sooner.
    pub async fn presign_get(&self, key: &str, wanted: Duration) -> Result<Presigned, Error> {
        let fail = |message: String| self.error(key, "presign", message);
        // Sign with one fixed set of credentials, whose expiry is then known.
        let credentials = match &self.credentials {
            Some(provider) => Some(provider.provide_credentials().await.map_err(|e| fail(error_chain(&e)))?),
            None => None,
        };
        let left = credentials
            .as_ref()
            .and_then(|c| c.expiry())
            .map(|expiry| expiry.duration_since(SystemTime::now()).unwrap_or_default());
        let (lifetime, shortened) = lifetime(wanted, left).map_err(fail)?;
        let config = PresigningConfig::expires_in(lifetime).map_err(|e| fail(error_chain(&e)))?;
        let mut request = self.client.get_object().bucket(&self.bucket).key(key).customize();
        if let Some(credentials) = credentials {
            request = request.config_override(aws_sdk_s3::config::Builder::default().credentials_provider(credentials));
        }
        let presigned = request.presigned(config).await.map_err(|e| fail(sdk_message(&e)))?;
        let url = presigned.uri().to_string();
        let secrets = url_secrets(&url);
        Ok(Presigned { url: Secret::new(url), lifetime, shortened, secrets })
    }
}

/// The lifetime to sign for: `wanted`, cut to end [`EXPIRY_MARGIN`] before
/// credentials that expire in `left`; an error when too little remains.
fn lifetime(wanted: Duration, left: Option<Duration>) -> Result<(Duration, bool), String> {
    let Some(left) = left else { return Ok((wanted, false)) };
    let usable = left.saturating_sub(EXPIRY_MARGIN);
    if usable >= wanted {
        return Ok((wanted, false));
    }
    if usable < SHORTEST_LIFETIME {
        return Err(format!(
            "the AWS credentials that sign the URL expire in {} s, too soon for the pod to fetch the context \
             (a presigned URL stops working when they expire); renew them before the build, or use \
             contextTransport S3",
            left.as_secs()
        ));
    }
    Ok((usable, true))
}

/// The query values that make a presigned URL work, raw and decoded.
fn url_secrets(url: &str) -> Vec<String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let mut secrets = Vec::new();
    for pair in query.split('&') {
        let Some((name, value)) = pair.split_once('=') else { continue };
        if matches!(name, "X-Amz-Signature" | "X-Amz-Security-Token") && !value.is_empty() {
            let decoded = percent_decode(value);
            if decoded != value {
                secrets.push(decoded);
            }
            secrets.push(value.to_string());
        }
    }
    secrets
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn the_lifetime_ends_before_the_credentials_do() {
        assert_eq!(lifetime(15 * MIN, None), Ok((15 * MIN, false)));
        assert_eq!(lifetime(15 * MIN, Some(60 * MIN)), Ok((15 * MIN, false)));
        assert_eq!(lifetime(15 * MIN, Some(10 * MIN)), Ok((9 * MIN, true)));
        let error = lifetime(15 * MIN, Some(2 * MIN)).unwrap_err();
        assert!(error.contains("expire in 120 s"), "{error}");
    }

    #[test]
    fn signature_and_token_are_secrets_and_nothing_else() {
        let url = "https://s3.example/b/k.tar.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261206\
                   &X-Amz-Security-Token=Fwo%2Btok%3D&X-Amz-Signature=abc123&X-Amz-SignedHeaders=host";
        assert_eq!(url_secrets(url), ["Fwo+tok=", "Fwo%2Btok%3D", "abc123"]);
    }
}
