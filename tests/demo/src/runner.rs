//! Runs a pipeline as Azure DevOps would: stages in dependency order, their
//! jobs in dependency order, each job's steps in order. A `task:` step runs
//! exactly as the agent runs it: the task folder `tasks/<Name>V<Major>` staged
//! with `run.js` and the binary, `node run.js` with `INPUT_*` and the
//! variables in its environment, its output read with the agent's grammar
//! (`azp-harness`). A failed step fails its job; later steps, jobs and
//! stages whose condition is `succeeded()` are Skipped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use azp_harness::{SecretMasker, StagedTask, StepResult, TaskRun, mangle, parse_line};

use crate::macros::{Outputs, Vars, expand};
use crate::render::Renderer;
use crate::yaml::{Condition, Job, Pipeline, Refusal, Stage, Step, VarDef, VarValue};

/// A topological order of `(name, dependencies)`, stable in file order;
/// `None` on a cycle.
pub fn order(items: &[(String, Vec<String>)]) -> Option<Vec<usize>> {
    let mut done: Vec<usize> = Vec::new();
    while done.len() < items.len() {
        let next = (0..items.len()).find(|i| {
            !done.contains(i)
                && items[*i].1.iter().all(|d| {
                    done.iter().any(|j| items[*j].0.eq_ignore_ascii_case(d))
                        || !items.iter().any(|(n, _)| n.eq_ignore_ascii_case(d))
                })
        })?;
        done.push(next);
    }
    Some(done)
}

/// Where each step's task folder comes from.
#[derive(Debug, Clone)]
pub enum TaskFolders {
    /// The repository's `tasks/<Name>V<n>`, staged with this `azp-kube` binary.
    Staged { binary: PathBuf },
    /// An unpacked VSIX: each task runs from its own folder, with its own binary, as shipped.
    Packaged { root: PathBuf },
}

/// Where and how the steps run.
pub struct Runner {
    /// The task folders the steps run from.
    pub tasks: TaskFolders,
    /// The repository (holds `tasks/`).
    pub repo: PathBuf,
    /// The checkout the steps see (`Build.SourcesDirectory`).
    pub sources: PathBuf,
    /// Environment of the agent (world endpoints, or the user's own).
    pub env: Vec<(String, String)>,
    /// Variables defined outside the YAML, as in the pipeline's settings.
    pub variables: Vec<(String, String)>,
    pub build_id: u64,
    pub branch: String,
    /// Service connections, by the name a pipeline uses.
    pub connections: Vec<ServiceConnection>,
}

/// A service connection as the agent exports it to a step whose
/// `connectedService:*` input names it: the input holds its id, and its
/// `ENDPOINT_*` variables are in the environment.
#[derive(Debug, Clone)]
pub struct ServiceConnection {
    pub name: String,
    pub id: String,
    pub env: Vec<(String, String)>,
}

impl ServiceConnection {
    /// A Kubernetes service connection of the Kubeconfig kind.
    pub fn kubeconfig(name: &str, id: &str, kubeconfig: &str, context: &str, server: &str) -> Self {
        let auth = serde_json::json!({"parameters": {"kubeconfig": kubeconfig, "clusterContext": context}, "scheme": "Kubernetes"});
        let env = [
            (format!("ENDPOINT_URL_{id}"), server.to_string()),
            (format!("ENDPOINT_AUTH_{id}"), auth.to_string()),
            (format!("ENDPOINT_AUTH_SCHEME_{id}"), "Kubernetes".to_string()),
            (format!("ENDPOINT_AUTH_PARAMETER_{id}_KUBECONFIG"), kubeconfig.to_string()),
            (format!("ENDPOINT_AUTH_PARAMETER_{id}_CLUSTERCONTEXT"), context.to_string()),
            (format!("ENDPOINT_DATA_{id}_AUTHORIZATIONTYPE"), "Kubeconfig".to_string()),
        ];
        Self { name: name.to_string(), id: id.to_string(), env: env.into_iter().collect() }
    }
}

