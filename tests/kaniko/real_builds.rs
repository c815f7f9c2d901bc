//! Real builds: the world's kaniko runtime builds with buildah and pushes to
//! the world's registry, from each transport; the digest the task reports is
//! the one the registry serves for every tag.

use azp_harness::{Outcome, StepResult};

use crate::support::*;

/// The kaniko image the task uses by default: the world builds for real.
pub(crate) const KANIKO: &str = "ghcr.io/osscontainertools/kaniko:v1.28.3";

/// A multi-stage Dockerfile with FROM, ARG, COPY, RUN and a target.
pub(crate) fn app_repository() -> tempfile::TempDir {
    let repo = repository();
    let registry = world().registry();
    let dockerfile = format!(
        "FROM {registry}/busybox AS base\n\
         ARG GREETING=hi\n\
         COPY app.txt /app/app.txt\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $GREETING > /app/greeting\"]\n\
         FROM base AS final\n\
         LABEL stage=final\n\
         FROM base AS unused\n\
         RUN [\"/bin/busybox\", \"false\"]\n"
    );
    std::fs::write(repo.path().join("Dockerfile"), dockerfile).unwrap();
    repo
}

fn build(name: &str, transport: &str) -> (Outcome, String) {
    let namespace = world().unique_namespace(name).unwrap();
    let repo = app_repository();
    let task = task();
    let repository = format!("{}/{name}", world().registry());
    let mut run = run(&task, repo.path(), &namespace, KANIKO)
        .input("contextTransport", transport)
        .input("destinations", &format!("{repository}:1\n{repository}:latest"))
        .input("buildArgs", "GREETING=hello")
        .input("target", "final")
        .input("cache", "false");
    if transport == "S3" {
        // The pod reads s3:// with its own identity: IRSA on its service account.
        kaniko_service_account(&namespace, "arn:aws:iam::123456789012:role/kaniko");
    }
    if transport == "S3" {
        run = run.input("bucket", &bucket(name)).input("s3Endpoint", &world().aws_endpoint().unwrap());
    }
    if transport == "S3 presigned URL" {
        // kaniko fetches https:// only: moto behind TLS, whose CA the agent is given.
        run = run
            .input("bucket", &bucket(name))
            .input("s3Endpoint", &world().aws_https_endpoint().unwrap())
            .env("SSL_CERT_FILE", &world().ca_file().display().to_string());
    }
    let outcome = run.run();
    assert!(pods_in(&namespace).is_empty(), "no pod remains");
    (outcome, repository)
}

fn assert_pushed(outcome: &Outcome, repository: &str) {
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let name = repository.rsplit('/').next().unwrap();
    let digest = outcome.output("imageDigest").unwrap();
    for tag in ["1", "latest"] {
        assert_eq!(world().registry_digest(name, tag).as_deref(), Some(digest), "{repository}:{tag}");
    }
    assert_eq!(outcome.output("imageRef"), Some(format!("{repository}@{digest}").as_str()));
}

#[test]
fn a_real_build_from_s3_pushes_both_tags() {
    let (outcome, repository) = build("real-s3", "S3");
    assert_pushed(&outcome, &repository);
}

#[test]
fn a_real_build_from_a_presigned_url_pushes_both_tags() {
    let (outcome, repository) = build("real-presigned", "S3 presigned URL");
    assert_pushed(&outcome, &repository);
}

#[test]
fn a_real_build_from_stdin_pushes_both_tags() {
    let (outcome, repository) = build("real-stream", "Stream");
    assert_pushed(&outcome, &repository);
    assert_eq!(outcome.output("contextKey"), Some(""), "nothing was uploaded");
}

#[test]
fn a_dockerfile_error_fails_with_kaniko_s_lines() {
    let namespace = world().unique_namespace("real-broken").unwrap();
    let repo = repository();
    std::fs::write(repo.path().join("Dockerfile"), "FROM scratch\nRUNN echo broken\n").unwrap();
    let task = task();
    let outcome = run(&task, repo.path(), &namespace, KANIKO)
        .input("contextTransport", "Stream")
        .input("destinations", &format!("{}/broken:1", world().registry()))
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.errors());
    let message = &outcome.errors()[0].message;
    assert!(message.contains("exited with code 1"), "{message}");
    assert!(message.to_lowercase().contains("runn"), "kaniko's error lines are in the message: {message}");
    assert!(pods_in(&namespace).is_empty());
}

/// The kaniko pods' service account, with an IRSA role.
pub(crate) fn kaniko_service_account(namespace: &str, role: &str) {
    let manifest = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: azure-agent-kaniko\n  namespace: {namespace}\n  annotations:\n    eks.amazonaws.com/role-arn: {role}\n"
    );
    let mut apply = std::process::Command::new(&world().tools().kubectl)
        .args(["--kubeconfig", &world().kubeconfig_path().display().to_string(), "apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(apply.stdin.as_mut().unwrap(), manifest.as_bytes()).unwrap();
    drop(apply.stdin.take());
    assert!(apply.wait().unwrap().success());
}
