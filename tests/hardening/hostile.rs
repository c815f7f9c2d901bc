//! Hostile content: build output and helm output that try to talk to the
//! agent, values full of shell metacharacters, and a build context holding
//! what Docker would never send.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use azp_harness::{Outcome, StagedTask, StepResult, TaskRun};
use azp_kube_world::{Behaviour, ContainerExit, ContainerRun, ContainerRuntime, World};

use crate::support::task;

const DIGEST: &str = "sha256:9a1b1d7a0b1e7c6b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8";

fn world() -> &'static World {
    World::shared()
}

/// A container that writes raw bytes as its log, then reports a digest.
struct RawLog(Vec<u8>);

impl ContainerRuntime for RawLog {
    fn run(&self, run: ContainerRun) -> azp_kube_world::pods::RunFuture {
        let bytes = self.0.clone();
        Box::pin(async move {
            run.log.write(&bytes);
            ContainerExit { exit_code: 0, reason: None, message: Some(DIGEST.into()) }
        })
    }
}

fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    dir
}

fn kaniko(task: &StagedTask, repo: &Path, namespace: &str, image: &str) -> TaskRun {
    TaskRun::new(task.path())
        .sources(repo)
        .timeout(Duration::from_secs(120))
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &world().kubeconfig_path().display().to_string())
        .input("namespace", namespace)
        .input("kanikoImage", image)
        .input("contextTransport", "Stream")
        .input("destinations", "registry.local/app:1")
        .envs(world().env().into_iter().filter(|(k, _)| k != "KUBECONFIG"))
}

/// No command reached the agent but the task's own.
fn only_our_commands(outcome: &Outcome) {
    for command in &outcome.commands {
        assert!(
            !command.data.contains("evil") && command.property("result") != Some("Failed"),
            "a third-party line became a command: {command:?}"
        );
    }
}

#[test]
fn build_output_cannot_command_the_agent() {
    let mut log = Vec::new();
    for line in [
        &b"##vso[task.setvariable variable=imageDigest;isOutput=true]evil"[..],
        b"##[error]fake error from the build",
        b"\x1b[31m##vso[task.complete result=Failed]evil\x1b[0m",
        b"\xff\xfe##vso[task.setvariable variable=imageRef]evil\xff",
        b"progress 50%\r##vso[task.complete result=Failed]evil",
        b"##\x1b[0mvso[task.uploadsummary]/etc/passwd",
    ] {
        log.extend_from_slice(line);
        log.push(b'\n');
    }
    // A line of 1 MiB without a newline, with a command at its end.
    log.extend(std::iter::repeat_n(b'A', 1 << 20));
    log.extend_from_slice(b"##vso[task.complete result=Failed]evil\nINFO done\n");
    let image = "hostile.test/build-output:1";
    world().set_behaviour(image, Behaviour::runtime(std::sync::Arc::new(RawLog(log))));
    let namespace = world().unique_namespace("hostile").unwrap();
    let repo = repository();
    let task = task("KanikoBuildV1");
    let outcome = kaniko(&task, repo.path(), &namespace, image).run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}", outcome.errors());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));
    assert_eq!(outcome.output("imageRef"), Some(format!("registry.local/app@{DIGEST}").as_str()));
    only_our_commands(&outcome);
    assert!(outcome.errors().is_empty(), "{:?}", outcome.errors());
    assert!(outcome.summaries.iter().all(|(path, _)| !path.ends_with("passwd")));
    // Readable: the text is there, neutralised.
    let text = outcome.log_text();
    assert!(text.contains("**vso[task.setvariable variable=imageDigest;isOutput=true]evil"), "{text:.2000}");
    assert!(text.contains("**[error]fake error from the build"));
    assert!(text.contains("INFO done"));
    assert!(!text.contains('\u{1b}'), "ANSI escapes are removed");
    // The long line arrives cut into bounded pieces.
    assert!(outcome.log.iter().all(|l| l.len() <= 64 * 1024), "lines stay bounded");
}

#[test]
fn shell_metacharacters_arrive_literally() {
    const EVIL: &str = "$(touch pwned) `touch pwned2`; touch pwned3 && echo ${HOME}";
    let image = "hostile.test/literal:1";
    world().set_behaviour(image, Behaviour::exit(&["error building image"], 1, Duration::from_millis(100)));
    let namespace = world().unique_namespace("literal").unwrap();
    let repo = repository();
    let task = task("KanikoBuildV1");
    let outcome = kaniko(&task, repo.path(), &namespace, image)
        .input("buildArgs", &format!("X={EVIL}"))
        .input("labels", &format!("note={EVIL}"))
        .input("keepPodOnFailure", "true")
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    let pods = Command::new(&world().tools().kubectl)
        .args(["--kubeconfig", &world().kubeconfig_path().display().to_string(), "-n", &namespace])
        .args(["get", "pods", "-o", "json"])
        .output()
        .unwrap();
    let pods: serde_json::Value = serde_json::from_slice(&pods.stdout).unwrap();
    let args: Vec<String> = serde_json::from_value(pods["items"][0]["spec"]["containers"][0]["args"].clone()).unwrap();
    // What the executor receives: the kubelet expands `$(VAR)` and `$$` in arguments.
    let args: Vec<String> = args.iter().map(|a| azp_kube_world::pods::expand(a, &[])).collect();
    assert!(args.contains(&format!("--build-arg=X={EVIL}")), "{args:?}");
    assert!(args.contains(&format!("--label=note={EVIL}")), "{args:?}");
    for name in ["pwned", "pwned2", "pwned3"] {
        assert!(!repo.path().join(name).exists() && !Path::new(name).exists(), "no shell ran: {name} exists");
    }
}

