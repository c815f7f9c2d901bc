//! A task folder laid out as the agent unpacks it: `task.json`, `run.js` and
//! `bin/linux-x64/azp-kube`, made from the repository without packaging.

use std::path::{Path, PathBuf};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the harness lives in <repo>/tests/harness")
}

/// The VSIX that `extension/package.sh` built (the newest in `dist/`), or
/// `$AZP_KUBE_VSIX`.
pub fn built_vsix() -> PathBuf {
    if let Ok(path) = std::env::var("AZP_KUBE_VSIX") {
        return PathBuf::from(path);
    }
    let dist = repo_root().join("dist");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dist)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "vsix"))
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    found.pop().unwrap_or_else(|| {
        panic!("no VSIX in {}: run `bash extension/package.sh` first (scripts/test.sh does)", dist.display())
    })
}

/// Unpacks a VSIX with Python's zipfile, which, like the agent's download,
/// keeps no Unix modes.
pub fn unpack_vsix(vsix: &Path, into: &Path) {
    let status =
        std::process::Command::new("python3").args(["-m", "zipfile", "-e"]).arg(vsix).arg(into).status().unwrap();
    assert!(status.success(), "unzip {}", vsix.display());
}

/// The folder `<Name>V<n>` holding a task.json in an unpacked VSIX (tfx nests it
/// under the task's name).
pub fn packaged_task(root: &Path, folder: &str) -> Option<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if entry.file_name() == folder && path.join("task.json").is_file() {
                return Some(path);
            }
            stack.push(path);
        }
    }
    None
}

/// A temporary task folder; removed when dropped.
pub struct StagedTask {
    dir: tempfile::TempDir,
}

impl StagedTask {
    /// Stages `tasks/<folder>` with the repository's `extension/run.js` and the
    /// given binary (linked, not copied: a debug build is hundreds of MB).
    pub fn new(folder: &str, binary: &Path) -> Self {
        let root = repo_root();
        let dir = tempfile::Builder::new().prefix(&format!("{folder}-")).tempdir().expect("create a temp task folder");
        std::fs::copy(root.join("tasks").join(folder).join("task.json"), dir.path().join("task.json"))
            .expect("copy task.json");
        std::fs::copy(root.join("extension/run.js"), dir.path().join("run.js")).expect("copy extension/run.js");
        let bin = dir.path().join("bin").join(platform());
        std::fs::create_dir_all(&bin).expect("create bin folder");
        std::os::unix::fs::symlink(binary, bin.join("azp-kube")).expect("link the binary");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// `<platform>-<arch>` as Node spells them, which run.js uses to pick a binary.
fn platform() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "aarch64") => "linux-arm64",
        ("macos", "aarch64") => "darwin-arm64",
        ("macos", _) => "darwin-x64",
        _ => "linux-x64",
    }
}
