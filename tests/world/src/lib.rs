//! The test world of azp-kube: an HTTPS Kubernetes API simulator that helm 3, helm 4,
//! kubectl and kube-rs accept, moto for S3/STS/EKS, and the [`World`] handle that starts
//! both for a test (or for the `azp-kube-world` binary) and stops them when dropped.

pub mod admission;
pub mod api;
pub mod auth;
pub mod aws_faults;
pub mod azure_devops;
pub mod cluster;
pub mod clusters;
pub mod controllers;
pub mod deletion;
pub mod ecr_registry;
pub mod eks;
pub mod error;
pub mod faults;
pub mod federation;
pub mod forward_proxy;
pub mod https_front;
pub mod kaniko;
pub mod kubeconfig;
pub mod moto;
pub mod patch;
pub mod pods;
pub mod protobuf;
pub mod rbac;
pub mod recorder;
pub mod registry;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod store;
pub mod tls;
pub mod tools;
pub mod version;
pub mod web_identity;
pub mod world;

pub use cluster::Cluster;
pub use pods::{Behaviour, ContainerExit, ContainerRun, ContainerRuntime};
pub use version::ServerVersion;
pub use world::{Options, World};
