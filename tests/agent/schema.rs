//! Both task.json files validate against the official schema (draft-04),
//! kept in tests/schema/ with its licence.

use azp_harness::repo_root;

fn validate(folder: &str) {
    let root = repo_root();
    let read = |path: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let schema = read(root.join("tests/schema/tasks.schema.json"));
    let task = read(root.join("tasks").join(folder).join("task.json"));
    let validator = jsonschema::draft4::new(&schema).expect("the official schema compiles");
    let errors: Vec<String> = validator.iter_errors(&task).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{folder}/task.json:\n{}", errors.join("\n"));
}

#[test]
fn kaniko_build_task_json_is_valid() {
    validate("KanikoBuildV1");
}

#[test]
fn multicluster_helm_task_json_is_valid() {
    validate("MulticlusterHelmV1");
}

#[test]
fn the_schema_catches_a_broken_task_json() {
    // The validator is not a rubber stamp: a bad input name and an unknown
    // top-level key are rejected.
    let root = repo_root();
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("tests/schema/tasks.schema.json")).unwrap()).unwrap();
    let mut task: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("tasks/KanikoBuildV1/task.json")).unwrap()).unwrap();
    task["inputs"][0]["name"] = "connection-type".into();
    task["surprise"] = true.into();
    let validator = jsonschema::draft4::new(&schema).unwrap();
    assert!(validator.iter_errors(&task).count() >= 2);
}

#[test]
fn task_json_rules_the_schema_does_not_check() {
    let root = repo_root();
    for folder in ["KanikoBuildV1", "MulticlusterHelmV1"] {
        let task: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("tasks").join(folder).join("task.json")).unwrap())
                .unwrap();
        let friendly = task["friendlyName"].as_str().unwrap();
        assert!((1..=40).contains(&friendly.chars().count()), "{folder}: friendlyName over 40 characters (tfx)");
        assert_eq!(task["execution"]["Node20_1"]["target"], "run.js");
        assert_eq!(task["execution"]["Node24"]["target"], "run.js");
        assert_eq!(task["version"]["Major"], 1);
        let min = task["minimumAgentVersion"].as_str().unwrap();
        let parts: Vec<u32> = min.split('.').map(|p| p.parse().unwrap()).collect();
        assert!(parts >= vec![4, 248, 0], "{folder}: minimumAgentVersion {min} is below 4.248.0 (Node20_1)");
        for input in task["inputs"].as_array().unwrap() {
            assert!(
                !input["helpMarkDown"].as_str().unwrap_or("").is_empty(),
                "{folder}: {} has no help",
                input["name"]
            );
        }
    }
}
