//! The demo end to end: the example pipeline run by the `azp-kube-demo`
//! binary against the local world, a broken example, and the refusals of
//! unsupported YAML.

use std::path::{Path, PathBuf};
use std::process::Command;

use azp_kube_demo::yaml::{self, Condition, VarValue};

fn repo() -> PathBuf {
    azp_harness::repo_root()
}

/// Runs the demo binary; `(exit code, stdout, stderr)`.
fn demo(args: &[&str], dir: &Path) -> (Option<i32>, String, String) {
    let demo = Path::new(env!("CARGO_BIN_EXE_azp-kube-demo"));
    let binary = demo.parent().unwrap().join("azp-kube");
    assert!(
        binary.is_file(),
        "{} is missing: build it first (cargo build -p azp-kube; scripts/test.sh builds the workspace)",
        binary.display()
    );
    let out = Command::new(demo).args(args).arg("--no-color").current_dir(dir).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of the repository's `examples/` in a temporary checkout.
fn examples_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp").arg("-a").arg(repo().join("examples")).arg(dir.path()).status().unwrap();
    assert!(status.success());
    dir
}

/// The lines of the run summary, as `(stage, result)`.
fn stage_results(stdout: &str) -> Vec<(String, String)> {
    let summary = stdout.split("\nRun summary\n").nth(1).unwrap_or_else(|| panic!("no run summary:\n{stdout}"));
    summary
        .lines()
        .take_while(|l| l.starts_with("  ") && !l.starts_with("  Errors"))
        .map(|l| {
            let (stage, result) = l.trim().split_once(' ').unwrap();
            (stage.to_string(), result.trim().to_string())
        })
        .collect()
}

#[test]
fn the_example_pipeline_builds_and_deploys_the_digest() {
    let (code, stdout, stderr) = demo(&[], &repo());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        stage_results(&stdout),
        [("Build".to_string(), "✓ Succeeded".to_string()), ("Deploy".to_string(), "✓ Succeeded".to_string())]
    );
    // The build log, live from the kaniko pod, in its group.
    assert!(stdout.contains("    ▸ kaniko build log\n"), "{stdout}");
    assert!(stdout.contains("STEP 1/6: FROM 127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("excluded by .dockerignore"), "{stdout}");
    // The digest, from the summary.
    let digest_line = stdout.lines().find(|l| l.contains("│ Image digest")).unwrap_or_else(|| panic!("{stdout}"));
    let digest = digest_line.split_whitespace().last().unwrap().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
    // The Deploy stage uses that digest, and the release's revision is reported.
    let deploy = stdout.split("━━ Stage Deploy").nth(1).unwrap();
    // The command line shows override keys only; the chart's notes show the image.
    assert!(deploy.contains("--set image.ref=…"), "{deploy}");
    assert!(deploy.contains("web runs 127.0.0.1:") && deploy.contains(&format!("/web@{digest}")), "{deploy}");
    assert!(deploy.contains("│ Revision   1"), "{deploy}");
    assert!(deploy.contains("AWS identity: role deployer"), "{deploy}");
    // The cluster's version from DescribeCluster is the one its API server reports.
    assert!(deploy.contains("Kubernetes 1.34\n") && deploy.contains("(server v1.34.0)"), "{deploy}");
    // The README's copy of this output is what the demo prints now.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let (copy, printed) = as_in_readme(&readme, &stdout);
    if copy != printed {
        // `AZP_KUBE_UPDATE_README=1 cargo test -p azp-kube-demo --test demo the_example` rewrites the copy.
        if std::env::var_os("AZP_KUBE_UPDATE_README").is_some() {
            let fresh = stdout.replace(&repo().display().to_string(), README_CHECKOUT);
            let old = format!("azp-kube-demo: examples/azure-pipelines.yml\n{}", readme_copy(&readme));
            std::fs::write(repo().join("README.md"), readme.replacen(&old, fresh.trim_end_matches('\n'), 1)).unwrap();
            return;
        }
        let first = copy.lines().zip(printed.lines()).find(|(a, b)| a != b);
        panic!(
            "README.md's demo output differs from what the demo prints (first differing line: {first:?}; \
             AZP_KUBE_UPDATE_README=1 rewrites it):\n{printed}"
        );
    }
}

/// The README's copy of the demo output and what the demo printed, both
/// without what changes from run to run.
fn as_in_readme(readme: &str, stdout: &str) -> (String, String) {
    let copy = format!("azp-kube-demo: examples/azure-pipelines.yml\n{}\n", readme_copy(readme));
    let copy = normalise(&copy.replace(README_CHECKOUT, "<repo>"));
    let printed = normalise(&stdout.replace(&repo().display().to_string(), "<repo>"));
    (copy, printed)
}

/// The example pipeline with the tasks as shipped: each from its folder of the
/// unpacked VSIX, with its own release binary (built with that task alone), run
/// by run.js. It prints what the tested build prints.
#[test]
fn the_example_pipeline_runs_the_same_from_the_package() {
    let unpacked = tempfile::tempdir().unwrap();
    azp_harness::unpack_vsix(&azp_harness::built_vsix(), unpacked.path());
    let (code, stdout, stderr) = demo(&["--package", unpacked.path().to_str().unwrap()], &repo());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let (copy, printed) = as_in_readme(&readme, &stdout);
    let first = copy.lines().zip(printed.lines()).find(|(a, b)| a != b);
    assert!(copy == printed, "the packaged tasks print otherwise (first differing line: {first:?}):\n{printed}");
}

/// The README's copy of the demo output, after its first line.
fn readme_copy(readme: &str) -> &str {
    readme
        .split("```text\nazp-kube-demo: examples/azure-pipelines.yml\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```\n").next())
        .expect("README.md has no copy of the demo's output")
}

