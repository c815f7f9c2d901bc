//! Pods: the pluggable container runtime, per-image behaviours (including failure modes),
//! container logs, and the kubelet that moves pods Pending → Running → Succeeded/Failed.

mod behaviour;
mod env;
mod events;
mod kubelet;
mod logs;
mod runtime;
mod status;

pub use behaviour::{Behaviour, Behaviours, DefaultRule, repository};
pub use env::expand;
pub use kubelet::Kubelet;
pub use logs::{ContainerLog, LogLine, LogStore, LogWriter, StdinMap};
pub use runtime::{ContainerExit, ContainerRun, ContainerRuntime, RunFuture, ScriptRuntime};

/// The one node pods are scheduled to.
pub const NODE_NAME: &str = "world-node";
