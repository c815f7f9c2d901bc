//! The local world the demo runs against: the Kubernetes API simulator
//! (playing both the management cluster that runs kaniko and the "dev"
//! cluster in account 222222222222), moto (S3, STS, EKS) and helm, prepared
//! as the example pipeline expects.

use std::process::Command;

use azp_kube_world::World;
use serde_json::json;

/// The namespace and service account of the kaniko pods (the task's defaults).
pub const KANIKO_NAMESPACE: &str = "azure-agent";
pub const KANIKO_SERVICE_ACCOUNT: &str = "azure-agent-kaniko";
/// The bucket that holds build contexts.
pub const BUCKET: &str = "azp-kube-demo-contexts";
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
        if let Err(e) = world.cluster().create(&config_maps, KANIKO_NAMESPACE, docker_config, false) {
            if e.reason != "AlreadyExists" {
                return Err(format!("config map docker-config: {e:?}"));
            }
        }
        let env: Vec<(String, String)> = world.env().into_iter().filter(|(k, _)| k != "KUBECONFIG").collect();
        aws(&world, &env, &["s3api", "create-bucket", "--bucket", BUCKET])?;
        // The "dev" cluster in the target account: created with the deploy
        // role's credentials, so it lives in account 222222222222.
        let assumed =
            aws(&world, &env, &["sts", "assume-role", "--role-arn", DEPLOY_ROLE, "--role-session-name", "demo-setup"])?;
        let c = &assumed["Credentials"];
        let mut role_env = env.clone();
        for (key, field) in [
            ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
            ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
            ("AWS_SESSION_TOKEN", "SessionToken"),
        ] {
            role_env.retain(|(k, _)| k != key);
            role_env.push((key.to_string(), c[field].as_str().unwrap_or_default().to_string()));
        }
        aws(
            &world,
            &role_env,
            &[
                "eks",
                "create-cluster",
                "--name",
                DEV_CLUSTER,
                "--region",
                DEV_REGION,
                "--role-arn",
                "arn:aws:iam::222222222222:role/eks",
                "--resources-vpc-config",
                "subnetIds=subnet-1",
            ],
        )?;
        notes.push(format!(
            "one API simulator plays both clusters: the management cluster (kaniko pods in {KANIKO_NAMESPACE}) \
             and the EKS cluster {DEV_CLUSTER} ({DEV_REGION}, account 222222222222), whose endpoint moto points at it"
        ));
        let variables = vec![
            ("registry".to_string(), "registry.local".to_string()),
            ("contextBucket".to_string(), BUCKET.to_string()),
        ];
        Ok(Self { world, variables, env, notes })
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
