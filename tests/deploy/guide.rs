//! docs/getting-started.md, command by command: its AWS commands run against
//! moto (the CloudFormation stacks, the OIDC provider, the outputs), its
//! kubectl and helm commands install the chart into the world, the KEDA it
//! pins is one the chart is checked with, the extension commands take the
//! flags they are given; and every task input and output the docs use exists.
//!
//! Run with a local source: `skopeo copy` (the guide copies from Docker Hub). Not run:
//! `helm repo add` / `helm install keda` (they download KEDA's chart); the
//! pinned version is checked instead.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::install::keda_crds;
use crate::support::*;

/// The KEDA releases whose CRDs the chart's tests check (keda_facts.py).
const CHECKED_KEDA: [&str; 4] = ["2.19.0", "2.20.0", "2.20.1", "2.20.2"];

fn guide() -> String {
    std::fs::read_to_string(repo().join("docs/getting-started.md")).unwrap()
}

/// The fenced blocks of one language in a Markdown text.
fn blocks(markdown: &str, language: &str) -> Vec<String> {
    let fence = format!("```{language}\n");
    markdown.split(&fence).skip(1).map(|rest| rest.split("\n```").next().unwrap().to_string()).collect()
}

/// The commands of a bash block, continuation lines joined.
fn commands(block: &str) -> Vec<String> {
    block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Runs a bash block with the world's tools first on PATH; `(success, output)`.
fn run_block(block: &str, env: &[(String, String)], bin: &Path) -> (bool, String) {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", block])
        .current_dir(repo())
        .envs(env.iter().cloned())
        .env("PATH", path)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A folder with `aws`, `helm` (4) and `kubectl` of the world.
fn tool_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tools = world().tools();
    for (name, target) in [("aws", &tools.aws), ("helm", &tools.helm4), ("kubectl", &tools.kubectl)] {
        std::os::unix::fs::symlink(target, dir.path().join(name)).unwrap();
    }
    dir
}

fn aws_json(env: &[(String, String)], args: &[&str]) -> Value {
    let out = Command::new(&world().tools().aws)
        .args(args)
        .args(["--output", "json"])
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[test]
fn the_guide_s_aws_commands_create_the_stacks_in_moto() {
    let guide = guide();
    let bash = blocks(&guide, "bash");
    let aws_blocks: Vec<&String> =
        bash.iter().filter(|b| b.contains("aws ") && !b.contains("skopeo ") && !b.contains("helm ")).collect();
    assert!(aws_blocks.len() >= 4, "{aws_blocks:?}");

    let home = tempfile::tempdir().unwrap();
    // The target account's profile: a role there, assumed with the world's keys.
    let config = home.path().join("config");
    std::fs::write(
        &config,
        "[default]\nregion = eu-west-1\n\n[profile target]\nregion = eu-west-1\nrole_arn = arn:aws:iam::222222222222:role/setup\ncredential_source = Environment\n",
    )
    .unwrap();
    let mut env: Vec<(String, String)> = world()
        .env()
        .into_iter()
        .filter(|(k, _)| k.starts_with("AWS_") && k != "AWS_DEFAULT_REGION" && k != "AWS_REGION")
        .collect();
    env.push(("AWS_CONFIG_FILE".into(), config.display().to_string()));
    env.push(("HOME".into(), home.path().display().to_string()));
    // What the guide starts from: the management cluster, and the dev cluster in the target account.
    // (`--profile` on the command line wins over the keys in the environment; AWS_PROFILE would not.)
    let cluster = |profile: &[&str], name: &str| {
        let mut args =
            vec!["eks", "create-cluster", "--name", name, "--role-arn", "arn:aws:iam::123456789012:role/eks"];
        args.extend(["--resources-vpc-config", "subnetIds=subnet-1"]);
        args.extend(profile);
        aws_json(&env, &args);
    };
    cluster(&[], "management");
    cluster(&["--profile", "target"], "dev");

    // One shell, as a reader pastes them one after the other (OIDC carries over).
    let script: Vec<&str> = aws_blocks.iter().map(|b| b.as_str()).collect();
    let script = script.join("\n");
    let tools = tool_dir();
    let (ok, output) = run_block(&script, &env, tools.path());
    assert!(ok, "the guide's AWS commands failed:\n{script}\n{output}");

    let stacks = aws_json(&env, &["cloudformation", "describe-stacks"]);
    let mut names: Vec<&str> =
        stacks["Stacks"].as_array().unwrap().iter().filter_map(|s| s["StackName"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["azp-kube", "azp-kube-azure-agent", "azp-kube-busybox", "azp-kube-web"]);
    let agent = aws_json(&env, &["iam", "get-role", "--role-name", "azp-kube-agent"]);
    let trust = agent["Role"]["AssumeRolePolicyDocument"].to_string();
    assert!(
        trust.contains("oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/"),
        "IRSA from the cluster's issuer: {trust}"
    );
    let providers = aws_json(&env, &["iam", "list-open-id-connect-providers"]);
    assert!(providers.to_string().contains("oidc.eks.eu-west-1.amazonaws.com/id/"), "{providers}");
    let deployer = aws_json(&env, &["iam", "get-role", "--role-name", "azp-kube-deployer", "--profile", "target"]);
    assert_eq!(deployer["Role"]["Arn"], "arn:aws:iam::222222222222:role/azp-kube-deployer");
    assert!(deployer["Role"]["AssumeRolePolicyDocument"].to_string().contains("my-external-id"));
    // The names the guide's chart command and pipeline use are what the stacks made (moto
    // lists no Outputs for stacks made through change sets, as `deploy` makes them).
    for role in ["azp-kube-agent", "azp-kube-kaniko"] {
        let arn =
            aws_json(&env, &["iam", "get-role", "--role-name", role])["Role"]["Arn"].as_str().unwrap().to_string();
        assert!(guide.contains(&format!("roleArn={arn}")), "the guide's chart command does not use {arn}");
    }
    aws_json(&env, &["s3api", "head-bucket", "--bucket", "my-build-contexts"]);
    assert!(guide.contains("bucket: my-build-contexts"));
}

/// The guide's namespace, Secret and chart install, run against the world.
#[test]
fn the_guide_s_chart_commands_install_the_pool() {
    keda_crds();
    let guide = guide();
    let bash = blocks(&guide, "bash");
    let block =
        bash.iter().find(|b| b.contains("helm install agents deploy/chart")).expect("no chart install in the guide");
    let keda = bash.iter().find(|b| b.contains("helm install keda")).unwrap();
    let pinned = keda.split("--version ").nth(1).unwrap().split_whitespace().next().unwrap();
    assert!(CHECKED_KEDA.contains(&pinned), "KEDA {pinned} is not one the chart is checked with");
    assert!(block.contains(&format!("--set-string keda.version={pinned}")), "the chart is not told KEDA {pinned}");

    let tools = tool_dir();
    let env = vec![
        ("KUBECONFIG".to_string(), world().kubeconfig_path().display().to_string()),
        ("AZP_PAT".to_string(), PAT.to_string()),
        ("HOME".to_string(), tools.path().display().to_string()),
    ];
    let (ok, output) = run_block(block, &env, tools.path());
    let cleanup = || {
        let _ = run_block("helm uninstall agents --namespace azure-agent", &env, tools.path());
    };
    if !ok {
        cleanup();
        panic!("the guide's chart block failed:\n{block}\n{output}");
    }
    let kubectl = &world().tools().kubectl;
    let scaledjob = ok_json(kubectl, &["get", "scaledjob", "agents-azure-agent", "-n", "azure-agent", "-o", "json"]);
    let role =
        ok_json(kubectl, &["get", "serviceaccount", "azure-agent-kaniko", "-n", "azure-agent-build", "-o", "json"]);
    cleanup();
    let image =
        scaledjob["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_string();
    assert_eq!(image, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/azure-agent:1.0.0");
    assert_eq!(
        role["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/azp-kube-kaniko"
    );
    assert!(guide.contains("`agents-azure-agent-template`"));
}

fn ok_json(binary: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(binary, args)).unwrap()
}

/// The extension commands: package.sh takes `--publisher`; tfx's `extension
/// publish` takes `--vsix`, `--share-with` and `--token` (read from tfx-cli's
/// own option definitions, installed by package.sh into extension/node_modules).
#[test]
fn the_guide_s_extension_commands_take_their_flags() {
    let guide = guide();
    let commands: Vec<String> = blocks(&guide, "bash").iter().flat_map(|b| commands(b)).collect();
    let package = commands.iter().find(|c| c.starts_with("bash extension/package.sh")).unwrap();
    let script = std::fs::read_to_string(repo().join("extension/package.sh")).unwrap();
    for flag in package.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(script.contains(&format!("{flag})")), "package.sh has no {flag}");
    }
    let version = std::fs::read_to_string(repo().join("vss-extension.json")).unwrap();
    let version: Value = serde_json::from_str(&version).unwrap();
    let vsix = format!("dist/azp-kube-{}.vsix", version["version"].as_str().unwrap());
    assert!(guide.contains(&vsix), "the guide names another VSIX than {vsix}");

    let publish = commands.iter().find(|c| c.contains("tfx extension publish")).unwrap();
    let tfx = repo().join("extension/node_modules/tfx-cli/_build");
    assert!(tfx.is_dir(), "{} is missing: run bash extension/package.sh (scripts/test.sh does)", tfx.display());
    let mut definitions = String::new();
    for file in ["exec/extension/default.js", "exec/extension/publish.js", "lib/tfcommand.js"] {
        definitions.push_str(&std::fs::read_to_string(tfx.join(file)).unwrap_or_default());
    }
    for flag in publish.split_whitespace().filter(|w| w.starts_with("--")) {
        let camel: String = flag
            .trim_start_matches("--")
            .split('-')
            .enumerate()
            .map(|(i, w)| if i == 0 { w.to_string() } else { w[..1].to_uppercase() + &w[1..] })
            .collect();
        assert!(definitions.contains(&format!("\"{camel}\"")), "tfx extension publish has no {flag} ({camel})");
    }
}

/// Every `task:` step in the docs' YAML uses inputs its task.json has, and
/// every `outputs['step.name']` names an output of that step's task.
#[test]
fn every_task_input_and_output_the_docs_use_exists() {
    let tasks: BTreeMap<&str, Value> =
        [("KanikoBuild@1", "KanikoBuildV1"), ("MulticlusterHelm@1", "MulticlusterHelmV1")]
            .into_iter()
            .map(|(task, folder)| {
                let text = std::fs::read_to_string(repo().join("tasks").join(folder).join("task.json")).unwrap();
                (task, serde_json::from_str(&text).unwrap())
            })
            .collect();
    let names = |task: &Value, key: &str| -> Vec<String> {
        task[key].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
    };
    let mut yamls: Vec<(String, String)> = Vec::new();
    for doc in ["README.md", "deploy/README.md", "docs/getting-started.md"] {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        yamls.extend(blocks(&text, "yaml").into_iter().map(|b| (doc.to_string(), b)));
    }
    for file in ["examples/azure-pipelines.yml", "deploy/agent-image/azure-pipelines.yml"] {
        yamls.push((file.to_string(), std::fs::read_to_string(repo().join(file)).unwrap()));
    }
    let mut steps_seen = 0;
    for (doc, text) in &yamls {
        let value: Value =
            serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{doc}: a YAML block does not parse: {e}\n{text}"));
        let mut steps = Vec::new();
        collect_steps(&value, &mut steps);
        let mut step_tasks: BTreeMap<String, &str> = BTreeMap::new();
        for step in steps {
            let task_name = step["task"].as_str().unwrap();
            let Some(task) = tasks.get(task_name) else { panic!("{doc}: unknown task {task_name}") };
            let inputs = names(task, "inputs");
            for input in step["inputs"].as_object().into_iter().flat_map(|m| m.keys()) {
                assert!(inputs.contains(input), "{doc}: {task_name} has no input {input}");
            }
            if let Some(name) = step["name"].as_str() {
                step_tasks.insert(name.to_string(), task_name);
            }
            steps_seen += 1;
        }
        for reference in text.split("outputs['").skip(1) {
            let reference = reference.split("']").next().unwrap();
            let (step, output) = reference.rsplit_once('.').unwrap();
            let step = step.rsplit('.').next().unwrap();
            let task = step_tasks
                .get(step)
                .unwrap_or_else(|| panic!("{doc}: no step named {step} for outputs['{reference}']"));
            assert!(
                names(&tasks[task], "outputVariables").contains(&output.to_string()),
                "{doc}: {task} has no output {output}"
            );
        }
    }
    assert!(steps_seen >= 8, "only {steps_seen} task steps found in the docs");
}

fn collect_steps<'a>(value: &'a Value, steps: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if map.get("task").and_then(Value::as_str).is_some_and(|t| t.contains('@')) {
                steps.push(value);
            }
            map.values().for_each(|v| collect_steps(v, steps));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_steps(v, steps)),
        _ => {}
    }
}

/// Every `helm install … deploy/chart` command in the docs renders: its values
/// pass the chart's schema and templates (`helm template` with the same flags).
#[test]
fn every_chart_install_command_in_the_docs_renders() {
    let tools = tool_dir();
    let mut checked = 0;
    for doc in ["README.md", "deploy/README.md", "deploy/chart/README.md", "docs/getting-started.md"] {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        for command in blocks(&text, "bash").iter().flat_map(|b| commands(b)) {
            let Some(rest) = command.strip_prefix("helm install ").filter(|r| r.contains(" deploy/chart ")) else {
                continue;
            };
            let template = format!("helm template {}", rest.replace(" --create-namespace", ""));
            let (ok, output) =
                run_block(&template, &[("HOME".into(), tools.path().display().to_string())], tools.path());
            assert!(ok, "{doc}: {command}\n{output}");
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} chart install commands found");
}

/// A one-layer image as an OCI layout (`oci:<dir>:latest`): what the guide's
/// `skopeo copy` copies from Docker Hub, made here since the tests have no internet.
fn oci_layout(dir: &Path) {
    use sha2::{Digest, Sha256};
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let blob = |bytes: &[u8]| {
        let digest = hex::encode(Sha256::digest(bytes));
        std::fs::write(blobs.join(&digest), bytes).unwrap();
        (format!("sha256:{digest}"), bytes.len())
    };
    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(6);
    header.set_mode(0o644);
    header.set_cksum();
    layer.append_data(&mut header, "hello", &b"hello\n"[..]).unwrap();
    let (layer, layer_size) = blob(&layer.into_inner().unwrap());
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer]}});
    let (config, config_size) = blob(config.to_string().as_bytes());
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}]});
    let (manifest, manifest_size) = blob(manifest.to_string().as_bytes());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest, "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// The guide's base-image copy, run as written with skopeo: the ECR login