/// Where the README's copy of the demo output was run.
const README_CHECKOUT: &str = "/home/me/azp-kube";

/// The demo's output without what changes from run to run: times, ports,
/// digests and other hashes, build ids, durations.
fn normalise(text: &str) -> String {
    let rules = [
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "<time>"),
        (r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}", "<time>"),
        (r"[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2} ", "<time> "),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
        (r"\b[0-9a-f]{64}\b", "<digest>"),
        (r"\b[0-9a-f]{32}\b", "<hash>"),
        (r"--> [0-9a-f]{11}", "--> <id>"),
        (r"kaniko-\d+-[a-z0-9]{5}", "kaniko-<build>"),
        (r"azp-kube-\d+", "azp-kube-<build>"),
        (r"\d+\.\d s\b", "<duration>"),
    ];
    rules.iter().fold(text.to_string(), |text, (pattern, with)| {
        regex::Regex::new(pattern).unwrap().replace_all(&text, *with).into_owned()
    })
}

/// A Dockerfile whose RUN fails: kaniko fails, the Build stage fails and
/// Deploy is skipped.
#[test]
fn a_failing_dockerfile_fails_build_and_skips_deploy() {
    let checkout = examples_copy();
    let dockerfile = checkout.path().join("examples/app/Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    std::fs::write(&dockerfile, text.replace("RUN echo", "RUN false && echo")).unwrap();
    let (code, stdout, stderr) = demo(&["--pipeline", "examples/azure-pipelines.yml"], checkout.path());
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert_eq!(
        stage_results(&stdout),
        [("Build".to_string(), "✗ Failed".to_string()), ("Deploy".to_string(), "⊘ Skipped".to_string())]
    );
    assert!(stdout.contains("✗ Failed  Build the web image"), "{stdout}");
    assert!(stdout.contains("condition succeeded() is false: Build did not succeed"), "{stdout}");
    assert!(!stdout.contains("Starting: Deploy web to dev"), "{stdout}");
}

/// A missing Dockerfile is refused by the task before any pod is started.
#[test]
fn a_missing_dockerfile_fails_build_and_skips_deploy() {
    let checkout = examples_copy();
    std::fs::remove_file(checkout.path().join("examples/app/Dockerfile")).unwrap();
    let (code, stdout, stderr) = demo(&["--pipeline", "examples/azure-pipelines.yml"], checkout.path());
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert_eq!(
        stage_results(&stdout),
        [("Build".to_string(), "✗ Failed".to_string()), ("Deploy".to_string(), "⊘ Skipped".to_string())]
    );
    assert!(stdout.contains("ERROR: "), "{stdout}");
    assert!(!stdout.contains("Started pod"), "{stdout}");
}

const BASE: &str = "stages:
  - stage: Build
    jobs:
      - job: Image
        steps:
          - task: KanikoBuild@1
            name: kaniko
            inputs:
              destinations: r/web:1
";

/// `(yaml, line, feature named in the message)` for what is refused.
#[test]
fn unsupported_yaml_is_refused_with_the_line_and_the_feature() {
    let cases: &[(&str, usize, &str)] = &[
        ("resources:\n  repositories: []\nstages: []\n", 1, "resources:"),
        ("parameters:\n  - name: x\n", 1, "parameters:"),
        ("extends:\n  template: x.yml\n", 1, "extends:"),
        ("stages:\n  - template: stages.yml\n", 2, "template:"),
        (
            &BASE.replace(
                "          - task: KanikoBuild@1",
                "          - script: echo hi\n          - task: KanikoBuild@1",
            ),
            6,
            "script: step",
        ),
        (
            &BASE.replace(
                "          - task: KanikoBuild@1",
                "          - bash: echo hi\n          - task: KanikoBuild@1",
            ),
            6,
            "bash: step",
        ),
        (
            &BASE.replace("        steps:", "        strategy:\n          matrix:\n            a: {}\n        steps:"),
            5,
            "strategy: matrix",
        ),
        (&BASE.replace("r/web:1", "r/web:${{ parameters.tag }}"), 9, "template expression ${{ }}"),
        (&BASE.replace("        steps:", "        container: ubuntu\n        steps:"), 5, "container:"),
        (&BASE.replace("      - job: Image", "      - deployment: Image"), 4, "deployment:"),
        (
            &BASE.replace("            name: kaniko", "            name: kaniko\n            condition: eq(1, 1)"),
            8,
            "condition: eq(1, 1)",
        ),
        (&BASE.replace("    jobs:", "    variables:\n      - group: secrets\n    jobs:"), 4, "variables: - group:"),
        (
            &BASE.replace("    jobs:", "    variables:\n      x: $[ variables['y'] ]\n    jobs:"),
            4,
            "runtime expression",
        ),
        (
            &BASE.replace("name: kaniko", "name: kaniko\n            retryCountOnTaskFailure: 2"),
            8,
            "retryCountOnTaskFailure:",
        ),
        (
            "stages:\n  - stage: A\n    dependsOn: B\n    jobs:\n      - job: J\n        steps:\n          - task: KanikoBuild@1\n",
            2,
            "stage A",
        ),
        ("x: &a 1\nstages: *a\n", 1, "YAML anchor"),
        ("stages:\n  - stage: A\n   jobs: [\n", 3, "YAML syntax"),
        ("jobs:\n  - job: A\n", 1, "jobs: at the top level"),
        ("stages:\n  - stage: Build\n    frobnicate: 1\n", 3, "frobnicate:"),
    ];
    for (text, line, feature) in cases {
        let refusal = yaml::parse(text).expect_err(text);
        assert_eq!(refusal.line, *line, "{refusal}\n{text}");
        assert!(refusal.feature.contains(feature), "{refusal}\n{text}");
        assert!(refusal.to_string().starts_with(&format!("line {line}: ")), "{refusal}");
    }
}

#[test]
fn trigger_pr_pool_and_name_are_ignored_with_a_note() {
    let text = format!("trigger:\n  - main\npr: none\nname: $(Date:yyyyMMdd)\npool: agents\n{BASE}");
    let pipeline = yaml::parse(&text).unwrap();
    let notes = pipeline.notes.join("\n");
    for (line, key) in [(1, "trigger:"), (3, "pr:"), (4, "name:"), (5, "pool:")] {
        assert!(notes.contains(&format!("line {line}: {key} ignored")), "{notes}");
    }
}

#[test]
fn the_binary_refuses_with_the_file_and_line_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yml"), BASE.replace("task: KanikoBuild@1", "script: make")).unwrap();
    let (code, stdout, stderr) = demo(&["--pipeline", "p.yml"], dir.path());
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("p.yml: line 6: script: step: only task: steps are supported"), "{stderr}");
    assert!(!stdout.contains("starting the local world"), "{stdout}");
    std::fs::write(dir.path().join("p.yml"), BASE.replace("KanikoBuild@1", "Docker@2")).unwrap();
    let (code, _, stderr) = demo(&["--pipeline", "p.yml"], dir.path());
    assert_eq!(code, Some(2));
    assert!(stderr.contains("line 6: task: Docker@2: this task is not in this repository"), "{stderr}");
}

