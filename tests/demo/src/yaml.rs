//! The Azure Pipelines YAML subset the local runner understands: `stages:` →
//! `jobs:` → `steps:` of `task:` steps, `variables:` at pipeline, stage and
//! job level, `dependsOn`, and the status conditions. Everything else is
//! either ignored with a note (`trigger`, `pr`, `pool`, `name`: they choose
//! when and where a run happens, not what it does) or refused with the line
//! and the feature. Nothing is skipped silently.

use std::fmt;

use serde_saphyr::granit_parser::{Event, Parser, Span, SpannedEventReceiver};

use crate::macros::OutputRef;

/// A YAML node with the line it starts on (1-based).
#[derive(Debug, Clone)]
pub enum Node {
    Scalar { value: String, line: usize },
    Seq { items: Vec<Node>, line: usize },
    Map { entries: Vec<(String, usize, Node)>, line: usize },
}

impl Node {
    pub fn line(&self) -> usize {
        match self {
            Node::Scalar { line, .. } | Node::Seq { line, .. } | Node::Map { line, .. } => *line,
        }
    }
}

/// Why a pipeline file is refused: the line and the feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub feature: String,
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.feature, self.reason)
    }
}

impl std::error::Error for Refusal {}

fn refuse<T>(line: usize, feature: impl Into<String>, reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal { line, feature: feature.into(), reason: reason.into() })
}

const UNSUPPORTED: &str =
    "not supported by the local runner (it runs task: steps of KanikoBuild@1 and MulticlusterHelm@1)";

/// Builds [`Node`]s from the parser's events.
struct Builder {
    stack: Vec<(Node, Option<(String, usize)>)>,
    pending_key: Vec<Option<(String, usize)>>,
    root: Option<Node>,
    error: Option<Refusal>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Node::Seq { items, .. }, _)) => items.push(node),
            Some((Node::Map { entries, .. }, _)) => {
                let slot = self.pending_key.last_mut().expect("a key slot per mapping");
                match slot.take() {
                    None => match node {
                        Node::Scalar { value, line } => *slot = Some((value, line)),
                        other => {
                            self.error.get_or_insert(Refusal {
                                line: other.line(),
                                feature: "complex mapping key".into(),
                                reason: "keys must be plain text".into(),
                            });
                        }
                    },
                    Some((key, line)) => entries.push((key, line, node)),
                }
            }
            Some((Node::Scalar { .. }, _)) => unreachable!("scalars hold no children"),
        }
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, event: Event<'input>, span: Span) {
        let line = span.start.line();
        let anchor = |id: usize, error: &mut Option<Refusal>| {
            if id > 0 {
                error.get_or_insert(Refusal {
                    line,
                    feature: "YAML anchor".into(),
                    reason: "Azure Pipelines does not support anchors and aliases".into(),
                });
            }
        };
        match event {
            Event::Scalar(value, _, id, _) => {
                anchor(id, &mut self.error);
                self.push_value(Node::Scalar { value: value.into_owned(), line });
            }
            Event::SequenceStart(_, id, _) => {
                anchor(id, &mut self.error);
                self.stack.push((Node::Seq { items: Vec::new(), line }, None));
            }
            Event::MappingStart(_, id, _) => {
                anchor(id, &mut self.error);
                self.stack.push((Node::Map { entries: Vec::new(), line }, None));
                self.pending_key.push(None);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    if matches!(node, Node::Map { .. }) {
                        self.pending_key.pop();
                    }
                    self.push_value(node);
                }
            }
            Event::Alias(_) => {
                self.error.get_or_insert(Refusal {
                    line,
                    feature: "YAML alias".into(),
                    reason: "Azure Pipelines does not support anchors and aliases".into(),
                });
                self.push_value(Node::Scalar { value: String::new(), line });
            }
            _ => {}
        }
    }
}

/// Parses YAML text into a [`Node`] tree with lines.
pub fn parse_nodes(text: &str) -> Result<Node, Refusal> {
    let mut builder = Builder { stack: Vec::new(), pending_key: Vec::new(), root: None, error: None };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let line = e.marker().line();
        return refuse(line, "YAML syntax", e.info().to_string());
    }
    if let Some(error) = builder.error {
        return Err(error);
    }
    builder.root.ok_or(Refusal { line: 1, feature: "empty file".into(), reason: "the pipeline file is empty".into() })
}

