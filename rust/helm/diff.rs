//! What an upgrade would change: the release's current manifest against the
//! one helm renders for the upgrade, resource by resource (added, changed
//! with a unified diff of its YAML, removed). A Secret's `data` and
//! `stringData` values never appear: only which keys were added, removed or
//! changed.

use std::collections::BTreeMap;

use serde_json::Value;

/// A manifest that is not YAML helm could have written.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the {which} manifest: {message}")]
pub struct ManifestError {
    pub which: &'static str,
    pub message: String,
}

/// One resource that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `Kind namespace/name` (or `Kind name` without a namespace).
    pub resource: String,
    pub kind: ChangeKind,
    /// A unified diff of the resource's YAML (Secret values hidden).
    pub diff: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Changed => "changed",
            Self::Removed => "removed",
        }
    }
}

/// Compares the current manifest (empty for a release not installed yet)
/// with the proposed one. Resources come out sorted by name.
pub fn compare(current: &str, proposed: &str) -> Result<Vec<Change>, ManifestError> {
    let old = resources(current, "current")?;
    let new = resources(proposed, "proposed")?;
    let mut changes = Vec::new();
    for (key, before) in &old {
        match new.get(key) {
            None => changes.push(change(key, ChangeKind::Removed, Some(before), None)),
            Some(after) if after != before => changes.push(change(key, ChangeKind::Changed, Some(before), Some(after))),
            Some(_) => {}
        }
    }
    for (key, after) in new.iter().filter(|(key, _)| !old.contains_key(*key)) {
        changes.push(change(key, ChangeKind::Added, None, Some(after)));
    }
    changes.sort_by(|a, b| a.resource.cmp(&b.resource));
    Ok(changes)
}

fn change(resource: &str, kind: ChangeKind, before: Option<&Value>, after: Option<&Value>) -> Change {
    let (before, after) = hide_secret_values(before, after);
    let text = |value: &Option<Value>| value.as_ref().map(to_yaml).unwrap_or_default();
    let (old, new) = (text(&before), text(&after));
    let diff = similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{resource} (current)"), &format!("{resource} (upgrade)"))
        .to_string();
    Change { resource: resource.to_string(), kind, diff }
}

fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// Every document of a manifest by `Kind namespace/name`.
fn resources(manifest: &str, which: &'static str) -> Result<BTreeMap<String, Value>, ManifestError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(manifest).map_err(|e| ManifestError { which, message: e.to_string() })?;
    let mut resources = BTreeMap::new();
    for document in documents.into_iter().filter(|d| d.is_object()) {
        let field = |path: &[&str]| {
            path.iter().try_fold(&document, |v, k| v.get(k)).and_then(Value::as_str).unwrap_or_default().to_string()
        };
        let (kind, name, namespace) =
            (field(&["kind"]), field(&["metadata", "name"]), field(&["metadata", "namespace"]));
        let key = if namespace.is_empty() { format!("{kind} {name}") } else { format!("{kind} {namespace}/{name}") };
        resources.insert(key, document);
    }
    Ok(resources)
}

/// A Secret's values, both sides: `(hidden)`, and `(hidden, changed)` on the
/// new side where the value differs. Keys stay, so an added or removed key
/// shows as such.
fn hide_secret_values(before: Option<&Value>, after: Option<&Value>) -> (Option<Value>, Option<Value>) {
    let is_secret = |v: Option<&Value>| v.is_some_and(|v| v.get("kind").and_then(Value::as_str) == Some("Secret"));
    let (mut before, mut after) = (before.cloned(), after.cloned());
    if !is_secret(before.as_ref()) && !is_secret(after.as_ref()) {
        return (before, after);
    }
    for field in ["data", "stringData"] {
        let old_values = before.as_ref().and_then(|b| b.get(field)).cloned().unwrap_or_default();
        if let Some(Value::Object(map)) = before.as_mut().and_then(|b| b.get_mut(field)) {
            map.values_mut().for_each(|v| *v = Value::from("(hidden)"));
        }
        if let Some(Value::Object(map)) = after.as_mut().and_then(|a| a.get_mut(field)) {
            for (key, value) in map.iter_mut() {
                let same = old_values.get(key) == Some(&*value);
                *value = Value::from(if same { "(hidden)" } else { "(hidden, changed)" });
            }
        }
    }
    (before, after)
}

