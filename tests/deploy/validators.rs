//! The chart's objects checked by validators, for several values sets: KEDA's
//! objects by the npm package @kubernetes-models/keda (structure and types,
//! keda_models_check.mjs) and by what each supported KEDA release accepts
//! (unknown fields, enums, minimums, CEL rule, scaler keys: our own cited
//! facts in keda_facts.py, applied by keda_check.py); the core objects with
//! `kubernetes-validate --strict` for the Kubernetes versions the chart
//! targets. The world stores KEDA objects without looking at them, so this is
//! where a field KEDA refuses fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;

/// The chart's kubeVersion floor and the release the project builds against (k8s-openapi v1_34).
const KUBERNETES: [&str; 2] = ["1.29.0", "1.34.0"];

/// KEDA releases (keys of keda_facts.RELEASES) the chart's default keda.version ("2.20") must satisfy.
const KEDA_2_20: &[&str] = &["2.20.0", "2.20.1", "2.20.2"];

/// The self-check's name for the @kubernetes-models/keda check.
const NPM: &str = "npm";

/// Every release keda_facts.py describes.
const KEDA_RELEASES: [&str; 5] = ["2.19.0", "2.20.0", "2.20.1", "2.20.2", "2.21"];

/// A values set: its name, helm arguments after the required values, and the KEDA releases it targets.
type ValuesSet = (String, Vec<String>, &'static [&'static str]);

fn values_sets() -> Vec<ValuesSet> {
    let token = format!("azp.token={PAT}");
    let args = |pairs: &[&str]| -> Vec<String> {
        pairs
            .iter()
            .flat_map(|p| {
                let flag = if p.starts_with("keda.version=") { "--set-string" } else { "--set" };
                [flag.to_string(), p.to_string()]
            })
            .collect()
    };
    let mut sets: Vec<ValuesSet> =
        scenarios().into_iter().map(|(name, extra)| (name.to_string(), extra, KEDA_2_20)).collect();
    let mut demands = args(&[
        &token,
        "azp.poolId=42",
        "keda.version=2.20.2",
        "keda.scalingStrategy=default",
        "keda.rolloutStrategy=immediate",
    ]);
    demands.extend(["--set-json".into(), r#"keda.demands=["kaniko","Agent.OS -equals Linux"]"#.into()]);
    sets.extend([
        ("older-keda".to_string(), args(&[&token, "keda.version=2.19"]), &["2.19.0"][..]),
        ("demands-and-pool-id".to_string(), demands, &["2.20.2"][..]),
        (
            "keda-2.21".to_string(),
            args(&[&token, "keda.version=2.21", "azp.url=https://dev.azure.com/contoso/"]),
            &["2.21"][..],
        ),
        (
            "deployment-keda-2.21".to_string(),
            args(&[&token, "mode=Deployment", "keda.version=2.21", "keda.minReplicaCount=1", "keda.maxReplicaCount=4"]),
            &["2.21"][..],
        ),
    ]);
    sets
}

fn venv_tool(name: &str) -> PathBuf {
    world().tools().python.parent().expect("the venv's bin").join(name)
}

/// Runs a validator; returns (passed, what it printed).
fn run(program: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn paths(files: &[PathBuf]) -> Vec<String> {
    files.iter().map(|f| f.display().to_string()).collect()
}

/// What one KEDA release accepts (keda_facts.py) checked on objects files.
fn keda_check(release: &str, files: &[PathBuf]) -> (bool, String) {
    let script = repo().join("tests/deploy/keda_check.py").display().to_string();
    let files = paths(files);
    let mut args = vec!["-B", script.as_str(), release];
    args.extend(files.iter().map(String::as_str));
    run(&world().tools().python, &args)
}

/// @kubernetes-models/keda's structure and type check of objects files.
fn keda_models_check(files: &[PathBuf]) -> (bool, String) {
    let script = repo().join("tests/deploy/keda_models_check.mjs").display().to_string();
    let modules = world().tools().cache.join("keda-models/node_modules");
    assert!(modules.join("@kubernetes-models/keda").is_dir(), "{}: run scripts/setup-deploy.sh", modules.display());
    let (modules, files) = (modules.display().to_string(), paths(files));
    let mut args = vec![script.as_str(), modules.as_str()];
    args.extend(files.iter().map(String::as_str));
    run(Path::new("node"), &args)
}

/// `kubernetes-validate --strict` of YAML files for one Kubernetes version.
fn kubernetes_validate(version: &str, files: &[PathBuf]) -> (bool, String) {
    let files = paths(files);
    let mut args = vec!["--strict", "--quiet", "-k", version];
    args.extend(files.iter().map(String::as_str));
    run(&venv_tool("kubernetes-validate"), &args)
}

/// The objects `helm template` renders, read as YAML 1.1 (PyYAML) the way
/// Kubernetes' sigs.k8s.io/yaml reads them: `defaultMode: 0440` is octal 288.
fn render_as_kubernetes_reads(extra: &[String]) -> Vec<Value> {
    let chart = chart();
    let yaml = ok(world().tools().helm4.as_path(), &chart_args("template", &chart, "agents", extra));
    let code = "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)";
    let mut child = Command::new(&world().tools().python)
        .args(["-c", code])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), yaml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "YAML 1.1 reading failed");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn write_yaml(path: &Path, objects: &[Value]) {
    let docs: Vec<String> = objects.iter().map(|o| serde_saphyr::to_string(o).expect("YAML")).collect();
    std::fs::write(path, docs.join("---\n")).expect("write YAML");
}

/// Splits rendered objects into KEDA's and core ones; a ScaledJob's jobTargetRef
/// also goes to the core ones as the batch/v1 Job KEDA creates from it.
fn split(objects: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let (keda, mut core): (Vec<Value>, Vec<Value>) =
        objects.iter().cloned().partition(|o| o["apiVersion"].as_str().is_some_and(|v| v.starts_with("keda.sh/")));
    for scaled in keda.iter().filter(|o| o["kind"] == "ScaledJob") {
        let name = format!("{}-job", scaled["metadata"]["name"].as_str().unwrap());
        let spec = scaled["spec"]["jobTargetRef"].clone();
        core.push(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}));
    }
    (keda, core)
}

