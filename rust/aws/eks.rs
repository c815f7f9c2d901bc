//! EKS: describing a cluster and making tokens for it.

use crate::azp::Env;
use crate::cli::EksTokenArgs;

/// `azp-kube eks-token`: the ExecCredential JSON for the cluster.
pub fn token_command(_env: &Env, _args: &EksTokenArgs) -> anyhow::Result<String> {
    anyhow::bail!("not implemented yet")
}
