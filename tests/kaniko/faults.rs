//! Faults around a build: dropped watches, cancellation during the upload.

use std::time::{Duration, Instant};

use azp_harness::StepResult;
use azp_kube_world::Behaviour;

use crate::support::*;

#[test]
fn dropped_watches_mid_build_do_not_fail_the_task() {
    let namespace = world().unique_namespace("watch-drop").unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image(
        "watch-drop",
        Behaviour::exit_with_message(&["INFO step 1", "INFO step 2", "INFO step 3"], 0, Duration::from_secs(3), DIGEST),
    );
    let mut running = run(&task, repo.path(), &namespace, &image).input("bucket", &bucket("watch-drop")).spawn();
    assert!(running.wait_for_line(|l| l.starts_with("Started pod"), Duration::from_secs(60)), "{:?}", running.lines());
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        world().cluster().close_watches();
    }
    let outcome = running.wait();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));
    for step in ["INFO step 1", "INFO step 2", "INFO step 3"] {
        assert_eq!(outcome.log.iter().filter(|l| l.as_str() == step).count(), 1, "{step} shown exactly once");
    }
    assert!(pods_in(&namespace).is_empty());
}

/// A build of a context with a big file of `mib` MiB that does not
/// compress, canceled (SIGINT) `after` a line matches `phase`: within 5 s it
/// has failed as canceled, with no pod, no object and no unfinished
/// multipart upload left. Returns the log.
fn cancel_when(name: &str, mib: usize, phase: impl Fn(&str) -> bool, after: Duration) -> Vec<String> {
    let namespace = world().unique_namespace(name).unwrap();
    let bucket = bucket(name);
    let repo = repository();
    write_random_file(&repo.path().join("big.bin"), mib);
    let task = task();
    let image = kaniko_image(name, kaniko_success());
    let mut running = run(&task, repo.path(), &namespace, &image).input("bucket", &bucket).spawn();
    assert!(running.wait_for_line(&phase, Duration::from_secs(60)), "the phase began: {:?}", running.lines());
    std::thread::sleep(after);
    let canceled = Instant::now();
    running.signal(libc::SIGINT);
    let outcome = running.wait();
    assert!(canceled.elapsed() < Duration::from_secs(5), "took {:?}", canceled.elapsed());
    assert_eq!(outcome.result, StepResult::Failed);
    assert!(outcome.errors()[0].message.contains("canceled"), "{:?}", outcome.errors());
    assert!(!outcome.log.iter().any(|l| l.starts_with("Started pod")), "canceled before the pod");
    assert_eq!(leftovers(&bucket), (vec![], 0), "no object and no unfinished multipart upload");
    assert!(pods_in(&namespace).is_empty());
    outcome.log
}

#[test]
fn cancel_during_the_upload_leaves_no_object_and_no_multipart_upload() {
    // 256 MiB: the upload takes a while.
    cancel_when("cancel-upload", 256, |l| l.contains("task.setprogress"), Duration::ZERO);
}

#[test]
fn cancel_as_the_context_is_packed_stops_at_once() {
    // Packing streams into the upload from the start: cancel as soon as it began,
    // while the packer's threads are busy with 512 MiB.
    let summary = |l: &str| l.starts_with("context: ") && l.contains("included");
    cancel_when("cancel-pack", 512, summary, Duration::ZERO);
}

#[test]
fn bursts_of_503_429_and_500_and_a_dropped_log_stream_mid_build_do_not_fail_the_task() {
    use azp_kube_world::faults::Scope;
    let namespace = world().unique_namespace("bursts").unwrap();
    let repo = repository();
    let task = task();
    let lines = ["INFO step 1", "INFO step 2", "INFO step 3", "INFO step 4"];
    let image = kaniko_image("bursts", Behaviour::exit_with_message(&lines, 0, Duration::from_secs(4), DIGEST));
    let mut running = run(&task, repo.path(), &namespace, &image).input("bucket", &bucket("bursts")).spawn();
    assert!(running.wait_for_line(|l| l.contains("INFO step 1"), Duration::from_secs(60)), "{:?}", running.lines());
    let pods = format!("/api/v1/namespaces/{namespace}/pods");
    let fired = world().faults().fired();
    world().faults().fail_next(3, 503, Scope::path(&pods));
    std::thread::sleep(Duration::from_millis(500));
    world().faults().fail_next(2, 429, Scope::path(&pods));
    world().faults().fail_next(2, 500, Scope::path(&pods));
    world().cluster().close_watches();
    let outcome = running.wait();
    assert!(world().faults().fired() >= fired + 7, "every fault was answered to the task's requests");
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.errors().is_empty(), "retried calls are no errors of the step: {:?}", outcome.errors());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));
    for line in lines {
        assert_eq!(outcome.log.iter().filter(|l| l.as_str() == line).count(), 1, "{line} shown exactly once");
    }
    assert!(pods_in(&namespace).is_empty());
}

