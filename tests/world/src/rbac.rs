//! RBAC: an [`Authorizer`] over the stored Roles, ClusterRoles, RoleBindings and
//! ClusterRoleBindings, as the API server's RBAC authorizer decides (verbs, API groups,
//! resources and `resource/subresource`, resourceNames, namespaced vs cluster scope; User,
//! Group and ServiceAccount subjects). Members of `system:masters` bypass it. Like a real
//! cluster, every authenticated user may read discovery and the health/version paths and
//! ask about itself (SelfSubject*Review), and the bootstrap ClusterRoles `cluster-admin`,
//! `admin`, `edit` and `view` exist implicitly when not stored.

use std::sync::{Arc, Weak};

use serde_json::{Value, json};

use crate::auth::{Attributes, Authorizer, Decision, UserInfo};
use crate::cluster::Cluster;

/// The group that bypasses authorization.
pub const MASTERS: &str = "system:masters";

/// The RBAC authorizer of one cluster.
pub struct Rbac {
    cluster: Weak<Cluster>,
}

impl Rbac {
    /// An authorizer reading `cluster`'s stored RBAC objects.
    pub fn new(cluster: &Arc<Cluster>) -> Self {
        Self { cluster: Arc::downgrade(cluster) }
    }

    fn stored(&self, cluster: &Cluster, group: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
        match cluster.resource(group, plural) {
            Ok(rt) => cluster.store.list(&rt, ns).0,
            Err(_) => Vec::new(),
        }
    }

    fn cluster_role(&self, cluster: &Cluster, name: &str) -> Option<Value> {
        let rt = cluster.resource("rbac.authorization.k8s.io", "clusterroles").ok()?;
        cluster.store.get(&rt, "", name).ok().or_else(|| bootstrap_role(name))
    }

    fn role(&self, cluster: &Cluster, ns: &str, name: &str) -> Option<Value> {
        let rt = cluster.resource("rbac.authorization.k8s.io", "roles").ok()?;
        cluster.store.get(&rt, ns, name).ok()
    }

    /// The rules that apply to `user` in `namespace` (cluster-wide rules only when empty).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<Value> {
        let Some(cluster) = self.cluster.upgrade() else { return Vec::new() };
        let mut rules = Vec::new();
        for binding in self.stored(&cluster, "rbac.authorization.k8s.io", "clusterrolebindings", None) {
            if binds(&binding, user, "") && binding["roleRef"]["kind"] == "ClusterRole" {
                let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
                if let Some(role) = self.cluster_role(&cluster, name) {
                    rules.extend(role["rules"].as_array().cloned().unwrap_or_default());
                }
            }
        }
        if !namespace.is_empty() {
            for binding in self.stored(&cluster, "rbac.authorization.k8s.io", "rolebindings", Some(namespace)) {
                if !binds(&binding, user, namespace) {
                    continue;
                }
                let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
                let role = match binding["roleRef"]["kind"].as_str() {
                    Some("ClusterRole") => self.cluster_role(&cluster, name),
                    _ => self.role(&cluster, namespace, name),
                };
                if let Some(role) = role {
                    rules.extend(role["rules"].as_array().cloned().unwrap_or_default());
                }
            }
        }
        rules
    }
}

