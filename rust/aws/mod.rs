//! AWS: credentials (one chain for every task), S3, STS and EKS.
//!
//! Every client is built from one `SdkConfig` made by [`sdk_config`], so
//! region, endpoint overrides and credentials are decided in one place.

pub mod arn;
pub mod credentials;
#[cfg(feature = "multicluster-helm")]
pub mod ecr;
#[cfg(feature = "multicluster-helm")]
pub mod eks;
#[cfg(feature = "kaniko-build")]
pub mod s3;
#[cfg(feature = "multicluster-helm")]
pub mod token_broker;
pub mod web_identity;

use aws_config::{BehaviorVersion, Region, SdkConfig};
// The smithy types every AWS SDK crate re-exports.
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::config::SharedHttpClient;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use crate::azp::Env;
use crate::azp::proxy::ProxySettings;

/// Where AWS calls go and with which identity.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    /// The region; `None` for the agent's own (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// An endpoint override for S3-compatible stores and emulators.
    pub endpoint_url: Option<String>,
    /// The agent's proxy, which every request goes through unless its bypass list says otherwise.
    pub proxy: Option<ProxySettings>,
}

/// The region: the one given, else the agent's `AWS_REGION`, else its
/// `AWS_DEFAULT_REGION`. This is the order of the SDK's own environment
/// provider (`EnvironmentVariableRegionProvider`, aws-config 1.13
/// src/environment/region.rs) and of the AWS CLI; every task and the pod's
/// `AWS_REGION` follow it, so that none of them disagrees with the SDK.
pub fn region(env: &Env, given: Option<&str>) -> Option<String> {
    given.or_else(|| env.var("AWS_REGION")).or_else(|| env.var("AWS_DEFAULT_REGION")).map(str::to_string)
}

/// Loads the SDK configuration: the default credential chain (environment,
/// IRSA web identity, EKS Pod Identity, profile, instance role) unless
/// `credentials` replaces it.
pub async fn sdk_config(env: &Env, target: &AwsTarget, credentials: Option<SharedCredentialsProvider>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region(env, target.region.as_deref()) {
        loader = loader.region(Region::new(region));
    }
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    let client = match &target.proxy {
        Some(proxy) => SharedHttpClient::new(ProxyRouting {
            proxied: https_client(proxied(proxy)),
            direct: https_client(ProxyConfig::disabled()),
            proxy: proxy.clone(),
        }),
        None => https_client(ProxyConfig::from_env()),
    };
    loader.http_client(client).load().await
}

/// The SDK's default HTTPS client (the SDK's timeouts and sleep) on rustls
/// with ring instead of aws-lc: one TLS crypto library in the binary, the one
/// kube uses. Without the agent's proxy it honours `HTTPS_PROXY`/`NO_PROXY`.
fn https_client(proxy: ProxyConfig) -> SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector =
            aws_smithy_http_client::ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(proxy.clone()));
        connector.build()
    })
}

/// The SDK's proxy configuration for every request (CONNECT for HTTPS),
/// with the agent's credentials percent-encoded in the URL: the SDK's own
/// `with_basic_auth` pastes them in unencoded (aws-smithy-http-client 1.5.2
/// `build_proxy_url`), which breaks a password with `@`, `:` or `/`.
fn proxied(proxy: &ProxySettings) -> ProxyConfig {
    let url = proxy.url_with_credentials();
    // The URL is made of an http:// address that parsed already.
    ProxyConfig::all(url.expose()).unwrap_or_else(|_| ProxyConfig::disabled())
}

/// Sends each request through the agent's proxy, or around it when the
/// request's `scheme://host[:port]` is in its bypass list (the SDK's own
/// `NO_PROXY` rules cannot say the agent's regular expressions).
#[derive(Debug)]
struct ProxyRouting {
    proxied: SharedHttpClient,
    direct: SharedHttpClient,
    proxy: ProxySettings,
}

impl HttpClient for ProxyRouting {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(RoutedConnector {
            proxied: self.proxied.http_connector(settings, components),
            direct: self.direct.http_connector(settings, components),
            proxy: self.proxy.clone(),
        })
    }
}

#[derive(Debug)]
struct RoutedConnector {
    proxied: SharedHttpConnector,
    direct: SharedHttpConnector,
    proxy: ProxySettings,
}

impl HttpConnector for RoutedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let bypass = request.uri().parse::<hyper::Uri>().is_ok_and(|uri| self.proxy.bypasses(&uri));
        if bypass { self.direct.call(request) } else { self.proxied.call(request) }
    }
}

/// What a failed AWS call says, for a user: the service's code and message
/// (`SlowDown: Please reduce your request rate.`), or, for a call that got
/// no answer, its chain of causes (`dispatch failure: … connection refused`).
/// The SDK's own text for a service error is a Rust debug dump.
pub fn sdk_message<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => error_chain(error),
    }
}

/// An error and its sources, joined with `: `, each said once.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.contains(&text) && text != "service error" && !text.is_empty() {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_falls_back_as_the_sdk_and_the_aws_cli_do() {
        let env = |vars: &[(&str, &str)]| Env::from_vars(vars.iter().copied());
        let both = env(&[("AWS_REGION", "eu-west-1"), ("AWS_DEFAULT_REGION", "us-east-2")]);
        assert_eq!(region(&both, Some("ap-south-1")).as_deref(), Some("ap-south-1"));
        assert_eq!(region(&both, None).as_deref(), Some("eu-west-1"));
        let default_only = env(&[("AWS_DEFAULT_REGION", "us-east-2")]);
        assert_eq!(region(&default_only, None).as_deref(), Some("us-east-2"));
        assert_eq!(region(&env(&[]), None), None);
    }

    #[tokio::test]
    async fn the_sdk_config_of_an_agent_with_only_aws_default_region_has_that_region() {
        let env = Env::from_vars([("AWS_DEFAULT_REGION", "us-east-2")]);
        let config = sdk_config(&env, &AwsTarget::default(), None).await;
        assert_eq!(config.region().map(ToString::to_string).as_deref(), Some("us-east-2"));
    }
}
