//! The tar stream and the packing pipeline: one thread reads files and writes tar blocks,
//! worker threads gzip them, the consumer gets the members back in order.
//!
//! Memory is bounded: every block is announced on a bounded "order" channel before it is
//! queued for a worker, and the consumer takes results in that order, so at most
//! `2 × threads + 3` blocks of 1 MiB (raw or compressed) are alive at once, whatever the
//! context size. Raw blocks go back to the reader once compressed and are filled again:
//! glibc keeps freed 1 MiB buffers in per-thread arenas, so allocating one per block
//! costs resident memory, not just time. Dropping the [`PackStream`] sets a cancel flag and closes the order
//! channel; the reader stops at its next block, workers skip queued blocks, and the drop
//! joins every thread before it returns.
//!
//! Headers are normalised so the same content always packs to the same bytes: uid/gid 0,
//! no user or group names, and a fixed mtime ([`MTIME`]). Reruns then produce identical
//! archives, and nothing about the agent (its user,
//! its checkout time) leaks into the image. Permission bits (exec, setuid, sticky) are kept.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tar::{EntryType, Header};

use super::gzip::BlockCompressor;
use super::{ContextPlan, Entry, EntryKind, Error, PackStats};

/// Every entry's mtime: 2000-01-01T00:00:00Z. Not 0, because tools in image builds reject
/// pre-1980 times (zip, and so Python wheels built from `COPY`ed sources).
pub const MTIME: u64 = 946_684_800;
/// Raw tar bytes per block handed to a worker.
const BLOCK: usize = 1 << 20;
const TAR_BLOCK: u64 = 512;

type Reply = Result<Vec<u8>, Error>;

/// The tar.gz of a plan, produced in background threads. Iterate for chunks in order;
/// `next` blocks until the next chunk is ready (call it from a blocking context, e.g.
/// `tokio::task::spawn_blocking`, and hand the chunks over a channel).
pub struct PackStream {
    order: Option<Receiver<Receiver<Reply>>>,
    threads: Vec<JoinHandle<()>>,
    cancel: Arc<AtomicBool>,
    counters: Arc<Counters>,
    started: Instant,
    gzip_bytes: u64,
    stats: Option<PackStats>,
}

#[derive(Default)]
struct Counters {
    tar_bytes: AtomicU64,
    stored_bytes: AtomicU64,
    tar_nanos: AtomicU64,
    compress_nanos: AtomicU64,
    /// Set by the reader once the trailer is written: an end without it is a failure.
    finished: AtomicBool,
}

/// Starts the reader and `threads` compression workers (at least 1).
pub(crate) fn pack(plan: ContextPlan, threads: usize, level: i32) -> PackStream {
    let threads = threads.max(1);
    let cancel = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let (order_tx, order_rx) = sync_channel::<Receiver<Reply>>(threads * 2);
    let (job_tx, job_rx) = sync_channel::<(Vec<u8>, SyncSender<Reply>)>(threads);
    let job_rx = Arc::new(Mutex::new(job_rx));
    // Compressed raw blocks, back to the reader; never more than are alive at once.
    let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(threads * 2 + 3);
    let mut handles = Vec::with_capacity(threads + 1);
    for _ in 0..threads {
        let (job_rx, cancel, counters) = (Arc::clone(&job_rx), Arc::clone(&cancel), Arc::clone(&counters));
        let spare_tx = spare_tx.clone();
        handles.push(std::thread::spawn(move || compress_blocks(&job_rx, &spare_tx, &cancel, &counters, level)));
    }
    let (reader_cancel, reader_counters) = (Arc::clone(&cancel), Arc::clone(&counters));
    handles.push(std::thread::spawn(move || {
        let mut sink = |block: Vec<u8>| -> Result<(), Error> {
            if reader_cancel.load(Ordering::Relaxed) {
                return Err(Error::Thread("cancelled".into()));
            }
            let (reply_tx, reply_rx) = sync_channel(1);
            let closed = |_| Error::Thread("the consumer went away".into());
            order_tx.send(reply_rx).map_err(closed)?;
            job_tx.send((block, reply_tx)).map_err(|_| Error::Thread("the compressors went away".into()))
        };
        match write_tar(&plan, &mut sink, &spare_rx, &reader_counters) {
            Ok(()) => reader_counters.finished.store(true, Ordering::Release),
            Err(error) => {
                let (reply_tx, reply_rx) = sync_channel(1);
                let _ = reply_tx.send(Err(error));
                let _ = order_tx.send(reply_rx);
            }
        }
    }));
    PackStream {
        order: Some(order_rx),
        threads: handles,
        cancel,
        counters,
        started: Instant::now(),
        gzip_bytes: 0,
        stats: None,
    }
}

