//! What a finished build tells the pipeline: output variables and a
//! Markdown summary on the run's page.

use std::fmt::Write as _;
use std::time::Duration;

use super::params::{Plan, Transport};
use crate::azp::agent::VariableOptions;
use crate::azp::{Agent, Env};
use crate::context::{ContextPlan, PackStats, Summary};
use crate::kaniko::args::Build;

/// How long each phase took.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    pub upload: Duration,
    pub queue: Duration,
    pub build: Duration,
    pub total: Duration,
}

/// Facts gathered while the build runs.
#[derive(Debug, Default)]
pub struct Report {
    pub pod: String,
    pub namespace: String,
    pub context_key: String,
    /// Bytes of the packed (gzip) context.
    pub context_bytes: u64,
    pub pack: Option<PackStats>,
    pub timings: Timings,
    summary: Summary,
    transport: String,
}

impl Report {
    pub fn new(plan: &Plan, context: &ContextPlan) -> Self {
        let transport = match &plan.transport {
            Transport::S3 { presigned: true, bucket, .. } => format!("S3 presigned URL (bucket {bucket})"),
            Transport::S3 { bucket, .. } => format!("S3 (bucket {bucket})"),
            Transport::Stream => "streamed into the pod".to_string(),
        };
        Self {
            namespace: plan.pod.namespace.clone(),
            summary: context.summary().clone(),
            transport,
            ..Default::default()
        }
    }

    /// Sets the output variables and attaches the summary.
    pub fn finish(&self, agent: &Agent, env: &Env, build: &Build, digest: &str) {
        let refs: Vec<String> = build.destinations.iter().map(|d| d.with_digest(digest)).collect();
        let output = VariableOptions { is_output: true, is_secret: false };
        agent.set_variable("imageDigest", digest, output);
        agent.set_variable("imageRef", refs.first().map(String::as_str).unwrap_or_default(), output);
        agent.set_variable("imageRefs", &refs.join(","), output);
        agent.set_variable("contextBytes", &self.context_bytes.to_string(), output);
        agent.set_variable("contextKey", &self.context_key, output);
        tracing::info!("Built {} ({digest})", refs.join(", "));

        let path = env.temp_dir().join(format!("azp-kube-kaniko-{}.md", self.pod));
        agent.attach_summary(&path, &self.markdown(&refs, digest));
    }

    fn markdown(&self, refs: &[String], digest: &str) -> String {
        let mib = |bytes: u64| format!("{:.1} MiB", bytes as f64 / 1048576.0);
        let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
        let mut md = String::from("### Kaniko build\n\n| | |\n|---|---|\n");
        let mut row = |name: &str, value: String| {
            let _ = writeln!(md, "| {name} | {} |", value.replace('|', "\\|"));
        };
        row("Image digest", format!("`{digest}`"));
        for reference in refs {
            row("Image", format!("`{reference}`"));
        }
        row("Pod", format!("`{}/{}`", self.namespace, self.pod));
        row("Context transport", self.transport.clone());
        row(
            "Context before .dockerignore",
            format!(
                "{} files, {}",
                self.summary.included_files + self.summary.excluded_files,
                mib(self.summary.included_bytes + self.summary.excluded_bytes)
            ),
        );
        row("Context sent", format!("{} files, {}", self.summary.included_files, mib(self.summary.included_bytes)));
        row("Packed context (gzip)", mib(self.context_bytes));
        if !self.context_key.is_empty() {
            row("Upload", secs(self.timings.upload));
        }
        row("Waiting for the pod", secs(self.timings.queue));
        row("Build", secs(self.timings.build));
        row("Total", secs(self.timings.total));
        md
    }
}
