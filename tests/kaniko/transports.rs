//! Building from each transport, outputs, .dockerignore, reruns, clean-up.

use std::time::Duration;

use azp_harness::StepResult;

use crate::support::*;

#[test]
fn s3_build_sets_outputs_and_leaves_nothing_behind() {
    let namespace = world().unique_namespace("s3").unwrap();
    let bucket = bucket("s3-build");
    let repo = repository();
    let task = task();
    let image = kaniko_image("s3-build", kaniko_success());
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("bucket", &bucket)
        .input("s3Endpoint", &world().aws_endpoint().unwrap())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{}", outcome.log_text());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));
    assert_eq!(outcome.output("imageRef"), Some(format!("registry.local/app@{DIGEST}").as_str()));
    assert_eq!(
        outcome.output("imageRefs"),
        Some(format!("registry.local/app@{DIGEST},registry.local/app@{DIGEST}").as_str())
    );
    let key = outcome.output("contextKey").unwrap();
    assert!(key.starts_with("kaniko-contexts/") && key.ends_with(".tar.gz"), "{key}");
    assert!(outcome.output("contextBytes").unwrap().parse::<u64>().unwrap() > 0);
    // The build log is shown, but cannot talk to the agent.
    assert!(outcome.log.iter().any(|l| l.contains("INFO Pushed registry.local/app@")));
    assert!(outcome.log.iter().any(|l| l.contains("**vso[task.setvariable variable=imageDigest]evil")));
    assert!(outcome.log.iter().any(|l| l == "**[error]not an error"));
    assert!(outcome.errors().is_empty(), "{:?}", outcome.errors());
    let summary = outcome.summaries.first().and_then(|(_, text)| text.clone()).expect("a summary is attached");
    assert!(summary.contains(DIGEST) && summary.contains("Context sent"), "{summary}");
    assert!(pods_in(&namespace).is_empty(), "no pod remains");
    assert_eq!(leftovers(&bucket), (vec![], 0), "no object and no multipart upload remain");
}

#[test]
fn dockerignored_files_never_reach_the_bucket_and_each_run_uploads_an_object_of_its_own() {
    let namespace = world().unique_namespace("rerun").unwrap();
    let bucket = bucket("rerun");
    let repo = repository();
    let task = task();
    let image = kaniko_image("rerun", kaniko_success());
    let first = run(&task, repo.path(), &namespace, &image)
        .input("bucket", &bucket)
        .input("deleteContextAfterBuild", "false")
        .run();
    assert_eq!(first.result, StepResult::Succeeded, "{}", first.log_text());
    let key = first.output("contextKey").unwrap().to_string();

    // The uploaded object holds the context as Docker would send it.
    let bytes = object(&bucket, &key);
    let mut tar = Vec::new();
    flate2_decode(&bytes, &mut tar);
    let names = tar_names(&tar);
    // Inside the folder kaniko is pointed at (--context-sub-path), beside nothing else.
    assert!(names.iter().all(|n| n == "context" || n.starts_with("context/")), "{names:?}");
    assert!(
        names.contains(&"context/Dockerfile".to_string()) && names.contains(&"context/app.txt".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("context/secrets") || n.ends_with(".log")), "{names:?}");
    assert!(!contains(&tar, b"do-not-ship"), "an ignored secret is not in the object");

    let second = run(&task, repo.path(), &namespace, &image)
        .input("bucket", &bucket)
        .input("deleteContextAfterBuild", "false")
        .run();
    assert_eq!(second.result, StepResult::Succeeded, "{}", second.log_text());
    // Nothing in the bucket is taken as this build's: the rerun uploads its own.
    let second_key = second.output("contextKey").unwrap().to_string();
    assert_ne!(second_key, key);
    assert_eq!(object(&bucket, &second_key), bytes, "the same context packs to the same bytes");
    let mut kept = leftovers(&bucket).0;
    kept.sort();
    let mut expected = vec![key, second_key];
    expected.sort();
    assert_eq!(kept, expected, "both kept, as asked");
}

