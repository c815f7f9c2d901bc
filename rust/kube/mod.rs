//! Kubernetes: clients from every kind of connection, and running a pod.
//!
//! Named `crate::kube` as the concern; the crate of the same name is `::kube`.

pub mod client;
pub mod kubeconfig;
pub mod names;
pub mod pod;
