//! The task against a world as strict as the real thing (issue 13): builds through the
//! chart's own Role under both WebSocket attach rules (Kubernetes 1.34 asks `get`, 1.35
//! also `create`), and a refused attach that ends the build at once.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use azp_harness::{Outcome, StepResult};
use azp_kube_world::{Options, ServerVersion, World};
use serde_json::Value;

use crate::support::*;

/// The kaniko image the task uses by default: the world builds for real.
const KANIKO: &str = "ghcr.io/osscontainertools/kaniko:v1.28.3";

/// A world that reports Kubernetes 1.35 (the shared one reports 1.34).
fn world_1_35() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        World::start_with(Options { kubernetes: ServerVersion::V1_35, ..Options::default() })
            .unwrap_or_else(|e| panic!("failed to start a 1.35 world: {e}"))
    })
}

/// The build Role and RoleBinding of deploy/chart, rendered by helm for release `pool`
/// in `agents` with the build namespace `build`, as JSON objects.
fn chart_build_rbac(agents: &str, build: &str) -> Vec<Value> {
    let chart = azp_harness::repo_root().join("deploy/chart");
    let out = std::process::Command::new(&world().tools().helm4)
        .args(["template", "pool", &chart.display().to_string(), "--namespace", agents])
        .args(["--set", &format!("rbac.buildNamespace={build}")])
        .args(["--set", "azp.url=https://dev.azure.com/contoso", "--set", "azp.pool=k8s-agents"])
        .args(["--set", "azp.token=unused", "--show-only", "templates/rbac.yaml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "helm template: {}", String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8(out.stdout).unwrap();
    let objects: Vec<Value> = serde_saphyr::from_multiple::<Value>(&yaml)
        .unwrap()
        .into_iter()
        .filter(|v: &Value| !v.is_null())
        .filter(|v: &Value| v["metadata"]["name"] == "pool-azure-agent-build")
        .collect();
    assert_eq!(objects.len(), 2, "the chart renders the build Role and its binding: {yaml}");
    objects
}

/// Applies `objects` as admin.
fn apply(world: &World, objects: &[Value]) {
    let documents: Vec<String> = objects.iter().map(Value::to_string).collect();
    let mut kubectl = std::process::Command::new(&world.tools().kubectl)
        .args(["--kubeconfig", &world.kubeconfig_path().display().to_string(), "apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(kubectl.stdin.as_mut().unwrap(), documents.join("\n---\n").as_bytes()).unwrap();
    drop(kubectl.stdin.take());
    let out = kubectl.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
}

/// A namespace where the agent's service account holds the chart's build Role, changed by
/// `edit`, and the kaniko pods' service account may assume an IAM role (IRSA); returns
/// the build namespace and the kubeconfig of the agent (whose own namespace is another).
fn agent_namespace(world: &World, prefix: &str, edit: impl FnOnce(&mut Value)) -> (String, PathBuf) {
    let namespace = world.unique_namespace(prefix).unwrap();
    let agents = world.unique_namespace(&format!("{prefix}-agents")).unwrap();
    let mut objects = chart_build_rbac(&agents, &namespace);
    let role = objects.iter_mut().find(|o| o["kind"] == "Role").unwrap();
    edit(role);
    objects.push(serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "azure-agent-kaniko", "namespace": namespace,
                     "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/kaniko"}}}));
    apply(world, &objects);
    let token = world.service_account_token(&agents, "azure-agent").unwrap();
    let kubeconfig = world.kubeconfig_for(&format!("agent-{namespace}"), &token).unwrap();
    (namespace, kubeconfig)
}

/// The chart Role's rule for `resource`.
fn rule<'a>(role: &'a mut Value, resource: &str) -> &'a mut Value {
    role["rules"].as_array_mut().unwrap().iter_mut().find(|r| r["resources"][0] == resource).unwrap()
}

