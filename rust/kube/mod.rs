//! Kubernetes: clients from every kind of connection, running a pod, and the
//! Secret that goes with it.
//!
//! Named `crate::kube` as the concern; the crate of the same name is `::kube`.

pub mod client;
pub mod kubeconfig;
pub mod names;
#[cfg(feature = "kaniko-build")]
pub mod pod;
#[cfg(feature = "kaniko-build")]
pub mod secret;

use std::path::PathBuf;

use crate::azp::endpoint::KubernetesEndpoint;

/// How a step reaches its cluster: the one description that both the
/// in-process client ([`client::connect`]) and the private kubeconfig of
/// helm ([`kubeconfig::write`]) are made from.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant, reason = "one per step; boxing would only add noise")]
pub enum Connection {
    /// The service account of the pod this runs in.
    InCluster,
    /// A kubeconfig file of the user's; its current context.
    KubeconfigFile(PathBuf),
    /// A Kubernetes service connection.
    ServiceConnection(KubernetesEndpoint),
    /// A server whose tokens an exec plugin makes (EKS: `azp-kube eks-token`).
    Exec(ExecCluster),
}

/// A cluster reached with tokens from an exec plugin. The caller decides
/// the plugin's command line; `kube` only writes it down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCluster {
    /// The name of the cluster, user and context in the kubeconfig.
    pub name: String,
    /// `https://…`
    pub server: String,
    /// The CA bundle, base64 PEM (as `certificate-authority-data`).
    pub ca_data: String,
    /// The plugin's program and arguments.
    pub program: PathBuf,
    pub args: Vec<String>,
}
