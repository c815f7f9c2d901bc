//! KanikoBuild's secrets: a build argument holding a secret variable's
//! value and the presigned context URL are registered with the agent and
//! appear in no log line, error, process argument list or pod spec (anyone
//! who may read pods in the build namespace reads the spec); and a bad
//! build argument's error names the line and key, never the value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azp_harness::{StepResult, TaskRun};
use azp_kube_world::{Behaviour, World};

use crate::bad_input::kaniko;
use crate::secrets::{Seen, watch_processes};
use crate::support::task;

const TOKEN: &str = "hardening-npm-t0ken-value";

#[test]
fn no_kaniko_secret_reaches_a_log_an_error_an_argument_list_or_a_pod_spec() {
    let world = World::shared();
    let namespace = world.unique_namespace("kaniko-secrets").unwrap();
    let bucket = format!("kaniko-secrets-{}", std::process::id());
    world.create_bucket(&bucket).unwrap();
    let image = "hardening.test/kaniko-secrets:1";
    let digest = "sha256:7a1b1d7a0b1e7c6b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8";
    world.set_behaviour(image, Behaviour::exit_with_message(&["INFO built"], 0, Duration::from_millis(300), digest));
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("Dockerfile"), "FROM scratch\nARG NPM_TOKEN\n").unwrap();
    let task = task("KanikoBuildV1");

    let seen = Arc::new(Mutex::new(Seen::default()));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = watch_processes(watching.clone(), seen.clone(), "helm".into());
    let recorder = world.record(&namespace);
    let outcome = TaskRun::new(task.path())
        .sources(repo.path())
        .timeout(Duration::from_secs(120))
        .envs(world.env().into_iter().filter(|(k, _)| k != "KUBECONFIG"))
        .env("SECRET_NPMTOKEN", TOKEN)
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &world.kubeconfig_path().display().to_string())
        .input("namespace", &namespace)
        .input("kanikoImage", image)
        .input("destinations", "registry.local/app:1")
        .input("contextTransport", "S3 presigned URL")
        .input("bucket", &bucket)
        .input("s3Endpoint", &world.aws_https_endpoint().unwrap())
        .env("SSL_CERT_FILE", &world.ca_file().display().to_string())
        .input("buildArgs", &format!("NPM_TOKEN={TOKEN}"))
        .input("verbosity", "debug")
        .run();
    let recording = recorder.finish();
    watching.store(false, Ordering::Relaxed);
    watcher.join().unwrap();

    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.secrets.iter().any(|s| s == TOKEN), "the build argument's value is registered");
    // The token and the URL's signature (registered when it is made).
    assert!(outcome.secrets.len() >= 2, "{} secrets registered", outcome.secrets.len());
    let pod_specs: Vec<String> = recording.of("pods").map(|e| e.object.to_string()).collect();
    assert!(!pod_specs.is_empty(), "the pod was seen");
    let command_lines = &seen.lock().unwrap().command_lines;
    for secret in outcome.secrets.iter().filter(|s| s.len() >= 8) {
        let short = &secret[..6];
        assert!(!outcome.log_text().contains(secret.as_str()), "in the log: {short}…");
        assert!(outcome.errors().iter().all(|e| !e.message.contains(secret.as_str())), "in an error: {short}…");
        assert!(command_lines.iter().all(|l| !l.contains(secret.as_str())), "in an argument list: {short}…");
        assert!(pod_specs.iter().all(|p| !p.contains(secret.as_str())), "in a pod spec: {short}…");
    }
    assert!(pod_specs.iter().all(|p| !p.contains("X-Amz-Signature")), "a presigned URL in a pod spec");
}

/// A bad `buildArgs` line: refused before the network, naming the input,
/// never echoing the value.
fn refused_without_echo(line: &str, value: &str) -> String {
    let message = kaniko(&[("buildArgs", line)], "buildArgs");
    assert!(!message.contains(value), "the error echoes the value: {message}");
    message
}

#[test]
fn a_build_argument_with_a_bad_key_is_named_by_line_not_by_value() {
    let message = refused_without_echo("VERSION=1\nBAD KEY=hunter2-secret", "hunter2");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn a_build_argument_with_a_digit_first_never_shows_its_value() {
    refused_without_echo("1TOKEN=hunter2-secret", "hunter2");
}

#[test]
fn a_line_that_is_not_a_key_is_not_echoed() {
    refused_without_echo("hunter2 secret value", "hunter2");
}

#[test]
fn a_bare_key_is_refused_because_it_would_override_the_dockerfile_default() {
    // kaniko fills a bare KEY from its own environment, where nothing sets it.
    let message = kaniko(&[("buildArgs", "HTTP_PROXY")], "buildArgs");
    assert!(message.contains("HTTP_PROXY") && message.contains("ARG default"), "{message}");
}

/// KanikoBuild on an IRSA agent (web identity), `System.Debug` on: the
/// session the S3 client obtains is registered (its secret key and session
/// token) and appears nowhere in the log.
#[test]
fn web_identity_credentials_of_the_context_upload_are_registered() {
    let world = World::shared();
    let namespace = world.unique_namespace("kaniko-irsa").unwrap();
    let bucket = format!("kaniko-irsa-{}", std::process::id());
    world.create_bucket(&bucket).unwrap();
    let image = "hardening.test/kaniko-irsa:1";
    let digest = "sha256:8b1b1d7a0b1e7c6b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8";
    world.set_behaviour(image, Behaviour::exit_with_message(&["INFO built"], 0, Duration::from_millis(300), digest));
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let task = task("KanikoBuildV1");
    let irsa = world.irsa_env("arn:aws:iam::123456789012:role/azure-agent").unwrap();
    let outcome = TaskRun::new(task.path())
        .sources(repo.path())
        .timeout(Duration::from_secs(120))
        .envs(irsa.into_iter().filter(|(k, _)| k != "KUBECONFIG"))
        .env("SYSTEM_DEBUG", "true")
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &world.kubeconfig_path().display().to_string())
        .input("namespace", &namespace)
        .input("kanikoImage", image)
        .input("destinations", "registry.local/app:1")
        .input("contextTransport", "S3")
        .input("bucket", &bucket)
        .input("s3Endpoint", &world.aws_endpoint().unwrap())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.log.iter().any(|l| l.starts_with("##[debug]")), "System.Debug is on");
    // No input is secret: what is registered is the web identity's session.
    assert!(outcome.secrets.len() >= 2, "{} values registered", outcome.secrets.len());
    for secret in outcome.secrets.iter().filter(|s| s.len() >= 8) {
        assert!(!outcome.log_text().contains(secret.as_str()), "in the log: {:.6}…", secret);
    }
}
