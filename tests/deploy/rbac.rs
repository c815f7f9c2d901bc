//! The agent's service account, as RBAC sees it: KanikoBuild@1 runs end to end
//! in the build namespace with the agent's token, its default namespace taken
//! from the agent pod's environment; in the agents' own namespace a job step can
//! do nothing to pods (other pipelines' agents); secrets, other namespaces and
//! cluster-scoped writes are refused.

use std::path::Path;
use std::time::Duration;

use azp_harness::{StagedTask, StepResult, TaskRun};
use azp_kube_world::Behaviour;

use crate::install::install;
use crate::support::*;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn kubectl_as(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let mut all = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
    all.extend(args);
    let out = tool(&world().tools().kubectl, &all);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn assert_forbidden(kubeconfig: &Path, args: &[&str]) {
    let (success, output) = kubectl_as(kubeconfig, args);
    assert!(!success && output.contains("forbidden"), "the agent may {args:?}: {output}");
}

/// `kubectl auth can-i VERB RESOURCE -n NAMESPACE` as the agent.
fn can(kubeconfig: &Path, verb: &str, resource: &str, namespace: &str) -> bool {
    // `pods/log` would be the pod named "log": a subresource is a flag.
    let mut args = vec!["auth", "can-i", verb, "-n", namespace];
    let subresource;
    match resource.split_once('/') {
        Some((resource, sub)) => {
            subresource = format!("--subresource={sub}");
            args.extend([resource, subresource.as_str()]);
        }
        None => args.push(resource),
    }
    let (allowed, output) = kubectl_as(kubeconfig, &args);
    assert!(matches!(output.trim(), "yes" | "no"), "can-i {verb} {resource}: {output}");
    allowed
}

/// Which of these the agent may do in a namespace, as `resource verb`.
fn allowed(kubeconfig: &Path, namespace: &str) -> Vec<String> {
    const RESOURCES: &[&str] = &[
        "pods",
        "pods/log",
        "pods/attach",
        "pods/exec",
        "pods/portforward",
        "pods/ephemeralcontainers",
        "events",
        "secrets",
        "configmaps",
        "serviceaccounts",
        "serviceaccounts/token",
        "roles",
        "rolebindings",
    ];
    const VERBS: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
    // One thread per resource: 100 kubectl runs one after the other take half a minute.
    std::thread::scope(|scope| {
        let threads: Vec<_> = RESOURCES
            .iter()
            .map(|resource| {
                scope.spawn(move || {
                    VERBS
                        .iter()
                        .filter(|verb| can(kubeconfig, verb, resource, namespace))
                        .map(|verb| format!("{resource} {verb}"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    })
}

/// The agent pod's AZP_BUILD_NAMESPACE, as the installed ScaledJob gives it.
fn build_namespace_of_the_agents(namespace: &str) -> String {
    let path = "jsonpath={.spec.jobTargetRef.template.spec.containers[?(@.name=='agent')].env[?(@.name=='AZP_BUILD_NAMESPACE')].value}";
    tool_ok(&["get", "scaledjob", "pool-azure-agent", "-n", namespace, "-o", path])
}

fn tool_ok(args: &[&str]) -> String {
    ok(&world().tools().kubectl, args).trim().to_string()
}

#[test]
fn the_agent_builds_in_the_build_namespace_and_cannot_touch_pods_in_its_own() {
    let (ns, web) = install(&world().tools().helm4, "rbac", &[]);
    let build = build_namespace_of_the_agents(&ns);
    assert_eq!(build, format!("{ns}-build"), "a namespace of its own, created by the chart");
    let token = world().service_account_token(&ns, "azure-agent").unwrap();
    let kubeconfig = world().kubeconfig_for(&format!("agent-{ns}"), &token).unwrap();

    // KanikoBuild@1 end to end with the agent's identity and the agent pod's
    // environment, all defaults: namespace from AZP_BUILD_NAMESPACE, service
    // account azure-agent-kaniko, config map docker-config.
    let image = format!("kaniko.test/{ns}:1");
    world().set_behaviour(
        &image,
        Behaviour::exit_with_message(
            &[&format!("INFO Pushed registry.local/app@{DIGEST}")],
            0,
            Duration::from_millis(300),
            DIGEST,
        ),
    );
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("Dockerfile"), "FROM scratch\nCOPY app.txt /app.txt\n").unwrap();
    std::fs::write(repo.path().join("app.txt"), "hello\n").unwrap();
    let bucket = format!("rbac-{}", std::process::id());
    let s3 = std::process::Command::new(&world().tools().aws)
        .args(["s3api", "create-bucket", "--bucket", &bucket])
        .envs(world().env())
        .output()
        .unwrap();
    assert!(s3.status.success(), "{}", String::from_utf8_lossy(&s3.stderr));
    let task = StagedTask::new("KanikoBuildV1", Path::new(env!("CARGO_BIN_EXE_azp-kube")));
    let mut run = TaskRun::new(task.path())
        .sources(repo.path())
        .timeout(Duration::from_secs(90))
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", kubeconfig.to_str().unwrap())
        .input("kanikoImage", &image)
        .input("contextTransport", "S3 presigned URL")
        .input("bucket", &bucket)
        // kaniko fetches https:// only: moto behind TLS, whose CA the agent is given.
        .input("s3Endpoint", &world().aws_https_endpoint().unwrap())
        .env("SSL_CERT_FILE", &world().ca_file().display().to_string())
        .input("destinations", "registry.local/app:1");
    run = run.envs(world().env().into_iter().filter(|(k, _)| k != "KUBECONFIG"));
    run = run.env("AZP_BUILD_NAMESPACE", &build);
    let outcome = run.run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));
    assert!(outcome.log_text().contains(&format!("{build}/kaniko-")), "{}", outcome.log_text());

    // In the build namespace: exactly KanikoBuild@1's calls (a WebSocket
    // attach is authorized as get, and from Kubernetes 1.35 also as create;
    // a per-build Secret the pod owns holds secret build arguments and a
    // presigned URL: created, owned by the pod (patch) and deleted, never
    // read, so no step can get another build's).
    let expected = [
        "pods get",
        "pods list",
        "pods watch",
        "pods create",
        "pods delete",
        "pods/log get",
        "pods/attach get",
        "pods/attach create",
        "events list",
        "secrets create",
        "secrets patch",
        "secrets delete",
    ];
    assert_eq!(allowed(&kubeconfig, &build), expected);

    // In its own namespace a step can do nothing to the pods of other
    // pipelines' agents: not list, read, follow, attach to or delete them.
    let other_agent = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: other-agent\n  namespace: {ns}\nspec:\n  containers:\n    - name: agent\n      image: agent.test/azure-agent:1\n"
    );
    let manifest = repo.path().join("other-agent.yaml");
    std::fs::write(&manifest, other_agent).unwrap();
    tool_ok(&["apply", "-f", manifest.to_str().unwrap()]);
    assert_eq!(allowed(&kubeconfig, &ns), Vec::<String>::new(), "the agents' own namespace");
    assert_forbidden(&kubeconfig, &["get", "pods", "-n", &ns]);
    assert_forbidden(&kubeconfig, &["get", "pod", "other-agent", "-n", &ns]);
    assert_forbidden(&kubeconfig, &["logs", "other-agent", "-n", &ns]);
    assert_forbidden(&kubeconfig, &["delete", "pod", "other-agent", "-n", &ns, "--wait=false"]);
    assert!(tool_ok(&["get", "pod", "other-agent", "-n", &ns, "-o", "name"]).ends_with("other-agent"));

    // Nothing else.
    assert_forbidden(&kubeconfig, &["get", "secrets", "-n", &ns]);
    assert_forbidden(&kubeconfig, &["get", "secret", "pool-azure-agent-token", "-n", &ns]);
    assert_forbidden(&kubeconfig, &["get", "secrets", "-n", &build]);
    assert_forbidden(&kubeconfig, &["get", "configmaps", "-n", &ns]);
    assert_forbidden(&kubeconfig, &["get", "pods", "-n", "default"]);
    assert_forbidden(&kubeconfig, &["get", "pods", "--all-namespaces"]);
    // Helm stores releases as Secrets, so a listed Helm namespace allows them;
    // any other namespace does not.
    assert!(kubectl_as(&kubeconfig, &["get", "secrets", "-n", &web]).0);
    assert_forbidden(&kubeconfig, &["get", "secrets", "-n", "default"]);
    assert_forbidden(&kubeconfig, &["create", "namespace", &format!("{ns}-evil")]);
    assert_forbidden(
        &kubeconfig,
        &[
            "create",
            "clusterrolebinding",
            &format!("{ns}-evil"),
            "--clusterrole=cluster-admin",
            &format!("--serviceaccount={ns}:azure-agent"),
        ],
    );
    assert_forbidden(
        &kubeconfig,
        &["create", "rolebinding", "evil", "--role=pool-azure-agent-build", "--user=x", "-n", &build],
    );
    // In-cluster Helm deploys may write in the listed namespace only.
    assert!(kubectl_as(&kubeconfig, &["create", "configmap", "deployed", "-n", &web]).0);
    assert_forbidden(&kubeconfig, &["create", "configmap", "deployed", "-n", &ns]);
}

/// Helm's `--create-namespace` writes the namespace even when it exists (helm 4
/// applies it, helm 3 creates it), and the chart grants no cluster-wide right: an in-cluster
/// MulticlusterHelm@1 deploy into a namespace of `rbac.helmNamespaces` needs
/// `createNamespace: false` (deploy/README.md says so). With it, the deploy succeeds.
#[test]
fn an_in_cluster_deploy_needs_create_namespace_false_and_then_succeeds() {
    let (ns, web) = install(&world().tools().helm4, "createns", &[]);
    let token = world().service_account_token(&ns, "azure-agent").unwrap();
    let kubeconfig = world().kubeconfig_for(&format!("agent-{ns}"), &token).unwrap();
    let (allowed, answer) = kubectl_as(&kubeconfig, &["auth", "can-i", "create", "namespaces"]);
    assert!(!allowed && answer.lines().next() == Some("no"), "the agents may create namespaces: {answer}");

    let task = StagedTask::new("MulticlusterHelmV1", Path::new(env!("CARGO_BIN_EXE_azp-kube")));
    let home = tempfile::tempdir().unwrap();
    let deploy = |helm: &Path, release: &str, create_namespace: &str| {
        TaskRun::new(task.path())
            .timeout(Duration::from_secs(120))
            .env("HOME", &home.path().display().to_string())
            .input("connectionType", "Kubeconfig file")
            .input("kubeconfig", kubeconfig.to_str().unwrap())
            .input("helmPath", &helm.display().to_string())
            .input("chartType", "FilePath")
            .input("chartPath", &repo().join("examples/chart").display().to_string())
            .input("releaseName", release)
            .input("namespace", &web)
            .input("createNamespace", create_namespace)
            .input("overrideValues", "image.ref=registry.local/web:1")
            .input("timeout", "1m")
            .run()
    };
    for (helm_name, helm) in helms() {
        let release = format!("web-{helm_name}");
        let refused = deploy(helm, &release, "true");
        assert_eq!(refused.result, StepResult::Failed, "{helm_name}: {}", refused.log_text());
        // helm 4 applies the namespace (patch), helm 3 creates it: both cluster-scoped.
        let log = refused.log_text();
        assert!(log.contains("is forbidden") && log.contains(r#"resource "namespaces""#), "{helm_name}: {log}");
        let deployed = deploy(helm, &release, "false");
        assert_eq!(
            deployed.result,
            StepResult::Succeeded,
            "{helm_name}: {:?}\n{}",
            deployed.errors(),
            deployed.log_text()
        );
        assert_eq!(deployed.output("releaseStatus"), Some("deployed"));
    }
}
