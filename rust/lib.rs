//! azp-kube: the Azure Pipelines tasks KanikoBuild@1 and MulticlusterHelm@1,
//! carried out by one native binary that a tiny Node launcher starts.
//!
//! The crate is laid out by concern; `tasks` only orchestrates the others.

#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod aws;
pub mod azp;
pub mod cli;
pub mod context;
pub mod helm;
pub mod kaniko;
pub mod kube;
pub mod tasks;
