//! Getting the packed context to the pod: the packer runs on its own
//! threads and hands chunks to async consumers (the S3 upload or the pod's
//! stdin) through a small bounded channel, so memory stays bounded and a
//! cancelled consumer stops the packer.

use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::aws::s3::{ContextStore, Error, ObjectVersion, PendingUpload, Written};
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
    (tokio_stream::wrappers::ReceiverStream::new(receiver), stats)
}

/// A context this build uploaded to S3.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub key: String,
    /// What S3 answered for the upload: bytes, ETag, version.
    pub written: Written,
    pub stats: Option<PackStats>,
}

/// Packs and uploads a context under a key of its own: the prefix and 128
/// random bits, so no other pipeline can plant an object there beforehand,
/// and no other build shares (or deletes) it. Nothing already in the bucket is
/// reused: a build only ever builds bytes it wrote itself. An unfinished
/// upload is registered in `pending` so clean-up can abort it after a cancel.
pub async fn pack_and_upload(
    store: &ContextStore,
    key_prefix: &str,
    plan: ContextPlan,
    pending: &PendingUpload,
    progress: impl FnMut(u64),
) -> anyhow::Result<Uploaded> {
    let key = format!("{key_prefix}{}.tar.gz", random_hex()?);
    let (chunks, stats) = pack(plan);
    let written = store.upload(&key, chunks, pending, progress).await?;
    Ok(Uploaded { key, written, stats: stats.await.ok() })
}

/// The uploaded object as S3 describes it now, the reference for
/// [`tampering`] later; `None` when it is already not what this build wrote.
pub async fn described(store: &ContextStore, uploaded: &Uploaded) -> Result<Option<ObjectVersion>, Error> {
    Ok(store.head(&uploaded.key).await?.filter(|object| object.is(&uploaded.written)))
}

/// What someone else did to a context object after its upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tampering {
    Overwritten,
    Deleted,
}

/// Whether the object at `key` was written or deleted since S3 described it
/// as `since`: if so, kaniko may have read someone else's bytes.
pub async fn tampering(store: &ContextStore, key: &str, since: &ObjectVersion) -> Result<Option<Tampering>, Error> {
    Ok(match store.head(key).await? {
        Some(now) if now == *since => None,
        Some(_) => Some(Tampering::Overwritten),
        None => Some(Tampering::Deleted),
    })
}

/// 128 random bits from the kernel, in hex. Read from /dev/urandom: the
/// release binary links against glibc 2.17, which has no getrandom().
fn random_hex() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(|e| anyhow::anyhow!("cannot read random bytes from /dev/urandom: {e}"))?;
    Ok(hex::encode(bytes))
}
