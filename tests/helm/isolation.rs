//! One step's helm stays the step's (issue #15): override values never
//! reach the log, the agent's `HELM_*` variables cannot move helm's
//! configuration (and a repository password) out of the private directory,
//! and a step killed before its cleanup has its private directory removed by
//! the next run, while a step still running keeps its own.

use super::*;

/// The `azp-kube-*` folders (private directories) in the agent's temp folder.
fn private_dirs(agent_temp: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(agent_temp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("azp-kube-"))
        .collect();
    dirs.sort();
    dirs
}

/// An override whose value has a comma (strvals escapes it: `p@ss\,w0rd`)
/// and is not registered as a secret: no form of the value is in the log,
/// in the inputs group, the command line or an error, whether the deploy
/// succeeds or fails.
#[test]
fn override_values_are_shown_as_keys_only() {
    let namespace = world().unique_namespace("keys-only").unwrap();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let deploy = |extra: &[(&str, &str)]| {
        let mut run = run(&task, home.path())
            .with_chart_from_world()
            .input("releaseName", "web")
            .input("namespace", &namespace)
            .input("overrideValues", "hook=false\nmessage=p@ss,w0rd")
            .input("arguments", "--set-string extra=t0k3n,more=v@lue --set-json 'cfg={\"k\":\"j50n,v\"}'")
            .input("waitForExecution", "false")
            .input("helmPath", &world().tools().helm4.display().to_string());
        for (name, value) in extra {
            run = run.input(name, value);
        }
        run.run()
    };
    let leaks = |outcome: &azp_harness::Outcome| {
        let text = format!("{}\n{:?}\n{:?}", outcome.log_text(), outcome.errors(), outcome.result_message);
        ["p@ss", "w0rd", "t0k3n", "v@lue", "j50n"].into_iter().filter(|v| text.contains(v)).collect::<Vec<_>>()
    };
    let good = deploy(&[]);
    assert_eq!(good.result, StepResult::Succeeded, "{:?}\n{}", good.errors(), good.log_text());
    assert_eq!(config_map(&namespace, "web-config")["data"]["message"], "p@ss,w0rd", "helm got the value");
    assert!(good.log_text().contains("--set message=…"), "{}", good.log_text());
    assert!(good.log_text().contains("--set-string extra=…,more=…"), "{}", good.log_text());
    assert_eq!(leaks(&good), Vec::<&str>::new(), "{}", good.log_text());
    // A failing upgrade: the error, the release's history and status.
    world().set_behaviour("never.ready/keys:1", azp_kube_world::Behaviour::pull_error());
    let never_ready = "hook=false\nmessage=p@ss,w0rd\nimage=never.ready/keys:1";
    let bad = deploy(&[("timeout", "2s"), ("waitForExecution", "true"), ("overrideValues", never_ready)]);
    assert_eq!(bad.result, StepResult::Failed, "{}", bad.log_text());
    assert_eq!(leaks(&bad), Vec::<&str>::new(), "{:?}\n{}", bad.errors(), bad.log_text());
}

/// The agent's environment names a shared repository file, registry file,
/// caches and plugins folder, and asks for debug output: helm writes the
/// repository (and its password) into the step's private directory only,
/// and prints no values.
#[test]
fn helm_variables_of_the_agent_do_not_move_helm_out_of_the_step() {
    const PASSWORD: &str = "shared-pa55word-9c1e";
    let repository = ChartRepository::start();
    let namespace = world().unique_namespace("helm-env").unwrap();
    let shared = tempfile::tempdir().unwrap();
    let at = |name: &str| shared.path().join(name).display().to_string();
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let outcome = repository
        .inputs(run(&task, home.path()), PASSWORD)
        .env("HELM_REPOSITORY_CONFIG", &at("repositories.yaml"))
        .env("HELM_REGISTRY_CONFIG", &at("registry.json"))
        .env("HELM_REPOSITORY_CACHE", &at("repository-cache"))
        .env("HELM_CONTENT_CACHE", &at("content-cache"))
        .env("HELM_CACHE_HOME", &at("cache"))
        .env("HELM_CONFIG_HOME", &at("config"))
        .env("HELM_DATA_HOME", &at("data"))
        .env("HELM_PLUGINS", &at("plugins"))
        .env("HELM_DEBUG", "true")
        .input("releaseName", "web")
        .input("namespace", &namespace)
        .input("overrideValues", "hook=false\nmessage=not-for-the-log")
        .input("waitForExecution", "false")
        .input("helmPath", &world().tools().helm4.display().to_string())
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    let written: Vec<_> = walk(shared.path());
    assert!(written.is_empty(), "helm wrote outside the step: {written:?}");
    let log = outcome.log_text();
    assert!(!log.contains("USER-SUPPLIED VALUES") && !log.contains("not-for-the-log"), "{log}");
    assert_no_private_dir(&agent_temp(home.path()));
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 1, "nothing in HOME but the agent's temp");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

