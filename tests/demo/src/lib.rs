//! azp-kube-demo: runs an Azure Pipelines YAML pipeline of the azp-kube tasks
//! on this machine, each step started through `run.js` exactly as the agent
//! starts it, against the local test world (or a real cluster and AWS
//! account), and prints the log as the Azure DevOps web view shows it.

pub mod macros;
pub mod render;
pub mod runner;
pub mod world;
pub mod yaml;
