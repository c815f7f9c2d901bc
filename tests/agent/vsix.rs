//! The packaged extension: both task folders are complete, and a task runs
//! from the unpacked VSIX through the launcher, which unpacks the task's
//! brotli-compressed binary into a private folder in the agent's temp
//! directory for the step and removes it afterwards.
//!
//! The VSIX is built by `extension/package.sh`, which the test script runs
//! before `cargo test`; `AZP_KUBE_VSIX` may name another one.

use std::path::{Path, PathBuf};
use std::process::Command;

use azp_harness::{StepResult, TaskRun, built_vsix, packaged_task, repo_root, unpack_vsix};

#[test]
fn the_vsix_holds_both_tasks_and_runs_them() {
    let vsix = built_vsix();
    let size = std::fs::metadata(&vsix).unwrap().len();
    assert!(size < 25 * 1024 * 1024, "{} is {size} bytes, over Azure DevOps Server's 25 MB cap", vsix.display());
    let unpacked = tempfile::tempdir().unwrap();
    unpack_vsix(&vsix, unpacked.path());
    assert!(unpacked.path().join("extension.vsixmanifest").is_file());

    for (folder, missing, own, others) in [
        (
            "KanikoBuildV1",
            "Input required: S3 bucket (bucket)",
            ["kaniko-build", "context"],
            ["multicluster-helm", "eks-token"],
        ),
        (
            "MulticlusterHelmV1",
            "Input required: Chart name (chartName)",
            ["multicluster-helm", "eks-token"],
            ["kaniko-build", "context"],
        ),
    ] {
        let task =
            packaged_task(unpacked.path(), folder).unwrap_or_else(|| panic!("no {folder}/task.json in the VSIX"));
        for file in ["task.json", "run.js", "bin/linux-x64/azp-kube.br"] {
            assert!(task.join(file).is_file(), "{folder}/{file} is in the VSIX");
        }
        assert!(!task.join("bin/linux-x64/azp-kube").exists(), "{folder} ships its binary uncompressed");

        let agent_temp = tempfile::tempdir().unwrap();
        let outcome = TaskRun::new(&task).env("AGENT_TEMPDIRECTORY", &agent_temp.path().to_string_lossy()).run();
        assert_eq!(outcome.result, StepResult::Failed);
        assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.log);
        assert_eq!(outcome.errors()[0].message, missing);
        let left: Vec<_> = std::fs::read_dir(agent_temp.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "the step left {left:?} in the agent's temp directory");

        let binary = decompressed(&task.join("bin/linux-x64/azp-kube.br"), agent_temp.path());
        assert_carries_only(&binary, &own, &others);
        assert_no_test_switches(&binary);
    }
}

/// The shipped binary, decoded as run.js does (Node's brotli).
fn decompressed(packed: &Path, into: &Path) -> PathBuf {
    let binary = into.join("azp-kube");
    let status = Command::new("node")
        .args(["-e", "const fs = require('fs'), zlib = require('zlib'); \
            fs.writeFileSync(process.argv[2], zlib.brotliDecompressSync(fs.readFileSync(process.argv[1])), { mode: 0o700 })"])
        .arg(packed)
        .arg(&binary)
        .status()
        .unwrap();
    assert!(status.success(), "decode {}", packed.display());
    binary
}

/// Each task folder ships a binary built with its own task (and the terminal
/// command that serves it) and no other task's code.
fn assert_carries_only(binary: &Path, own: &[&str], others: &[&str]) {
    let out = Command::new(binary).arg("--help").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let help = String::from_utf8_lossy(&out.stdout);
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap_or_else(|| panic!("no commands in {}'s help:\n{help}", binary.display()))
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .take_while(|word| *word != "Options:")
        .collect();
    for command in own {
        assert!(commands.contains(command), "{} has no {command}: {commands:?}", binary.display());
    }
    for command in others {
        assert!(!commands.contains(command), "{} carries {command}: {commands:?}", binary.display());
    }
    let out = Command::new(binary).arg(others[0]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{} runs {}", binary.display(), others[0]);
}

/// The shipped (release) binaries have none of the tests' switches: their names
/// are nowhere in them, and a pipeline variable `AZP_KUBE_FIXED_TIME` does not fix
/// the clock of `eks-token` (debug builds, which `cargo test` runs, would sign for
/// 2023 here).
fn assert_no_test_switches(binary: &Path) {
    let bytes = std::fs::read(binary).unwrap();
    for switch in ["AZP_KUBE_FIXED_TIME", "AZP_KUBE_EKS_TOKEN_LIFETIME_SECONDS", "AZP_KUBE_UNSCHEDULABLE_GRACE_SECONDS"]
    {
        assert!(!bytes.windows(switch.len()).any(|w| w == switch.as_bytes()), "{} names {switch}", binary.display());
    }
    let help = Command::new(binary).arg("--help").output().unwrap();
    if !String::from_utf8_lossy(&help.stdout).contains("eks-token") {
        return;
    }
    let out = Command::new(binary)
        .args(["eks-token", "--cluster", "world", "--region", "us-east-1"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "not-a-secret")
        .env("AZP_KUBE_FIXED_TIME", "1700000000")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let credential: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expires = credential["status"]["expirationTimestamp"].as_str().unwrap();
    assert!(!expires.starts_with("2023-"), "{} obeys AZP_KUBE_FIXED_TIME: {expires}", binary.display());
}

/// A task folder with the repository's task.json and run.js, and no binary.
fn launcher_only(folder: &str) -> tempfile::TempDir {
    let task = tempfile::tempdir().unwrap();
    let root = repo_root();
    std::fs::copy(root.join("tasks").join(folder).join("task.json"), task.path().join("task.json")).unwrap();
    std::fs::copy(root.join("extension/run.js"), task.path().join("run.js")).unwrap();
    task
}

#[test]
fn run_js_reports_a_missing_platform_binary() {
    let task = launcher_only("KanikoBuildV1");
    let outcome = TaskRun::new(task.path()).run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(outcome.errors().len(), 1);
    assert!(
        outcome.errors()[0].message.contains("no binary for this agent's platform linux-x64"),
        "{:?}",
        outcome.errors()
    );
}

#[test]
fn run_js_reports_a_packed_binary_it_cannot_unpack_and_leaves_nothing() {
    let task = launcher_only("MulticlusterHelmV1");
    let bin = task.path().join("bin/linux-x64");
    std::fs::create_dir_all(&bin).unwrap();
    // A download cut short: not a whole brotli stream.
    std::fs::write(bin.join("azp-kube.br"), b"\x1b\xff\xff\x0f\x00").unwrap();
    let agent_temp = tempfile::tempdir().unwrap();
    let outcome = TaskRun::new(task.path()).env("AGENT_TEMPDIRECTORY", &agent_temp.path().to_string_lossy()).run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.log);
    assert!(
        outcome.errors()[0].message.contains("cannot unpack") && outcome.errors()[0].message.contains("azp-kube.br")
    );
    assert_eq!(std::fs::read_dir(agent_temp.path()).unwrap().count(), 0, "a half-unpacked binary was left");
}
