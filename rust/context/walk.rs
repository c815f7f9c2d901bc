//! Validates the context and Dockerfile, then walks the context in tar order, applying
//! .dockerignore. Reads metadata only (and the ignore file), never file contents.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use super::dockerignore::{self, Dockerignore};
use super::{ContextPlan, Entry, EntryKind, Error, PackOptions, Skipped, Summary};

/// How many of the largest included directories the summary keeps.
const LARGEST_DIRS: usize = 5;

/// Validates, reads the ignore file, walks: see [`super::plan`].
pub(crate) fn plan(opts: &PackOptions) -> Result<ContextPlan, Error> {
    let root = context_root(&opts.context_dir)?;
    let dockerfile = dockerfile_in(&root, &opts.dockerfile)?;
    let found = dockerignore::find_files(&root, &dockerfile);
    let (ignore_files, withheld) = if opts.use_dockerignore { (found, Vec::new()) } else { (Vec::new(), found) };
    let mut forced: Vec<Vec<u8>> = vec![dockerfile.as_os_str().as_bytes().to_vec()];
    forced.extend(ignore_files.iter().map(|rel| rel.as_os_str().as_bytes().to_vec()));
    let ignore = match ignore_files.first() {
        Some(rel) => {
            let target = ignore_file_target(&root, rel)?;
            let path = root.join(&target);
            let text = fs::read(&path).map_err(|source| Error::ReadDockerignore { path: path.clone(), source })?;
            // A linked file is sent too, so that kaniko finds the same patterns in the pod.
            forced.push(target.as_os_str().as_bytes().to_vec());
            Some(Dockerignore::parse(&text, &root.join(rel))?)
        }
        None => None,
    };
    let mut walker = Walker {
        ignore: ignore.filter(|i| !i.is_empty()),
        forced,
        withheld: withheld.iter().map(|rel| rel.as_os_str().as_bytes().to_vec()).collect(),
        entries: Vec::new(),
        summary: Summary::default(),
        dir_bytes: BTreeMap::new(),
    };
    let mut pending = Vec::new();
    walker.walk(&root, b"", &mut pending)?;
    let Walker { entries, mut summary, dir_bytes, .. } = walker;
    let mut dirs: Vec<(PathBuf, u64)> = dir_bytes.into_iter().collect();
    dirs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    dirs.truncate(LARGEST_DIRS);
    summary.largest_dirs = dirs;
    Ok(ContextPlan { root, dockerfile, ignore_file: ignore_files.into_iter().next(), entries, summary, folder: None })
}

/// The context directory, resolved (a symlinked checkout is fine), and a directory.
fn context_root(dir: &Path) -> Result<PathBuf, Error> {
    let root = fs::canonicalize(dir).map_err(|source| Error::ContextMissing { path: dir.to_path_buf(), source })?;
    if !root.is_dir() {
        return Err(Error::ContextNotDir { path: dir.to_path_buf() });
    }
    Ok(root)
}

/// The Dockerfile as a clean path relative to the context, checked to stay inside it
/// (lexically, and after resolving symlinks) and to be a regular file.
fn dockerfile_in(root: &Path, dockerfile: &Path) -> Result<PathBuf, Error> {
    let outside = || Error::DockerfileOutside { path: dockerfile.to_path_buf(), context: root.to_path_buf() };
    let relative = if dockerfile.is_absolute() {
        let absolute = lexical_clean(dockerfile).ok_or_else(outside)?;
        let parent_resolved = absolute.parent().and_then(|p| fs::canonicalize(p).ok()).unwrap_or_default();
        let resolved = parent_resolved.join(absolute.file_name().unwrap_or_default());
        resolved.strip_prefix(root).or_else(|_| absolute.strip_prefix(root)).map_err(|_| outside())?.to_path_buf()
    } else {
        dockerfile.to_path_buf()
    };
    let relative = lexical_clean(&relative).filter(|r| !r.as_os_str().is_empty()).ok_or_else(outside)?;
    let full = root.join(&relative);
    full.symlink_metadata().map_err(|source| Error::DockerfileMissing { path: relative.clone(), source })?;
    let resolved =
        fs::canonicalize(&full).map_err(|source| Error::DockerfileMissing { path: relative.clone(), source })?;
    if !resolved.starts_with(root) {
        return Err(outside());
    }
    if !resolved.is_file() {
        return Err(Error::DockerfileNotFile { path: relative });
    }
    Ok(relative)
}

