//! The resource registry: which group/version/resources the simulator serves, their kinds,
//! scopes and subresources. Built-in types are listed here; CustomResourceDefinitions add more.

use std::sync::{Arc, RwLock};

use serde_json::Value;

/// One served resource (`apps/v1 deployments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for core.
    pub group: String,
    /// API version (`v1`).
    pub version: String,
    /// Plural name, used in paths.
    pub plural: String,
    /// Singular name, lower case.
    pub singular: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names for kubectl (`deploy`).
    pub short_names: Vec<String>,
    /// Subresources (`status`, `log`, ...).
    pub subresources: Vec<String>,
    /// False for virtual resources that are created and answered but not stored.
    pub stored: bool,
    /// Set for resources registered by a CustomResourceDefinition (its name).
    pub crd: Option<String>,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Whether the resource has a `status` subresource (then the main endpoint keeps status).
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s == "status")
    }

    /// The name used in Status messages.
    pub fn target(&self) -> crate::error::Target<'_> {
        crate::error::Target { group: &self.group, plural: &self.plural }
    }

    /// The verbs discovery lists for the resource.
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.stored {
            vec!["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        } else {
            vec!["create"]
        }
    }
}

/// (group, version, plural, kind, namespaced, short names, subresources)
type Builtin =
    (&'static str, &'static str, &'static str, &'static str, bool, &'static [&'static str], &'static [&'static str]);

const BUILTINS: &[Builtin] = &[
    ("", "v1", "namespaces", "Namespace", false, &["ns"], &["status", "finalize"]),
    ("", "v1", "pods", "Pod", true, &["po"], &["status", "log", "attach", "exec", "binding"]),
    ("", "v1", "secrets", "Secret", true, &[], &[]),
    ("", "v1", "configmaps", "ConfigMap", true, &["cm"], &[]),
    ("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"], &["token"]),
    ("", "v1", "services", "Service", true, &["svc"], &["status"]),
    ("", "v1", "endpoints", "Endpoints", true, &["ep"], &[]),
    ("", "v1", "events", "Event", true, &["ev"], &[]),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, &["pvc"], &["status"]),
    ("", "v1", "nodes", "Node", false, &["no"], &["status"]),
    ("apps", "v1", "deployments", "Deployment", true, &["deploy"], &["status", "scale"]),
    ("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"], &["status", "scale"]),
    ("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"], &["status"]),
    ("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"], &["status", "scale"]),
    ("apps", "v1", "controllerrevisions", "ControllerRevision", true, &[], &[]),
    ("batch", "v1", "jobs", "Job", true, &[], &["status"]),
    ("batch", "v1", "cronjobs", "CronJob", true, &["cj"], &["status"]),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", true, &[], &[]),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, &[], &[]),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, &[], &[]),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, &[], &[]),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", true, &["ing"], &["status"]),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, &["netpol"], &[]),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, &["pdb"], &["status"]),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true, &["hpa"], &["status"]),
    ("coordination.k8s.io", "v1", "leases", "Lease", true, &[], &[]),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["status"],
    ),
];

/// Virtual resources: create-only reviews answered by the authenticator and authorizer.
const REVIEWS: &[(&str, &str, &str)] = &[
    ("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    ("authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview"),
];

/// The set of served resources; grows and shrinks with CustomResourceDefinitions.
#[derive(Debug)]
pub struct Registry {
    types: RwLock<Vec<Arc<ResourceType>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in resources.
    pub fn builtin() -> Self {
        let mut types: Vec<Arc<ResourceType>> = BUILTINS
            .iter()
            .map(|(group, version, plural, kind, namespaced, short, sub)| {
                Arc::new(ResourceType {
                    group: group.to_string(),
                    version: version.to_string(),
                    plural: plural.to_string(),
                    singular: kind.to_lowercase(),
                    kind: kind.to_string(),
                    namespaced: *namespaced,
                    short_names: short.iter().map(|s| s.to_string()).collect(),
                    subresources: sub.iter().map(|s| s.to_string()).collect(),
                    stored: true,
                    crd: None,
                })
            })
            .collect();
        types.extend(REVIEWS.iter().map(|(group, plural, kind)| {
            Arc::new(ResourceType {
                group: group.to_string(),
                version: "v1".into(),
                plural: plural.to_string(),
                singular: kind.to_lowercase(),
                kind: kind.to_string(),
                namespaced: false,
                short_names: vec![],
                subresources: vec![],
                stored: false,
                crd: None,
            })
        }));
        Self { types: RwLock::new(types) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<ResourceType>>> {
        self.types.read().unwrap_or_else(|e| e.into_inner())
    }

    /// All served resources.
    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        self.read().clone()
    }

    /// The resource at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.read().iter().find(|t| t.group == group && t.version == version && t.plural == plural).cloned()
    }

    /// The resource for an object's `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.read().iter().find(|t| t.api_version() == api_version && t.kind == kind).cloned()
    }

    /// Served groups, each with its versions, in registration order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.read().iter() {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) if !versions.contains(&t.version) => versions.push(t.version.clone()),
                Some(_) => {}
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        groups
    }

    /// Resources of one group/version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.read().iter().filter(|t| t.group == group && t.version == version).cloned().collect()
    }

    /// Registers the served versions of a CustomResourceDefinition (replacing earlier ones).
    pub fn register_crd(&self, crd: &Value) {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let spec = &crd["spec"];
        let names = &spec["names"];
        let group = spec["group"].as_str().unwrap_or_default();
        let plural = names["plural"].as_str().unwrap_or_default();
        let kind = names["kind"].as_str().unwrap_or_default();
        if group.is_empty() || plural.is_empty() || kind.is_empty() {
            return;
        }
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let short_names = string_list(&names["shortNames"]);
        let singular = names["singular"].as_str().map(str::to_string).unwrap_or_else(|| kind.to_lowercase());
        let mut types = self.types.write().unwrap_or_else(|e| e.into_inner());
        types.retain(|t| t.crd.as_deref() != Some(name.as_str()));
        for version in spec["versions"].as_array().into_iter().flatten() {
            if version["served"].as_bool() == Some(false) {
                continue;
            }
            let status = !version["subresources"]["status"].is_null();
            types.push(Arc::new(ResourceType {
                group: group.to_string(),
                version: version["name"].as_str().unwrap_or("v1").to_string(),
                plural: plural.to_string(),
                singular: singular.clone(),
                kind: kind.to_string(),
                namespaced,
                short_names: short_names.clone(),
                subresources: if status { vec!["status".into()] } else { vec![] },
                stored: true,
                crd: Some(name.clone()),
            }));
        }
    }

    /// Removes the resources of a deleted CustomResourceDefinition.
    pub fn unregister_crd(&self, name: &str) {
        self.types.write().unwrap_or_else(|e| e.into_inner()).retain(|t| t.crd.as_deref() != Some(name));
    }
}

fn string_list(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_registers_and_unregisters() {
        let reg = Registry::builtin();
        let crd = json!({"metadata": {"name": "scaledjobs.keda.sh"}, "spec": {"group": "keda.sh", "scope": "Namespaced",
            "names": {"plural": "scaledjobs", "kind": "ScaledJob"}, "versions": [{"name": "v1alpha1", "served": true}]}});
        reg.register_crd(&crd);
        assert!(reg.find("keda.sh", "v1alpha1", "scaledjobs").is_some());
        assert!(reg.groups().iter().any(|(g, _)| g == "keda.sh"));
        reg.unregister_crd("scaledjobs.keda.sh");
        assert!(reg.find("keda.sh", "v1alpha1", "scaledjobs").is_none());
    }
}
