//! Kubernetes: clients from every kind of connection, running a pod, and the
//! Secret that goes with it.
//!
//! Named `crate::kube` as the concern; the crate of the same name is `::kube`.

pub mod client;
pub mod kubeconfig;
pub mod names;
pub mod pod;
pub mod secret;
