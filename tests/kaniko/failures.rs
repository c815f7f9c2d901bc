//! Each way a kaniko pod fails ends the step Failed with its true reason,
//! and nothing is left behind.

use std::time::Duration;

use azp_harness::{Outcome, StepResult};
use azp_kube_world::Behaviour;

use crate::support::*;

fn failed_build(test: &str, behaviour: Behaviour) -> (Outcome, String) {
    let namespace = world().unique_namespace(test).unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image(test, behaviour);
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("contextTransport", "S3")
        .input("bucket", &bucket(test))
        .run();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.errors());
    assert!(pods_in(&namespace).is_empty(), "no pod remains after {test}");
    (outcome.clone(), outcome.errors()[0].message.clone())
}

#[test]
fn a_dockerfile_error_shows_kaniko_s_lines() {
    let (_, message) = failed_build(
        "dockerfile-error",
        Behaviour::exit(
            &[
                "INFO Retrieving image manifest scratch",
                "error building image: parsing dockerfile: dockerfile parse error on line 3: unknown instruction: RUNN",
            ],
            1,
            Duration::from_millis(300),
        ),
    );
    assert!(message.contains("exited with code 1"), "{message}");
    assert!(message.contains("unknown instruction: RUNN"), "{message}");
}

#[test]
fn a_wrong_kaniko_image_reports_the_pull_error() {
    let (_, message) = failed_build("pull-error", Behaviour::pull_error());
    assert!(message.contains("cannot pull image kaniko.test/pull-error:1"), "{message}");
    assert!(message.contains("kanikoImage"), "{message}");
}

#[test]
fn an_unschedulable_pod_reports_the_scheduler_message() {
    let (outcome, message) =
        failed_build("unschedulable", Behaviour::unschedulable("0/3 nodes are available: 3 Insufficient memory."));
    assert!(message.contains("cannot be scheduled: 0/3 nodes are available: 3 Insufficient memory."), "{message}");
    assert!(outcome.warnings().iter().any(|w| w.message.contains("cannot be scheduled yet")));
}

#[test]
fn an_oom_killed_build_says_what_to_raise() {
    let (_, message) = failed_build("oom", Behaviour::oom_killed(Duration::from_millis(300)));
    assert!(message.contains("OOMKilled"), "{message}");
    assert!(message.contains("memoryLimit") && message.contains("--compressed-caching=false"), "{message}");
}

#[test]
fn an_evicted_pod_says_so() {
    let (_, message) = failed_build("evicted", Behaviour::evicted(Duration::from_millis(300)));
    assert!(message.contains("evicted"), "{message}");
}

#[test]
fn a_failed_pod_is_kept_when_asked() {
    let namespace = world().unique_namespace("keep").unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image("keep", Behaviour::exit(&["error building image"], 1, Duration::from_millis(200)));
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("contextTransport", "S3")
        .input("bucket", &bucket("keep"))
        .input("keepPodOnFailure", "true")
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_eq!(pods_in(&namespace).len(), 1, "the failed pod is kept for inspection");
}

#[test]
fn a_build_past_its_deadline_says_so() {
    // The shortest timeout is one minute: the pod's activeDeadlineSeconds.
    let namespace = world().unique_namespace("deadline").unwrap();
    let repo = repository();
    let task = task();
    let image = kaniko_image("deadline", Behaviour::serve(&["INFO building slowly"]));
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("contextTransport", "Stream")
        .input("timeoutMinutes", "1")
        .run();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.errors());
    let message = &outcome.errors()[0].message;
    assert!(message.contains("DeadlineExceeded") && message.contains("timeoutMinutes"), "{message}");
    assert!(pods_in(&namespace).is_empty());
}
