//! The README's HelmDeploy@1 → MulticlusterHelm@1 table covers every input
//! HelmDeploy@1 publishes, and points only at inputs MulticlusterHelm has.

use std::collections::{BTreeMap, BTreeSet};

use azp_harness::repo_root;

/// HelmDeploy@1's inputs and their aliases, as published in
/// microsoft/azure-pipelines-tasks `Tasks/HelmDeployV1/task.json`, version
/// 1.269.1 (facts: the names a migrating pipeline uses).
const HELMDEPLOY_INPUTS: &[(&str, &[&str])] = &[
    ("connectionType", &[]),
    ("azureSubscriptionEndpoint", &["azureSubscription"]),
    ("azureResourceGroup", &[]),
    ("kubernetesCluster", &[]),
    ("useClusterAdmin", &[]),
    ("kubernetesServiceEndpoint", &["kubernetesServiceConnection"]),
    ("namespace", &[]),
    ("azureSubscriptionEndpointForACR", &["azureSubscriptionForACR"]),
    ("azureResourceGroupForACR", &[]),
    ("azureContainerRegistry", &[]),
    ("command", &[]),
    ("chartType", &[]),
    ("chartName", &[]),
    ("chartPath", &[]),
    ("remoteRepo", &[]),
    ("version", &["chartVersion"]),
    ("releaseName", &[]),
    ("overrideValues", &[]),
    ("valueFile", &[]),
    ("destination", &[]),
    ("canaryimage", &["canaryImage"]),
    ("upgradetiller", &["upgradeTiller"]),
    ("updatedependency", &["updateDependency"]),
    ("save", &[]),
    ("install", &[]),
    ("recreate", &[]),
    ("resetValues", &[]),
    ("force", &[]),
    ("waitForExecution", &[]),
    ("arguments", &[]),
    ("enableTls", &[]),
    ("caCert", &[]),
    ("certificate", &[]),
    ("privatekey", &[]),
    ("tillernamespace", &["tillerNamespace"]),
    ("failOnStderr", &[]),
    ("publishPipelineMetadata", &[]),
    ("chartNameForACR", &[]),
    ("chartPathForACR", &[]),
];

/// MulticlusterHelm's inputs: every accepted name (name or alias) → the input.
fn our_names() -> BTreeMap<String, String> {
    let path = repo_root().join("tasks/MulticlusterHelmV1/task.json");
    let task: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = BTreeMap::new();
    for input in task["inputs"].as_array().unwrap() {
        let name = input["name"].as_str().unwrap().to_string();
        for alias in input["aliases"].as_array().into_iter().flatten() {
            names.insert(alias.as_str().unwrap().to_string(), name.clone());
        }
        names.insert(name.clone(), name);
    }
    names
}

/// The backticked words of a table cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn the_helmdeploy_migration_table_covers_every_helmdeploy_input() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme.find("<!-- migration:HelmDeploy -->").expect("README.md has the migration table");
    let end = start + readme[start..].find("<!-- /migration -->").unwrap();
    let rows: Vec<Vec<&str>> = readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let ours = our_names();
    let mut covered = BTreeSet::new();
    for row in &rows {
        let theirs = code_spans(row[0]);
        let (name, aliases) = HELMDEPLOY_INPUTS
            .iter()
            .find(|(name, _)| theirs.first().map(String::as_str) == Some(*name))
            .unwrap_or_else(|| panic!("{:?} is not a HelmDeploy@1 input", row[0]));
        assert_eq!(&theirs[1..], *aliases, "aliases of {name} in the table");
        assert!(covered.insert(*name), "{name} has two rows");
        let target = code_spans(row[1]);
        // A HelmDeploy name that works here must lead to the input that takes it.
        if let Some(input) = ours.get(*name) {
            assert_eq!(target, vec![input.clone()], "{name} is accepted as {input}: the table must say so");
        }
        match target.as_slice() {
            [] => assert_eq!(row[1], "—", "{name}: no input given and no dash"),
            [input] => assert!(ours.contains_key(input), "{name} → {input}, which MulticlusterHelm@1 does not have"),
            more => panic!("{name} → {more:?}: one input per row"),
        }
        assert!(!row[2].is_empty(), "{name}: say what differs");
    }
    let missing: Vec<_> = HELMDEPLOY_INPUTS.iter().map(|(n, _)| *n).filter(|n| !covered.contains(n)).collect();
    assert!(missing.is_empty(), "HelmDeploy@1 inputs missing from the table: {missing:?}");
}
