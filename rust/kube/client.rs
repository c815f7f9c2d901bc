//! Kubernetes clients from each kind of connection the tasks offer: the
//! agent pod's own service account, a kubeconfig file, or a Kubernetes
//! service connection (kubeconfig or service-account token).

use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use kube::{Client, Config};
use std::path::PathBuf;

use crate::azp::endpoint::KubernetesEndpoint;

/// How to reach a cluster.
#[derive(Debug, Clone)]
pub enum Connection {
    /// The service account of the pod this runs in.
    InCluster,
    /// A kubeconfig file; its current context.
    KubeconfigFile(PathBuf),
    /// A Kubernetes service connection.
    ServiceConnection(KubernetesEndpoint),
}

/// A connection that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not running in a Kubernetes pod (no service account token or KUBERNETES_SERVICE_HOST): {0}")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("cannot read kubeconfig {path}: {source}")]
    ReadKubeconfig { path: PathBuf, source: kube::config::KubeconfigError },
    #[error("the service connection's kubeconfig is not valid: {0}")]
    ParseKubeconfig(#[source] kube::config::KubeconfigError),
    #[error("cannot use the kubeconfig: {0}")]
    Config(#[source] kube::config::KubeconfigError),
    #[error("cannot create a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// A client for the connection. Transient answers (429, 503, 504) are
/// retried by the client itself.
pub async fn connect(connection: &Connection) -> Result<Client, Error> {
    let mut config = config(connection).await?;
    config.default_retry = true;
    use_ring();
    Client::try_from(config).map_err(Error::Client)
}

/// Makes ring the process's rustls provider, which kube's TLS takes: the
/// binary has only ring, but a build with a second provider (the tests' world
/// brings aws-lc) leaves rustls unable to choose.
pub fn use_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn config(connection: &Connection) -> Result<Config, Error> {
    let options = KubeConfigOptions::default();
    match connection {
        Connection::InCluster => Config::incluster().map_err(Error::InCluster),
        Connection::KubeconfigFile(path) => {
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|source| Error::ReadKubeconfig { path: path.clone(), source })?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(Error::Config)
        }
        Connection::ServiceConnection(KubernetesEndpoint::Kubeconfig {
            kubeconfig,
            context,
            accept_untrusted_certs,
            ..
        }) => {
            let mut kubeconfig = Kubeconfig::from_yaml(kubeconfig.expose()).map_err(Error::ParseKubeconfig)?;
            if *accept_untrusted_certs {
                kubeconfig.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()).for_each(skip_tls_verify);
            }
            let options = KubeConfigOptions { context: context.clone(), ..options };
            Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(Error::Config)
        }
        Connection::ServiceConnection(KubernetesEndpoint::ServiceAccount {
            server_url,
            token,
            ca_data,
            accept_untrusted_certs,
        }) => {
            let mut kubeconfig = token_kubeconfig(server_url, token.expose(), ca_data.as_deref());
            if *accept_untrusted_certs {
                kubeconfig.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()).for_each(skip_tls_verify);
            }
            Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(Error::Config)
        }
    }
}

/// What a connection's `acceptUntrustedCerts` means, as kubectl's
/// `--insecure-skip-tls-verify` does it: no verification, and no CA.
pub fn skip_tls_verify(cluster: &mut Cluster) {
    cluster.insecure_skip_tls_verify = Some(true);
    cluster.certificate_authority = None;
    cluster.certificate_authority_data = None;
}

/// A kubeconfig for a server, a bearer token and the server's CA
/// (`certificate-authority-data`: base64 of the PEM).
pub fn token_kubeconfig(server: &str, token: &str, ca_data: Option<&str>) -> Kubeconfig {
    let name = "cluster".to_string();
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: name.clone(),
            cluster: Some(Cluster {
                server: Some(server.to_string()),
                certificate_authority_data: ca_data.map(str::to_string),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: name.clone(),
            auth_info: Some(AuthInfo { token: Some(token.to_string().into()), ..Default::default() }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: name.clone(),
            context: Some(Context { cluster: name.clone(), user: Some(name.clone()), ..Default::default() }),
            other: Default::default(),
        }],
        current_context: Some(name),
        ..Default::default()
    }
}
