//! AWS: credentials (one chain for every task), S3, STS and EKS.
//!
//! Every client is built from one `SdkConfig` made by [`sdk_config`], so
//! region, endpoint overrides and credentials are decided in one place.

pub mod arn;
pub mod credentials;
pub mod eks;
pub mod s3;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::azp::Env;

/// Where AWS calls go and with which identity.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    /// The region; `None` for the agent's own (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// An endpoint override for S3-compatible stores and emulators.
    pub endpoint_url: Option<String>,
}

/// Loads the SDK configuration: the default credential chain (environment,
/// IRSA web identity, EKS Pod Identity, profile, instance role) unless
/// `credentials` replaces it.
pub async fn sdk_config(env: &Env, target: &AwsTarget, credentials: Option<SharedCredentialsProvider>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = target.region.clone().or_else(|| env.var("AWS_REGION").map(str::to_string)) {
        loader = loader.region(Region::new(region));
    }
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    loader.load().await
}
