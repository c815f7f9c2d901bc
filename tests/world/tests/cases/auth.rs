//! HTTPS with the kubeconfig's CA for every client; unknown tokens get 401.

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use crate::support::{client, run_with, world};

#[tokio::test]
async fn every_client_uses_https_and_a_wrong_token_gets_401() {
    let w = world();
    assert!(w.api_url().starts_with("https://127.0.0.1:"));
    assert!(w.kubeconfig().contains("certificate-authority-data"));
    let intruder = w.kubeconfig_for("intruder", "not-a-token").expect("kubeconfig");
    let env = [("KUBECONFIG", intruder.to_str().expect("utf-8"))];
    for (tool, args) in
        [(&w.tools().kubectl, vec!["get", "pods"]), (&w.tools().helm4, vec!["list"]), (&w.tools().helm3, vec!["list"])]
    {
        let out = run_with(w, tool, &args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let refused = stderr.contains("Unauthorized") || stderr.contains("provide credentials");
        assert!(!out.status.success() && refused, "{}: {stderr}", tool.display());
    }
    let text = std::fs::read_to_string(&intruder).expect("read");
    let pods: Api<Pod> = Api::default_namespaced(client(&text).await);
    match pods.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let sa_token = w.service_account_token("default", "builder").expect("token");
    let sa = std::fs::read_to_string(w.kubeconfig_for("builder", &sa_token).expect("kubeconfig")).expect("read");
    let pods: Api<Pod> = Api::default_namespaced(client(&sa).await);
    // Authenticated (not 401), but RBAC grants an unbound service account nothing.
    match pods.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403, got {other:?}"),
    }
}
