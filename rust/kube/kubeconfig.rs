//! The private kubeconfig of one step: a directory of its own (0700) under the
//! agent's temp directory, holding the kubeconfig (0600) and whatever else
//! belongs to the step only (helm's homes, cached credentials). The directory
//! goes when its [`PrivateDir`] guard is dropped: on success, failure and
//! cancellation alike.
//!
//! The agent's `~/.kube/config` and `$KUBECONFIG` are never read or written:
//! parallel jobs on one agent do not see each other.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use ::kube::config::{AuthInfo, Cluster, Context, ExecConfig, ExecInteractiveMode, Kubeconfig};
use ::kube::config::{NamedAuthInfo, NamedCluster, NamedContext};

use super::{Connection, ExecCluster};
use crate::azp::Env;
use crate::azp::endpoint::KubernetesEndpoint;
use crate::azp::temp::write_private;

/// Where an in-cluster pod finds its service account.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A step of writing the kubeconfig that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create a private directory under {parent}")]
    CreateDir {
        parent: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read kubeconfig {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not a valid kubeconfig: {message}")]
    Parse { what: String, message: String },
    #[error("the kubeconfig has no context {0:?}")]
    NoContext(String),
    #[error("not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")]
    NotInCluster,
}

/// A directory only this step uses, removed on drop.
#[derive(Debug)]
pub struct PrivateDir {
    /// Removed when dropped.
    dir: tempfile::TempDir,
}

/// The file in a private directory that says which process owns it.
const OWNER_FILE: &str = "owner.json";
/// What [`OWNER_FILE`] says; `kind` tells this task's directories from anything else.
const OWNER_KIND: &str = "azp-kube MulticlusterHelm private directory";

/// The process that created a private directory. A process is named by its
/// pid and start time (pids are reused), within one boot and pid namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Owner {
    kind: String,
    pid: u32,
    start_time: u64,
    boot_id: String,
    pid_namespace: String,
}

impl Owner {
    fn of(pid: u32) -> Option<Self> {
        let read = |path: &str| std::fs::read_to_string(path).ok().map(|s| s.trim().to_string());
        let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?.display().to_string();
        Some(Self {
            kind: OWNER_KIND.into(),
            pid,
            start_time: start_time(pid)?,
            boot_id: read("/proc/sys/kernel/random/boot_id")?,
            pid_namespace: namespace,
        })
    }

    /// Whether the owner is certainly gone: another boot, or in this pid
    /// namespace no process with its pid and start time. An owner in another
    /// pid namespace (a container job) cannot be seen, so it is never gone.
    fn is_gone(&self, now: &Owner) -> bool {
        if self.boot_id != now.boot_id {
            return true;
        }
        self.pid_namespace == now.pid_namespace && start_time(self.pid) != Some(self.start_time)
    }
}

/// A process's start time in clock ticks after boot (`/proc/<pid>/stat`, field 22).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

impl PrivateDir {
    /// Creates `<parent>/azp-kube-<pid>-<n>` with mode 0700, and writes
    /// down its owner so a later step can tell it left behind.
    pub fn create(parent: &Path) -> Result<Self, Error> {
        let dir = Self::create_dir(parent)?;
        let owner = Owner::of(std::process::id()).and_then(|o| serde_json::to_vec(&o).ok()).unwrap_or_default();
        dir.write(OWNER_FILE, &owner)?;
        Ok(dir)
    }

