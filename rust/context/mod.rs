//! The build context: walk, .dockerignore, tar, gzip. No network.

use crate::cli::ContextArgs;

/// `azp-kube context`: lists or writes the context.
pub fn run_cli(_args: &ContextArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