/// The file an ignore file's patterns are read from, relative to the context: itself, or
/// where its symlinks lead when that is inside the context. Docker's CLI opens the file
/// through any link, and BuildKit resolves links within the context (fsutil's FollowLinks);
/// a link out of the context is refused, since its patterns would come from outside.
fn ignore_file_target(root: &Path, rel: &Path) -> Result<PathBuf, Error> {
    let path = root.join(rel);
    let resolved = fs::canonicalize(&path).map_err(|source| Error::ReadDockerignore { path: path.clone(), source })?;
    match resolved.strip_prefix(root) {
        Ok(target) => Ok(target.to_path_buf()),
        Err(_) => Err(Error::DockerignoreOutside { path, target: resolved }),
    }
}

/// Removes `.` and resolves `..` lexically; `None` when `..` climbs above the start.
fn lexical_clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() && path.is_absolute() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

struct Walker {
    ignore: Option<Dockerignore>,
    /// The Dockerfile and ignore files: sent even when ignored.
    forced: Vec<Vec<u8>>,
    /// Ignore files not to apply: not sent either, since kaniko would read
    /// them in the pod and apply them all the same.
    withheld: Vec<Vec<u8>>,
    entries: Vec<Entry>,
    summary: Summary,
    /// Bytes of included files below each included directory.
    dir_bytes: BTreeMap<PathBuf, u64>,
}

impl Walker {
    /// Walks `dir` (relative path `rel`, empty for the root) in sorted order. `pending` holds
    /// ignored ancestor directories that are emitted only if something below is included.
    /// Returns the included bytes below `dir`.
    fn walk(&mut self, dir: &Path, rel: &[u8], pending: &mut Vec<Entry>) -> Result<u64, Error> {
        let walk_error = |source| Error::Walk { path: dir.to_path_buf(), source };
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(walk_error)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(walk_error)?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut total = 0;
        for name in names {
            let child_rel =
                if rel.is_empty() { name.as_bytes().to_vec() } else { [rel, b"/", name.as_bytes()].concat() };
            let path = dir.join(&name);
            let meta = path.symlink_metadata().map_err(|source| Error::Walk { path: path.clone(), source })?;
            total += self.visit(&path, child_rel, &meta, pending)?;
        }
        Ok(total)
    }

    fn visit(&mut self, path: &Path, rel: Vec<u8>, meta: &Metadata, pending: &mut Vec<Entry>) -> Result<u64, Error> {
        let forced = self.forced.contains(&rel);
        let ignored =
            !forced && (self.withheld.contains(&rel) || self.ignore.as_ref().is_some_and(|i| i.matches(&rel)));
        let file_type = meta.file_type();
        let kind = if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_file() {
            EntryKind::File
        } else if file_type.is_symlink() {
            let target = fs::read_link(path).map_err(|source| Error::Walk { path: path.to_path_buf(), source })?;
            EntryKind::Symlink { target }
        } else {
            if ignored {
                self.summary.excluded_files += 1;
            } else {
                self.summary.skipped.push(Skipped { path: rel_path(&rel), kind: special_kind(meta) });
            }
            return Ok(0);
        };
        let size = if kind == EntryKind::File { meta.len() } else { 0 };
        let entry = Entry { path: rel_path(&rel), kind, size, mode: meta.mode() & 0o7777 };
        if entry.kind != EntryKind::Dir {
            if ignored {
                self.summary.excluded_files += 1;
                self.summary.excluded_bytes += size;
                return Ok(0);
            }
            self.include(entry, pending);
            return Ok(size);
        }
        if !ignored {
            self.include(entry, pending);
            let mut below = Vec::new();
            let bytes = self.walk(path, &rel, &mut below)?;
            self.dir_bytes.insert(rel_path(&rel), bytes);
            return Ok(bytes);
        }
        if self.must_descend(&rel) {
            let depth = pending.len();
            pending.push(entry);
            let bytes = self.walk(path, &rel, pending)?;
            if pending.len() <= depth {
                // Something below was sent, so the directory was emitted too.
                self.dir_bytes.insert(rel_path(&rel), bytes);
            }
            pending.truncate(depth);
            return Ok(bytes);
        }
        self.count_excluded(path)?;
        Ok(0)
    }

