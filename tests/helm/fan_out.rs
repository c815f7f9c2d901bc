//! `targets`: one step, three EKS clusters in three accounts, each its own API
//! server with its own EKS entry in moto. The third cluster has no access entry
//! for its role, so its deploy fails at the preflight, as it would in AWS.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use azp_harness::{Outcome, StagedTask, StepResult, TaskRun};
use azp_kube_world::clusters::{ClusterSpec, ExtraCluster};

use super::*;

/// (target name, cluster, region, account); the last one refuses its role.
const CLUSTERS: [(&str, &str, &str, &str); 3] = [
    ("dev", "fan-dev", "eu-west-1", "333333333333"),
    ("prod_us", "fan-prod", "us-east-2", "444444444444"),
    ("locked", "fan-locked", "eu-central-1", "555555555555"),
];

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/deployer")
}

/// The three clusters, started once for the test binary.
fn clusters() -> &'static [Arc<ExtraCluster>] {
    static CLUSTERS_UP: OnceLock<Vec<Arc<ExtraCluster>>> = OnceLock::new();
    CLUSTERS_UP.get_or_init(|| {
        CLUSTERS
            .iter()
            .map(|(_, name, region, account)| {
                let spec = ClusterSpec {
                    name: name.to_string(),
                    region: region.to_string(),
                    account_role: Some(role(account)),
                };
                let cluster = world().add_cluster(spec).expect("start a cluster");
                if *account != "555555555555" {
                    cluster.add_access_entry(&role(account), "deployer", &["system:masters"]);
                }
                // The chart's test pod, as `helm test` runs it.
                let probe = azp_kube_world::Behaviour::exit(&["probe reached web:80"], 0, Duration::from_millis(100));
                cluster.cluster().behaviours.set("registry.world/probe:1", probe);
                cluster
            })
            .collect()
    })
}

/// The `targets` YAML for these clusters, in this order, with their waves.
fn targets(order: &[(usize, u32)]) -> String {
    order
        .iter()
        .map(|(i, wave)| {
            let (name, cluster, region, account) = CLUSTERS[*i];
            format!(
                "- name: {name}\n  clusterName: {cluster}\n  region: {region}\n  assumeRoleArn: {}\n  wave: {wave}\n  \
                 overrideValues: [message=from-{name}]\n",
                role(account)
            )
        })
        .collect()
}

fn fan_out_run(home: &Path, namespace: &str, helm: &Path, targets: &str) -> TaskRun {
    static TASK: OnceLock<StagedTask> = OnceLock::new();
    clusters();
    run_of(TASK.get_or_init(task), home, namespace, helm, targets)
}

fn run_of(task: &StagedTask, home: &Path, namespace: &str, helm: &Path, targets: &str) -> TaskRun {
    run(task, home)
        .input("targets", targets)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .input("namespace", namespace)
        .input("overrideValuesString", "hook=false")
        .input("waitForExecution", "false")
        .input("helmPath", &helm.display().to_string())
        .timeout(Duration::from_secs(240))
}

/// The `message` of the chart's ConfigMap in a cluster, if the release is there.
fn message_in(cluster: &ExtraCluster, namespace: &str) -> Option<String> {
    let out = Command::new(&world().tools().kubectl)
        .args(["--kubeconfig", &cluster.kubeconfig_path().display().to_string(), "-n", namespace])
        .args(["get", "configmap", "web-config", "-o", "jsonpath={.data.message}"])
        .output()
        .unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The lines of the group whose title starts with `title`.
fn group<'a>(outcome: &'a Outcome, title: &str) -> Vec<&'a str> {
    let log = &outcome.log;
    let start = log.iter().position(|l| l.starts_with(&format!("##[group]{title}"))).unwrap_or_else(|| {
        panic!("no group {title}:\n{}", outcome.log_text());
    });
    log[start..].iter().take_while(|l| *l != "##[endgroup]").map(String::as_str).collect()
}

