//! Kubeconfig files for the simulator: server URL, embedded CA, one bearer-token user.

use base64::Engine as _;
use serde_json::json;

/// A kubeconfig (YAML) with one cluster, one token user and one context.
pub fn render(server: &str, ca_pem: &str, user: &str, token: &str, namespace: &str) -> String {
    document(server, ca_pem, user, json!({"token": token}), namespace)
}

/// A kubeconfig whose user gets tokens from an exec plugin (`client.authentication.k8s.io/v1`).
pub fn render_exec(server: &str, ca_pem: &str, user: &str, command: &std::path::Path, args: &[String]) -> String {
    let exec = json!({"exec": {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": command.display().to_string(),
        "args": args,
        "interactiveMode": "Never",
    }});
    document(server, ca_pem, user, exec, "default")
}

fn document(server: &str, ca_pem: &str, user: &str, credentials: serde_json::Value, namespace: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "world", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "world", "context": {"cluster": "world", "user": user, "namespace": namespace}}],
        "current-context": "world",
        "preferences": {},
    });
    serde_saphyr::to_string(&doc).unwrap_or_else(|_| doc.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_yaml_with_embedded_ca() {
        let text = super::render("https://127.0.0.1:1", "PEM", "admin", "t", "default");
        assert!(text.contains("certificate-authority-data: UEVN"));
        assert!(text.contains("current-context: world"));
    }
}
