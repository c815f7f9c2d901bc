//! S3: the build context's upload (streaming multipart with checksums),
//! presigned GET URLs, and clean-up.
//!
//! Every write is conditional (`If-None-Match: *`): S3 refuses it when an
//! object already exists at the key, so an upload never lands on, or is
//! mistaken for, someone else's object. What S3 answered for the write
//! ([`Written`]) and a later [`ContextStore::head`] ([`ObjectVersion`]) tell
//! whether anyone wrote the object since.
//!
//! The upload never holds the whole context: chunks from the packer are cut
//! into parts, a few parts are in flight at once, and an upload that does not
//! complete is aborted (by [`ContextStore::upload`] on error, by the task's
//! clean-up through [`PendingUpload`] on cancellation).

use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use futures::{Stream, StreamExt as _};
use tokio::task::JoinSet;

use super::sdk_message;

mod presign;
pub use presign::Presigned;

/// Size of one part: the least S3 takes for all but the last, which keeps
/// memory low (parts in flight and the one being filled).
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts uploaded at the same time (memory: about this many parts).
const PARTS_IN_FLIGHT: usize = 2;

/// Buffers for parts, reused: an upload allocates no more than the parts
/// alive at once (in flight and being filled), once each. Freed 5 MiB
/// buffers are not returned to the system by glibc but kept in per-thread
/// arenas, and that showed as about 10 MiB more peak RSS.
#[derive(Clone, Default)]
struct PartPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl PartPool {
    fn take(&self) -> Part {
        let buf = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        Part { buf: buf.unwrap_or_else(|| Vec::with_capacity(PART_SIZE)), pool: self.clone() }
    }
}

/// One part's bytes; back to the pool when the last reference (the SDK
/// keeps one for retries) is dropped.
struct Part {
    buf: Vec<u8>,
    pool: PartPool,
}

impl Part {
    fn into_body(self) -> ByteStream {
        ByteStream::from(bytes::Bytes::from_owner(self))
    }
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.pool.0.lock().unwrap_or_else(|p| p.into_inner()).push(buf);
    }
}

/// A failed S3 call; the message names the object and, for access problems,
/// what to check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("s3://{bucket}/{key}: {action} failed: {message}")]
    Call { bucket: String, key: String, action: &'static str, message: String },
    #[error("reading the packed context failed: {0}")]
    Source(#[source] std::io::Error),
}

/// What S3 answered for an object we wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    /// The ETag S3 computed from the bytes it received (MD5-based: another
    /// writer cannot make different bytes answer the same).
    pub etag: String,
    /// Set in a versioned bucket.
    pub version_id: Option<String>,
}

/// An object as HeadObject describes it. Any write changes it: a new ETag
/// for other bytes, a new LastModified (to the second) and, in a versioned
/// bucket, a new version id even for the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub etag: String,
    pub version_id: Option<String>,
    pub last_modified: Option<DateTime>,
}

impl ObjectVersion {
    /// Whether this is the object `written` describes.
    pub fn is(&self, written: &Written) -> bool {
        self.etag == written.etag && (written.version_id.is_none() || self.version_id == written.version_id)
    }
}

/// A version id as S3 gives it; `null` (an unversioned or suspended
/// bucket's only version) is no version.
fn version(id: &str) -> Option<String> {
    (id != "null").then(|| id.to_string())
}

