//! What the kubelet does to a container's spec before it starts it: each
//! `env` entry gets its value (`valueFrom.secretKeyRef` read from the Secret,
//! `$(VAR)` references in `value` expanded with the entries before it), then
//! `$(VAR)` references in `command` and `args` are expanded with the whole
//! environment. A missing Secret or key is the kubelet's
//! `CreateContainerConfigError`.
//!
//! Follows kubelet `makeEnvironmentVariables` (pkg/kubelet/kubelet_pods.go)
//! and `third_party/forked/golang/expansion` (expand.go), Kubernetes 1.34.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::cluster::Cluster;

/// The container with every `env` entry a plain `value` and its command and
/// arguments expanded; or the kubelet's message for why it cannot start.
pub fn resolve(cluster: &Cluster, namespace: &str, container: &Value) -> Result<Value, String> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for entry in container["env"].as_array().into_iter().flatten() {
        let name = entry["name"].as_str().unwrap_or_default().to_string();
        let value = match &entry["valueFrom"]["secretKeyRef"] {
            Value::Null => expand(entry["value"].as_str().unwrap_or_default(), &vars),
            reference => match secret_value(cluster, namespace, reference)? {
                Some(value) => value,
                None => continue,
            },
        };
        vars.retain(|(n, _)| *n != name);
        vars.push((name, value));
    }
    let mut resolved = container.clone();
    if !vars.is_empty() {
        resolved["env"] = vars.iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
    }
    for field in ["command", "args"] {
        if let Some(list) = resolved[field].as_array_mut() {
            for item in list.iter_mut() {
                if let Some(text) = item.as_str() {
                    *item = json!(expand(text, &vars));
                }
            }
        }
    }
    Ok(resolved)
}

/// A `secretKeyRef`'s value; `None` when it is optional and missing.
fn secret_value(cluster: &Cluster, namespace: &str, reference: &Value) -> Result<Option<String>, String> {
    let name = reference["name"].as_str().unwrap_or_default();
    let key = reference["key"].as_str().unwrap_or_default();
    let optional = reference["optional"] == true;
    let secrets = cluster.resource("", "secrets").map_err(|e| e.to_string())?;
    let Ok(secret) = cluster.store.get(&secrets, namespace, name) else {
        return if optional { Ok(None) } else { Err(format!("secret \"{name}\" not found")) };
    };
    let Some(encoded) = secret["data"][key].as_str() else {
        return if optional { Ok(None) } else { Err(format!("couldn't find key {key} in Secret {namespace}/{name}")) };
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|e| e.to_string())?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Kubernetes' `$(VAR)` expansion: a known `$(VAR)` becomes its value, an
/// unknown one stays as written, `$$` becomes `$`, any other `$` stays.
pub fn expand(input: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(reference) = after.strip_prefix('(') {
            match reference.find(')') {
                Some(close) => {
                    let name = &reference[..close];
                    match vars.iter().rev().find(|(n, _)| n == name) {
                        Some((_, value)) => out.push_str(value),
                        None => out.push_str(&format!("$({name})")),
                    }
                    rest = &reference[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = reference;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        vec![("A".into(), "one".into()), ("B".into(), "t$(A)o".into())]
    }

    #[test]
    fn expansion_follows_kubernetes() {
        // Cases from expand_test.go: known, unknown, escaped, incomplete, lone operators.
        assert_eq!(expand("--x=$(A)", &vars()), "--x=one");
        assert_eq!(expand("$(A)$(A)", &vars()), "oneone");
        assert_eq!(expand("$(C)", &vars()), "$(C)");
        assert_eq!(expand("$$(A)", &vars()), "$(A)");
        assert_eq!(expand("a$$b", &vars()), "a$b");
        assert_eq!(expand("$(A", &vars()), "$(A");
        assert_eq!(expand("$A $", &vars()), "$A $");
        assert_eq!(expand("$()", &vars()), "$()");
        // A value is not expanded again.
        assert_eq!(expand("$(B)", &vars()), "t$(A)o");
    }
}
