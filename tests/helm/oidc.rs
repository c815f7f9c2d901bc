//! OIDC service connections: an AWS Toolkit connection with `useOIDC`, its ID
//! token from the world's Azure DevOps, AssumeRoleWithWebIdentity checked
//! against IAM's trust (the world's gate in front of moto), then the task's
//! role in another account. No AWS keys anywhere in the step's environment.

use std::time::{Duration, Instant};

use azp_harness::{StepResult, TaskRun};
use azp_kube_world::World;
use azp_kube_world::azure_devops::AzureDevOps;
use azp_kube_world::federation::FederatedJob;

use super::{ALLOWED_ROLE, agent_temp, assert_no_private_dir, assert_no_secret_in_log, chart, task};

/// The connection's role, in the pipelines' account.
const CONNECTION_ROLE: &str = "arn:aws:iam::111111111111:role/azure-pipelines";
const CONNECTION_NAME: &str = "aws-oidc";

/// A run of the task through `job`'s OIDC connection into [`ALLOWED_ROLE`].
fn run(job: &FederatedJob, world: &World, home: &std::path::Path, job_token: &str) -> TaskRun {
    let temp = agent_temp(home);
    std::fs::create_dir_all(&temp).unwrap();
    TaskRun::new(task_dir())
        .timeout(Duration::from_secs(180))
        .env("HOME", &home.display().to_string())
        .env("AGENT_TEMPDIRECTORY", &temp.display().to_string())
        .envs(job.task_env(world, job_token))
        .input("awsCredentials", &job.connection_id)
        .input("clusterName", world.cluster_name())
        .input("regionName", world.region())
        .input("assumeRoleArn", ALLOWED_ROLE)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
}

fn task_dir() -> &'static std::path::Path {
    static TASK: std::sync::OnceLock<azp_harness::StagedTask> = std::sync::OnceLock::new();
    TASK.get_or_init(task).path()
}

/// Acceptance: ID token → web identity in 111111111111 → deployer-ok in
/// 222222222222 → the cluster; tokens live 3 s, ID tokens 3 s, and the
/// session is renewed every 2 s, so helm's 8-second wait needs new ID tokens,
/// which the exec entry gets from the task (an expired one is refused).
#[test]
fn an_oidc_connection_deploys_through_a_role_chain_and_renews_during_a_long_wait() {
    let world = World::start().unwrap();
    world.create_cluster_in_account_of(ALLOWED_ROLE).unwrap();
    world.add_access_entry(ALLOWED_ROLE, "deployer", &["system:masters"]);
    world.set_token_ttl(Duration::from_secs(3));
    world.set_behaviour(
        "registry.world/migrate:1",
        azp_kube_world::Behaviour::exit(&["migrating"], 0, Duration::from_secs(8)),
    );
    let federation = FederatedJob::new(&world, CONNECTION_NAME, CONNECTION_ROLE, CONNECTION_NAME).unwrap();
    federation.devops.set_id_token_lifetime(Duration::from_secs(3));
    let job_token = federation.devops.job_token(Duration::from_secs(600));
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let outcome = run(&federation, &world, home.path(), &job_token)
        .input("releaseName", "oidc")
        .input("namespace", "oidc")
        .input("helmPath", &world.tools().helm4.display().to_string())
        .env("AZP_KUBE_EKS_TOKEN_LIFETIME_SECONDS", "2")
        .env("AZP_KUBE_OIDC_RENEW_AFTER_SECONDS", "2")
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(started.elapsed() > Duration::from_secs(8), "the wait outlived the tokens");
    let log = outcome.log_text();
    assert!(log.contains("AWS credentials: OIDC federation into arn:aws:iam::111111111111:role/azure-pipelines (session aws-vsts-tools, 900 s)"), "{log}");
    assert!(log.contains("AWS identity: role deployer-ok"), "{log}");
    assert_eq!(outcome.output("releaseStatus"), Some("deployed"));
    assert!(federation.devops.issued() >= 2, "ID tokens issued: {}", federation.devops.issued());
    assert_eq!(federation.trust.refused(), 0, "no expired or untrusted token reached STS");
    assert!(federation.trust.accepted() >= 2, "web identity sessions: {}", federation.trust.accepted());
    assert!(outcome.secrets.contains(&job_token), "the job's access token is registered as a secret");
    assert!(outcome.secrets.iter().any(|s| s.starts_with("eyJ")), "the ID tokens are registered as secrets");
    assert_no_secret_in_log(&outcome);
    assert_no_private_dir(&agent_temp(home.path()));
}

/// A step through `job` that must fail before helm: its errors, and the log's secrets checked.
fn refused(job: &FederatedJob, job_token: &str) -> String {
    let world = super::world();
    let home = tempfile::tempdir().unwrap();
    let outcome = run(job, world, home.path(), job_token)
        .input("releaseName", "never")
        .input("namespace", "never")
        .input("helmPath", &world.tools().helm4.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert_no_secret_in_log(&outcome);
    format!("{:?}", outcome.errors())
}

/// A role that trusts another connection's subject is refused as IAM
/// refuses it, and the error shows the condition the trust policy needs.
#[test]
fn an_oidc_connection_whose_subject_the_role_does_not_trust_is_refused() {
    let job = FederatedJob::new(super::world(), CONNECTION_NAME, CONNECTION_ROLE, "another-connection").unwrap();
    let errors = refused(&job, &job.devops.job_token(Duration::from_secs(600)));
    assert!(errors.contains("Not authorized to perform sts:AssumeRoleWithWebIdentity"), "{errors}");
    assert!(errors.contains(&format!(":sub` = `{}`", AzureDevOps::subject(CONNECTION_NAME))), "{errors}");
    assert_eq!(job.trust.refused(), 1);
}

/// A job whose access token has expired cannot get an ID token: the error says so.
#[test]
fn an_expired_job_token_is_named() {
    let job = FederatedJob::new(super::world(), CONNECTION_NAME, CONNECTION_ROLE, CONNECTION_NAME).unwrap();
    let errors = refused(&job, &job.devops.job_token(Duration::ZERO));
    assert!(errors.contains("Azure DevOps refused the job's access token (HTTP 401)"), "{errors}");
    assert_eq!(job.devops.issued(), 0);
}

/// Without the IAM OIDC provider in the role's account, the error says to create it.
#[test]
fn a_missing_oidc_provider_is_named() {
    let job = FederatedJob::untrusted(super::world(), CONNECTION_NAME, CONNECTION_ROLE).unwrap();
    let errors = refused(&job, &job.devops.job_token(Duration::from_secs(600)));
    assert!(errors.contains("create an IAM OIDC identity provider in account 111111111111"), "{errors}");
}

/// A provider that does not list Azure DevOps's audience: the error says to add it.
#[test]
fn a_provider_without_the_audience_is_named() {
    let job = FederatedJob::untrusted(super::world(), CONNECTION_NAME, CONNECTION_ROLE).unwrap();
    let key = job.devops.issuer_key();
    job.trust.add_provider("111111111111", &key, &["sts.amazonaws.com"]);
    let subject = AzureDevOps::subject(CONNECTION_NAME);
    job.trust.trust_role(CONNECTION_ROLE, key.issuer(), azp_kube_world::azure_devops::AUDIENCE, &subject);
    let errors = refused(&job, &job.devops.job_token(Duration::from_secs(600)));
    assert!(errors.contains("Incorrect token audience"), "{errors}");
    assert!(errors.contains("add api://AzureADTokenExchange to the audiences"), "{errors}");
}
