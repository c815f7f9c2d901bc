//! IAM's side of `sts:AssumeRoleWithWebIdentity`, which moto skips (it accepts any token):
//! OIDC identity providers per account, and each role's trust in one provider with
//! `StringEquals` conditions on `<provider>:aud` and `<provider>:sub`.
//!
//! [`WebIdentityTrust::check`] looks at an STS query-protocol request body and, for
//! AssumeRoleWithWebIdentity, answers the refusal STS would (or lets it through to moto):
//! an unparsable or badly signed token, no provider for the token's issuer in the role's
//! account, an audience the provider does not list, an expired token, a role whose trust
//! does not match. Install it on an [`crate::aws_faults::AwsFaultProxy`] with
//! [`crate::aws_faults::AwsFaults::set_gate`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::aws_faults::AwsError;
use crate::azure_devops::IssuerKey;

/// The body text that marks the requests [`WebIdentityTrust::check`] looks at.
pub const ACTION: &str = "Action=AssumeRoleWithWebIdentity";

struct Provider {
    account: String,
    key: IssuerKey,
    audiences: Vec<String>,
}

struct RoleTrust {
    /// The provider host (`vstoken.dev.azure.com/<org id>`), as the trust policy's
    /// `Federated` principal and condition keys name it.
    provider: String,
    audience: String,
    subject: String,
}

/// The OIDC providers and role trusts of the world's IAM.
#[derive(Default)]
pub struct WebIdentityTrust {
    providers: Mutex<Vec<Provider>>,
    roles: Mutex<HashMap<String, RoleTrust>>,
    accepted: AtomicU64,
    refused: AtomicU64,
}

fn host(issuer: &str) -> &str {
    issuer.strip_prefix("https://").unwrap_or(issuer)
}

impl WebIdentityTrust {
    /// `aws iam create-open-id-connect-provider` in `account` for `key`'s issuer, with
    /// these client IDs (audiences).
    pub fn add_provider(&self, account: &str, key: &IssuerKey, audiences: &[&str]) {
        let audiences = audiences.iter().map(|a| a.to_string()).collect();
        lock(&self.providers).push(Provider { account: account.into(), key: key.clone(), audiences });
    }

    /// A role whose trust policy lets `issuer`'s tokens with this `aud` and `sub` in.
    pub fn trust_role(&self, role_arn: &str, issuer: &str, audience: &str, subject: &str) {
        let trust = RoleTrust { provider: host(issuer).into(), audience: audience.into(), subject: subject.into() };
        lock(&self.roles).insert(role_arn.into(), trust);
    }

    /// How many web identity calls were let through to moto.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// How many were refused.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// STS's answer to an AssumeRoleWithWebIdentity request it refuses; `None` lets it on.
    pub fn check(&self, body: &[u8]) -> Option<AwsError> {
        let refusal = self.refusal(body);
        let counter = if refusal.is_some() { &self.refused } else { &self.accepted };
        counter.fetch_add(1, Ordering::SeqCst);
        refusal
    }

    fn refusal(&self, body: &[u8]) -> Option<AwsError> {
        let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
        let invalid = |message: &str| Some(AwsError::query(400, "InvalidIdentityToken", message));
        let role_arn = form.get("RoleArn").cloned().unwrap_or_default();
        let account = role_arn.split(':').nth(4).unwrap_or_default().to_string();
        let Some((signed, signature, claims)) = form.get("WebIdentityToken").and_then(|t| parse(t)) else {
            return invalid("Couldn't parse the token");
        };
        let claim = |name: &str| claims.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let issuer = claim("iss");
        let providers = lock(&self.providers);
        let Some(provider) = providers.iter().find(|p| p.account == account && p.key.issuer() == issuer) else {
            return invalid(&format!("No OpenIDConnect provider found in your account for {issuer}"));
        };
        if !provider.key.verifies(signed.as_bytes(), &signature) {
            return invalid("The signature of the token could not be verified");
        }
        let audience = claim("aud");
        if !provider.audiences.contains(&audience) {
            return invalid("Incorrect token audience");
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        if claims.get("exp").and_then(serde_json::Value::as_u64).is_none_or(|exp| exp <= now) {
            return Some(AwsError::query(
                400,
                "ExpiredTokenException",
                "Token expired: current date/time must be before the expiration date/time",
            ));
        }
        let roles = lock(&self.roles);
        let trusted = roles
            .get(&role_arn)
            .is_some_and(|t| t.provider == host(&issuer) && t.audience == audience && t.subject == claim("sub"));
        if !trusted {
            return Some(AwsError::query(
                403,
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            ));
        }
        None
    }
}

/// `header.payload`, the signature, and the claims of a JWT.
fn parse(token: &str) -> Option<(String, Vec<u8>, serde_json::Map<String, serde_json::Value>)> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (signed, signature) = token.rsplit_once('.')?;
    let (_, payload) = signed.split_once('.')?;
    let claims = serde_json::from_slice(&b64.decode(payload).ok()?).ok()?;
    Some((signed.to_string(), b64.decode(signature).ok()?, claims))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
