//! The floors of the house (see the layout in the style guide): the commands
//! (`main.rs`, `cli`, `tasks`) orchestrate the concerns (`context`, `aws`,
//! `kube`, `kaniko`, `helm`), which stand on the agent contract (`azp`). A
//! concern never reaches up into the commands nor across into another
//! concern; `azp` reaches into nothing. This reads every source file's
//! `crate::…` paths, as a reviewer would grep them.

use std::path::{Path, PathBuf};

/// Each lower module and the crate modules it may name besides itself.
const FLOORS: &[(&str, &[&str])] = &[
    ("azp", &[]),
    ("context", &["azp"]),
    ("aws", &["azp"]),
    ("kube", &["azp"]),
    ("kaniko", &["azp"]),
    ("helm", &["azp"]),
];

/// The crate modules a source text names: the first segment of every
/// `crate::x` path, including each of `crate::{x, y::z}`.
fn named_modules(source: &str) -> Vec<String> {
    let mut named = Vec::new();
    for (at, _) in source.match_indices("crate::") {
        // `azp_kube::crate::` cannot happen; `::crate` can only be the keyword.
        if source[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &source[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            named.extend(group.split(',').map(|item| first_segment(item.trim())).filter(|s| !s.is_empty()));
        } else {
            named.push(first_segment(rest));
        }
    }
    named
}

fn first_segment(path: &str) -> String {
    path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every `file: crate::module` that breaks the floors.
fn violations(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (module, allowed) in FLOORS {
        for file in rust_files(&root.join(module)) {
            let source = std::fs::read_to_string(&file).unwrap();
            for named in named_modules(&source) {
                if named != *module && !allowed.contains(&named.as_str()) {
                    found.push(format!("{}: crate::{named}", file.strip_prefix(root).unwrap().display()));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn concern_modules_import_neither_the_commands_nor_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rust");
    let found = violations(&root);
    assert!(found.is_empty(), "modules that reach past their floor:\n{}", found.join("\n"));
}

#[test]
fn the_floor_check_sees_every_form_of_a_path() {
    let source = "use crate::cli::EksTokenArgs;\nuse crate::{azp::Env, tasks::cancel};\nfn f() { crate::aws::eks::token(); }\n/// [`crate::kube::Connection`]\nuse azp_kube::crate_like::x;";
    assert_eq!(named_modules(source), ["cli", "azp", "tasks", "aws", "kube"]);
    // And on a tree: a concern that imports the CLI is reported by file.
    let root = tempfile::tempdir().unwrap();
    for (module, _) in FLOORS {
        std::fs::create_dir(root.path().join(module)).unwrap();
    }
    std::fs::write(root.path().join("kube/kubeconfig.rs"), "use crate::aws::eks;\nuse crate::azp::Env;\n").unwrap();
    std::fs::write(root.path().join("helm/runner.rs"), "use crate::tasks::cancel::Cancellation;\n").unwrap();
    assert_eq!(violations(root.path()), ["helm/runner.rs: crate::tasks", "kube/kubeconfig.rs: crate::aws"]);
}

/// The binary's TLS is ring alone (kube, the AWS SDK, the OIDC client): a
/// second provider brings aws-lc's megabytes back into every task package,
/// and leaves rustls unable to choose one where no client names it.
#[test]
fn the_binary_depends_on_one_crypto_provider() {
    let aws_lc = dependents_in_the_binary("aws-lc-sys");
    assert!(aws_lc.trim().is_empty(), "aws-lc is in the binary's dependencies:\n{aws_lc}");
    assert!(dependents_in_the_binary("ring").contains("rustls"), "ring is the provider");
}

/// `cargo tree -i <krate>` over the binary's normal dependencies: what pulls it in.
fn dependents_in_the_binary(krate: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(azp_harness::repo_root())
        .args(["tree", "--locked", "--offline", "-p", "azp-kube", "-e", "normal", "-i", krate])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
