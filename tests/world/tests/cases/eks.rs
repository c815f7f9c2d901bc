//! EKS authentication: tokens presigned for moto's STS are accepted for principals in the
//! access-entry table and refused (401) for other roles, for other cluster names, and once
//! expired; a short token lifetime breaks a static token while an exec plugin that mints a
//! fresh token per call keeps working.

use std::time::{Duration, SystemTime};

use azp_kube_world::World;
use azp_kube_world::eks::Keys;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use crate::support::{client, world};

/// Credentials of `role_arn`, assumed through moto's STS.
pub async fn assume(w: &World, role_arn: &str) -> (String, String, String) {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(w.region()))
        .endpoint_url(w.aws_endpoint().expect("moto"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let out = aws_sdk_sts::Client::from_conf(config)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("conformance")
        .send()
        .await
        .expect("AssumeRole");
    let c = out.credentials().expect("credentials");
    (c.access_key_id().into(), c.secret_access_key().into(), c.session_token().into())
}

/// The status code of listing pods with `token` (200 when allowed).
pub async fn list_status(w: &World, user: &str, token: &str) -> u16 {
    let path = w.kubeconfig_for(user, token).expect("kubeconfig");
    let pods: Api<Pod> = Api::default_namespaced(client(&std::fs::read_to_string(path).expect("read")).await);
    match pods.list(&Default::default()).await {
        Ok(_) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn eks_tokens_are_checked_like_eks() {
    let w = world();
    let deployer = "arn:aws:iam::222222222222:role/world-deployer";
    w.add_access_entry(deployer, "deployer:{{SessionName}}", &["system:masters"]);
    let (ak, sk, st) = assume(w, deployer).await;
    let keys = Keys { access_key: &ak, secret_key: &sk, session_token: Some(&st) };
    assert_eq!(list_status(w, "eks-deployer", &w.eks_token(&keys)).await, 200);

    let (ak2, sk2, st2) = assume(w, "arn:aws:iam::222222222222:role/stranger").await;
    let stranger = Keys { access_key: &ak2, secret_key: &sk2, session_token: Some(&st2) };
    assert_eq!(list_status(w, "eks-stranger", &w.eks_token(&stranger)).await, 401);

    let old = SystemTime::now() - Duration::from_secs(20 * 60);
    assert_eq!(list_status(w, "eks-expired", &w.eks_token_for(&keys, w.cluster_name(), old)).await, 401);
    assert_eq!(list_status(w, "eks-other", &w.eks_token_for(&keys, "another-cluster", SystemTime::now())).await, 401);
    let forged = Keys { access_key: &ak, secret_key: "not-the-secret", session_token: Some(&st) };
    assert_eq!(list_status(w, "eks-forged", &w.eks_token(&forged)).await, 401);

    // The identity EKS resolved, as the API reports it.
    let kubeconfig = w.kubeconfig_for("eks-whoami", &w.eks_token(&keys)).expect("kubeconfig");
    let out = crate::support::run_with(
        w,
        &w.tools().kubectl,
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
        &[("KUBECONFIG", kubeconfig.to_str().expect("utf-8"))],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "deployer:conformance", "{out:?}");
    w.remove_access_entry(deployer);
    assert_eq!(list_status(w, "eks-removed", &w.eks_token(&keys)).await, 401);
}

#[tokio::test]
async fn a_short_token_lifetime_fails_static_tokens_but_not_exec_refreshed_ones() {
    let w = World::start().expect("world");
    let role = "arn:aws:iam::123456789012:role/short-lived";
    w.add_access_entry(role, "short", &["system:masters"]);
    w.set_token_ttl(Duration::from_secs(3));
    let (ak, sk, st) = assume(&w, role).await;
    let keys = Keys { access_key: &ak, secret_key: &sk, session_token: Some(&st) };
    let static_token = w.eks_token(&keys);
    assert_eq!(list_status(&w, "static", &static_token).await, 200);

    let host = w.aws_endpoint().expect("moto").trim_start_matches("http://").to_string();
    let args: Vec<String> = [
        "eks-token",
        "--access-key",
        &ak,
        "--secret-key",
        &sk,
        "--session-token",
        &st,
        "--sts-host",
        &host,
        "--cluster",
        w.cluster_name(),
        "--ttl-seconds",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let exec = w
        .kubeconfig_exec("exec", std::path::Path::new(env!("CARGO_BIN_EXE_azp-kube-world")), &args)
        .expect("kubeconfig");
    let exec_client = client(&std::fs::read_to_string(&exec).expect("read")).await;
    let pods: Api<Pod> = Api::default_namespaced(exec_client);
    pods.list(&Default::default()).await.expect("exec token works");

    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(list_status(&w, "static", &static_token).await, 401, "the static token outlived its lifetime");
    pods.list(&Default::default()).await.expect("the same kube-rs client refreshed its exec token");
    let out = crate::support::run_with(
        &w,
        &w.tools().kubectl,
        &["get", "pods"],
        &[("KUBECONFIG", exec.to_str().expect("utf-8"))],
    );
    assert!(out.status.success(), "kubectl with the exec plugin: {}", String::from_utf8_lossy(&out.stderr));
}
