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
        "service connection {id} uses authorization type {kind:?}, which this task does not support (use Kubeconfig, ServiceAccount or AzureSubscription)"
    )]
    UnsupportedKind { id: String, kind: String },
    #[error("service connection {id}: the service account token is not valid base64")]
    BadToken { id: String },
    #[error(
        "service connection {id}: the service account certificate is neither a PEM certificate nor base64 of one (give the secret's ca.crt value as `kubectl get secret -o json` shows it)"
    )]
    BadCertificate { id: String },
}

/// A Kubernetes service connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubernetesEndpoint {
    /// A whole kubeconfig, and optionally the context to use.
    Kubeconfig { server_url: Option<String>, kubeconfig: Secret, context: Option<String>, accept_untrusted_certs: bool },
    /// An API server URL, a service account token and the cluster's CA.
    ServiceAccount {
        server_url: String,
        token: Secret,
        /// The CA as kubeconfig's `certificate-authority-data` takes it:
        /// base64 of the PEM, as a Secret's `ca.crt` data field holds it.
        ca_data: Option<String>,
        accept_untrusted_certs: bool,
    },
}

impl KubernetesEndpoint {
    /// The credential values to register with the agent. For a kubeconfig
    /// these are the values under `users` that authenticate, never its
    /// lines: the agent masks a registered value everywhere in the job, so
    /// `apiVersion: v1` or `namespace: default` must not be one.
    pub fn secrets(&self) -> impl Iterator<Item = Secret> {
        match self {
            Self::Kubeconfig { kubeconfig, .. } => kubeconfig_credentials(kubeconfig.expose()),
            Self::ServiceAccount { token, .. } => vec![token.clone()],
        }
        .into_iter()
    }

    /// The connection's `acceptUntrustedCerts`: no TLS verification.
    pub fn accepts_untrusted_certs(&self) -> bool {
        match self {
            Self::Kubeconfig { accept_untrusted_certs, .. } | Self::ServiceAccount { accept_untrusted_certs, .. } => {
                *accept_untrusted_certs
            }
        }
    }
}

/// The credentials in a kubeconfig: each user's token, password, client key
/// and certificate (and the key's PEM lines, as a decoding tool could print
/// them), auth-provider settings and exec environment values.
fn kubeconfig_credentials(kubeconfig: &str) -> Vec<Secret> {
    use serde_json::Value;
    fn text(value: &Value) -> Option<&str> {
        value.as_str().map(str::trim).filter(|v| !v.is_empty())
    }
    let Ok(config) = serde_saphyr::from_str::<Value>(kubeconfig) else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    let users = config.get("users").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for user in users.iter().filter_map(|u| u.get("user")) {
        for key in ["token", "password", "client-key-data", "client-certificate-data"] {
            found.extend(user.get(key).and_then(text).map(str::to_string));
        }
        if let Some(pem) = user.get("client-key-data").and_then(text).and_then(decode_base64) {
            found.extend(
                pem.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("-----")).map(str::to_string),
            );
        }
        if let Some(config) = user.get("auth-provider").and_then(|p| p.get("config")).and_then(Value::as_object) {
            found.extend(config.values().filter_map(text).map(str::to_string));
        }
        let env = user.get("exec").and_then(|e| e.get("env")).and_then(Value::as_array).map(Vec::as_slice);
        found
            .extend(env.unwrap_or_default().iter().filter_map(|v| v.get("value")).filter_map(text).map(str::to_string));
    }
    found.sort();
    found.dedup();
    found.into_iter().map(Secret::new).collect()
}

/// A service account certificate as `certificate-authority-data`. The agent
/// delivers the Secret's `ca.crt` data field (base64 of the PEM), which
/// Microsoft's `createKubeconfig` writes unchanged; a pasted PEM is encoded.
fn ca_data(value: &str) -> Option<String> {
    let value = value.trim();
    if value.starts_with("-----BEGIN") {
        return Some(base64::engine::general_purpose::STANDARD.encode(value));
    }
    let compact: String = value.split_whitespace().collect();
    decode_base64(&compact).filter(|pem| pem.trim_start().starts_with("-----BEGIN")).map(|_| compact)
}

fn decode_base64(value: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(value).ok()?;
    String::from_utf8(bytes).ok()
}

