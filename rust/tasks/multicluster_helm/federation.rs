//! OIDC workload identity federation for an AWS service connection with
//! `useOIDC`: an ID token from Azure DevOps for the connection, exchanged
//! with AssumeRoleWithWebIdentity for the connection's role; then, through
//! the usual chain, the task's own role.
//!
//! The job's access token stays in this process: the kubeconfig's exec entry
//! gets new EKS tokens from the [`TokenBroker`] over the private folder's
//! socket, which renews the whole chain (new ID token included) when the
//! session runs out during a long `--wait`.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use aws_credential_types::Credentials;

use crate::aws::arn::RoleArn;
use crate::aws::credentials::{self, AssumeRole, Base};
use crate::aws::{AwsTarget, eks, web_identity};
use crate::azp::endpoint::AwsEndpoint;
use crate::azp::oidc::{self, IdTokenSource};
use crate::azp::proxy::ProxySettings;
use crate::azp::{Agent, Env};

/// The variable that sets the web identity session's length, as the AWS
/// Toolkit reads it (`aws.rolecredential.maxduration`, 900 to 43200 s).
const DURATION_VARIABLE: &str = "AWS_ROLECREDENTIAL_MAXDURATION";
const DURATION_RANGE: (u64, u64) = (900, 43200);
/// Test switch (debug builds only, see [`Env::test_switch`]): the broker
/// renews the chain once its credentials are this many seconds old, so that
/// a test sees renewals without waiting out a 15-minute session.
pub const RENEW_AFTER_VAR: &str = "AZP_KUBE_OIDC_RENEW_AFTER_SECONDS";

/// An OIDC connection's way to AWS credentials.
pub struct Federation {
    source: IdTokenSource,
    role: RoleArn,
    session_name: String,
    duration: Duration,
}

impl Federation {
    /// The federation of `endpoint`, when it uses OIDC. The job's access
    /// token is registered as a secret before anything else happens.
    pub fn of(
        env: &Env,
        agent: &Agent,
        endpoint: &AwsEndpoint,
        proxy: Option<&ProxySettings>,
    ) -> anyhow::Result<Option<Self>> {
        // As the AWS Toolkit: a connection with keys uses its keys, OIDC or not.
        if !endpoint.uses_oidc() {
            return Ok(None);
        }
        let source = IdTokenSource::read(env, &endpoint.id, proxy.cloned())?;
        agent.set_secret(source.access_token().expose());
        let role = endpoint.assume_role_arn.as_deref().with_context(|| {
            format!("the AWS service connection {} uses OIDC but names no role to assume (assumeRoleArn)", endpoint.id)
        })?;
        let role = RoleArn::parse(role).map_err(credentials::Error::ConnectionRole)?;
        let session_name =
            endpoint.role_session_name.clone().unwrap_or_else(|| web_identity::DEFAULT_SESSION_NAME.into());
        Ok(Some(Self { source, role, session_name, duration: duration(env, agent) }))
    }

    /// A new ID token, exchanged for a session of the connection's role.
    pub async fn credentials(&self, env: &Env, agent: &Agent, target: &AwsTarget) -> anyhow::Result<Credentials> {
        let token = self.source.fetch().await?;
        agent.set_secret(token.expose());
        let oidc::Claims { issuer, subject, audience } = oidc::claims(&token);
        agent.debug(&format!("OIDC token: issuer {issuer}, subject {subject}, audience {audience}"));
        let claims = web_identity::TokenClaims { issuer, subject, audience };
        let config = crate::aws::sdk_config(env, target, None).await;
        let credentials =
            web_identity::assume(&config, &self.role, &self.session_name, self.duration, token.expose(), &claims)
                .await?;
        credentials::secret_values(&credentials).for_each(|secret| agent.set_secret(secret));
        Ok(credentials)
    }

    /// Says where the credentials come from (never a token).
    pub fn describe(&self) -> String {
        format!("OIDC federation into {} (session {}, {} s)", self.role, self.session_name, self.duration.as_secs())
    }
}

/// The toolkit's session length: the variable if valid, else 900 s.
fn duration(env: &Env, agent: &Agent) -> Duration {
    let (min, max) = DURATION_RANGE;
    let Some(text) = env.var(DURATION_VARIABLE) else { return Duration::from_secs(min) };
    match text.trim().parse::<u64>() {
        Ok(seconds) if (min..=max).contains(&seconds) => Duration::from_secs(seconds),
        _ => {
            agent.warning_line(&format!(
                "Invalid credential duration '{text}' in aws.rolecredential.maxduration: minimum is {min}, maximum {max}; using {min}"
            ));
            Duration::from_secs(min)
        }
    }
}

/// Serves the exec entry fresh EKS tokens, renewing the chain (a new ID
/// token, the web identity, then the task's role) when it runs out.
pub struct TokenBroker {
    pub env: Env,
    pub agent: Agent,
    pub federation: Federation,
    pub role: Option<AssumeRole>,
    pub target: AwsTarget,
    pub cluster: String,
    /// The chain's current credentials and when they were obtained.
    pub current: Mutex<(Credentials, SystemTime)>,
}

impl TokenBroker {
    /// An ExecCredential for the cluster, renewing the chain first if needed.
    pub async fn exec_credential(&self) -> anyhow::Result<String> {
        let now = eks::clock(&self.env)?;
        let (credentials, obtained) = self.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let renew_after = self.env.test_seconds(RENEW_AFTER_VAR);
        let stale = credentials.expiry().is_some_and(|e| e < now + crate::tasks::eks_token::CACHE_MARGIN)
            || renew_after.is_some_and(|after| now.duration_since(obtained).unwrap_or_default() >= after);
        let credentials = if stale { self.renew(now).await? } else { credentials };
        let region = self.target.region.as_deref().unwrap_or_default();
        crate::tasks::eks_token::signed_exec_credential(&self.env, &credentials, &self.cluster, region, now)
    }

    async fn renew(&self, now: SystemTime) -> anyhow::Result<Credentials> {
        let web = self.federation.credentials(&self.env, &self.agent, &self.target).await?;
        let register = |obtained: &_| credentials::secret_values(obtained).for_each(|s| self.agent.set_secret(s));
        let resolved =
            credentials::resolve(&self.env, &self.target, &Base::Given(web), self.role.as_ref(), &register).await?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = (resolved.credentials.clone(), now);
        self.agent.debug("Renewed the OIDC session for the kubeconfig's exec entry");
        Ok(resolved.credentials)
    }

    /// Answers the exec entry on `socket` from a thread of its own until the
    /// returned guard is dropped. A thread, not a task: kube-rs runs exec
    /// plugins with a blocking wait, which would starve a task on this runtime.
    pub fn serve(self, socket: &std::path::Path) -> anyhow::Result<BrokerGuard> {
        let listener = std::os::unix::net::UnixListener::bind(socket)?;
        listener.set_nonblocking(true)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name("eks-token-broker".into()).spawn(move || {
            runtime.block_on(async {
                let Ok(listener) = tokio::net::UnixListener::from_std(listener) else { return };
                let answer = || async { self.exec_credential().await.map_err(|e| format!("{e:#}")) };
                tokio::select! {
                    never = crate::aws::token_broker::serve(listener, answer) => match never {},
                    _ = stopped => {}
                }
            });
        })?;
        Ok(BrokerGuard { _stop: stop })
    }
}

/// Stops the broker's thread when dropped.
pub struct BrokerGuard {
    _stop: tokio::sync::oneshot::Sender<()>,
}