fn compress_blocks(
    jobs: &Mutex<Receiver<(Vec<u8>, SyncSender<Reply>)>>,
    spares: &SyncSender<Vec<u8>>,
    cancel: &AtomicBool,
    counters: &Counters,
    level: i32,
) {
    let mut compressor = BlockCompressor::new(level);
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok((block, reply)) = job else { return };
        if cancel.load(Ordering::Relaxed) {
            continue;
        }
        let started = Instant::now();
        let compressed = compressor.compress(&block);
        // A full queue of spares (cannot happen: it holds every block there is) drops it.
        let _ = spares.try_send(block);
        counters.compress_nanos.fetch_add(nanos(started.elapsed()), Ordering::Relaxed);
        counters.stored_bytes.fetch_add(compressed.stored as u64, Ordering::Relaxed);
        let _ = reply.send(Ok(compressed.bytes));
    }
}

impl PackStream {
    /// Writes the whole tar.gz to `w` and returns the statistics.
    pub fn write_to(mut self, mut w: impl io::Write) -> Result<PackStats, Error> {
        for chunk in &mut self {
            w.write_all(&chunk?).map_err(Error::Write)?;
        }
        w.flush().map_err(Error::Write)?;
        self.stats.ok_or_else(|| Error::Thread("the archive ended without statistics".into()))
    }

    /// The statistics, once the last chunk has been returned.
    pub fn stats(&self) -> Option<PackStats> {
        self.stats
    }

    /// Stops and joins every thread; `Err` if one of them panicked.
    fn shut_down(&mut self) -> Result<(), Error> {
        self.cancel.store(true, Ordering::Relaxed);
        self.order = None;
        let mut result = Ok(());
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                result = Err(Error::Thread("a packing thread panicked".into()));
            }
        }
        result
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.order = None;
        self.shut_down()?;
        if !self.counters.finished.load(Ordering::Acquire) {
            return Err(Error::Thread("the archive writer stopped before the end".into()));
        }
        let c = &self.counters;
        self.stats = Some(PackStats {
            tar_bytes: c.tar_bytes.load(Ordering::Relaxed),
            gzip_bytes: self.gzip_bytes,
            stored_bytes: c.stored_bytes.load(Ordering::Relaxed),
            elapsed: self.started.elapsed(),
            tar_time: Duration::from_nanos(c.tar_nanos.load(Ordering::Relaxed)),
            compress_time: Duration::from_nanos(c.compress_nanos.load(Ordering::Relaxed)),
        });
        Ok(())
    }

    fn fail(&mut self, error: Error) -> Option<Reply> {
        let _ = self.shut_down();
        Some(Err(error))
    }
}

impl Iterator for PackStream {
    type Item = Reply;

    fn next(&mut self) -> Option<Reply> {
        let order = self.order.as_ref()?;
        let Ok(reply) = order.recv() else {
            return self.finish().err().and_then(|error| self.fail(error));
        };
        match reply.recv() {
            Ok(Ok(bytes)) => {
                self.gzip_bytes += bytes.len() as u64;
                Some(Ok(bytes))
            }
            Ok(Err(error)) => self.fail(error),
            Err(_) => self.fail(Error::Thread("a compression thread stopped".into())),
        }
    }
}

impl Drop for PackStream {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Cuts the tar byte stream into blocks for `sink`; file data is read straight into them.
struct Blocks<'a> {
    buf: Vec<u8>,
    filled: usize,
    total: u64,
    waited: Duration,
    sink: &'a mut dyn FnMut(Vec<u8>) -> Result<(), Error>,
    /// Blocks the workers are done with, to fill again.
    spares: &'a Receiver<Vec<u8>>,
}