/// When a stage, job or step runs, given how the ones before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `succeeded()`, the default.
    Succeeded,
    /// `always()`.
    Always,
    /// `failed()`.
    Failed,
    /// `succeededOrFailed()`.
    SucceededOrFailed,
}

/// A variable's definition: a text (with `$(…)` macros) or an output
/// variable of an earlier job (`$[ stageDependencies… ]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarValue {
    Text(String),
    Output(OutputRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarDef {
    pub name: String,
    pub value: VarValue,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub variables: Vec<VarDef>,
    pub stages: Vec<Stage>,
    /// What is accepted but ignored, with its line.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub display_name: Option<String>,
    /// Resolved: an absent `dependsOn` means the stage before.
    pub depends_on: Vec<String>,
    pub condition: Condition,
    pub variables: Vec<VarDef>,
    pub jobs: Vec<Job>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub display_name: Option<String>,
    pub depends_on: Vec<String>,
    pub condition: Condition,
    pub variables: Vec<VarDef>,
    pub steps: Vec<Step>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Step {
    /// The task's name, such as `KanikoBuild`.
    pub task: String,
    pub major: u32,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub inputs: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub condition: Condition,
    pub continue_on_error: bool,
    pub timeout_minutes: Option<u64>,
    pub line: usize,
}

/// Parses and checks a pipeline file.
pub fn parse(text: &str) -> Result<Pipeline, Refusal> {
    let root = parse_nodes(text)?;
    check_template_expressions(&root)?;
    let Node::Map { entries, line } = &root else {
        return refuse(root.line(), "pipeline", "the file must be a mapping with a stages: key");
    };
    let mut pipeline = Pipeline { variables: Vec::new(), stages: Vec::new(), notes: Vec::new() };
    let mut stages = None;
    for (key, key_line, value) in entries {
        match key.as_str() {
            "stages" => stages = Some(value),
            "variables" => pipeline.variables = variables(value)?,
            "trigger" | "pr" => pipeline.notes.push(format!(
                "line {key_line}: {key}: ignored; it decides when Azure DevOps starts a run, and this run is started by hand"
            )),
            "pool" => pipeline.notes.push(format!("line {key_line}: pool: ignored; every job runs on this machine")),
            "name" => pipeline
                .notes
                .push(format!("line {key_line}: name: ignored; the run number format only names runs in Azure DevOps")),
            "jobs" | "steps" => {
                return refuse(
                    *key_line,
                    format!("{key}: at the top level"),
                    "write the pipeline with stages: → jobs: → steps:",
                );
            }
            "resources" | "parameters" | "extends" | "schedules" | "template" | "lockBehavior" => {
                return refuse(*key_line, format!("{key}:"), UNSUPPORTED);
            }
            other => return refuse(*key_line, format!("{other}:"), "unknown pipeline key"),
        }
    }
    let Some(stages_node) = stages else { return refuse(*line, "pipeline", "a stages: list is required") };
    let Node::Seq { items, .. } = stages_node else {
        return refuse(stages_node.line(), "stages:", "must be a list of stages");
    };
    let mut previous: Option<String> = None;
    for item in items {
        let stage = stage(item, previous.as_deref(), &mut pipeline.notes)?;
        if pipeline.stages.iter().any(|s| s.name.eq_ignore_ascii_case(&stage.name)) {
            return refuse(stage.line, "stage", format!("the stage name {} is used twice", stage.name));
        }
        previous = Some(stage.name.clone());
        pipeline.stages.push(stage);
    }
    if pipeline.stages.is_empty() {
        return refuse(stages_node.line(), "stages:", "the list is empty");
    }
    check_dependencies(
        pipeline.stages.iter().map(|s| (s.name.as_str(), s.line, s.depends_on.as_slice())).collect(),
        "stage",
    )?;
    for stage in &pipeline.stages {
        check_dependencies(
            stage.jobs.iter().map(|j| (j.name.as_str(), j.line, j.depends_on.as_slice())).collect(),
            "job",
        )?;
    }
    Ok(pipeline)
}

/// `${{ }}` is expanded when Azure DevOps compiles the pipeline, from
/// parameters and templates the runner does not have: refused everywhere.
fn check_template_expressions(node: &Node) -> Result<(), Refusal> {
    let found = |text: &str, line: usize| {
        if text.contains("${{") {
            refuse(line, "template expression ${{ }}", "compile-time expressions are not supported by the local runner")
        } else {
            Ok(())
        }
    };
    match node {
        Node::Scalar { value, line } => found(value, *line),
        Node::Seq { items, .. } => items.iter().try_for_each(check_template_expressions),
        Node::Map { entries, .. } => entries.iter().try_for_each(|(key, line, value)| {
            found(key, *line)?;
            check_template_expressions(value)
        }),
    }
}

fn scalar<'a>(node: &'a Node, what: &str) -> Result<&'a str, Refusal> {
    match node {
        Node::Scalar { value, .. } => Ok(value),
        other => refuse(other.line(), what, "must be a single value"),
    }
}

