//! Load: twenty KanikoBuild runs at once against one simulated cluster and
//! one registry, each a real build. All succeed with the registry's digest,
//! pod names are unique, nothing is left behind. The figures (wall time,
//! peak memory of each azp-kube process) are printed for the README.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azp_harness::StepResult;

use crate::support::*;

const BUILDS: usize = 20;

#[test]
fn twenty_builds_at_once() {
    let namespace = world().unique_namespace("load").unwrap();
    let registry = world().registry();
    let repo = repository();
    std::fs::write(
        repo.path().join("Dockerfile"),
        // A LABEL, not a RUN, makes each image differ: twenty RUN steps at once
        // make buildah's runtime fail now and then ("sealing memfd copy: Device
        // or resource busy"), a flake of the stand-in, not of the task.
        format!("FROM {registry}/busybox\nARG N\nCOPY app.txt /app.txt\nLABEL build.n=$N\n"),
    )
    .unwrap();
    let task = task();
    let memory = azp_harness::PeakRss::watch("azp-kube");
    let started = Instant::now();
    let runs: Vec<_> = (0..BUILDS)
        .map(|n| {
            run(&task, repo.path(), &namespace, "ghcr.io/osscontainertools/kaniko:v1.28.3")
                .timeout(Duration::from_secs(600))
                .input("contextTransport", "Stream")
                .input("cache", "false")
                .input("buildArgs", &format!("N={n}"))
                .input("destinations", &format!("{registry}/load-{n}:1"))
                .spawn()
        })
        .collect();
    let outcomes: Vec<_> = runs.into_iter().map(|r| r.wait()).collect();
    let wall = started.elapsed();
    let peak_kib = memory.stop();

    let mut pods = BTreeSet::new();
    for (n, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.result, StepResult::Succeeded, "build {n}: {:?}", outcome.errors());
        let digest = outcome.output("imageDigest").unwrap();
        assert_eq!(world().registry_digest(&format!("load-{n}"), "1").as_deref(), Some(digest), "build {n}");
        let pod = outcome.log.iter().find(|l| l.starts_with("Started pod")).cloned().unwrap();
        assert!(pods.insert(pod), "pod names are unique");
    }
    assert!(pods_in(&namespace).is_empty(), "no pod remains");
    println!(
        "load: {BUILDS} real builds at once in {:.1} s wall; peak RSS of one azp-kube process {:.1} MiB",
        wall.as_secs_f64(),
        peak_kib as f64 / 1024.0
    );
}

/// A container that records when it exits, then reports the digest.
struct TimedExit(Arc<std::sync::Mutex<Option<Instant>>>);

impl azp_kube_world::ContainerRuntime for TimedExit {
    fn run(&self, run: azp_kube_world::ContainerRun) -> azp_kube_world::pods::RunFuture {
        let exited = self.0.clone();
        Box::pin(async move {
            run.log.write(b"INFO building\n");
            tokio::time::sleep(Duration::from_millis(500)).await;
            *exited.lock().unwrap() = Some(Instant::now());
            azp_kube_world::ContainerExit { exit_code: 0, reason: None, message: Some(DIGEST.into()) }
        })
    }
}

/// One build in a world of its own: how many API requests it makes (one
/// watch, one log stream, no polling), and how long from the container's
/// exit to the task's exit.
#[test]
fn one_build_s_api_requests_and_exit_latency() {
    let world = azp_kube_world::World::start().unwrap();
    let exited = Arc::new(std::sync::Mutex::new(None));
    let image = "kaniko.test/timed:1";
    world.set_behaviour(image, azp_kube_world::Behaviour::runtime(Arc::new(TimedExit(exited.clone()))));
    world.create_namespace("timed").unwrap();
    let repo = repository();
    let task = task();
    let before = world.faults().requests();
    let mut run = azp_harness::TaskRun::new(task.path())
        .sources(repo.path())
        .timeout(Duration::from_secs(120))
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &world.kubeconfig_path().display().to_string())
        .input("namespace", "timed")
        .input("kanikoImage", image)
        .input("contextTransport", "Stream")
        .input("destinations", "registry.local/app:1");
    run = run.envs(world.env().into_iter().filter(|(k, _)| k != "KUBECONFIG"));
    let outcome = run.run();
    let ended = Instant::now();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}", outcome.errors());
    let requests = world.faults().requests() - before;
    let latency = ended - exited.lock().unwrap().expect("the container ran");
    println!(
        "one build: {requests} API requests; {:.0} ms from the container's exit to the task's exit",
        latency.as_secs_f64() * 1000.0
    );
    // One watch and one log stream, not a loop of GETs: a polling client
    // would make dozens of requests in the half second the container runs.
    assert!(requests <= 20, "{requests} API requests for one build");
}
