//! Every version of the objects in a namespace while a test runs: what a
//! watcher with `list`/`watch` rights there would have read (pod specs,
//! Secrets), even of objects created and deleted before the test looks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::broadcast::error::TryRecvError;

use crate::cluster::Cluster;
use crate::store::Event;

/// Records a namespace's changes from [`Recorder::start`] to [`Recorder::finish`].
pub struct Recorder {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Vec<Arc<Event>>, String>>,
}

impl Recorder {
    /// Starts recording the changes in `namespace`.
    pub fn start(cluster: &Cluster, namespace: &str) -> Self {
        let mut events = cluster.store.subscribe();
        let (stop, namespace) = (Arc::new(AtomicBool::new(false)), namespace.to_string());
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            loop {
                match events.try_recv() {
                    Ok(event) if event.namespace == namespace => seen.push(event),
                    Ok(_) => {}
                    Err(TryRecvError::Empty) if stopped.load(Ordering::Relaxed) => return Ok(seen),
                    Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(2)),
                    Err(e) => return Err(format!("the recorder missed changes: {e}")),
                }
            }
        });
        Self { stop, thread }
    }

    /// Every change seen, in order. Panics if some were missed.
    pub fn finish(self) -> Recording {
        self.stop.store(true, Ordering::Relaxed);
        let events = self.thread.join().expect("the recorder thread").unwrap_or_else(|e| panic!("{e}"));
        Recording(events)
    }
}

/// The changes a [`Recorder`] saw.
pub struct Recording(pub Vec<Arc<Event>>);

impl Recording {
    /// The changes to one resource (`pods`, `secrets`).
    pub fn of<'a>(&'a self, plural: &'a str) -> impl Iterator<Item = &'a Arc<Event>> {
        self.0.iter().filter(move |e| e.resource.plural == plural)
    }
}