/// Where build contexts are stored.
#[derive(Clone, Debug)]
pub struct ContextStore {
    client: Client,
    pub bucket: String,
    /// What signs presigned URLs (the client's config does not expose it).
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

/// An upload that has started and not completed yet, so that whoever cleans
/// up after a cancellation can abort it.
#[derive(Clone, Debug, Default)]
pub struct PendingUpload(Arc<Mutex<Option<(String, String)>>>);

impl PendingUpload {
    fn set(&self, key: &str, upload_id: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((key.to_string(), upload_id.to_string()));
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn take(&self) -> Option<(String, String)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl ContextStore {
    /// A store in `bucket`; path-style addressing when an endpoint is given
    /// (S3-compatible stores and emulators need it).
    pub fn new(config: &SdkConfig, bucket: &str, path_style: bool) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(path_style).build();
        Self { client: Client::from_conf(s3), bucket: bucket.to_string(), credentials: config.credentials_provider() }
    }

    fn error(&self, key: &str, action: &'static str, message: String) -> Error {
        let message = if message.contains("PreconditionFailed") {
            format!("{message} (an object already exists at this key: someone else wrote it, and it is not used)")
        } else if message.contains("AccessDenied") || message.contains("Forbidden") {
            format!("{message} (check that the agent's AWS identity may {action} in this bucket)")
        } else if message.contains("NoSuchBucket") {
            format!("{message} (the bucket does not exist, or is in another region)")
        } else {
            message
        };
        Error::Call { bucket: self.bucket.clone(), key: key.to_string(), action, message }
    }

    /// A failed HeadObject. Its answers have no body, so a refusal comes
    /// without an error code, only HTTP 403; and without s3:ListBucket S3
    /// answers 403 for a missing object too.
    fn head_error(&self, key: &str, error: SdkError<HeadObjectError, HttpResponse>) -> Error {
        if error.raw_response().is_some_and(|r| r.status().as_u16() == 403) {
            let message = "AccessDenied: HTTP 403 to HeadObject (check that the agent's AWS identity may \
                           s3:GetObject in this bucket, to check that its context is still what it wrote; and \
                           s3:ListBucket, without which a missing object is answered 403 too)";
            return Error::Call {
                bucket: self.bucket.clone(),
                key: key.to_string(),
                action: "s3:GetObject",
                message: message.into(),
            };
        }
        self.error(key, "s3:GetObject", sdk_message(&error))
    }

    /// The bucket's region as S3 reports it (HeadBucket's `x-amz-bucket-region`, which S3
    /// also sends with the redirect or refusal a client of another region gets); None
    /// when S3 does not say.
    pub async fn region(&self) -> Option<String> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(head) => head.bucket_region().map(str::to_string),
            Err(e) => e.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")).map(str::to_string),
        }
    }

