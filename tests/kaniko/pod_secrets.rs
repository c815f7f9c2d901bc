//! What the kaniko pod spec shows: anyone who may read pods in the build
//! namespace reads it. A secret build argument and a presigned context URL
//! reach the executor through a per-build Secret (owned by the pod, deleted
//! with it) and never appear in the pod spec or the log; the URL lives no
//! longer than the build needs, nor than the credentials that sign it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use azp_harness::{Outcome, StepResult};
use azp_kube_world::recorder::Recording;
use azp_kube_world::store::{Event, EventType};
use base64::Engine as _;
use serde_json::Value;

use crate::support::*;

/// The kaniko image the task uses by default: the world builds for real.
const KANIKO: &str = "ghcr.io/osscontainertools/kaniko:v1.28.3";

const TOKEN: &str = "npm-Secr3t-f0r-the-build";

/// The values of the build's Secret, decoded, as first created.
fn secret_values(events: &Recording) -> serde_json::Map<String, Value> {
    let created = events.of("secrets").find(|e| e.kind == EventType::Added).expect("a Secret was created");
    let decode = |v: &Value| {
        let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
        Value::String(String::from_utf8(bytes).unwrap())
    };
    created.object["data"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), decode(v))).collect()
}

/// A query parameter of a URL.
fn query(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    query.split('&').find_map(|p| p.strip_prefix(&format!("{name}="))).unwrap().to_string()
}