    /// An ignored directory is still walked when it holds a forced file or an exception
    /// pattern could re-include something below it.
    fn must_descend(&self, rel: &[u8]) -> bool {
        let under = |forced: &Vec<u8>| forced.len() > rel.len() && forced.starts_with(rel) && forced[rel.len()] == b'/';
        self.forced.iter().any(under) || self.ignore.as_ref().is_some_and(|i| i.may_reinclude_under(rel))
    }

    /// Emits the ignored ancestors waiting in `pending` (parents before children), then `entry`.
    fn include(&mut self, entry: Entry, pending: &mut Vec<Entry>) {
        self.entries.append(pending);
        if entry.kind != EntryKind::Dir {
            self.summary.included_files += 1;
            self.summary.included_bytes += entry.size;
        }
        self.entries.push(entry);
    }

    /// Counts what an ignored directory holds (metadata only) for the summary.
    fn count_excluded(&mut self, dir: &Path) -> Result<(), Error> {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let walk_error = |source| Error::Walk { path: dir.clone(), source };
            for entry in fs::read_dir(&dir).map_err(walk_error)? {
                let entry = entry.map_err(walk_error)?;
                let meta = entry.metadata().map_err(|source| Error::Walk { path: entry.path(), source })?;
                if meta.is_dir() {
                    stack.push(entry.path());
                } else {
                    self.summary.excluded_files += 1;
                    self.summary.excluded_bytes += if meta.is_file() { meta.len() } else { 0 };
                }
            }
        }
        Ok(())
    }
}

fn rel_path(rel: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(rel))
}

