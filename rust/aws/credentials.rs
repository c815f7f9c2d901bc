//! The one credential chain: base credentials (an AWS Toolkit service
//! connection, or the default chain: environment, IRSA web identity, EKS Pod
//! Identity, profile, instance role), then optionally AssumeRole into the
//! target account, then GetCallerIdentity to say who we are.
//!
//! Also a small file cache of resolved credentials, so that `azp-kube
//! eks-token` (run by helm on every token refresh) need not assume the role
//! again while the session lives.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use sha2::{Digest as _, Sha256};

use super::AwsTarget;
use super::arn::RoleArn;
use crate::azp::Env;
use crate::azp::endpoint::AwsEndpoint;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A step of the chain that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the AWS service connection uses OIDC: its ID token must be exchanged (AssumeRoleWithWebIdentity) before the chain runs"
    )]
    Oidc,
    #[error("the AWS service connection has a role to assume with an invalid ARN")]
    ConnectionRole(#[source] super::arn::Error),
    #[error("no AWS credentials for the agent ({source_name})")]
    Base {
        source_name: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("cannot assume role {role}")]
    AssumeRole {
        role: String,
        #[source]
        source: BoxError,
    },
    #[error("cannot tell who the AWS identity is (sts:GetCallerIdentity)")]
    Identity(#[source] BoxError),
}

/// Where the base credentials come from.
#[derive(Debug, Clone)]
pub enum Base {
    /// The AWS Toolkit service connection (keys, and maybe its own role).
    Connection(AwsEndpoint),
    /// The agent's default chain.
    DefaultChain,
    /// Credentials resolved before (by the task, for `eks-token`).
    Given(Credentials),
}

/// The role to assume in the target account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub arn: RoleArn,
    pub external_id: Option<String>,
    pub session_name: String,
    /// Asked lifetime; clamped to one hour when the base is a role itself.
    pub duration: Duration,
}

/// The longest session of a role assumed from role credentials (role chaining).
pub const CHAINED_MAX: Duration = Duration::from_secs(3600);
/// The shortest session STS grants.
pub const SESSION_MIN: Duration = Duration::from_secs(900);

/// Who the credentials belong to, from GetCallerIdentity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    /// The caller's ARN (for a role: `arn:aws:sts::<account>:assumed-role/<role>/<session>`).
    pub arn: String,
}

impl CallerIdentity {
    /// `role deployer (session s) in account 222222222222`, never keys.
    pub fn describe(&self) -> String {
        match self.arn.split_once(":assumed-role/") {
            Some((_, rest)) => {
                let (role, session) = rest.split_once('/').unwrap_or((rest, ""));
                format!("role {role} (session {session}) in account {}", self.account)
            }
            None => format!("{} in account {}", self.arn, self.account),
        }
    }
}

/// Credentials at the end of the chain, and an SDK configuration that uses them.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: SdkConfig,
    pub credentials: Credentials,
    /// The base credentials when they came from a service connection (helm's
    /// token plugin needs them to assume the role again after the cache).
    pub base_from_connection: Option<Credentials>,
    /// The session length actually asked, after clamping.
    pub session: Option<Duration>,
}

/// The values of credentials to register with the agent as secrets.
pub fn secret_values(credentials: &Credentials) -> impl Iterator<Item = &str> {
    [Some(credentials.secret_access_key()), credentials.session_token()].into_iter().flatten()
}

/// Told every credential the chain obtains (the base, a connection's role,
/// the target role) as soon as it has it, before the next call: the task
/// registers its secrets then, before any (debug) log line can hold them.
pub type Obtained<'a> = &'a dyn Fn(&Credentials);

/// A credentials provider that reports every credential it hands out (the
/// first, and each refresh) before the client that asked can use it.
struct Reporting {
    inner: SharedCredentialsProvider,
    obtained: std::sync::Arc<dyn Fn(&Credentials) + Send + Sync>,
}

impl std::fmt::Debug for Reporting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporting").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl ProvideCredentials for Reporting {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let credentials = self.inner.provide_credentials().await?;
            (self.obtained)(&credentials);
            Ok(credentials)
        })
    }
}

/// `config` with its credentials reported to `obtained` whenever its
/// clients obtain them (the default chain's web identity, role or SSO
/// sessions are fetched inside the SDK, never seen by the task otherwise).
pub fn reporting(config: &SdkConfig, obtained: impl Fn(&Credentials) + Send + Sync + 'static) -> SdkConfig {
    let Some(inner) = config.credentials_provider() else { return config.clone() };
    let provider = Reporting { inner, obtained: std::sync::Arc::new(obtained) };
    config.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build()
}

