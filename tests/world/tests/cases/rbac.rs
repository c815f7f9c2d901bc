//! RBAC: a service account bound to a Role gets exactly that Role's rights — as kubectl
//! `auth can-i` reports them and as real requests find them — and everything else is
//! refused with the API server's 403 message.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::support::{client, run_with, world};

fn can_i<S: AsRef<str>>(kubeconfig: &std::path::Path, args: &[S]) -> bool {
    let w = world();
    let mut all = vec!["auth", "can-i"];
    all.extend(args.iter().map(|a| a.as_ref()));
    let out = run_with(w, &w.tools().kubectl, &all, &[("KUBECONFIG", kubeconfig.to_str().expect("utf-8"))]);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(answer == "yes" || answer == "no", "{all:?}: {answer} {}", String::from_utf8_lossy(&out.stderr));
    answer == "yes"
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => status.message,
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bound_service_account_gets_exactly_its_roles_rights() {
    let w = world();
    let ns = w.unique_namespace("rbac").expect("namespace");
    let admin = client(w.kubeconfig()).await;
    let apply = |kind: &str, body: serde_json::Value| {
        let rt = w.cluster().resource("rbac.authorization.k8s.io", kind).expect("rbac kind");
        w.cluster().create(&rt, &ns, body, false).expect("create");
    };
    apply(
        "roles",
        json!({"metadata": {"name": "reader"}, "rules": [
            {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update"], "resourceNames": ["allowed"]},
        ]}),
    );
    apply(
        "rolebindings",
        json!({"metadata": {"name": "reader"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]}),
    );
    let cm = |name: &str| -> ConfigMap { serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm") };
    let admin_cms: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    for name in ["allowed", "other"] {
        admin_cms.create(&PostParams::default(), &cm(name)).await.expect("configmap");
    }

    let token = w.service_account_token(&ns, "reader").expect("token");
    let kubeconfig = w.kubeconfig_for(&format!("reader-{ns}"), &token).expect("kubeconfig");
    let q = |args: &[&'static str]| -> Vec<String> {
        args.iter().map(|a| a.to_string()).chain(["-n".to_string(), ns.clone()]).collect()
    };
    assert!(can_i(&kubeconfig, &q(&["get", "pods"])));
    assert!(can_i(&kubeconfig, &q(&["watch", "pods"])));
    assert!(can_i(&kubeconfig, &q(&["get", "pods", "--subresource=log"])));
    assert!(can_i(&kubeconfig, &q(&["get", "configmap/allowed"])));
    assert!(!can_i(&kubeconfig, &q(&["get", "configmap/other"])));
    assert!(!can_i(&kubeconfig, &q(&["list", "configmaps"])));
    assert!(!can_i(&kubeconfig, &q(&["create", "pods"])));
    assert!(!can_i(&kubeconfig, &q(&["delete", "pods"])));
    assert!(!can_i(&kubeconfig, &q(&["get", "pods", "--subresource=exec"])));
    assert!(!can_i(&kubeconfig, &q(&["get", "secrets"])));
    assert!(!can_i(&kubeconfig, &["get", "pods", "-n", "default"]));
    assert!(!can_i(&kubeconfig, &["list", "pods", "--all-namespaces"]));
    assert!(!can_i(&kubeconfig, &["create", "namespaces"]));

    // `auth can-i --list` (SelfSubjectRulesReview) lists the Role's rules.
    let out = run_with(
        w,
        &w.tools().kubectl,
        &["auth", "can-i", "--list", "-n", &ns],
        &[("KUBECONFIG", kubeconfig.to_str().expect("utf-8"))],
    );
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("pods/log") && list.contains("[get list watch]"),
        "{list}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(list.contains("[allowed]") && !list.contains("secrets"), "{list}");
    let reader = client(&std::fs::read_to_string(&kubeconfig).expect("read")).await;
    let pods: Api<Pod> = Api::namespaced(reader.clone(), &ns);
    pods.list(&Default::default()).await.expect("list pods");
    let cms: Api<ConfigMap> = Api::namespaced(reader.clone(), &ns);
    cms.get("allowed").await.expect("the named config map");
    let message = forbidden(cms.get("other").await);
    assert_eq!(
        message,
        format!(
            "configmaps \"other\" is forbidden: User \"system:serviceaccount:{ns}:reader\" cannot get resource \
             \"configmaps\" in API group \"\" in the namespace \"{ns}\""
        )
    );
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
    )
    .expect("pod");
    let message = forbidden(pods.create(&PostParams::default(), &pod).await);
    assert_eq!(
        message,
        format!(
            "pods is forbidden: User \"system:serviceaccount:{ns}:reader\" cannot create resource \"pods\" in API \
             group \"\" in the namespace \"{ns}\""
        )
    );
    let secrets: Api<Secret> = Api::namespaced(reader.clone(), &ns);
    assert!(forbidden(secrets.list(&Default::default()).await).starts_with("secrets is forbidden"));
    let elsewhere: Api<Pod> = Api::namespaced(reader.clone(), "default");
    assert!(forbidden(elsewhere.list(&Default::default()).await).ends_with("in the namespace \"default\""));
    let all: Api<Pod> = Api::all(reader);
    assert!(forbidden(all.list(&Default::default()).await).ends_with("at the cluster scope"));

    // Another service account of the namespace has no binding at all.
    let other_token = w.service_account_token(&ns, "nobody").expect("token");
    let other_kubeconfig = w.kubeconfig_for(&format!("nobody-{ns}"), &other_token).expect("kubeconfig");
    let nobody: Api<Pod> =
        Api::namespaced(client(&std::fs::read_to_string(&other_kubeconfig).expect("read")).await, &ns);
    assert_eq!(
        forbidden(nobody.list(&Default::default()).await),
        format!(
            "pods is forbidden: User \"system:serviceaccount:{ns}:nobody\" cannot list resource \"pods\" in API \
             group \"\" in the namespace \"{ns}\""
        )
    );
    let out = run_with(
        w,
        &w.tools().kubectl,
        &["get", "pods", "-n", &ns],
        &[("KUBECONFIG", other_kubeconfig.to_str().expect("utf-8"))],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is forbidden: User"), "{out:?}");

    // A group binding (every service account of the namespace) adds rights to both.
    apply(
        "rolebindings",
        json!({"metadata": {"name": "all-sa-view"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "Group", "name": format!("system:serviceaccounts:{ns}")}]}),
    );
    nobody.list(&Default::default()).await.expect("view through the group binding");
    assert!(can_i(&other_kubeconfig, &q(&["list", "configmaps"])));
    assert!(!can_i(&other_kubeconfig, &q(&["list", "secrets"])));
}
