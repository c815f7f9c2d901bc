//! The agent cancels a step with SIGINT, then SIGTERM 7.5 s later, then kills
//! the launcher 2.5 s after that. A task races its work against
//! [`Cancellation::cancelled`] and then cleans up within that window.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A handle that turns true once the step is cancelled. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Cancellation {
    receiver: watch::Receiver<bool>,
}

impl Cancellation {
    /// Listens for SIGINT and SIGTERM from now on (inside a tokio runtime).
    pub fn on_signals() -> std::io::Result<Self> {
        let (sender, receiver) = watch::channel(false);
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            let _ = sender.send(true);
        });
        Ok(Self { receiver })
    }

    /// A handle that is never cancelled (tests, terminal tools).
    pub fn never() -> Self {
        let (sender, receiver) = watch::channel(false);
        // Keep the sender alive so `cancelled` waits forever instead of ending.
        std::mem::forget(sender);
        Self { receiver }
    }

    pub fn is_cancelled(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves when the step is cancelled.
    pub async fn cancelled(&self) {
        let mut receiver = self.receiver.clone();
        // An error means the sender is gone, which never happens while the
        // listener runs; treat it as "not cancelled" by waiting forever.
        if receiver.wait_for(|cancelled| *cancelled).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The error a cancelled task ends with.
#[derive(Debug, thiserror::Error)]
#[error("the step was canceled; everything it started has been cleaned up")]
pub struct Canceled;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_is_never_cancelled() {
        let never = Cancellation::never();
        assert!(!never.is_cancelled());
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(20), never.cancelled()).await;
        assert!(timed_out.is_err());
    }

    #[tokio::test]
    async fn a_signal_cancels() {
        let cancellation = Cancellation::on_signals().unwrap();
        // SAFETY: raising a signal at our own process, which the listener handles.
        unsafe { libc::raise(libc::SIGINT) };
        tokio::time::timeout(std::time::Duration::from_secs(5), cancellation.cancelled()).await.unwrap();
        assert!(cancellation.is_cancelled());
    }
}