/// An S3 client of `world`'s moto in `region`.
fn s3_in(world: &World, region: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .endpoint_url(world.aws_endpoint().unwrap())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A new bucket in `region` of `world`.
fn bucket_in(world: &World, name: &str, region: &str) -> String {
    let bucket = bucket_name(name);
    let s3 = s3_in(world, region);
    runtime().block_on(async {
        let mut create = s3.create_bucket().bucket(&bucket);
        if region != "us-east-1" {
            let location = aws_sdk_s3::types::BucketLocationConstraint::from(region);
            let config = aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(location).build();
            create = create.create_bucket_configuration(config);
        }
        create.send().await.unwrap();
    });
    bucket
}

/// What is left in a bucket of `world`.
fn keys_in(world: &World, bucket: &str, region: &str) -> Vec<String> {
    let s3 = s3_in(world, region);
    runtime().block_on(async {
        let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
        listed.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
    })
}

/// A build with the agent's identity against `world`, over `transport` (S3 transports
/// use a new bucket in `region`; the agent's own region is the world's, us-east-1).
fn build_as_agent(world: &World, namespace: &str, kubeconfig: &Path, transport: Transport) -> Outcome {
    let repo = repository();
    let task = task();
    let repository = format!("{}/{namespace}", world.registry());
    let mut run = azp_harness::TaskRun::new(task.path())
        .sources(repo.path())
        .timeout(Duration::from_secs(90))
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &kubeconfig.display().to_string())
        .input("namespace", namespace)
        .input("kanikoImage", KANIKO)
        .input("destinations", &format!("{repository}:1"))
        .input("cache", "false")
        .input("timeoutMinutes", "2")
        .envs(world.env().into_iter().filter(|(k, _)| k != "KUBECONFIG"));
    let mut bucket = None;
    run = match transport {
        Transport::Stream => run.input("contextTransport", "Stream"),
        Transport::S3 { region } => {
            let name = bucket_in(world, namespace, region);
            bucket = Some((name.clone(), region));
            run.input("contextTransport", "S3")
                .input("bucket", &name)
                .input("s3Endpoint", &world.aws_endpoint().unwrap())
        }
        Transport::PresignedHttps => {
            let name = bucket_in(world, namespace, "us-east-1");
            bucket = Some((name.clone(), "us-east-1"));
            run.input("contextTransport", "S3 presigned URL")
                .input("bucket", &name)
                .input("s3Endpoint", &world.aws_https_endpoint().unwrap())
                // The agent trusts the world's CA as it would a private CA of its host.
                .env("SSL_CERT_FILE", &world.ca_file().display().to_string())
        }
    };
    let outcome = run.run();
    let left = pods_with(world, namespace);
    assert!(left.is_empty(), "pods left behind: {left:?}\n{}", outcome.log_text());
    if let Some((bucket, region)) = bucket {
        assert_eq!(keys_in(world, &bucket, region), Vec::<String>::new(), "the context is deleted after the build");
    }
    outcome
}

/// How the context reaches the pod.
#[derive(Clone, Copy)]
enum Transport {
    Stream,
    /// `s3://`, from a bucket in `region`.
    S3 {
        region: &'static str,
    },
    /// A presigned URL from moto behind TLS.
    PresignedHttps,
}

