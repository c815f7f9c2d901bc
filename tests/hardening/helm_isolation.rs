//! MulticlusterHelm on a shared pool (issue #15): a step's inputs cannot
//! take helm to another cluster, context or namespace, make it print values
//! or manifests, or run a post-renderer; and helm (with its plugins and
//! post-renderers) never sees the AWS keys the step deploys with.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use azp_harness::{StepResult, TaskRun};
use azp_kube_world::World;

use crate::support::{AwsKeys, deploys_the_test_chart, task, with_aws_connection};

/// A helm that records each of its command lines and its environment
/// (`<log>.env`), then runs helm 4. With `forget_sessions`, it first deletes
/// the role sessions the task cached, as if they had expired: the exec entry
/// must assume the role again with what the task handed over.
fn recording_helm(dir: &Path, world: &World, forget_sessions: bool) -> (PathBuf, PathBuf) {
    let recorded = dir.join("helm-runs.log");
    let wrapper = dir.join("helm");
    let forget = if forget_sessions { "rm -f \"$(dirname \"$KUBECONFIG\")\"/credentials-*.json\n" } else { "" };
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nenv >> '{}.env'\n{forget}exec '{}' \"$@\"\n",
        recorded.display(),
        recorded.display(),
        world.tools().helm4.display()
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (wrapper, recorded)
}

/// A named case: the inputs it sets and the error it must end with.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

/// Each bypass of the `arguments` guard from the issue, and the chart name
/// used as a flag: refused before helm runs, naming the input.
#[test]
fn flags_that_escape_the_steps_cluster_namespace_or_log_are_refused_before_helm_runs() {
    let world = World::shared();
    let chart = azp_harness::repo_root().join("tests/world/testdata/chart");
    let cases: &[Case] = &[
        (
            "chart name as --kube-context",
            &[("chartType", "Name"), ("chartName", "--kube-context=prod")],
            "input chartName: a chart name never starts with '-'",
        ),
        (
            "chart name as --kubeconfig",
            &[("chartType", "Name"), ("chartName", "--kubeconfig=/home/agent/.kube/config")],
            "input chartName: a chart name never starts with '-'",
        ),
        ("bundled -i -n", &[("arguments", "-in kube-system")], "input arguments: --namespace is not allowed"),
        ("bundled -i -o", &[("arguments", "-io json")], "input arguments: --output is not allowed"),
        ("debug output", &[("arguments", "--debug")], "input arguments: --debug is not allowed: it prints"),
        ("dry run", &[("arguments", "--dry-run=server")], "input arguments: --dry-run is not allowed"),
        ("post-renderer", &[("arguments", "--post-renderer /tmp/steal")], "input arguments: --post-renderer is not"),
        (
            "shared repositories",
            &[("arguments", "--repository-config=/tmp/r.yaml")],
            "input arguments: --repository-config",
        ),
        ("impersonation", &[("arguments", "--kube-as-group system:masters")], "input arguments: --kube-as-group"),
        ("a password on the command line", &[("arguments", "--password hunter2-pw")], "input arguments: --password"),
        (
            "a second chart",
            &[("arguments", "--force other/chart")],
            "input arguments: word 2 (after --force) is not a flag",
        ),
    ];
    let task = task("MulticlusterHelmV1");
    for (name, inputs, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (helm, recorded) = recording_helm(dir.path(), world, false);
        let mut run = TaskRun::new(task.path())
            .timeout(Duration::from_secs(60))
            .input("connectionType", "Kubeconfig file")
            .input("kubeconfig", &world.kubeconfig_path().display().to_string())
            .input("chartType", "FilePath")
            .input("chartPath", &chart.display().to_string())
            .input("releaseName", "web")
            .input("namespace", "tenant-a")
            .input("helmPath", &helm.display().to_string());
        for (input, value) in *inputs {
            run = run.input(input, value);
        }
        let outcome = run.run();
        assert_eq!(outcome.result, StepResult::Failed, "{name}: {}", outcome.log_text());
        let message = &outcome.errors()[0].message;
        assert!(message.contains(expected), "{name}: {message}");
        assert!(!recorded.exists(), "{name}: helm ran: {}", std::fs::read_to_string(&recorded).unwrap_or_default());
        assert!(!outcome.log_text().contains("hunter2-pw"), "{name}: the inputs group shows a password");
    }
}