/// Resolves base credentials, then assumes `role` if given.
pub async fn resolve(
    env: &Env,
    target: &AwsTarget,
    base: &Base,
    role: Option<&AssumeRole>,
    obtained: Obtained<'_>,
) -> Result<Resolved, Error> {
    let (base_config, base_credentials, base_from_connection) = base_credentials(env, target, base, obtained).await?;
    let Some(role) = role else {
        return Ok(Resolved {
            config: with_static(&base_config, base_credentials.clone()),
            credentials: base_credentials,
            base_from_connection,
            session: None,
        });
    };
    let session = session_length(role.duration, is_temporary(&base_credentials));
    let credentials = assume(&base_config, role, session).await?;
    obtained(&credentials);
    Ok(Resolved {
        config: with_static(&base_config, credentials.clone()),
        credentials,
        base_from_connection,
        session: Some(session),
    })
}

/// The lifetime to ask for: at least 15 minutes; at most one hour when the
/// base credentials are temporary (a role, so the call is role chaining).
pub fn session_length(asked: Duration, chained: bool) -> Duration {
    let asked = asked.max(SESSION_MIN);
    if chained { asked.min(CHAINED_MAX) } else { asked }
}

/// Temporary credentials (`ASIA…`, with a session token) come from a role or
/// a session; assuming a role from them is role chaining.
fn is_temporary(credentials: &Credentials) -> bool {
    credentials.session_token().is_some() || credentials.access_key_id().starts_with("ASIA")
}

async fn base_credentials(
    env: &Env,
    target: &AwsTarget,
    base: &Base,
    obtained: Obtained<'_>,
) -> Result<(SdkConfig, Credentials, Option<Credentials>), Error> {
    let connection = match base {
        Base::Connection(endpoint) if endpoint.uses_oidc() => return Err(Error::Oidc),
        Base::Connection(endpoint) => endpoint,
        Base::Given(credentials) => {
            let provider = SharedCredentialsProvider::new(credentials.clone());
            return Ok((super::sdk_config(env, target, Some(provider)).await, credentials.clone(), None));
        }
        Base::DefaultChain => {
            let config = super::sdk_config(env, target, None).await;
            let credentials =
                provide(&config).await.map_err(|source| Error::Base { source_name: "default chain", source })?;
            obtained(&credentials);
            return Ok((config, credentials, None));
        }
    };
    let keys = match (&connection.access_key_id, &connection.secret_access_key) {
        (Some(id), Some(secret)) => Some(Credentials::new(
            id.expose(),
            secret.expose(),
            connection.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "azp-service-connection",
        )),
        _ => None,
    };
    let provider = keys.map(SharedCredentialsProvider::new);
    let config = super::sdk_config(env, target, provider).await;
    let mut credentials =
        provide(&config).await.map_err(|source| Error::Base { source_name: "service connection", source })?;
    obtained(&credentials);
    if let Some(arn) = &connection.assume_role_arn {
        let role = AssumeRole {
            arn: RoleArn::parse(arn).map_err(Error::ConnectionRole)?,
            external_id: connection.external_id.clone(),
            session_name: connection.role_session_name.clone().unwrap_or_else(|| "aws-vsts-tools".into()),
            duration: CHAINED_MAX,
        };
        let session = session_length(role.duration, is_temporary(&credentials));
        credentials = assume(&config, &role, session).await?;
        obtained(&credentials);
    }
    Ok((with_static(&config, credentials.clone()), credentials.clone(), Some(credentials)))
}

async fn provide(config: &SdkConfig) -> Result<Credentials, BoxError> {
    let provider = config.credentials_provider().ok_or("no credentials provider is configured")?;
    Ok(provider.provide_credentials().await?)
}

async fn assume(base: &SdkConfig, role: &AssumeRole, session: Duration) -> Result<Credentials, Error> {
    let mut builder =
        AssumeRoleProvider::builder(role.arn.as_str()).session_name(&role.session_name).session_length(session);
    if let Some(id) = &role.external_id {
        builder = builder.external_id(id);
    }
    let provider = builder.configure(base).build().await;
    provider
        .provide_credentials()
        .await
        .map_err(|error| Error::AssumeRole { role: role.arn.to_string(), source: sts_message(&error).into() })
}

