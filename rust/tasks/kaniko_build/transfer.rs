//! Getting the packed context to the pod: the packer runs on its own
//! threads and hands chunks to async consumers (the S3 upload or the pod's
//! stdin) through a small bounded channel, so memory stays bounded and a
//! cancelled consumer stops the packer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::aws::s3::{ContextStore, PendingUpload};
use crate::context::{ContextPlan, PackStats};

/// Chunks in the channel between the packer and its consumer.
const CHANNEL_DEPTH: usize = 2;

/// Starts packing; returns the chunks and, once they are all out, the stats.
pub fn pack(
    plan: ContextPlan,
) -> (impl Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static, oneshot::Receiver<PackStats>) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (chunks, receiver) = mpsc::channel(CHANNEL_DEPTH);
    let (stats_sender, stats) = oneshot::channel();
    std::thread::Builder::new()
        .name("pack".into())
        .spawn(move || {
            let mut stream = plan.pack(threads);
            for chunk in stream.by_ref() {
                let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
                let failed = chunk.is_err();
                // A closed channel means the consumer is gone: stop packing.
                if chunks.blocking_send(chunk).is_err() || failed {
                    return;
                }
            }
            if let Some(stats) = stream.stats() {
                let _ = stats_sender.send(stats);
            }
        })
        .expect("start the packing thread");
    (tokio_stream_from(receiver), stats)
}

fn tokio_stream_from<T: Send + 'static>(mut receiver: mpsc::Receiver<T>) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// A context in S3.
#[derive(Debug, Clone, Default)]
pub struct Uploaded {
    pub key: String,
    /// Bytes of the packed context.
    pub bytes: u64,
    /// An identical context was already there.
    pub skipped: bool,
    pub stats: Option<PackStats>,
}

/// Packs and uploads a context under a content-addressed key, unless the
/// same context is already there. An unfinished upload is registered in
/// `pending` so clean-up can abort it after a cancel.
pub async fn pack_and_upload(
    store: &ContextStore,
    key_prefix: &str,
    plan: ContextPlan,
    pending: &PendingUpload,
    progress: impl FnMut(u64),
) -> anyhow::Result<Uploaded> {
    let (plan, key) = content_key(plan).await?;
    let key = format!("{key_prefix}{key}.tar.gz");
    match store.exists(&key).await? {
        Some(true) => {
            let bytes = store.size(&key).await?;
            return Ok(Uploaded { key, bytes, skipped: true, stats: None });
        }
        Some(false) => {}
        None => tracing::warn!(
            "Cannot tell whether s3://{}/{key} is already there (HeadObject was refused); uploading it. \
             Allow s3:GetObject and s3:ListBucket on the bucket so that a rerun skips an unchanged context",
            store.bucket
        ),
    }
    let (chunks, stats) = pack(plan);
    let bytes = store.upload(&key, chunks, pending, progress).await?;
    Ok(Uploaded { key, bytes, skipped: false, stats: stats.await.ok() })
}

/// The context's content key, hashed on a blocking thread. Dropping this
/// future (a cancel) stops the hashing at its next read, so a big context
/// does not hold up the clean-up, nor the runtime's shutdown.
async fn content_key(plan: ContextPlan) -> anyhow::Result<(ContextPlan, String)> {
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = StopOnDrop(Arc::default());
    let flag = stop.0.clone();
    let (plan, key) = tokio::task::spawn_blocking(move || {
        let key = plan.content_key_until(&flag);
        (plan, key)
    })
    .await?;
    Ok((plan, key?))
}
