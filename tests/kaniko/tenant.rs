//! Tenant safety of the shipped build context (issue 15, items 1, 2 and 9):
//! every pipeline on the pool can write the context bucket, so a build must
//! only ever build bytes it uploaded itself, must not lose its context to a
//! twin build, and must apply the .dockerignore the repository has. Each test
//! checks the image the world's registry serves, not a log line.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use azp_harness::{Outcome, StagedTask, StepResult, TaskRun};
use azp_kube_world::Behaviour;
use azp_kube_world::pods::{ContainerRun, ContainerRuntime, RunFuture};

use crate::aws_faults::kaniko_runtime;
use crate::real_builds::{KANIKO, app_repository, kaniko_service_account};
use crate::support::*;

/// The kaniko pods' IRSA role: the pod reads `s3://` with it.
const KANIKO_ROLE: &str = "arn:aws:iam::123456789012:role/kaniko";

/// The task's default key prefix.
const KEY_PREFIX: &str = "kaniko-contexts/";

/// A real S3 build of `repo` into `<registry>/<name>:1`.
fn real_s3_build(task: &StagedTask, name: &str, repo: &Path, namespace: &str, bucket: &str, image: &str) -> TaskRun {
    run(task, repo, namespace, image)
        .input("bucket", bucket)
        .input("s3Endpoint", &world().aws_endpoint().unwrap())
        .input("destinations", &format!("{}/{name}:1", world().registry()))
        .input("cache", "false")
}

fn succeeded(outcome: &Outcome) {
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
}

/// The project's own CLI, as another pipeline on the pool runs it.
fn azp_kube(args: &[&str]) -> String {
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_azp-kube")).args(args).envs(world().env()).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// A tarball of `repo` as KanikoBuild packs it.
fn packed(repo: &Path) -> Vec<u8> {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().display().to_string();
    azp_kube(&["context", "--context", &repo.display().to_string(), "--output", &path]);
    std::fs::read(file.path()).unwrap()
}

fn put_object(bucket: &str, key: &str, bytes: Vec<u8>) {
    runtime().block_on(async {
        s3().put_object().bucket(bucket).key(key).body(bytes.into()).send().await.unwrap();
    });
}

/// The victim's files, as the app repository's Dockerfile copies them.
fn app_files(repository: &str) -> Vec<(String, String)> {
    image_files(repository, "1", "app/").into_iter().collect()
}

fn victim_files() -> Vec<(String, String)> {
    vec![("app/app.txt".into(), "hello\n".into()), ("app/greeting".into(), "hi\n".into())]
}

/// A pull-request pipeline knows the post-merge tree, so it can compute the
/// key KanikoBuild gives that context (with the project's own CLI, as
/// KanikoBuild computes it) and plant its own tarball there before the
/// victim's build runs. The victim must build its own files.
#[test]
fn a_tarball_planted_at_the_key_of_the_victim_s_context_is_not_built() {
    let name = "poisoned";
    let namespace = world().unique_namespace(name).unwrap();
    let bucket = bucket(name);
    kaniko_service_account(&namespace, KANIKO_ROLE);
    let victim = app_repository();

    let upload = format!("s3://{bucket}/{KEY_PREFIX}");
    let endpoint = world().aws_endpoint().unwrap();
    let predicted = azp_kube(&[
        "context",
        "--context",
        &victim.path().display().to_string(),
        "--upload",
        &upload,
        "--s3-endpoint",
        &endpoint,
        "--region",
        world().region(),
    ]);
    let key = predicted.trim().strip_prefix(&format!("s3://{bucket}/")).unwrap().to_string();
    let attacker = app_repository();
    std::fs::write(attacker.path().join("app.txt"), "attacker's\n").unwrap();
    put_object(&bucket, &key, packed(attacker.path()));

    let task = task();
    let outcome = real_s3_build(&task, name, victim.path(), &namespace, &bucket, KANIKO).input("target", "final").run();
    succeeded(&outcome);
    assert_eq!(app_files(name), victim_files(), "the image holds the victim's files");
    assert_ne!(outcome.output("contextKey"), Some(key.as_str()), "{}", outcome.log_text());
    assert_eq!(leftovers(&bucket), (vec![key], 0), "the build deleted its own object, and only that");
}

/// Holds the world's kaniko until `open` is set: the pod has started, but
/// kaniko has not read its context yet.
struct Gated {
    open: Arc<AtomicBool>,
    kaniko: Arc<dyn ContainerRuntime>,
}

impl ContainerRuntime for Gated {
    fn run(&self, run: ContainerRun) -> RunFuture {
        let (open, kaniko) = (self.open.clone(), self.kaniko.clone());
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
            while !open.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            kaniko.run(run).await
        })
    }
}

