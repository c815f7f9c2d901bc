//! The `targets` input: one deploy per EKS cluster, all checked before the
//! first one starts. Each error names the line of its target.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::params::{
    Command, InputError, Params, RoleSession, Target, bad, check_cluster_name, check_external_id, role_in_partition,
    value_files,
};
use crate::aws::arn;
use crate::aws::credentials::AssumeRole;
use crate::azp::Env;
use crate::helm::values;
use crate::kube::names::check_dns1123_label;

/// A deploy to several clusters.
#[derive(Debug, Clone)]
pub struct FanOut {
    /// In the order the input lists them.
    pub targets: Vec<NamedTarget>,
    pub max_parallel: usize,
    /// After a failure, start no other target.
    pub fail_fast: bool,
    /// Some targets failed, some succeeded: SucceededWithIssues, not Failed.
    pub allow_partial_success: bool,
}

/// One cluster of a fan-out, with the plan of its deploy.
#[derive(Debug, Clone)]
pub struct NamedTarget {
    /// Unique in the step; part of the target's output variable names.
    pub name: String,
    /// Targets of wave n start when every target of the waves before succeeded.
    pub wave: u32,
    pub params: Params,
}

impl NamedTarget {
    pub fn cluster(&self) -> (&str, &str) {
        match &self.params.target {
            Target::Eks { name, region, .. } => (name, region),
            Target::Kubernetes(_) => ("", ""),
        }
    }
}

/// One entry of the YAML list, as the user writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    name: String,
    cluster_name: String,
    region: Option<String>,
    assume_role_arn: Option<String>,
    external_id: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    value_file: OneOrMany,
    #[serde(default)]
    override_values: OneOrMany,
    wave: Option<u32>,
}

/// A value given as one string or as a list of them.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn lines(self) -> Vec<String> {
        let lines = match self {
            Self::None => Vec::new(),
            Self::One(text) => text.lines().map(str::to_string).collect(),
            Self::Many(items) => items,
        };
        lines.into_iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
    }
}

/// How many targets may deploy at once: 1 to 32.
pub fn max_parallel(text: Option<&str>) -> Result<usize, InputError> {
    let text = text.unwrap_or("4");
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=32).contains(&n) => Ok(n),
        _ => Err(bad("maxParallel", format!("{text:?} is not a number from 1 to 32"))),
    }
}

/// Reads the `targets` YAML; `step` is the plan the targets start from (its
/// target is replaced, its values files and overrides extended).
pub fn parse(text: &str, step: &Params, session: &RoleSession, env: &Env) -> Result<Vec<NamedTarget>, InputError> {
    let entries: Vec<Spanned<Entry>> = serde_saphyr::from_str(text).map_err(|e| {
        bad("targets", format!("not a YAML list of targets (name, clusterName, region, …): {}", one_line(&e)))
    })?;
    if entries.is_empty() {
        return Err(bad("targets", "lists no target"));
    }
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut places: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
    let mut targets = Vec::with_capacity(entries.len());
    for spanned in entries {
        let line = spanned.referenced.line() as usize;
        let at = |message: String| bad("targets", format!("line {line}: {message}"));
        let entry = spanned.value;
        check_target_name(&entry.name).map_err(at)?;
        if let Some(first) = names.insert(entry.name.clone(), line) {
            return Err(at(format!("the name {} is already the target's on line {first}", entry.name)));
        }
        let target = build(entry, step, session, env).map_err(|e| at(format!("{}: {}", e.input, e.message)))?;
        let (cluster, region) = target.cluster();
        let account = match &target.params.target {
            Target::Eks { role: Some(role), .. } => role.arn.account().to_string(),
            _ => String::new(),
        };
        let place = (cluster.to_string(), region.to_string(), account, target.params.release.namespace.clone());
        if let Some(first) = places.insert(place, line) {
            return Err(at(format!(
                "deploys release {} to the same cluster, account and namespace as the target on line {first}",
                target.params.release.name
            )));
        }
        targets.push(target);
    }
    Ok(targets)
}

