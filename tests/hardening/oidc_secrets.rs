//! Secrets of an OIDC deploy: the job's access token and every ID token are
//! registered with the agent before anything can print them, and neither
//! (nor the sessions they buy) appears in the log (with System.Debug on), an
//! error, any process's argument list, helm's or the exec entry's
//! environment, any file in the step's private folder while helm runs, or a
//! file left in the agent's temp folder. The job's access token never leaves
//! the task process.

use std::time::Duration;

use azp_harness::StepResult;
use azp_kube_world::World;
use azp_kube_world::federation::FederatedJob;

use crate::secrets::{Watch, files_under, private_folder_copier};
use crate::support::{deploys_the_test_chart, scanned_run, task};

const CONNECTION_ROLE: &str = "arn:aws:iam::111111111111:role/azure-pipelines";
const TARGET_ROLE: &str = "arn:aws:iam::222222222222:role/oidc-secrets-deployer";

#[test]
fn no_oidc_token_reaches_a_log_an_argument_list_an_environment_or_a_file() {
    let world = World::start().unwrap();
    world.create_cluster_in_account_of(TARGET_ROLE).unwrap();
    world.add_access_entry(TARGET_ROLE, "deployer", &["system:masters"]);
    let job = FederatedJob::new(&world, "aws-oidc", CONNECTION_ROLE, "aws-oidc").unwrap();
    let job_token = job.devops.job_token(Duration::from_secs(600));
    let dir = tempfile::tempdir().unwrap();
    let helm = &world.tools().helm4;
    // helm, through a wrapper that keeps every file of the private folder it can read.
    let (wrapper, private_files) = private_folder_copier(dir.path(), helm);
    let watch = Watch::start(helm);
    let task = task("MulticlusterHelmV1");
    let agent_temp = dir.path().join("agent-temp");
    let run = scanned_run(&task, dir.path(), &agent_temp)
        .env("SYSTEM_DEBUG", "true")
        .envs(job.task_env(&world, &job_token))
        .input("awsCredentials", &job.connection_id)
        .input("assumeRoleArn", TARGET_ROLE);
    let outcome = deploys_the_test_chart(run, &world, &wrapper).run();
    let seen = watch.stop();

    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.log.iter().any(|l| l.starts_with("##[debug]OIDC token: issuer")), "System.Debug is on");
    assert!(outcome.secrets.contains(&job_token), "the job's access token is registered");
    let id_tokens: Vec<&String> = outcome.secrets.iter().filter(|s| s.starts_with("eyJ")).collect();
    assert!(!id_tokens.is_empty() && job.devops.issued() >= 1, "the ID token is registered");
    // The web identity's session and the target role's: a secret key and a session token each.
    assert!(outcome.secrets.len() >= 6, "{} secrets registered", outcome.secrets.len());
    assert!(!seen.helm_environments.is_empty(), "helm's environment was read");
    let private_text = String::from_utf8_lossy(&std::fs::read(&private_files).unwrap()).into_owned();
    assert!(private_text.contains("eks-token"), "the wrapper read the private folder");
    let left = files_under(&agent_temp);
    for secret in outcome.secrets.iter().filter(|s| s.len() >= 8) {
        let short = &secret[..6];
        assert!(!outcome.log_text().contains(secret.as_str()), "in the log: {short}…");
        assert!(outcome.errors().iter().all(|e| !e.message.contains(secret.as_str())), "in an error: {short}…");
        assert!(seen.command_lines.iter().all(|l| !l.contains(secret.as_str())), "in an argument list: {short}…");
        assert!(seen.helm_environments.iter().all(|e| !e.contains(secret.as_str())), "in helm's environment: {short}…");
        assert!(!private_text.contains(secret.as_str()), "in a file of the private folder: {short}…");
        for (path, text) in &left {
            assert!(!text.contains(secret.as_str()), "in {} left in the agent's temp folder: {short}…", path.display());
        }
    }
}