/// Two jobs build two images (two targets) from one repository. The second
/// one's kaniko reads its context only after the first build has ended and
/// cleaned up: it must still find it.
#[test]
fn a_build_reads_its_context_after_a_twin_build_of_the_same_context_cleaned_up() {
    let name = "twin-late";
    let namespace = world().unique_namespace(name).unwrap();
    let bucket = bucket(name);
    kaniko_service_account(&namespace, KANIKO_ROLE);
    let repo = app_repository();
    let open = Arc::new(AtomicBool::new(false));
    let gated =
        kaniko_image(name, Behaviour::runtime(Arc::new(Gated { open: open.clone(), kaniko: kaniko_runtime(world()) })));

    let task = task();
    let mut late =
        real_s3_build(&task, name, repo.path(), &namespace, &bucket, &gated).input("target", "final").spawn();
    assert!(late.wait_for_line(|l| l.starts_with("Started pod"), Duration::from_secs(60)), "{:?}", late.lines());

    let first_image = kaniko_image("twin-first", kaniko_success());
    let first = run(&task, repo.path(), &namespace, &first_image)
        .input("bucket", &bucket)
        .input("s3Endpoint", &world().aws_endpoint().unwrap())
        .input("target", "base")
        .run();
    succeeded(&first);
    open.store(true, Ordering::Relaxed);

    let late = late.wait();
    succeeded(&late);
    assert_eq!(app_files(name), victim_files());
    assert!(pods_in(&namespace).is_empty(), "no pod remains");
    assert_eq!(leftovers(&bucket), (vec![], 0), "each build deleted its own object");
}

/// Overwrites every object in a bucket with `bytes` before the world's
/// kaniko reads its context: another pipeline that lists the bucket and
/// races the pod.
struct OverwrittenFirst {
    bucket: String,
    bytes: Vec<u8>,
    kaniko: Arc<dyn ContainerRuntime>,
}

impl ContainerRuntime for OverwrittenFirst {
    fn run(&self, run: ContainerRun) -> RunFuture {
        let (bucket, bytes, kaniko) = (self.bucket.clone(), self.bytes.clone(), self.kaniko.clone());
        Box::pin(async move {
            let s3 = s3();
            let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
            for key in listed.contents().iter().filter_map(|o| o.key()) {
                s3.put_object().bucket(&bucket).key(key).body(bytes.clone().into()).send().await.unwrap();
            }
            kaniko.run(run).await
        })
    }
}

/// An unguessable key cannot be planted beforehand, but a pipeline can list
/// the bucket and overwrite the object before kaniko reads it. The build then
/// fails, says so, reports no image, and keeps the object as evidence.
#[test]
fn a_context_overwritten_before_kaniko_reads_it_fails_the_step_and_reports_no_image() {
    let name = "overwritten";
    let namespace = world().unique_namespace(name).unwrap();
    let bucket = bucket(name);
    kaniko_service_account(&namespace, KANIKO_ROLE);
    let attacker = app_repository();
    std::fs::write(attacker.path().join("app.txt"), "attacker's\n").unwrap();
    let image = kaniko_image(
        name,
        Behaviour::runtime(Arc::new(OverwrittenFirst {
            bucket: bucket.clone(),
            bytes: packed(attacker.path()),
            kaniko: kaniko_runtime(world()),
        })),
    );
    let victim = app_repository();
    let task = task();
    let outcome = real_s3_build(&task, name, victim.path(), &namespace, &bucket, &image).input("target", "final").run();

    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    let key = outcome.log.iter().find_map(|l| l.strip_prefix(&format!("Uploaded the build context to s3://{bucket}/")));
    let key = key.and_then(|rest| rest.split(' ').next()).expect("the upload is logged").to_string();
    let errors = outcome.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = &errors[0].message;
    assert!(message.contains(&format!("s3://{bucket}/{key} was overwritten")), "{message}");
    assert!(message.contains("not reported"), "{message}");
    assert_eq!(outcome.output("imageRef"), None, "no image reference for the deploy stage");
    assert_eq!(outcome.output("imageDigest"), None);
    assert!(pods_in(&namespace).is_empty(), "no pod remains");
    assert_eq!(leftovers(&bucket), (vec![key], 0), "the overwritten object is kept for inspection");
}

