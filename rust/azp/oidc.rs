//! ID tokens for a service connection, from Azure DevOps: the job's OIDC
//! endpoint (`System.OidcRequestUri`, the distributed-task `oidctoken` API)
//! authorised with the job's access token.
//!
//! Upstream: Microsoft's tasks POST `{System.OidcRequestUri}?api-version=7.1&serviceConnectionId=<id>`
//! (azure-pipelines-tasks, GradleAuthenticateV0 `authConfig.ts`); the AWS
//! Toolkit calls the same API through `createOidcToken` with an empty body and
//! reads `oidcToken` from the answer (aws-toolkit-azure-devops 1.23,
//! `src/lib/awsConnectionParameters.ts`).

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;

use super::endpoint::system_access_token;
use super::proxy::{self, ProxySettings};
use super::{Env, Secret};

/// Why no ID token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the job's access token is not available to this step (the SystemVssConnection endpoint has no AccessToken); an OIDC service connection needs it to ask Azure DevOps for an ID token"
    )]
    NoAccessToken,
    #[error(
        "the agent gives no System.OidcRequestUri (nor System.CollectionUri, System.TeamProjectId, System.PlanId and System.JobId to build it): OIDC service connections need agent 3.x or later"
    )]
    NoRequestUri,
    #[error(
        "Azure DevOps refused the job's access token (HTTP {status}): it has expired or was revoked; a job that outlives its access token cannot get new ID tokens (shorten the job, or raise the pipeline's job authorization timeout)"
    )]
    AccessTokenRefused { status: u16 },
    #[error(
        "Azure DevOps gives no ID token for service connection {connection} (HTTP {status}: {message}); check that the connection exists and this pipeline is allowed to use it"
    )]
    Refused { connection: String, status: u16, message: String },
    #[error("cannot reach Azure DevOps for an ID token ({url})")]
    Unreachable {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Azure DevOps answered the ID token request without an oidcToken")]
    BadAnswer,
}

/// What is needed to ask for ID tokens of one service connection.
#[derive(Clone)]
pub struct IdTokenSource {
    url: String,
    access_token: Secret,
    connection_id: String,
    proxy: Option<ProxySettings>,
}

impl std::fmt::Debug for IdTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenSource").field("url", &self.url).field("connection_id", &self.connection_id).finish()
    }
}

/// The claims a user checks against the IAM trust policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claims {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
}

impl IdTokenSource {
    /// Reads the job's OIDC endpoint and access token for `connection_id`;
    /// requests go through `proxy` (the agent's) unless its bypass list names Azure DevOps.
    pub fn read(env: &Env, connection_id: &str, proxy: Option<ProxySettings>) -> Result<Self, Error> {
        let access_token = system_access_token(env).ok_or(Error::NoAccessToken)?;
        let url = env.var("SYSTEM_OIDCREQUESTURI").map(str::to_string).or_else(|| built_request_uri(env));
        let url = url.ok_or(Error::NoRequestUri)?;
        Ok(Self { url, access_token, connection_id: connection_id.to_string(), proxy })
    }

    /// The job's access token, to register as a secret.
    pub fn access_token(&self) -> &Secret {
        &self.access_token
    }

