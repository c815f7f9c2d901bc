//! The release as `helm status -o json` describes it. The JSON holds the
//! values and the rendered manifest (Secrets included), so only the fields
//! below are kept and the text itself is never printed.

use serde::Deserialize;

/// What the task reports about a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub revision: u64,
    /// `deployed`, `failed`, `pending-upgrade`, …
    pub status: String,
    pub chart: String,
    pub chart_version: String,
    pub app_version: Option<String>,
}

/// Output of `helm status -o json` or `helm history -o json` that is not what they print.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the JSON helm printed: {0}")]
pub struct ParseError(#[source] serde_json::Error);

#[derive(Deserialize)]
struct Raw {
    name: String,
    namespace: String,
    version: u64,
    info: RawInfo,
    chart: Option<RawChart>,
}

#[derive(Deserialize)]
struct RawInfo {
    status: String,
}

#[derive(Deserialize)]
struct RawChart {
    metadata: RawMetadata,
}

#[derive(Deserialize)]
struct RawMetadata {
    name: String,
    version: String,
    #[serde(rename = "appVersion")]
    app_version: Option<String>,
}

impl Release {
    /// Reads the JSON; everything but the fields above is dropped unread.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        let raw: Raw = serde_json::from_str(text.trim()).map_err(ParseError)?;
        let (chart, chart_version, app_version) = match raw.chart {
            Some(RawChart { metadata }) => (metadata.name, metadata.version, metadata.app_version),
            None => (String::new(), String::new(), None),
        };
        Ok(Self {
            name: raw.name,
            namespace: raw.namespace,
            revision: raw.version,
            status: raw.info.status,
            chart,
            chart_version,
            app_version: app_version.filter(|v| !v.is_empty()),
        })
    }
}

/// The `manifest` of a release printed as JSON (`helm upgrade --dry-run -o
/// json`); the rest (values included) is dropped unread.
pub fn manifest_of(release_json: &str) -> Result<String, ParseError> {
    #[derive(Deserialize)]
    struct WithManifest {
        #[serde(default)]
        manifest: String,
    }
    Ok(serde_json::from_str::<WithManifest>(release_json.trim()).map_err(ParseError)?.manifest)
}

/// One revision of `helm history -o json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Revision {
    pub revision: u64,
    pub status: String,
    /// When helm last wrote the revision (for a pending one: when its run began).
    #[serde(default, deserialize_with = "timestamp")]
    pub updated: Option<jiff::Timestamp>,
}

fn timestamp<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<jiff::Timestamp>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.and_then(|t| t.parse().ok()))
}

/// The revisions of `helm history -o json`, oldest first.
pub fn history(history_json: &str) -> Result<Vec<Revision>, ParseError> {
    let mut revisions: Vec<Revision> = serde_json::from_str(history_json.trim()).map_err(ParseError)?;
    revisions.sort_by_key(|r| r.revision);
    Ok(revisions)
}

/// The newest revision whose status is `deployed`: what a release left
/// `pending-*` by a killed run can be rolled back to.
pub fn last_deployed_revision(revisions: &[Revision]) -> Option<u64> {
    revisions.iter().filter(|r| r.status == "deployed").map(|r| r.revision).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_deployed_revision_is_found_in_the_history() {
        let text = r#"[{"revision":1,"updated":"x","status":"superseded","chart":"web-0.1.0","app_version":"1","description":"Install complete"},
            {"revision":3,"updated":"2026-12-06T06:43:47.519946011Z","status":"pending-upgrade","chart":"web-0.1.0"},
            {"revision":2,"updated":"2026-12-06T06:40:00.1+00:00","status":"deployed","chart":"web-0.1.0","description":"Upgrade complete"}]"#;
        let revisions = history(text).unwrap();
        assert_eq!(revisions.iter().map(|r| r.revision).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(revisions[2].updated, Some("2026-12-06T06:43:47.519946011Z".parse().unwrap()));
        assert_eq!(revisions[0].updated, None, "an unreadable time is no time");
        assert_eq!(last_deployed_revision(&revisions), Some(2));
        assert_eq!(last_deployed_revision(&history(r#"[{"revision":1,"status":"pending-install"}]"#).unwrap()), None);
        assert!(history("Error: release: not found").is_err());
    }

    #[test]
    fn a_release_is_read_without_its_values() {
        let json = r#"{"name":"web","namespace":"web","version":3,
            "info":{"status":"deployed","notes":"hi"},
            "chart":{"metadata":{"name":"web","version":"0.1.0","appVersion":"1.0"},"values":{"password":"s3cret"}},
            "config":{"password":"s3cret"},"manifest":"kind: Secret","apply_method":"ssa"}"#;
        let release = Release::from_json(json).unwrap();
        assert_eq!(
            release,
            Release {
                name: "web".into(),
                namespace: "web".into(),
                revision: 3,
                status: "deployed".into(),
                chart: "web".into(),
                chart_version: "0.1.0".into(),
                app_version: Some("1.0".into()),
            }
        );
        assert!(!format!("{release:?}").contains("s3cret"));
        assert!(Release::from_json("Error: release: not found").is_err());
    }
}
