//! kaniko as it really is (osscontainertools/kaniko v1.28.3): real builds in the world,
//! whose kaniko follows the executor's source, for what the task must get right about it.

use azp_harness::StepResult;

use crate::real_builds::kaniko_service_account;
use crate::support::*;

/// The kaniko image the task uses by default: the world builds for real.
const KANIKO: &str = "ghcr.io/osscontainertools/kaniko:v1.28.3";

/// The paths a build's `RUN` printed as `listing: <path>` lines, in order.
fn listing(log: &[String]) -> Vec<String> {
    log.iter()
        .filter_map(|line| line.split_once("listing: ./").map(|(_, rest)| rest))
        .map(|rest| format!("./{}", rest.split('"').next().unwrap_or(rest).trim_end()))
        .collect()
}

/// kaniko's s3 fetcher downloads `context.tar.gz` into the folder it unpacks the context
/// in and leaves it there: `COPY . /app` must still copy exactly the context's files.
#[test]
fn copy_dot_from_s3_puts_exactly_the_context_s_files_in_the_image() {
    let namespace = world().unique_namespace("copy-dot").unwrap();
    let repo = repository();
    let registry = world().registry();
    std::fs::write(
        repo.path().join("Dockerfile"),
        format!(
            "FROM {registry}/busybox\nCOPY . /app\n\
             RUN [\"/bin/busybox\", \"sh\", \"-c\", \"cd /app && find . -type f | sort | sed 's/^/listing: /'\"]\n"
        ),
    )
    .unwrap();
    kaniko_service_account(&namespace, "arn:aws:iam::123456789012:role/kaniko");
    let task = task();
    let outcome = run(&task, repo.path(), &namespace, KANIKO)
        .input("contextTransport", "S3")
        .input("bucket", &bucket("copy-dot"))
        .input("s3Endpoint", &world().aws_endpoint().unwrap())
        .input("destinations", &format!("{registry}/copy-dot:1"))
        .input("cache", "false")
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    // The repository's files less what its .dockerignore leaves out (secrets/, *.log).
    assert_eq!(listing(&outcome.log), ["./.dockerignore", "./Dockerfile", "./app.txt"], "{}", outcome.log_text());
    assert!(pods_in(&namespace).is_empty(), "no pod remains");
}

/// kaniko refuses `--cache --no-push` without `--cache-repo`; with the cache on (its
/// default) and pushImage false the task names the cache repository task.json promises.
#[test]
fn a_build_without_push_keeps_its_cache_in_the_first_destination_s_cache_repository() {
    let namespace = world().unique_namespace("no-push-cache").unwrap();
    let repo = repository();
    let registry = world().registry();
    std::fs::write(repo.path().join("Dockerfile"), format!("FROM {registry}/busybox\nCOPY app.txt /app.txt\n"))
        .unwrap();
    let task = task();
    let outcome = run(&task, repo.path(), &namespace, KANIKO)
        .input("contextTransport", "Stream")
        .input("destinations", &format!("{registry}/team/no-push:1"))
        .input("pushImage", "false")
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.output("imageDigest").is_some_and(|d| d.starts_with("sha256:")), "{}", outcome.log_text());
    let cache = format!("{registry}/team/no-push/cache");
    assert!(outcome.log.iter().any(|l| l.contains(&cache)), "the log names the cache repository {cache}");
    assert_eq!(world().registry_digest("team/no-push", "1"), None, "nothing was pushed");
    assert!(pods_in(&namespace).is_empty(), "no pod remains");
}