/// serde-saphyr's message without its source snippet: "line 4 column 3: …".
fn one_line(error: &serde_saphyr::Error) -> String {
    let text = error.to_string();
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// A target's name becomes part of variable names (`<name>_releaseRevision`).
fn check_target_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be 1 to 64 letters, digits and '_' (it names output variables such as \
             <name>_releaseRevision)"
        ))
    }
}

/// The plan of one target: the step's, on the target's cluster. Errors name
/// the target's key.
fn build(entry: Entry, step: &Params, session: &RoleSession, env: &Env) -> Result<NamedTarget, InputError> {
    check_cluster_name(&entry.cluster_name).map_err(|m| bad("clusterName", m))?;
    let region = crate::aws::region(env, entry.region.as_deref())
        .ok_or_else(|| bad("region", "no region given, and the agent has no AWS_REGION or AWS_DEFAULT_REGION"))?;
    arn::check_region(&region).map_err(|e| bad("region", e.to_string()))?;
    let Target::Eks { base, .. } = &step.target else {
        return Err(bad("clusterName", "targets are EKS clusters (connectionType Amazon EKS)"));
    };
    let role = match entry.assume_role_arn {
        None if entry.external_id.is_some() => return Err(bad("externalId", "is only used with assumeRoleArn")),
        None => None,
        Some(text) => Some(AssumeRole {
            arn: role_in_partition(&text, &region).map_err(|e| bad("assumeRoleArn", e.message))?,
            external_id: entry.external_id.map(|id| check_external_id(&id)).transpose()?,
            session_name: session.name.clone(),
            duration: session.duration,
        }),
    };
    let mut params = step.clone();
    params.target = Target::Eks { name: entry.cluster_name, region, base: base.clone(), role };
    if let Some(namespace) = entry.namespace {
        check_dns1123_label(&namespace, 63).map_err(|m| bad("namespace", m))?;
        params.release.namespace = namespace;
    }
    let files = value_files(&entry.value_file.lines(), env).map_err(|e| bad("valueFile", e.message))?;
    let set = values::set_values(&entry.override_values.lines()).map_err(|e| bad("overrideValues", e.to_string()))?;
    if let Command::Upgrade { upgrade, .. } | Command::Diff { upgrade, .. } = &mut params.command {
        upgrade.namespace = params.release.namespace.clone();
        upgrade.value_files.extend(files);
        upgrade.set.extend(set);
    }
    let wave = entry.wave.unwrap_or(1);
    if wave == 0 {
        return Err(bad("wave", "waves are numbered from 1"));
    }
    Ok(NamedTarget { name: entry.name, wave, params })
}

#[cfg(test)]
mod tests {
    use super::super::params::Plan;
    use super::*;
    use crate::tasks::inputs::multicluster_helm::{Inputs, SPEC};