fn identifier(node: &Node, what: &str) -> Result<String, Refusal> {
    let name = scalar(node, what)?;
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return refuse(node.line(), what, format!("{name:?} must be letters, digits and underscores"));
    }
    Ok(name.to_string())
}

fn names(node: &Node, what: &str) -> Result<Vec<String>, Refusal> {
    match node {
        Node::Scalar { .. } => Ok(vec![identifier(node, what)?]),
        Node::Seq { items, .. } => items.iter().map(|i| identifier(i, what)).collect(),
        Node::Map { line, .. } => refuse(*line, what, "must be a name or a list of names"),
    }
}

fn condition(node: &Node) -> Result<Condition, Refusal> {
    let text = scalar(node, "condition:")?;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    match compact.to_ascii_lowercase().as_str() {
        "succeeded()" => Ok(Condition::Succeeded),
        "always()" => Ok(Condition::Always),
        "failed()" => Ok(Condition::Failed),
        "succeededorfailed()" => Ok(Condition::SucceededOrFailed),
        _ => refuse(
            node.line(),
            format!("condition: {text}"),
            "only succeeded(), failed(), succeededOrFailed() and always() are supported by the local runner",
        ),
    }
}

fn variables(node: &Node) -> Result<Vec<VarDef>, Refusal> {
    let mut defs = Vec::new();
    match node {
        Node::Map { entries, .. } => {
            for (name, line, value) in entries {
                defs.push(var_def(name, *line, value)?);
            }
        }
        Node::Seq { items, .. } => {
            for item in items {
                let Node::Map { entries, line } = item else {
                    return refuse(item.line(), "variables:", "each item must be - name: … value: …");
                };
                let (mut name, mut value) = (None, None);
                for (key, key_line, v) in entries {
                    match key.as_str() {
                        "name" => name = Some(scalar(v, "name:")?.to_string()),
                        "value" => value = Some(v),
                        "readonly" => {}
                        "group" => {
                            return refuse(
                                *key_line,
                                "variables: - group:",
                                "variable groups are not supported by the local runner",
                            );
                        }
                        "template" => {
                            return refuse(
                                *key_line,
                                "variables: - template:",
                                "templates are not supported by the local runner",
                            );
                        }
                        other => return refuse(*key_line, format!("variables: - {other}:"), "unknown variable key"),
                    }
                }
                let Some(name) = name else { return refuse(*line, "variables:", "an item without name:") };
                let empty = Node::Scalar { value: String::new(), line: *line };
                defs.push(var_def(&name, *line, value.unwrap_or(&empty))?);
            }
        }
        Node::Scalar { line, .. } => return refuse(*line, "variables:", "must be a mapping or a list"),
    }
    Ok(defs)
}

fn var_def(name: &str, line: usize, value: &Node) -> Result<VarDef, Refusal> {
    let text = scalar(value, &format!("variable {name}"))?;
    let value = if text.trim_start().starts_with("$[") {
        match crate::macros::parse_runtime_expression(text) {
            Some(output) => VarValue::Output(output),
            None => {
                return refuse(
                    value.line(),
                    format!("runtime expression {}", text.trim()),
                    "only $[ stageDependencies.<stage>.<job>.outputs['<step>.<var>'] ], \
                     $[ dependencies.<job>.outputs['<step>.<var>'] ] and \
                     $[ dependencies.<stage>.outputs['<job>.<step>.<var>'] ] are supported by the local runner",
                );
            }
        }
    } else {
        VarValue::Text(text.to_string())
    };
    Ok(VarDef { name: name.to_string(), value, line })
}

fn pool_note(notes: &mut Vec<String>, line: usize, what: &str) {
    notes.push(format!("line {line}: pool: ignored for {what}; it runs on this machine"));
}

