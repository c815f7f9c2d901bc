//! task.json is the source of truth for inputs: renaming one without the Rust
//! side following must break the build (build.rs generates the fields, and
//! each task destructures them exhaustively).
//!
//! The test copies the crate's sources to a temp folder, renames one input in
//! a task.json and runs `cargo check` there: it must fail, naming the field.
//! The unchanged copy must pass, so the failure is the rename's doing.

use std::path::Path;
use std::process::Command;

use azp_harness::repo_root;

fn copy_crate(to: &Path) {
    let root = repo_root();
    for file in ["Cargo.toml", "Cargo.lock", "build.rs", "vss-extension.json"] {
        std::fs::copy(root.join(file), to.join(file)).unwrap();
    }
    for dir in ["rust", "tasks"] {
        copy_dir(&root.join(dir), &to.join(dir));
    }
    // Only the crate itself: no other workspace member, test or dev-dependency.
    let manifest = std::fs::read_to_string(to.join("Cargo.toml")).unwrap();
    let mut keep = true;
    let mut lines = Vec::new();
    for line in manifest.lines() {
        if line.starts_with('[') {
            keep = !matches!(line.trim(), "[dev-dependencies]" | "[[test]]" | "[[bench]]");
        }
        if keep && !line.starts_with("members") {
            lines.push(line);
        }
    }
    std::fs::write(to.join("Cargo.toml"), lines.join("\n")).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "bin" {
                copy_dir(&entry.path(), &target);
            }
        } else if entry.file_name() != "run.js" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn cargo_check(dir: &Path) -> (bool, String) {
    // A target folder of its own, kept between runs, so the check is warm
    // and never waits for the lock of the build that runs this test.
    let target = repo_root().join("target/inputs-sync-check");
    let output = Command::new(env!("CARGO"))
        .args(["check", "--offline", "--lib", "--quiet", "--message-format=short"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(dir)
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn renaming_an_input_breaks_the_build() {
    let copy = tempfile::tempdir().unwrap();
    copy_crate(copy.path());
    let (ok, stderr) = cargo_check(copy.path());
    assert!(ok, "the unchanged copy must build:\n{stderr}");

    let task_json = copy.path().join("tasks/KanikoBuildV1/task.json");
    let text = std::fs::read_to_string(&task_json).unwrap();
    std::fs::write(&task_json, text.replace("\"name\": \"keepPodOnFailure\"", "\"name\": \"retainPodOnFailure\""))
        .unwrap();
    let (ok, stderr) = cargo_check(copy.path());
    assert!(!ok, "a renamed input must break the build");
    assert!(stderr.contains("keep_pod_on_failure"), "the error names the field:\n{stderr}");
}

#[test]
fn a_duplicate_input_name_breaks_the_build() {
    let copy = tempfile::tempdir().unwrap();
    copy_crate(copy.path());
    let task_json = copy.path().join("tasks/MulticlusterHelmV1/task.json");
    let text = std::fs::read_to_string(&task_json).unwrap();
    std::fs::write(&task_json, text.replace("\"name\": \"atomic\"", "\"name\": \"install\"")).unwrap();
    let (ok, stderr) = cargo_check(copy.path());
    assert!(!ok);
    assert!(stderr.contains("two inputs share the name \"install\""), "{stderr}");
}

#[test]
fn a_version_mismatch_breaks_the_build() {
    let copy = tempfile::tempdir().unwrap();
    copy_crate(copy.path());
    let manifest = copy.path().join("vss-extension.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    std::fs::write(&manifest, text.replacen(&format!("\"version\": \"{version}\""), "\"version\": \"9.9.9\"", 1))
        .unwrap();
    let (ok, stderr) = cargo_check(copy.path());
    assert!(!ok);
    assert!(stderr.contains("vss-extension.json has version \"9.9.9\""), "{stderr}");
}

#[test]
fn an_invalid_task_json_breaks_the_build() {
    let copy = tempfile::tempdir().unwrap();
    copy_crate(copy.path());
    let task_json = copy.path().join("tasks/KanikoBuildV1/task.json");
    let text = std::fs::read_to_string(&task_json).unwrap();
    std::fs::write(&task_json, text.replacen('{', "{,", 1)).unwrap();
    let (ok, stderr) = cargo_check(copy.path());
    assert!(!ok);
    assert!(stderr.contains("is not a valid task.json"), "{stderr}");
}
