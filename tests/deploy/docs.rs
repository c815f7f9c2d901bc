//! The docs name the objects the chart renders: every name in
//! deploy/chart/README.md's "What gets installed" table, and every
//! `agents-azure-agent…` name deploy/README.md mentions for its release
//! `agents`, is an object `helm template` renders.

use std::collections::BTreeSet;

use crate::support::*;

/// The names of every object the chart renders for release `agents` in
/// namespace `azure-agent`, in ScaledJob and Deployment mode, with every
/// optional object on.
fn rendered_names() -> BTreeSet<String> {
    let chart = chart();
    let (_, helm) = helms()[0];
    let mut names = BTreeSet::new();
    for mode in ["ScaledJob", "Deployment"] {
        let mut args = vec!["template", "agents", chart.as_str(), "--namespace", "azure-agent"];
        args.extend(REQUIRED);
        let token = format!("azp.token={PAT}");
        let mode = format!("mode={mode}");
        for set in [
            token.as_str(),
            mode.as_str(),
            "rbac.helmNamespaces={web}",
            "aws.profiles.dev.roleArn=arn:aws:iam::222222222222:role/deployer",
            "serviceAccount.agent.roleArn=arn:aws:iam::123456789012:role/azp-kube-agent",
        ] {
            args.extend(["--set", set]);
        }
        for object in parse_documents(&ok(helm, &args)) {
            names.insert(object["metadata"]["name"].as_str().unwrap().to_string());
        }
    }
    names
}

/// The backticked object names in the first column of the chart README's
/// "What gets installed" table (kinds, modes and value names left out).
fn names_in_chart_readme() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("deploy/chart/README.md")).unwrap();
    let table = readme.split("## What gets installed").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut names = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| Object") && !l.starts_with("| ---")) {
        let first = row.split(" | ").next().unwrap();
        for name in first.split('`').skip(1).step_by(2) {
            if name.starts_with(|c: char| c.is_ascii_uppercase()) || name.contains('.') {
                continue;
            }
            let name = name
                .replace("<fullname>", "agents-azure-agent")
                .replace("<release namespace>", "azure-agent")
                .replace("<release>", "agents");
            names.push(name);
        }
    }
    names
}

#[test]
fn every_object_name_the_docs_mention_is_one_the_chart_renders() {
    let rendered = rendered_names();
    let documented = names_in_chart_readme();
    assert!(documented.len() >= 10, "too few names found in the table: {documented:?}");
    let missing: Vec<&String> = documented.iter().filter(|n| !rendered.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "deploy/chart/README.md names objects the chart does not render: {missing:?}\nrendered: {rendered:?}"
    );

    let deploy_readme = std::fs::read_to_string(repo().join("deploy/README.md")).unwrap();
    let mentioned: BTreeSet<&str> = deploy_readme
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("agents-azure-agent"))
        .collect();
    assert!(!mentioned.is_empty());
    for name in mentioned {
        assert!(
            rendered.contains(name),
            "deploy/README.md names {name}, which the chart does not render: {rendered:?}"
        );
    }
}