fn stage(node: &Node, previous: Option<&str>, notes: &mut Vec<String>) -> Result<Stage, Refusal> {
    let Node::Map { entries, line } = node else {
        return refuse(node.line(), "stages:", "each stage must be a mapping");
    };
    let mut stage = Stage {
        name: String::new(),
        display_name: None,
        depends_on: previous.map(str::to_string).into_iter().collect(),
        condition: Condition::Succeeded,
        variables: Vec::new(),
        jobs: Vec::new(),
        line: *line,
    };
    let mut jobs = None;
    for (key, key_line, value) in entries {
        match key.as_str() {
            "stage" => stage.name = identifier(value, "stage:")?,
            "displayName" => stage.display_name = Some(scalar(value, "displayName:")?.to_string()),
            "dependsOn" => stage.depends_on = names(value, "dependsOn:")?,
            "condition" => stage.condition = condition(value)?,
            "variables" => stage.variables = variables(value)?,
            "jobs" => jobs = Some(value),
            "pool" => pool_note(notes, *key_line, "a stage"),
            "template" => {
                return refuse(*key_line, "template:", "stage templates are not supported by the local runner");
            }
            "lockBehavior" | "isSkippable" | "templateContext" | "trigger" => {
                return refuse(*key_line, format!("{key}:"), UNSUPPORTED);
            }
            other => return refuse(*key_line, format!("{other}:"), "unknown stage key"),
        }
    }
    if stage.name.is_empty() {
        return refuse(*line, "stage", "each stage needs stage: <name>");
    }
    let Some(jobs) = jobs else { return refuse(*line, format!("stage {}", stage.name), "a jobs: list is required") };
    let Node::Seq { items, .. } = jobs else { return refuse(jobs.line(), "jobs:", "must be a list of jobs") };
    for item in items {
        let job = job(item, notes)?;
        if stage.jobs.iter().any(|j| j.name.eq_ignore_ascii_case(&job.name)) {
            return refuse(job.line, "job", format!("the job name {} is used twice in stage {}", job.name, stage.name));
        }
        stage.jobs.push(job);
    }
    if stage.jobs.is_empty() {
        return refuse(jobs.line(), "jobs:", "the list is empty");
    }
    Ok(stage)
}

