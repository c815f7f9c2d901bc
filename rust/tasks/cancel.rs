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

/// What cancels a [`Cancellation`]: the signal listener, or a test.
#[derive(Debug)]
pub struct Canceller(watch::Sender<bool>);

impl Canceller {
    pub fn cancel(&self) {
        let _ = self.0.send(true);
    }
}

impl Cancellation {
    /// A handle and what cancels it.
    pub fn new() -> (Self, Canceller) {
        let (sender, receiver) = watch::channel(false);
        (Self { receiver }, Canceller(sender))
    }

    /// Listens for SIGINT and SIGTERM from now on (inside a tokio runtime).
    pub fn on_signals() -> std::io::Result<Self> {
        let (cancellation, canceller) = Self::new();
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            canceller.cancel();
        });
        Ok(cancellation)
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

    /// The test binary again, running only [`a_signalled_process`], which
    /// the parent signals: no signal reaches the tests running in parallel.
    #[test]
    fn a_signal_cancels() {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "tasks::cancel::tests::a_signalled_process", "--ignored", "--nocapture"])
                .args(["--test-threads", "1"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            while !line.contains("listening") {
                line.clear();
                assert!(std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0, "the child ended first");
            }
            // SAFETY: kill(2) at a child this test started and still waits for.
            assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
            assert!(child.wait().unwrap().success(), "signal {signal}: {rest}");
            assert!(rest.contains("cancelled"), "signal {signal}: {rest}");
        }
    }

    /// Run only by [`a_signal_cancels`], in its own process.
    #[tokio::test]
    #[ignore = "run by a_signal_cancels in a child process"]
    #[allow(clippy::print_stdout, reason = "the parent test reads this process's stdout")]
    async fn a_signalled_process() {
        let cancellation = Cancellation::on_signals().unwrap();
        println!("listening");
        tokio::time::timeout(std::time::Duration::from_secs(10), cancellation.cancelled()).await.unwrap();
        assert!(cancellation.is_cancelled());
        println!("cancelled");
    }
}