#[test]
fn rendered_objects_pass_kubernetes_validate_strict_and_what_each_supported_keda_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let mut core_files = Vec::new();
    let mut keda_files: Vec<(PathBuf, &[&str])> = Vec::new();
    for (name, extra, releases) in values_sets() {
        let (keda, core) = split(&render_as_kubernetes_reads(&extra));
        assert!(keda.len() >= 2 && !core.is_empty(), "{name}: {} KEDA and {} core objects", keda.len(), core.len());
        let keda_file = dir.path().join(format!("{name}.json"));
        std::fs::write(&keda_file, serde_json::to_vec(&keda).unwrap()).unwrap();
        keda_files.push((keda_file, releases));
        let core_file = dir.path().join(format!("{name}.yaml"));
        write_yaml(&core_file, &core);
        core_files.push(core_file);
    }
    assert!(keda_files.len() >= 5);
    for version in KUBERNETES {
        let (passed, output) = kubernetes_validate(version, &core_files);
        assert!(passed, "kubernetes-validate --strict -k {version}:\n{output}");
    }
    let all: Vec<PathBuf> = keda_files.iter().map(|(f, _)| f.clone()).collect();
    let (passed, output) = keda_models_check(&all);
    assert!(passed, "@kubernetes-models/keda refuses the chart's objects:\n{output}");
    for release in KEDA_RELEASES {
        let files: Vec<PathBuf> =
            keda_files.iter().filter(|(_, releases)| releases.contains(&release)).map(|(f, _)| f.clone()).collect();
        assert!(!files.is_empty(), "no values set targets KEDA {release}");
        let (passed, output) = keda_check(release, &files);
        assert!(passed, "KEDA {release} refuses the chart's objects:\n{output}");
    }
}

