//! Container logs: lines with the time they were written, appended by runtimes and read by
//! `pods/log` (snapshot, then follow until the container's log closes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// One log line (with its trailing newline, unless it was the unterminated last one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the line was completed.
    pub at: jiff::Timestamp,
    /// The bytes of the line.
    pub text: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    lines: Vec<LogLine>,
    partial: Vec<u8>,
    closed: bool,
}

/// The log of one container (across restarts).
pub struct ContainerLog {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

impl ContainerLog {
    fn new() -> Self {
        Self { inner: Mutex::new(Inner::default()), changed: watch::channel(0).0 }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lines from index `from` on, and whether the log is closed.
    pub fn lines_from(&self, from: usize) -> (Vec<LogLine>, bool) {
        let inner = self.lock();
        (inner.lines.get(from..).map(<[LogLine]>::to_vec).unwrap_or_default(), inner.closed)
    }

    /// Notifies on every append and on close.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

/// Appends to one container's log.
#[derive(Clone)]
pub struct LogWriter(Arc<ContainerLog>);

impl LogWriter {
    /// Appends bytes; complete lines become visible at once.
    pub fn write(&self, bytes: &[u8]) {
        {
            let mut inner = self.0.lock();
            inner.partial.extend_from_slice(bytes);
            while let Some(pos) = inner.partial.iter().position(|b| *b == b'\n') {
                let text: Vec<u8> = inner.partial.drain(..=pos).collect();
                inner.lines.push(LogLine { at: jiff::Timestamp::now(), text });
            }
        }
        self.0.notify();
    }

    /// Ends the log (flushing an unterminated last line); followers stop.
    pub fn close(&self) {
        {
            let mut inner = self.0.lock();
            if !inner.partial.is_empty() {
                let text = std::mem::take(&mut inner.partial);
                inner.lines.push(LogLine { at: jiff::Timestamp::now(), text });
            }
            inner.closed = true;
        }
        self.0.notify();
    }

    /// The last `max_lines` lines, at most `max_bytes` bytes (FallbackToLogsOnError).
    pub fn tail(&self, max_lines: usize, max_bytes: usize) -> String {
        let inner = self.0.lock();
        let start = inner.lines.len().saturating_sub(max_lines);
        let bytes: Vec<u8> = inner.lines[start..].iter().flat_map(|l| l.text.iter().copied()).collect();
        let cut = bytes.len().saturating_sub(max_bytes);
        String::from_utf8_lossy(&bytes[cut..]).into_owned()
    }
}

/// All container logs, keyed by pod uid and container name.
#[derive(Default)]
pub struct LogStore {
    logs: Mutex<HashMap<(String, String), Arc<ContainerLog>>>,
}

impl LogStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Arc<ContainerLog>>> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a container's log for writing (a restart appends to the same log).
    pub fn open(&self, uid: &str, container: &str) -> LogWriter {
        let log = self
            .lock()
            .entry((uid.to_string(), container.to_string()))
            .or_insert_with(|| Arc::new(ContainerLog::new()))
            .clone();
        log.lock().closed = false;
        LogWriter(log)
    }

    /// A container's log, if the container ever started.
    pub fn get(&self, uid: &str, container: &str) -> Option<Arc<ContainerLog>> {
        self.lock().get(&(uid.to_string(), container.to_string())).cloned()
    }

    /// Forgets the logs of a removed pod, closing them for followers.
    pub fn remove_pod(&self, uid: &str) {
        let removed: Vec<Arc<ContainerLog>> = {
            let mut logs = self.lock();
            let keys: Vec<_> = logs.keys().filter(|(u, _)| u == uid).cloned().collect();
            keys.iter().filter_map(|k| logs.remove(k)).collect()
        };
        for log in removed {
            LogWriter(log).close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_and_tail() {
        let store = LogStore::default();
        let w = store.open("u", "c");
        w.write(b"one\ntw");
        w.write(b"o\nthree");
        let log = store.get("u", "c").expect("log");
        assert_eq!(log.lines_from(0).0.len(), 2);
        w.close();
        let (lines, closed) = log.lines_from(2);
        assert!(closed);
        assert_eq!(lines[0].text, b"three");
        assert_eq!(w.tail(2, 100), "two\nthree");
        assert_eq!(w.tail(2, 3), "ree");
    }
}

/// The stdin of running containers that set `stdin: true`, by pod uid and container name.
/// Attach takes a container's sender (stdinOnce): dropping it ends the container's stdin.
#[derive(Default)]
pub struct StdinMap {
    senders: Mutex<HashMap<(String, String), tokio::sync::mpsc::Sender<bytes::Bytes>>>,
    changed: tokio::sync::Notify,
}

impl StdinMap {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), tokio::sync::mpsc::Sender<bytes::Bytes>>> {
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a started container's stdin.
    pub fn insert(&self, uid: &str, container: &str, tx: tokio::sync::mpsc::Sender<bytes::Bytes>) {
        self.lock().insert((uid.into(), container.into()), tx);
        self.changed.notify_waiters();
    }

    /// A copy of a container's stdin sender.
    pub fn get(&self, uid: &str, container: &str) -> Option<tokio::sync::mpsc::Sender<bytes::Bytes>> {
        self.lock().get(&(uid.into(), container.into())).cloned()
    }

    /// Takes a container's stdin sender away (the next attach finds none).
    pub fn take(&self, uid: &str, container: &str) -> Option<tokio::sync::mpsc::Sender<bytes::Bytes>> {
        self.lock().remove(&(uid.into(), container.into()))
    }

    /// Waits up to `timeout` for the container to start with stdin, and takes its sender.
    pub async fn take_when_started(
        &self,
        uid: &str,
        container: &str,
        timeout: std::time::Duration,
    ) -> Option<tokio::sync::mpsc::Sender<bytes::Bytes>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(tx) = self.take(uid, container) {
                return Some(tx);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            // Woken by a registration, or at the latest after a short poll interval.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(50), self.changed.notified()).await;
        }
    }
}
