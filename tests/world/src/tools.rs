//! Finds what scripts/setup-world.sh installed: helm 3, helm 4, kubectl and the Python venv
//! with moto, in `$AZP_KUBE_CACHE` or `<workspace>/.cache`.

use std::path::{Path, PathBuf};

/// The setup script has not run (or not completely).
#[derive(Debug, thiserror::Error)]
#[error("{path} is missing: run scripts/setup.sh first")]
pub struct Missing {
    /// The file that was looked for.
    pub path: PathBuf,
}

/// Paths of the installed tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The cache directory.
    pub cache: PathBuf,
    /// helm v3.
    pub helm3: PathBuf,
    /// helm v4.
    pub helm4: PathBuf,
    /// kubectl 1.34.
    pub kubectl: PathBuf,
    /// The venv's python (with moto).
    pub python: PathBuf,
    /// The venv's `aws` CLI.
    pub aws: PathBuf,
}

impl Tools {
    /// The cache directory: `$AZP_KUBE_CACHE`, else `.cache` at the workspace root.
    pub fn cache_dir() -> PathBuf {
        match std::env::var_os("AZP_KUBE_CACHE").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"),
        }
    }

    /// Finds every tool, or names the first one missing.
    pub fn find() -> Result<Self, Missing> {
        let cache = Self::cache_dir();
        let need = |rel: &str| {
            let path = cache.join(rel);
            if path.is_file() { Ok(path) } else { Err(Missing { path }) }
        };
        Ok(Self {
            helm3: need("bin/helm3")?,
            helm4: need("bin/helm4")?,
            kubectl: need("bin/kubectl")?,
            python: need("venv/bin/python")?,
            aws: need("venv/bin/aws")?,
            cache,
        })
    }
}

/// The moto launcher script shipped with this crate.
pub fn moto_launcher() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("moto_launcher.py")
}
