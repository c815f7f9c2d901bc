//! The step's summary: a Markdown table attached with `task.uploadsummary`.
//! The file lives in the agent's temp directory (not the private directory,
//! which is gone when the agent reads the attachment at the step's end).

use std::path::{Path, PathBuf};

use super::params::{Command, Params};
use crate::azp::Agent;
use crate::helm::Release;

pub struct Summary<'a> {
    pub release: &'a Release,
    pub params: &'a Params,
    pub cluster: &'a str,
    pub identity: &'a str,
}

impl Summary<'_> {
    /// The Markdown text (no values, no secrets).
    pub fn markdown(&self) -> String {
        let r = self.release;
        let cell = |text: &str| text.replace('|', "\\|").replace(['\r', '\n'], " ");
        let rows = [
            ("Release", r.name.clone()),
            ("Chart", format!("{} {}", r.chart, r.chart_version)),
            ("App version", r.app_version.clone().unwrap_or_default()),
            ("Revision", r.revision.to_string()),
            ("Status", r.status.clone()),
            ("Cluster", self.cluster.to_string()),
            ("Namespace", r.namespace.clone()),
            ("Identity", self.identity.to_string()),
            ("Source", self.source()),
        ];
        let mut text = format!("### Helm release {}\n\n| | |\n|---|---|\n", cell(&r.name));
        for (name, value) in rows.iter().filter(|(_, v)| !v.trim().is_empty()) {
            text.push_str(&format!("| {name} | {} |\n", cell(value)));
        }
        text
    }

    /// The chart an upgrade installed from; what the other commands did.
    fn source(&self) -> String {
        match &self.params.command {
            Command::Upgrade { upgrade, .. } => upgrade.chart.as_arg(),
            other => format!("helm {}", other.verb()),
        }
    }

    /// Writes the file under `temp_dir` and attaches it.
    pub fn upload(&self, agent: &Agent, temp_dir: &Path) {
        agent.attach_summary(&self.path(temp_dir), &self.markdown());
    }

    fn path(&self, temp_dir: &Path) -> PathBuf {
        let r = self.release;
        temp_dir.join(format!("azp-kube-helm-{}-{}-r{}-{}.md", r.namespace, r.name, r.revision, std::process::id()))
    }
}
