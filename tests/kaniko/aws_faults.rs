//! S3 misbehaving under the upload and under the pod (issue #8): the task's
//! S3 calls go through the world's AWS fault proxy (`s3Endpoint`), which
//! resets connections, answers SlowDown or AccessDenied, before real moto.
//! Each case ends with the task succeeding, or failing with the true reason,
//! and with no pod, no object and no unfinished multipart upload left.

use std::path::Path;
use std::sync::Arc;

use azp_harness::{Outcome, StepResult};
use azp_kube_world::aws_faults::{AwsError, AwsFaultProxy, Match};
use azp_kube_world::pods::{ContainerRun, ContainerRuntime, RunFuture};
use azp_kube_world::{Behaviour, World};

use crate::support::*;

/// The kaniko image the task uses by default: the world builds for real.
const KANIKO: &str = "ghcr.io/osscontainertools/kaniko:v1.28.3";

/// A context that packs to more than one 5 MiB part: 7 MiB that gzip cannot
/// shrink, beside the small repository's files.
fn big_repository() -> tempfile::TempDir {
    let repo = repository();
    write_random_file(&repo.path().join("big.bin"), 7);
    repo
}

fn proxy() -> AwsFaultProxy {
    world().aws_fault_proxy().unwrap()
}

/// Part uploads (`PUT /<bucket>/…?partNumber=N&uploadId=…`) into one bucket.
fn part_uploads(bucket: &str) -> Match {
    Match::any().method("PUT").path(&format!("/{bucket}/")).query("partNumber").query("uploadId")
}

/// A run whose S3 calls go through `proxy`, in a namespace and bucket of its own.
fn faulty_run(name: &str, repo: &Path, proxy: &AwsFaultProxy, image: &str) -> (Outcome, String, String) {
    let namespace = world().unique_namespace(name).unwrap();
    let bucket = bucket(name);
    let task = task();
    let outcome = run(&task, repo, &namespace, image).input("bucket", &bucket).input("s3Endpoint", &proxy.url()).run();
    (outcome, namespace, bucket)
}

/// The one error of a failed run.
fn the_error(outcome: &Outcome) -> String {
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.errors());
    outcome.errors()[0].message.clone()
}

fn assert_nothing_left(namespace: &str, bucket: &str) {
    assert!(pods_in(namespace).is_empty(), "no pod remains");
    assert_eq!(leftovers(bucket), (vec![], 0), "no object and no unfinished multipart upload");
}

#[test]
fn a_connection_reset_during_a_part_upload_is_retried_and_the_real_build_succeeds() {
    let proxy = proxy();
    let repo = big_repository();
    let name = "reset-part";
    let namespace = world().unique_namespace(name).unwrap();
    let bucket = bucket(name);
    // The first part's connection drops after 1 MiB of its 5 MiB.
    proxy.faults().reset_next(1, part_uploads(&bucket), 1 << 20);
    let repository = format!("{}/{name}", world().registry());
    let task = task();
    // The pod reads the context through the proxy too, with its service account's role.
    crate::real_builds::kaniko_service_account(&namespace, "arn:aws:iam::123456789012:role/kaniko");
    let outcome = run(&task, repo.path(), &namespace, KANIKO)
        .input("bucket", &bucket)
        .input("s3Endpoint", &proxy.url())
        .input("contextTransport", "S3")
        .input("destinations", &format!("{repository}:1"))
        .input("cache", "false")
        .run();
    assert_eq!(proxy.faults().fired(), 1, "the connection was reset");
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let bytes: u64 = outcome.output("contextBytes").unwrap().parse().unwrap();
    assert!(bytes > 5 << 20, "a multipart upload ({bytes} bytes)");
    let digest = outcome.output("imageDigest").unwrap();
    assert_eq!(world().registry_digest(name, "1").as_deref(), Some(digest), "the digest the registry serves");
    assert!(outcome.log.iter().any(|l| l.contains("Unpacked build context")), "kaniko unpacked the whole context");
    assert_nothing_left(&namespace, &bucket);
}

#[test]
fn slow_down_on_part_uploads_is_retried() {
    let proxy = proxy();
    let repo = big_repository();
    let image = kaniko_image("slow-down-retried", kaniko_success());
    let planned = bucket_name("slow-down-retried");
    proxy.faults().fail_next(2, part_uploads(&planned), AwsError::slow_down());
    let (outcome, namespace, bucket) = faulty_run("slow-down-retried", repo.path(), &proxy, &image);
    assert_eq!(bucket, planned);
    assert_eq!(proxy.faults().fired(), 2, "both SlowDowns were answered");
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(outcome.output("imageDigest"), Some(DIGEST));
    assert_nothing_left(&namespace, &bucket);
}

#[test]
fn persistent_slow_down_fails_naming_it_and_aborts_the_multipart_upload() {
    let proxy = proxy();
    let repo = big_repository();
    let image = kaniko_image("slow-down-forever", kaniko_success());
    let planned = bucket_name("slow-down-forever");
    proxy.faults().fail_next(1000, part_uploads(&planned), AwsError::slow_down());
    let (outcome, namespace, bucket) = faulty_run("slow-down-forever", repo.path(), &proxy, &image);
    let message = the_error(&outcome);
    assert!(message.contains(&format!("s3://{bucket}/kaniko-contexts/")), "{message}");
    assert!(message.contains("SlowDown: "), "the service's code and message: {message}");
    assert!(!message.contains("Error {"), "no debug dump: {message}");
    assert!(proxy.faults().fired() >= 3, "the part was retried before giving up");
    assert!(!outcome.log.iter().any(|l| l.starts_with("Started pod")), "no pod was started");
    assert_nothing_left(&namespace, &bucket);
}