fn results(outcome: &Outcome) -> Vec<serde_json::Value> {
    let json = outcome.output("results").expect("the results output");
    serde_json::from_str::<serde_json::Value>(json).unwrap().as_array().unwrap().clone()
}

/// Three targets at once, the locked one failing, the others deployed: with
/// failFast false and partial success allowed, SucceededWithIssues.
fn continues_past_a_failed_target(helm: &Path) {
    let namespace = world().unique_namespace("fan").unwrap();
    let home = tempfile::tempdir().unwrap();
    let outcome = fan_out_run(home.path(), &namespace, helm, &targets(&[(0, 1), (1, 1), (2, 1)]))
        .input("failFast", "false")
        .input("allowPartialSuccess", "true")
        .run();
    assert_eq!(outcome.result, StepResult::SucceededWithIssues, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert_eq!(outcome.result_message.as_deref(), Some("1 of 3 targets failed: locked"));

    // Deployed where allowed, each with its own override; not where refused.
    let up = clusters();
    assert_eq!(message_in(&up[0], &namespace).as_deref(), Some("from-dev"));
    assert_eq!(message_in(&up[1], &namespace).as_deref(), Some("from-prod_us"));
    assert_eq!(message_in(&up[2], &namespace), None);

    // One error, naming the target, its cluster and why.
    let errors = outcome.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.starts_with("target locked (cluster fan-locked in eu-central-1): ")
            && errors[0].message.contains("is not allowed into cluster fan-locked (eu-central-1)"),
        "{}",
        errors[0].message
    );

    // All three started before any finished: they ran at once.
    let first_group = outcome.log.iter().position(|l| l.starts_with("##[group]Target ")).unwrap();
    let started = outcome.log[..first_group].iter().filter(|l| l.starts_with("Target ")).count();
    assert_eq!(started, 3, "{}", outcome.log_text());
    // Each target's log is one group, with nothing of the other targets in it.
    for (name, cluster, region, _) in CLUSTERS {
        let lines = group(&outcome, &format!("Target {name}: cluster {cluster} in {region}, "));
        assert!(lines.iter().any(|l| l.contains(&format!("Cluster: {cluster} ("))), "{lines:#?}");
        let others: Vec<_> = CLUSTERS.iter().filter(|c| c.1 != cluster).map(|c| c.1).collect();
        assert!(!lines.iter().any(|l| others.iter().any(|o| l.contains(o))), "{name}: {lines:#?}");
    }

    // Outputs per target, and the JSON of all.
    assert_eq!(outcome.output("dev_releaseRevision"), Some("1"));
    assert_eq!(outcome.output("dev_releaseStatus"), Some("deployed"));
    assert_eq!(outcome.output("prod_us_releaseNamespace"), Some(namespace.as_str()));
    assert_eq!(outcome.output("locked_releaseStatus"), None);
    assert_eq!(outcome.output("releaseRevision"), None, "no single revision for three clusters");
    let results = results(&outcome);
    let by_name = |n: &str| results.iter().find(|r| r["name"] == n).unwrap().clone();
    let dev = by_name("dev");
    assert_eq!(
        (&dev["account"], &dev["region"], &dev["revision"]),
        (&"333333333333".into(), &"eu-west-1".into(), &1.into())
    );
    assert_eq!((&dev["result"], &dev["status"]), (&"succeeded".into(), &"deployed".into()));
    assert!(dev["durationSeconds"].as_f64().unwrap() > 0.0);
    let locked = by_name("locked");
    assert_eq!(locked["result"], "failed");
    assert!(locked["error"].as_str().unwrap().contains("not allowed into cluster fan-locked"), "{locked}");

    // The summary: one row per target.
    let summary = outcome.summaries.iter().find_map(|(_, text)| text.clone()).expect("a summary");
    assert!(summary.contains("| Target | Cluster | Account | Region | Namespace | Revision | Status | Duration |"));
    assert!(
        summary.contains(&format!("| dev | fan-dev | 333333333333 | eu-west-1 | {namespace} | 1 | deployed |")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("| prod_us | fan-prod | 444444444444 | us-east-2 | {namespace} | 1 | deployed |")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("| locked | fan-locked | 555555555555 | eu-central-1 | {namespace} |  | failed |")),
        "{summary}"
    );
    assert_no_secret_in_log(&outcome);
    assert_no_private_dir(&agent_temp(home.path()));
}