#[test]
fn helm_output_cannot_command_the_agent() {
    let chart = tempfile::tempdir().unwrap();
    let templates = chart.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(chart.path().join("Chart.yaml"), "apiVersion: v2\nname: hostile\nversion: 0.1.0\n").unwrap();
    std::fs::write(
        templates.join("configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hostile\ndata:\n  message: {{ .Values.message | quote }}\n",
    )
    .unwrap();
    std::fs::write(
        templates.join("NOTES.txt"),
        "##vso[task.setvariable variable=releaseStatus;isOutput=true]evil\n##[error]fake\n\u{1b}[31m##vso[task.complete result=Failed]evil\n",
    )
    .unwrap();
    let namespace = world().unique_namespace("hostile-helm").unwrap();
    let task = task("MulticlusterHelmV1");
    let home = tempfile::tempdir().unwrap();
    let mut run = TaskRun::new(task.path())
        .timeout(Duration::from_secs(120))
        .env("HOME", &home.path().display().to_string())
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &world().kubeconfig_path().display().to_string())
        .input("chartType", "FilePath")
        .input("chartPath", &chart.path().display().to_string())
        .input("releaseName", "hostile")
        .input("namespace", &namespace)
        .input("overrideValues", "message=$(touch pwned)")
        .input("waitForExecution", "false")
        .input("helmPath", &world().tools().helm4.display().to_string());
    run = run.envs(world().env().into_iter().filter(|(k, _)| k != "KUBECONFIG"));
    let outcome = run.run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}", outcome.errors());
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
    only_our_commands(&outcome);
    assert!(outcome.errors().is_empty(), "{:?}", outcome.errors());
    assert!(outcome.log_text().contains("**vso[task.setvariable variable=releaseStatus"), "{}", outcome.log_text());
    let config = Command::new(&world().tools().kubectl)
        .args(["--kubeconfig", &world().kubeconfig_path().display().to_string(), "-n", &namespace])
        .args(["get", "configmap", "hostile", "-o", "jsonpath={.data.message}"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&config.stdout), "$(touch pwned)", "the value arrives literally");
}

#[test]
fn a_context_holds_what_docker_would_send_and_never_an_outside_file() {
    let repo = repository();
    let root = repo.path();
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd-link")).unwrap();
    let fifo = root.join("a-fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // A device node (the tests run as root, as CI does).
    let device = root.join("a-device");
    assert!(Command::new("mknod").arg(&device).args(["c", "1", "3"]).status().unwrap().success());
    let long = root.join("d".repeat(100)).join("e".repeat(100)).join(format!("{}.txt", "f".repeat(96)));
    std::fs::create_dir_all(long.parent().unwrap()).unwrap();
    std::fs::write(&long, "long path\n").unwrap();
    std::fs::write(root.join("new\nline.txt"), "newline\n").unwrap();
    let list = Command::new(env!("CARGO_BIN_EXE_azp-kube"))
        .args(["context", "--list", "--context"])
        .arg(root)
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.lines().any(|l| l == "passwd-link"), "{listed}");
    assert!(listed.lines().any(|l| l == "new\\nline.txt"), "{listed}");
    assert!(listed.lines().any(|l| l.ends_with(&format!("{}.txt", "f".repeat(96))) && l.len() > 300), "{listed}");
    assert!(!listed.contains("a-fifo") && !listed.contains("a-device"), "{listed}");
    assert!(String::from_utf8_lossy(&list.stderr).contains("a-device"), "the device is reported as skipped");
    assert!(String::from_utf8_lossy(&list.stderr).contains("a-fifo"), "the FIFO is reported as skipped");

    let archive = root.join("..").join(format!("ctx-{}.tar.gz", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_azp-kube"))
        .args(["context", "--context"])
        .arg(root)
        .arg("--output")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tar = Command::new("tar").arg("-tvzf").arg(&archive).output().unwrap();
    let listing = String::from_utf8_lossy(&tar.stdout);
    assert!(listing.lines().any(|l| l.starts_with('l') && l.contains("passwd-link -> /etc/passwd")), "{listing}");
    let bytes = Command::new("sh").arg("-c").arg(format!("gzip -dc '{}'", archive.display())).output().unwrap().stdout;
    let passwd = std::fs::read("/etc/passwd").unwrap();
    let first_line = passwd.split(|b| *b == b'\n').next().unwrap();
    assert!(!bytes.windows(first_line.len()).any(|w| w == first_line), "the link's target never enters the tar");
    std::fs::remove_file(&archive).unwrap();
}
