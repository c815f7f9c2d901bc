//! Kubernetes' rules for names, labels and quantities, checked before any
//! request so that a bad input is named as such and not as a 422 from the API.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;

/// A DNS-1123 label: namespaces, Helm release names (≤ 53), service names.
pub fn check_dns1123_label(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() || value.len() > max {
        return Err(format!("{value:?} must be 1 to {max} characters"));
    }
    let bytes = value.as_bytes();
    let ok_inner = bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let ok_ends = bytes[0].is_ascii_alphanumeric() && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if !ok_inner || !ok_ends {
        return Err(format!(
            "{value:?} is not a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: most object names (service accounts, config maps).
pub fn check_dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 253 {
        return Err(format!("{value:?} must be 1 to 253 characters"));
    }
    for part in value.split('.') {
        check_dns1123_label(part, 63).map_err(|_| {
            format!("{value:?} is not a DNS-1123 subdomain: dot-separated lower-case labels of letters, digits and '-'")
        })?;
    }
    Ok(())
}

/// A label or annotation key: `[prefix/]name`, the name ≤ 63 characters of
/// alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
pub fn check_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_dns1123_subdomain(prefix).map_err(|e| format!("the prefix of key {key:?}: {e}"))?;
    }
    check_label_value(name).map_err(|_| {
        format!("key {key:?} must be a name of at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, with an optional DNS prefix and '/'")
    })?;
    if name.is_empty() {
        return Err(format!("key {key:?} has an empty name"));
    }
    Ok(())
}

/// A label value: empty, or ≤ 63 characters as a label key's name.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let bytes = value.as_bytes();
    let inner = bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ends = bytes[0].is_ascii_alphanumeric() && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if value.len() > 63 || !inner || !ends {
        return Err(format!(
            "label value {value:?} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A resource quantity such as `500m`, `2`, `1Gi`, `1e3`. Returns the value
/// in base units, so requests can be compared with limits.
pub fn parse_quantity(text: &str) -> Result<f64, String> {
    let hint = || format!("{text:?} is not a Kubernetes quantity (such as 500m, 2, 512Mi or 4Gi)");
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let digits = number.trim_start_matches(['+', '-']);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 || digits.contains(['+', '-']) {
        return Err(hint());
    }
    let value: f64 = number.parse().map_err(|_| hint())?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => {
            let exponent: i32 = s[1..].parse().map_err(|_| hint())?;
            10f64.powi(exponent)
        }
        s if s.len() == 2 && s.ends_with(['B', 'b']) => {
            let unit = &s[..1];
            let decimal = if unit.eq_ignore_ascii_case("k") { "k".to_string() } else { unit.to_uppercase() };
            let binary = format!("{}i", unit.to_uppercase());
            return Err(format!(
                "{text:?} is not a Kubernetes quantity: write {number}{binary} or {number}{decimal}; byte units such as {s} are not accepted"
            ));
        }
        _ => return Err(hint()),
    };
    Ok(value * factor)
}

/// `KEY=VALUE` lines (node selectors, labels, annotations): qualified-name
/// keys, and with `label_rules` label values.
pub fn key_values(lines: &[String], label_rules: bool) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for line in lines {
        let (key, value) = line.split_once('=').ok_or_else(|| format!("{line:?} must be KEY=VALUE"))?;
        let (key, value) = (key.trim(), value.trim());
        check_qualified_name(key)?;
        if label_rules {
            check_label_value(value)?;
        }
        map.insert(key.to_string(), value.to_string());
    }
    Ok(map)
}

/// `KEY[=VALUE]:EFFECT`, `KEY:EFFECT`, or `:EFFECT` (tolerate every taint with it).
pub fn parse_toleration(text: &str) -> Result<Toleration, String> {
    const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
    let (selector, effect) = text.rsplit_once(':').ok_or_else(|| format!("{text:?} must be KEY[=VALUE]:EFFECT"))?;
    if !EFFECTS.contains(&effect) {
        return Err(format!("{text:?}: the effect must be one of {}, not {effect:?}", EFFECTS.join(", ")));
    }
    let (key, value) = match selector.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (selector, None),
    };
    if !key.is_empty() {
        check_qualified_name(key)?;
    }
    if let Some(value) = value {
        check_label_value(value)?;
    }
    Ok(Toleration {
        key: (!key.is_empty()).then(|| key.to_string()),
        operator: Some(if value.is_some() { "Equal" } else { "Exists" }.to_string()),
        value: value.map(str::to_string),
        effect: Some(effect.to_string()),
        toleration_seconds: None,
    })
}

/// Any text made into a valid label value.
pub fn label_value(text: &str) -> String {
    let cleaned: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).collect();
    let cleaned: String = cleaned.chars().take(63).collect();
    cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

/// Which of a container's resources a [`check_resources`] error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    CpuRequest,
    MemoryRequest,
    MemoryLimit,
}