#[test]
fn the_example_pipeline_parses_as_written() {
    let text = std::fs::read_to_string(repo().join("examples/azure-pipelines.yml")).unwrap();
    let pipeline = yaml::parse(&text).unwrap();
    let names: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Build", "Deploy"]);
    let deploy = &pipeline.stages[1];
    assert_eq!(deploy.depends_on, ["Build"]);
    assert_eq!(deploy.condition, Condition::Succeeded);
    let image_ref = &deploy.jobs[0].variables[0];
    assert_eq!(image_ref.name, "imageRef");
    assert!(matches!(&image_ref.value, VarValue::Output(_)), "{image_ref:?}");
    let build = &pipeline.stages[0].jobs[0].steps[0];
    assert_eq!((build.task.as_str(), build.major, build.name.as_deref()), ("KanikoBuild", 1, Some("kaniko")));
    assert!(build.inputs.iter().any(|(k, v)| k == "destinations" && v.contains("$(registry)/web:")));
}

#[test]
fn variables_as_a_list_and_job_dependencies() {
    let text = "variables:
  - name: a
    value: one
  - name: b
    value: $(a)-two
stages:
  - stage: S
    dependsOn: []
    jobs:
      - job: First
        steps:
          - task: KanikoBuild@1
            name: k
      - job: Second
        dependsOn: First
        condition: always()
        variables:
          d: $[ dependencies.First.outputs['k.imageDigest'] ]
        steps:
          - task: MulticlusterHelm@1
            condition: failed()
";
    let pipeline = yaml::parse(text).unwrap();
    assert_eq!(pipeline.variables.len(), 2);
    assert_eq!(pipeline.variables[1].value, VarValue::Text("$(a)-two".into()));
    let stage = &pipeline.stages[0];
    assert!(stage.depends_on.is_empty());
    assert_eq!(stage.jobs[1].depends_on, ["First"]);
    assert_eq!(stage.jobs[1].condition, Condition::Always);
    assert_eq!(stage.jobs[1].steps[0].condition, Condition::Failed);
}