/// Pods in `namespace` of `world`, through kubectl as admin.
fn pods_with(world: &World, namespace: &str) -> String {
    let out = std::process::Command::new(&world.tools().kubectl)
        .args(["--kubeconfig", &world.kubeconfig_path().display().to_string(), "get", "pods", "-n", namespace])
        .args(["-o", "name"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn assert_built(world: &World, outcome: &Outcome, namespace: &str) {
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let digest = outcome.output("imageDigest").unwrap();
    assert_eq!(world.registry_digest(namespace, "1").as_deref(), Some(digest));
}

/// The build's one error, which must come at once and name the transport and the
/// permission the agent lacks.
fn assert_refused_attach(outcome: &Outcome, took: Duration, missing_verb: &str) {
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert!(took < Duration::from_secs(45), "a refused attach ends the build at once, not at the deadline ({took:?})");
    let errors = outcome.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = &errors[0].message;
    for needle in ["contextTransport", "Stream", "pods/attach", "403", missing_verb] {
        assert!(message.contains(needle), "the error names {needle:?}: {message}");
    }
}

/// Both attach authorization rules: the shared world reports 1.34, the other 1.35.
fn both_worlds() -> [(&'static str, &'static World); 2] {
    [("134", world()), ("135", world_1_35())]
}

/// A build over `transport` through the chart's own Role, in both worlds.
fn builds_through_the_chart_s_role(prefix: &str, transport: Transport) {
    for (version, world) in both_worlds() {
        let (namespace, kubeconfig) = agent_namespace(world, &format!("{prefix}-{version}"), |_| {});
        let outcome = build_as_agent(world, &namespace, &kubeconfig, transport);
        assert_built(world, &outcome, &namespace);
    }
}

#[test]
fn stream_builds_pass_through_the_chart_s_role_under_both_attach_rules() {
    builds_through_the_chart_s_role("gt-stream", Transport::Stream);
}

#[test]
fn s3_builds_from_a_bucket_in_another_region_pass_through_the_chart_s_role() {
    // The agent runs in us-east-1 and is given no region: the pod must read eu-west-1.
    builds_through_the_chart_s_role("gt-s3", Transport::S3 { region: "eu-west-1" });
}

#[test]
fn presigned_builds_over_https_pass_through_the_chart_s_role() {
    builds_through_the_chart_s_role("gt-presigned", Transport::PresignedHttps);
}

#[test]
fn attach_with_get_alone_is_enough_on_1_34_and_refused_on_1_35() {
    let get_only = |role: &mut Value| rule(role, "pods/attach")["verbs"] = serde_json::json!(["get"]);
    let (namespace, kubeconfig) = agent_namespace(world(), "gt-get-134", get_only);
    let outcome = build_as_agent(world(), &namespace, &kubeconfig, Transport::Stream);
    assert_built(world(), &outcome, &namespace);

    let world = world_1_35();
    let (namespace, kubeconfig) = agent_namespace(world, "gt-get-135", get_only);
    let started = Instant::now();
    let outcome = build_as_agent(world, &namespace, &kubeconfig, Transport::Stream);
    assert_refused_attach(&outcome, started.elapsed(), "create");
}

#[test]
fn a_refused_attach_fails_the_build_at_once_and_deletes_the_pod() {
    let no_attach = |role: &mut Value| {
        role["rules"].as_array_mut().unwrap().retain(|r| r["resources"][0] != "pods/attach");
    };
    let (namespace, kubeconfig) = agent_namespace(world(), "gt-no-attach", no_attach);
    let started = Instant::now();
    let outcome = build_as_agent(world(), &namespace, &kubeconfig, Transport::Stream);
    assert_refused_attach(&outcome, started.elapsed(), "get");
}

#[test]
fn a_presigned_url_over_plain_http_is_refused_before_anything_runs() {
    let namespace = world().unique_namespace("gt-http-presigned").unwrap();
    let bucket = bucket("gt-http-presigned");
    let repo = repository();
    let task = task();
    let endpoint = world().aws_endpoint().unwrap();
    // Given as s3Endpoint, or taken from the agent's AWS_ENDPOINT_URL (the world's env).
    for given in [true, false] {
        let mut run = run(&task, repo.path(), &namespace, KANIKO)
            .input("contextTransport", "S3 presigned URL")
            .input("bucket", &bucket);
        if given {
            run = run.input("s3Endpoint", &endpoint);
        }
        let outcome = run.run();
        assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
        let errors = outcome.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        for needle in ["s3Endpoint", &endpoint, "https://"] {
            assert!(errors[0].message.contains(needle), "the error names {needle:?}: {}", errors[0].message);
        }
        assert!(!outcome.log_text().contains("Started pod"), "no pod was started:\n{}", outcome.log_text());
    }
    assert_eq!(leftovers(&bucket), (vec![], 0), "nothing was uploaded");
    assert!(pods_in(&namespace).is_empty());
}

/// Without `get pods/log` the build runs and reports its result; the lost log is said once,
/// with the permission to grant.
#[test]
fn a_build_without_the_log_permission_says_so_once_and_still_reports() {
    let no_log = |role: &mut Value| {
        role["rules"].as_array_mut().unwrap().retain(|r| r["resources"][0] != "pods/log");
    };
    let (namespace, kubeconfig) = agent_namespace(world(), "gt-no-log", no_log);
    let outcome = build_as_agent(world(), &namespace, &kubeconfig, Transport::S3 { region: "us-east-1" });
    assert_built(world(), &outcome, &namespace);
    let lost: Vec<_> = outcome.warnings().into_iter().filter(|w| w.message.contains("build log")).collect();
    assert_eq!(lost.len(), 1, "{lost:?}\n{}", outcome.log_text());
    for needle in ["get pods/log", &namespace, "403"] {
        assert!(lost[0].message.contains(needle), "the warning names {needle:?}: {}", lost[0].message);
    }
}
