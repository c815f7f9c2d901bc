//! Kubernetes clients from each kind of connection the tasks offer: the
//! agent pod's own service account, a kubeconfig file, or a Kubernetes
//! service connection (kubeconfig or service-account token).

use base64::Engine as _;
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
    Client::try_from(config).map_err(Error::Client)
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
        Connection::ServiceConnection(KubernetesEndpoint::Kubeconfig { kubeconfig, context, .. }) => {
            let kubeconfig = Kubeconfig::from_yaml(kubeconfig.expose()).map_err(Error::ParseKubeconfig)?;
            let options = KubeConfigOptions { context: context.clone(), ..options };
            Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(Error::Config)
        }
        Connection::ServiceConnection(KubernetesEndpoint::ServiceAccount { server_url, token, certificate }) => {
            let kubeconfig = token_kubeconfig(server_url, token.expose(), certificate.as_deref());
            Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(Error::Config)
        }
    }
}

/// A kubeconfig for a server, a bearer token and the server's CA (PEM).
pub fn token_kubeconfig(server: &str, token: &str, ca_pem: Option<&str>) -> Kubeconfig {
    let name = "cluster".to_string();
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: name.clone(),
            cluster: Some(Cluster {
                server: Some(server.to_string()),
                certificate_authority_data: ca_pem
                    .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem.trim().as_bytes())),
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