/// A run that is refused AccessDenied by `refused` (built for the bucket's
/// name); the error names the bucket, the refusal and the permission.
fn access_denied(name: &str, repo: &Path, refused: impl Fn(&str) -> Match, permission: &str) {
    let proxy = proxy();
    let image = kaniko_image(name, kaniko_success());
    let planned = bucket_name(name);
    proxy.faults().fail_next(1000, refused(&planned), AwsError::access_denied());
    let (outcome, namespace, bucket) = faulty_run(name, repo, &proxy, &image);
    let message = the_error(&outcome);
    assert!(proxy.faults().fired() >= 1, "the refusal was answered");
    assert!(message.contains(&format!("s3://{bucket}/")), "the bucket is named: {message}");
    assert!(message.contains("AccessDenied") || message.contains("Access Denied"), "{message}");
    assert!(message.contains(&format!("may {permission}")), "what to grant: {message}");
    assert!(!outcome.log.iter().any(|l| l.starts_with("Started pod")), "no pod was started");
    assert_nothing_left(&namespace, &bucket);
}

/// The task reads back what it uploaded (HeadObject, which needs
/// s3:GetObject) to know later whether anyone replaced it: refused, the step
/// fails naming the permission before any pod runs, and removes its object.
#[test]
fn a_refused_head_object_fails_naming_s3_get_object_before_any_pod_and_leaves_nothing() {
    let proxy = proxy();
    let repo = repository();
    let image = kaniko_image("denied-head", kaniko_success());
    let planned = bucket_name("denied-head");
    let head = Match::any().method("HEAD").path(&format!("/{planned}/"));
    proxy.faults().fail_next(1000, head, AwsError::access_denied());
    let (outcome, namespace, bucket) = faulty_run("denied-head", repo.path(), &proxy, &image);
    assert!(proxy.faults().fired() >= 1, "the refusal was answered");
    let message = the_error(&outcome);
    assert!(message.contains(&format!("s3://{bucket}/")) && message.contains("may s3:GetObject"), "{message}");
    assert!(outcome.log.iter().any(|l| l.starts_with("Uploaded the build context")), "{}", outcome.log_text());
    assert!(!outcome.log.iter().any(|l| l.starts_with("Started pod")), "no pod was started");
    assert_nothing_left(&namespace, &bucket);
}

#[test]
fn access_denied_on_put_object_names_the_bucket_and_the_permission() {
    let repo = repository();
    access_denied("denied-put", repo.path(), |b| Match::any().method("PUT").path(&format!("/{b}/")), "s3:PutObject");
}

#[test]
fn access_denied_on_create_multipart_upload_names_the_bucket_and_the_permission() {
    let repo = big_repository();
    let create = |b: &str| Match::any().method("POST").path(&format!("/{b}/")).query("uploads");
    access_denied("denied-create", repo.path(), create, "s3:PutObject");
}

#[test]
fn access_denied_on_a_part_upload_aborts_the_multipart_upload() {
    let repo = big_repository();
    access_denied("denied-part", repo.path(), part_uploads, "s3:PutObject");
}

/// The world's kaniko runtime, after deleting every object of a bucket: the
/// context is gone by the time kaniko reads it (a lifecycle rule, a clean-up
/// job, or someone's `aws s3 rm`).
struct ContextDeletedFirst {
    bucket: String,
    kaniko: Arc<dyn ContainerRuntime>,
}

impl ContainerRuntime for ContextDeletedFirst {
    fn run(&self, run: ContainerRun) -> RunFuture {
        let (bucket, kaniko) = (self.bucket.clone(), self.kaniko.clone());
        Box::pin(async move {
            let s3 = s3();
            if let Ok(listed) = s3.list_objects_v2().bucket(&bucket).send().await {
                for key in listed.contents().iter().filter_map(|o| o.key()) {
                    // A failed delete shows up as a successful build below.
                    let _ = s3.delete_object().bucket(&bucket).key(key).send().await;
                }
            }
            kaniko.run(run).await
        })
    }
}

pub(crate) fn kaniko_runtime(world: &World) -> Arc<dyn ContainerRuntime> {
    match world.kaniko() {
        Some(Behaviour::Run(runtime)) => runtime,
        other => panic!("the world's kaniko is a runtime: {other:?}"),
    }
}

#[test]
fn a_context_deleted_before_the_pod_reads_it_fails_with_kaniko_s_no_such_key() {
    let name = "context-deleted";
    let namespace = world().unique_namespace(name).unwrap();
    let bucket = bucket(name);
    // The pod reads s3:// with its own identity: IRSA on its service account.
    crate::real_builds::kaniko_service_account(&namespace, "arn:aws:iam::123456789012:role/kaniko");
    let image = kaniko_image(
        name,
        Behaviour::runtime(Arc::new(ContextDeletedFirst { bucket: bucket.clone(), kaniko: kaniko_runtime(world()) })),
    );
    let repo = repository();
    let task = task();
    let outcome = run(&task, repo.path(), &namespace, &image)
        .input("bucket", &bucket)
        .input("s3Endpoint", &world().aws_endpoint().unwrap())
        .input("destinations", &format!("{}/{name}:1", world().registry()))
        .input("cache", "false")
        .run();
    let message = the_error(&outcome);
    assert!(outcome.log.iter().any(|l| l.starts_with("Uploaded the build context")), "{}", outcome.log_text());
    assert!(message.contains("exited with code 1"), "{message}");
    assert!(message.contains("NoSuchKey"), "kaniko's own reason: {message}");
    assert_nothing_left(&namespace, &bucket);
}