/// A world of its own: the outage takes the whole API away, which would
/// disturb the other tests of this binary in the shared world.
#[test]
fn the_api_unreachable_for_20_seconds_mid_build_does_not_fail_the_task() {
    let world =
        azp_kube_world::World::start_with(azp_kube_world::Options { aws: false, ..Default::default() }).unwrap();
    let namespace = world.unique_namespace("outage").unwrap();
    let repo = repository();
    let task = task();
    // The build logs, finishes and exits while the API is away; the task learns it afterwards.
    let lines = ["INFO step 1", "INFO step 2", "INFO step 3", "INFO step 4", "INFO step 5", "INFO step 6"];
    let image = "kaniko.test/outage:1";
    world.set_behaviour(image, Behaviour::exit_with_message(&lines, 0, Duration::from_secs(14), DIGEST));
    let mut running = azp_harness::TaskRun::new(task.path())
        .sources(repo.path())
        .timeout(Duration::from_secs(180))
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &world.kubeconfig_path().display().to_string())
        .input("namespace", &namespace)
        .input("kanikoImage", image)
        .input("contextTransport", "Stream")
        .input("destinations", "registry.local/app:1")
        .spawn();
    assert!(running.wait_for_line(|l| l.contains("INFO step 1"), Duration::from_secs(60)), "{:?}", running.lines());
    world.faults().unreachable_for(Duration::from_secs(20));
    let outcome = running.wait();
    assert!(world.faults().fired() > 0, "the task's connections were refused");
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(outcome.errors().is_empty(), "retried calls are no errors of the step: {:?}", outcome.errors());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));
    for line in lines {
        assert_eq!(outcome.log.iter().filter(|l| l.as_str() == line).count(), 1, "{line} shown exactly once");
    }
    assert!(
        outcome.warnings().iter().any(|w| w.message.starts_with("Lost contact with the Kubernetes API")),
        "the user is told why the log paused: {:?}",
        outcome.warnings()
    );
    let pods = std::process::Command::new(&world.tools().kubectl)
        .args(["--kubeconfig", &world.kubeconfig_path().display().to_string(), "-n", &namespace])
        .args(["get", "pods", "-o", "name"])
        .output()
        .unwrap();
    assert!(pods.status.success() && pods.stdout.is_empty(), "left behind: {pods:?}");
}

#[test]
fn a_pod_deleted_by_someone_else_fails_with_that_reason() {
    let namespace = world().unique_namespace("deleted").unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image("deleted", Behaviour::serve(&["INFO building until stopped"]));
    let mut running = run(&task, repo.path(), &namespace, &image).input("bucket", &bucket("deleted")).spawn();
    assert!(running.wait_for_line(|l| l.contains("INFO building until stopped"), Duration::from_secs(60)));
    let pod = pods_in(&namespace).pop().unwrap();
    let deleted = std::process::Command::new(&world().tools().kubectl)
        .args(["--kubeconfig", &world().kubeconfig_path().display().to_string(), "-n", &namespace])
        .args(["delete", "pod", &pod, "--wait=false"])
        .output()
        .unwrap();
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    let outcome = running.wait();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.errors());
    let message = &outcome.errors()[0].message;
    assert!(message.contains("deleted by someone else") || message.contains("exited with code 137"), "{message}");
    assert!(pods_in(&namespace).is_empty());
}

#[test]
fn cancel_while_the_pod_is_pending_removes_it() {
    let namespace = world().unique_namespace("cancel-pending").unwrap();
    let bucket = bucket("cancel-pending");
    let repo = repository();
    let task = task();
    let image = kaniko_image("cancel-pending", Behaviour::unschedulable("0/1 nodes are available: 1 Too many pods."));
    let mut running = run(&task, repo.path(), &namespace, &image)
        .input("bucket", &bucket)
        .env("AZP_KUBE_UNSCHEDULABLE_GRACE_SECONDS", "600")
        .spawn();
    assert!(running.wait_for_line(|l| l.contains("cannot be scheduled yet"), Duration::from_secs(60)));
    let canceled = Instant::now();
    running.signal(libc::SIGINT);
    let outcome = running.wait();
    assert!(canceled.elapsed() < Duration::from_secs(5), "took {:?}", canceled.elapsed());
    assert!(outcome.errors()[0].message.contains("canceled"), "{:?}", outcome.errors());
    assert!(pods_in(&namespace).is_empty(), "the pending pod is removed");
    assert_eq!(leftovers(&bucket), (vec![], 0));
}

#[test]
fn a_missing_bucket_is_named() {
    let namespace = world().unique_namespace("no-bucket").unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image("no-bucket", kaniko_success());
    let outcome = run(&task, repo.path(), &namespace, &image).input("bucket", "no-such-bucket-here").run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.errors());
    let message = &outcome.errors()[0].message;
    assert!(message.contains("s3://no-such-bucket-here/"), "{message}");
    assert!(message.contains("NoSuchBucket: "), "the service's code and message: {message}");
    assert!(!message.contains("Error {"), "no debug dump: {message}");
    assert!(pods_in(&namespace).is_empty(), "no pod was started");
}
