//! The build context: walk, .dockerignore, tar, parallel gzip. No network.
//!
//! [`plan`] validates the context and Dockerfile and walks the directory the way Docker
//! does (see [`dockerignore`] for the exact rules); [`ContextPlan::pack`] streams the tar.gz
//! with bounded memory. Symlinks are
//! stored as links and never followed; sockets, FIFOs and devices are skipped and listed in
//! the [`Summary`] for the caller to warn about. Hard links are stored as regular files.

mod archive;
mod dockerignore;
mod error;
mod gzip;
mod walk;

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use archive::{MTIME, PackStream};
pub use error::Error;
pub use gzip::DEFAULT_LEVEL;

/// What to pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOptions {
    pub context_dir: PathBuf,
    /// Relative to the context (an absolute path inside the context is accepted too).
    pub dockerfile: PathBuf,
    pub use_dockerignore: bool,
}

/// One entry of the tar, in the plan's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context, `/`-separated, no trailing `/`.
    pub path: PathBuf,
    pub kind: EntryKind,
    /// Bytes of content (0 for directories and symlinks).
    pub size: u64,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// Stored as a link; the target is never read.
    Symlink {
        target: PathBuf,
    },
}

/// A socket, FIFO or device node that is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    /// `socket`, `fifo`, `block device`, `character device`.
    pub kind: &'static str,
}

/// What goes in and what stays out, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files and symlinks sent (directories not counted), and their content bytes.
    pub included_files: u64,
    pub included_bytes: u64,
    /// Files, symlinks and special files left out by .dockerignore (ignored directories are
    /// counted through, by metadata only), and their bytes.
    pub excluded_files: u64,
    pub excluded_bytes: u64,
    /// The largest included directories (bytes of everything sent below them), largest first.
    pub largest_dirs: Vec<(PathBuf, u64)>,
    /// Special files not sent: the caller should warn.
    pub skipped: Vec<Skipped>,
}

/// Sizes and times of one pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackStats {
    /// Uncompressed tar bytes.
    pub tar_bytes: u64,
    /// Compressed bytes returned.
    pub gzip_bytes: u64,
    /// Tar bytes that looked incompressible and were stored as they were.
    pub stored_bytes: u64,
    /// From `pack` to the last chunk.
    pub elapsed: Duration,
    /// Time the reader spent reading files and writing tar (not waiting for workers).
    pub tar_time: Duration,
    /// CPU time spent compressing, summed over workers.
    pub compress_time: Duration,
}

/// A validated, walked context: the entries that will be sent, in tar order.
#[derive(Debug, Clone)]
pub struct ContextPlan {
    root: PathBuf,
    dockerfile: PathBuf,
    ignore_file: Option<PathBuf>,
    entries: Vec<Entry>,
    summary: Summary,
    /// The folder the archive holds the entries in (none: at its top).
    folder: Option<PathBuf>,
}

/// Validates the context and Dockerfile, reads the .dockerignore in use and walks the
/// context. Reads no file contents except the .dockerignore.
pub fn plan(opts: &PackOptions) -> Result<ContextPlan, Error> {
    walk::plan(opts)
}

impl ContextPlan {
    /// The entries in tar order: sorted by name, parents before children.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The context directory, resolved.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The Dockerfile, relative to the context and cleaned (what kaniko's `--dockerfile` needs).
    pub fn dockerfile(&self) -> &Path {
        &self.dockerfile
    }

    /// Packs the entries inside `folder` (a relative path of normal components) instead of at
    /// the archive's top, for a reader that unpacks next to other files of its own.
    pub fn packed_under(mut self, folder: &str) -> Self {
        self.folder = Some(PathBuf::from(folder));
        self
    }

    /// The folder the archive holds the entries in, if any.
    pub fn folder(&self) -> Option<&Path> {
        self.folder.as_deref()
    }

    /// The ignore file that was applied, relative to the context.
    pub fn ignore_file(&self) -> Option<&Path> {
        self.ignore_file.as_deref()
    }

    /// Starts packing in the background with `threads` compression workers (plus one reader).
    pub fn pack(self, threads: usize) -> PackStream {
        self.pack_with_level(threads, DEFAULT_LEVEL)
    }