/// What STS answered, from inside the provider's error (`Throttling: Rate
/// exceeded`, `AccessDenied: …`); the provider's own text is a debug dump.
fn sts_message(error: &(dyn std::error::Error + 'static)) -> String {
    use aws_sdk_sts::config::http::HttpResponse;
    use aws_sdk_sts::error::SdkError;
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(answer) = e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
            return super::sdk_message(answer);
        }
        current = e.source();
    }
    super::error_chain(error)
}

fn with_static(config: &SdkConfig, credentials: Credentials) -> SdkConfig {
    config.to_builder().credentials_provider(SharedCredentialsProvider::new(credentials)).build()
}

/// Asks STS who these credentials are.
pub async fn caller_identity(config: &SdkConfig) -> Result<CallerIdentity, Error> {
    let out = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Error::Identity(super::sdk_message(&e).into()))?;
    Ok(CallerIdentity {
        account: out.account().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
    })
}

/// A file cache of credentials, one 0600 file per identity, in a private folder.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expires: Option<u64>,
}

impl CachedCredentials {
    fn from(credentials: &Credentials) -> Self {
        Self {
            access_key_id: credentials.access_key_id().to_string(),
            secret_access_key: credentials.secret_access_key().to_string(),
            session_token: credentials.session_token().map(str::to_string),
            expires: credentials.expiry().and_then(|e| e.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()),
        }
    }

    fn expiry(&self) -> Option<SystemTime> {
        self.expires.map(|s| UNIX_EPOCH + Duration::from_secs(s))
    }

    fn into_credentials(self, provider: &'static str) -> Credentials {
        let expiry = self.expiry();
        Credentials::new(self.access_key_id, self.secret_access_key, self.session_token, expiry, provider)
    }
}

/// What `azp-kube eks-token` needs besides its command line, handed over in
/// a private file: never in an argument list (any process can read those)
/// nor in helm's environment (its plugins and post-renderers read that).
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Handover {
    /// Base credentials that are not the agent's own (a service connection's
    /// keys, or the agent's `AWS_ACCESS_KEY_ID`, which helm does not inherit).
    base: Option<CachedCredentials>,
    /// The external ID of the role to assume.
    external_id: Option<String>,
}

/// The handover's file in the private folder.
const HANDOVER: &str = "eks-token.json";
/// The agent's proxy, for `eks-token`, in the private folder.
const PROXY_HANDOVER: &str = "eks-token-proxy.json";

impl Cache {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }

    /// The cache entry for a role (or the base identity: `None`).
    fn file(&self, role: Option<&AssumeRole>) -> PathBuf {
        let mut hash = Sha256::new();
        if let Some(role) = role {
            for part in [role.arn.as_str(), role.external_id.as_deref().unwrap_or(""), &role.session_name] {
                hash.update(part.as_bytes());
                hash.update([0]);
            }
        }
        self.dir.join(format!("credentials-{}.json", &hex::encode(hash.finalize())[..16]))
    }

    /// Cached credentials that stay valid for at least `margin` after `now`.
    pub fn get(&self, role: Option<&AssumeRole>, now: SystemTime, margin: Duration) -> Option<Credentials> {
        let text = std::fs::read_to_string(self.file(role)).ok()?;
        let cached: CachedCredentials = serde_json::from_str(&text).ok()?;
        if cached.expiry().is_some_and(|e| e < now + margin) {
            return None;
        }
        Some(cached.into_credentials("azp-kube-cache"))
    }

    /// Hands `eks-token` its base credentials and the role's external ID (a
    /// 0600 file in the private folder, gone with it).
    pub fn hand_over(&self, base: Option<&Credentials>, external_id: Option<&str>) -> std::io::Result<()> {
        let handover =
            Handover { base: base.map(CachedCredentials::from), external_id: external_id.map(str::to_string) };
        self.write_atomically(&self.dir.join(HANDOVER), &serde_json::to_string(&handover)?)
    }

    /// What the task handed over: (base credentials, external ID); nothing
    /// when there is no handover (a terminal's `eks-token`).
    pub fn handed_over(&self) -> (Option<Credentials>, Option<String>) {
        let text = std::fs::read_to_string(self.dir.join(HANDOVER)).unwrap_or_default();
        let handover: Handover = serde_json::from_str(&text).unwrap_or_default();
        (handover.base.map(|b| b.into_credentials("azp-kube-handover")), handover.external_id)
    }

    /// Hands `eks-token` the agent's proxy (its password included), so that
    /// an AssumeRole from the exec entry takes the task's way to STS: a 0600
    /// file in the private folder, never helm's environment.
    pub fn hand_over_proxy(&self, proxy: &crate::azp::proxy::Handover) -> std::io::Result<()> {
        self.write_atomically(&self.dir.join(PROXY_HANDOVER), &serde_json::to_string(proxy)?)
    }

    /// The agent's proxy as the task handed it over, if it did.
    pub fn handed_over_proxy(&self) -> Option<crate::azp::proxy::Handover> {
        let text = std::fs::read_to_string(self.dir.join(PROXY_HANDOVER)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores credentials in a new 0600 file, renamed into place.
    pub fn put(&self, role: Option<&AssumeRole>, credentials: &Credentials) -> std::io::Result<()> {
        self.write_atomically(&self.file(role), &serde_json::to_string(&CachedCredentials::from(credentials))?)
    }

    /// A new 0600 file beside `file`, renamed into place: a reader sees the
    /// old content or the new, never half of it.
    fn write_atomically(&self, file: &Path, text: &str) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        temp.write_all(text.as_bytes())?;
        temp.persist(file).map(drop).map_err(|e| e.error)
    }
}