#[test]
fn real_mode_needs_a_kubeconfig_for_the_service_connection() {
    let home = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_BIN_EXE_azp-kube-demo"));
    let out = Command::new(demo)
        .args(["--real", "--no-color"])
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .current_dir(repo())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--real needs a kubeconfig for the service connection management-cluster"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("starting the local world"));
}

#[test]
fn the_quick_start_shows_the_example_pipeline_as_it_is() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("## Quick start").expect("README.md has a Quick start");
    let end = start + readme[start..].find("\n## Why").unwrap_or(readme.len() - start);
    let quick_start = &readme[start..end];
    let example = std::fs::read_to_string(repo().join("examples/azure-pipelines.yml")).unwrap();
    let body = &example[example.find("trigger:").unwrap()..];
    assert!(quick_start.contains(&format!("```yaml\n{}```", body)), "the Quick start's YAML differs from the example");
    assert!(quick_start.contains("bash scripts/demo.sh") && quick_start.contains("bash scripts/test.sh"));
}

/// deploy/agent-image/azure-pipelines.yml, the pipeline that publishes the
/// chart's default image: it parses, its inputs validate, its tag is the
/// chart's appVersion, and its build step starts the world's kaniko with the
/// arguments the image needs. The world cannot install the image's packages
/// (it has no internet), so the build itself stops there at `FROM ubuntu`.
#[test]
fn the_agent_image_pipeline_builds_the_chart_s_default_image_with_kaniko() {
    use azp_kube_demo::render::Renderer;
    use azp_kube_demo::runner::{Runner, TaskFolders, check_tasks};
    use azp_kube_demo::world::{KANIKO_NAMESPACE, LocalWorld};

    let text = std::fs::read_to_string(repo().join("deploy/agent-image/azure-pipelines.yml")).unwrap();
    let pipeline = yaml::parse(&text).unwrap_or_else(|refusal| panic!("{refusal}"));
    let chart = std::fs::read_to_string(repo().join("deploy/chart/Chart.yaml")).unwrap();
    let app_version = chart
        .lines()
        .find_map(|l| l.strip_prefix("appVersion:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap();
    assert!(text.contains(&format!("\n  agentImageTag: {app_version}\n")), "the tag is not appVersion {app_version}");
    // The repository is the one the chart's image.repository names (its registry aside).
    let values = std::fs::read_to_string(repo().join("deploy/chart/values.yaml")).unwrap();
    let image = values.split("\nimage:\n").nth(1).unwrap();
    let repository = image.lines().find_map(|l| l.trim().strip_prefix("repository:")).unwrap().trim();
    assert!(repository.ends_with("/azure-agent"), "{repository}");

    let local = LocalWorld::start().unwrap();
    check_tasks(&pipeline, &repo(), &local.connections).unwrap_or_else(|refusal| panic!("{refusal}"));
    let recorder = local.world.record(KANIKO_NAMESPACE);
    let runner = Runner {
        tasks: TaskFolders::Staged {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_azp-kube-demo")).parent().unwrap().join("azp-kube"),
        },
        repo: repo(),
        sources: repo(),
        env: local.env.iter().cloned().chain([("SYSTEM_TEAMPROJECT".into(), "demo".into())]).collect(),
        variables: local.variables.clone(),
        build_id: 7,
        branch: "main".into(),
        connections: local.connections.clone(),
    };
    let mut out = Renderer::new(Box::new(std::io::sink()), false);
    runner.run(&pipeline, &mut out);
    let recording = recorder.finish();
    let pod = recording
        .of("pods")
        .map(|event| &event.object)
        .find(|pod| pod["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("kaniko-")))
        .expect("no kaniko pod was started");
    let container = &pod["spec"]["containers"][0];
    let args: Vec<&str> = container["args"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    let registry = &local.variables.iter().find(|(k, _)| k == "registry").unwrap().1;
    let expected = [
        format!("--destination={registry}/azure-agent:{app_version}"),
        "--build-arg=HELM_VERSION=v3.17.3".to_string(),
        "--context=tar://stdin".to_string(),
        "--cache=true".to_string(),
    ];
    for arg in &expected {
        assert!(args.contains(&arg.as_str()), "{arg} missing from {args:?}");
    }
    assert_eq!(pod["spec"]["serviceAccountName"], "azure-agent-kaniko");
}
