//! The agent cancels a step with SIGINT, then SIGTERM 7.5 s later, then kills
//! the launcher 2.5 s after that. A task races its work against the token's
//! `cancelled()` and then cleans up within that window. The token is
//! `tokio_util`'s [`CancellationToken`], so that concerns (helm) can watch it
//! without knowing where it comes from.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// A token that is cancelled by SIGINT or SIGTERM from now on (inside a
/// tokio runtime).
pub fn on_signals() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let canceller = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        canceller.cancel();
    });
    Ok(token)
}

/// The error a cancelled task ends with.
#[derive(Debug, thiserror::Error)]
#[error("the step was canceled; everything it started has been cleaned up")]
pub struct Canceled;

#[cfg(test)]
mod tests {
    use super::*;

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
        let cancellation = on_signals().unwrap();
        assert!(!cancellation.is_cancelled());
        println!("listening");
        tokio::time::timeout(std::time::Duration::from_secs(10), cancellation.cancelled()).await.unwrap();
        assert!(cancellation.is_cancelled());
        println!("cancelled");
    }
}