/// A fake helm that reports its pid and its parent's (the task's), then
/// waits; `version` answers at once.
fn waiting_helm(dir: &Path, pids: &Path) -> PathBuf {
    let helm = dir.join("helm");
    write_script(
        &helm,
        &format!(
            "#!/bin/sh\ncase \"$1\" in version) echo v4.1.4; exit 0;; esac\n\
             sleep 120 & echo \"$PPID $$ $!\" >> '{}'\necho fake-helm-ready\nwait\n",
            pids.display()
        ),
    );
    helm
}

fn kill(pid: &str, signal: i32) {
    // SAFETY: kill(2) on processes this test started (through the task).
    unsafe { libc::kill(pid.parse().unwrap(), signal) };
}

/// A step SIGKILLed during helm leaves its private directory (kubeconfig,
/// cached credentials); the next run of the task on that agent removes it,
/// and a run beside a step that is still running leaves that one's be.
#[test]
fn the_next_run_removes_what_a_killed_step_left_but_not_a_running_steps() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let helm = waiting_helm(dir.path(), &pids);
    let task = task();
    let home = tempfile::tempdir().unwrap();
    let agent_temp = agent_temp(home.path());
    let waiting = |release: &str| {
        let mut running = run(&task, home.path())
            .with_chart_from_world()
            .input("releaseName", release)
            .input("helmPath", &helm.display().to_string())
            .spawn();
        assert!(running.wait_for_line(|l| l.contains("fake-helm-ready"), Duration::from_secs(60)));
        running
    };
    // Step 1 is killed with SIGKILL, as the out-of-memory killer does.
    let killed = waiting("killed");
    let line = std::fs::read_to_string(&pids).unwrap();
    let [task_pid, helm_pid, sleep_pid] = line.split_whitespace().collect::<Vec<_>>()[..] else { panic!("{line}") };
    kill(task_pid, libc::SIGKILL);
    kill(helm_pid, libc::SIGKILL);
    kill(sleep_pid, libc::SIGKILL);
    killed.wait();
    let left = private_dirs(&agent_temp);
    assert_eq!(left.len(), 1, "the killed step left its private directory: {left:?}");
    assert!(left[0].join("kubeconfig").exists());
    // Step 2, the next run on this agent, removes it; then waits in helm.
    let running = waiting("running");
    let removed = "Removed 1 private folder(s) that killed steps left";
    assert!(running.lines().iter().any(|l| l.contains(removed)), "{:?}", running.lines());
    assert!(!left[0].exists(), "the killed step's directory is gone");
    let running_dir = private_dirs(&agent_temp);
    assert_eq!(running_dir.len(), 1);
    // Step 3 runs while step 2 is still running, and leaves its directory be.
    let namespace = world().unique_namespace("stale").unwrap();
    let third = run(&task, home.path())
        .with_chart_from_world()
        .input("releaseName", "web")
        .input("namespace", &namespace)
        .input("overrideValues", "hook=false")
        .input("waitForExecution", "false")
        .input("helmPath", &world().tools().helm4.display().to_string())
        .run();
    assert_eq!(third.result, StepResult::Succeeded, "{:?}\n{}", third.errors(), third.log_text());
    assert!(!third.log_text().contains("Removed"), "{}", third.log_text());
    assert!(running_dir[0].join("kubeconfig").exists(), "the running step's directory is untouched");
    running.signal(libc::SIGINT);
    let stopped = running.wait();
    let line = std::fs::read_to_string(&pids).unwrap();
    line.lines().nth(1).and_then(|l| l.split_whitespace().nth(2)).into_iter().for_each(|p| kill(p, libc::SIGKILL));
    assert_eq!(stopped.result, StepResult::Failed);
    assert_no_private_dir(&agent_temp);
}