    /// A new ID token for the connection.
    pub async fn fetch(&self) -> Result<Secret, Error> {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{separator}api-version=7.1&serviceConnectionId={}", self.url, self.connection_id);
        let unreachable =
            |source: Box<dyn std::error::Error + Send + Sync>| Error::Unreachable { url: self.url.clone(), source };
        let request = hyper::Request::post(&url)
            .header("authorization", format!("Bearer {}", self.access_token.expose()))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(bytes::Bytes::from_static(b"{}")))
            .map_err(|e| unreachable(e.into()))?;
        let through = proxy::route(self.proxy.as_ref(), request.uri());
        let response = match through {
            Some(proxy) => {
                let mut tunnel = Tunnel::new(proxy.address().clone(), HttpConnector::new());
                if let Some(auth) = proxy.basic_auth() {
                    let value =
                        hyper::header::HeaderValue::from_str(auth.expose()).map_err(|e| unreachable(e.into()))?;
                    tunnel = tunnel.with_auth(value);
                }
                send(tunnel, request).await
            }
            None => {
                let mut direct = HttpConnector::new();
                direct.enforce_http(false);
                send(direct, request).await
            }
        };
        let response = response.map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| unreachable(e.into()))?.to_bytes();
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match status {
            200..=299 => answer
                .get("oidcToken")
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
                .map(Secret::new)
                .ok_or(Error::BadAnswer),
            401 | 403 => Err(Error::AccessTokenRefused { status }),
            _ => Err(Error::Refused {
                connection: self.connection_id.clone(),
                status,
                message: answer.get("message").and_then(|m| m.as_str()).unwrap_or("no message").to_string(),
            }),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sends `request` over TLS on connections made by `connector` (direct, or
/// a tunnel through the proxy), with ring as every TLS client of the binary
/// (see kube::client::use_ring).
async fn send<C>(
    connector: C,
    request: hyper::Request<Full<bytes::Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, BoxError>
where
    C: tower_service::Service<hyper::Uri> + Clone + Send + Sync + 'static,
    C::Response:
        hyper::rt::Read + hyper::rt::Write + hyper_util::client::legacy::connect::Connection + Send + Unpin + 'static,
    C::Future: Send + Unpin + 'static,
    C::Error: Into<BoxError>,
{
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<bytes::Bytes>>(connector);
    Ok(client.request(request).await?)
}

/// `{collection}{project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken`,
/// the route the AWS Toolkit's `createOidcToken` calls, for agents that do
/// not set `System.OidcRequestUri`.
fn built_request_uri(env: &Env) -> Option<String> {
    let collection = env.var("SYSTEM_COLLECTIONURI")?;
    let project = env.var("SYSTEM_TEAMPROJECTID")?;
    let hub = env.var("SYSTEM_HOSTTYPE").unwrap_or("build");
    let (plan, job) = (env.var("SYSTEM_PLANID")?, env.var("SYSTEM_JOBID")?);
    let collection = collection.trim_end_matches('/');
    Some(format!("{collection}/{project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken"))
}

/// The issuer, subject and audience of an ID token (not verified: for
/// messages only, as the AWS Toolkit logs them).
pub fn claims(token: &Secret) -> Claims {
    let payload = token.expose().split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='));
    let value: serde_json::Value = bytes.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let text = |name: &str| match &value[name] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(list) => list.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
        _ => String::new(),
    };
    Claims { issuer: text("iss"), subject: text("sub"), audience: text("aud") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    const TOKEN: (&str, &str) = ("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN", "job-token");

    #[test]
    fn the_request_uri_is_the_agents_or_built_from_the_job() {
        let given = env(&[TOKEN, ("SYSTEM_OIDCREQUESTURI", "https://dev.azure.com/o/p/_apis/x/oidctoken")]);
        assert_eq!(IdTokenSource::read(&given, "c", None).unwrap().url, "https://dev.azure.com/o/p/_apis/x/oidctoken");
        let built = env(&[
            TOKEN,
            ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/o/"),
            ("SYSTEM_TEAMPROJECTID", "p1"),
            ("SYSTEM_HOSTTYPE", "release"),
            ("SYSTEM_PLANID", "plan"),
            ("SYSTEM_JOBID", "job"),
        ]);
        assert_eq!(
            IdTokenSource::read(&built, "c", None).unwrap().url,
            "https://dev.azure.com/o/p1/_apis/distributedtask/hubs/release/plans/plan/jobs/job/oidctoken"
        );
        assert!(matches!(IdTokenSource::read(&env(&[TOKEN]), "c", None), Err(Error::NoRequestUri)));
        let no_token = env(&[("SYSTEM_OIDCREQUESTURI", "https://x")]);
        assert!(matches!(IdTokenSource::read(&no_token, "c", None), Err(Error::NoAccessToken)));
    }

    #[test]
    fn the_source_never_shows_the_access_token() {
        let source = IdTokenSource::read(&env(&[TOKEN, ("SYSTEM_OIDCREQUESTURI", "https://x")]), "c", None).unwrap();
        assert!(!format!("{source:?}").contains("job-token"));
    }

    #[test]
    fn claims_are_read_for_messages() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.sig",
            b64("{}"),
            b64(r#"{"iss":"https://vstoken.dev.azure.com/o","sub":"sc://o/p/c","aud":"api://AzureADTokenExchange"}"#)
        );
        let read = claims(&Secret::new(token));
        assert_eq!(read.subject, "sc://o/p/c");
        assert_eq!(read.audience, "api://AzureADTokenExchange");
        assert_eq!(claims(&Secret::new("garbage")), Claims::default());
    }
}
