//! The content key: a SHA-256 over everything that decides the archive's bytes.
//!
//! Each file is hashed on its own (SHA-256 of its contents) by a small pool of scoped
//! threads that take files largest first, so one big file does not end up last on a busy
//! thread. The per-file digests are then combined in plan order with the path, kind, mode,
//! size and link target of every entry, and a format tag. The result is independent of
//! thread scheduling and changes iff what would be sent changes (the header fields we do not
//! hash — uid, gid, mtime — are constants of the format, covered by the tag).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::{ContextPlan, EntryKind, Error};

/// Bump when the archive format changes (header normalisation, entry order, gzip framing
/// does not matter: the key names the tar content).
const FORMAT: &[u8] = b"azp-kube context tar v1 (uid 0, gid 0, mtime 946684800)\0";

/// File digests by entry index, as one thread computed them.
type Hashed = Vec<(usize, [u8; 32])>;

pub(crate) fn content_key(plan: &ContextPlan, stop: &AtomicBool) -> Result<String, Error> {
    let entries = plan.entries();
    let mut files: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].kind == EntryKind::File).collect();
    files.sort_by_key(|&i| std::cmp::Reverse(entries[i].size));
    let mut digests = vec![[0u8; 32]; entries.len()];
    let threads = std::thread::available_parallelism().map_or(2, usize::from).clamp(1, files.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Result<Hashed, Error>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    let mut buf = vec![0; 256 * 1024];
                    loop {
                        let Some(&index) = files.get(next.fetch_add(1, Ordering::Relaxed)) else { return Ok(done) };
                        let entry = &entries[index];
                        done.push((index, hash_file(&plan.root().join(&entry.path), entry.size, &mut buf, stop)?));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(Error::Thread("a hashing thread panicked".into()))))
            .collect()
    });
    for result in results {
        for (index, digest) in result? {
            digests[index] = digest;
        }
    }
    let mut key = Sha256::new();
    key.update(FORMAT);
    if let Some(folder) = plan.folder() {
        let folder = folder.as_os_str().as_bytes();
        key.update(b"under");
        key.update((folder.len() as u64).to_le_bytes());
        key.update(folder);
    }
    for (entry, digest) in entries.iter().zip(&digests) {
        let path = entry.path.as_os_str().as_bytes();
        key.update((path.len() as u64).to_le_bytes());
        key.update(path);
        key.update(entry.mode.to_le_bytes());
        key.update(entry.size.to_le_bytes());
        match &entry.kind {
            EntryKind::File => {
                key.update(b"f");
                key.update(digest);
            }
            EntryKind::Dir => key.update(b"d"),
            EntryKind::Symlink { target } => {
                let target = target.as_os_str().as_bytes();
                key.update(b"l");
                key.update((target.len() as u64).to_le_bytes());
                key.update(target);
            }
        }
    }
    Ok(hex::encode(key.finalize()))
}

/// One file's SHA-256; checks `stop` between reads, so a cancel is not held
/// up by a large file.
fn hash_file(path: &Path, size: u64, buf: &mut [u8], stop: &AtomicBool) -> Result<[u8; 32], Error> {
    let read_error = |source| Error::ReadFile { path: path.to_path_buf(), source };
    let mut file = File::options().read(true).custom_flags(libc::O_NOFOLLOW).open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Error::Stopped);
        }
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    if total != size {
        return Err(Error::Changed { path: path.to_path_buf(), detail: format!("planned {size} bytes, read {total}") });
    }
    Ok(hasher.finalize().into())
}
