//! Status errors and codes as the real API returns them (404, 409 AlreadyExists and
//! Conflict, 422, 403 through the authorizer hook, 429 with Retry-After, 415), optimistic
//! concurrency, and unconditional PUT. Uses a world of its own: faults would hit others.

use std::sync::Arc;

use azp_kube_world::auth::{Attributes, Authorizer, Decision, UserInfo};
use azp_kube_world::{Options, World};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::support::client;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).expect("configmap")
}

fn status_of<T: std::fmt::Debug>(result: kube::Result<T>) -> (u16, String, String) {
    match result {
        Err(kube::Error::Api(s)) => (s.code, s.reason, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

struct DenyUser(&'static str);

impl Authorizer for DenyUser {
    fn authorize(&self, user: &UserInfo, _: &Attributes) -> Decision {
        if user.username == self.0 { Decision::Deny("denied by the test".into()) } else { Decision::Allow }
    }
}

#[tokio::test]
async fn status_errors_and_concurrency_match_the_real_api() {
    let w = World::start_with(Options { aws: false, ..Options::default() }).expect("world");
    let kube = client(w.kubeconfig()).await;
    let cms: Api<ConfigMap> = Api::namespaced(kube.clone(), "default");
    let pp = PostParams::default();

    assert_eq!(
        status_of(cms.get("missing").await),
        (404, "NotFound".into(), "configmaps \"missing\" not found".into())
    );
    let first = cms.create(&pp, &cm("a")).await.expect("create");
    assert_eq!(status_of(cms.create(&pp, &cm("a")).await).1, "AlreadyExists");
    let mut updated = first.clone();
    updated.data = Some([("k".to_string(), "w".to_string())].into());
    cms.replace("a", &pp, &updated).await.expect("update with the current resourceVersion");
    let (code, reason, _) = status_of(cms.replace("a", &pp, &updated).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    let mut unconditional = cm("a");
    unconditional.metadata.resource_version = None;
    cms.replace("a", &pp, &unconditional).await.expect("PUT without resourceVersion");

    let elsewhere: Api<ConfigMap> = Api::namespaced(kube.clone(), "nowhere");
    assert_eq!(status_of(elsewhere.create(&pp, &cm("x")).await).2, "namespaces \"nowhere\" not found");
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let empty: Pod =
        serde_json::from_value(json!({"metadata": {"name": "empty"}, "spec": {"containers": []}})).expect("pod");
    let (code, reason, message) = status_of(pods.create(&pp, &empty).await);
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (422, "Invalid", "Pod \"empty\" is invalid: spec.containers: Required value")
    );

    w.cluster().auth.set_authorizer(Arc::new(DenyUser("system:serviceaccount:default:intruder")));
    let token = w.service_account_token("default", "intruder").expect("token");
    let denied = std::fs::read_to_string(w.kubeconfig_for("intruder", &token).expect("kubeconfig")).expect("read");
    let as_intruder: Api<Pod> = Api::namespaced(client(&denied).await, "default");
    let (code, reason, message) = status_of(as_intruder.list(&Default::default()).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "pods is forbidden: User \"system:serviceaccount:default:intruder\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );

    w.cluster().throttle_next(1);
    cms.get("a").await.expect("kube-rs retries a 429 after Retry-After");
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(w.kubeconfig()).expect("kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("config");
    config.default_retry = false;
    let no_retry: Api<ConfigMap> = Api::namespaced(kube::Client::try_from(config).expect("client"), "default");
    w.cluster().throttle_next(1);
    assert_eq!(status_of(no_retry.get("a").await).1, "TooManyRequests");

    let request = http::Request::patch("/api/v1/namespaces/default/configmaps/a")
        .header("Content-Type", "text/plain")
        .body(b"x".to_vec())
        .expect("request");
    assert_eq!(status_of(kube.request_text(request).await).0, 415);
}
