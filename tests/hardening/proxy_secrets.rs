//! The agent's proxy password: a deploy through a proxy that requires it,
//! with System.Debug on. The password is registered with the agent before
//! anything can print it, and appears in no log line, no error, no process's
//! argument list, no file left in the agent's temp folder, and in the step's
//! private folder only in the exec entry's handover. Of every environment of
//! helm and the exec entry, it is in exactly `HTTPS_PROXY` and `HTTP_PROXY`
//! (percent-encoded in the proxy URL, the only place Go's proxy support
//! takes credentials from); no `SECRET_`/`AGENT_PROXY*` variable reaches
//! them. helm's `NO_PROXY` holds the bypass entries it can say, and the
//! others are named in a warning.

use std::time::Duration;

use azp_harness::{StepResult, TaskRun};
use azp_kube_world::clusters::ClusterSpec;
use azp_kube_world::forward_proxy::proxied_url;
use azp_kube_world::{Behaviour, World};

use crate::secrets::{Watch, files_under, private_folder_copier};
use crate::support::{deploys_the_test_chart, scanned_run, task};

const USER: &str = "build-agent";
/// With characters a URL must escape, so that the proxy URL's encoding is checked too.
const PASSWORD: &str = "pa55:w@rd/proxy-secret";
const ENCODED: &str = "pa55%3Aw%40rd%2Fproxy-secret";
const DEPLOYER: &str = "arn:aws:iam::123456789012:role/proxy-secrets-deployer";

