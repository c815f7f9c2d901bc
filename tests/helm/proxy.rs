//! MulticlusterHelm through the agent's proxy: the world's AWS and an EKS
//! cluster are addressed by names only the world's forward proxy resolves
//! (`*.proxied.invalid`), so a connection that ignores the proxy cannot
//! succeed; the proxy counts the tunnels per host. A host in the bypass list
//! is reached directly, and a wrong proxy password fails with a clear error.

use std::sync::Arc;

use azp_kube_world::clusters::{ClusterSpec, ExtraCluster};
use azp_kube_world::forward_proxy::{ForwardProxy, proxied_url};

use super::*;

const PROXY_USER: &str = "build-agent";
const PROXY_PASSWORD: &str = "pr0xy-pa55word-for-helm";
const DEPLOYER: &str = "arn:aws:iam::123456789012:role/proxied-deployer";
const MOTO: &str = "moto.proxied.invalid";
const CLUSTER: &str = "cluster.proxied.invalid";

/// An EKS cluster of the world's account whose endpoint only the proxy
/// reaches, letting [`DEPLOYER`] in; its tokens may be presigned for `sts_host`.
fn cluster_behind_the_proxy(name: &str, sts_host: &str) -> Arc<ExtraCluster> {
    let spec = ClusterSpec { name: name.into(), region: world().region().into(), account_role: None };
    let cluster = world().add_cluster_behind_proxy(spec, "cluster").unwrap();
    cluster.add_access_entry(DEPLOYER, "deployer", &["system:masters"]);
    cluster.trust_sts_host(sts_host);
    cluster
}

/// moto over HTTPS: `(URL, host:port)`, by its proxied name or directly.
fn moto(proxied: bool) -> (String, String) {
    let direct = world().aws_https_endpoint().unwrap();
    let url = if proxied { proxied_url(&direct, "moto") } else { direct };
    let host = url.trim_start_matches("https://").to_string();
    (url, host)
}

/// A deploy of the test chart to `cluster` with AWS at `aws_url`, through the agent's `proxy`.
fn deploy(
    home: &Path,
    cluster: &ExtraCluster,
    aws_url: &str,
    proxy: &ForwardProxy,
    password: &str,
    bypass: &[&str],
    helm: &Path,
) -> azp_harness::Outcome {
    run(&task(), home)
        .env("AWS_ENDPOINT_URL", aws_url)
        .env("AWS_ENDPOINT_URL_STS", aws_url)
        .env("SSL_CERT_FILE", &world().ca_file().display().to_string())
        .agent_proxy(&proxy.url(), Some((PROXY_USER, password)), bypass)
        .input("clusterName", cluster.name())
        .input("regionName", cluster.region())
        .input("assumeRoleArn", DEPLOYER)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .input("namespace", "web")
        .input("overrideValues", "hook=false")
        .input("helmPath", &helm.display().to_string())
        .run()
}

#[test]
fn aws_and_the_cluster_are_reached_through_the_proxy_only() {
    let (aws_url, sts_host) = moto(true);
    let cluster = cluster_behind_the_proxy("proxied-all", &sts_host);
    let proxy = world().forward_proxy(Some((PROXY_USER, PROXY_PASSWORD))).unwrap();
    let home = tempfile::tempdir().unwrap();
    let outcome = deploy(home.path(), &cluster, &aws_url, &proxy, PROXY_PASSWORD, &[], &world().tools().helm4);
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
    let shown = format!("Agent proxy: {}, with the agent's proxy credentials", proxy.url());
    assert!(outcome.log_text().contains(&shown), "{}", outcome.log_text());
    let tunnels = proxy.tunnels();
    eprintln!("tunnels through the proxy: {tunnels:?}");
    // STS (AssumeRole, GetCallerIdentity) and EKS (DescribeCluster) from the task.
    assert!(proxy.tunnels_to(MOTO) >= 1, "{tunnels:?}");
    // The task's preflight, then helm's own connections.
    assert!(proxy.tunnels_to(CLUSTER) >= 2, "{tunnels:?}");
    assert_eq!(tunnels.keys().collect::<Vec<_>>(), [CLUSTER, MOTO], "nothing else went through it");
    assert!(outcome.secrets.iter().any(|s| s == PROXY_PASSWORD), "the password is registered as a secret");
    assert!(!outcome.log_text().contains(PROXY_PASSWORD));
    assert_no_private_dir(&agent_temp(home.path()));
}