/// Container resources a build can run with: quantities, a CPU request above
/// 0, memory of at least 1Mi, and a memory request no larger than the limit.
pub fn check_resources(
    cpu_request: Option<&str>,
    memory_request: Option<&str>,
    memory_limit: Option<&str>,
) -> Result<(), (Resource, String)> {
    let quantity = |resource, value: Option<&str>| value.map(parse_quantity).transpose().map_err(|e| (resource, e));
    if quantity(Resource::CpuRequest, cpu_request)?.is_some_and(|q| q <= 0.0) {
        return Err((Resource::CpuRequest, "must be more than 0".into()));
    }
    let request = quantity(Resource::MemoryRequest, memory_request)?;
    let limit = quantity(Resource::MemoryLimit, memory_limit)?;
    for (resource, value) in [(Resource::MemoryRequest, request), (Resource::MemoryLimit, limit)] {
        if value.is_some_and(|q| q < 1024.0 * 1024.0) {
            return Err((resource, "is below 1Mi, too little for any build".into()));
        }
    }
    if let (Some(request), Some(limit)) = (request, limit)
        && request > limit
    {
        return Err((Resource::MemoryRequest, "is larger than memoryLimit".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_labels() {
        for ok in ["web", "a", "team-1", "x0"] {
            assert!(check_dns1123_label(ok, 63).is_ok(), "{ok}");
        }
        for bad in ["", "Web", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(check_dns1123_label(bad, 63).is_err(), "{bad}");
        }
        assert!(check_dns1123_label(&"a".repeat(54), 53).is_err());
    }

    #[test]
    fn dns1123_subdomains() {
        assert!(check_dns1123_subdomain("docker-config").is_ok());
        assert!(check_dns1123_subdomain("a.b-c.d").is_ok());
        assert!(check_dns1123_subdomain("a..b").is_err());
        assert!(check_dns1123_subdomain("Docker").is_err());
    }

    #[test]
    fn label_keys_and_values() {
        assert!(check_qualified_name("app.kubernetes.io/name").is_ok());
        assert!(check_qualified_name("team").is_ok());
        assert!(check_qualified_name("Team_A").is_ok());
        assert!(check_qualified_name("bad key").is_err());
        assert!(check_qualified_name("UPPER.example/x").is_err());
        assert!(check_qualified_name("example.com/").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("v1.2_3").is_ok());
        assert!(check_label_value(&"v".repeat(64)).is_err());
        assert!(check_label_value("-x").is_err());
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m").unwrap(), 0.5);
        assert_eq!(parse_quantity("2").unwrap(), 2.0);
        assert_eq!(parse_quantity("1Gi").unwrap(), 1073741824.0);
        assert_eq!(parse_quantity("1G").unwrap(), 1e9);
        assert_eq!(parse_quantity("1.5Mi").unwrap(), 1572864.0);
        assert_eq!(parse_quantity("1e3").unwrap(), 1000.0);
        for bad in ["lots", "", "Gi", "1 Gi", "1.2.3", "--1", "1x"] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
        let err = parse_quantity("1GB").unwrap_err();
        assert!(err.contains("write 1Gi or 1G") && err.contains("byte units"), "{err}");
    }

    #[test]
    fn tolerations() {
        let t = parse_toleration("dedicated=build:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_deref(), t.operator.as_deref(), t.value.as_deref()),
            (Some("dedicated"), Some("Equal"), Some("build"))
        );
        let t = parse_toleration("spot:PreferNoSchedule").unwrap();
        assert_eq!(t.operator.as_deref(), Some("Exists"));
        assert!(parse_toleration(":NoExecute").is_ok());
        assert!(parse_toleration("x:NoWay").unwrap_err().contains("NoWay"));
        assert!(parse_toleration("x").is_err());
    }

    #[test]
    fn label_values_are_cleaned() {
        assert_eq!(label_value("20261129.3"), "20261129.3");
        assert_eq!(label_value("Job: build #1"), "Job--build--1");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
    }
    #[test]
    fn key_value_lines() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let map = key_values(&lines(&["team = build", "example.com/tier=ci"]), true).unwrap();
        assert_eq!(map["team"], "build");
        assert!(key_values(&lines(&["no-value"]), true).is_err());
        assert!(key_values(&lines(&["a=not a label value"]), true).is_err());
        assert!(key_values(&lines(&["a=any text: fine"]), false).is_ok());
    }

    #[test]
    fn resources() {
        assert_eq!(check_resources(Some("500m"), Some("1Gi"), Some("2Gi")), Ok(()));
        assert_eq!(check_resources(None, None, None), Ok(()));
        assert_eq!(check_resources(Some("0"), None, None).unwrap_err().0, Resource::CpuRequest);
        assert_eq!(check_resources(None, Some("512Ki"), None).unwrap_err().0, Resource::MemoryRequest);
        assert_eq!(check_resources(None, None, Some("1GB")).unwrap_err().0, Resource::MemoryLimit);
        let (resource, message) = check_resources(None, Some("2Gi"), Some("1Gi")).unwrap_err();
        assert_eq!((resource, message.as_str()), (Resource::MemoryRequest, "is larger than memoryLimit"));
    }
}
