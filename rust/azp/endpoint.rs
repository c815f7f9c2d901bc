//! Service connections, as the agent exports them for `connectedService:*`
//! inputs: `ENDPOINT_URL_<id>`, `ENDPOINT_AUTH_<id>` (JSON),
//! `ENDPOINT_AUTH_PARAMETER_<id>_<KEY>` and `ENDPOINT_DATA_<id>_<KEY>`.
//!
//! Two kinds are modelled: Kubernetes (kubeconfig or service account, as
//! HelmDeploy reads it) and AWS (the AWS Toolkit's connection).

use base64::Engine as _;

use super::Secret;
use super::env::{Env, mangle};

/// A service connection that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error(
        "service connection {id} is not available to this step (no ENDPOINT_AUTH_{id}); check that the step may use it"
    )]
    Missing { id: String },
    #[error("service connection {id} has no {what}")]
    MissingField { id: String, what: &'static str },
    #[error(
        "service connection {id} uses authorization type {kind:?}, which this task does not support (use Kubeconfig or ServiceAccount)"
    )]
    UnsupportedKind { id: String, kind: String },
    #[error("service connection {id}: the service account token is not valid base64")]
    BadToken { id: String },
}

/// A Kubernetes service connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubernetesEndpoint {
    /// A whole kubeconfig, and optionally the context to use.
    Kubeconfig { server_url: Option<String>, kubeconfig: Secret, context: Option<String> },
    /// An API server URL, a service account token and the cluster's CA.
    ServiceAccount { server_url: String, token: Secret, certificate: Option<String> },
}

impl KubernetesEndpoint {
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        match self {
            Self::Kubeconfig { kubeconfig, .. } => std::iter::once(kubeconfig),
            Self::ServiceAccount { token, .. } => std::iter::once(token),
        }
    }
}

/// An AWS service connection of the AWS Toolkit for Azure DevOps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AwsEndpoint {
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub assume_role_arn: Option<String>,
    pub role_session_name: Option<String>,
    pub external_id: Option<String>,
    /// Use the pipeline's OIDC token with AssumeRoleWithWebIdentity.
    pub use_oidc: bool,
}

impl AwsEndpoint {
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        [&self.access_key_id, &self.secret_access_key, &self.session_token].into_iter().flatten()
    }
}

/// The exported variables of one connection.
struct Connection<'a> {
    env: &'a Env,
    id: String,
    auth: Option<serde_json::Value>,
}

impl<'a> Connection<'a> {
    fn open(env: &'a Env, id: &str) -> Result<Self, EndpointError> {
        let id = id.trim().to_string();
        let auth = env.var(&format!("ENDPOINT_AUTH_{id}")).and_then(|json| serde_json::from_str(json).ok());
        let has_parameters = env.var(&format!("ENDPOINT_AUTH_SCHEME_{id}")).is_some() || auth.is_some();
        if !has_parameters {
            return Err(EndpointError::Missing { id });
        }
        Ok(Self { env, id, auth })
    }

    /// An authorization parameter, from its own variable or the JSON.
    fn parameter(&self, key: &str) -> Option<String> {
        let from_var = self.env.var(&format!("ENDPOINT_AUTH_PARAMETER_{}_{}", self.id, mangle(key)));
        from_var.map(str::to_string).or_else(|| {
            let parameters = self.auth.as_ref()?.get("parameters")?.as_object()?;
            let (_, value) = parameters.iter().find(|(k, _)| k.eq_ignore_ascii_case(key))?;
            value.as_str().filter(|v| !v.is_empty()).map(str::to_string)
        })
    }

    fn data(&self, key: &str) -> Option<String> {
        self.env.var(&format!("ENDPOINT_DATA_{}_{}", self.id, mangle(key))).map(str::to_string)
    }

    fn url(&self) -> Option<String> {
        self.env.var(&format!("ENDPOINT_URL_{}", self.id)).map(str::to_string)
    }

    fn missing(&self, what: &'static str) -> EndpointError {
        EndpointError::MissingField { id: self.id.clone(), what }
    }
}

/// Reads a Kubernetes service connection by id.
pub fn read_kubernetes(env: &Env, id: &str) -> Result<KubernetesEndpoint, EndpointError> {
    let conn = Connection::open(env, id)?;
    let kind = conn.data("authorizationType").unwrap_or_else(|| "Kubeconfig".into());
    match kind.as_str() {
        k if k.eq_ignore_ascii_case("Kubeconfig") => Ok(KubernetesEndpoint::Kubeconfig {
            server_url: conn.url(),
            kubeconfig: Secret::new(conn.parameter("kubeconfig").ok_or_else(|| conn.missing("kubeconfig"))?),
            context: conn.parameter("clusterContext"),
        }),
        k if k.eq_ignore_ascii_case("ServiceAccount") => {
            let encoded = conn.parameter("apiToken").ok_or_else(|| conn.missing("service account token (apiToken)"))?;
            let token = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or(EndpointError::BadToken { id: conn.id.clone() })?;
            Ok(KubernetesEndpoint::ServiceAccount {
                server_url: conn.url().ok_or_else(|| conn.missing("server URL"))?,
                token: Secret::new(token),
                certificate: conn.parameter("serviceAccountCertificate"),
            })
        }
        _ => Err(EndpointError::UnsupportedKind { id: conn.id, kind }),
    }
}