    /// [`Self::pack`] with a libdeflate level (1 to 12).
    pub fn pack_with_level(self, threads: usize, level: i32) -> PackStream {
        archive::pack(self, threads, level)
    }
}

impl Entry {
    /// The path as listed: lossy UTF-8, directories with a trailing `/`.
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.tar_name()).into_owned()
    }

    /// The path as stored in the tar: raw bytes, directories with a trailing `/`.
    pub(crate) fn tar_name(&self) -> Vec<u8> {
        let mut name = self.path.as_os_str().as_bytes().to_vec();
        if self.kind == EntryKind::Dir {
            name.push(b'/');
        }
        name
    }
}

/// Bytes in binary units, one decimal.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "context: {} files ({}) included; {} files ({}) excluded by .dockerignore",
            self.included_files,
            human(self.included_bytes),
            self.excluded_files,
            human(self.excluded_bytes)
        )?;
        if !self.largest_dirs.is_empty() {
            let dirs: Vec<String> =
                self.largest_dirs.iter().map(|(dir, bytes)| format!("{}/ {}", dir.display(), human(*bytes))).collect();
            write!(f, "\nlargest directories: {}", dirs.join(", "))?;
        }
        for skipped in &self.skipped {
            write!(f, "\nskipped {} {} (not sent)", skipped.kind, skipped.path.display())?;
        }
        Ok(())
    }
}

impl fmt::Display for PackStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ratio = if self.tar_bytes == 0 { 0.0 } else { 100.0 * self.gzip_bytes as f64 / self.tar_bytes as f64 };
        write!(
            f,
            "packed {} of tar into {} of gzip ({ratio:.1}%, {} stored as is) in {:.2} s; \
             tar {:.2} s, compression {:.2} s CPU",
            human(self.tar_bytes),
            human(self.gzip_bytes),
            human(self.stored_bytes),
            self.elapsed.as_secs_f64(),
            self.tar_time.as_secs_f64(),
            self.compress_time.as_secs_f64()
        )
    }
}

/// The build context folder: `given` (relative to the repository), else the
/// repository itself; resolved, and inside the repository even through
/// symlinks.
pub fn context_dir(given: Option<&Path>, repository: Option<&Path>) -> Result<PathBuf, String> {
    let dir = match (given, repository) {
        (Some(dir), Some(repository)) if dir.is_relative() => repository.join(dir),
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(repository)) => repository.to_path_buf(),
        (None, None) => PathBuf::from("."),
    };
    let real = dir.canonicalize().map_err(|e| format!("{} cannot be read: {e}", dir.display()))?;
    if !real.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if let Some(repository) = repository.and_then(|s| s.canonicalize().ok())
        && !real.starts_with(&repository)
    {
        return Err(format!(
            "{} leaves the repository {} (through '..' or a symlink)",
            dir.display(),
            repository.display()
        ));
    }
    Ok(real)
}

/// A Dockerfile given as an absolute path must lie in the context.
pub fn check_dockerfile_path(context_dir: &Path, dockerfile: &Path) -> Result<(), String> {
    if dockerfile.is_absolute() && !dockerfile.starts_with(context_dir) {
        return Err(format!("{} is outside the build context", dockerfile.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_stays_in_the_repository() {
        let repository = tempfile::tempdir().unwrap();
        let root = repository.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("app")).unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        assert_eq!(context_dir(Some(Path::new("app")), Some(&root)).unwrap(), root.join("app"));
        assert_eq!(context_dir(None, Some(&root)).unwrap(), root);
        assert!(context_dir(Some(Path::new("..")), Some(&root)).unwrap_err().contains("leaves the repository"));
        assert!(context_dir(Some(Path::new("escape")), Some(&root)).unwrap_err().contains("leaves the repository"));
        assert!(context_dir(Some(Path::new("missing")), Some(&root)).unwrap_err().contains("cannot be read"));
        assert!(check_dockerfile_path(&root, &root.join("app/Dockerfile")).is_ok());
        assert!(check_dockerfile_path(&root, Path::new("Dockerfile")).is_ok());
        assert!(check_dockerfile_path(&root, Path::new("/etc/Dockerfile")).is_err());
    }
}