#[test]
fn a_host_in_the_bypass_list_is_reached_directly() {
    let (aws_url, sts_host) = moto(false);
    let cluster = cluster_behind_the_proxy("proxied-bypass", &sts_host);
    let proxy = world().forward_proxy(Some((PROXY_USER, PROXY_PASSWORD))).unwrap();
    let home = tempfile::tempdir().unwrap();
    // As a user writes it in the agent's .proxybypass file: one regular expression a line.
    let bypass = format!("^https://127\\.0\\.0\\.1:{}$", sts_host.rsplit(':').next().unwrap());
    let outcome = deploy(home.path(), &cluster, &aws_url, &proxy, PROXY_PASSWORD, &[&bypass], &world().tools().helm3);
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let tunnels = proxy.tunnels();
    eprintln!("tunnels through the proxy: {tunnels:?}");
    assert_eq!(proxy.tunnels_to("127.0.0.1"), 0, "AWS was reached around the proxy: {tunnels:?}");
    assert!(proxy.tunnels_to(CLUSTER) >= 2, "the cluster was not: {tunnels:?}");
}

#[test]
fn a_wrong_proxy_password_fails_with_the_proxys_refusal() {
    let (aws_url, sts_host) = moto(true);
    let cluster = cluster_behind_the_proxy("proxied-refused", &sts_host);
    let proxy = world().forward_proxy(Some((PROXY_USER, PROXY_PASSWORD))).unwrap();
    let home = tempfile::tempdir().unwrap();
    let wrong = "not-the-pr0xy-password";
    let outcome = deploy(home.path(), &cluster, &aws_url, &proxy, wrong, &[], &world().tools().helm4);
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    let message = &outcome.errors()[0].message;
    assert!(message.starts_with("the agent's proxy refused the connection"), "{message}");
    assert!(message.contains("407") && message.contains("Agent.ProxyPassword"), "{message}");
    assert!(proxy.refused() >= 1 && proxy.tunnels().is_empty(), "{:?}", proxy.tunnels());
    assert!(!outcome.log_text().contains(wrong));
    assert_no_private_dir(&agent_temp(home.path()));
}

#[test]
fn a_bad_proxy_url_is_named_before_any_connection() {
    let home = tempfile::tempdir().unwrap();
    let outcome = run(&task(), home.path())
        .with_chart_from_world()
        .input("releaseName", "web")
        .env("AGENT_PROXYURL", "proxy.corp:3128")
        .run();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    let message = &outcome.errors()[0].message;
    assert!(message.starts_with("Agent.ProxyUrl \"proxy.corp:3128\" is not a proxy URL"), "{message}");
    assert!(!outcome.log.iter().any(|l| l.starts_with("##[command]")), "helm never ran: {}", outcome.log_text());
}

/// The exec entry's own AssumeRole (when its cached session is gone, as an
/// hour into a long wait) takes the proxy the task handed over in the
/// private folder: without the handover the proxied STS cannot be reached.
#[test]
fn the_exec_entrys_assume_role_goes_through_the_handed_over_proxy() {
    use azp_kube::aws::credentials::Cache;
    use azp_kube::azp::proxy::{Handover, ProxySettings};
    let (aws_url, _) = moto(true);
    let proxy = world().forward_proxy(Some((PROXY_USER, PROXY_PASSWORD))).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut env: Vec<(String, String)> =
        moto_env().into_iter().filter(|(k, _)| !k.starts_with("AWS_ENDPOINT")).collect();
    env.push(("AWS_ENDPOINT_URL".into(), aws_url.clone()));
    env.push(("SSL_CERT_FILE".into(), world().ca_file().display().to_string()));
    let dir = cache.path().display().to_string();
    let eks_token = |env: &[(String, String)]| {
        Command::new(binary())
            .args(["eks-token", "--cluster", "world", "--region", "us-east-1", "--role-arn", ROLE])
            .args(["--cache-dir", &dir])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    };
    let alone = eks_token(&env);
    assert!(!alone.status.success(), "STS by its proxied name, without the proxy");
    assert!(String::from_utf8_lossy(&alone.stderr).contains("dns error"), "{}", String::from_utf8_lossy(&alone.stderr));
    assert_eq!(proxy.tunnels_to(MOTO), 0);

    let handover = Handover {
        url: proxy.url(),
        username: Some(PROXY_USER.into()),
        password: Some(PROXY_PASSWORD.into()),
        bypass_list: Vec::new(),
    };
    let settings = ProxySettings::from_handover(&handover).unwrap();
    Cache::new(cache.path()).hand_over_proxy(&settings.handover()).unwrap();
    let handed = eks_token(&env);
    assert!(handed.status.success(), "{}", String::from_utf8_lossy(&handed.stderr));
    let credential: serde_json::Value = serde_json::from_slice(&handed.stdout).unwrap();
    let (_, query) = token_query(credential["status"]["token"].as_str().unwrap());
    assert!(query["X-Amz-Credential"].starts_with("ASIA"), "assumed-role keys");
    assert!(proxy.tunnels_to(MOTO) >= 1, "{:?}", proxy.tunnels());
}