    /// The object at `key` as S3 describes it now; `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectVersion>, Error> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(head) => Ok(Some(ObjectVersion {
                etag: head.e_tag().unwrap_or_default().to_string(),
                version_id: head.version_id().and_then(version),
                last_modified: head.last_modified().copied(),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(self.head_error(key, e)),
        }
    }

    /// Uploads a stream of chunks as a new object at `key` (refused by S3
    /// if one is there), reporting bytes sent.
    pub async fn upload<S>(
        &self,
        key: &str,
        chunks: S,
        pending: &PendingUpload,
        mut progress: impl FnMut(u64),
    ) -> Result<Written, Error>
    where
        S: Stream<Item = std::io::Result<Vec<u8>>>,
    {
        let mut parts = Parts::new(chunks);
        // A context smaller than one part is one PutObject.
        let Some(first) = parts.next().await? else {
            return self.put(key, ByteStream::from_static(b""), 0).await;
        };
        if first.buf.len() < PART_SIZE {
            let size = first.buf.len() as u64;
            let written = self.put(key, first.into_body(), size).await?;
            progress(size);
            return Ok(written);
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/gzip")
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| self.error(key, "s3:PutObject", sdk_message(&e)))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        pending.set(key, &upload_id);
        let result = self.upload_parts(key, &upload_id, first, parts, &mut progress).await;
        match result {
            Ok(written) => {
                pending.clear();
                Ok(written)
            }
            Err(error) => {
                pending.clear();
                self.abort(key, &upload_id).await;
                Err(error)
            }
        }
    }

    async fn put(&self, key: &str, body: ByteStream, bytes: u64) -> Result<Written, Error> {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .content_type("application/gzip")
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(body)
            .send()
            .await
            .map_err(|e| self.error(key, "s3:PutObject", sdk_message(&e)))?;
        Ok(Written {
            bytes,
            etag: put.e_tag().unwrap_or_default().to_string(),
            version_id: put.version_id().and_then(version),
        })
    }

    async fn upload_parts<S>(
        &self,
        key: &str,
        upload_id: &str,
        first: Part,
        mut parts: Parts<S>,
        progress: &mut impl FnMut(u64),
    ) -> Result<Written, Error>
    where
        S: Stream<Item = std::io::Result<Vec<u8>>>,
    {
        let mut in_flight = JoinSet::new();
        let mut completed: Vec<CompletedPart> = Vec::new();
        let mut sent = 0u64;
        let mut number = 0;
        let mut next = Some(first);
        while let Some(part) = next {
            number += 1;
            in_flight.spawn(self.clone().upload_part(key.to_string(), upload_id.to_string(), number, part));
            next = parts.next().await?;
            while in_flight.len() >= PARTS_IN_FLIGHT || (next.is_none() && !in_flight.is_empty()) {
                let (part, size) = in_flight.join_next().await.expect("a part is in flight").expect("part task")?;
                completed.push(part);
                sent += size;
                progress(sent);
            }
        }
        completed.sort_by_key(|p| p.part_number());
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .if_none_match("*")
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
            .send()
            .await
            .map_err(|e| self.error(key, "s3:PutObject", sdk_message(&e)))?;
        Ok(Written {
            bytes: sent,
            etag: done.e_tag().unwrap_or_default().to_string(),
            version_id: done.version_id().and_then(version),
        })
    }

    async fn upload_part(
        self,
        key: String,
        upload_id: String,
        number: i32,
        body: Part,
    ) -> Result<(CompletedPart, u64), Error> {
        let size = body.buf.len() as u64;
        // The checksum is computed here and sent as a header, so the SDK
        // sends the part as it is instead of wrapping it to add a trailer.
        let crc32 = base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&body.buf).to_be_bytes());
        let answer = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&key)
            .upload_id(&upload_id)
            .part_number(number)
            .checksum_crc32(crc32)
            .body(body.into_body())
            .send()
            .await
            .map_err(|e| self.error(&key, "s3:PutObject", sdk_message(&e)))?;
        let part = CompletedPart::builder()
            .part_number(number)
            .set_e_tag(answer.e_tag().map(str::to_string))
            .set_checksum_crc32(answer.checksum_crc32().map(str::to_string))
            .build();
        Ok((part, size))
    }

    /// Aborts an unfinished upload; failures are only logged, since this runs
    /// while something else has already gone wrong.
    pub async fn abort(&self, key: &str, upload_id: &str) {
        let result =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await;
        if let Err(e) = result {
            tracing::warn!("could not abort the upload of s3://{}/{key}: {}", self.bucket, sdk_message(&e));
        }
    }

    /// Aborts the upload `pending` holds, if any (clean-up after a cancel).
    pub async fn abort_pending(&self, pending: &PendingUpload) {
        if let Some((key, upload_id)) = pending.take() {
            self.abort(&key, &upload_id).await;
        }
    }

    /// Deletes an object (missing is fine).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(key, "s3:DeleteObject", sdk_message(&e)))?;
        Ok(())
    }
}

/// Cuts a stream of chunks into parts of exactly [`PART_SIZE`] bytes (the
/// last one shorter), in buffers of that size from a [`PartPool`]: a part
/// that grew by doubling would hold twice the memory while it is in flight.
struct Parts<S> {
    chunks: std::pin::Pin<Box<S>>,
    carry: Vec<u8>,
    done: bool,
    pool: PartPool,
}

impl<S: Stream<Item = std::io::Result<Vec<u8>>>> Parts<S> {
    fn new(chunks: S) -> Self {
        Self { chunks: Box::pin(chunks), carry: Vec::new(), done: false, pool: PartPool::default() }
    }