/// An AWS service connection of the AWS Toolkit for Azure DevOps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AwsEndpoint {
    /// The connection's id (an OIDC token is asked for it by id).
    pub id: String,
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
    /// Whether the connection's credentials come from OIDC federation: `useOIDC`
    /// and no keys, as the AWS Toolkit decides (`attemptAssumeRoleFromOIDC`).
    pub fn uses_oidc(&self) -> bool {
        self.use_oidc && self.access_key_id.is_none()
    }

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
    let accept_untrusted_certs = conn.data("acceptUntrustedCerts").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    match kind.as_str() {
        k if k.eq_ignore_ascii_case("Kubeconfig") => Ok(KubernetesEndpoint::Kubeconfig {
            server_url: conn.url(),
            kubeconfig: Secret::new(conn.parameter("kubeconfig").ok_or_else(|| conn.missing("kubeconfig"))?),
            context: conn.parameter("clusterContext"),
            accept_untrusted_certs,
        }),
        // Microsoft's Kubernetes tasks (kubernetes-common) read an
        // AzureSubscription connection's token and CA exactly as a
        // ServiceAccount one's.
        k if k.eq_ignore_ascii_case("ServiceAccount") || k.eq_ignore_ascii_case("AzureSubscription") => {
            let encoded = conn.parameter("apiToken").ok_or_else(|| conn.missing("service account token (apiToken)"))?;
            let token = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or(EndpointError::BadToken { id: conn.id.clone() })?;
            let ca_data = match conn.parameter("serviceAccountCertificate") {
                Some(value) => Some(ca_data(&value).ok_or(EndpointError::BadCertificate { id: conn.id.clone() })?),
                None => None,
            };
            Ok(KubernetesEndpoint::ServiceAccount {
                server_url: conn.url().ok_or_else(|| conn.missing("server URL"))?,
                token: Secret::new(token),
                ca_data,
                accept_untrusted_certs,
            })
        }
        _ => Err(EndpointError::UnsupportedKind { id: conn.id, kind }),
    }
}

