//! Helpers for the conformance cases: running the real CLIs against a world, and kube-rs
//! clients built from the world's kubeconfig.

use std::path::Path;
use std::process::{Command, Output};

use azp_kube_world::World;

/// The world shared by the cases of this binary.
pub fn world() -> &'static World {
    World::shared()
}

/// Runs a tool with the world's environment; returns the output whatever the exit code.
pub fn run(world: &World, tool: &Path, args: &[&str]) -> Output {
    run_with(world, tool, args, &[])
}

/// Like [`run`], with extra environment variables.
pub fn run_with(world: &World, tool: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut command = Command::new(tool);
    command.args(args).env("HOME", world.dir()).env("HELM_CACHE_HOME", world.dir().join("helm-cache"));
    command
        .env("HELM_CONFIG_HOME", world.dir().join("helm-config"))
        .env("HELM_DATA_HOME", world.dir().join("helm-data"));
    for (k, v) in world.env() {
        command.env(k, v);
    }
    for (k, v) in extra {
        command.env(k, v);
    }
    command.output().unwrap_or_else(|e| panic!("failed to run {}: {e}", tool.display()))
}

/// Runs a tool and requires success; returns stdout.
pub fn ok(world: &World, tool: &Path, args: &[&str]) -> String {
    let out = run(world, tool, args);
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}\n{}",
        tool.display(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The path of the test chart.
pub fn chart() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/chart").display().to_string()
}

/// A kube-rs client for a kubeconfig text.
pub async fn client(kubeconfig: &str) -> kube::Client {
    let config = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
        .await
        .expect("kubeconfig loads");
    kube::Client::try_from(config).expect("client builds")
}
