//! STS and EKS misbehaving (issue #8): AssumeRole throttled, a cluster that
//! is still CREATING (through the world's AWS fault proxy, which the task's
//! `AWS_ENDPOINT_URL`/`AWS_ENDPOINT_URL_STS` point at), and a token the
//! cluster stops accepting while helm waits. Each deploy succeeds, or fails
//! with the true reason and removes its private kubeconfig.

use std::time::{Duration, Instant};

use azp_harness::{Outcome, StepResult, TaskRun};
use azp_kube_world::aws_faults::{AwsError, AwsFaultProxy, Match};

use super::*;

/// AssumeRole calls for one role (not AssumeRoleWithWebIdentity, whose
/// action name starts the same).
fn assume_role(role: &str) -> Match {
    let encoded = role.replace(':', "%3A").replace('/', "%2F");
    Match::any().method("POST").body("Action=AssumeRole&").body(&format!("RoleArn={encoded}"))
}

/// A deploy of the test chart into the world's cluster as `role`, with every
/// AWS call through `proxy`.
fn deploy_through(proxy: &AwsFaultProxy, task: &StagedTask, home: &Path, role: &str, namespace: &str) -> TaskRun {
    run(task, home)
        .env("AWS_ENDPOINT_URL", &proxy.url())
        .env("AWS_ENDPOINT_URL_STS", &proxy.url())
        .input("clusterName", world().cluster_name())
        .input("regionName", world().region())
        .input("assumeRoleArn", role)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .input("namespace", namespace)
        .input("overrideValues", "hook=false")
        .input("helmPath", &world().tools().helm4.display().to_string())
}

fn the_error(outcome: &Outcome) -> String {
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.errors());
    outcome.errors()[0].message.clone()
}

fn helm_ran(outcome: &Outcome) -> bool {
    outcome.log.iter().any(|l| l.contains("##[command]helm upgrade"))
}

#[test]
fn assume_role_throttled_a_few_times_is_retried_and_the_deploy_succeeds() {
    cross_account_cluster();
    world().add_access_entry(ALLOWED_ROLE, "deployer", &["system:masters"]);
    let proxy = world().aws_fault_proxy().unwrap();
    proxy.faults().fail_next(2, assume_role(ALLOWED_ROLE), AwsError::throttling());
    let namespace = world().unique_namespace("sts-throttled").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let outcome = deploy_through(&proxy, &task, home.path(), ALLOWED_ROLE, &namespace).run();
    assert_eq!(proxy.faults().fired(), 2, "both Throttling answers were given");
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.log_text().contains("AWS identity: role deployer-ok (session"), "{}", outcome.log_text());
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
    assert_no_private_dir(&agent_temp(home.path()));
}

#[test]
fn assume_role_throttled_for_good_fails_naming_the_role_and_the_throttling() {
    cross_account_cluster();
    let proxy = world().aws_fault_proxy().unwrap();
    proxy.faults().fail_next(1000, assume_role(ALLOWED_ROLE), AwsError::throttling());
    let namespace = world().unique_namespace("sts-throttled-forever").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let outcome = deploy_through(&proxy, &task, home.path(), ALLOWED_ROLE, &namespace).run();
    let message = the_error(&outcome);
    assert!(proxy.faults().fired() >= 3, "AssumeRole was retried before giving up");
    assert!(message.contains(&format!("cannot assume role {ALLOWED_ROLE}")), "{message}");
    assert!(message.contains("Throttling") && message.contains("Rate exceeded"), "{message}");
    assert!(!message.contains("Error {"), "no debug dump: {message}");
    assert!(!helm_ran(&outcome), "helm never ran");
    assert_no_private_dir(&agent_temp(home.path()));
}

#[test]
fn a_cluster_that_is_creating_fails_before_helm_runs() {
    cross_account_cluster();
    world().add_access_entry(ALLOWED_ROLE, "deployer", &["system:masters"]);
    let proxy = world().aws_fault_proxy().unwrap();
    let describe = Match::any().method("GET").path(&format!("/clusters/{}", world().cluster_name()));
    proxy.faults().rewrite_next(1, describe, "\"ACTIVE\"", "\"CREATING\"");
    let namespace = world().unique_namespace("creating").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let outcome = deploy_through(&proxy, &task, home.path(), ALLOWED_ROLE, &namespace).run();
    let message = the_error(&outcome);
    assert_eq!(proxy.faults().fired(), 1, "DescribeCluster said CREATING");
    assert!(message.contains("EKS cluster world is CREATING, not ACTIVE"), "{message}");
    assert!(message.contains("wait until it is ready"), "what to do: {message}");
    assert!(!helm_ran(&outcome), "helm never ran");
    assert_no_private_dir(&agent_temp(home.path()));
}

/// A token refused mid-deploy: the role's access entry is removed while
/// helm waits for a post-install hook that would have succeeded (a world of
/// its own, since the hook's image is the chart's). helm says at best
/// "Unauthorized" (waiting for a Deployment, helm 4 waits out its timeout and
/// says only that it is not ready); the task asks the cluster again and puts
/// who was refused, and why, first.
#[test]
fn a_token_refused_mid_deploy_fails_with_the_refusal_and_removes_the_kubeconfig() {
    let world = World::start().unwrap();
    create_cluster_in_target_account(&world);
    world.add_access_entry(ALLOWED_ROLE, "deployer", &["system:masters"]);
    world.set_behaviour(
        "registry.world/migrate:1",
        azp_kube_world::Behaviour::exit(&["migrating"], 0, Duration::from_secs(6)),
    );
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let mut running = irsa_run(&world, &task, home.path())
        .input("clusterName", world.cluster_name())
        .input("regionName", world.region())
        .input("assumeRoleArn", ALLOWED_ROLE)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .input("namespace", "refused")
        .input("timeout", "10s")
        .input("helmPath", &world.tools().helm4.display().to_string())
        .spawn();
    assert!(
        running.wait_for_line(|l| l.contains("##[command]helm upgrade"), Duration::from_secs(60)),
        "{:?}",
        running.lines()
    );
    let waiting = Instant::now();
    while !job_exists(&world, "refused", "web-migrate") && waiting.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(job_exists(&world, "refused", "web-migrate"), "helm waits for the hook: {:?}", running.lines());
    world.remove_access_entry(ALLOWED_ROLE);
    let outcome = running.wait();
    let message = the_error(&outcome);
    assert!(
        message.starts_with(
            "cluster world (us-east-1) stopped letting role deployer-ok (session azp-kube-1) in account \
             222222222222 in (HTTP 401): its access entry (or aws-auth mapping) was removed or changed during the deploy"
        ),
        "the refusal comes first: {message}"
    );
    assert!(message.contains("helm upgrade of refused/web failed"), "and then helm's own error: {message}");
    assert_no_private_dir(&agent_temp(home.path()));
}

fn job_exists(world: &World, namespace: &str, name: &str) -> bool {
    Command::new(&world.tools().kubectl)
        .args(["--kubeconfig", &world.kubeconfig_path().display().to_string(), "-n", namespace])
        .args(["get", "job", name])
        .output()
        .is_ok_and(|o| o.status.success())
}
