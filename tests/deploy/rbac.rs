//! The agent's service account, as RBAC sees it: KanikoBuild@1 runs end to end
//! in the build namespace with the agent's token; secrets, other namespaces and
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

#[test]
fn the_agent_builds_in_its_namespace_and_is_denied_everything_else() {
    let (ns, web) = install(&world().tools().helm4, "rbac", &[]);
    let token = world().service_account_token(&ns, "azure-agent").unwrap();
    let kubeconfig = world().kubeconfig_for(&format!("agent-{ns}"), &token).unwrap();

    // KanikoBuild@1 end to end with the agent's identity (task defaults:
    // service account azure-agent-kaniko, config map docker-config).
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
        .input("namespace", &ns)
        .input("kanikoImage", &image)
        .input("contextTransport", "S3 presigned URL")
        .input("bucket", &bucket)
        // kaniko fetches https:// only: moto behind TLS, whose CA the agent is given.
        .input("s3Endpoint", &world().aws_https_endpoint().unwrap())
        .env("SSL_CERT_FILE", &world().ca_file().display().to_string())
        .input("destinations", "registry.local/app:1");
    run = run.envs(world().env().into_iter().filter(|(k, _)| k != "KUBECONFIG"));
    let outcome = run.run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));

    // What it needs, it has.
    assert!(kubectl_as(&kubeconfig, &["get", "pods", "-n", &ns]).0);
    // Nothing else.
    assert_forbidden(&kubeconfig, &["get", "secrets", "-n", &ns]);
    assert_forbidden(&kubeconfig, &["get", "secret", "pool-azure-agent-token", "-n", &ns]);
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
        &["create", "rolebinding", "evil", "--role=pool-azure-agent-build", "--user=x", "-n", &ns],
    );
    // In-cluster Helm deploys may write in the listed namespace only.
    assert!(kubectl_as(&kubeconfig, &["create", "configmap", "deployed", "-n", &web]).0);
    assert_forbidden(&kubeconfig, &["create", "configmap", "deployed", "-n", &ns]);
}