/// Reads an AWS Toolkit service connection by id.
pub fn read_aws(env: &Env, id: &str) -> Result<AwsEndpoint, EndpointError> {
    let conn = Connection::open(env, id)?;
    let endpoint = AwsEndpoint {
        id: conn.id.clone(),
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

/// The job's access token to Azure DevOps: the `AccessToken` of the
/// `SystemVssConnection` endpoint, which the agent gives every task (as
/// Microsoft's tasks read it: `getEndpointAuthorization('SYSTEMVSSCONNECTION')`).
pub fn system_access_token(env: &Env) -> Option<Secret> {
    let conn = Connection { env, id: "SYSTEMVSSCONNECTION".into(), auth: None };
    let from_json = || Connection::open(env, "SYSTEMVSSCONNECTION").ok()?.parameter("AccessToken");
    conn.parameter("AccessToken").or_else(from_json).map(Secret::new)
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
        let KubernetesEndpoint::Kubeconfig { kubeconfig, context, accept_untrusted_certs, .. } =
            read_kubernetes(&env, ID).unwrap()
        else {
            panic!("expected a kubeconfig connection")
        };
        assert_eq!(kubeconfig.expose(), "apiVersion: v1\nkind: Config");
        assert_eq!(context.as_deref(), Some("prod"));
        assert!(!accept_untrusted_certs);
    }

    #[test]
    fn a_kubeconfig_registers_its_credentials_not_its_lines() {
        let key_pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAkeyline1\nMIIEowIBAAKCAQEAkeyline2\n-----END RSA PRIVATE KEY-----\n";
        let key = base64::engine::general_purpose::STANDARD.encode(key_pem);
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://k8s:6443\n\
             users:\n- name: a\n  user:\n    token: bearer-t0ken\n- name: b\n  user:\n    client-key-data: {key}\n    \
             client-certificate-data: Y2VydA==\n- name: c\n  user:\n    username: admin\n    password: pa55word\n\
             - name: d\n  user:\n    auth-provider:\n      name: oidc\n      config:\n        id-token: id-t0ken\n\
             - name: e\n  user:\n    exec:\n      command: aws\n      env:\n      - name: AWS_SECRET_ACCESS_KEY\n        value: exec-s3cret\n\
             contexts: []\nnamespace: default\n"
        );
        let endpoint = KubernetesEndpoint::Kubeconfig {
            server_url: None,
            kubeconfig: Secret::new(kubeconfig),
            context: None,
            accept_untrusted_certs: false,
        };
        let secrets: Vec<String> = endpoint.secrets().map(|s| s.expose().to_string()).collect();
        for expected in [
            "bearer-t0ken",
            key.as_str(),
            "Y2VydA==",
            "pa55word",
            "id-t0ken",
            "exec-s3cret",
            "MIIEowIBAAKCAQEAkeyline1",
        ] {
            assert!(secrets.iter().any(|s| s == expected), "{expected} registered");
        }
        for structural in
            ["apiVersion: v1", "users:", "namespace: default", "admin", "oidc", "-----BEGIN RSA PRIVATE KEY-----"]
        {
            assert!(!secrets.iter().any(|s| s.contains(structural)), "{structural} is not a secret");
        }
    }

    #[test]
    fn service_account_connection_decodes_the_token() {
        let env = env(&[
            ("ENDPOINT_URL_<id>", "https://k8s:6443"),
            ("ENDPOINT_AUTH_SCHEME_<id>", "Token"),
            ("ENDPOINT_AUTH_PARAMETER_<id>_APITOKEN", "c2VjcmV0LXRva2Vu"),
            ("ENDPOINT_AUTH_PARAMETER_<id>_SERVICEACCOUNTCERTIFICATE", CA_CRT_DATA),
            ("ENDPOINT_DATA_<id>_AUTHORIZATIONTYPE", "ServiceAccount"),
        ]);
        let endpoint = read_kubernetes(&env, ID).unwrap();
        assert_eq!(endpoint.secrets().next().unwrap().expose(), "secret-token");
        assert!(!format!("{endpoint:?}").contains("secret-token"));
    }

    /// `kubectl get secret -o json`'s `.data["ca.crt"]`: base64 of a PEM.
    const CA_CRT_DATA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJkekNDQVIyZ0F3SUJBZ0lCQURBS0JnZ3Foa2pPUFFRREFqQWpNU0V3SHdZRFZRUUREQmhyTTNNdGMyVnkKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

    fn service_account(
        kind: &str,
        certificate: &str,
        accept_untrusted: Option<&str>,
    ) -> Result<KubernetesEndpoint, EndpointError> {
        let mut vars = vec![
            ("ENDPOINT_URL_<id>", "https://k8s:6443"),
            ("ENDPOINT_AUTH_SCHEME_<id>", "Token"),
            ("ENDPOINT_AUTH_PARAMETER_<id>_APITOKEN", "c2VjcmV0LXRva2Vu"),
            ("ENDPOINT_AUTH_PARAMETER_<id>_SERVICEACCOUNTCERTIFICATE", certificate),
            ("ENDPOINT_DATA_<id>_AUTHORIZATIONTYPE", kind),
        ];
        vars.extend(accept_untrusted.map(|v| ("ENDPOINT_DATA_<id>_ACCEPTUNTRUSTEDCERTS", v)));
        read_kubernetes(&env(&vars), ID)
    }

    #[test]
    fn the_certificate_is_taken_as_the_agent_delivers_it_or_as_a_pasted_pem() {
        let as_delivered = service_account("ServiceAccount", CA_CRT_DATA, None).unwrap();
        let KubernetesEndpoint::ServiceAccount { ca_data, accept_untrusted_certs, .. } = as_delivered else { panic!() };
        assert_eq!(ca_data.as_deref(), Some(CA_CRT_DATA), "base64 of a PEM is used unchanged, not encoded again");
        assert!(!accept_untrusted_certs);
        let pem = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(CA_CRT_DATA).unwrap()).unwrap();
        let pasted = service_account("ServiceAccount", &pem, None).unwrap();
        let KubernetesEndpoint::ServiceAccount { ca_data, .. } = pasted else { panic!() };
        assert_eq!(ca_data.as_deref(), Some(base64::engine::general_purpose::STANDARD.encode(pem.trim())).as_deref());
        assert_eq!(
            service_account("ServiceAccount", "not a certificate", None).unwrap_err(),
            EndpointError::BadCertificate { id: ID.into() }
        );
    }

    #[test]
    fn an_azure_subscription_connection_reads_as_a_service_account_one() {
        let endpoint = service_account("AzureSubscription", CA_CRT_DATA, Some("true")).unwrap();
        let KubernetesEndpoint::ServiceAccount { accept_untrusted_certs, .. } = &endpoint else { panic!() };
        assert!(*accept_untrusted_certs);
        assert_eq!(endpoint.secrets().next().unwrap().expose(), "secret-token");
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
    fn oidc_is_used_only_without_keys_as_the_toolkit_decides() {
        let oidc =
            r#"{"parameters":{"assumeRoleArn":"arn:aws:iam::1:role/r","useOIDC":"true"},"scheme":"UsernamePassword"}"#;
        let aws = read_aws(&env(&[("ENDPOINT_AUTH_<id>", oidc)]), ID).unwrap();
        assert!(aws.uses_oidc());
        assert_eq!(aws.id, ID);
        let with_keys = oidc.replace("\"useOIDC\"", "\"username\":\"AKID\",\"password\":\"s\",\"useOIDC\"");
        assert!(!read_aws(&env(&[("ENDPOINT_AUTH_<id>", &with_keys)]), ID).unwrap().uses_oidc());
    }

    #[test]
    fn a_connection_the_step_cannot_see_is_named() {
        let err = read_aws(&Env::default(), ID).unwrap_err();
        assert!(err.to_string().contains(ID), "{err}");
    }

    #[test]
    fn unsupported_kind_is_refused() {
        let env =
            env(&[("ENDPOINT_AUTH_SCHEME_<id>", "x"), ("ENDPOINT_DATA_<id>_AUTHORIZATIONTYPE", "WorkloadIdentity")]);
        assert!(matches!(read_kubernetes(&env, ID), Err(EndpointError::UnsupportedKind { .. })));
    }
}
