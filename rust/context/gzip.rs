//! Block gzip: each block of the tar stream becomes one or more complete gzip members.
//!
//! Concatenated members are a valid gzip file (RFC 1952 §2.2); Go's `compress/gzip`
//! (kaniko, multistream by default), GNU gzip and Python's `gzip`/`tarfile` (`r:gz`) read
//! them as one stream. One reader that does not: Python's `tarfile` stream mode `r|gz`. Independent members let worker
//! threads compress blocks in parallel with no shared state; the cost is a cold 32 KiB
//! window at each member start, well under 1% at our block size.
//!
//! Speed comes from libdeflate at a low level and from not compressing what does not
//! compress: each 128 KiB segment is probed by compressing two 4 KiB samples into a buffer
//! 3% smaller than the sample; when both overflow, the segment is stored (deflate stored
//! blocks, still a gzip member with its CRC). Runs of segments of one sort share a member.

use libdeflater::{CompressionLvl, Compressor, Crc};

/// The libdeflate level used when none is given: fast, and in our benchmark within a few
/// percent of `gzip -6` in size (see bench/context.sh).
pub const DEFAULT_LEVEL: i32 = 1;

const SEGMENT: usize = 128 * 1024;
const SAMPLE: usize = 4 * 1024;
/// A sample that does not fit in this many bytes once deflated is "incompressible".
const SAMPLE_LIMIT: usize = SAMPLE * 97 / 100;
const STORED_MAX: usize = 65_535;
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// One worker's compressor state (libdeflate compressors are not shared between threads).
pub(crate) struct BlockCompressor {
    main: Compressor,
    probe: Compressor,
    probe_out: Vec<u8>,
}

/// A compressed block: the gzip members, and how many input bytes were stored as they were.
pub(crate) struct Compressed {
    pub bytes: Vec<u8>,
    pub stored: usize,
}

impl BlockCompressor {
    /// `level` is libdeflate's, 1 to 12 (clamped).
    pub(crate) fn new(level: i32) -> Self {
        // Level 0 (`CompressionLvl::fastest`) only stores: the probe needs level 1.
        let lvl = |level: i32| CompressionLvl::new(level.clamp(1, 12)).unwrap_or_default();
        Self { main: Compressor::new(lvl(level)), probe: Compressor::new(lvl(1)), probe_out: vec![0; SAMPLE_LIMIT] }
    }

    /// Compresses one block into complete gzip members.
    pub(crate) fn compress(&mut self, input: &[u8]) -> Compressed {
        let mut out = Compressed { bytes: Vec::with_capacity(input.len() / 2 + 64), stored: 0 };
        let mut run_start = 0;
        let mut run_stored = None;
        for start in (0..input.len()).step_by(SEGMENT) {
            let segment = &input[start..(start + SEGMENT).min(input.len())];
            let stored = self.incompressible(segment);
            match run_stored {
                Some(previous) if previous != stored => {
                    self.member(&input[run_start..start], previous, &mut out);
                    run_start = start;
                    run_stored = Some(stored);
                }
                Some(_) => {}
                None => run_stored = Some(stored),
            }
        }
        self.member(&input[run_start..], run_stored.unwrap_or(false), &mut out);
        out
    }

    fn incompressible(&mut self, segment: &[u8]) -> bool {
        if segment.len() < 4 * SAMPLE {
            return false;
        }
        [segment.len() / 4, segment.len() * 3 / 4].into_iter().all(|middle| {
            let sample = &segment[middle - SAMPLE / 2..middle + SAMPLE / 2];
            self.probe.deflate_compress(sample, &mut self.probe_out).is_err()
        })
    }

    fn member(&mut self, data: &[u8], stored: bool, out: &mut Compressed) {
        if stored {
            out.stored += data.len();
            stored_member(data, &mut out.bytes);
        } else {
            let start = out.bytes.len();
            let bound = self.main.gzip_compress_bound(data.len());
            out.bytes.resize(start + bound, 0);
            match self.main.gzip_compress(data, &mut out.bytes[start..]) {
                Ok(written) => out.bytes.truncate(start + written),
                // Cannot happen with the bound above; storing is always correct.
                Err(_) => {
                    out.bytes.truncate(start);
                    out.stored += data.len();
                    stored_member(data, &mut out.bytes);
                }
            }
        }
    }
}

/// A gzip member holding `data` in deflate stored blocks.
pub(crate) fn stored_member(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + data.len() / STORED_MAX * 5 + 32);
    out.extend_from_slice(&GZIP_HEADER);
    let mut chunks = data.chunks(STORED_MAX).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the length modulo 2^32 by definition.
    out.extend_from_slice(&((data.len() as u64 & 0xffff_ffff) as u32).to_le_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// Deterministic pseudo-random bytes (xorshift), incompressible.
    pub(crate) fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    pub(crate) fn text(len: usize) -> Vec<u8> {
        let words = ["kaniko ", "context ", "layer ", "digest ", "registry\n", "pipeline ", "azure "];
        words.iter().cycle().enumerate().flat_map(|(i, w)| format!("{w}{i} ").into_bytes()).take(len).collect()
    }

    /// Pipes `input` through a program, which must be installed (setup installs it).
    pub(crate) fn filter(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} is needed for this test: {e}"));
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().expect("output");
        writer.join().expect("writer").expect("write stdin");
        assert!(output.status.success(), "{program} {args:?} failed");
        output.stdout
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        filter("gzip", &["-dc"], data)
    }

    #[test]
    fn round_trip_mixed_block_stores_noise_and_compresses_text() {
        let mut block = text(300 * 1024);
        block.extend(noise(400 * 1024, 7));
        block.extend(text(200 * 1024));
        let mut compressor = BlockCompressor::new(DEFAULT_LEVEL);
        let out = compressor.compress(&block);
        assert!(out.stored >= 256 * 1024 && out.stored <= 512 * 1024, "stored {}", out.stored);
        assert!(out.bytes.len() < block.len() * 3 / 4, "{} of {}", out.bytes.len(), block.len());
        let mut twice = out.bytes.clone();
        twice.extend(compressor.compress(b"tail").bytes);
        let mut expected = block.clone();
        expected.extend(b"tail");
        assert!(gunzip(&twice) == expected, "multi-member round trip differs");
    }

    #[test]
    fn stored_members_of_any_size_are_valid() {
        for len in [0, 1, 65_535, 65_536, 200_000] {
            let data = noise(len, len as u64 + 1);
            let mut out = Vec::new();
            stored_member(&data, &mut out);
            assert!(gunzip(&out) == data, "stored member of {len} bytes");
        }
    }
}
