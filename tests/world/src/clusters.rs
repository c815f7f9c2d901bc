//! More clusters beside the world's own: each an API server of its own (port, CA, store,
//! kubelet, controllers, RBAC, admin token) and an EKS cluster entry of its own in moto, in
//! the account and region it is created for. A deploy to several accounts then reaches
//! several servers, as it does in AWS, instead of one simulator playing every cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::eks::EksAuthenticator;
use crate::pods::Kubelet;

/// Where another cluster lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The EKS cluster name (unique in its account and region).
    pub name: String,
    /// The AWS region of the cluster.
    pub region: String,
    /// A role in the cluster's account, assumed (with the world's keys) to create the cluster
    /// there; None creates it in the world's own account.
    pub account_role: Option<String>,
}

/// A running extra cluster; it stops with the world.
pub struct ExtraCluster {
    spec: ClusterSpec,
    url: String,
    ca_pem: String,
    admin_token: String,
    kubeconfig_path: PathBuf,
    cluster: Arc<Cluster>,
    kubelet: Arc<Kubelet>,
    eks: Option<Arc<EksAuthenticator>>,
}

impl ExtraCluster {
    pub(crate) fn new(
        spec: ClusterSpec,
        served: Served,
        kubeconfig_path: PathBuf,
        eks: Option<Arc<EksAuthenticator>>,
    ) -> Self {
        let Served { url, ca_pem, admin_token, cluster, kubelet } = served;
        Self { spec, url, ca_pem, admin_token, kubeconfig_path, cluster, kubelet, eks }
    }

    /// The EKS cluster name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The AWS region.
    pub fn region(&self) -> &str {
        &self.spec.region
    }

    /// The 12-digit account the cluster's EKS entry is in.
    pub fn account(&self) -> &str {
        match &self.spec.account_role {
            Some(role) => role.split(':').nth(4).unwrap_or_default(),
            None => crate::world::ACCOUNT,
        }
    }

    /// The API server URL (`https://127.0.0.1:<port>`), distinct from every other cluster's.
    pub fn api_url(&self) -> &str {
        &self.url
    }

    /// The CA (PEM) of this cluster alone.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The admin's bearer token of this cluster.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// An admin kubeconfig for this cluster.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The simulated cluster (store, auth hooks, behaviours, faults).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The cluster's kubelet.
    pub fn kubelet(&self) -> &Arc<Kubelet> {
        &self.kubelet
    }

    /// Adds an EKS access entry to this cluster (and to no other).
    /// Accepts EKS tokens presigned for the STS at `host` too (`moto.proxied.invalid:PORT`).
    pub fn trust_sts_host(&self, host: &str) {
        if let Some(eks) = &self.eks {
            eks.trust_sts_host(host);
        }
    }

    pub fn add_access_entry(&self, principal_arn: &str, username: &str, groups: &[&str]) {
        if let Some(eks) = &self.eks {
            eks.add_access_entry(principal_arn, username, groups);
        }
    }

    /// Removes an EKS access entry from this cluster.
    pub fn remove_access_entry(&self, principal_arn: &str) {
        if let Some(eks) = &self.eks {
            eks.remove_access_entry(principal_arn);
        }
    }
}

/// An API server that is up.
pub(crate) struct Served {
    pub url: String,
    pub ca_pem: String,
    pub admin_token: String,
    pub cluster: Arc<Cluster>,
    pub kubelet: Arc<Kubelet>,
}

/// Starts an API server (cluster, kubelet, controllers, RBAC) on `runtime` until `stop`.
pub(crate) fn serve(
    runtime: &tokio::runtime::Handle,
    version: crate::version::ServerVersion,
    stop: tokio_util::sync::CancellationToken,
) -> Result<Served, String> {
    let tls = crate::tls::Tls::generate().map_err(|e| e.to_string())?;
    let admin_token = format!("admin.{}", crate::auth::random_token());
    let cluster = Cluster::of_version(&admin_token, version);
    cluster.auth.set_authorizer(Arc::new(crate::rbac::Rbac::new(&cluster)));
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.set_nonblocking(true).map(|_| l))
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let _entered = runtime.enter();
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let kubelet = Kubelet::start(cluster.clone()).ok_or("no pods resource")?;
    crate::controllers::start(cluster.clone());
    runtime.spawn(crate::server::serve(listener, tls.server_config.clone(), cluster.clone(), stop));
    Ok(Served { url: format!("https://127.0.0.1:{port}"), ca_pem: tls.ca_pem, admin_token, cluster, kubelet })
}
