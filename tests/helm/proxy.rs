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
    let outcome =
        deploy(home.path(), &cluster, &aws_url, &proxy, PROXY_PASSWORD, &[&bypass], &world().tools().helm3);
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
    assert!(message.contains("407"), "{message}");
    assert!(message.contains("proxy"), "{message}");
    assert!(proxy.refused() >= 1 && proxy.tunnels().is_empty(), "{:?}", proxy.tunnels());
    assert!(!outcome.log_text().contains(wrong));
    assert_no_private_dir(&agent_temp(home.path()));
}

#[test]
fn a_bad_proxy_url_is_named_before_any_connection() {
    let home = tempfile::tempdir().unwrap();
    let outcome = run(&task(), home.path())
        .env("AGENT_PROXYURL", "proxy.corp:3128")
        .input("clusterName", world().cluster_name())
        .input("regionName", world().region())
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .input("helmPath", &world().tools().helm4.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    let message = &outcome.errors()[0].message;
    assert!(message.starts_with("Agent.ProxyUrl \"proxy.corp:3128\" is not a proxy URL"), "{message}");
    assert!(!outcome.log_text().contains("AWS identity"), "{}", outcome.log_text());
}