/// Reads an AWS Toolkit service connection by id.
pub fn read_aws(env: &Env, id: &str) -> Result<AwsEndpoint, EndpointError> {
    let conn = Connection::open(env, id)?;
    let endpoint = AwsEndpoint {
        access_key_id: conn.parameter("username").map(Secret::new),
        secret_access_key: conn.parameter("password").map(Secret::new),
        session_token: conn.parameter("sessionToken").map(Secret::new),
        assume_role_arn: conn.parameter("assumeRoleArn"),
        role_session_name: conn.parameter("roleSessionName"),
        external_id: conn.parameter("externalId"),
        use_oidc: conn.parameter("useOIDC").is_some_and(|v| v.eq_ignore_ascii_case("true")),
    };
    if endpoint.access_key_id.is_some() != endpoint.secret_access_key.is_some() {
        return Err(conn.missing("complete key pair (both access key id and secret access key)"));
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b6f1e4c-3f3e-4f7e-9c59-2d4a7c3a1b22";

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_vars(vars.iter().map(|(k, v)| (k.replace("<id>", ID), v.to_string())))
    }

    #[test]
    fn kubeconfig_connection() {
        let env = env(&[
            ("ENDPOINT_URL_<id>", "https://k8s:6443"),
            ("ENDPOINT_AUTH_<id>", r#"{"parameters":{"kubeconfig":"apiVersion: v1"},"scheme":"Kubernetes"}"#),
            ("ENDPOINT_AUTH_PARAMETER_<id>_KUBECONFIG", "apiVersion: v1\nkind: Config"),
            ("ENDPOINT_AUTH_PARAMETER_<id>_CLUSTERCONTEXT", "prod"),
            ("ENDPOINT_DATA_<id>_AUTHORIZATIONTYPE", "Kubeconfig"),
        ]);
        let KubernetesEndpoint::Kubeconfig { kubeconfig, context, .. } = read_kubernetes(&env, ID).unwrap() else {
            panic!("expected a kubeconfig connection")
        };
        assert_eq!(kubeconfig.expose(), "apiVersion: v1\nkind: Config");
        assert_eq!(context.as_deref(), Some("prod"));
    }

    #[test]
    fn service_account_connection_decodes_the_token() {
        let env = env(&[
            ("ENDPOINT_URL_<id>", "https://k8s:6443"),
            ("ENDPOINT_AUTH_SCHEME_<id>", "Token"),
            ("ENDPOINT_AUTH_PARAMETER_<id>_APITOKEN", "c2VjcmV0LXRva2Vu"),
            ("ENDPOINT_AUTH_PARAMETER_<id>_SERVICEACCOUNTCERTIFICATE", "-----BEGIN CERTIFICATE-----"),
            ("ENDPOINT_DATA_<id>_AUTHORIZATIONTYPE", "ServiceAccount"),
        ]);
        let endpoint = read_kubernetes(&env, ID).unwrap();
        assert_eq!(endpoint.secrets().next().unwrap().expose(), "secret-token");
        assert!(!format!("{endpoint:?}").contains("secret-token"));
    }

    #[test]
    fn aws_connection_from_json_and_variables() {
        let env = env(&[
            (
                "ENDPOINT_AUTH_<id>",
                r#"{"parameters":{"username":"AKIDEXAMPLE","password":"wJalr","assumeRoleArn":"arn:aws:iam::222222222222:role/deployer"},"scheme":"UsernamePassword"}"#,
            ),
            ("ENDPOINT_AUTH_PARAMETER_<id>_SESSIONTOKEN", "FwoGZX"),
            ("ENDPOINT_AUTH_PARAMETER_<id>_EXTERNALID", "ext-1"),
        ]);
        let aws = read_aws(&env, ID).unwrap();
        assert_eq!(aws.access_key_id.as_ref().unwrap().expose(), "AKIDEXAMPLE");
        assert_eq!(aws.session_token.as_ref().unwrap().expose(), "FwoGZX");
        assert_eq!(aws.assume_role_arn.as_deref(), Some("arn:aws:iam::222222222222:role/deployer"));
        assert_eq!(aws.external_id.as_deref(), Some("ext-1"));
        assert_eq!(aws.secrets().count(), 3);
    }

    #[test]
    fn a_connection_the_step_cannot_see_is_named() {
        let err = read_aws(&Env::default(), ID).unwrap_err();
        assert!(err.to_string().contains(ID), "{err}");
    }

    #[test]
    fn unsupported_kind_is_refused() {
        let env =
            env(&[("ENDPOINT_AUTH_SCHEME_<id>", "x"), ("ENDPOINT_DATA_<id>_AUTHORIZATIONTYPE", "AzureSubscription")]);
        assert!(matches!(read_kubernetes(&env, ID), Err(EndpointError::UnsupportedKind { .. })));
    }
}
