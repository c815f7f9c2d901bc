//! The step's summary: a Markdown table attached with `task.uploadsummary`.
//! The file lives in the agent's temp directory (not the private directory,
//! which is gone when the agent reads the attachment at the step's end).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::params::{Command, Params};
use crate::azp::Agent;
use crate::azp::agent::VariableOptions;
use crate::helm::Release;

/// The output variables of one deploy: under the step's names, or with
/// `targets` under the target's (`<name>_releaseRevision`). Also kept, for
/// the fan-out's results.
pub struct Outputs {
    agent: Agent,
    target: Option<String>,
    values: Mutex<BTreeMap<&'static str, String>>,
    account: Mutex<Option<String>>,
}

impl Outputs {
    pub fn of_step(agent: &Agent) -> Self {
        Self { agent: agent.clone(), target: None, values: Mutex::default(), account: Mutex::default() }
    }

    pub fn of_target(agent: &Agent, name: &str) -> Self {
        Self { target: Some(name.to_string()), ..Self::of_step(agent) }
    }

    /// Whether these are the step's own outputs (one cluster).
    pub fn is_step(&self) -> bool {
        self.target.is_none()
    }

    /// The fan-out target's name.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    pub fn set(&self, name: &'static str, value: &str) {
        let variable = match &self.target {
            Some(target) => format!("{target}_{name}"),
            None => name.to_string(),
        };
        self.agent.set_variable(&variable, value, VariableOptions { is_output: true, is_secret: false });
        lock(&self.values).insert(name, value.to_string());
    }

    /// A value set before, by its name in task.json.
    pub fn get(&self, name: &str) -> Option<String> {
        lock(&self.values).get(name).cloned()
    }

    /// The AWS account of the deploying identity (and so of the cluster).
    pub fn note_account(&self, account: &str) {
        *lock(&self.account) = Some(account.to_string());
    }

    pub fn account(&self) -> Option<String> {
        lock(&self.account).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

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

/// How a target of a fan-out ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetEnd {
    Succeeded,
    /// Why it failed (the error, on one line).
    Failed(String),
    /// Why it did not start.
    NotStarted(String),
    /// Stopped with the step.
    Canceled,
}

impl TargetEnd {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed(_) => "failed",
            Self::NotStarted(_) => "not started",
            Self::Canceled => "canceled",
        }
    }

    /// The error, or the reason it did not start.
    fn why(&self) -> Option<&str> {
        match self {
            Self::Failed(why) | Self::NotStarted(why) => Some(why),
            Self::Succeeded | Self::Canceled => None,
        }
    }
}

/// One target of a fan-out: where, what its deploy reported, how it ended.
#[derive(Debug, Clone)]
pub struct TargetResult {
    pub name: String,
    pub cluster: String,
    pub region: String,
    pub namespace: String,
    pub account: Option<String>,
    pub revision: Option<String>,
    pub release_status: Option<String>,
    pub has_changes: Option<String>,
    /// None when it did not start.
    pub duration: Option<std::time::Duration>,
    pub end: TargetEnd,
}

impl TargetResult {
    pub fn ended(
        target: &super::targets::NamedTarget,
        outputs: &Outputs,
        duration: std::time::Duration,
        end: TargetEnd,
    ) -> Self {
        Self {
            account: outputs.account(),
            revision: outputs.get("releaseRevision"),
            release_status: outputs.get("releaseStatus"),
            has_changes: outputs.get("hasChanges"),
            duration: Some(duration),
            ..Self::planned(target, end)
        }
    }

    pub fn not_started(target: &super::targets::NamedTarget, why: &str) -> Self {
        Self::planned(target, TargetEnd::NotStarted(why.to_string()))
    }

    fn planned(target: &super::targets::NamedTarget, end: TargetEnd) -> Self {
        let (cluster, region) = target.cluster();
        Self {
            name: target.name.clone(),
            cluster: cluster.to_string(),
            region: region.to_string(),
            namespace: target.params.release.namespace.clone(),
            account: None,
            revision: None,
            release_status: None,
            has_changes: None,
            duration: None,
            end,
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "cluster": self.cluster,
            "account": self.account,
            "region": self.region,
            "namespace": self.namespace,
            "result": self.end.as_str(),
            "revision": self.revision.as_ref().and_then(|r| r.parse::<u64>().ok()),
            "status": self.release_status,
            "hasChanges": self.has_changes.as_ref().map(|c| c == "true"),
            "durationSeconds": self.duration.map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
            "error": self.end.why(),
        })
    }
}

/// The results of a fan-out: the `results` output (JSON), `hasChanges` for a
/// diff, and the run's summary, one row per target.
pub struct TargetsReport<'a> {
    pub results: &'a [TargetResult],
    pub release: &'a str,
}

impl TargetsReport<'_> {
    pub fn publish(&self, agent: &Agent, temp_dir: &Path) {
        let json = serde_json::Value::Array(self.results.iter().map(TargetResult::json).collect());
        let output = VariableOptions { is_output: true, is_secret: false };
        agent.set_variable("results", &json.to_string(), output);
        let diffs: Vec<bool> =
            self.results.iter().filter_map(|r| r.has_changes.as_ref()).map(|c| c == "true").collect();
        if !diffs.is_empty() {
            agent.set_variable("hasChanges", if diffs.contains(&true) { "true" } else { "false" }, output);
        }
        let path = temp_dir.join(format!("azp-kube-helm-targets-{}-{}.md", self.release, std::process::id()));
        agent.attach_summary(&path, &self.markdown());
    }

    pub fn markdown(&self) -> String {
        let cell = |text: &str| text.replace('|', "\\|").replace(['\r', '\n'], " ");
        let mut text = format!(
            "### Helm release {} on {} clusters\n\n\
             | Target | Cluster | Account | Region | Namespace | Revision | Status | Duration |\n\
             |---|---|---|---|---|---|---|---|\n",
            cell(self.release),
            self.results.len()
        );
        for r in self.results {
            let status = match (&r.release_status, &r.end) {
                (Some(status), TargetEnd::Succeeded) => status.clone(),
                (Some(status), end) => format!("{} ({status})", end.as_str()),
                (None, end) => end.as_str().to_string(),
            };
            let row = [
                r.name.clone(),
                r.cluster.clone(),
                r.account.clone().unwrap_or_default(),
                r.region.clone(),
                r.namespace.clone(),
                r.revision.clone().unwrap_or_default(),
                status,
                r.duration.map(|d| format!("{:.1} s", d.as_secs_f64())).unwrap_or_default(),
            ];
            text.push_str(&format!("| {} |\n", row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")));
        }
        let problems: Vec<String> = self
            .results
            .iter()
            .filter_map(|r| r.end.why().map(|why| format!("- **{}**: {}", cell(&r.name), cell(why))))
            .collect();
        if !problems.is_empty() {
            text.push_str(&format!("\n{}\n", problems.join("\n")));
        }
        text
    }
}