/// The variables that hold base credentials (the default chain's first link).
pub const KEY_VARIABLES: &[&str] =
    &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"];

/// Keys in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (and the session
/// token), which the default chain picks first.
pub fn environment_keys(env: &Env) -> Option<Credentials> {
    let (id, secret) = (env.var("AWS_ACCESS_KEY_ID")?, env.var("AWS_SECRET_ACCESS_KEY")?);
    let token = env.var("AWS_SESSION_TOKEN").map(str::to_string);
    Some(Credentials::new(id, secret, token, None, "environment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> AssumeRole {
        AssumeRole {
            arn: RoleArn::parse("arn:aws:iam::222222222222:role/deployer").unwrap(),
            external_id: Some("ext".into()),
            session_name: "azp-kube-1".into(),
            duration: Duration::from_secs(7200),
        }
    }

    #[test]
    fn chained_sessions_are_capped_at_one_hour() {
        let h = |s| Duration::from_secs(s);
        assert_eq!(session_length(h(7200), true), h(3600));
        assert_eq!(session_length(h(7200), false), h(7200));
        assert_eq!(session_length(h(60), true), h(900));
        assert_eq!(session_length(h(1800), true), h(1800));
    }

    #[test]
    fn temporary_credentials_are_recognised() {
        assert!(is_temporary(&Credentials::new("ASIAX", "s", Some("t".into()), None, "t")));
        assert!(!is_temporary(&Credentials::new("AKIAX", "s", None, None, "t")));
    }

    #[test]
    fn identities_are_described_without_keys() {
        let id = CallerIdentity {
            account: "222222222222".into(),
            arn: "arn:aws:sts::222222222222:assumed-role/deployer/azp-kube-7".into(),
        };
        assert_eq!(id.describe(), "role deployer (session azp-kube-7) in account 222222222222");
        let user = CallerIdentity { account: "1".into(), arn: "arn:aws:iam::1:user/bob".into() };
        assert_eq!(user.describe(), "arn:aws:iam::1:user/bob in account 1");
    }

    #[test]
    fn the_cache_keeps_credentials_for_their_lifetime_in_a_private_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let now = SystemTime::now();
        let creds =
            Credentials::new("ASIA1", "secret", Some("token".into()), Some(now + Duration::from_secs(600)), "t");
        cache.put(Some(&role()), &creds).unwrap();
        let hit = cache.get(Some(&role()), now, Duration::from_secs(60)).unwrap();
        assert_eq!((hit.access_key_id(), hit.session_token()), ("ASIA1", Some("token")));
        assert!(cache.get(None, now, Duration::from_secs(60)).is_none(), "another identity");
        assert!(cache.get(Some(&role()), now, Duration::from_secs(900)).is_none(), "expires too soon");
        let file = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap();
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn the_handover_is_a_private_file_read_back_whole() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert!(matches!(cache.handed_over(), (None, None)), "no handover, nothing");
        let base = Credentials::new("AKIA1", "secret", None, None, "t");
        cache.hand_over(Some(&base), Some("ext-1")).unwrap();
        let (got, external_id) = cache.handed_over();
        let got = got.unwrap();
        assert_eq!((got.access_key_id(), got.secret_access_key()), ("AKIA1", "secret"));
        assert_eq!(external_id.as_deref(), Some("ext-1"));
        let mode = std::fs::metadata(dir.path().join(HANDOVER)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
