//! A listener that counts connections (to prove nothing touched the
//! network) and the staged tasks.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use azp_harness::{StagedTask, TaskRun};
use azp_kube_world::World;

/// A TCP port on loopback that accepts and counts connections.
pub struct Tripwire {
    pub port: u16,
    connections: Arc<AtomicUsize>,
}

impl Tripwire {
    pub fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Self { port, connections }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// A kubeconfig whose server is the tripwire.
    pub fn kubeconfig(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("tripwire.kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n",
            self.port
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

pub fn task(folder: &str) -> StagedTask {
    StagedTask::new(folder, Path::new(env!("CARGO_BIN_EXE_azp-kube")))
}

/// A MulticlusterHelm run for a secret scan: a HOME of its own and the agent's
/// temp folder at `agent_temp` (created), where summaries and stale private
/// folders would be.
pub fn scanned_run(task: &StagedTask, home: &Path, agent_temp: &Path) -> TaskRun {
    std::fs::create_dir_all(agent_temp).unwrap();
    TaskRun::new(task.path())
        .timeout(std::time::Duration::from_secs(180))
        .env("HOME", &home.display().to_string())
        .env("AGENT_TEMPDIRECTORY", &agent_temp.display().to_string())
}

/// The AWS keys of a service connection: access key, secret key, session token.
pub struct AwsKeys<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub session_token: &'a str,
}

/// A run with the world's AWS endpoints and region, but not its keys: the
/// base credentials come from the AWS service connection `id`.
pub fn with_aws_connection(mut run: TaskRun, world: &World, id: &str, keys: &AwsKeys) -> TaskRun {
    for (name, value) in world.env() {
        if name.starts_with("AWS_") && !name.starts_with("AWS_ACCESS_KEY") && !name.starts_with("AWS_SECRET") {
            run = run.env(&name, &value);
        }
    }
    let AwsKeys { access_key, secret_key, session_token } = keys;
    let auth = format!(
        r#"{{"parameters":{{"username":"{access_key}","password":"{secret_key}","sessionToken":"{session_token}"}},"scheme":"UsernamePassword"}}"#
    );
    run.env(&format!("ENDPOINT_AUTH_{id}"), &auth).input("awsCredentials", id)
}

/// MulticlusterHelm deploying the world's test chart as release `web` in
/// namespace `web` of the world's EKS cluster, with `helm`.
pub fn deploys_the_test_chart(run: TaskRun, world: &World, helm: &Path) -> TaskRun {
    run.input("clusterName", world.cluster_name())
        .input("regionName", world.region())
        .input("chartType", "FilePath")
        .input("chartPath", &azp_harness::repo_root().join("tests/world/testdata/chart").display().to_string())
        .input("releaseName", "web")
        .input("namespace", "web")
        .input("overrideValues", "hook=false")
        .input("helmPath", &helm.display().to_string())
}
