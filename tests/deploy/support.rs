//! The chart, both helms, the shared world and rendered manifests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use azp_kube_world::World;
use serde_json::Value;

/// The PAT given to the chart in tests; it must appear nowhere but in the Secret.
pub const PAT: &str = "patcanary7f3e9a1c5b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f";

/// The values every install needs.
pub const REQUIRED: &[&str] = &["--set", "azp.url=https://dev.azure.com/contoso", "--set", "azp.pool=k8s-agents"];

pub fn world() -> &'static World {
    World::shared()
}

pub fn repo() -> PathBuf {
    azp_harness::repo_root()
}

pub fn chart() -> String {
    repo().join("deploy/chart").display().to_string()
}

/// helm 4 and helm 3, with a name for messages.
pub fn helms() -> [(&'static str, &'static Path); 2] {
    let tools = world().tools();
    [("helm4", tools.helm4.as_path()), ("helm3", tools.helm3.as_path())]
}

/// Private helm cache, config and data directories for this test binary.
fn helm_home() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().expect("helm home")).path()
}

/// Runs helm (or kubectl) against the world as admin.
pub fn tool(binary: &Path, args: &[&str]) -> Output {
    let home = helm_home();
    Command::new(binary)
        .args(args)
        .env("KUBECONFIG", world().kubeconfig_path())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("helm or kubectl runs")
}

/// Runs a tool and returns its stdout, failing the test on a non-zero exit.
pub fn ok(binary: &Path, args: &[&str]) -> String {
    let out = tool(binary, args);
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}{}",
        binary.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The value sets the chart is checked with: (name, helm arguments after the required ones).
pub fn scenarios() -> Vec<(&'static str, Vec<String>)> {
    let token = format!("azp.token={PAT}");
    let set = |pairs: &[&str]| pairs.iter().flat_map(|p| ["--set".to_string(), p.to_string()]).collect::<Vec<_>>();
    let mut demands = set(&[&token, "keda.requireAllDemands=true"]);
    demands.extend(["--set-json".into(), r#"keda.demands=["kaniko","Agent.OS -equals Linux"]"#.into()]);
    vec![
        ("defaults", set(&[&token])),
        ("scaledjob-with-demands", demands),
        ("deployment", set(&[&token, "mode=Deployment"])),
        (
            "workload-identity",
            set(&["azp.existingSecret=azp-pat", "keda.auth.type=workloadIdentity", "keda.auth.identityId=0000-1111"]),
        ),
        ("existing-secret", set(&["azp.existingSecret=azp-pat", "azp.existingSecretKey=pat"])),
        (
            "aws-and-helm-namespaces",
            set(&[
                &token,
                "serviceAccount.agent.roleArn=arn:aws:iam::111111111111:role/agent",
                "serviceAccount.kaniko.roleArn=arn:aws:iam::111111111111:role/kaniko",
                "aws.region=eu-west-1",
                "aws.profiles.dev.roleArn=arn:aws:iam::222222222222:role/deployer",
                "aws.profiles.dev.region=eu-west-1",
                "registry.ecr={111111111111.dkr.ecr.eu-west-1.amazonaws.com}",
                "rbac.helmNamespaces={web,api}",
            ]),
        ),
    ]
}

/// Arguments of `helm <verb> pool <chart>` with the required values and `extra`.
pub fn chart_args<'a>(verb: &'a str, chart: &'a str, namespace: &'a str, extra: &'a [String]) -> Vec<&'a str> {
    let mut args = vec![verb, "pool", chart, "--namespace", namespace];
    args.extend(REQUIRED);
    args.extend(extra.iter().map(String::as_str));
    args
}

/// The objects `helm template` renders.
pub fn render(helm: &Path, extra: &[String]) -> Vec<Value> {
    let chart = chart();
    parse_documents(&ok(helm, &chart_args("template", &chart, "agents", extra)))
}

/// Every non-empty YAML document of a stream, as JSON.
pub fn parse_documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .expect("valid YAML")
        .into_iter()
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The objects of one kind.
pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The pod specs inside an object (Pod, workloads, Job, KEDA ScaledJob).
pub fn pod_specs(object: &Value) -> Vec<&Value> {
    let candidates = [
        &object["spec"],
        &object["spec"]["template"]["spec"],
        &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        &object["spec"]["jobTargetRef"]["template"]["spec"],
    ];
    candidates.into_iter().filter(|spec| spec["containers"].is_array()).collect()
}

/// Every container (init, regular, ephemeral) of a pod spec.
pub fn containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|key| spec[key].as_array())
        .flatten()
        .collect()
}
