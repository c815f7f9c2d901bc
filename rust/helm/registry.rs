//! The step's private OCI registry config, and `helm registry login` into it
//! with the password on stdin.
//!
//! helm keeps registry logins in `HELM_REGISTRY_CONFIG` (helm 3 and 4,
//! pkg/cli/environment.go), which [`Helm::new`] puts in the step's private
//! directory. The file is written before the login with an entry for the
//! host: with no auth configured in it yet, helm 3.17 and helm 4 both hand
//! the password to the system's keychain when `docker-credential-pass` or
//! `docker-credential-secretservice` is on PATH (oras-go v2,
//! registry/remote/credentials/store.go `NewStore`, option
//! `DetectDefaultNativeStore`; measured with both helms), and a keychain
//! outlives the step.

use std::io::Write as _;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::{Helm, Stdout, args, runner};
use crate::azp::{Agent, Secret};

/// Why a registry login failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write helm's registry config {path}")]
    Config {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("helm registry login to {host} failed")]
    Login {
        host: String,
        #[source]
        source: runner::Error,
    },
}

/// `helm registry login <host> --username <user> --password-stdin` into the
/// step's registry config.
pub async fn login(
    agent: &Agent,
    helm: &Helm,
    host: &str,
    user: &str,
    password: &Secret,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let config = helm.registry_config();
    keep_in_file(&config, host).map_err(|source| Error::Config { path: config.display().to_string(), source })?;
    let args = args::registry_login_args(host, user);
    helm.run(agent, &args, Some(password), Stdout::Show, cancel)
        .await
        .map_err(|source| Error::Login { host: host.into(), source })?;
    Ok(())
}

/// Creates the registry config (0600) with an empty entry for `host`, so
/// that helm stores the login in this file; an existing file is left as is.
fn keep_in_file(config: &Path, host: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = config.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::json!({ "auths": { host: {} } }).to_string();
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(config) {
        Ok(mut file) => file.write_all(text.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_starts_with_the_host_so_no_keychain_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("registry/config.json");
        keep_in_file(&config, "r.example.com:5000").unwrap();
        let text = std::fs::read_to_string(&config).unwrap();
        assert_eq!(text, r#"{"auths":{"r.example.com:5000":{}}}"#);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600);
        keep_in_file(&config, "other.example.com").unwrap();
        assert_eq!(std::fs::read_to_string(&config).unwrap(), text, "an earlier login is kept");
    }
}
