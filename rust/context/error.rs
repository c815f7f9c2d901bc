//! The one error type of the context module: one variant per step that can fail.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while planning or packing a build context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("build context {path} does not exist")]
    ContextMissing {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("build context {path} is not a directory")]
    ContextNotDir { path: PathBuf },
    #[error("dockerfile {path} is outside the build context {context}")]
    DockerfileOutside { path: PathBuf, context: PathBuf },
    #[error("dockerfile {path} does not exist in the build context")]
    DockerfileMissing {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("dockerfile {path} is not a regular file")]
    DockerfileNotFile { path: PathBuf },
    #[error("failed to read {path}")]
    ReadDockerignore {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is a symlink to {target}, outside the build context (Docker reads only ignore files the context \
         holds): put the file itself in the context"
    )]
    DockerignoreOutside { path: PathBuf, target: PathBuf },
    #[error("invalid pattern {pattern:?} in {path} line {line}: {reason}")]
    Pattern { path: PathBuf, line: usize, pattern: String, reason: String },
    #[error("failed to read {path} in the build context")]
    Walk {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to read file {path} in the build context")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} changed while the context was packed ({detail})")]
    Changed { path: PathBuf, detail: String },
    #[error("failed to write the context archive")]
    Write(#[source] io::Error),
    #[error("a context packing thread failed: {0}")]
    Thread(String),
}