#[test]
fn presigned_url_build_succeeds_without_aws_rights_in_the_pod() {
    let namespace = world().unique_namespace("presigned").unwrap();
    let bucket = bucket("presigned");
    let repo = repository();
    let task = task();
    let image = kaniko_image("presigned", kaniko_success());
    // kaniko fetches https:// only: moto behind TLS, whose CA the agent is given.
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("contextTransport", "S3 presigned URL")
        .input("bucket", &bucket)
        .input("s3Endpoint", &world().aws_https_endpoint().unwrap())
        .env("SSL_CERT_FILE", &world().ca_file().display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{}", outcome.log_text());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));
    assert!(pods_in(&namespace).is_empty());
    assert_eq!(leftovers(&bucket), (vec![], 0));
}

#[test]
fn two_builds_with_one_build_id_do_not_collide() {
    let namespace = world().unique_namespace("twins").unwrap();
    let bucket = bucket("twins");
    let repo = repository();
    let task = task();
    let image = kaniko_image("twins", kaniko_success());
    let start = || run(&task, repo.path(), &namespace, &image).input("bucket", &bucket).spawn();
    let (a, b) = (start(), start());
    let (a, b) = (a.wait(), b.wait());
    for outcome in [&a, &b] {
        assert_eq!(outcome.result, StepResult::Succeeded, "{}", outcome.log_text());
    }
    let pod = |o: &azp_harness::Outcome| o.log.iter().find(|l| l.starts_with("Started pod")).cloned().unwrap();
    assert_ne!(pod(&a), pod(&b), "generated pod names differ");
    assert!(pods_in(&namespace).is_empty());
}

#[test]
fn cancel_during_the_build_removes_pod_and_object_within_five_seconds() {
    let namespace = world().unique_namespace("cancel").unwrap();
    let bucket = bucket("cancel");
    let repo = repository();
    let task = task();
    let image = kaniko_image("cancel", azp_kube_world::Behaviour::serve(&["INFO building forever"]));
    let mut running = run(&task, repo.path(), &namespace, &image).input("bucket", &bucket).spawn();
    assert!(
        running.wait_for_line(|l| l.contains("INFO building forever"), Duration::from_secs(60)),
        "{:?}",
        running.lines()
    );
    assert_eq!(pods_in(&namespace).len(), 1);
    let cancelled = std::time::Instant::now();
    running.signal(libc::SIGINT);
    let outcome = running.wait();
    assert!(cancelled.elapsed() < Duration::from_secs(5), "took {:?}", cancelled.elapsed());
    assert_eq!(outcome.result, StepResult::Failed);
    assert!(outcome.errors()[0].message.contains("canceled"), "{:?}", outcome.errors());
    assert!(pods_in(&namespace).is_empty(), "no pod remains");
    assert_eq!(leftovers(&bucket), (vec![], 0), "no object remains");
}

/// The image is pushed before the summary is written: a summary that cannot
/// be written (a full or missing temp folder) is a warning, not a failed build.
#[test]
fn a_summary_that_cannot_be_written_does_not_fail_a_pushed_build() {
    let namespace = world().unique_namespace("no-summary").unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image("no-summary", kaniko_success());
    let gone = repo.path().join("no-such-temp-folder");
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("contextTransport", "Stream")
        .env("AGENT_TEMPDIRECTORY", &gone.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{}", outcome.log_text());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));
    let warning = format!("##[warning]cannot write the summary {}/", gone.display());
    assert!(outcome.log.iter().any(|l| l.starts_with(&warning)), "{}", outcome.log_text());
    assert!(outcome.summaries.is_empty(), "nothing is attached: {:?}", outcome.summaries);
    assert!(pods_in(&namespace).is_empty(), "no pod remains");
}