/// A repository whose .dockerignore is a symlink into the context: Docker
/// reads the patterns through it.
fn repository_with_linked_dockerignore() -> tempfile::TempDir {
    let repo = repository();
    std::fs::remove_file(repo.path().join(".dockerignore")).unwrap();
    std::fs::create_dir(repo.path().join("config")).unwrap();
    std::fs::write(repo.path().join("config/dockerignore"), "secrets/\n*.log\n").unwrap();
    std::os::unix::fs::symlink("config/dockerignore", repo.path().join(".dockerignore")).unwrap();
    let dockerfile = format!("FROM {}/busybox\nCOPY . /app/\n", world().registry());
    std::fs::write(repo.path().join("Dockerfile"), dockerfile).unwrap();
    repo
}

#[test]
fn a_symlinked_dockerignore_keeps_its_secrets_out_of_the_bucket_and_the_image() {
    let name = "linked-ignore";
    let namespace = world().unique_namespace(name).unwrap();
    let bucket = bucket(name);
    kaniko_service_account(&namespace, KANIKO_ROLE);
    let repo = repository_with_linked_dockerignore();
    let task = task();
    let outcome = real_s3_build(&task, name, repo.path(), &namespace, &bucket, KANIKO)
        .input("deleteContextAfterBuild", "false")
        .run();
    succeeded(&outcome);

    let key = outcome.output("contextKey").unwrap();
    let mut tar = Vec::new();
    flate2_decode(&object(&bucket, key), &mut tar);
    let names = tar_names(&tar);
    assert!(names.contains(&"context/app.txt".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("context/secrets") || n.ends_with(".log")), "{names:?}");
    assert!(!contains(&tar, b"do-not-ship"), "the ignored secret is not in the bucket");

    let files = image_files(name, "1", "app/");
    assert!(files.contains_key("app/app.txt"), "{:?}", files.keys());
    assert!(!files.keys().any(|f| f.starts_with("app/secrets") || f.ends_with(".log")), "{:?}", files.keys());
    assert!(outcome.log.iter().any(|l| l.contains("2 files (18 B) excluded")), "{}", outcome.log_text());
}

/// A .dockerignore that links out of the context would take its patterns
/// from a file the repository does not hold: refused, naming it, before
/// anything is sent.
#[test]
fn a_dockerignore_linked_out_of_the_context_is_refused_before_anything_is_sent() {
    let namespace = world().unique_namespace("ignore-outside").unwrap();
    let bucket = bucket("ignore-outside");
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("ignore"), "secrets/\n").unwrap();
    let repo = repository();
    std::fs::remove_file(repo.path().join(".dockerignore")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("ignore"), repo.path().join(".dockerignore")).unwrap();
    let task = task();
    let image = kaniko_image("ignore-outside", kaniko_success());
    let outcome = run(&task, repo.path(), &namespace, &image).input("bucket", &bucket).run();

    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    let message = &outcome.errors()[0].message;
    assert!(
        message.contains(".dockerignore is a symlink to ") && message.contains("outside the build context"),
        "{message}"
    );
    assert!(!outcome.log.iter().any(|l| l.starts_with("Started pod")), "no pod was started");
    assert_eq!(leftovers(&bucket), (vec![], 0), "nothing was uploaded");
}
