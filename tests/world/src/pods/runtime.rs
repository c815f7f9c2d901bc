//! The container runtime interface and the default scripted runtime.
//!
//! A runtime receives the pod and container spec, writes log bytes, may read stdin (for
//! attach), watches a cancellation token (pod deleted, deadline), and returns the exit
//! code with an optional reason (`OOMKilled`) and termination message.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::logs::LogWriter;

/// Everything a runtime gets for one container run.
pub struct ContainerRun {
    /// The pod as stored when the container starts.
    pub pod: Value,
    /// The container's spec (an element of `spec.containers` or `spec.initContainers`).
    pub container: Value,
    /// Where the container's output goes (`pods/log`).
    pub log: LogWriter,
    /// The container's stdin, when its spec sets `stdin: true` and a client attaches.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Cancelled when the container must stop (pod deleted, deadline exceeded).
    pub cancel: CancellationToken,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerExit {
    /// Exit code (137 when killed).
    pub exit_code: i32,
    /// Termination reason; None means `Completed` or `Error` by exit code.
    pub reason: Option<String>,
    /// Termination message (what the container wrote to its terminationMessagePath).
    pub message: Option<String>,
}

impl ContainerExit {
    /// An exit with a code and nothing else.
    pub fn code(exit_code: i32) -> Self {
        Self { exit_code, reason: None, message: None }
    }

    /// The exit of a container killed by the kubelet.
    pub fn killed() -> Self {
        Self::code(137)
    }
}

/// The future a runtime returns.
pub type RunFuture = Pin<Box<dyn Future<Output = ContainerExit> + Send>>;

/// Runs containers of the images it is chosen for.
pub trait ContainerRuntime: Send + Sync {
    /// Runs one container to its end.
    fn run(&self, run: ContainerRun) -> RunFuture;
}

/// The default runtime: prints lines spread over `after`, then exits with `exit_code`
/// (or keeps running until cancelled when `forever`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptRuntime {
    /// Lines to print.
    pub lines: Vec<String>,
    /// Exit code at the end.
    pub exit_code: i32,
    /// How long the container runs.
    pub after: Duration,
    /// Termination reason (`OOMKilled`), if any.
    pub reason: Option<String>,
    /// Termination message, if any.
    pub message: Option<String>,
    /// Run until cancelled instead of exiting.
    pub forever: bool,
}

impl ContainerRuntime for ScriptRuntime {
    fn run(&self, run: ContainerRun) -> RunFuture {
        let script = self.clone();
        Box::pin(async move {
            let steps = script.lines.len() as u32 + 1;
            let interval = script.after / steps;
            for line in &script.lines {
                if sleep_or_cancel(interval, &run.cancel).await {
                    return ContainerExit::killed();
                }
                run.log.write(format!("{line}\n").as_bytes());
            }
            if script.forever {
                run.cancel.cancelled().await;
                return ContainerExit::killed();
            }
            if sleep_or_cancel(interval, &run.cancel).await {
                return ContainerExit::killed();
            }
            ContainerExit {
                exit_code: script.exit_code,
                reason: script.reason.clone(),
                message: script.message.clone(),
            }
        })
    }
}

/// Sleeps; true when cancelled first.
async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => false,
        _ = cancel.cancelled() => true,
    }
}
