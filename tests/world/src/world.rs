//! The [`World`] handle: one call starts the Kubernetes API simulator (with its kubelet and
//! controllers, on a runtime thread of its own) and moto, writes an admin kubeconfig, and
//! returns everything a test needs. Dropping the handle stops both and removes its
//! temporary directory; a panicking test drops it too. [`World::shared`] gives one world
//! per test binary, cleaned up when the process exits.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::clusters::{ClusterSpec, ExtraCluster};
use crate::error::ApiError;
use crate::moto::{self, Moto};
use crate::pods::{Behaviour, Kubelet};
use crate::tools::{self, Tools};

/// The AWS region the world's EKS cluster is in.
pub const REGION: &str = "us-east-1";
/// The name of the world's EKS cluster.
pub const CLUSTER_NAME: &str = "world";
/// moto's default account: the world's own keys are in it.
pub const ACCOUNT: &str = "123456789012";

/// Why the world could not start or write a file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An AWS CLI call against moto failed.
    #[error("aws {command}: {stderr}")]
    Aws {
        /// The CLI's arguments.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The setup script has not run.
    #[error(transparent)]
    Tools(#[from] tools::Missing),
    /// A file or directory could not be written.
    #[error("failed to write {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The simulator failed to start.
    #[error("failed to start the API simulator: {0}")]
    Simulator(String),
    /// moto failed to start or answer.
    #[error(transparent)]
    Moto(#[from] moto::Error),
    /// A helm command of the world's own (pushing a chart) failed.
    #[error("helm {command}: {stderr}")]
    Helm {
        /// The arguments.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The AWS fault proxy failed to start (or the world runs no moto).
    #[error("failed to start the AWS fault proxy: {0}")]
    AwsFaultProxy(#[source] std::io::Error),
    /// The forward proxy failed to start.
    #[error("failed to start the forward proxy: {0}")]
    ForwardProxy(#[source] std::io::Error),
}

/// What to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Start moto (S3, STS, EKS, ECR) as well.
    pub aws: bool,
    /// The Kubernetes version the API server reports and follows.
    pub kubernetes: crate::version::ServerVersion,
}

impl Default for Options {
    fn default() -> Self {
        Self { aws: true, kubernetes: crate::version::ServerVersion::default() }
    }
}

struct Started {
    url: String,
    ca_pem: String,
    cluster: Arc<Cluster>,
    kubelet: Arc<Kubelet>,
    moto: Option<(u16, u32)>,
    moto_https: Option<u16>,
    registry: Option<(u16, u32)>,
    ecr: Option<(u16, Arc<crate::ecr_registry::EcrAuth>)>,
    runtime: tokio::runtime::Handle,
}

/// A running world.
pub struct World {
    dir: Mutex<Option<tempfile::TempDir>>,
    dir_path: PathBuf,
    kubeconfig_path: PathBuf,
    kubeconfig: String,
    api_url: String,
    ca_pem: String,
    admin_token: String,
    moto: Option<(u16, u32)>,
    moto_https: Option<u16>,
    registry: Option<(u16, u32)>,
    ecr: Option<(u16, Arc<crate::ecr_registry::EcrAuth>)>,
    eks: Option<Arc<crate::eks::EksAuthenticator>>,
    kaniko: Option<Behaviour>,
    tools: Tools,
    cluster: Arc<Cluster>,
    kubelet: Arc<Kubelet>,
    version: crate::version::ServerVersion,
    runtime: tokio::runtime::Handle,
    extra_clusters: Mutex<Vec<Arc<ExtraCluster>>>,
    stop: CancellationToken,
    thread: Mutex<Option<JoinHandle<()>>>,
    startup: Duration,
}

fn write(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(|source| Error::Write { path: path.to_path_buf(), source })
}

impl World {
    /// Starts the simulator and moto.
    pub fn start() -> Result<Self, Error> {
        Self::start_with(Options::default())
    }

    /// Starts the simulator, and moto if `options.aws`.
    pub fn start_with(options: Options) -> Result<Self, Error> {
        let begin = Instant::now();
        let tools = Tools::find()?;
        let dir = tempfile::Builder::new()
            .prefix("azp-kube-world-")
            .tempdir()
            .map_err(|source| Error::Write { path: std::env::temp_dir(), source })?;
        let dir_path = dir.path().to_path_buf();
        let admin_token = format!("admin.{}", crate::auth::random_token());
        let stop = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let (stop, token, python, dir) =
                (stop.clone(), admin_token.clone(), options.aws.then(|| tools.python.clone()), dir_path.clone());
            let version = options.kubernetes;
            std::thread::Builder::new()
                .name("azp-kube-world".into())
                .spawn(move || run(stop, &token, version, python.as_deref(), &dir, tx))
                .map_err(|e| Error::Simulator(e.to_string()))?
        };
        let started =
            rx.recv().map_err(|_| Error::Simulator("the world thread ended before it was ready".into()))??;
        let kubeconfig = crate::kubeconfig::render(&started.url, &started.ca_pem, "admin", &admin_token, "default");
        let kubeconfig_path = dir_path.join("kubeconfig");
        let mut world = Self {
            dir: Mutex::new(Some(dir)),
            dir_path,
            kubeconfig_path,
            kubeconfig,
            api_url: started.url,
            ca_pem: started.ca_pem,
            admin_token,
            moto: started.moto,
            moto_https: started.moto_https,
            registry: started.registry,
            ecr: started.ecr,
            eks: None,
            kaniko: None,
            tools,
            cluster: started.cluster,
            kubelet: started.kubelet,
            version: options.kubernetes,
            runtime: started.runtime,
            extra_clusters: Mutex::default(),
            stop,
            thread: Mutex::new(Some(thread)),
            startup: Duration::ZERO,
        };
        write(&world.kubeconfig_path, &world.kubeconfig)?;
        if let Some((port, _)) = world.moto {
            // moto imports a lot of Python: on two busy cores it can take well over 15 s.
            moto::wait_ready(port, Duration::from_secs(60), &world.dir_path.join("moto.log"))?;
            moto::create_cluster(port, REGION, CLUSTER_NAME)?;
            let eks = Arc::new(crate::eks::EksAuthenticator::new(
                &format!("127.0.0.1:{port}"),
                CLUSTER_NAME,
                moto::credentials_file(&world.dir_path.join("moto.log")),
            ));
            world.cluster.auth.add_authenticator(eks.clone());
            world.eks = Some(eks);
        }
        if let Some(registry) = world.registry_address() {
            let kaniko = crate::kaniko::Kaniko::new(
                &world.cluster,
                world.dir_path.join("buildah"),
                registry,
                world.aws_endpoint(),
            );
            crate::kaniko::context::add_image_root(&world.ca_pem);
            let behaviour = Behaviour::runtime(Arc::new(kaniko));
            world.kaniko = Some(behaviour.clone());
            world
                .cluster
                .behaviours
                .add_default(Arc::new(move |image: &str| crate::kaniko::is_executor(image).then(|| behaviour.clone())));
        }
        world.startup = begin.elapsed();
        Ok(world)
    }

    /// One world per process, started on first use and stopped when the process exits.
    /// Panics (with the reason) if it cannot start.
    pub fn shared() -> &'static World {
        static SHARED: OnceLock<World> = OnceLock::new();
        extern "C" fn stop_shared() {
            if let Some(world) = SHARED.get() {
                world.shutdown();
            }
        }
        SHARED.get_or_init(|| {
            let world = World::start().unwrap_or_else(|e| panic!("failed to start the test world: {e}"));
            // SAFETY: registering a plain extern "C" function with no captured state.
            unsafe { libc::atexit(stop_shared) };
            world
        })
    }

    /// Stops everything and removes the temporary directory (idempotent).
    pub fn shutdown(&self) {
        self.stop.cancel();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            // A panicked world thread has nothing left to stop.
            let _ = thread.join();
        }
        drop(self.dir.lock().unwrap_or_else(|e| e.into_inner()).take());
    }

    /// Starts recording every change in `namespace` (see [`crate::recorder`]).
    pub fn record(&self, namespace: &str) -> crate::recorder::Recorder {
        crate::recorder::Recorder::start(self.cluster(), namespace)
    }

    /// How long [`World::start`] took.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// The admin kubeconfig file.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The admin kubeconfig's contents.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// The API server URL (`https://127.0.0.1:<port>`).
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The CA certificate (PEM) that signed the API server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The admin's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The world's temporary directory (removed when the world stops).
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// moto's URL, serving STS, S3, EKS and ECR (None without AWS).
    pub fn aws_endpoint(&self) -> Option<String> {
        self.moto.map(|(port, _)| format!("http://127.0.0.1:{port}"))
    }

    /// moto behind TLS (`https://127.0.0.1:PORT`, the world's certificate; None without AWS).
    /// The world's kaniko trusts the world's CA as an image trusts public roots; other
    /// clients need [`World::ca_file`] (`SSL_CERT_FILE` for the task).
    pub fn aws_https_endpoint(&self) -> Option<String> {
        self.moto_https.map(|port| format!("https://127.0.0.1:{port}"))
    }

    /// The world's CA certificate as a PEM file (written when the world runs moto).
    pub fn ca_file(&self) -> PathBuf {
        self.dir_path.join("ca.crt")
    }

    /// A new fault proxy in front of moto (see [`crate::aws_faults`]), with rules of its
    /// own; the world's EKS cluster accepts tokens presigned for it. Stopped when dropped.
    pub fn aws_fault_proxy(&self) -> Result<crate::aws_faults::AwsFaultProxy, Error> {
        let no_moto = || std::io::Error::other("this world runs no moto (Options { aws: false })");
        let (port, _) = self.moto.ok_or_else(|| Error::AwsFaultProxy(no_moto()))?;
        let proxy =
            crate::aws_faults::AwsFaultProxy::start(&format!("127.0.0.1:{port}")).map_err(Error::AwsFaultProxy)?;
        if let Some(eks) = &self.eks {
            eks.trust_sts_host(&proxy.host());
        }
        Ok(proxy)
    }

    /// The AWS region.
    pub fn region(&self) -> &'static str {
        REGION
    }

    /// The EKS cluster name that DescribeCluster resolves to the simulator.
    pub fn cluster_name(&self) -> &'static str {
        CLUSTER_NAME
    }

    /// Paths of helm 3, helm 4, kubectl and the venv.
    pub fn tools(&self) -> &Tools {
        &self.tools
    }

    /// The simulated cluster (store, auth hooks, behaviours, watch and fault controls).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The kubelet (stdin of attached containers).
    pub fn kubelet(&self) -> &Arc<Kubelet> {
        &self.kubelet
    }

    /// Processes the world started (moto, the registry), for leak checks.
    pub fn child_pids(&self) -> Vec<u32> {
        self.moto.iter().chain(&self.registry).map(|(_, pid)| *pid).collect()
    }

    /// The image registry's address (`127.0.0.1:PORT`), plain HTTP. Panics in a world
    /// started without AWS (and so without a registry).
    pub fn registry(&self) -> String {
        self.registry_address().expect("this world runs no registry (Options { aws: false })")
    }

    /// Where the world's ECR registries are reached (`127.0.0.1:PORT`, HTTPS with the
    /// world's certificate): the task's `AZP_KUBE_ECR_REGISTRY_ENDPOINT`. None without AWS.
    pub fn ecr_registry_endpoint(&self) -> Option<String> {
        self.ecr.as_ref().map(|(port, _)| format!("127.0.0.1:{port}"))
    }

    /// The ECR registry's logins and repositories (see [`crate::ecr_registry`]). Panics in
    /// a world without AWS.
    pub fn ecr(&self) -> &crate::ecr_registry::EcrAuth {
        self.ecr.as_ref().map(|(_, auth)| auth.as_ref()).expect("this world runs no registry (Options { aws: false })")
    }

    /// The ECR registry host of `account` in the world's region, as charts name it.
    pub fn ecr_host(&self, account: &str) -> String {
        format!("{account}.dkr.ecr.{REGION}.amazonaws.com")
    }

    /// The EKS token authenticator (None without AWS).
    pub fn eks(&self) -> Option<&Arc<crate::eks::EksAuthenticator>> {
        self.eks.as_ref()
    }

    /// Adds an EKS access entry: tokens of `principal_arn` (a role or user ARN; assumed-role
    /// sessions map to their role) authenticate as `username` with `groups`.
    pub fn add_access_entry(&self, principal_arn: &str, username: &str, groups: &[&str]) {
        if let Some(eks) = &self.eks {
            eks.add_access_entry(principal_arn, username, groups);
        }
    }

    /// Removes an EKS access entry.
    pub fn remove_access_entry(&self, principal_arn: &str) {
        if let Some(eks) = &self.eks {
            eks.remove_access_entry(principal_arn);
        }
    }

    /// EKS tokens whose X-Amz-Date is older than `ttl` are expired (default 15 minutes).
    pub fn set_token_ttl(&self, ttl: Duration) {
        if let Some(eks) = &self.eks {
            eks.set_token_ttl(ttl);
        }
    }

    /// An EKS token for this world's cluster signed now with `keys` (as `aws eks get-token`).
    pub fn eks_token(&self, keys: &crate::eks::Keys<'_>) -> String {
        self.eks_token_for(keys, CLUSTER_NAME, std::time::SystemTime::now())
    }

    /// An EKS token signed for any cluster name at any time (for negative tests).
    pub fn eks_token_for(&self, keys: &crate::eks::Keys<'_>, cluster: &str, at: std::time::SystemTime) -> String {
        let host = self.moto.map(|(port, _)| format!("127.0.0.1:{port}")).unwrap_or_default();
        crate::eks::token(keys, REGION, &host, cluster, at)
    }

    /// The registry's address, if the world runs one.
    pub fn registry_address(&self) -> Option<String> {
        self.registry.map(|(port, _)| format!("127.0.0.1:{port}"))
    }

    /// A new forward proxy (see [`crate::forward_proxy`]) requiring `credentials` (user,
    /// password) when given; it stops when dropped.
    pub fn forward_proxy(
        &self,
        credentials: Option<(&str, &str)>,
    ) -> Result<crate::forward_proxy::ForwardProxy, Error> {
        crate::forward_proxy::ForwardProxy::start(&self.runtime, credentials).map_err(Error::ForwardProxy)
    }

    /// The `Docker-Content-Digest` the registry serves for `repo:tag` (None if unknown).
    pub fn registry_digest(&self, repo: &str, tag: &str) -> Option<String> {
        crate::registry::digest(&self.registry_address()?, repo, tag)
    }

    /// Environment for AWS clients and tools pointed at moto and the admin kubeconfig.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("KUBECONFIG".to_string(), self.kubeconfig_path.display().to_string())];
        if let Some(url) = self.aws_endpoint() {
            if let Some(ecr) = self.ecr_registry_endpoint() {
                env.push(("AZP_KUBE_ECR_REGISTRY_ENDPOINT".into(), ecr));
            }
            for (k, v) in [
                ("AWS_ENDPOINT_URL", url.as_str()),
                ("AWS_ENDPOINT_URL_STS", url.as_str()),
                ("AWS_REGION", REGION),
                ("AWS_DEFAULT_REGION", REGION),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ] {
                env.push((k.to_string(), v.to_string()));
            }
        }
        env
    }

    /// Environment of an IRSA pod: like [`World::env`] without static keys, plus a web
    /// identity token file and `AWS_ROLE_ARN` (moto accepts any token).
    pub fn irsa_env(&self, role_arn: &str) -> Result<Vec<(String, String)>, Error> {
        let token_file = self.dir_path.join("web-identity-token");
        write(&token_file, "eyJhbGciOiJSUzI1NiJ9.e30.world")?;
        let mut env: Vec<(String, String)> = self
            .env()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET"))
            .collect();
        env.push(("AWS_ROLE_ARN".into(), role_arn.into()));
        env.push(("AWS_WEB_IDENTITY_TOKEN_FILE".into(), token_file.display().to_string()));
        env.push(("AWS_ROLE_SESSION_NAME".into(), "world".into()));
        Ok(env)
    }

    /// Creates this world's EKS cluster (same name, region and endpoint) in the
    /// account of `role_arn` too, with that role's credentials, so that a task
    /// that assumes the role finds it: moto keeps clusters per account.
    pub fn create_cluster_in_account_of(&self, role_arn: &str) -> Result<(), Error> {
        self.create_eks_cluster(CLUSTER_NAME, REGION, Some(role_arn))
    }

    /// Runs the AWS CLI against moto with the world's keys (`keys` override them), and
    /// reads its JSON answer.
    fn aws_cli(&self, args: &[&str], keys: &[(&str, String)]) -> Result<serde_json::Value, Error> {
        let out = std::process::Command::new(&self.tools.aws)
            .args(args)
            .args(["--output", "json"])
            .envs(self.env().into_iter().filter(|(k, _)| k.starts_with("AWS_")))
            .envs(keys.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .map_err(|e| Error::Aws { command: args.join(" "), stderr: e.to_string() })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            return Err(Error::Aws { command: args.join(" "), stderr });
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_default())
    }

    /// The keys of `role_arn` assumed with the world's keys, as AWS CLI variables.
    fn assumed_keys(&self, role_arn: &str) -> Result<Vec<(&'static str, String)>, Error> {
        let assumed =
            self.aws_cli(&["sts", "assume-role", "--role-arn", role_arn, "--role-session-name", "world"], &[])?;
        let key = |name: &str| assumed["Credentials"][name].as_str().unwrap_or_default().to_string();
        Ok(vec![
            ("AWS_ACCESS_KEY_ID", key("AccessKeyId")),
            ("AWS_SECRET_ACCESS_KEY", key("SecretAccessKey")),
            ("AWS_SESSION_TOKEN", key("SessionToken")),
        ])
    }

    /// Creates an EKS cluster entry in moto, in the account of `role_arn` (assumed with the
    /// world's keys) or in the world's own account.
    fn create_eks_cluster(&self, name: &str, region: &str, role_arn: Option<&str>) -> Result<(), Error> {
        let mut keys = vec![("AWS_REGION", region.to_string()), ("AWS_DEFAULT_REGION", region.to_string())];
        let account = match role_arn {
            Some(role_arn) => {
                keys.extend(self.assumed_keys(role_arn)?);
                role_arn.split(':').nth(4).unwrap_or_default()
            }
            None => ACCOUNT,
        };
        let cluster_role = format!("arn:aws:iam::{account}:role/eks");
        // The version the API servers report, so that DescribeCluster and /version agree.
        let version = format!("1.{}", self.version.minor);
        let create = ["eks", "create-cluster", "--name", name, "--role-arn", &cluster_role];
        let rest = ["--kubernetes-version", &version, "--resources-vpc-config", "subnetIds=subnet-1"];
        self.aws_cli(&[&create[..], &rest[..]].concat(), &keys)?;
        Ok(())
    }

    /// The ECR password of the world's account, or of `role_arn`'s (assumed with the
    /// world's keys), from moto's GetAuthorizationToken through `aws ecr get-login-password`.
    pub fn ecr_password(&self, role_arn: Option<&str>) -> Result<String, Error> {
        let keys = role_arn.map(|role| self.assumed_keys(role)).transpose()?.unwrap_or_default();
        let answer = self.aws_cli(&["ecr", "get-authorization-token"], &keys)?;
        let token = answer["authorizationData"][0]["authorizationToken"].as_str().unwrap_or_default();
        let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, token).unwrap_or_default();
        let text = String::from_utf8_lossy(&decoded);
        Ok(text.split_once(':').map(|(_, password)| password.to_string()).unwrap_or_default())
    }

    /// Packages `chart` at `version` and pushes it with helm 4 to the world's ECR registry
    /// as `<namespace>/<chart name>`, logged in as `role_arn`'s account (or the world's).
    /// helm's homes and registry config are a temporary folder's.
    pub fn push_ecr_chart(
        &self,
        chart: &Path,
        version: &str,
        namespace: &str,
        role_arn: Option<&str>,
    ) -> Result<(), Error> {
        use std::io::Write as _;
        let endpoint =
            self.ecr_registry_endpoint().ok_or_else(|| Error::Simulator("this world runs no ECR registry".into()))?;
        let dir = tempfile::tempdir().map_err(|source| Error::Write { path: std::env::temp_dir(), source })?;
        let helm = |args: &[&str], stdin: Option<&str>| -> Result<String, Error> {
            let failed = |stderr: String| Error::Helm { command: args.join(" "), stderr };
            let mut child = std::process::Command::new(&self.tools.helm4)
                .args(args)
                .env("HELM_CONFIG_HOME", dir.path().join("config"))
                .env("HELM_CACHE_HOME", dir.path().join("cache"))
                .env("HELM_DATA_HOME", dir.path().join("data"))
                .env("HELM_REGISTRY_CONFIG", dir.path().join("registry.json"))
                .env("SSL_CERT_FILE", self.ca_file())
                .current_dir(dir.path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| failed(e.to_string()))?;
            if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
                pipe.write_all(text.as_bytes()).map_err(|e| failed(e.to_string()))?;
            }
            let out = child.wait_with_output().map_err(|e| failed(e.to_string()))?;
            if !out.status.success() {
                return Err(failed(String::from_utf8_lossy(&out.stderr).into_owned()));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let packaged = helm(&["package", &chart.display().to_string(), "--version", version], None)?;
        let tgz = packaged.trim().rsplit(' ').next().unwrap_or_default().to_string();
        let password = self.ecr_password(role_arn)?;
        helm(&["registry", "login", &endpoint, "--username", "AWS", "--password-stdin"], Some(&password))?;
        helm(&["push", &tgz, &format!("oci://{endpoint}/{namespace}")], None)?;
        Ok(())
    }

    /// Starts another cluster: an API server of its own and, in a world with AWS, an EKS
    /// cluster entry `spec.name` in the spec's account and region whose DescribeCluster
    /// gives that server's endpoint and CA, and whose tokens are checked for that name.
    pub fn add_cluster(&self, spec: ClusterSpec) -> Result<Arc<ExtraCluster>, Error> {
        self.add_cluster_named(spec, None)
    }

    /// [`World::add_cluster`] whose DescribeCluster endpoint is `https://NAME.proxied.invalid:PORT`
    /// instead of `https://127.0.0.1:PORT`: reachable only through a [`ForwardProxy`].
    ///
    /// [`ForwardProxy`]: crate::forward_proxy::ForwardProxy
    pub fn add_cluster_behind_proxy(&self, spec: ClusterSpec, name: &str) -> Result<Arc<ExtraCluster>, Error> {
        self.add_cluster_named(spec, Some(name))
    }

    fn add_cluster_named(&self, spec: ClusterSpec, proxied_name: Option<&str>) -> Result<Arc<ExtraCluster>, Error> {
        // One at a time: each adds itself to moto's list of endpoints.
        let mut extra_clusters = self.extra_clusters.lock().unwrap_or_else(|e| e.into_inner());
        let served =
            crate::clusters::serve(&self.runtime, self.version, self.stop.clone()).map_err(Error::Simulator)?;
        let dir = self.dir_path.join("clusters");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Write { path: dir.clone(), source })?;
        let account = spec.account_role.as_deref().and_then(|r| r.split(':').nth(4)).unwrap_or(ACCOUNT).to_string();
        let kubeconfig_path = dir.join(format!("{account}-{}-{}.kubeconfig", spec.region, spec.name));
        let kubeconfig =
            crate::kubeconfig::render(&served.url, &served.ca_pem, "admin", &served.admin_token, "default");
        write(&kubeconfig_path, &kubeconfig)?;
        let mut eks = None;
        if let Some((port, _)) = self.moto {
            let log = self.dir_path.join("moto.log");
            let arn = format!("arn:aws:eks:{}:{account}:cluster/{}", spec.region, spec.name);
            let endpoints = moto::eks_endpoints_file(&log);
            let mut listed: serde_json::Map<String, serde_json::Value> = std::fs::read(&endpoints)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
            let endpoint = match proxied_name {
                Some(name) => crate::forward_proxy::proxied_url(&served.url, name),
                None => served.url.clone(),
            };
            listed.insert(arn, json!({"endpoint": endpoint, "ca": served.ca_pem}));
            write(&endpoints, &serde_json::Value::Object(listed).to_string())?;
            self.create_eks_cluster(&spec.name, &spec.region, spec.account_role.as_deref())?;
            let authenticator = Arc::new(crate::eks::EksAuthenticator::new(
                &format!("127.0.0.1:{port}"),
                &spec.name,
                moto::credentials_file(&log),
            ));
            served.cluster.auth.add_authenticator(authenticator.clone());
            eks = Some(authenticator);
        }
        let extra = Arc::new(ExtraCluster::new(spec, served, kubeconfig_path, eks));
        extra_clusters.push(extra.clone());
        Ok(extra)
    }

    /// Wipes moto's state and recreates the world's EKS cluster.
    pub fn reset_aws(&self) -> Result<(), Error> {
        if let Some((port, _)) = self.moto {
            moto::reset(port)?;
            moto::create_cluster(port, REGION, CLUSTER_NAME)?;
        }
        Ok(())
    }

    /// Creates an S3 bucket in moto (the world runs without moto: nothing to do).
    pub fn create_bucket(&self, name: &str) -> Result<(), Error> {
        match self.moto {
            Some((port, _)) => Ok(moto::create_bucket(port, REGION, name)?),
            None => Ok(()),
        }
    }

    /// Creates a namespace (an existing one is fine).
    pub fn create_namespace(&self, name: &str) -> Result<(), ApiError> {
        let rt = self.cluster.resource("", "namespaces")?;
        match self.cluster.create(&rt, "", json!({"metadata": {"name": name}}), false) {
            Err(e) if e.reason != "AlreadyExists" => Err(e),
            _ => Ok(()),
        }
    }

    /// Creates a namespace named `<prefix>-<random>` and returns its name.
    pub fn unique_namespace(&self, prefix: &str) -> Result<String, ApiError> {
        let name = format!("{prefix}-{}", crate::store::random_suffix(6));
        self.create_namespace(&name)?;
        Ok(name)
    }

    /// A bearer token for the service account `namespace/name` (created if missing).
    pub fn service_account_token(&self, namespace: &str, name: &str) -> Result<String, ApiError> {
        let rt = self.cluster.resource("", "serviceaccounts")?;
        match self.cluster.create(&rt, namespace, json!({"metadata": {"name": name}}), false) {
            Err(e) if e.reason != "AlreadyExists" => return Err(e),
            _ => {}
        }
        Ok(self.cluster.auth.mint_service_account_token(namespace, name))
    }

    /// Writes a kubeconfig whose user runs `command args...` as a client-go exec plugin
    /// (it must print an ExecCredential).
    pub fn kubeconfig_exec(&self, user: &str, command: &Path, args: &[String]) -> Result<PathBuf, Error> {
        let path = self.dir_path.join(format!("{user}.kubeconfig"));
        write(&path, &crate::kubeconfig::render_exec(&self.api_url, &self.ca_pem, user, command, args))?;
        Ok(path)
    }

    /// Writes a kubeconfig for another bearer token into the world's directory.
    pub fn kubeconfig_for(&self, user: &str, token: &str) -> Result<PathBuf, Error> {
        let path = self.dir_path.join(format!("{user}.kubeconfig"));
        write(&path, &crate::kubeconfig::render(&self.api_url, &self.ca_pem, user, token, "default"))?;
        Ok(path)
    }

    /// Faults on demand: failed, delayed and cut requests and streams (see [`crate::faults`]).
    pub fn faults(&self) -> &crate::faults::Faults {
        &self.cluster.faults
    }

    /// The kaniko runtime (real buildah builds pushed to the world's registry), the default
    /// for images named `…/kaniko` or `…/executor`; None in a world without AWS.
    pub fn kaniko(&self) -> Option<Behaviour> {
        self.kaniko.clone()
    }

    /// Marks `image` (exact, or a repository for every tag) as a kaniko executor: its pods
    /// build for real. Panics in a world without AWS (no registry).
    pub fn mark_kaniko_image(&self, image: &str) {
        let kaniko = self.kaniko().expect("this world runs no registry (Options { aws: false })");
        self.set_behaviour(image, kaniko);
    }

    /// Chooses what pods using `image` do.
    pub fn set_behaviour(&self, image: &str, behaviour: Behaviour) {
        self.cluster.behaviours.set(image, behaviour);
    }

    /// Writes `kubeconfig` and `world.json` (endpoints, region, cluster name) into `dir`.
    pub fn write_info(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write { path: dir.to_path_buf(), source })?;
        let kubeconfig = dir.join("kubeconfig");
        write(&kubeconfig, &self.kubeconfig)?;
        let aws = self.aws_endpoint();
        let info = json!({
            "api": self.api_url, "kubeconfig": kubeconfig, "sts": aws, "s3": aws, "eks": aws,
            "region": REGION, "clusterName": CLUSTER_NAME, "caPem": self.ca_pem,
            "registry": self.registry_address(), "ecrRegistry": self.ecr_registry_endpoint(),
        });
        write(&dir.join("world.json"), &serde_json::to_string_pretty(&info).unwrap_or_default())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The world thread: owns the tokio runtime and the moto child (so PR_SET_PDEATHSIG ties
/// moto to this thread), and serves until `stop`.
fn run(
    stop: CancellationToken,
    admin_token: &str,
    version: crate::version::ServerVersion,
    python: Option<&Path>,
    dir: &Path,
    ready: std::sync::mpsc::Sender<Result<Started, Error>>,
) {
    let fail = |ready: &std::sync::mpsc::Sender<Result<Started, Error>>, e: String| {
        let _ = ready.send(Err(Error::Simulator(e)));
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&ready, e.to_string()),
    };
    let tls = match crate::tls::Tls::generate() {
        Ok(tls) => tls,
        Err(e) => return fail(&ready, e.to_string()),
    };
    let listener = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.set_nonblocking(true).map(|_| l)) {
        Ok(l) => l,
        Err(e) => return fail(&ready, e.to_string()),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let url = format!("https://127.0.0.1:{port}");
    let moto = match python {
        None => None,
        Some(python) => {
            let ca_file = dir.join("ca.crt");
            if let Err(source) = std::fs::write(&ca_file, &tls.ca_pem) {
                let _ = ready.send(Err(Error::Write { path: ca_file, source }));
                return;
            }
            match Moto::spawn(python, &tools::moto_launcher(), &url, &ca_file, &dir.join("moto.log")) {
                Ok(m) => Some(m),
                Err(e) => {
                    let _ = ready.send(Err(e.into()));
                    return;
                }
            }
        }
    };
    let registry = match python {
        None => None,
        Some(_) => match crate::registry::Registry::spawn(dir) {
            Ok(r) => Some(r),
            Err(e) => return fail(&ready, format!("failed to start {}: {e}", crate::registry::binary())),
        },
    };
    let cluster = Cluster::of_version(admin_token, version);
    cluster.auth.set_authorizer(Arc::new(crate::rbac::Rbac::new(&cluster)));
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return fail(&ready, e.to_string()),
        };
        let Some(kubelet) = Kubelet::start(cluster.clone()) else { return fail(&ready, "no pods resource".into()) };
        crate::controllers::start(cluster.clone());
        tokio::spawn(crate::server::serve(listener, tls.server_config.clone(), cluster.clone(), stop.clone()));
        let mut moto_https = None;
        if let Some(moto) = &moto {
            let front = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => return fail(&ready, format!("cannot listen for moto's HTTPS front: {e}")),
            };
            moto_https = front.local_addr().ok().map(|a| a.port());
            let config = tls.server_config.clone();
            tokio::spawn(crate::https_front::serve(front, config, moto.port(), stop.clone()));
        }
        let mut ecr = None;
        if let Some(registry) = &registry {
            let front = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => return fail(&ready, format!("cannot listen for the ECR registry: {e}")),
            };
            let port = front.local_addr().map(|a| a.port()).unwrap_or_default();
            let auth = Arc::new(crate::ecr_registry::EcrAuth::new(ACCOUNT));
            let config = tls.server_config.clone();
            tokio::spawn(crate::ecr_registry::serve(front, config, registry.port(), auth.clone(), stop.clone()));
            ecr = Some((port, auth));
        }
        let started = Started {
            url,
            ca_pem: tls.ca_pem.clone(),
            cluster: cluster.clone(),
            kubelet,
            moto: moto.as_ref().map(|m| (m.port(), m.pid())),
            moto_https,
            registry: registry.as_ref().map(|r| (r.port(), r.pid())),
            ecr,
            runtime: tokio::runtime::Handle::current(),
        };
        if ready.send(Ok(started)).is_ok() {
            stop.cancelled().await;
        }
    });
    drop(moto);
    drop(registry);
    runtime.shutdown_timeout(Duration::from_millis(200));
}