/// An OIDC connection behind the proxy: the ID token request to Azure DevOps
/// goes through it (the world's Azure DevOps and its STS gate speak plain
/// HTTP on loopback: the gate, which the SDK would send a plain-HTTP proxy
/// request the world's proxy does not serve, is in the bypass list).
#[test]
fn the_id_token_request_of_an_oidc_connection_goes_through_the_proxy() {
    use azp_kube_world::federation::FederatedJob;
    cross_account_cluster();
    world().add_access_entry(ALLOWED_ROLE, "deployer", &["system:masters"]);
    let job = FederatedJob::new(
        world(),
        "aws-oidc-proxied",
        "arn:aws:iam::111111111111:role/azure-pipelines",
        "aws-oidc-proxied",
    )
    .unwrap();
    let job_token = job.devops.job_token(Duration::from_secs(600));
    let devops = job.devops.oidc_request_uri();
    let devops = devops.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let gate = job.sts.url();
    let proxy = world().forward_proxy(None).unwrap();
    let home = tempfile::tempdir().unwrap();
    let temp = agent_temp(home.path());
    std::fs::create_dir_all(&temp).unwrap();
    let outcome = TaskRun::new(task().path())
        .timeout(Duration::from_secs(180))
        .env("HOME", &home.path().display().to_string())
        .env("AGENT_TEMPDIRECTORY", &temp.display().to_string())
        .envs(job.task_env(world(), &job_token))
        .agent_proxy(&proxy.url(), None, &[&format!("^{}$", gate.replace('.', "\\."))])
        .input("awsCredentials", &job.connection_id)
        .input("clusterName", world().cluster_name())
        .input("regionName", world().region())
        .input("assumeRoleArn", ALLOWED_ROLE)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "oidc-proxied")
        .input("namespace", "oidc-proxied")
        .input("overrideValues", "hook=false")
        .input("helmPath", &world().tools().helm4.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(job.devops.issued() >= 1);
    assert!(proxy.tunnels_to_address(&devops) >= 1, "the ID token request: {:?}", proxy.tunnels());
    let gate_address = gate.trim_start_matches("http://");
    assert_eq!(proxy.tunnels_to_address(gate_address), 0, "the bypassed STS gate was reached directly");
}

/// `targets`: each target's AWS calls, preflight and helm go through the
/// proxy (each target has a private folder and exec entry of its own).
#[test]
fn every_target_of_a_fan_out_goes_through_the_proxy() {
    let (aws_url, sts_host) = moto(true);
    let clusters =
        [cluster_behind_the_proxy("proxied-fan-a", &sts_host), cluster_behind_the_proxy("proxied-fan-b", &sts_host)];
    let proxy = world().forward_proxy(Some((PROXY_USER, PROXY_PASSWORD))).unwrap();
    let targets: String = clusters
        .iter()
        .map(|c| {
            format!(
                "- name: {}\n  clusterName: {}\n  region: {}\n  assumeRoleArn: {DEPLOYER}\n",
                c.name().replace('-', "_"),
                c.name(),
                c.region()
            )
        })
        .collect();
    let home = tempfile::tempdir().unwrap();
    let outcome = run(&task(), home.path())
        .timeout(Duration::from_secs(240))
        .env("AWS_ENDPOINT_URL", &aws_url)
        .env("AWS_ENDPOINT_URL_STS", &aws_url)
        .env("SSL_CERT_FILE", &world().ca_file().display().to_string())
        .agent_proxy(&proxy.url(), Some((PROXY_USER, PROXY_PASSWORD)), &[])
        .input("targets", &targets)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .input("namespace", "web")
        .input("overrideValues", "hook=false")
        .input("waitForExecution", "false")
        .input("helmPath", &world().tools().helm4.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    for cluster in &clusters {
        let address = proxied_url(cluster.api_url(), "cluster").trim_start_matches("https://").to_string();
        assert!(proxy.tunnels_to_address(&address) >= 2, "{}: {:?}", cluster.name(), proxy.tunnels());
    }
    assert!(proxy.tunnels_to(MOTO) >= 2, "{:?}", proxy.tunnels());
}