fn job(node: &Node, notes: &mut Vec<String>) -> Result<Job, Refusal> {
    let Node::Map { entries, line } = node else { return refuse(node.line(), "jobs:", "each job must be a mapping") };
    let mut job = Job {
        name: String::new(),
        display_name: None,
        depends_on: Vec::new(),
        condition: Condition::Succeeded,
        variables: Vec::new(),
        steps: Vec::new(),
        line: *line,
    };
    let mut steps = None;
    for (key, key_line, value) in entries {
        match key.as_str() {
            "job" => job.name = identifier(value, "job:")?,
            "displayName" => job.display_name = Some(scalar(value, "displayName:")?.to_string()),
            "dependsOn" => job.depends_on = names(value, "dependsOn:")?,
            "condition" => job.condition = condition(value)?,
            "variables" => job.variables = variables(value)?,
            "steps" => steps = Some(value),
            "pool" => pool_note(notes, *key_line, "a job"),
            "deployment" => {
                return refuse(
                    *key_line,
                    "deployment:",
                    "deployment jobs (environments, strategies) are not supported by the local runner",
                );
            }
            "strategy" => {
                let kind = match value {
                    Node::Map { entries, .. } => entries.first().map(|(k, _, _)| k.clone()).unwrap_or_default(),
                    _ => String::new(),
                };
                return refuse(
                    *key_line,
                    format!("strategy: {kind}").trim_end().to_string(),
                    "job strategies (matrix, parallel) are not supported by the local runner",
                );
            }
            "template" => return refuse(*key_line, "template:", "job templates are not supported by the local runner"),
            "container"
            | "services"
            | "workspace"
            | "continueOnError"
            | "timeoutInMinutes"
            | "cancelTimeoutInMinutes"
            | "uses"
            | "templateContext" => return refuse(*key_line, format!("{key}:"), UNSUPPORTED),
            other => return refuse(*key_line, format!("{other}:"), "unknown job key"),
        }
    }
    if job.name.is_empty() {
        return refuse(*line, "job", "each job needs job: <name>");
    }
    let Some(steps) = steps else { return refuse(*line, format!("job {}", job.name), "a steps: list is required") };
    let Node::Seq { items, .. } = steps else { return refuse(steps.line(), "steps:", "must be a list of steps") };
    for item in items {
        let step = step(item)?;
        if let Some(name) = &step.name
            && job.steps.iter().any(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        {
            return refuse(step.line, "step", format!("the step name {name} is used twice in job {}", job.name));
        }
        job.steps.push(step);
    }
    if job.steps.is_empty() {
        return refuse(steps.line(), "steps:", "the list is empty");
    }
    Ok(job)
}

fn string_map(node: &Node, what: &str) -> Result<Vec<(String, String)>, Refusal> {
    let Node::Map { entries, .. } = node else { return refuse(node.line(), what, "must be a mapping") };
    entries
        .iter()
        .map(|(key, _, value)| Ok((key.clone(), scalar(value, &format!("{what} {key}"))?.to_string())))
        .collect()
}

fn step(node: &Node) -> Result<Step, Refusal> {
    let Node::Map { entries, line } = node else { return refuse(node.line(), "steps:", "each step must be a mapping") };
    let mut step = Step {
        task: String::new(),
        major: 0,
        name: None,
        display_name: None,
        inputs: Vec::new(),
        env: Vec::new(),
        condition: Condition::Succeeded,
        continue_on_error: false,
        timeout_minutes: None,
        line: *line,
    };
    for (key, key_line, value) in entries {
        match key.as_str() {
            "task" => {
                let text = scalar(value, "task:")?;
                let Some((name, major)) = text.split_once('@').and_then(|(n, m)| Some((n, m.parse::<u32>().ok()?)))
                else {
                    return refuse(
                        value.line(),
                        format!("task: {text}"),
                        "write the task as Name@Major, such as KanikoBuild@1",
                    );
                };
                step.task = name.to_string();
                step.major = major;
            }
            "name" => step.name = Some(identifier(value, "name:")?),
            "displayName" => step.display_name = Some(scalar(value, "displayName:")?.to_string()),
            "inputs" => step.inputs = string_map(value, "inputs:")?,
            "env" => step.env = string_map(value, "env:")?,
            "condition" => step.condition = condition(value)?,
            "continueOnError" => {
                step.continue_on_error = scalar(value, "continueOnError:")?.eq_ignore_ascii_case("true")
            }
            "timeoutInMinutes" => {
                let text = scalar(value, "timeoutInMinutes:")?;
                let Ok(minutes) = text.parse() else {
                    return refuse(value.line(), "timeoutInMinutes:", "must be a number");
                };
                step.timeout_minutes = Some(minutes);
            }
            "script" | "bash" | "pwsh" | "powershell" | "checkout" | "download" | "downloadBuild" | "getPackage"
            | "publish" | "reviewApp" | "template" | "restoreCache" => {
                return refuse(
                    *key_line,
                    format!("{key}: step"),
                    "only task: steps are supported by the local runner (KanikoBuild@1, MulticlusterHelm@1)",
                );
            }
            "enabled" | "retryCountOnTaskFailure" | "target" => {
                return refuse(*key_line, format!("{key}:"), UNSUPPORTED);
            }
            other => return refuse(*key_line, format!("{other}:"), "unknown step key"),
        }
    }
    if step.task.is_empty() {
        return refuse(*line, "step", "each step needs task: Name@Major");
    }
    for (key, value) in &step.inputs {
        if value.contains("$[") {
            return refuse(
                *line,
                format!("runtime expression in input {key}"),
                "$[ ] is only evaluated in variables: map the output to a job variable and use $(name)",
            );
        }
    }
    Ok(step)
}

/// Every dependency names an earlier-defined sibling; no cycles.
fn check_dependencies(items: Vec<(&str, usize, &[String])>, what: &str) -> Result<(), Refusal> {
    for (name, line, deps) in &items {
        for dep in deps.iter() {
            if !items.iter().any(|(n, _, _)| n.eq_ignore_ascii_case(dep)) {
                return refuse(*line, format!("{what} {name}"), format!("depends on {dep}, which does not exist"));
            }
        }
    }
    if crate::runner::order(&items.iter().map(|(n, _, d)| (n.to_string(), d.to_vec())).collect::<Vec<_>>()).is_none() {
        return refuse(items[0].1, format!("{what}s"), "the dependsOn lists form a cycle");
    }
    Ok(())
}