    /// Removes the private directories under `parent` that steps killed
    /// before their cleanup left (SIGKILL, out of memory): this user's, made
    /// by this task, whose process is certainly gone. Returns how many.
    pub fn remove_stale(parent: &Path) -> usize {
        use std::os::unix::fs::MetadataExt as _;
        let Some(now) = Owner::of(std::process::id()) else { return 0 };
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        let mut removed = 0;
        for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            let path = entry.path();
            let ours = entry.file_name().to_string_lossy().starts_with("azp-kube-")
                && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == uid);
            if !ours {
                continue;
            }
            let owner =
                std::fs::read(path.join(OWNER_FILE)).ok().and_then(|b| serde_json::from_slice::<Owner>(&b).ok());
            if owner.is_some_and(|o| o.kind == OWNER_KIND && o.is_gone(&now)) && std::fs::remove_dir_all(&path).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }

    fn create_dir(parent: &Path) -> Result<Self, Error> {
        // 0700, under a name no one else holds: `azp-kube-<pid>-<random>`.
        use std::os::unix::fs::PermissionsExt as _;
        tempfile::Builder::new()
            .prefix(&format!("azp-kube-{}-", std::process::id()))
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .map(|dir| Self { dir })
            .map_err(|source| Error::CreateDir { parent: parent.into(), source })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The kubeconfig's path.
    pub fn kubeconfig(&self) -> PathBuf {
        self.path().join("kubeconfig")
    }

    /// Writes a file of the step (0600).
    pub fn write(&self, name: &str, content: &[u8]) -> Result<PathBuf, Error> {
        let path = self.path().join(name);
        write_private(&path, content).map_err(|source| Error::Write { path: path.clone(), source })?;
        Ok(path)
    }

    /// A subdirectory (0700), created if missing.
    pub fn subdir(&self, name: &str) -> Result<PathBuf, Error> {
        let path = self.path().join(name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|source| Error::Write { path: path.clone(), source })?;
        Ok(path)
    }
}

/// Where a service account's token goes.
#[derive(Debug, Clone, Copy)]
pub enum TokenAt<'a> {
    /// A 0600 file in the step's private directory, which helm and kubectl
    /// read: the kubeconfig itself holds no secret.
    File(&'a PrivateDir),
    /// In the kubeconfig, for a client in this process that writes it nowhere.
    Inline,
}

/// The kubeconfig (YAML) of a connection: the one builder behind both the
/// private file ([`write`]) and the in-process client.
pub fn build(connection: &Connection, env: &Env, token_at: TokenAt<'_>) -> Result<String, Error> {
    match connection {
        Connection::Exec(cluster) => Ok(to_yaml(&exec_kubeconfig(cluster))),
        Connection::ServiceConnection(KubernetesEndpoint::Kubeconfig {
            kubeconfig,
            context,
            accept_untrusted_certs,
            ..
        }) => {
            let what = "the service connection's kubeconfig";
            with_context(kubeconfig.expose(), context.as_deref(), what, None, *accept_untrusted_certs)
        }
        Connection::ServiceConnection(KubernetesEndpoint::ServiceAccount {
            server_url,
            token,
            ca_data,
            accept_untrusted_certs,
        }) => {
            let user = match token_at {
                TokenAt::File(dir) => {
                    let file = dir.write("token", token.expose().as_bytes())?;
                    AuthInfo { token_file: Some(file.display().to_string()), ..Default::default() }
                }
                TokenAt::Inline => AuthInfo { token: Some(token.expose().to_string().into()), ..Default::default() },
            };
            let mut cluster = Cluster {
                server: Some(server_url.clone()),
                certificate_authority_data: ca_data.clone(),
                ..Default::default()
            };
            if *accept_untrusted_certs {
                skip_tls_verify(&mut cluster);
            }
            Ok(to_yaml(&single("cluster", cluster, user)))
        }
        Connection::KubeconfigFile(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.clone(), source })?;
            with_context(&text, None, &path.display().to_string(), path.parent(), false)
        }
        Connection::InCluster => in_cluster_kubeconfig(env, Path::new(SERVICE_ACCOUNT_DIR)),
    }
}

/// Writes the kubeconfig of `connection` into the private directory (a
/// service account's token beside it).
pub fn write(dir: &PrivateDir, connection: &Connection, env: &Env) -> Result<PathBuf, Error> {
    let yaml = build(connection, env, TokenAt::File(dir))?;
    let path = dir.kubeconfig();
    write_private(&path, yaml.as_bytes()).map_err(|source| Error::Write { path: path.clone(), source })?;
    Ok(path)
}