impl Blocks<'_> {
    fn put(&mut self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            if self.filled == BLOCK {
                self.flush()?;
            }
            let n = (BLOCK - self.filled).min(data.len());
            self.buf[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            self.total += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Copies exactly `size` bytes of `file`; a shorter file is an error.
    fn read_from(&mut self, file: &mut File, mut size: u64, path: &Path) -> Result<(), Error> {
        while size > 0 {
            if self.filled == BLOCK {
                self.flush()?;
            }
            let want = usize::try_from(size).unwrap_or(usize::MAX).min(BLOCK - self.filled);
            let n = match file.read(&mut self.buf[self.filled..self.filled + want]) {
                Ok(0) => return Err(changed(path, format!("{size} bytes fewer than planned"))),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(Error::ReadFile { path: path.to_path_buf(), source }),
            };
            self.filled += n;
            self.total += n as u64;
            size -= n as u64;
        }
        Ok(())
    }

    /// Zero padding up to the next 512-byte boundary.
    fn pad(&mut self) -> Result<(), Error> {
        let rest = (TAR_BLOCK - self.total % TAR_BLOCK) % TAR_BLOCK;
        self.put(&[0; TAR_BLOCK as usize][..rest as usize])
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.filled == 0 {
            return Ok(());
        }
        let mut next = self.spares.try_recv().unwrap_or_default();
        next.resize(BLOCK, 0);
        let mut block = std::mem::replace(&mut self.buf, next);
        block.truncate(self.filled);
        self.filled = 0;
        let started = Instant::now();
        let result = (self.sink)(block);
        self.waited += started.elapsed();
        result
    }
}

fn changed(path: &Path, detail: String) -> Error {
    Error::Changed { path: path.to_path_buf(), detail }
}

/// Writes the whole tar (entries in plan order, then the two zero blocks) into `sink`.
fn write_tar(
    plan: &ContextPlan,
    sink: &mut dyn FnMut(Vec<u8>) -> Result<(), Error>,
    spares: &Receiver<Vec<u8>>,
    counters: &Counters,
) -> Result<(), Error> {
    let started = Instant::now();
    let mut blocks = Blocks { buf: vec![0; BLOCK], filled: 0, total: 0, waited: Duration::ZERO, sink, spares };
    let mut prefix = Vec::new();
    if let Some(folder) = plan.folder() {
        let top = Entry { path: folder.to_path_buf(), kind: EntryKind::Dir, size: 0, mode: 0o755 };
        write_entry(&mut blocks, plan.root(), &top, &[])?;
        prefix = [folder.as_os_str().as_bytes(), b"/"].concat();
    }
    for entry in plan.entries() {
        write_entry(&mut blocks, plan.root(), entry, &prefix)?;
    }
    blocks.put(&[0; 2 * TAR_BLOCK as usize])?;
    blocks.flush()?;
    counters.tar_bytes.store(blocks.total, Ordering::Relaxed);
    counters.tar_nanos.store(nanos(started.elapsed().saturating_sub(blocks.waited)), Ordering::Relaxed);
    Ok(())
}

/// Writes one entry, its name after `prefix` (empty, or a folder and `/`).
fn write_entry(blocks: &mut Blocks<'_>, root: &Path, entry: &Entry, prefix: &[u8]) -> Result<(), Error> {
    let name = [prefix, &entry.tar_name()].concat();
    let mut header = Header::new_gnu();
    if name.len() >= 100 {
        long_field(blocks, EntryType::GNULongName, &name)?;
    }
    copy_field(&mut header.as_old_mut().name, &name);
    header.set_mode(entry.mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header.set_size(0);
    let path = root.join(&entry.path);
    match &entry.kind {
        EntryKind::Dir => header.set_entry_type(EntryType::Directory),
        EntryKind::Symlink { target } => {
            let target = target.as_os_str().as_bytes();
            if target.len() >= 100 {
                long_field(blocks, EntryType::GNULongLink, target)?;
            }
            copy_field(&mut header.as_old_mut().linkname, target);
            header.set_entry_type(EntryType::Symlink);
        }
        EntryKind::File => {
            // O_NOFOLLOW: a file swapped for a symlink since the plan is never followed.
            let mut file = File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|source| Error::ReadFile { path: path.clone(), source })?;
            let meta = file.metadata().map_err(|source| Error::ReadFile { path: path.clone(), source })?;
            if !meta.is_file() || meta.len() != entry.size {
                return Err(changed(&path, format!("planned {} bytes, found {}", entry.size, meta.len())));
            }
            header.set_entry_type(EntryType::Regular);
            header.set_size(entry.size);
            header.set_cksum();
            blocks.put(header.as_bytes())?;
            blocks.read_from(&mut file, entry.size, &path)?;
            return blocks.pad();
        }
    }
    header.set_cksum();
    blocks.put(header.as_bytes())
}

/// A GNU `././@LongLink` entry carrying a name or link target longer than its field.
fn long_field(blocks: &mut Blocks<'_>, kind: EntryType, value: &[u8]) -> Result<(), Error> {
    let mut header = Header::new_gnu();
    copy_field(&mut header.as_old_mut().name, b"././@LongLink");
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(value.len() as u64 + 1);
    header.set_entry_type(kind);
    header.set_cksum();
    blocks.put(header.as_bytes())?;
    blocks.put(value)?;
    blocks.put(&[0])?;
    blocks.pad()
}

/// Copies as much of `value` as fits (the GNU long entry before carries the whole of it).
fn copy_field(field: &mut [u8; 100], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::super::gzip::tests::{filter as run, noise};
    use super::super::{PackOptions, plan};
    use super::*;

    const SECRET: &str = "TOKEN=secret-marker-5f1c";

    fn write(root: &Path, rel: &str, data: &[u8]) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, data).expect("write");
    }

    fn opts(root: &Path) -> PackOptions {
        PackOptions { context_dir: root.to_path_buf(), dockerfile: "Dockerfile".into(), use_dockerignore: true }
    }

    /// A context with the awkward cases: ignored secret and Dockerfile, symlinks out of the
    /// context, a FIFO, a 300-byte path, a newline and non-ASCII in names, exec bits, noise.
    fn awkward_context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "Dockerfile", b"FROM scratch\nCOPY . /\n");
        write(root, ".dockerignore", b"Dockerfile\nsecret.env\n**/*.tmp\n");
        write(root, "secret.env", SECRET.as_bytes());
        write(root, "sub/x.tmp", SECRET.as_bytes());
        symlink("/etc/passwd", root.join("passwd")).expect("symlink");
        symlink("a".repeat(150), root.join("long-link")).expect("symlink");
        let fifo = std::ffi::CString::new(root.join("pipe").as_os_str().as_bytes()).expect("path");
        // SAFETY: mkfifo on a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let long = format!("{}/{}/{}.txt", "d".repeat(100), "e".repeat(100), "f".repeat(96));
        assert!(long.len() >= 300);
        write(root, &long, b"long path");
        write(root, "new\nline.txt", b"newline");
        write(root, "caf\u{e9}/\u{fc}ber.txt", "non-ascii".as_bytes());
        write(root, "run.sh", b"#!/bin/sh\necho hi\n");
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).expect("chmod");
        write(root, "blob/noise.bin", &noise(3 << 20, 42));
        write(root, "blob/text.txt", &b"all work and no play makes a dull build\n".repeat(60_000));
        dir
    }

    fn pack_bytes(root: &Path) -> (Vec<u8>, PackStats) {
        let mut out = Vec::new();
        let stats = plan(&opts(root)).expect("plan").pack(2).write_to(&mut out).expect("pack");
        (out, stats)
    }

    #[test]
    fn archive_matches_plan_and_standard_tools_read_it() {
        let dir = awkward_context();
        let planned = plan(&opts(dir.path())).expect("plan");
        let (gz, stats) = pack_bytes(dir.path());
        assert_eq!(stats.gzip_bytes, gz.len() as u64);
        assert!(stats.stored_bytes >= 2 << 20, "noise should be stored: {stats}");

        run("gzip", &["-t"], &gz);
        let tar_bytes = run("gzip", &["-dc"], &gz);
        assert_eq!(tar_bytes.len() as u64, stats.tar_bytes);
        let contains = |needle: &[u8]| tar_bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(SECRET.as_bytes()), "the ignored secret reached the tar");
        assert!(!contains(b"root:x:0:0"), "the symlink target's content reached the tar");

        // The tar crate: names, kinds, modes, link targets, normalised headers.
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut seen = Vec::new();
        for (entry, expected) in archive.entries().expect("entries").zip(planned.entries()) {
            let entry = entry.expect("entry");
            let header = entry.header();
            assert_eq!(&*entry.path_bytes(), expected.tar_name().as_slice());
            assert_eq!(header.mode().expect("mode"), expected.mode);
            assert_eq!((header.uid().expect("uid"), header.gid().expect("gid")), (0, 0));
            assert_eq!(header.mtime().expect("mtime"), MTIME);
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            match &expected.kind {
                EntryKind::Symlink { target } => {
                    assert_eq!(&*entry.link_name_bytes().expect("link"), target.as_os_str().as_bytes());
                }
                EntryKind::File => assert_eq!(header.size().expect("size"), expected.size),
                EntryKind::Dir => assert!(header.entry_type().is_dir()),
            }
            seen.push(expected.display_path());
        }
        let listed: Vec<String> = planned.entries().iter().map(Entry::display_path).collect();
        assert_eq!(seen, listed);
        for name in ["Dockerfile", ".dockerignore", "passwd", "run.sh", "new\nline.txt", "caf\u{e9}/\u{fc}ber.txt"] {
            assert!(listed.iter().any(|l| l == name), "{name} missing from {listed:?}");
        }
        assert!(!listed.iter().any(|l| l.contains("secret") || l.contains("pipe") || l.ends_with(".tmp")));
        assert!(listed.iter().any(|l| l.len() >= 300));

        // Python's tarfile and GNU tar read the same entries.
        let script = "import io, sys, tarfile, json\n\
                      with tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode='r:gz') as t:\n\
                      \x20   print(json.dumps([m.name + ('/' if m.isdir() else '') for m in t]))";
        let names: Vec<String> = serde_json::from_slice(&run("python3", &["-c", script], &gz)).expect("json");
        assert_eq!(names, listed);
        let out = run("tar", &["-tzf", "-"], &gz);
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), listed.len());
    }

    #[test]
    fn packing_is_deterministic() {
        let dir = awkward_context();
        assert_eq!(pack_bytes(dir.path()).0, pack_bytes(dir.path()).0);
    }

    #[test]
    fn a_plan_packed_under_a_folder_holds_the_same_entries_below_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "Dockerfile", b"FROM scratch\n");
        write(dir.path(), "app/run.sh", b"echo hi\n");
        let under = plan(&opts(dir.path())).expect("plan").packed_under("context");
        let mut gz = Vec::new();
        under.pack(1).write_to(&mut gz).expect("pack");
        let tar_bytes = run("gzip", &["-dc"], &gz);
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let entries: Vec<(String, u32)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), e.header().mode().expect("mode"))
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["context/", "context/Dockerfile", "context/app/", "context/app/run.sh"]);
        assert_eq!(entries[0].1, 0o755, "the folder itself");
    }

    #[test]
    fn a_file_that_shrinks_after_planning_is_an_error() {
        let dir = awkward_context();
        let planned = plan(&opts(dir.path())).expect("plan");
        write(dir.path(), "blob/text.txt", b"short");
        let error = planned.pack(2).write_to(io::sink()).unwrap_err();
        assert!(error.to_string().contains("text.txt changed"), "{error}");
    }

    #[test]
    fn dropping_the_stream_stops_the_threads_promptly() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "Dockerfile", b"FROM scratch\n");
        let big = File::create(dir.path().join("big.bin")).expect("create");
        big.set_len(4 << 30).expect("sparse file");
        let mut stream = plan(&opts(dir.path())).expect("plan").pack(2);
        let first = stream.next().expect("a chunk").expect("chunk ok");
        assert!(!first.is_empty());
        assert!(stream.stats().is_none());
        let started = Instant::now();
        drop(stream);
        assert!(started.elapsed() < Duration::from_secs(2), "drop took {:?}", started.elapsed());
    }
}