const ROLE: &str = "arn:aws:iam::222222222222:role/env-deployer";
const CONNECTION: &str = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
const ACCESS_KEY: &str = "AKIAZPKUBEHELMENVTEST";
const SECRET_KEY: &str = "helmEnvSecretKey/K7MDENG/bPxRfiCYSECRET";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzHELMENVSESSIONTOKENsecret";
/// The job's access token to Azure DevOps (`System.AccessToken` mapped in).
const JOB_TOKEN: &str = "azdo-job-access-token-helmenv-secret";

/// A deploy with an AWS service connection's keys: helm's environment (and
/// so its plugins', its post-renderers' and the exec entry's) holds no AWS
/// key, secret or session token, nor the job's `SYSTEM_ACCESSTOKEN`, yet the exec entry makes tokens for the
/// whole deploy, assuming the role again (with the external ID) from the
/// base credentials handed over in the private directory.
#[test]
fn helm_gets_no_aws_keys_and_the_deploy_still_works() {
    let world = World::start().unwrap();
    world.create_cluster_in_account_of(ROLE).unwrap();
    world.add_access_entry(ROLE, "deployer", &["system:masters"]);
    let dir = tempfile::tempdir().unwrap();
    let (helm, recorded) = recording_helm(dir.path(), &world, true);
    let home = tempfile::tempdir().unwrap();
    let task = task("MulticlusterHelmV1");
    let run = TaskRun::new(task.path())
        .timeout(Duration::from_secs(180))
        .env("HOME", &home.path().display().to_string())
        .env("SYSTEM_ACCESSTOKEN", JOB_TOKEN);
    let keys = AwsKeys { access_key: ACCESS_KEY, secret_key: SECRET_KEY, session_token: SESSION_TOKEN };
    let outcome = deploys_the_test_chart(with_aws_connection(run, &world, CONNECTION, &keys), &world, &helm)
        .input("assumeRoleArn", ROLE)
        .input("externalId", "tenant-a-external-id")
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
    let runs = std::fs::read_to_string(&recorded).unwrap();
    assert!(runs.contains("upgrade --install web"), "{runs}");
    let env = std::fs::read_to_string(format!("{}.env", recorded.display())).unwrap();
    assert!(env.contains("KUBECONFIG="), "the environment was recorded");
    for secret in [ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, "tenant-a-external-id", JOB_TOKEN] {
        assert!(!env.contains(secret), "helm's environment holds {:.8}…", secret);
    }
    for name in ["AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "SYSTEM_ACCESSTOKEN="] {
        assert!(!env.contains(name), "helm's environment has {name}");
    }
}

/// A service connection's keys and no role to assume, on an agent whose own
/// identity (`AWS_ACCESS_KEY_ID`) is another principal, not let into the
/// cluster: the keys never expire, so nothing is cached for the exec entry;
/// the preflight and helm must still reach the cluster as the connection's
/// principal, not fall back to the agent's identity (which is refused).
#[test]
fn keys_without_a_role_reach_the_cluster_as_the_connection_not_as_the_agent() {
    const PRINCIPAL: &str = "arn:aws:iam::123456789012:role/keys-deployer";
    let world = World::start().unwrap();
    world.add_access_entry(PRINCIPAL, "keys-deployer", &["system:masters"]);
    // The connection's keys: a session of PRINCIPAL, given as plain keys.
    let out = Command::new(&world.tools().aws)
        .args(["sts", "assume-role", "--role-arn", PRINCIPAL, "--role-session-name", "keys", "--output", "json"])
        .envs(world.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let assumed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = |name: &str| assumed["Credentials"][name].as_str().unwrap().to_string();
    let (access_key, secret_key, session_token) = (key("AccessKeyId"), key("SecretAccessKey"), key("SessionToken"));
    let dir = tempfile::tempdir().unwrap();
    let (helm, recorded) = recording_helm(dir.path(), &world, false);
    let home = tempfile::tempdir().unwrap();
    let task = task("MulticlusterHelmV1");
    let agent_identity =
        world.env().into_iter().filter(|(k, _)| k.starts_with("AWS_ACCESS_KEY") || k.starts_with("AWS_SECRET"));
    let run = TaskRun::new(task.path())
        .timeout(Duration::from_secs(180))
        .env("HOME", &home.path().display().to_string())
        .envs(agent_identity);
    let keys = AwsKeys { access_key: &access_key, secret_key: &secret_key, session_token: &session_token };
    let outcome = deploys_the_test_chart(with_aws_connection(run, &world, CONNECTION, &keys), &world, &helm).run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(
        outcome.log.iter().any(|l| l.contains("lets role keys-deployer (session keys)")),
        "the preflight's identity: {}",
        outcome.log_text()
    );
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
    assert!(std::fs::read_to_string(&recorded).unwrap().contains("upgrade --install web"));
}