    fn plan(targets: &str, extra: &[(&str, &str)]) -> Result<FanOut, String> {
        let mut vars = vec![
            ("chartType".to_string(), "OCI".to_string()),
            ("chartName".into(), "r.example.com/charts/web".into()),
            ("releaseName".into(), "web".into()),
            ("namespace".into(), "web".into()),
            ("targets".into(), targets.into()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let env = Env::from_vars(vars.into_iter().map(|(k, v)| (format!("INPUT_{}", k.to_uppercase()), v)));
        let inputs = Inputs::read(&crate::azp::inputs::InputReader::new(&env, &SPEC)).map_err(|e| e.to_string())?;
        match Plan::from_inputs(&inputs, &env).map_err(|e| e.to_string())? {
            Plan::Many(fan_out) => Ok(fan_out),
            Plan::One(_) => Err("one target".into()),
        }
    }

    const THREE: &str = "\
# dev first, then the rest
- name: dev
  clusterName: dev
  region: eu-west-1
  assumeRoleArn: arn:aws:iam::222222222222:role/deployer

- name: prod_eu
  clusterName: prod
  region: eu-west-1
  assumeRoleArn: arn:aws:iam::333333333333:role/deployer
  externalId: ext-1
  namespace: web-prod
  overrideValues:
    - replicas=3
  wave: 2
- name: prod_us
  clusterName: prod
  region: us-east-2
  assumeRoleArn: arn:aws:iam::444444444444:role/deployer
  overrideValues: replicas=2
  wave: 2
";

    #[test]
    fn each_target_gets_the_step_s_plan_on_its_cluster() {
        let fan_out = plan(THREE, &[("overrideValues", "image=web:1"), ("maxParallel", "2")]).unwrap();
        assert_eq!((fan_out.max_parallel, fan_out.fail_fast, fan_out.allow_partial_success), (2, true, false));
        let names: Vec<_> = fan_out.targets.iter().map(|t| (t.name.as_str(), t.cluster(), t.wave)).collect();
        assert_eq!(
            names,
            [
                ("dev", ("dev", "eu-west-1"), 1),
                ("prod_eu", ("prod", "eu-west-1"), 2),
                ("prod_us", ("prod", "us-east-2"), 2)
            ]
        );
        let prod = &fan_out.targets[1].params;
        let Target::Eks { role: Some(role), .. } = &prod.target else { panic!("{:?}", prod.target) };
        assert_eq!((role.arn.account(), role.external_id.as_deref()), ("333333333333", Some("ext-1")));
        assert_eq!(role.session_name, "azp-kube-local");
        assert_eq!(prod.release.namespace, "web-prod");
        let Command::Upgrade { upgrade, .. } = &prod.command else { panic!("{:?}", prod.command) };
        assert_eq!(upgrade.namespace, "web-prod");
        assert_eq!(upgrade.set, ["image=web:1", "replicas=3"], "the target's overrides come after the step's");
        assert_eq!(fan_out.targets[0].params.release.namespace, "web", "the step's namespace by default");
    }

    #[test]
    fn bad_targets_are_refused_naming_their_line() {
        let table: &[(&str, &str)] = &[
            (
                "- name: a\n  clusterName: a\n  region: eu-west-1\n- name: a\n  clusterName: b\n  region: eu-west-1\n",
                "input targets: line 4: the name a is already the target's on line 1",
            ),
            (
                "- name: a\n  clusterName: c\n  region: eu-west-1\n\n- name: b\n  clusterName: c\n  region: eu-west-1\n",
                "input targets: line 5: deploys release web to the same cluster, account and namespace as the target on line 1",
            ),
            (
                "- name: a\n  clusterName: c\n  region: eu-west-1\n  cluster: typo\n",
                "input targets: not a YAML list of targets (name, clusterName, region, …): line 4 column 3: unknown field `cluster`",
            ),
            (
                "- name: prod-eu\n  clusterName: c\n  region: eu-west-1\n",
                "input targets: line 1: name \"prod-eu\" must be",
            ),
            ("- name: a\n  clusterName: c\n  region: Europe\n", "input targets: line 1: region:"),
            (
                "- name: a\n  clusterName: c\n  region: eu-west-1\n  assumeRoleArn: arn:aws:iam::1:role/x\n",
                "input targets: line 1: assumeRoleArn:",
            ),
            (
                "- name: a\n  clusterName: c\n  region: eu-west-1\n  externalId: e-1\n",
                "line 1: externalId: is only used with assumeRoleArn",
            ),
            ("- name: a\n  clusterName: c\n  region: eu-west-1\n  wave: 0\n", "line 1: wave:"),
            (
                "- name: a\n  clusterName: c\n  region: eu-west-1\n  valueFile: /nonexistent.yaml\n",
                "line 1: valueFile:",
            ),
            (
                "- name: a\n  clusterName: c\n  region: eu-west-1\n  overrideValues: [novalue]\n",
                "line 1: overrideValues:",
            ),
            (
                "name: a\n",
                "input targets: not a YAML list of targets (name, clusterName, region, …): line 1 column 1: expected sequence",
            ),
            ("[]", "input targets: lists no target"),
        ];
        for (yaml, expected) in table {
            let err = plan(yaml, &[]).expect_err(yaml);
            assert!(err.contains(expected), "{yaml}\n{err}");
        }
        let err = plan(THREE, &[("clusterName", "dev")]).unwrap_err();
        assert!(err.starts_with("input clusterName: cannot be used with targets"), "{err}");
        let err = plan(THREE, &[("maxParallel", "0")]).unwrap_err();
        assert!(err.starts_with("input maxParallel:"), "{err}");
    }
}
