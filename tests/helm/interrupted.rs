//! helm interrupted from outside the step: killed by a signal mid-deploy
//! (the out-of-memory killer, a node going away), and the run after it,
//! which finds the release locked.

use std::path::Path;
use std::time::{Duration, Instant};

use azp_harness::StepResult;

use crate::{WithChartFromWorld as _, agent_temp, assert_no_private_dir, run, task, world};

/// The pid of a running `helm upgrade` whose command line holds `needle`.
fn helm_upgrade_pid(helm: &Path, needle: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let ours = args.first() == Some(&helm.as_os_str().as_encoded_bytes())
            && args.get(1) == Some(&&b"upgrade"[..])
            && args.contains(&needle.as_bytes());
        ours.then_some(pid)
    })
}

/// Whether helm has recorded revision 1 of `release` (its pending-install Secret).
fn release_recorded(namespace: &str, release: &str) -> bool {
    revision_recorded(namespace, release, 1)
}

/// Whether helm has recorded `revision` of `release` (its release Secret).
fn revision_recorded(namespace: &str, release: &str, revision: u32) -> bool {
    std::process::Command::new(&world().tools().kubectl)
        .args(["--kubeconfig", &world().kubeconfig_path().display().to_string(), "-n", namespace])
        .args(["get", "secret", &format!("sh.helm.release.v1.{release}.v{revision}")])
        .output()
        .is_ok_and(|out| out.status.success())
}

#[test]
fn helm_killed_by_a_signal_is_named_and_the_next_run_says_how_to_unlock() {
    let helm = world().tools().helm4.clone();
    let image = "never.ready/killed:1";
    world().set_behaviour(image, azp_kube_world::Behaviour::pull_error());
    let namespace = world().unique_namespace("killed").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let deploy = || {
        run(&task, home.path())
            .with_chart_from_world()
            .input("releaseName", "web")
            .input("namespace", &namespace)
            .input("overrideValues", &format!("hook=false\nimage={image}"))
            .input("timeout", "5m")
            .input("helmPath", &helm.display().to_string())
    };
    let running = deploy().spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = loop {
        // helm waits for a Deployment that never becomes ready: kill it once the release is recorded.
        match helm_upgrade_pid(&helm, &namespace) {
            Some(pid) if release_recorded(&namespace, "web") => break pid,
            _ if Instant::now() > deadline => panic!("helm never got going: {:?}", running.lines()),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    // SAFETY: a plain kill(2) of a process this test found by its command line.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let outcome = running.wait();
    assert_eq!(outcome.result, StepResult::Failed, "{}", outcome.log_text());
    assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.errors());
    let message = &outcome.errors()[0].message;
    assert!(message.contains("helm upgrade was killed by SIGKILL (signal 9)"), "{message}");
    assert!(message.contains("out-of-memory"), "{message}");
    assert!(message.contains(&format!("`helm uninstall web -n {namespace}`")), "{message}");
    assert_eq!(outcome.output("helmExitCode"), Some("137"));
    assert_eq!(outcome.output("releaseStatus"), Some("pending-install"));
    assert_no_private_dir(&agent_temp(home.path()));

    // The next run meets helm's lock, and is told the same way out.
    let again = deploy().input("timeout", "10s").run();
    assert_eq!(again.result, StepResult::Failed, "{}", again.log_text());
    let message = &again.errors()[0].message;
    assert!(message.contains("another operation (install/upgrade/rollback) is in progress"), "{message}");
    assert!(message.contains(&format!("`helm uninstall web -n {namespace}`")), "{message}");
    assert_eq!(again.output("helmExitCode"), Some("1"));
    assert!(helm_upgrade_pid(&helm, &namespace).is_none(), "no helm is left running");

    // Asked to, the task frees the never-deployed release itself and installs
    // (once the release has been pending longer than the step's timeout).
    std::thread::sleep(Duration::from_millis(1100));
    let unlocked = deploy()
        .input("overrideValues", "hook=false")
        .input("waitForExecution", "false")
        .input("unlockPendingRelease", "true")
        .input("timeout", "1s")
        .run();
    assert_eq!(unlocked.result, StepResult::Succeeded, "{:?}\n{}", unlocked.errors(), unlocked.log_text());
    assert!(unlocked.log_text().contains("was never deployed"), "{}", unlocked.log_text());
    assert_eq!((unlocked.output("releaseRevision"), unlocked.output("releaseStatus")), (Some("1"), Some("deployed")));
}

/// A killed upgrade leaves revision 2 `pending-upgrade`; with
/// `unlockPendingRelease` the next run rolls back to revision 1 (revision 3)
/// and upgrades (revision 4).
#[test]
fn a_release_left_pending_upgrade_is_rolled_back_and_upgraded_when_asked() {
    let helm = world().tools().helm3.clone();
    let image = "never.ready/killed-upgrade:1";
    world().set_behaviour(image, azp_kube_world::Behaviour::pull_error());
    let namespace = world().unique_namespace("pending-upgrade").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let deploy = |values: &str| {
        run(&task, home.path())
            .with_chart_from_world()
            .input("releaseName", "web")
            .input("namespace", &namespace)
            .input("overrideValues", values)
            .input("timeout", "5m")
            .input("helmPath", &helm.display().to_string())
    };
    let first = deploy("hook=false").input("waitForExecution", "false").run();
    assert_eq!(first.result, StepResult::Succeeded, "{}", first.log_text());
    let running = deploy(&format!("hook=false\nimage={image}")).spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = loop {
        match helm_upgrade_pid(&helm, &namespace) {
            Some(pid) if revision_recorded(&namespace, "web", 2) => break pid,
            _ if Instant::now() > deadline => panic!("helm never got going: {:?}", running.lines()),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    // SAFETY: a plain kill(2) of a process this test found by its command line.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let killed = running.wait();
    assert_eq!(killed.output("releaseStatus"), Some("pending-upgrade"), "{}", killed.log_text());

    // A revision pending for less than the step's timeout may be a live run's
    // (another pipeline's on a shared pool): it is not rolled back under it.
    let too_soon = deploy("hook=false").input("waitForExecution", "false").input("unlockPendingRelease", "true").run();
    assert_eq!(too_soon.result, StepResult::Failed, "{}", too_soon.log_text());
    let message = &too_soon.errors()[0].message;
    assert!(message.contains("may still be working on it") && message.contains("300 s"), "{message}");
    std::thread::sleep(Duration::from_millis(1100));
    let unlocked = deploy("hook=false\nmessage=after")
        .input("waitForExecution", "false")
        .input("unlockPendingRelease", "true")
        .input("timeout", "1s")
        .run();
    assert_eq!(unlocked.result, StepResult::Succeeded, "{:?}\n{}", unlocked.errors(), unlocked.log_text());
    assert!(unlocked.log_text().contains("rolling back to revision 1"), "{}", unlocked.log_text());
    assert_eq!((unlocked.output("releaseRevision"), unlocked.output("releaseStatus")), (Some("4"), Some("deployed")));
}