fn sha256(text: &str) -> String {
    let output = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes())?;
            drop(child.stdin.take());
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(output.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// A repository whose build fails unless `NPM_TOKEN` holds [`TOKEN`].
fn repository_needing_the_token() -> tempfile::TempDir {
    let repo = repository();
    let dockerfile = format!(
        "FROM {}/busybox\n\
         ARG NPM_TOKEN=unset\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo -n \\\"$NPM_TOKEN\\\" | /bin/busybox sha256sum | /bin/busybox grep -q {}\"]\n",
        world().registry(),
        sha256(TOKEN)
    );
    std::fs::write(repo.path().join("Dockerfile"), dockerfile).unwrap();
    repo
}

fn assert_nothing_left(namespace: &str, outcome: &Outcome) {
    assert!(pods_in(namespace).is_empty(), "no pod remains");
    let secrets = world().cluster().resource("", "secrets").unwrap();
    let left = world().cluster().store.list(&secrets, Some(namespace)).0;
    assert!(left.is_empty(), "no Secret remains: {left:?}\n{}", outcome.log_text());
}

#[test]
fn a_secret_build_argument_and_the_presigned_url_reach_kaniko_through_a_secret_the_pod_owns() {
    let namespace = world().unique_namespace("pod-secrets").unwrap();
    let repo = repository_needing_the_token();
    let task = task();
    let repository = format!("{}/pod-secrets", world().registry());
    let recorder = world().record(&namespace);
    let outcome = run(&task, repo.path(), &namespace, KANIKO)
        .input("contextTransport", "S3 presigned URL")
        .input("bucket", &bucket("pod-secrets"))
        .input("s3Endpoint", &world().aws_https_endpoint().unwrap())
        .env("SSL_CERT_FILE", &world().ca_file().display().to_string())
        .input("destinations", &format!("{repository}:1"))
        .input("buildArgs", &format!("NPM_TOKEN={TOKEN}\nPLAIN=visible"))
        .input("cache", "false")
        .input("verbosity", "debug")
        // The agent's form of a secret variable `npmToken`, used as $(npmToken).
        .env("SECRET_NPMTOKEN", TOKEN)
        .env("VSTS_SECRET_VARIABLES", "[\"npmToken\"]")
        .run();
    let events = recorder.finish();
    // The build saw the value: its RUN checks the value's hash.
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(world().registry_digest("pod-secrets", "1").is_some());

    let values = secret_values(&events);
    let url = values["AZP_KUBE_CONTEXT_URL"].as_str().unwrap().to_string();
    assert_eq!(values["AZP_KUBE_BUILD_ARG_NPM_TOKEN"], TOKEN);
    let signature = query(&url, "X-Amz-Signature");
    let pods: Vec<&Arc<Event>> = events.of("pods").collect();
    assert!(!pods.is_empty(), "the pod was seen");
    for pod in &pods {
        let text = pod.object.to_string();
        for (what, secret) in [("the token", TOKEN), ("the URL's signature", signature.as_str())] {
            assert!(!text.contains(secret), "{what} is in the pod spec: {text}");
        }
        assert!(text.contains("--build-arg=PLAIN=visible"), "plain arguments stay in the spec: {text}");
    }
    let spec = &pods[0].object["spec"]["containers"][0];
    let secret_name = spec["env"][0]["valueFrom"]["secretKeyRef"]["name"].as_str().unwrap().to_string();
    assert_eq!(spec["args"][0], "--context=$(AZP_KUBE_CONTEXT_URL)");

    // Owned by the pod once it exists, deleted with it.
    let pod_uid = pods[0].object["metadata"]["uid"].clone();
    let secret_versions: Vec<&Arc<Event>> = events.of("secrets").collect();
    assert!(
        secret_versions.iter().any(|e| e.object["metadata"]["ownerReferences"][0]["uid"] == pod_uid),
        "the pod owns Secret {secret_name}"
    );
    assert!(secret_versions.iter().any(|e| e.kind == EventType::Deleted), "Secret {secret_name} was deleted");
    assert_nothing_left(&namespace, &outcome);

    // Registered with the agent, so the debug line that shows the URL is masked.
    for (what, secret) in [("the token", TOKEN), ("the URL's signature", signature.as_str())] {
        assert!(outcome.secrets.iter().any(|s| s == secret), "{what} is registered");
        assert!(!outcome.log_text().contains(secret), "{what} is in the log");
    }
    assert!(outcome.log_text().contains("Getting source context from"), "kaniko's debug line is shown");
    // What the build needs, not the whole timeout: kaniko reads the context at start.
    let lifetime: u64 = query(&url, "X-Amz-Expires").parse().unwrap();
    assert!(lifetime <= 15 * 60, "the URL is valid for {lifetime} s");
}

#[test]
fn a_secret_build_argument_is_removed_with_a_failed_build_even_when_the_pod_is_kept() {
    let namespace = world().unique_namespace("pod-secrets-fail").unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image(
        "pod-secrets-fail",
        azp_kube_world::Behaviour::exit(&["ERRO build failed"], 1, Duration::from_millis(300)),
    );
    let recorder = world().record(&namespace);
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("contextTransport", "Stream")
        .input("buildArgs", &format!("NPM_TOKEN={TOKEN}"))
        .input("keepPodOnFailure", "true")
        .env("SECRET_NPMTOKEN", TOKEN)
        .run();
    let events = recorder.finish();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert_eq!(secret_values(&events)["AZP_KUBE_BUILD_ARG_NPM_TOKEN"], TOKEN);
    let kept = pods_in(&namespace);
    assert_eq!(kept.len(), 1, "the failed pod is kept, as asked");
    let secrets = world().cluster().resource("", "secrets").unwrap();
    let left = world().cluster().store.list(&secrets, Some(&namespace)).0;
    assert!(left.is_empty(), "the kept pod's Secret is deleted all the same: {left:?}");
    assert!(events.of("pods").all(|p| !p.object.to_string().contains(TOKEN)));
    assert!(!outcome.log_text().contains(TOKEN));
}

#[test]
fn a_refused_pod_leaves_no_secret_behind() {
    let namespace = world().unique_namespace("pod-secrets-refused").unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image("pod-secrets-refused", kaniko_success());
    let pods = format!("/api/v1/namespaces/{namespace}/pods");
    world().faults().fail_next(1, 403, azp_kube_world::faults::Scope::path(&pods).method("POST"));
    let recorder = world().record(&namespace);
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("contextTransport", "Stream")
        .input("buildArgs", &format!("NPM_TOKEN={TOKEN}"))
        .env("SECRET_NPMTOKEN", TOKEN)
        .run();
    let events = recorder.finish();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert!(outcome.errors()[0].message.contains("cannot create the pod"), "{:?}", outcome.errors());
    assert_eq!(secret_values(&events)["AZP_KUBE_BUILD_ARG_NPM_TOKEN"], TOKEN, "the Secret came first");
    assert_nothing_left(&namespace, &outcome);
}

#[test]
fn a_cancelled_build_leaves_no_secret_behind() {
    let namespace = world().unique_namespace("pod-secrets-cancel").unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image("pod-secrets-cancel", azp_kube_world::Behaviour::serve(&["INFO building forever"]));
    let mut running = run(&task, repo.path(), &namespace, &image)
        .input("contextTransport", "Stream")
        .input("buildArgs", &format!("NPM_TOKEN={TOKEN}"))
        .env("SECRET_NPMTOKEN", TOKEN)
        .spawn();
    assert!(running.wait_for_line(|l| l.contains("INFO building forever"), Duration::from_secs(60)));
    running.signal(libc::SIGINT);
    let outcome = running.wait();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_nothing_left(&namespace, &outcome);
}

/// An AWS profile whose credentials (from `credential_process`) expire in `secs`.
fn expiring_profile(dir: &std::path::Path, secs: u64) -> String {
    let expiry = SystemTime::now() + Duration::from_secs(secs);
    let expiry = expiry.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let script = dir.join("credentials.py");
    std::fs::write(
        &script,
        format!(
            "import json, datetime\n\
             expiry = datetime.datetime.fromtimestamp({expiry}, datetime.timezone.utc)\n\
             print(json.dumps({{'Version': 1, 'AccessKeyId': 'ASIAEXPIRINGSOON', 'SecretAccessKey': 'testing', \
             'SessionToken': 'expiring-session-token', 'Expiration': expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}}))\n"
        ),
    )
    .unwrap();
    let config = dir.join("config");
    std::fs::write(&config, format!("[default]\ncredential_process = python3 {}\n", script.display())).unwrap();
    config.display().to_string()
}

fn presigned_run_with_credentials_expiring_in(name: &str, secs: u64) -> (Outcome, Recording, String) {
    let namespace = world().unique_namespace(name).unwrap();
    let bucket = bucket(name);
    let repo = repository();
    let task = task();
    let image = kaniko_image(name, kaniko_success());
    let aws = tempfile::tempdir().unwrap();
    let recorder = world().record(&namespace);
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("contextTransport", "S3 presigned URL")
        .input("bucket", &bucket)
        .input("s3Endpoint", &world().aws_https_endpoint().unwrap())
        .env("SSL_CERT_FILE", &world().ca_file().display().to_string())
        .env("AWS_ACCESS_KEY_ID", "")
        .env("AWS_SECRET_ACCESS_KEY", "")
        .env("AWS_CONFIG_FILE", &expiring_profile(aws.path(), secs))
        .env("AWS_SHARED_CREDENTIALS_FILE", &aws.path().join("none").display().to_string())
        .run();
    let events = recorder.finish();
    assert_nothing_left(&namespace, &outcome);
    assert_eq!(leftovers(&bucket), (vec![], 0), "no object remains");
    (outcome, events, namespace)
}

#[test]
fn a_presigned_url_ends_before_the_credentials_that_sign_it() {
    let (outcome, events, _) = presigned_run_with_credentials_expiring_in("presign-expiring", 6 * 60);
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let url = secret_values(&events)["AZP_KUBE_CONTEXT_URL"].as_str().unwrap().to_string();
    let lifetime: u64 = query(&url, "X-Amz-Expires").parse().unwrap();
    assert!((200..=300).contains(&lifetime), "valid for {lifetime} s, the credentials for 360 s");
    assert!(
        outcome.warnings().iter().any(|w| w.message.contains("valid for only")),
        "the shorter lifetime is said: {:?}",
        outcome.warnings()
    );
    // The session token travels in the URL: it is registered as a secret.
    assert!(outcome.secrets.iter().any(|s| s == "expiring-session-token"), "{:?}", outcome.secrets.len());
}

#[test]
fn credentials_about_to_expire_fail_the_build_before_any_pod() {
    let (outcome, events, _) = presigned_run_with_credentials_expiring_in("presign-expired", 90);
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    let errors = outcome.errors();
    assert!(errors[0].message.contains("expire in"), "{errors:?}");
    assert_eq!(events.of("pods").count(), 0, "no pod was created");
}

/// A bug that panics mid-build (a debug-only test switch) still deletes the pod, its
/// Secret and the context object, and the step fails with one error.
#[test]
fn a_panic_in_the_build_still_cleans_up() {
    let namespace = world().unique_namespace("pod-secrets-panic").unwrap();
    let bucket = bucket("pod-secrets-panic");
    let repo = repository();
    let task = task();
    let image = kaniko_image("pod-secrets-panic", azp_kube_world::Behaviour::serve(&["INFO building forever"]));
    let recorder = world().record(&namespace);
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("bucket", &bucket)
        .input("buildArgs", &format!("NPM_TOKEN={TOKEN}"))
        .env("SECRET_NPMTOKEN", TOKEN)
        .env("AZP_KUBE_PANIC_AFTER_POD_START", "true")
        .run();
    let events = recorder.finish();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert!(events.of("pods").any(|e| e.kind == EventType::Added), "the pod was started");
    assert_eq!(secret_values(&events)["AZP_KUBE_BUILD_ARG_NPM_TOKEN"], TOKEN);
    assert_nothing_left(&namespace, &outcome);
    assert_eq!(leftovers(&bucket), (vec![], 0), "the context object is deleted");
    let errors = outcome.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("internal error"), "{errors:?}");
}