/// with `aws ecr get-login-password` (moto), then the copy into the registry
/// (a docker-registry of its own here, playing ECR). Only the source is
/// swapped for a local image, the registry's address for the local one, and
/// TLS verification is turned off for that plain-HTTP registry.
#[test]
fn the_guide_s_base_image_copy_runs_with_skopeo() {
    let guide = guide();
    let block = blocks(&guide, "bash").into_iter().find(|b| b.contains("skopeo copy")).expect("the skopeo block");
    let source = tempfile::tempdir().unwrap();
    oci_layout(source.path());
    let registry_dir = tempfile::tempdir().unwrap();
    let local = azp_kube_world::registry::Registry::spawn(registry_dir.path()).unwrap();
    let registry = format!("127.0.0.1:{}", local.port());
    let script = block
        .lines()
        .map(|line| match line.strip_prefix("REGISTRY=") {
            Some(_) => format!("REGISTRY={registry}"),
            // The local registry speaks plain HTTP, which skopeo only accepts when told.
            None => line
                .replace(
                    "docker://docker.io/library/busybox:latest",
                    &format!("oci:{}:latest", source.path().display()),
                )
                .replace("skopeo login ", "skopeo login --tls-verify=false ")
                .replace("skopeo copy ", "skopeo copy --dest-tls-verify=false "),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(script, block, "the source and the registry were swapped");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .envs(world().env().into_iter().filter(|(k, _)| k.starts_with("AWS_")))
        .env("PATH", format!("{}:{}", world().tools().aws.parent().unwrap().display(), std::env::var("PATH").unwrap()))
        .env("HOME", home.path())
        .env("REGISTRY_AUTH_FILE", home.path().join("auth.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(azp_kube_world::registry::digest(&registry, "busybox", "latest").is_some(), "the image is in the registry");
}