#[test]
fn fan_out_continues_past_a_failed_target_with_helm4() {
    continues_past_a_failed_target(&world().tools().helm4);
}

#[test]
fn fan_out_continues_past_a_failed_target_with_helm3() {
    continues_past_a_failed_target(&world().tools().helm3);
}

/// One at a time, the locked cluster first: with failFast (the default) the
/// other two never start, and the step fails.
#[test]
fn fail_fast_starts_no_target_after_a_failure() {
    let namespace = world().unique_namespace("fast").unwrap();
    let home = tempfile::tempdir().unwrap();
    let outcome = fan_out_run(home.path(), &namespace, &world().tools().helm3, &targets(&[(2, 1), (0, 1), (1, 1)]))
        .input("maxParallel", "1")
        .input("allowPartialSuccess", "true")
        .run();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert_eq!(outcome.result_message.as_deref(), Some("1 of 3 targets failed: locked; 2 not started"));
    assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.errors());
    for cluster in &clusters()[..2] {
        assert_eq!(message_in(cluster, &namespace), None, "{} was not deployed", cluster.name());
    }
    let results = results(&outcome);
    let not_started: Vec<_> = results.iter().filter(|r| r["result"] == "not started").map(|r| &r["name"]).collect();
    assert_eq!(not_started, ["dev", "prod_us"]);
    assert_eq!(results[1]["error"], "another target failed (failFast)");
    assert_no_private_dir(&agent_temp(home.path()));
}

/// Waves: dev alone first, then the two others. When the first wave fails,
/// the second does not start, whatever failFast says.
#[test]
fn waves_go_one_after_another_and_stop_at_a_failed_wave() {
    let helm = &world().tools().helm4;
    let namespace = world().unique_namespace("waves").unwrap();
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let outcome =
        fan_out_run(home.path(), &namespace, helm, &targets(&[(0, 1), (1, 2)])).input("failFast", "false").run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let log = outcome.log_text();
    let dev_done = log.find("##[group]Target dev:").unwrap();
    let prod_started = log.find("Target prod_us started").unwrap();
    assert!(dev_done < prod_started, "wave 2 starts after wave 1 ended:\n{log}");
    eprintln!("two waves of one target: {:?}", started.elapsed());

    let outcome = fan_out_run(home.path(), &namespace, helm, &targets(&[(2, 1), (0, 2), (1, 2)]))
        .input("failFast", "false")
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    let results = results(&outcome);
    assert!(results[1..].iter().all(|r| r["error"] == "a target of an earlier wave failed"), "{results:#?}");
    // The first run's releases are untouched (still revision 1).
    assert_eq!(message_in(&clusters()[0], &namespace).as_deref(), Some("from-dev"));
}

