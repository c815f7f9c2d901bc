//! azp-kube: the Azure Pipelines tasks KanikoBuild@1 and MulticlusterHelm@1,
//! carried out by one native binary that a tiny Node launcher starts.
//!
//! The crate is laid out by concern; `tasks` only orchestrates the others.
//! A concern only one task needs is compiled with that task's feature.

#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod aws;
pub mod azp;
pub mod cli;
#[cfg(feature = "kaniko-build")]
pub mod context;
#[cfg(feature = "multicluster-helm")]
pub mod helm;
#[cfg(feature = "kaniko-build")]
pub mod kaniko;
pub mod kube;
pub mod tasks;