/// The diff as a Markdown summary: a table of the changed resources, then
/// each diff in a fenced block.
pub fn markdown(title: &str, changes: &[Change]) -> String {
    let mut text = format!("### {title}\n\n");
    if changes.is_empty() {
        text.push_str("No changes: the upgrade would leave every resource as it is.\n");
        return text;
    }
    text.push_str("| Resource | Change |\n|---|---|\n");
    for change in changes {
        text.push_str(&format!("| `{}` | {} |\n", change.resource.replace('|', "\\|"), change.kind.as_str()));
    }
    for change in changes {
        // A fence longer than any backtick run in the diff cannot be closed by it.
        let longest = change.diff.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        text.push_str(&format!(
            "\n**{}** ({})\n\n{fence}diff\n{}{fence}\n",
            change.resource,
            change.kind.as_str(),
            change.diff
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: &str = "---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  message: one\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: web-secret\nstringData:\n  password: hunter2-old\n  token: same-token\n";
    const PROPOSED: &str = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  message: two\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: web-secret\nstringData:\n  password: hunter2-new\n  token: same-token\n  added: new-value\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: apps\nspec:\n  replicas: 1\n";

    #[test]
    fn added_changed_and_removed_resources() {
        let changes = compare(CURRENT, PROPOSED).unwrap();
        let summary: Vec<(&str, ChangeKind)> = changes.iter().map(|c| (c.resource.as_str(), c.kind)).collect();
        assert_eq!(
            summary,
            vec![
                ("ConfigMap web-config", ChangeKind::Changed),
                ("Deployment apps/web", ChangeKind::Added),
                ("Secret web-secret", ChangeKind::Changed),
                ("Service web", ChangeKind::Removed),
            ]
        );
        let config = &changes[0].diff;
        assert!(config.contains("-  message: one\n") && config.contains("+  message: two\n"), "{config}");
        assert!(changes[1].diff.contains("+  replicas: 1\n"), "{}", changes[1].diff);
        assert!(
            changes[3].diff.contains("-    port: 80\n") || changes[3].diff.contains("-  - port: 80\n"),
            "{}",
            changes[3].diff
        );
    }

    #[test]
    fn secret_values_never_show_only_which_keys_changed() {
        let changes = compare(CURRENT, PROPOSED).unwrap();
        let secret = &changes.iter().find(|c| c.resource == "Secret web-secret").unwrap().diff;
        for value in ["hunter2", "same-token", "new-value"] {
            assert!(!secret.contains(value), "{value} shown: {secret}");
        }
        assert!(
            secret.contains("-  password: (hidden)\n") && secret.contains("+  password: (hidden, changed)\n"),
            "{secret}"
        );
        assert!(secret.contains("+  added: (hidden, changed)\n"), "{secret}");
        assert!(secret.contains("   token: (hidden)\n"), "an unchanged key stays as context: {secret}");
        assert!(!markdown("t", &changes).contains("hunter2"));
    }

    #[test]
    fn nothing_changed_and_a_first_install() {
        assert!(compare(CURRENT, CURRENT).unwrap().is_empty());
        assert!(markdown("t", &[]).contains("No changes"));
        let first = compare("", PROPOSED).unwrap();
        assert!(first.iter().all(|c| c.kind == ChangeKind::Added), "{first:?}");
        assert!(compare("a: [", "").unwrap_err().to_string().starts_with("cannot read the current manifest"));
    }

    #[test]
    fn a_diff_cannot_close_its_markdown_fence() {
        let current = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: x\n";
        let proposed = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: \"```\\n# injected\"\n";
        let text = markdown("t", &compare(current, proposed).unwrap());
        assert!(text.contains("````diff"), "{text}");
    }
}
