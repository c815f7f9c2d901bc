//! The local world the demo runs against: two Kubernetes API simulators (the
//! management cluster that runs kaniko, and the "dev" cluster in account
//! 222222222222), moto (S3, STS, EKS) and helm, prepared as the example
//! pipeline expects.

use std::process::Command;

use azp_kube_world::World;
use azp_kube_world::clusters::{ClusterSpec, ExtraCluster};
use std::sync::Arc;

use crate::runner::ServiceConnection;
use serde_json::json;

/// The build namespace, which the azure-agent chart gives its agents as
/// `AZP_BUILD_NAMESPACE` (the task's default namespace), and the kaniko pods'
/// service account (the task's default).
pub const KANIKO_NAMESPACE: &str = "azure-agent-build";
pub const KANIKO_SERVICE_ACCOUNT: &str = "azure-agent-kaniko";
/// The Kubernetes service connection to the cluster that runs kaniko pods.
pub const MANAGEMENT_CONNECTION: &str = "management-cluster";
/// The bucket that holds build contexts.
pub const BUCKET: &str = "my-build-contexts";
/// The target cluster, its region and account, and the role that deploys.
pub const DEV_CLUSTER: &str = "dev";
pub const DEV_REGION: &str = "eu-west-1";
pub const DEPLOY_ROLE: &str = "arn:aws:iam::222222222222:role/deployer";

/// A started and prepared world.
pub struct LocalWorld {
    pub world: World,
    /// Variables the pipeline's settings would hold (`registry`, `contextBucket`).
    pub variables: Vec<(String, String)>,
    /// The agent's environment (AWS endpoints and keys of moto).
    pub env: Vec<(String, String)>,
    /// What the world does differently from the real thing.
    pub notes: Vec<String>,
    /// `management-cluster`: the cluster that runs the kaniko pods.
    pub connections: Vec<ServiceConnection>,
    /// The EKS cluster `dev` of the target account: an API server of its own.
    pub dev: Arc<ExtraCluster>,
}

impl LocalWorld {
    /// Starts the world and prepares it.
    pub fn start() -> Result<Self, String> {
        let world = World::start().map_err(|e| format!("cannot start the local world: {e}"))?;
        let mut notes = Vec::new();
        world.create_namespace(KANIKO_NAMESPACE).map_err(|e| format!("namespace {KANIKO_NAMESPACE}: {e:?}"))?;
        world
            .service_account_token(KANIKO_NAMESPACE, KANIKO_SERVICE_ACCOUNT)
            .map_err(|e| format!("service account {KANIKO_SERVICE_ACCOUNT}: {e:?}"))?;
        let config_maps = world.cluster().resource("", "configmaps").map_err(|e| format!("{e:?}"))?;
        let docker_config = json!({
            "metadata": {"name": "docker-config"},
            "data": {"config.json": "{\"auths\":{}}"},
        });
        match world.cluster().create(&config_maps, KANIKO_NAMESPACE, docker_config, false) {
            Err(e) if e.reason != "AlreadyExists" => return Err(format!("config map docker-config: {e:?}")),
            _ => {}
        }
        let mut env: Vec<(String, String)> = world.env().into_iter().filter(|(k, _)| k != "KUBECONFIG").collect();
        aws(&world, &env, &["s3api", "create-bucket", "--bucket", BUCKET])?;
        // The "dev" cluster in the target account: an API server of its own, and
        // an EKS entry in account 222222222222 that describes to it.
        let dev = world
            .add_cluster(ClusterSpec {
                name: DEV_CLUSTER.to_string(),
                region: DEV_REGION.to_string(),
                account_role: Some(DEPLOY_ROLE.to_string()),
            })
            .map_err(|e| format!("cluster {DEV_CLUSTER}: {e:?}"))?;
        dev.add_access_entry(DEPLOY_ROLE, "deployer:{{SessionName}}", &["system:masters"]);
        notes.push(format!("cluster {DEV_CLUSTER} has an access entry for {DEPLOY_ROLE} (cluster admin)"));
        notes.push(format!(
            "two API simulators: the management cluster (kaniko pods in {KANIKO_NAMESPACE}) and the EKS cluster \
             {DEV_CLUSTER} ({DEV_REGION}, account 222222222222, {}), whose endpoint moto points at",
            dev.api_url()
        ));
        // helm and kubectl on the agent's PATH, as a HelmInstaller step would put them.
        let bin = world.dir().join("agent-bin");
        std::fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
        for (name, target) in [("helm", &world.tools().helm4), ("kubectl", &world.tools().kubectl)] {
            std::os::unix::fs::symlink(target, bin.join(name)).map_err(|e| format!("{name}: {e}"))?;
        }
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        env.push(("PATH".to_string(), path));
        env.push(("AZP_BUILD_NAMESPACE".to_string(), KANIKO_NAMESPACE.to_string()));
        // S3 over HTTPS, as in AWS: kaniko fetches a presigned context only over https.
        if let Some(https) = world.aws_https_endpoint() {
            env.push(("AWS_ENDPOINT_URL_S3".to_string(), https));
            env.push(("SSL_CERT_FILE".to_string(), world.ca_file().display().to_string()));
        }
        notes.push("helm on PATH is helm 4 (from scripts/setup.sh)".to_string());
        let registry = world.registry();
        notes.push(format!("the registry {registry} is a local docker-registry; kaniko pods build with buildah"));
        let variables = vec![("registry".to_string(), registry)];
        let connections = vec![ServiceConnection::kubeconfig(
            MANAGEMENT_CONNECTION,
            "0d9c5e7a-1b2c-4d3e-8f40-5a6b7c8d9e01",
            world.kubeconfig(),
            "world",
            world.api_url(),
        )];
        Ok(Self { world, variables, env, notes, connections, dev })
    }
}

/// Runs the world's AWS CLI against moto and parses its JSON answer.
fn aws(world: &World, env: &[(String, String)], args: &[&str]) -> Result<serde_json::Value, String> {
    let out = Command::new(&world.tools().aws)
        .args(args)
        .args(["--output", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", world.dir())
        .envs(env.iter().cloned())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", world.tools().aws.display()))?;
    if !out.status.success() {
        return Err(format!("aws {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("aws {}: {e}", args.join(" ")))
}
