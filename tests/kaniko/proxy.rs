//! KanikoBuild through the agent's proxy: the bucket and the cluster are
//! addressed by names only the world's forward proxy resolves
//! (`*.proxied.invalid`), so the upload and every Kubernetes call (the
//! WebSocket of a streamed context too) must go through it. The build pod
//! does not get the agent's proxy: it reaches the bucket over the cluster's
//! own network (see `forward_proxy::cluster_network_url`).

use std::path::PathBuf;

use azp_harness::StepResult;
use azp_kube_world::forward_proxy::proxied_url;

use crate::support::*;

const PROXY_USER: &str = "build-agent";
const PROXY_PASSWORD: &str = "pr0xy-pa55word-for-kaniko";
const MOTO: &str = "moto.proxied.invalid";
const CLUSTER: &str = "cluster.proxied.invalid";

/// The world's admin kubeconfig with the API server at its proxied name.
fn proxied_kubeconfig(dir: &std::path::Path) -> PathBuf {
    let text = world().kubeconfig().replace(world().api_url(), &proxied_url(world().api_url(), "cluster"));
    let path = dir.join("proxied.kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_s3_build_reaches_the_bucket_and_the_cluster_through_the_proxy_only() {
    let namespace = world().unique_namespace("proxied").unwrap();
    let bucket = bucket("proxied");
    let repo = repository();
    let task = task();
    let image = kaniko_image("proxied", kaniko_success());
    let proxy = world().forward_proxy(Some((PROXY_USER, PROXY_PASSWORD))).unwrap();
    let kubeconfig = proxied_kubeconfig(repo.path());
    let recorder = world().record(&namespace);
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("kubeconfig", &kubeconfig.display().to_string())
        .input("contextTransport", "S3 presigned URL")
        .input("bucket", &bucket)
        .input("s3Endpoint", &proxied_url(&world().aws_https_endpoint().unwrap(), "moto"))
        .env("SSL_CERT_FILE", &world().ca_file().display().to_string())
        .agent_proxy(&proxy.url(), Some((PROXY_USER, PROXY_PASSWORD)), &[])
        .run();
    let events = recorder.finish();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));
    let tunnels = proxy.tunnels();
    eprintln!("tunnels through the proxy: {tunnels:?}");
    assert!(proxy.tunnels_to(MOTO) >= 1, "the upload: {tunnels:?}");
    assert!(proxy.tunnels_to(CLUSTER) >= 1, "the pod's creation and watch: {tunnels:?}");
    assert_eq!(tunnels.keys().collect::<Vec<_>>(), [CLUSTER, MOTO], "nothing else went through it");
    let pods: Vec<String> = events.of("pods").map(|event| event.object.to_string()).collect();
    assert!(!pods.is_empty(), "the pod was seen");
    for pod in &pods {
        assert!(!pod.to_ascii_uppercase().contains("PROXY"), "the pod gets no proxy setting: {pod}");
        assert!(!pod.contains(PROXY_PASSWORD));
    }
    assert!(outcome.secrets.iter().any(|s| s == PROXY_PASSWORD), "the password is registered as a secret");
    assert!(!outcome.log_text().contains(PROXY_PASSWORD));
    assert!(pods_in(&namespace).is_empty(), "no pod remains");
    assert_eq!(leftovers(&bucket), (vec![], 0), "no object remains");
}

#[test]
fn a_streamed_context_goes_through_the_proxy_and_the_bypass_list_is_honoured() {
    let namespace = world().unique_namespace("proxied-stream").unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image("proxied-stream", kaniko_success());
    let proxy = world().forward_proxy(None).unwrap();
    let kubeconfig = proxied_kubeconfig(repo.path());
    // A bypass entry for another cluster, by a pattern that does not match this one.
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("kubeconfig", &kubeconfig.display().to_string())
        .input("contextTransport", "Stream")
        .agent_proxy(&proxy.url(), None, &["other-cluster\\.corp$"])
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(proxy.tunnels_to(CLUSTER) >= 2, "the API calls and the attach WebSocket: {:?}", proxy.tunnels());

    // The same build with the cluster in the bypass list: straight to 127.0.0.1, nothing through the proxy.
    let before = proxy.tunnels();
    let bypass = format!("^https://127\\.0\\.0\\.1:{}$", world().api_url().rsplit(':').next().unwrap());
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("contextTransport", "Stream")
        .agent_proxy(&proxy.url(), None, &[&bypass])
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(proxy.tunnels(), before, "the bypassed cluster was reached directly");
}