#[test]
fn the_proxy_password_reaches_only_helms_proxy_variables() {
    let world = World::start().unwrap();
    let spec = ClusterSpec { name: "proxy-secrets".into(), region: world.region().into(), account_role: None };
    let cluster = world.add_cluster_behind_proxy(spec, "cluster").unwrap();
    cluster.add_access_entry(DEPLOYER, "deployer", &["system:masters"]);
    let aws_url = proxied_url(&world.aws_https_endpoint().unwrap(), "moto");
    cluster.trust_sts_host(aws_url.trim_start_matches("https://"));
    let proxy = world.forward_proxy(Some((USER, PASSWORD))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let helm = &world.tools().helm4;
    let (wrapper, private_files) = private_folder_copier(dir.path(), helm);
    let agent_temp = dir.path().join("agent-temp");
    let watch = Watch::start(helm);
    let task = task("MulticlusterHelmV1");
    let mut run = scanned_run(&task, dir.path(), &agent_temp).env("SYSTEM_DEBUG", "true");
    for (name, value) in world.env().into_iter().filter(|(name, _)| name.starts_with("AWS_")) {
        run = run.env(&name, &value);
    }
    let run = run
        .env("AWS_ENDPOINT_URL", &aws_url)
        .env("AWS_ENDPOINT_URL_STS", &aws_url)
        .env("SSL_CERT_FILE", &world.ca_file().display().to_string())
        // One entry NO_PROXY can say, one it cannot.
        .agent_proxy(&proxy.url(), Some((USER, PASSWORD)), &["^registry\\.corp$", "git|svn"])
        .input("assumeRoleArn", DEPLOYER);
    let outcome = deploys_the_test_chart(run, &world, &wrapper)
        .input("clusterName", cluster.name())
        .input("regionName", cluster.region())
        .run();
    let seen = watch.stop();
    let private_text = String::from_utf8_lossy(&std::fs::read(&private_files).unwrap()).into_owned();

    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(proxy.tunnels_to("cluster.proxied.invalid") >= 1, "{:?}", proxy.tunnels());
    assert!(outcome.log.iter().any(|l| l.starts_with("##[debug]")), "System.Debug is on");
    let first = outcome.commands.first().map(|c| (c.name.as_str(), c.data.as_str()));
    assert_eq!(first, Some(("task.setsecret", PASSWORD)), "the password is registered before anything else");
    // The log is masked with the values registered before each line only: a
    // line printed before the registration would show the password here.
    let forms = [PASSWORD, ENCODED];
    for form in forms {
        assert!(!outcome.log_text().contains(form), "in the log: {form}");
        assert!(outcome.errors().iter().all(|e| !e.message.contains(form)), "in an error: {form}");
    }
    assert!(seen.command_lines.iter().all(|l| forms.iter().all(|f| !l.contains(f))), "in an argument list");
    assert!(!seen.helm_environments.is_empty(), "helm's environment was read");
    let expected = format!("{USER}:{ENCODED}@127.0.0.1:");
    let mut with_proxy = 0;
    for environment in &seen.helm_environments {
        let holding: Vec<&str> =
            environment.lines().filter(|line| forms.iter().any(|form| line.contains(form))).collect();
        let names: Vec<&str> = holding.iter().map(|line| line.split('=').next().unwrap_or_default()).collect();
        // helm and what it runs have the proxy; the exec entry the task's own preflight runs has not.
        if !names.is_empty() {
            with_proxy += 1;
            assert_eq!(names, ["HTTPS_PROXY", "HTTP_PROXY"], "exactly helm's proxy variables hold it:\n{environment}");
        }
        assert!(holding.iter().all(|line| line.contains(&expected) && !line.contains(PASSWORD)), "{holding:?}");
        assert!(
            environment.lines().all(|l| !l.starts_with("SECRET_") && !l.starts_with("AGENT_PROXY")),
            "an agent variable reached helm:\n{environment}"
        );
    }
    assert!(with_proxy >= 1, "helm got the proxy");
    let no_proxy = seen.helm_environments.iter().flat_map(|e| e.lines()).filter(|l| l.starts_with("NO_PROXY="));
    assert!(no_proxy.clone().count() >= 1 && no_proxy.clone().all(|l| l == "NO_PROXY=registry.corp"));
    let warned =
        outcome.log.iter().any(|l| l.starts_with("##[warning]") && l.contains("git|svn") && l.contains("NO_PROXY"));
    assert!(warned, "the entry NO_PROXY cannot say is named: {}", outcome.log_text());
    let holders: Vec<&str> = private_text
        .split("== ")
        .filter(|file| file.contains(PASSWORD))
        .map(|file| file.lines().next().unwrap_or_default())
        .collect();
    assert!(!holders.is_empty(), "the exec entry's handover was read");
    assert!(holders.iter().all(|path| path.ends_with("/eks-token-proxy.json")), "in {holders:?}");
    for (path, text) in files_under(&agent_temp) {
        assert!(forms.iter().all(|form| !text.contains(form)), "in {} left in the agent's temp folder", path.display());
    }
}

/// KanikoBuild with a kubeconfig whose user runs an exec plugin: the plugin
/// (as `aws eks get-token` would) runs without the proxy password or any
/// other secret variable of the pipeline.
#[test]
fn a_kubeconfig_exec_plugin_of_kaniko_build_gets_no_proxy_password() {
    let world = World::shared();
    let namespace = world.unique_namespace("proxy-exec").unwrap();
    let image = "hardening.test/proxy-exec:1";
    let digest = "sha256:8a1b1d7a0b1e7c6b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8";
    world.set_behaviour(image, Behaviour::exit_with_message(&["INFO built"], 0, Duration::from_millis(300), digest));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let environment = dir.path().join("plugin-env.log");
    let plugin = dir.path().join("credential-plugin");
    let credential = format!(
        r#"{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"{}"}}}}"#,
        world.admin_token()
    );
    let script = format!("#!/bin/sh\nenv >> '{}'\necho '{credential}'\n", environment.display());
    std::fs::write(&plugin, script).unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kubeconfig = world.kubeconfig_exec("plugin", &plugin, &[]).unwrap();
    let proxy = world.forward_proxy(Some((USER, PASSWORD))).unwrap();
    let outcome = TaskRun::new(task("KanikoBuildV1").path())
        .sources(dir.path())
        .timeout(Duration::from_secs(120))
        .agent_proxy(&proxy.url(), Some((USER, PASSWORD)), &[])
        .env("SECRET_NPMTOKEN", "another-secret-variable")
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &kubeconfig.display().to_string())
        .input("namespace", &namespace)
        .input("kanikoImage", image)
        .input("destinations", "registry.local/app:1")
        .input("contextTransport", "Stream")
        .run();
    assert_eq!(outcome.result, StepResult::Succeeded, "{:?}\n{}", outcome.errors(), outcome.log_text());
    assert!(proxy.tunnels_to("127.0.0.1") >= 1, "the cluster was reached through the proxy: {:?}", proxy.tunnels());
    let seen = std::fs::read_to_string(&environment).unwrap();
    assert!(seen.contains("AGENT_TEMPDIRECTORY="), "the plugin ran with the task's environment: {seen}");
    assert!(!seen.contains(PASSWORD) && !seen.contains(ENCODED), "the proxy password reached the plugin");
    let secret_lines = seen.lines().any(|line| line.starts_with("SECRET_"));
    assert!(!secret_lines && !seen.contains("another-secret-variable"), "a secret variable reached the plugin: {seen}");
}
