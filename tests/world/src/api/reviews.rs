//! Create-only review resources answered from the authenticator and authorizer:
//! SelfSubjectAccessReview (`kubectl auth can-i`), SelfSubjectRulesReview and
//! SelfSubjectReview (`kubectl auth whoami`).

use serde_json::{Value, json};

use crate::auth::{Attributes, Decision, UserInfo};
use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};

/// Answers a POST of a review object.
pub fn answer(cluster: &Cluster, kind: &str, body: &Value, user: &UserInfo) -> ApiResult<Value> {
    let mut review = body.clone();
    if !review.is_object() {
        return Err(ApiError::bad_request(format!("a {kind} body is required")));
    }
    review["kind"] = json!(kind);
    review["metadata"]["creationTimestamp"] = Value::Null;
    review["status"] = match kind {
        "SelfSubjectAccessReview" => access(cluster, &body["spec"], user),
        "SelfSubjectRulesReview" => rules(cluster, &body["spec"], user),
        _ => json!({"userInfo": {"username": user.username, "groups": user.groups}}),
    };
    Ok(review)
}

fn access(cluster: &Cluster, spec: &Value, user: &UserInfo) -> Value {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let attrs = match (&spec["resourceAttributes"], &spec["nonResourceAttributes"]) {
        (r, _) if r.is_object() => Attributes {
            verb: s(&r["verb"]),
            group: s(&r["group"]),
            resource: s(&r["resource"]),
            subresource: s(&r["subresource"]),
            namespace: s(&r["namespace"]),
            name: s(&r["name"]),
            path: String::new(),
        },
        (_, n) => Attributes { verb: s(&n["verb"]), path: s(&n["path"]), ..Default::default() },
    };
    match cluster.auth.authorize(user, &attrs) {
        Decision::Allow => json!({"allowed": true}),
        Decision::Deny(reason) => json!({"allowed": false, "reason": reason}),
    }
}

fn rules(cluster: &Cluster, spec: &Value, user: &UserInfo) -> Value {
    let namespace = spec["namespace"].as_str().unwrap_or_default();
    if let Some(rules) = cluster.auth.rules(user, namespace) {
        let (resource, non_resource): (Vec<Value>, Vec<Value>) =
            rules.into_iter().partition(|r| r["nonResourceURLs"].is_null());
        let resource: Vec<Value> = resource
            .into_iter()
            .map(|r| {
                let mut r = r;
                if r["apiGroups"].is_null() {
                    r["apiGroups"] = json!([]);
                }
                r
            })
            .collect();
        return json!({"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": false});
    }
    let attrs = Attributes {
        verb: "*".into(),
        group: "*".into(),
        resource: "*".into(),
        namespace: spec["namespace"].as_str().unwrap_or_default().into(),
        ..Default::default()
    };
    match cluster.auth.authorize(user, &attrs) {
        Decision::Allow => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        Decision::Deny(_) => json!({"resourceRules": [], "nonResourceRules": [], "incomplete": true}),
    }
}
