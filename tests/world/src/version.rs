//! The Kubernetes version the simulated API server reports, and the behaviours that
//! depend on it.

/// A Kubernetes minor release the world can pretend to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// The minor version (`34` for 1.34).
    pub minor: u32,
}

impl ServerVersion {
    /// Kubernetes 1.34: a WebSocket attach/exec (a GET) is authorized as `get` only.
    pub const V1_34: Self = Self { minor: 34 };
    /// Kubernetes 1.35: `AuthorizePodWebsocketUpgradeCreatePermission` (beta, on by default)
    /// also requires `create` on the subresource.
    pub const V1_35: Self = Self { minor: 35 };

    /// `v1.<minor>.0`, as `/version` reports it.
    pub fn git_version(self) -> String {
        format!("v1.{}.0", self.minor)
    }

    /// Whether a WebSocket upgrade of `pods/attach`, `pods/exec` or `pods/portforward` also
    /// needs `create` (kubernetes pkg/features/kube_features.go: the gate is beta and on
    /// from 1.35; pkg/registry/core/pod/rest/subresources.go checks it in `Connect`).
    pub fn websocket_upgrade_needs_create(self) -> bool {
        self >= Self::V1_35
    }
}

impl Default for ServerVersion {
    /// The version whose API types (k8s-openapi `v1_34`) the world validates against.
    fn default() -> Self {
        Self::V1_34
    }
}
