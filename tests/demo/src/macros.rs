//! Variables as the agent expands them: `$(name)` macros (names are
//! case-insensitive; an unknown macro stays as it is, as Azure DevOps leaves
//! it), `$(step.var)` for an output of an earlier step of the same job,
//! `$(Stage.Job.step.var)` for an output of any finished job, and the runtime
//! expressions that map an output of another job into a variable:
//! `$[ stageDependencies.Stage.Job.outputs['step.var'] ]`,
//! `$[ dependencies.Job.outputs['step.var'] ]` (same stage) and
//! `$[ dependencies.Stage.outputs['Job.step.var'] ]` (stage variables).

use std::collections::BTreeMap;

/// An output variable of another job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputRef {
    /// `stageDependencies.<stage>.<job>.outputs['<step>.<var>']`.
    StageJob { stage: String, job: String, step: String, var: String },
    /// `dependencies.<job>.outputs['<step>.<var>']`, a job of the same stage.
    Job { job: String, step: String, var: String },
    /// `dependencies.<stage>.outputs['<job>.<step>.<var>']`, in stage variables.
    Stage { stage: String, job: String, step: String, var: String },
}

/// Parses `$[ … ]` if it is one of the supported output references.
pub fn parse_runtime_expression(text: &str) -> Option<OutputRef> {
    let inner = text.trim().strip_prefix("$[")?.strip_suffix(']')?.trim();
    let (head, key) = inner.split_once(".outputs[")?;
    let key = key.strip_suffix(']')?.trim();
    let key = key.strip_prefix('\'')?.strip_suffix('\'')?;
    let head: Vec<&str> = head.split('.').collect();
    let key: Vec<&str> = key.split('.').collect();
    let ok = |parts: &[&str]| {
        parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    if !ok(&head[1..]) || !ok(&key) {
        return None;
    }
    let s = |t: &str| t.to_string();
    match (head.as_slice(), key.as_slice()) {
        (["stageDependencies", stage, job], [step, var]) => {
            Some(OutputRef::StageJob { stage: s(stage), job: s(job), step: s(step), var: s(var) })
        }
        (["dependencies", job], [step, var]) => Some(OutputRef::Job { job: s(job), step: s(step), var: s(var) }),
        (["dependencies", stage], [job, step, var]) => {
            Some(OutputRef::Stage { stage: s(stage), job: s(job), step: s(step), var: s(var) })
        }
        _ => None,
    }
}

/// Variables in scope, looked up case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    map: BTreeMap<String, (String, String)>,
}

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) a variable.
    pub fn set(&mut self, name: &str, value: &str) {
        self.map.insert(name.to_ascii_lowercase(), (name.to_string(), value.to_string()));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(&name.to_ascii_lowercase()).map(|(_, v)| v.as_str())
    }

    /// `(name as defined, value)` of every variable.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.values().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Expands the `$(…)` macros of `text` with these variables.
    pub fn expand(&self, text: &str) -> String {
        expand(text, |name| self.get(name).map(str::to_string))
    }
}

/// Output variables of finished jobs: `(stage, job, step, var)` → value.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    map: BTreeMap<(String, String, String, String), String>,
}

impl Outputs {
    pub fn set(&mut self, stage: &str, job: &str, step: &str, var: &str, value: &str) {
        let key = (stage, job, step, var).lower();
        self.map.insert(key, value.to_string());
    }

    pub fn get(&self, stage: &str, job: &str, step: &str, var: &str) -> Option<&str> {
        self.map.get(&(stage, job, step, var).lower()).map(String::as_str)
    }

    /// Resolves a reference made from `stage` (the stage whose job or whose
    /// variables hold it). `None` when the output does not exist (Azure
    /// DevOps then gives an empty value).
    pub fn resolve(&self, reference: &OutputRef, current_stage: &str) -> Option<&str> {
        match reference {
            OutputRef::StageJob { stage, job, step, var } | OutputRef::Stage { stage, job, step, var } => {
                self.get(stage, job, step, var)
            }
            OutputRef::Job { job, step, var } => self.get(current_stage, job, step, var),
        }
    }

    /// `$(Stage.Job.step.var)` lookups.
    pub fn by_macro(&self, name: &str) -> Option<&str> {
        let parts: Vec<&str> = name.split('.').collect();
        match parts.as_slice() {
            [stage, job, step, var] => self.get(stage, job, step, var),
            _ => None,
        }
    }
}

