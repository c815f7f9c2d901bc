//! Kubernetes clients for a [`Connection`]: the agent pod's own service
//! account, or the kubeconfig [`kubeconfig::build`] makes for the others.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::Connection;
use super::kubeconfig::{self, TokenAt};
use crate::azp::Env;
use crate::azp::proxy::{self, ProxySettings};

/// A connection that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not running in a Kubernetes pod (no service account token or KUBERNETES_SERVICE_HOST)")]
    InCluster(#[source] kube::config::InClusterError),
    #[error(transparent)]
    Kubeconfig(#[from] kubeconfig::Error),
    #[error("cannot use the kubeconfig")]
    Config(#[source] kube::config::KubeconfigError),
    #[error("cannot create a Kubernetes client")]
    Client(#[source] kube::Error),
}

/// A client for the connection, through the agent's proxy unless its bypass
/// list names the cluster. Transient answers (429, 503, 504) are retried by
/// the client itself.
pub async fn connect(connection: &Connection, env: &Env, proxy: Option<&ProxySettings>) -> Result<Client, Error> {
    let mut config = match connection {
        // kube-rs's own: the service account's token file and CA, and its namespace.
        Connection::InCluster => Config::incluster().map_err(Error::InCluster)?,
        other => {
            let yaml = kubeconfig::build(other, env, TokenAt::Inline)?;
            let mut kubeconfig = Kubeconfig::from_yaml(&yaml).map_err(Error::Config)?;
            hide_secret_variables(&mut kubeconfig, env);
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.map_err(Error::Config)?
        }
    };
    config.default_retry = true;
    through(&mut config, proxy);
    use_ring();
    Client::try_from(config).map_err(Error::Client)
}

/// A kubeconfig's exec entries (`aws eks get-token`, …) run without the
/// pipeline's secret variables (`SECRET_*`: the agent's proxy password among
/// them), which no credential plugin needs.
fn hide_secret_variables(kubeconfig: &mut Kubeconfig, env: &Env) {
    let secret: Vec<String> = env.names().filter(|n| n.starts_with("SECRET_")).map(str::to_string).collect();
    if secret.is_empty() {
        return;
    }
    for exec in kubeconfig.auth_infos.iter_mut().filter_map(|a| a.auth_info.as_mut()?.exec.as_mut()) {
        exec.drop_env.get_or_insert_with(Vec::new).extend(secret.iter().cloned());
    }
}

/// Sends a client's connections through the agent's proxy (a CONNECT tunnel,
/// with its credentials), or straight to a cluster the bypass list names.
/// Without an agent proxy, kube's own choice (`HTTPS_PROXY`/`NO_PROXY`) stays.
pub fn through(config: &mut Config, proxy: Option<&ProxySettings>) {
    let Some(proxy) = proxy else { return };
    config.proxy_url =
        proxy::route(Some(proxy), &config.cluster_url).and_then(|p| p.url_with_credentials().expose().parse().ok());
}

/// Makes ring the process's rustls provider, which kube's TLS takes: the
/// binary has only ring, but a build with a second provider (the tests' world
/// brings aws-lc) leaves rustls unable to choose.
pub fn use_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