impl Authorizer for Rbac {
    fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        if user.groups.iter().any(|g| g == MASTERS) {
            return Decision::Allow;
        }
        if attrs.resource.is_empty() {
            if attrs.verb == "get" && !attrs.path.is_empty() {
                // system:discovery, system:public-info-viewer
                return Decision::Allow;
            }
        } else if attrs.verb == "create"
            && matches!(
                (attrs.group.as_str(), attrs.resource.as_str()),
                ("authorization.k8s.io", "selfsubjectaccessreviews" | "selfsubjectrulesreviews")
                    | ("authentication.k8s.io", "selfsubjectreviews")
            )
        {
            // system:basic-user
            return Decision::Allow;
        }
        let allowed = self.rules_for(user, &attrs.namespace).iter().any(|rule| rule_allows(rule, attrs));
        if allowed { Decision::Allow } else { Decision::Deny(String::new()) }
    }

    fn rules(&self, user: &UserInfo, namespace: &str) -> Option<Vec<Value>> {
        if user.groups.iter().any(|g| g == MASTERS) {
            return bootstrap_role("cluster-admin").and_then(|r| r["rules"].as_array().cloned());
        }
        let mut rules = vec![
            json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                   "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}),
            json!({"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]}),
            json!({"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                   "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]}),
        ];
        rules.extend(self.rules_for(user, namespace));
        Some(rules)
    }
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// Whether a binding names the user (directly, by group, or as a service account).
fn binds(binding: &Value, user: &UserInfo, binding_ns: &str) -> bool {
    binding["subjects"].as_array().into_iter().flatten().any(|s| {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str() {
            Some("User") => name == user.username,
            Some("Group") => user.groups.iter().any(|g| g == name),
            Some("ServiceAccount") => {
                let ns = s["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or(binding_ns);
                user.username == format!("system:serviceaccount:{ns}:{name}")
            }
            _ => false,
        }
    })
}

/// Whether one PolicyRule allows the request.
pub fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let verb_ok = strings(&rule["verbs"]).any(|v| v == "*" || v == attrs.verb);
    if !verb_ok {
        return false;
    }
    if attrs.resource.is_empty() {
        return strings(&rule["nonResourceURLs"]).any(|u| {
            u == "*" || u == attrs.path || u.strip_suffix('*').is_some_and(|prefix| attrs.path.starts_with(prefix))
        });
    }
    let group_ok = strings(&rule["apiGroups"]).any(|g| g == "*" || g == attrs.group);
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let resource_ok = strings(&rule["resources"]).any(|r| {
        r == "*"
            || r == combined
            || (!attrs.subresource.is_empty() && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    });
    let names: Vec<&str> = strings(&rule["resourceNames"]).collect();
    let name_ok = names.is_empty() || (!attrs.name.is_empty() && names.contains(&attrs.name.as_str()));
    group_ok && resource_ok && name_ok
}

/// The bootstrap ClusterRoles a real cluster has (simplified: `edit` and `admin` write
/// everything namespaced but RBAC, `view` reads everything but Secrets).
fn bootstrap_role(name: &str) -> Option<Value> {
    let read = ["get", "list", "watch"];
    let write = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
    let rules = match name {
        "cluster-admin" => json!([
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
            {"verbs": ["*"], "nonResourceURLs": ["*"]},
        ]),
        "admin" => json!([
            {"verbs": write, "apiGroups": ["", "apps", "batch", "autoscaling", "networking.k8s.io", "policy", "rbac.authorization.k8s.io"], "resources": ["*"]},
        ]),
        "edit" => json!([
            {"verbs": write, "apiGroups": ["", "apps", "batch", "autoscaling", "networking.k8s.io", "policy"], "resources": ["*"]},
        ]),
        "view" => json!([
            {"verbs": read, "apiGroups": ["", "apps", "batch", "autoscaling", "networking.k8s.io", "policy"],
             "resources": ["pods", "pods/log", "services", "endpoints", "configmaps", "persistentvolumeclaims",
                           "replicationcontrollers", "serviceaccounts", "events", "namespaces", "deployments",
                           "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs", "ingresses",
                           "horizontalpodautoscalers", "poddisruptionbudgets"]},
        ]),
        _ => return None,
    };
    Some(json!({"metadata": {"name": name}, "rules": rules}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_verbs_resources_subresources_and_names() {
        let rule = json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]});
        assert!(rule_allows(&rule, &attrs("list", "pods", "", "ns", "")));
        assert!(rule_allows(&rule, &attrs("get", "pods", "log", "ns", "p")));
        assert!(!rule_allows(&rule, &attrs("get", "pods", "exec", "ns", "p")));
        assert!(!rule_allows(&rule, &attrs("delete", "pods", "", "ns", "p")));
        let named = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["secrets"], "resourceNames": ["a"]});
        assert!(rule_allows(&named, &attrs("get", "secrets", "", "ns", "a")));
        assert!(!rule_allows(&named, &attrs("get", "secrets", "", "ns", "b")));
        assert!(!rule_allows(&named, &attrs("list", "secrets", "", "ns", "")));
        let scale = json!({"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["*/scale"]});
        let mut a = attrs("patch", "deployments", "scale", "ns", "d");
        a.group = "apps".into();
        assert!(rule_allows(&scale, &a));
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let sa = UserInfo {
            username: "system:serviceaccount:ns:sa".into(),
            groups: vec!["system:serviceaccounts".into(), "system:serviceaccounts:ns".into()],
        };
        assert!(binds(&json!({"subjects": [{"kind": "ServiceAccount", "name": "sa"}]}), &sa, "ns"));
        assert!(!binds(&json!({"subjects": [{"kind": "ServiceAccount", "name": "sa"}]}), &sa, "other"));
        assert!(binds(&json!({"subjects": [{"kind": "Group", "name": "system:serviceaccounts:ns"}]}), &sa, "x"));
        assert!(!binds(&json!({"subjects": [{"kind": "User", "name": "sa"}]}), &sa, "ns"));
    }
}