/// The validators are not blind: they refuse what KEDA's and Kubernetes' API servers refuse.
#[test]
fn the_validators_refuse_what_the_real_api_servers_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let scaled_job = |spec_patch: Value| {
        let mut spec = json!({
            "jobTargetRef": {"template": {"spec": {"containers": [{"name": "agent", "image": "agent"}]}}},
            "maxReplicaCount": 10,
            "rollout": {"strategy": "gradual"},
            "scalingStrategy": {"strategy": "accurate"},
            "triggers": [{"type": "azure-pipelines", "metadata": {"poolName": "k8s-agents"}}],
        });
        for (key, value) in spec_patch.as_object().unwrap() {
            spec[key] = value.clone();
        }
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "pool"}, "spec": spec})
    };
    let scaled_object = |spec_patch: Value| {
        let mut spec = json!({"scaleTargetRef": {"name": "pool"}, "minReplicaCount": 5, "maxReplicaCount": 2,
            "triggers": [{"type": "azure-pipelines", "metadata": {"poolName": "k8s-agents"}}]});
        // A null in the patch removes the field.
        for (key, value) in spec_patch.as_object().unwrap() {
            match value {
                Value::Null => drop(spec.as_object_mut().unwrap().remove(key)),
                _ => spec[key] = value.clone(),
            }
        }
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "pool"}, "spec": spec})
    };
    let trigger = |metadata: Value| json!({"triggers": [{"type": "azure-pipelines", "metadata": metadata}]});
    let default_strategy = || scaled_job(json!({"scalingStrategy": {"strategy": "default"}}));
    // (object, checker: a KEDA release or NPM, the error KEDA gives, or None when it accepts the object)
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (scaled_job(json!({})), "2.20.0", None),
        (scaled_job(json!({})), NPM, None),
        (default_strategy(), "2.19.0", None),
        (default_strategy(), "2.20.0", Some(".spec.scalingStrategy.strategy: 'default' is not one of")),
        (default_strategy(), "2.20.1", Some(".spec.scalingStrategy.strategy: 'default' is not one of")),
        (default_strategy(), "2.20.2", None),
        (default_strategy(), "2.21", None),
        (scaled_job(json!({"rollout": {"strategy": "default"}})), "2.19.0", None),
        (
            scaled_job(json!({"rollout": {"strategy": "default"}})),
            "2.20.2",
            Some(".spec.rollout.strategy: 'default' is not one of ['gradual', 'immediate']"),
        ),
        (scaled_job(json!({"maxReplicaCount": 0})), "2.19.0", None),
        (
            scaled_job(json!({"maxReplicaCount": 0})),
            "2.20.2",
            Some(".spec.maxReplicaCount: 0 is less than the minimum of 1"),
        ),
        (scaled_object(json!({})), "2.19.0", None),
        (
            scaled_object(json!({})),
            "2.20.2",
            Some(".spec: minReplicaCount must be less than or equal to maxReplicaCount"),
        ),
        (scaled_object(json!({"minReplicaCount": 101, "maxReplicaCount": null})), "2.19.0", None),
        (
            scaled_object(json!({"minReplicaCount": 101, "maxReplicaCount": null})),
            "2.20.0",
            Some(".spec: minReplicaCount must be less than or equal to maxReplicaCount"),
        ),
        (scaled_job(json!({"replicas": 3})), "2.19.0", Some(".spec: unknown field 'replicas'")),
        (scaled_object(json!({"replicas": 3})), "2.21", Some(".spec: unknown field 'replicas'")),
        (
            scaled_job(trigger(json!({"poolName": "k8s-agents", "scaleOnInFlight": "false"}))),
            "2.20.2",
            Some(
                ".spec.triggers[0].metadata.scaleOnInFlight: the azure-pipelines scaler of this release does not read it",
            ),
        ),
        (scaled_job(trigger(json!({"poolName": "k8s-agents", "scaleOnInFlight": "false"}))), "2.21", None),
        (
            scaled_job(trigger(
                json!({"poolName": "k8s-agents", "jobsToFetch": "50", "fetchUnfinishedJobsOnly": "true"}),
            )),
            "2.21",
            Some(".spec.triggers[0].metadata: the scaler refuses jobsToFetch together with fetchUnfinishedJobsOnly"),
        ),
        (scaled_job(trigger(json!({"poolID": 42}))), NPM, Some("data/spec/triggers/0/metadata/poolID must be string")),
        (
            scaled_job(json!({"jobTargetRef": {"parallelism": "1", "template": {}}})),
            NPM,
            Some("data/spec/jobTargetRef/parallelism must be integer"),
        ),
        (
            scaled_object(json!({"scaleTargetRef": {"kind": "Deployment"}})),
            NPM,
            Some("data/spec/scaleTargetRef must have required property"),
        ),
    ];
    // One run per checker; each error line starts with its case's file name.
    for checker in [NPM].into_iter().chain(KEDA_RELEASES) {
        let mine: Vec<(usize, &Option<&str>)> =
            cases.iter().enumerate().filter(|(_, c)| c.1 == checker).map(|(i, c)| (i, &c.2)).collect();
        let files: Vec<PathBuf> = mine
            .iter()
            .map(|(index, _)| {
                let file = dir.path().join(format!("case{index}.json"));
                std::fs::write(&file, serde_json::to_vec(&[&cases[*index].0]).unwrap()).unwrap();
                file
            })
            .collect();
        let (_, output) = if checker == NPM { keda_models_check(&files) } else { keda_check(checker, &files) };
        assert!(output.lines().all(|l| l.starts_with("case")), "the check itself failed: {output}");
        for (index, refusal) in mine {
            let errors: Vec<&str> = output.lines().filter(|l| l.starts_with(&format!("case{index}.json "))).collect();
            match refusal {
                None => assert!(errors.is_empty(), "{checker} accepts case {index}: {errors:?}"),
                Some(error) => assert!(errors.iter().any(|l| l.contains(error)), "{checker}, case {index}: {output}"),
            }
        }
    }
    let file = dir.path().join("deployment.yaml");
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pool"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}, "strategy": "gradual",
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "agent", "image": "agent"}]}}}});
    write_yaml(&file, &[deployment]);
    let (passed, output) = kubernetes_validate(KUBERNETES[0], &[file]);
    assert!(!passed && output.contains("'gradual' is not of type 'object'"), "{output}");
}