/// How the run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub stages: Vec<(String, StepResult)>,
    pub result: StepResult,
    pub errors: Vec<String>,
    pub outputs: Outputs,
}

/// Checks before anything runs, as Azure DevOps does when it compiles the
/// pipeline: every task exists as `tasks/<Name>V<Major>`, and every service
/// connection a step names exists.
pub fn check_tasks(pipeline: &Pipeline, repo: &Path, connections: &[ServiceConnection]) -> Result<(), Refusal> {
    for step in pipeline.stages.iter().flat_map(|s| &s.jobs).flat_map(|j| &j.steps) {
        let folder = repo.join("tasks").join(format!("{}V{}", step.task, step.major));
        let Ok(text) = std::fs::read_to_string(folder.join("task.json")) else {
            return Err(Refusal {
                line: step.line,
                feature: format!("task: {}@{}", step.task, step.major),
                reason: "this task is not in this repository (it has KanikoBuild@1 and MulticlusterHelm@1)".into(),
            });
        };
        let task: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        for (name, value) in &step.inputs {
            let connected = connected_service(&task, name);
            let known = connections.iter().any(|c| c.name.eq_ignore_ascii_case(value.trim()));
            if connected && !value.trim().is_empty() && !value.contains("$(") && !known {
                let names: Vec<&str> = connections.iter().map(|c| c.name.as_str()).collect();
                return Err(Refusal {
                    line: step.line,
                    feature: format!("input {name}: {value}"),
                    reason: format!(
                        "no service connection of that name (this run has: {})",
                        if names.is_empty() { "none".to_string() } else { names.join(", ") }
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Whether task.json declares `input` as a `connectedService:*` input.
fn connected_service(task: &serde_json::Value, input: &str) -> bool {
    task["inputs"].as_array().into_iter().flatten().any(|i| {
        i["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(input))
            && i["type"].as_str().is_some_and(|t| t.starts_with("connectedService:"))
    })
}

fn rank(result: StepResult) -> u8 {
    match result {
        StepResult::Succeeded => 0,
        StepResult::SucceededWithIssues => 1,
        StepResult::Skipped => 2,
        StepResult::Canceled => 3,
        StepResult::Failed => 4,
    }
}

fn ok(result: StepResult) -> bool {
    matches!(result, StepResult::Succeeded | StepResult::SucceededWithIssues)
}

/// Whether a stage or job runs, from its dependencies' results.
fn runs_after(condition: Condition, deps: &[StepResult]) -> bool {
    match condition {
        Condition::Succeeded => deps.iter().all(|r| ok(*r)),
        Condition::Failed => deps.contains(&StepResult::Failed),
        Condition::SucceededOrFailed => deps.iter().all(|r| ok(*r) || *r == StepResult::Failed),
        Condition::Always => true,
    }
}

static CANCELED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    CANCELED.store(true, Ordering::SeqCst);
}

/// Ctrl-C cancels the run as the Cancel button does: the running step gets
/// the signal (it is in the terminal's process group) and cleans up, and
/// nothing after it starts. The demo itself keeps going to stop the world.
pub fn cancel_on_interrupt() {
    // SAFETY: the handler only stores to an atomic; a handler (not SIG_IGN)
    // is reset to the default in the children at exec.
    unsafe {
        libc::signal(libc::SIGINT, on_interrupt as *const () as libc::sighandler_t);
    }
}

fn canceled() -> bool {
    CANCELED.load(Ordering::SeqCst)
}

/// Runs stages or jobs `(name, dependsOn, condition)` in dependency order:
/// `run(index, None)` when the condition holds, `run(index, Some(why))` when
/// it is skipped. The results, in file order.
fn schedule(
    items: &[(&str, &[String], Condition)],
    mut run: impl FnMut(usize, Option<String>) -> StepResult,
) -> Vec<StepResult> {
    let named: Vec<(String, Vec<String>)> = items.iter().map(|(n, d, _)| (n.to_string(), d.to_vec())).collect();
    let mut results: Vec<Option<StepResult>> = vec![None; items.len()];
    for index in order(&named).expect("checked when parsed") {
        let (_, depends_on, condition) = items[index];
        let deps: Vec<(&str, StepResult)> = depends_on
            .iter()
            .filter_map(|d| items.iter().position(|(n, _, _)| n.eq_ignore_ascii_case(d)))
            .map(|i| (items[i].0, results[i].unwrap_or(StepResult::Skipped)))
            .collect();
        let dep_results: Vec<StepResult> = deps.iter().map(|(_, r)| *r).collect();
        let skipped = if canceled() {
            Some("the run was canceled".to_string())
        } else {
            (!runs_after(condition, &dep_results)).then(|| {
                let not_ok: Vec<&str> = deps.iter().filter(|(_, r)| !ok(*r)).map(|(n, _)| *n).collect();
                skip_reason(condition, &not_ok)
            })
        };
        results[index] = Some(run(index, skipped));
    }
    results.into_iter().map(|r| r.unwrap_or(StepResult::Skipped)).collect()
}

/// Whether a step runs, from its job's status so far.
fn step_runs(condition: Condition, job_status: StepResult) -> bool {
    match condition {
        Condition::Succeeded => job_status != StepResult::Failed,
        Condition::Failed => job_status == StepResult::Failed,
        Condition::SucceededOrFailed | Condition::Always => true,
    }
}

/// The worst of some results; Skipped when nothing ran.
fn combine(results: &[StepResult]) -> StepResult {
    let ran: Vec<StepResult> = results.iter().copied().filter(|r| *r != StepResult::Skipped).collect();
    ran.into_iter().max_by_key(|r| rank(*r)).unwrap_or(StepResult::Skipped)
}

impl Runner {
    fn predefined(&self) -> Vars {
        let mut vars = Vars::new();
        let sources = self.sources.display().to_string();
        for (name, value) in [
            ("Build.BuildId", self.build_id.to_string()),
            ("Build.BuildNumber", format!("demo.{}", self.build_id)),
            ("Build.SourceBranch", format!("refs/heads/{}", self.branch)),
            ("Build.SourceBranchName", self.branch.clone()),
            ("Build.SourcesDirectory", sources.clone()),
            ("Build.Repository.LocalPath", sources.clone()),
            ("System.DefaultWorkingDirectory", sources),
            ("System.JobAttempt", "1".into()),
            ("Agent.OS", "Linux".into()),
        ] {
            vars.set(name, &value);
        }
        for (name, value) in &self.variables {
            vars.set(name, value);
        }
        vars
    }

    /// Defines variables in `scope`: text expanded with what is defined so
    /// far, output references resolved (empty when the output is missing or
    /// the stage or job is not a dependency, as in Azure DevOps).
    fn define(
        &self,
        defs: &[VarDef],
        scope: &mut Vars,
        outputs: &Outputs,
        stage: &str,
        deps: &[String],
        out: &mut Renderer,
    ) {
        for def in defs {
            let value = match &def.value {
                VarValue::Text(text) => scope.expand(text),
                VarValue::Output(reference) => {
                    let (source, is_dep) = match reference {
                        crate::macros::OutputRef::StageJob { stage: s, .. }
                        | crate::macros::OutputRef::Stage { stage: s, .. } => {
                            (s.clone(), deps.iter().any(|d| d.eq_ignore_ascii_case(s)))
                        }
                        crate::macros::OutputRef::Job { job, .. } => {
                            (job.clone(), deps.iter().any(|d| d.eq_ignore_ascii_case(job)))
                        }
                    };
                    if !is_dep {
                        out.warning(
                            4,
                            &format!(
                                "line {}: variable {} refers to {source}, which is not in dependsOn: it is empty (as in Azure DevOps)",
                                def.line, def.name
                            ),
                        );
                        String::new()
                    } else {
                        match outputs.resolve(reference, stage) {
                            Some(value) => value.to_string(),
                            None => {
                                out.warning(
                                    4,
                                    &format!(
                                        "line {}: variable {}: no such output variable; it is empty",
                                        def.line, def.name
                                    ),
                                );
                                String::new()
                            }
                        }
                    }
                }
            };
            scope.set(&def.name, &value);
        }
    }

    /// Runs the pipeline, rendering as it goes.
    pub fn run(&self, pipeline: &Pipeline, out: &mut Renderer) -> RunReport {
        let mut report = RunReport {
            stages: Vec::new(),
            result: StepResult::Succeeded,
            errors: Vec::new(),
            outputs: Outputs::default(),
        };
        let mut root = self.predefined();
        self.define(&pipeline.variables, &mut root, &Outputs::default(), "", &[], out);
        let items: Vec<(&str, &[String], Condition)> =
            pipeline.stages.iter().map(|s| (s.name.as_str(), s.depends_on.as_slice(), s.condition)).collect();
        let results = schedule(&items, |index, skipped| {
            let stage = &pipeline.stages[index];
            match skipped {
                None => self.run_stage(stage, &root, &mut report, out),
                Some(why) => {
                    out.stage_skipped(&stage.name, &why);
                    StepResult::Skipped
                }
            }
        });
        for (stage, result) in pipeline.stages.iter().zip(results) {
            report.stages.push((stage.name.clone(), result));
        }
        let worst = report.stages.iter().map(|(_, r)| *r).max_by_key(|r| rank(*r)).unwrap_or(StepResult::Succeeded);
        report.result = match worst {
            _ if canceled() => StepResult::Canceled,
            StepResult::Skipped => StepResult::Succeeded,
            other => other,
        };
        report
    }

    fn run_stage(&self, stage: &Stage, root: &Vars, report: &mut RunReport, out: &mut Renderer) -> StepResult {
        out.stage_start(&stage.name, stage.display_name.as_deref());
        let mut scope = root.clone();
        scope.set("System.StageName", &stage.name);
        let outputs = report.outputs.clone();
        self.define(&stage.variables, &mut scope, &outputs, &stage.name, &stage.depends_on, out);
        let items: Vec<(&str, &[String], Condition)> =
            stage.jobs.iter().map(|j| (j.name.as_str(), j.depends_on.as_slice(), j.condition)).collect();
        let results = schedule(&items, |index, skipped| {
            let job = &stage.jobs[index];
            match skipped {
                None => self.run_job(stage, job, &scope, report, out),
                Some(why) => {
                    out.job_skipped(&job.name, &why);
                    StepResult::Skipped
                }
            }
        });
        let result = combine(&results);
        let (mark, word) = crate::render::result_word(result);
        out.title(&format!("━━ Stage {}: {mark} {word}", stage.name));
        result
    }

    fn run_job(
        &self,
        stage: &Stage,
        job: &Job,
        stage_scope: &Vars,
        report: &mut RunReport,
        out: &mut Renderer,
    ) -> StepResult {
        let started = Instant::now();
        out.job_start(&job.name, job.display_name.as_deref());
        let mut scope = stage_scope.clone();
        scope.set("System.JobName", &job.name);
        scope.set("System.JobDisplayName", job.display_name.as_deref().unwrap_or(&job.name));
        let outputs = report.outputs.clone();
        let mut deps = stage.depends_on.clone();
        deps.extend(job.depends_on.iter().cloned());
        self.define(&job.variables, &mut scope, &outputs, &stage.name, &deps, out);
        let mut status = StepResult::Succeeded;
        let mut results = Vec::new();
        for step in &job.steps {
            let display = self.display_name(step, &scope, &report.outputs);
            if canceled() || !step_runs(step.condition, status) {
                out.step_skipped(&display);
                results.push(StepResult::Skipped);
                continue;
            }
            let mut result = self.run_step(step, &display, &mut scope, stage, job, report, out);
            if canceled() && result == StepResult::Failed {
                result = StepResult::Canceled;
            }
            if result == StepResult::Failed && step.continue_on_error {
                result = StepResult::SucceededWithIssues;
            }
            if rank(result) > rank(status) && result != StepResult::Skipped {
                status = result;
            }
            results.push(result);
        }
        let result = combine(&results);
        out.job_end(&job.name, result, started.elapsed());
        result
    }

    /// The step's name in the log: `displayName`, else the task's
    /// `instanceNameFormat` with its inputs filled in.
    fn display_name(&self, step: &Step, scope: &Vars, outputs: &Outputs) -> String {
        if let Some(name) = &step.display_name {
            return expand_all(name, scope, outputs);
        }
        let format = self.task_json(step)["instanceNameFormat"].as_str().unwrap_or(&step.task).to_string();
        let inputs: Vars = {
            let mut v = Vars::new();
            for (key, value) in &step.inputs {
                v.set(key, &expand_all(value, scope, outputs));
            }
            v
        };
        let name = expand(&format, |n| Some(inputs.get(n).unwrap_or_default().to_string()));
        name.lines().next().unwrap_or_default().to_string()
    }

    fn task_dir(&self, step: &Step) -> PathBuf {
        self.repo.join("tasks").join(format!("{}V{}", step.task, step.major))
    }

    fn task_json(&self, step: &Step) -> serde_json::Value {
        let text = std::fs::read_to_string(self.task_dir(step).join("task.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn run_step(
        &self,
        step: &Step,
        display: &str,
        scope: &mut Vars,
        stage: &Stage,
        job: &Job,
        report: &mut RunReport,
        out: &mut Renderer,
    ) -> StepResult {
        let started = Instant::now();
        let task = self.task_json(step);
        let version = &task["version"];
        let banner = vec![
            ("Task".to_string(), task["friendlyName"].as_str().unwrap_or(&step.task).to_string()),
            ("Description".to_string(), task["description"].as_str().unwrap_or_default().to_string()),
            ("Version".to_string(), format!("{}.{}.{}", version["Major"], version["Minor"], version["Patch"])),
            ("Author".to_string(), task["author"].as_str().unwrap_or_default().to_string()),
        ];
        out.step_start(display, &banner);
        let folder = format!("{}V{}", step.task, step.major);
        let staged;
        let task_folder = match &self.tasks {
            TaskFolders::Staged { binary } => {
                staged = StagedTask::new(&folder, binary);
                staged.path().to_path_buf()
            }
            TaskFolders::Packaged { root } => azp_harness::packaged_task(root, &folder)
                .unwrap_or_else(|| panic!("the package in {} has no {folder}", root.display())),
        };
        let timeout = Duration::from_secs(60 * step.timeout_minutes.unwrap_or(60));
        let mut run = TaskRun::new(&task_folder).sources(&self.sources).timeout(timeout);
        for (name, value) in &self.env {
            run = run.env(name, value);
        }
        // The agent passes every (non-secret) variable as an environment variable.
        for (name, value) in scope.iter() {
            run = run.env(&mangle(name), value);
        }
        for (name, value) in &step.inputs {
            let mut value = expand_all(value, scope, &report.outputs);
            let connection = self.connections.iter().find(|c| c.name.eq_ignore_ascii_case(value.trim()));
            if let Some(connection) = connection.filter(|_| connected_service(&task, name)) {
                value = connection.id.clone();
                for (key, v) in &connection.env {
                    run = run.env(key, v);
                }
            }
            run = run.input(name, &value);
        }
        for (name, value) in &step.env {
            run = run.env(name, &expand_all(value, scope, &report.outputs));
        }
        let mut running = run.spawn();
        // Live: the lines so far, processed as the agent does (commands hidden,
        // issues shown, secrets masked as soon as they are registered).
        let mut seen = 0;
        let mut shown = 0;
        let mut masker = SecretMasker::default();
        loop {
            let poll = Instant::now();
            let exited = {
                let period = Duration::from_millis(150);
                !running.wait_for_line(|_| false, period) && poll.elapsed() < period
            };
            let lines = running.lines();
            for line in &lines[seen..] {
                match parse_line(line) {
                    Some(command) => match command.name.as_str() {
                        "task.setsecret" => masker.add(&command.data),
                        "task.setvariable"
                            if command.property("issecret").is_some_and(|v| v.eq_ignore_ascii_case("true")) =>
                        {
                            masker.add(&command.data)
                        }
                        "task.logissue" => {
                            let kind = command.property("type").unwrap_or("").to_ascii_lowercase();
                            out.step_line(&masker.mask(&format!("##[{kind}]{}", command.data)));
                            shown += 1;
                        }
                        _ => {}
                    },
                    None => {
                        out.step_line(&masker.mask(line));
                        shown += 1;
                    }
                }
            }
            seen = lines.len();
            if exited {
                break;
            }
        }
        let outcome = running.wait();
        for line in outcome.log.iter().skip(shown) {
            out.step_line(line);
        }
        // Output variables: `$(step.var)` for later steps of this job, and the
        // outputs of the job for dependent jobs and stages.
        for (name, variable) in &outcome.variables {
            if variable.is_output {
                if let Some(step_name) = &step.name {
                    scope.set(&format!("{step_name}.{name}"), &variable.value);
                    report.outputs.set(&stage.name, &job.name, step_name, name, &variable.value);
                }
            } else {
                scope.set(name, &variable.value);
            }
        }
        out.step_end(display, outcome.result, started.elapsed(), &outcome.issues);
        for (_, content) in &outcome.summaries {
            if let Some(markdown) = content {
                out.summary(markdown);
            }
        }
        for issue in outcome.errors() {
            report.errors.push(format!("{} › {} › {}: {}", stage.name, job.name, display, issue.message));
        }
        if outcome.result == StepResult::Failed && outcome.errors().is_empty() {
            let why = outcome.result_message.clone().unwrap_or_else(|| "the step failed".into());
            report.errors.push(format!("{} › {} › {}: {why}", stage.name, job.name, display));
        }
        outcome.result
    }
}

/// `$(var)`, `$(step.var)` and `$(Stage.Job.step.var)`.
fn expand_all(text: &str, scope: &Vars, outputs: &Outputs) -> String {
    expand(text, |name| scope.get(name).or_else(|| outputs.by_macro(name)).map(str::to_string))
}

fn skip_reason(condition: Condition, not_ok: &[&str]) -> String {
    match condition {
        Condition::Failed => "condition failed() is false: no dependency failed".into(),
        _ if not_ok.is_empty() => "its condition is false".into(),
        _ => format!("condition succeeded() is false: {} did not succeed", not_ok.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_stable_and_detects_cycles() {
        let items = |list: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
            list.iter().map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect())).collect()
        };
        assert_eq!(order(&items(&[("A", &[]), ("B", &["A"]), ("C", &[])])), Some(vec![0, 1, 2]));
        assert_eq!(order(&items(&[("B", &["A"]), ("A", &[])])), Some(vec![1, 0]));
        assert_eq!(order(&items(&[("A", &["B"]), ("B", &["A"])])), None);
    }

    #[test]
    fn conditions() {
        use StepResult::*;
        assert!(runs_after(Condition::Succeeded, &[Succeeded, SucceededWithIssues]));
        assert!(!runs_after(Condition::Succeeded, &[Failed]));
        assert!(!runs_after(Condition::Succeeded, &[Skipped]));
        assert!(runs_after(Condition::Failed, &[Failed]));
        assert!(!runs_after(Condition::Failed, &[Succeeded]));
        assert!(runs_after(Condition::Always, &[Skipped]));
        assert!(!step_runs(Condition::Succeeded, Failed));
        assert!(step_runs(Condition::Always, Failed));
        assert_eq!(combine(&[Succeeded, Skipped, Failed]), Failed);
        assert_eq!(combine(&[Skipped]), Skipped);
    }
}
