//! Secrets of an ECR chart deploy: the registry token of `ecr:GetAuthorizationToken`
//! and the password inside it are registered with the agent before anything can
//! print them, and appear in no log line (System.Debug on), error, argument list of
//! any process, environment of helm or the exec entry, file outside the step's
//! private folder (HOME, the agent's temp folder afterwards), nor in a system
//! keychain: a `docker-credential-secretservice` on PATH, which helm 3 and 4 would
//! hand the password to with an empty registry config, is never called.

use azp_harness::StepResult;
use azp_kube_world::World;
use base64::Engine as _;

use crate::secrets::{Watch, files_under, private_folder_copier};
use crate::support::{deploys_the_test_chart, scanned_run, task};

const TARGET_ROLE: &str = "arn:aws:iam::222222222222:role/ecr-secrets-deployer";

/// One world for both helms: the target cluster, its access entry, the chart in ECR.
fn world() -> &'static World {
    static READY: std::sync::Once = std::sync::Once::new();
    let world = World::shared();
    READY.call_once(|| {
        world.create_cluster_in_account_of(TARGET_ROLE).unwrap();
        world.add_access_entry(TARGET_ROLE, "deployer", &["system:masters"]);
        world.ecr().create_repository(azp_kube_world::world::ACCOUNT, "apps/world-app", &["222222222222"]);
        let chart = azp_harness::repo_root().join("tests/world/testdata/chart");
        world.push_ecr_chart(&chart, "1.0.0", "apps", None).unwrap();
    });
    world
}

fn no_ecr_password_leaks(helm: fn(&World) -> &std::path::Path) {
    let world = world();
    let namespace = world.unique_namespace("ecr-secrets").unwrap();
    // The deploy role's password, as moto issues it, and the token that carries it.
    let password = "222222222222-auth-token";
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    let dir = tempfile::tempdir().unwrap();
    // A system keychain helper that records every call.
    let keychain_calls = dir.path().join("keychain-calls.log");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let keychain = bin.join("docker-credential-secretservice");
    std::fs::write(&keychain, format!("#!/bin/sh\n{{ echo \"$@\"; cat; }} >> '{}'\n", keychain_calls.display()))
        .unwrap();
    std::fs::set_permissions(&keychain, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let helm = helm(world);
    // helm, through a wrapper that keeps every file of the private folder it can read.
    let (wrapper, private_files) = private_folder_copier(dir.path(), helm);
    let watch = Watch::start(helm);
    let task = task("MulticlusterHelmV1");
    let home = tempfile::tempdir().unwrap();
    let agent_temp = dir.path().join("agent-temp");
    let run = scanned_run(&task, home.path(), &agent_temp)
        .env("SYSTEM_DEBUG", "true")
        .envs(world.irsa_env("arn:aws:iam::123456789012:role/azure-agent").unwrap())
        .env("PATH", &path)
        .env("SSL_CERT_FILE", &world.ca_file().display().to_string());
    let reference = format!("oci://{}/apps/world-app", world.ecr_host(azp_kube_world::world::ACCOUNT));
    let outcome = deploys_the_test_chart(run, world, &wrapper)
        .input("assumeRoleArn", TARGET_ROLE)
        .input("chartType", "Name")
        .input("chartName", &reference)
        .input("chartVersion", "1.0.0")
        .input("namespace", &namespace)
        .input("waitForExecution", "false")
        .run();
    let seen = watch.stop();

    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.log.iter().any(|l| l.starts_with("##[debug]")), "System.Debug is on");
    assert!(outcome.log_text().contains("ecr:GetAuthorizationToken by the deploy identity"), "{}", outcome.log_text());
    assert!(outcome.secrets.contains(&token), "the token is registered");
    assert!(outcome.secrets.iter().any(|s| s == password), "the password is registered");
    assert!(!seen.helm_environments.is_empty(), "helm's environment was read");
    assert!(seen.command_lines.iter().any(|l| l.contains("registry login")), "helm registry login was watched");
    let private_text = String::from_utf8_lossy(&std::fs::read(&private_files).unwrap()).into_owned();
    // helm keeps the login as base64("AWS:<password>"): in the private folder, and only there.
    assert!(private_text.contains(&token), "the login is in the private registry config");
    assert!(!keychain_calls.exists(), "a keychain was asked to keep the password");
    let outside: Vec<_> = files_under(home.path()).into_iter().chain(files_under(&agent_temp)).collect();
    for secret in [password, token.as_str()] {
        let short = &secret[..6];
        let leaked: Vec<_> = outcome
            .log
            .iter()
            .filter(|l| l.contains(secret))
            .map(|l| l.chars().take(300).collect::<String>())
            .collect();
        assert!(leaked.is_empty(), "in the log: {short}…: {leaked:#?}");
        assert!(outcome.errors().iter().all(|e| !e.message.contains(secret)), "in an error: {short}…");
        assert!(seen.command_lines.iter().all(|l| !l.contains(secret)), "in an argument list: {short}…");
        assert!(seen.helm_environments.iter().all(|e| !e.contains(secret)), "in helm's environment: {short}…");
        for (path, text) in &outside {
            assert!(!text.contains(secret), "in {} outside the private folder: {short}…", path.display());
        }
    }
}

#[test]
fn no_ecr_password_leaks_with_helm3() {
    no_ecr_password_leaks(|world| &world.tools().helm3);
}

#[test]
fn no_ecr_password_leaks_with_helm4() {
    no_ecr_password_leaks(|world| &world.tools().helm4);
}
