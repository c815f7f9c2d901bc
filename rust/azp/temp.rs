//! Files in the agent's temp directory that only this user may read: the
//! step's private kubeconfig and tokens, and the credentials `eks-token` caches.

use std::path::Path;

/// Writes a file that only its owner can read (0600 from creation on).
pub fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(content)
}
