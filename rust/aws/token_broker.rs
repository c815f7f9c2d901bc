//! The exec entry's line to the task: when the base identity is the job's
//! OIDC federation, new EKS tokens come from the task process itself, which
//! alone holds the job's access token.
//!
//! The task listens on a Unix socket in the step's private folder (0700);
//! `azp-kube eks-token --cache-dir <folder>` connects, and reads `ok` and an
//! ExecCredential, or `error` and a message. Whoever can connect (the step's
//! user: helm, its plugins) gets EKS tokens for the one cluster, which helm
//! has anyway; never the access token, the ID token or AWS credentials.

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The socket's name in the private folder.
const SOCKET: &str = "eks-token.sock";

/// The socket of the private folder `dir`.
pub fn socket(dir: &Path) -> PathBuf {
    dir.join(SOCKET)
}

/// Asks the task for an ExecCredential; `None` when no task serves `dir`.
pub fn ask(dir: &Path) -> Option<Result<String, String>> {
    let path = socket(dir);
    if !path.exists() {
        return None;
    }
    let answer = std::os::unix::net::UnixStream::connect(&path).and_then(|mut stream| {
        let mut text = String::new();
        stream.read_to_string(&mut text).map(|_| text)
    });
    Some(match answer {
        Ok(text) => match text.split_once('\n') {
            Some(("ok", credential)) => Ok(credential.to_string()),
            Some((_, message)) => Err(message.to_string()),
            None => Err("the task closed the token socket without an answer".into()),
        },
        Err(e) => Err(format!("cannot reach the task for a token ({}): {e}", path.display())),
    })
}

/// Answers every connection on `listener` with what `answer` gives, one at a
/// time (an answer may renew the session, which the next one reuses).
pub async fn serve<F, Fut>(listener: tokio::net::UnixListener, answer: F) -> std::convert::Infallible
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    use tokio::io::AsyncWriteExt as _;
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let text = match answer().await {
            Ok(credential) => format!("ok\n{credential}"),
            Err(message) => format!("error\n{message}"),
        };
        // A client that went away needs no answer.
        let _ = stream.write_all(text.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_exec_entry_reads_what_the_task_answers() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ask(dir.path()).is_none(), "no task, no answer");
        let listener = tokio::net::UnixListener::bind(socket(dir.path())).unwrap();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let server = serve(listener, || {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { if n == 0 { Ok("{\"kind\":\"ExecCredential\"}".to_string()) } else { Err("refused".into()) } }
        });
        let path = dir.path().to_path_buf();
        let client = tokio::task::spawn_blocking(move || (ask(&path).unwrap(), ask(&path).unwrap()));
        let (first, second) = tokio::select! {
            answers = client => answers.unwrap(),
            _ = server => unreachable!(),
        };
        assert_eq!(first, Ok("{\"kind\":\"ExecCredential\"}".to_string()));
        assert_eq!(second, Err("refused".to_string()));
    }
}