    async fn next(&mut self) -> Result<Option<Part>, Error> {
        let mut filling = self.pool.take();
        let part = &mut filling.buf;
        let carried = self.carry.len().min(PART_SIZE);
        part.extend(self.carry.drain(..carried));
        while part.len() < PART_SIZE && !self.done {
            match self.chunks.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(Error::Source)?;
                    let room = PART_SIZE - part.len();
                    if chunk.len() <= room {
                        part.extend_from_slice(&chunk);
                    } else {
                        part.extend_from_slice(&chunk[..room]);
                        self.carry.extend_from_slice(&chunk[room..]);
                    }
                }
                None => self.done = true,
            }
        }
        Ok((!part.is_empty()).then_some(filling))
    }
}

/// The S3 endpoint in use: the one given, else the agent's
/// `AWS_ENDPOINT_URL_S3`, else its `AWS_ENDPOINT_URL` (the SDK's order), with
/// the variable it came from; `None` for AWS's own.
pub fn endpoint<'a>(given: Option<&'a str>, env: &'a crate::azp::Env) -> Option<(&'a str, Option<&'static str>)> {
    if let Some(given) = given {
        return Some((given, None));
    }
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .into_iter()
        .find_map(|name| env.var(name).filter(|v| !v.is_empty()).map(|v| (v, Some(name))))
}

/// An S3 bucket name (3 to 63 of lower-case letters, digits, `-` and `.`).
pub fn check_bucket(bucket: &str) -> Result<(), String> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if valid { Ok(()) } else { Err(format!("{bucket:?} is not an S3 bucket name")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parts_are_exactly_part_size_and_allocated_once() {
        let chunk = vec![7u8; 3 * 1024 * 1024];
        let chunks = futures::stream::iter((0..9).map(|_| Ok(chunk.clone())));
        let mut parts = Parts::new(chunks);
        let mut sizes = Vec::new();
        let mut buffers = std::collections::HashSet::new();
        while let Some(part) = parts.next().await.unwrap() {
            assert_eq!(part.buf.capacity(), PART_SIZE, "no part grows past its size");
            sizes.push(part.buf.len());
            buffers.insert(part.buf.as_ptr() as usize);
            // The SDK holds a part through its body until the part is sent.
            drop(part.into_body());
        }
        assert_eq!(buffers.len(), 1, "one part at a time alive: one buffer, reused");
        let total = 27 * 1024 * 1024;
        let mut expected = vec![PART_SIZE; total / PART_SIZE];
        expected.push(total % PART_SIZE);
        assert_eq!(sizes, expected);
    }

    #[test]
    fn an_object_is_the_written_one_by_etag_and_version_and_null_is_no_version() {
        assert_eq!(version("null"), None);
        assert_eq!(version("3HL4kqtJlcpXroDTDmJ"), Some("3HL4kqtJlcpXroDTDmJ".into()));
        let written = Written { bytes: 1, etag: "\"a-2\"".into(), version_id: None };
        let object = ObjectVersion { etag: written.etag.clone(), version_id: None, last_modified: None };
        assert!(object.is(&written));
        assert!(!ObjectVersion { etag: "\"b-2\"".into(), ..object.clone() }.is(&written));
        let versioned = Written { version_id: Some("v1".into()), ..written };
        assert!(!ObjectVersion { version_id: Some("v2".into()), ..object.clone() }.is(&versioned));
        assert!(ObjectVersion { version_id: Some("v1".into()), ..object }.is(&versioned));
    }

    #[tokio::test]
    async fn a_chunk_larger_than_a_part_is_split() {
        let chunks = futures::stream::iter([Ok(vec![1u8; 2 * PART_SIZE + 5])]);
        let mut parts = Parts::new(chunks);
        assert_eq!(parts.next().await.unwrap().unwrap().buf.len(), PART_SIZE);
        assert_eq!(parts.next().await.unwrap().unwrap().buf.len(), PART_SIZE);
        assert_eq!(parts.next().await.unwrap().unwrap().buf.len(), 5);
        assert!(parts.next().await.unwrap().is_none());
    }

    #[test]
    fn buckets_and_urls() {
        assert!(check_bucket("my-build-contexts").is_ok());
        assert!(check_bucket("My_Bucket").is_err());
        assert!(check_bucket("ab").is_err());
    }
}