trait Lower {
    fn lower(self) -> (String, String, String, String);
}

impl Lower for (&str, &str, &str, &str) {
    fn lower(self) -> (String, String, String, String) {
        let l = |s: &str| s.to_ascii_lowercase();
        (l(self.0), l(self.1), l(self.2), l(self.3))
    }
}

/// Replaces each `$(name)` whose name `lookup` knows; leaves the rest.
/// One pass: a value that contains a macro is not expanded again.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("$(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let name_end = after.find(')');
        let replaced = name_end.and_then(|end| {
            let name = &after[..end];
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if valid { lookup(name).map(|v| (v, end)) } else { None }
        });
        match replaced {
            Some((value, end)) => {
                out.push_str(&value);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_unknown_macros_stay() {
        let mut vars = Vars::new();
        vars.set("Build.BuildId", "42");
        vars.set("registry", "localhost:5000");
        assert_eq!(vars.expand("$(registry)/web:$(build.buildid)"), "localhost:5000/web:42");
        assert_eq!(vars.expand("$(nope) $(a b) $( x ) $(registry"), "$(nope) $(a b) $( x ) $(registry");
        assert_eq!(vars.expand("$$(registry)$()"), "$localhost:5000$()");
    }

    #[test]
    fn one_pass_only() {
        let mut vars = Vars::new();
        vars.set("a", "$(b)");
        vars.set("b", "B");
        assert_eq!(vars.expand("$(a)"), "$(b)");
    }

    #[test]
    fn runtime_expressions() {
        assert_eq!(
            parse_runtime_expression("$[ stageDependencies.Build.Image.outputs['kaniko.imageRef'] ]"),
            Some(OutputRef::StageJob {
                stage: "Build".into(),
                job: "Image".into(),
                step: "kaniko".into(),
                var: "imageRef".into()
            })
        );
        assert_eq!(
            parse_runtime_expression("$[dependencies.Image.outputs['kaniko.imageDigest']]"),
            Some(OutputRef::Job { job: "Image".into(), step: "kaniko".into(), var: "imageDigest".into() })
        );
        assert_eq!(
            parse_runtime_expression("$[ dependencies.Build.outputs['Image.kaniko.imageDigest'] ]"),
            Some(OutputRef::Stage {
                stage: "Build".into(),
                job: "Image".into(),
                step: "kaniko".into(),
                var: "imageDigest".into()
            })
        );
        for unsupported in [
            "$[ variables['x'] ]",
            "$[ stageDependencies.Build.Image.result ]",
            "$[ stageDependencies.Build.Image.outputs[\"kaniko.imageRef\"] ]",
            "$[ stageDependencies.Build.outputs['kaniko.imageRef'] ]",
            "$[ dependencies.Image.outputs['kaniko.image Ref'] ]",
            "$[ eq(1, 1) ]",
        ] {
            assert_eq!(parse_runtime_expression(unsupported), None, "{unsupported}");
        }
    }

    #[test]
    fn outputs_resolve_by_reference_and_by_macro() {
        let mut outputs = Outputs::default();
        outputs.set("Build", "Image", "kaniko", "imageDigest", "sha256:ab");
        let r = parse_runtime_expression("$[ stageDependencies.build.IMAGE.outputs['Kaniko.imagedigest'] ]").unwrap();
        assert_eq!(outputs.resolve(&r, "Deploy"), Some("sha256:ab"));
        let same_stage = parse_runtime_expression("$[ dependencies.Image.outputs['kaniko.imageDigest'] ]").unwrap();
        assert_eq!(outputs.resolve(&same_stage, "Build"), Some("sha256:ab"));
        assert_eq!(outputs.resolve(&same_stage, "Deploy"), None);
        assert_eq!(outputs.by_macro("Build.Image.kaniko.imageDigest"), Some("sha256:ab"));
        assert_eq!(outputs.by_macro("kaniko.imageDigest"), None);
        let vars = Vars::new();
        let text = expand("$(Build.Image.kaniko.imageDigest) $(Build.Image.kaniko.other)", |n| {
            vars.get(n).or_else(|| outputs.by_macro(n)).map(str::to_string)
        });
        assert_eq!(text, "sha256:ab $(Build.Image.kaniko.other)");
    }
}