/// Every verb per target (helm 4): a diff shows each target's changes (and
/// sets `<name>_hasChanges`, and `hasChanges` for any), then upgrade, test,
/// rollback and uninstall run on both clusters.
#[test]
fn every_verb_runs_per_target() {
    let helm = &world().tools().helm4;
    let namespace = world().unique_namespace("fanverbs").unwrap();
    let home = tempfile::tempdir().unwrap();
    let two = targets(&[(0, 1), (1, 1)]);
    let step = |targets: &str, command: &str| {
        let outcome = fan_out_run(home.path(), &namespace, helm, targets).input("command", command).run();
        assert_eq!(outcome.result, StepResult::Succeeded, "{command}: {:?}\n{}", outcome.errors(), outcome.log_text());
        outcome
    };
    step(&two, "upgrade");

    // prod_us gets a new message; dev stays as deployed.
    let changed = two.replacen("message=from-prod_us", "message=changed", 1);
    let diff = step(&changed, "diff");
    assert_eq!(diff.output("dev_hasChanges"), Some("false"));
    assert_eq!(diff.output("prod_us_hasChanges"), Some("true"));
    assert_eq!(diff.output("hasChanges"), Some("true"));
    let prod = group(&diff, "Target prod_us:");
    assert!(prod.contains(&"+  message: changed"), "{prod:#?}");
    assert_eq!(message_in(&clusters()[1], &namespace).as_deref(), Some("from-prod_us"), "a diff changes nothing");
    let summaries: Vec<_> = diff.summaries.iter().filter_map(|(_, t)| t.as_deref()).collect();
    assert!(summaries.iter().any(|s| s.starts_with("### Helm diff of") && s.contains("fan-prod")), "{summaries:#?}");

    let upgraded = step(&changed, "upgrade");
    assert_eq!(upgraded.output("prod_us_releaseRevision"), Some("2"));
    assert_eq!(message_in(&clusters()[1], &namespace).as_deref(), Some("changed"));
    let tested = step(&two, "test");
    for name in ["dev", "prod_us"] {
        let lines = group(&tested, &format!("Target {name}:"));
        assert!(lines.iter().any(|l| l.contains("probe reached web:80")), "{name}: {lines:#?}");
    }
    let back = step(&two, "rollback");
    assert_eq!(back.output("prod_us_releaseRevision"), Some("3"));
    assert_eq!(message_in(&clusters()[1], &namespace).as_deref(), Some("from-prod_us"), "rolled back");

    let removed = step(&two, "uninstall");
    assert_eq!(removed.output("dev_releaseStatus"), Some("uninstalled"));
    for cluster in &clusters()[..2] {
        assert_eq!(message_in(cluster, &namespace), None, "{}", cluster.name());
    }
}