/// What a connection's `acceptUntrustedCerts` means, as kubectl's
/// `--insecure-skip-tls-verify` does it: no verification, and no CA.
fn skip_tls_verify(cluster: &mut Cluster) {
    cluster.insecure_skip_tls_verify = Some(true);
    cluster.certificate_authority = None;
    cluster.certificate_authority_data = None;
}

/// What the cluster's `/version` said to the kubeconfig's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Let in; the server's version (`v1.34.1`).
    Allowed(String),
    /// Refused with 401 or 403.
    Denied(u16),
}

/// A preflight that could not reach a verdict.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("cannot use the private kubeconfig")]
    Config(#[source] ::kube::config::KubeconfigError),
    #[error("cannot reach the cluster")]
    Request(#[source] ::kube::Error),
}

/// One request to `/version` with the kubeconfig's identity (for EKS this
/// runs the exec entry, so it checks the token as helm will get it). The
/// exec entry runs without the variables named in `hidden`, as under helm.
pub async fn check_access(
    path: &Path,
    hidden: &[String],
    proxy: Option<&crate::azp::proxy::ProxySettings>,
) -> Result<Access, PreflightError> {
    use ::kube::config::KubeConfigOptions;
    let mut kubeconfig = Kubeconfig::read_from(path).map_err(PreflightError::Config)?;
    for exec in kubeconfig.auth_infos.iter_mut().filter_map(|a| a.auth_info.as_mut()?.exec.as_mut()) {
        exec.drop_env = Some(hidden.to_vec());
    }
    let mut config = ::kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(PreflightError::Config)?;
    super::client::through(&mut config, proxy);
    super::client::use_ring();
    let client = ::kube::Client::try_from(config).map_err(PreflightError::Request)?;
    match client.apiserver_version().await {
        Ok(info) => Ok(Access::Allowed(info.git_version)),
        Err(::kube::Error::Api(status)) if status.code == 401 || status.code == 403 => Ok(Access::Denied(status.code)),
        Err(e) => Err(PreflightError::Request(e)),
    }
}

/// The agent pod's own cluster, from `KUBERNETES_SERVICE_HOST`/`_PORT` and
/// the service account's files (read by the client, never copied).
fn in_cluster_kubeconfig(env: &Env, service_account_dir: &Path) -> Result<String, Error> {
    let (Some(host), Some(port)) = (env.var("KUBERNETES_SERVICE_HOST"), env.var("KUBERNETES_SERVICE_PORT")) else {
        return Err(Error::NotInCluster);
    };
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
    let cluster = Cluster {
        server: Some(format!("https://{host}:{port}")),
        certificate_authority: Some(service_account_dir.join("ca.crt").display().to_string()),
        ..Default::default()
    };
    let token_file = service_account_dir.join("token").display().to_string();
    let user = AuthInfo { token_file: Some(token_file), ..Default::default() };
    Ok(to_yaml(&single("cluster", cluster, user)))
}

fn exec_kubeconfig(cluster: &ExecCluster) -> Kubeconfig {
    let exec = ExecConfig {
        api_version: Some("client.authentication.k8s.io/v1".into()),
        command: Some(cluster.program.display().to_string()),
        args: Some(cluster.args.clone()),
        env: None,
        drop_env: None,
        interactive_mode: Some(ExecInteractiveMode::Never),
        provide_cluster_info: false,
        cluster: None,
        install_hint: None,
        other: Default::default(),
    };
    let server = Cluster {
        server: Some(cluster.server.clone()),
        certificate_authority_data: Some(cluster.ca_data.clone()),
        ..Default::default()
    };
    single(&cluster.name, server, AuthInfo { exec: Some(exec), ..Default::default() })
}

/// A kubeconfig with one cluster, one user and one context of the same name.
fn single(name: &str, cluster: Cluster, user: AuthInfo) -> Kubeconfig {
    Kubeconfig {
        clusters: vec![NamedCluster { name: name.into(), cluster: Some(cluster), other: Default::default() }],
        auth_infos: vec![NamedAuthInfo { name: name.into(), auth_info: Some(user), other: Default::default() }],
        contexts: vec![NamedContext {
            name: name.into(),
            context: Some(Context { cluster: name.into(), user: Some(name.into()), ..Default::default() }),
            other: Default::default(),
        }],
        current_context: Some(name.into()),
        kind: Some("Config".into()),
        api_version: Some("v1".into()),
        ..Default::default()
    }
}

fn to_yaml(kubeconfig: &Kubeconfig) -> String {
    serde_saphyr::to_string(kubeconfig).expect("a kubeconfig always serialises")
}

/// A user's kubeconfig, with the context made current and relative file
/// paths made absolute (the copy lives elsewhere).
fn with_context(
    text: &str,
    context: Option<&str>,
    what: &str,
    base: Option<&Path>,
    skip_tls_verify: bool,
) -> Result<String, Error> {
    // A JSON value holds any kubeconfig: its keys are all strings.
    use serde_json::Value;
    let parse = |message: String| Error::Parse { what: what.into(), message };
    let mut doc: Value = serde_saphyr::from_str(text).map_err(|e| parse(e.to_string()))?;
    if !doc.is_object() {
        return Err(parse("not a YAML mapping".into()));
    }
    if let Some(context) = context {
        let contexts = doc.get("contexts").and_then(Value::as_array).into_iter().flatten();
        let known = contexts.clone().any(|c| c.get("name").and_then(Value::as_str) == Some(context));
        if !known {
            return Err(Error::NoContext(context.into()));
        }
        doc["current-context"] = Value::String(context.into());
    }
    // `get_mut`, not indexing: indexing a string where a mapping belongs panics.
    if let Some(base) = base {
        for (list, entry, keys) in [
            ("clusters", "cluster", &["certificate-authority"][..]),
            ("users", "user", &["client-certificate", "client-key", "tokenFile"][..]),
        ] {
            let items = doc.get_mut(list).and_then(Value::as_array_mut);
            for item in items.into_iter().flatten().filter_map(|item| item.get_mut(entry)) {
                for key in keys {
                    if let Some(Value::String(path)) = item.get_mut(*key)
                        && Path::new(path.as_str()).is_relative()
                    {
                        *path = base.join(&*path).display().to_string();
                    }
                }
            }
        }
    }
    if skip_tls_verify {
        let clusters = doc.get_mut("clusters").and_then(Value::as_array_mut);
        for cluster in
            clusters.into_iter().flatten().filter_map(|c| c.get_mut("cluster")).filter_map(Value::as_object_mut)
        {
            cluster.insert("insecure-skip-tls-verify".into(), Value::Bool(true));
            cluster.remove("certificate-authority");
            cluster.remove("certificate-authority-data");
        }
    }
    serde_saphyr::to_string(&doc).map_err(|e| parse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::azp::Secret;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn cluster() -> ExecCluster {
        ExecCluster {
            name: "dev".into(),
            server: "https://ABC.gr7.eu-west-1.eks.amazonaws.com".into(),
            ca_data: "Q0E=".into(),
            program: "/opt/azp-kube".into(),
            args: vec!["eks-token".into(), "--cluster".into(), "dev".into()],
        }
    }

    fn write(dir: &PrivateDir, connection: &Connection) -> Result<PathBuf, Error> {
        super::write(dir, connection, &Env::default())
    }

    #[test]
    fn the_private_dir_is_0700_its_files_0600_and_it_goes_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(parent.path()).unwrap();
        let path = dir.path().to_path_buf();
        assert_eq!(mode(&path), 0o700);
        let file = write(&dir, &Connection::Exec(cluster())).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir.subdir("helm/cache").unwrap()), 0o700);
        let other = PrivateDir::create(parent.path()).unwrap();
        assert_ne!(other.path(), path);
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn only_dirs_whose_owner_is_gone_are_stale() {
        let parent = tempfile::tempdir().unwrap();
        let live = PrivateDir::create(parent.path()).unwrap();
        // A directory left by a process that is gone: the same owner file
        // with the start time of no process.
        let left = parent.path().join("azp-kube-1-left");
        std::fs::create_dir(&left).unwrap();
        let mut owner = Owner::of(std::process::id()).unwrap();
        owner.start_time += 1;
        std::fs::write(left.join(OWNER_FILE), serde_json::to_vec(&owner).unwrap()).unwrap();
        // Someone else's: no owner file, another kind, another pid namespace.
        let unknown = parent.path().join("azp-kube-2-unknown");
        std::fs::create_dir(&unknown).unwrap();
        let foreign = parent.path().join("azp-kube-3-foreign");
        std::fs::create_dir(&foreign).unwrap();
        let other_namespace = Owner { pid_namespace: "pid:[1]".into(), ..owner.clone() };
        std::fs::write(foreign.join(OWNER_FILE), serde_json::to_vec(&other_namespace).unwrap()).unwrap();
        assert_eq!(PrivateDir::remove_stale(parent.path()), 1);
        assert!(!left.exists() && live.path().exists() && unknown.exists() && foreign.exists());
        let rebooted = Owner { boot_id: "another-boot".into(), ..other_namespace };
        std::fs::write(foreign.join(OWNER_FILE), serde_json::to_vec(&rebooted).unwrap()).unwrap();
        assert_eq!(PrivateDir::remove_stale(parent.path()), 1, "a directory from before a reboot is stale");
    }

    #[test]
    fn the_private_dir_goes_when_a_step_panics_or_fails() {
        let parent = tempfile::tempdir().unwrap();
        let run = || -> Result<(), Error> {
            let dir = PrivateDir::create(parent.path())?;
            dir.write("kubeconfig", b"x")?;
            Err(Error::NotInCluster)
        };
        assert!(run().is_err());
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn exec_entry_golden() {
        let yaml = to_yaml(&exec_kubeconfig(&cluster()));
        let doc: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        let user = &doc["users"][0]["user"]["exec"];
        assert_eq!(user["apiVersion"].as_str(), Some("client.authentication.k8s.io/v1"));
        assert_eq!(user["interactiveMode"].as_str(), Some("Never"));
        assert_eq!(user["command"].as_str(), Some("/opt/azp-kube"));
        assert_eq!(user["args"][2].as_str(), Some("dev"));
        assert_eq!(doc["clusters"][0]["cluster"]["server"].as_str(), Some(cluster().server.as_str()));
        assert_eq!(doc["clusters"][0]["cluster"]["certificate-authority-data"].as_str(), Some("Q0E="));
        assert_eq!(doc["current-context"].as_str(), Some("dev"));
        // The written file is one kube-rs reads back.
        Kubeconfig::from_yaml(&yaml).unwrap();
    }

    #[test]
    fn service_account_tokens_go_to_a_private_token_file() {
        let parent = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(parent.path()).unwrap();
        let endpoint = KubernetesEndpoint::ServiceAccount {
            server_url: "https://k8s:6443".into(),
            token: Secret::new("sa-token"),
            ca_data: Some("Q0E=".into()),
            accept_untrusted_certs: false,
        };
        let file = write(&dir, &Connection::ServiceConnection(endpoint)).unwrap();
        let yaml = std::fs::read_to_string(file).unwrap();
        assert!(!yaml.contains("sa-token"), "{yaml}");
        assert!(yaml.contains("certificate-authority-data: Q0E="), "the CA data is not encoded again: {yaml}");
        assert_eq!(std::fs::read_to_string(dir.path().join("token")).unwrap(), "sa-token");
        assert_eq!(mode(&dir.path().join("token")), 0o600);
    }

    #[test]
    fn accept_untrusted_certs_turns_verification_off_and_drops_the_ca() {
        let parent = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(parent.path()).unwrap();
        let kubeconfig = "clusters:\n- name: c\n  cluster: {server: 'https://x', certificate-authority-data: Q0E=}\n";
        let endpoint = KubernetesEndpoint::Kubeconfig {
            server_url: None,
            kubeconfig: Secret::new(kubeconfig),
            context: None,
            accept_untrusted_certs: true,
        };
        let yaml = std::fs::read_to_string(write(&dir, &Connection::ServiceConnection(endpoint)).unwrap()).unwrap();
        assert!(yaml.contains("insecure-skip-tls-verify: true") && !yaml.contains("Q0E="), "{yaml}");
    }

    #[test]
    fn malformed_kubeconfigs_are_errors_not_panics() {
        for text in [
            "clusters: just-a-string\n",
            "clusters:\n- plain\nusers:\n- 7\n",
            "contexts: x\n",
            "users:\n- name: u\n  user: text\n",
        ] {
            let result = std::panic::catch_unwind(|| with_context(text, Some("c"), "x", Some(Path::new("/b")), true));
            assert!(result.is_ok(), "{text:?} panicked");
        }
    }

    #[test]
    fn connection_kubeconfigs_get_their_context() {
        let text = "apiVersion: v1\nkind: Config\ncontexts:\n- name: a\n  context: {cluster: a}\n- name: prod\n  context: {cluster: p}\ncurrent-context: a\n";
        let out = with_context(text, Some("prod"), "x", None, false).unwrap();
        assert!(out.contains("current-context: prod"), "{out}");
        assert!(matches!(with_context(text, Some("nope"), "x", None, false), Err(Error::NoContext(_))));
        assert!(matches!(with_context("- a", None, "x", None, false), Err(Error::Parse { .. })));
    }

    #[test]
    fn kubeconfig_files_keep_their_relative_paths_working() {
        let text = "clusters:\n- name: c\n  cluster: {server: 'https://x', certificate-authority: ca.pem}\nusers:\n- name: u\n  user: {client-key: /abs/key.pem, client-certificate: certs/c.pem}\n";
        let out = with_context(text, None, "x", Some(Path::new("/home/me/.cfg")), false).unwrap();
        assert!(out.contains("/home/me/.cfg/ca.pem"), "{out}");
        assert!(out.contains("/home/me/.cfg/certs/c.pem"), "{out}");
        assert!(out.contains("client-key: /abs/key.pem"), "{out}");
    }

    #[test]
    fn in_cluster_uses_the_pods_service_account_files() {
        let env = Env::from_vars([("KUBERNETES_SERVICE_HOST", "fd00::1"), ("KUBERNETES_SERVICE_PORT", "443")]);
        let parent = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(parent.path()).unwrap();
        let yaml = std::fs::read_to_string(super::write(&dir, &Connection::InCluster, &env).unwrap()).unwrap();
        assert!(yaml.contains("server: https://[fd00::1]:443"), "{yaml}");
        assert!(yaml.contains("tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token"), "{yaml}");
        assert!(matches!(write(&dir, &Connection::InCluster), Err(Error::NotInCluster)));
    }

    #[test]
    fn the_in_process_client_gets_the_token_inline_and_nothing_is_written() {
        let endpoint = KubernetesEndpoint::ServiceAccount {
            server_url: "https://k8s:6443".into(),
            token: Secret::new("sa-token"),
            ca_data: Some("Q0E=".into()),
            accept_untrusted_certs: true,
        };
        let yaml = build(&Connection::ServiceConnection(endpoint), &Env::default(), TokenAt::Inline).unwrap();
        let kubeconfig = Kubeconfig::from_yaml(&yaml).unwrap();
        let user = kubeconfig.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.token.is_some() && user.token_file.is_none(), "{yaml}");
        let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.insecure_skip_tls_verify, Some(true));
        assert_eq!(cluster.certificate_authority_data, None, "acceptUntrustedCerts drops the CA");
    }
}
