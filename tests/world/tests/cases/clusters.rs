//! Several clusters in several accounts: each is an API server of its own, and moto's EKS
//! describes each (in its own account and region) with that server's endpoint and CA.

use std::time::SystemTime;

use azp_kube_world::World;
use azp_kube_world::clusters::ClusterSpec;
use azp_kube_world::eks::Keys;
use base64::Engine as _;

use crate::cases::eks::assume;
use crate::support::{run_with, world};

/// `aws eks describe-cluster` as the role, in `region`.
fn describe(w: &World, keys: &(String, String, String), name: &str, region: &str) -> serde_json::Value {
    let (ak, sk, st) = keys;
    let extra = [
        ("AWS_ACCESS_KEY_ID", ak.as_str()),
        ("AWS_SECRET_ACCESS_KEY", sk.as_str()),
        ("AWS_SESSION_TOKEN", st.as_str()),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
    ];
    let out = run_with(w, &w.tools().aws, &["eks", "describe-cluster", "--name", name, "--output", "json"], &extra);
    assert!(out.status.success(), "describe {name} in {region}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn kubectl(w: &World, kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    run_with(w, &w.tools().kubectl, args, &[("KUBECONFIG", kubeconfig.to_str().expect("utf-8"))])
}

#[tokio::test]
async fn clusters_of_the_same_name_in_two_accounts_are_two_servers() {
    let w = world();
    let (role_a, role_b) = ("arn:aws:iam::333333333333:role/deployer", "arn:aws:iam::444444444444:role/deployer");
    let spec = |region: &str, role: &str| ClusterSpec {
        name: "prod".into(),
        region: region.into(),
        account_role: Some(role.into()),
    };
    let a = w.add_cluster(spec("eu-west-1", role_a)).expect("cluster a");
    let b = w.add_cluster(spec("us-east-2", role_b)).expect("cluster b");
    assert_ne!(a.api_url(), b.api_url());
    assert_ne!(a.ca_pem(), b.ca_pem());
    assert_eq!((a.account(), b.account()), ("333333333333", "444444444444"));

    // Each account's DescribeCluster leads to its own server and CA.
    let keys_a = assume(w, role_a).await;
    let keys_b = assume(w, role_b).await;
    for (cluster, keys) in [(&a, &keys_a), (&b, &keys_b)] {
        let described = describe(w, keys, "prod", cluster.region());
        assert_eq!(described["cluster"]["endpoint"], cluster.api_url());
        let ca = described["cluster"]["certificateAuthority"]["data"].as_str().expect("CA data");
        let ca = base64::engine::general_purpose::STANDARD.decode(ca).expect("base64");
        assert_eq!(String::from_utf8(ca).expect("PEM"), cluster.ca_pem());
    }
    // The world's own cluster is still the world's.
    let own =
        run_with(w, &w.tools().aws, &["eks", "describe-cluster", "--name", w.cluster_name(), "--output", "json"], &[]);
    let own: serde_json::Value = serde_json::from_slice(&own.stdout).expect("JSON");
    assert_eq!(own["cluster"]["endpoint"], w.api_url());

    // Objects stay in their cluster.
    let created = kubectl(w, a.kubeconfig_path(), &["create", "namespace", "only-in-a"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let elsewhere = kubectl(w, b.kubeconfig_path(), &["get", "namespace", "only-in-a"]);
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("NotFound"), "{elsewhere:?}");

    // Access entries are per cluster: a token for `prod` gets into a, not into b.
    a.add_access_entry(role_a, "deployer", &["system:masters"]);
    let keys = Keys { access_key: &keys_a.0, secret_key: &keys_a.1, session_token: Some(&keys_a.2) };
    let token = w.eks_token_for(&keys, "prod", SystemTime::now());
    let with_token = |cluster: &azp_kube_world::clusters::ExtraCluster| {
        let server = format!("--server={}", cluster.api_url());
        let ca = w.dir().join(format!("ca-{}.pem", cluster.account()));
        std::fs::write(&ca, cluster.ca_pem()).expect("write CA");
        let ca = format!("--certificate-authority={}", ca.display());
        let token = format!("--token={token}");
        let out = kubectl(w, std::path::Path::new("/dev/null"), &[&server, &ca, &token, "get", "namespaces"]);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, stderr) = with_token(&a);
    assert!(ok, "{stderr}");
    let (ok, stderr) = with_token(&b);
    assert!(!ok && stderr.contains("Unauthorized"), "{stderr}");
}