/// The fan-out benchmark (bench/fan_out.sh runs it): one target, then five
/// targets in five accounts at once, side by side, rounds alternating, in two
/// scenarios: a release that is ready at once (the run is all CPU: helm,
/// azp-kube and five API servers on this machine's cores), and one whose
/// post-install job runs for `MIGRATION` (as a database migration does, so
/// the run waits on the clusters as real deploys do). Wall time medians,
/// their ratio, CPU and the peak memory of an azp-kube process are printed for
/// the README; nothing is asserted about them.
#[test]
#[ignore = "a benchmark: bash bench/fan_out.sh"]
fn fan_out_benchmark() {
    const MIGRATION: Duration = Duration::from_secs(5);
    let rounds: usize = std::env::var("FAN_OUT_BENCH_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(5);
    let helm = world().tools().helm4.clone();
    let five: Vec<(String, String)> = (1..=5)
        .map(|n| {
            let (cluster, account) = (format!("bench-{n}"), format!("60000000000{n}"));
            let spec =
                ClusterSpec { name: cluster.clone(), region: "eu-west-1".into(), account_role: Some(role(&account)) };
            let cluster_up = world().add_cluster(spec).unwrap();
            cluster_up.add_access_entry(&role(&account), "deployer", &["system:masters"]);
            let migration = azp_kube_world::Behaviour::exit(&["migrating"], 0, MIGRATION);
            cluster_up.cluster().behaviours.set("registry.world/migrate:1", migration);
            (cluster, account)
        })
        .collect();
    let yaml = |count: usize| -> String {
        five[..count]
            .iter()
            .enumerate()
            .map(|(i, (cluster, account))| {
                format!(
                    "- name: t{i}\n  clusterName: {cluster}\n  region: eu-west-1\n  assumeRoleArn: {}\n",
                    role(account)
                )
            })
            .collect()
    };
    // The binary users get (bench/fan_out.sh finds it), else the test build.
    let release = std::env::var_os("AZP_KUBE_BENCH_BINARY").map(std::path::PathBuf::from);
    let measured: &Path = release.as_deref().unwrap_or(binary());
    println!("  binary: {}", measured.display());
    let task = StagedTask::new("MulticlusterHelmV1", measured);
    let home = tempfile::tempdir().unwrap();
    let timed = |count: usize, migrate: bool| -> (Duration, u64) {
        let namespace = world().unique_namespace("bench").unwrap();
        let memory = azp_harness::PeakRss::watch("azp-kube");
        let (cpu_before, world_before, started) = (cpu(libc::RUSAGE_CHILDREN), cpu(libc::RUSAGE_SELF), Instant::now());
        let outcome = run_of(&task, home.path(), &namespace, &helm, &yaml(count))
            .input("maxParallel", "5")
            .input("waitForExecution", "true")
            // --set, not --set-string: the string "false" would be true.
            .input("overrideValuesString", "")
            .input("overrideValues", &format!("hook={migrate}"))
            .run();
        let wall = started.elapsed();
        let peak = memory.stop();
        if std::env::var_os("BENCH_LOG").is_some() {
            eprintln!("{}", outcome.log_text());
        }
        assert_eq!(outcome.result, StepResult::Succeeded, "{}", outcome.log_text());
        let (step_cpu, world_cpu) = (cpu(libc::RUSAGE_CHILDREN) - cpu_before, cpu(libc::RUSAGE_SELF) - world_before);
        println!(
            "  {count} target(s){}: {:.2} s wall, {:.2} s CPU in the step's processes, {:.2} s in the world's API servers",
            if migrate { " with the migration" } else { "" },
            wall.as_secs_f64(),
            step_cpu.as_secs_f64(),
            world_cpu.as_secs_f64()
        );
        (wall, peak)
    };
    timed(1, false); // warm-up: helm's first start, the clusters' first requests
    for migrate in [false, true] {
        let (mut one, mut many, mut peak_one, mut peak_many) = (Vec::new(), Vec::new(), 0, 0);
        for _ in 0..rounds {
            let (wall, peak) = timed(1, migrate);
            one.push(wall);
            peak_one = peak_one.max(peak);
            let (wall, peak) = timed(5, migrate);
            many.push(wall);
            peak_many = peak_many.max(peak);
        }
        let median = |samples: &mut Vec<Duration>| {
            samples.sort();
            samples[samples.len() / 2]
        };
        let (one, many) = (median(&mut one), median(&mut many));
        let scenario =
            if migrate { format!("a {} s post-install job", MIGRATION.as_secs()) } else { "ready at once".into() };
        println!(
            "fan-out benchmark ({rounds} rounds, helm 4, wait on, {scenario}): one target {:.2} s, five targets in \
             five accounts {:.2} s ({:.2}x); peak RSS of the azp-kube process {:.1} MiB (one target) / {:.1} MiB (five)",
            one.as_secs_f64(),
            many.as_secs_f64(),
            many.as_secs_f64() / one.as_secs_f64(),
            peak_one as f64 / 1024.0,
            peak_many as f64 / 1024.0
        );
    }
}

/// CPU time (user and system) of this process (`RUSAGE_SELF`: the world's API
/// servers, which run in it) or of its waited-for children and their
/// descendants (`RUSAGE_CHILDREN`: the step's node, azp-kube, helm and exec
/// processes).
fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let time = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A bad `targets` list fails the step before any call, naming the line.
#[test]
fn a_duplicate_target_is_refused_before_anything_runs() {
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let duplicate = format!("{}{}", targets(&[(0, 1)]), targets(&[(0, 2)]).replace("name: dev", "name: dev2"));
    let outcome = TaskRun::new(task.path())
        .env("HOME", &home.path().display().to_string())
        // Nothing listens here: a call would fail with another error.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .input("targets", &duplicate)
        .input("chartType", "FilePath")
        .input("chartPath", &chart().display().to_string())
        .input("releaseName", "web")
        .run();
    assert_eq!(outcome.result, StepResult::Failed);
    assert_eq!(
        outcome.errors()[0].message,
        "input targets: line 7: deploys release web to the same cluster, account and namespace as the target on line 1"
    );
    assert!(!outcome.log_text().contains("Target dev"), "no target started: {}", outcome.log_text());
}
