//! The README's input tables are generated from task.json; this test fails
//! when they disagree. `AZP_KUBE_UPDATE_README=1 cargo test --test agent readme`
//! rewrites them.

use azp_harness::repo_root;

/// The Markdown table of a task's inputs.
fn inputs_table(folder: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("tasks").join(folder).join("task.json")).unwrap();
    let task: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut table = String::from("| Input | Type | Default | Description |\n|---|---|---|---|\n");
    for input in task["inputs"].as_array().unwrap() {
        let name = input["name"].as_str().unwrap();
        let kind = match input["type"].as_str().unwrap() {
            "pickList" => {
                let options: Vec<String> =
                    input["options"].as_object().unwrap().keys().map(|k| format!("`{k}`")).collect();
                options.join(", ")
            }
            other => other.to_string(),
        };
        let default = match &input["defaultValue"] {
            serde_json::Value::String(s) if !s.is_empty() => format!("`{s}`"),
            serde_json::Value::Bool(b) => format!("`{b}`"),
            _ => String::new(),
        };
        let mut description = format!("**{}**", input["label"].as_str().unwrap());
        if input["required"].as_bool().unwrap_or(false) {
            description.push_str(" (required)");
        }
        description.push_str(&format!(". {}", input["helpMarkDown"].as_str().unwrap_or("")));
        if let Some(aliases) = input["aliases"].as_array() {
            let names: Vec<String> = aliases.iter().map(|a| format!("`{}`", a.as_str().unwrap())).collect();
            description.push_str(&format!(" Also accepted as {} (HelmDeploy@1's name).", names.join(", ")));
        }
        if let Some(rule) = input["visibleRule"].as_str() {
            description.push_str(&format!(" Used when `{rule}`."));
        }
        table.push_str(&format!("| `{name}` | {} | {} | {} |\n", cell(&kind), cell(&default), cell(&description)));
    }
    table
}

fn section(readme: &str, task: &str) -> Option<(usize, usize)> {
    let start_marker = format!("<!-- inputs:{task} -->\n");
    let start = readme.find(&start_marker)? + start_marker.len();
    let end = start + readme[start..].find("<!-- /inputs -->")?;
    Some((start, end))
}

#[test]
fn readme_input_tables_match_task_json() {
    let path = repo_root().join("README.md");
    let mut readme = std::fs::read_to_string(&path).unwrap();
    let mut stale = Vec::new();
    for (task, folder) in [("KanikoBuild", "KanikoBuildV1"), ("MulticlusterHelm", "MulticlusterHelmV1")] {
        let (start, end) =
            section(&readme, task).unwrap_or_else(|| panic!("README.md has no <!-- inputs:{task} --> table"));
        let expected = inputs_table(folder);
        if readme[start..end] != expected {
            stale.push(task);
            readme.replace_range(start..end, &expected);
        }
    }
    if !stale.is_empty() && std::env::var_os("AZP_KUBE_UPDATE_README").is_some() {
        std::fs::write(&path, readme).unwrap();
        return;
    }
    assert!(
        stale.is_empty(),
        "README.md input tables of {stale:?} differ from task.json; rerun with AZP_KUBE_UPDATE_README=1"
    );
}