fn special_kind(meta: &Metadata) -> &'static str {
    let file_type = meta.file_type();
    if file_type.is_socket() {
        "socket"
    } else if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    fn opts(root: &Path, dockerfile: &str) -> PackOptions {
        PackOptions { context_dir: root.to_path_buf(), dockerfile: dockerfile.into(), use_dockerignore: true }
    }

    fn listing(plan: &ContextPlan) -> Vec<String> {
        plan.entries().iter().map(Entry::display_path).collect()
    }

    #[test]
    fn sorted_parents_first_with_ignore_and_forced_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch");
        write(root, ".dockerignore", "Dockerfile\n.dockerignore\nsecret.env\ndocs\n!docs/keep.md\nnode_modules\n");
        write(root, "secret.env", "TOKEN=hunter2");
        write(root, "docs/keep.md", "keep");
        write(root, "docs/drop.md", "drop");
        write(root, "node_modules/x/y.js", "12345");
        write(root, "a.txt", "a");
        write(root, "a/b.txt", "bb");
        let plan = plan(&opts(root, "Dockerfile")).expect("plan");
        assert_eq!(listing(&plan), [".dockerignore", "Dockerfile", "a/", "a/b.txt", "a.txt", "docs/", "docs/keep.md"]);
        let summary = plan.summary();
        assert_eq!(summary.excluded_files, 3);
        assert_eq!(summary.excluded_bytes, 13 + 4 + 5);
        assert_eq!(summary.included_files, 5);
        assert_eq!(summary.largest_dirs, [(PathBuf::from("docs"), 4), (PathBuf::from("a"), 2)]);
    }

    #[test]
    fn dockerfile_specific_ignore_file_takes_precedence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "app/Dockerfile", "FROM scratch");
        write(root, "app/Dockerfile.dockerignore", "b.txt\n");
        write(root, ".dockerignore", "a.txt\n");
        write(root, "a.txt", "a");
        write(root, "b.txt", "b");
        let plan = plan(&opts(root, "app/Dockerfile")).expect("plan");
        assert_eq!(listing(&plan), [".dockerignore", "a.txt", "app/", "app/Dockerfile", "app/Dockerfile.dockerignore"]);
        let no_ignore = PackOptions { use_dockerignore: false, ..opts(root, "app/Dockerfile") };
        // Without the ignore files, so that kaniko does not apply them in the pod either.
        assert_eq!(listing(&super::plan(&no_ignore).expect("plan")), ["a.txt", "app/", "app/Dockerfile", "b.txt"]);
    }

    #[test]
    fn ignored_directory_holding_the_dockerfile_is_still_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "build/Dockerfile", "FROM scratch");
        write(root, "build/other", "x");
        write(root, ".dockerignore", "build\n");
        let plan = plan(&opts(root, "./build/../build/Dockerfile")).expect("plan");
        assert_eq!(listing(&plan), [".dockerignore", "build/", "build/Dockerfile"]);
    }

    #[test]
    fn symlinks_kept_as_links_and_specials_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch");
        symlink("/etc/passwd", root.join("passwd")).expect("symlink");
        symlink("/etc", root.join("etc")).expect("symlink");
        let fifo = std::ffi::CString::new(root.join("pipe").as_os_str().as_bytes()).expect("path");
        // SAFETY: mkfifo on a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let plan = plan(&opts(root, "Dockerfile")).expect("plan");
        assert_eq!(listing(&plan), ["Dockerfile", "etc", "passwd"]);
        assert_eq!(plan.entries()[2].kind, EntryKind::Symlink { target: "/etc/passwd".into() });
        assert_eq!(plan.summary().skipped, [Skipped { path: "pipe".into(), kind: "fifo" }]);
    }

    #[test]
    fn a_symlinked_ignore_file_inside_the_context_is_applied_and_its_target_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch");
        write(root, "config/ignore", "secret.env\nconfig\n");
        write(root, "config/other", "x");
        write(root, "secret.env", "TOKEN=hunter2");
        symlink("config/ignore", root.join(".dockerignore")).expect("symlink");
        let plan = plan(&opts(root, "Dockerfile")).expect("plan");
        assert_eq!(listing(&plan), [".dockerignore", "Dockerfile", "config/", "config/ignore"]);
        assert_eq!(plan.summary().excluded_files, 2, "secret.env and config/other");
    }

    #[test]
    fn a_symlinked_ignore_file_outside_the_context_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "ctx/Dockerfile", "FROM scratch");
        write(root, "elsewhere", "secret.env\n");
        symlink("../elsewhere", root.join("ctx/Dockerfile.dockerignore")).expect("symlink");
        let error = plan(&opts(&root.join("ctx"), "Dockerfile")).map(|_| ()).unwrap_err().to_string();
        assert!(
            error.contains("Dockerfile.dockerignore is a symlink to ") && error.contains("outside the build context")
        );
        symlink("missing", root.join("ctx/.dockerignore")).expect("symlink");
        fs::remove_file(root.join("ctx/Dockerfile.dockerignore")).expect("rm");
        let error = plan(&opts(&root.join("ctx"), "Dockerfile")).map(|_| ()).unwrap_err();
        assert!(matches!(error, Error::ReadDockerignore { .. }), "a dangling link is an error: {error}");
    }

    #[test]
    fn validation_errors_name_the_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "ctx/Dockerfile", "FROM scratch");
        write(root, "outside/Dockerfile", "FROM scratch");
        write(root, "file", "x");
        symlink("../outside/Dockerfile", root.join("ctx/Linked")).expect("symlink");
        let ctx = root.join("ctx");
        let err = |o: PackOptions| plan(&o).map(|_| ()).unwrap_err().to_string();
        assert!(err(opts(&root.join("nope"), "Dockerfile")).contains("does not exist"));
        assert!(err(opts(&root.join("file"), "Dockerfile")).contains("is not a directory"));
        assert!(err(opts(&ctx, "../outside/Dockerfile")).contains("outside the build context"));
        assert!(err(opts(&ctx, &root.join("outside/Dockerfile").to_string_lossy())).contains("outside"));
        assert!(err(opts(&ctx, "Linked")).contains("outside the build context"));
        assert!(err(opts(&ctx, "Missing")).contains("does not exist"));
        assert!(err(opts(root, "ctx")).contains("not a regular file"));
        assert!(plan(&opts(&ctx, &ctx.join("Dockerfile").to_string_lossy())).is_ok());
        write(root, "ctx/.dockerignore", "ok\n[oops\n");
        assert!(err(opts(&ctx, "Dockerfile")).contains(".dockerignore line 2"));
    }
}
