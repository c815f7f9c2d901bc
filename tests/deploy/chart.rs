//! `helm lint` and `helm template` with helm 4 and 3; values.schema.json errors.

use serde_json::Value;

use crate::support::*;

fn trigger(objects: &[Value], kind: &str) -> Value {
    let scaler = of_kind(objects, kind);
    assert_eq!(scaler.len(), 1, "one {kind}");
    scaler[0]["spec"]["triggers"][0].clone()
}

#[test]
fn lint_and_template_pass_for_every_scenario_with_helm4_and_helm3() {
    let chart = chart();
    for (helm_name, helm) in helms() {
        for (scenario, extra) in scenarios() {
            let mut lint = vec!["lint", "--strict", chart.as_str(), "--namespace", "agents"];
            lint.extend(REQUIRED);
            lint.extend(extra.iter().map(String::as_str));
            let out = tool(helm, &lint);
            assert!(
                out.status.success(),
                "{helm_name} lint {scenario}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let objects = render(helm, &extra);
            check_scenario(scenario, &objects);
        }
    }
}

fn check_scenario(scenario: &str, objects: &[Value]) {
    let secrets = of_kind(objects, "Secret");
    match scenario {
        "defaults" => {
            let trigger = trigger(objects, "ScaledJob");
            assert_eq!(trigger["type"], "azure-pipelines");
            assert_eq!(trigger["metadata"]["poolName"], "k8s-agents");
            assert_eq!(trigger["metadata"]["parent"], "pool-azure-agent-template", "the template agent is the parent");
            let job = of_kind(objects, "ScaledJob")[0];
            assert_eq!(job["spec"]["rollout"]["strategy"], "gradual");
            assert_eq!(job["spec"]["scalingStrategy"]["strategy"], "accurate", "KEDA 2.20 by default");
            assert_eq!(job["spec"]["jobTargetRef"]["activeDeadlineSeconds"], 4200);
            let spec = &job["spec"]["jobTargetRef"]["template"]["spec"];
            assert_eq!(spec["containers"][0]["args"], serde_json::json!(["run", "--once"]));
            assert_eq!(spec["terminationGracePeriodSeconds"], 3600);
            assert_eq!(secrets.len(), 1, "the chart creates the PAT Secret");
            assert!(of_kind(objects, "Deployment").is_empty() && of_kind(objects, "ScaledObject").is_empty());
            let template = of_kind(objects, "Job");
            assert_eq!(template.len(), 1, "the template agent's Job");
            let container = &template[0]["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(container["args"], serde_json::json!(["register"]), "the template agent is only registered");
            let env = container["env"].as_array().unwrap();
            assert!(env.iter().any(|e| e["name"] == "AZP_TEMPLATE_AGENT" && e["value"] == "true"));
            let namespaces = of_kind(objects, "Namespace");
            assert_eq!(namespaces.len(), 1, "the build namespace");
            assert_eq!(namespaces[0]["metadata"]["name"], "agents-build");
            assert_eq!(
                namespaces[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "baseline",
                "kaniko runs as root"
            );
            let agent_env = spec["containers"][0]["env"].as_array().unwrap();
            let build_namespace =
                agent_env.iter().find(|e| e["name"] == "AZP_BUILD_NAMESPACE").expect("AZP_BUILD_NAMESPACE");
            assert_eq!(build_namespace["value"], "agents-build", "KanikoBuild@1's default namespace");
        }
        "scaledjob-with-demands" => {
            let trigger = trigger(objects, "ScaledJob");
            assert_eq!(trigger["metadata"]["demands"], "kaniko,Agent.OS -equals Linux");
            assert_eq!(trigger["metadata"]["requireAllDemands"], "true");
            assert!(trigger["metadata"]["parent"].is_null(), "demands replace parent matching");
            let job = of_kind(objects, "ScaledJob")[0];
            let env = &job["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]["env"];
            let env = env.as_array().unwrap();
            assert!(env.iter().any(|e| e["name"] == "kaniko" && e["value"] == "true"), "{env:?}");
            assert!(env.iter().any(|e| e["name"] == "Agent.OS" && e["value"] == "Linux"), "{env:?}");
        }
        "deployment" => {
            assert!(of_kind(objects, "ScaledJob").is_empty());
            let deployment = of_kind(objects, "Deployment");
            assert_eq!(deployment.len(), 1);
            let args = &deployment[0]["spec"]["template"]["spec"]["containers"][0]["args"];
            assert_eq!(args, &serde_json::json!(["run"]), "warm agents");
            assert!(deployment[0]["spec"]["replicas"].is_null(), "KEDA owns the replica count, not each upgrade");
            let scaled = of_kind(objects, "ScaledObject");
            assert_eq!(scaled[0]["spec"]["scaleTargetRef"]["name"], "pool-azure-agent");
            trigger(objects, "ScaledObject");
        }
        "workload-identity" => {
            let auth = of_kind(objects, "TriggerAuthentication");
            assert_eq!(auth[0]["spec"]["podIdentity"]["provider"], "azure-workload");
            assert_eq!(auth[0]["spec"]["podIdentity"]["identityId"], "0000-1111");
            assert!(auth[0]["spec"]["secretTargetRef"].is_null());
            assert!(secrets.is_empty());
        }
        "existing-secret" => {
            assert!(secrets.is_empty(), "an existing Secret is used, none created");
            let auth = of_kind(objects, "TriggerAuthentication");
            let reference = &auth[0]["spec"]["secretTargetRef"][0];
            assert_eq!(reference["parameter"], "personalAccessToken");
            assert_eq!((reference["name"].as_str(), reference["key"].as_str()), (Some("azp-pat"), Some("pat")));
            let job = of_kind(objects, "ScaledJob")[0];
            let volume = &job["spec"]["jobTargetRef"]["template"]["spec"]["volumes"][0]["secret"];
            assert_eq!(volume["secretName"], "azp-pat");
            assert_eq!(volume["items"][0]["key"], "pat");
        }
        "aws-and-helm-namespaces" => {
            let accounts = of_kind(objects, "ServiceAccount");
            let role = |name: &str| {
                let sa = accounts.iter().find(|a| a["metadata"]["name"] == name).expect(name);
                sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].as_str().map(str::to_string)
            };
            assert_eq!(role("azure-agent").as_deref(), Some("arn:aws:iam::111111111111:role/agent"));
            assert_eq!(role("azure-agent-kaniko").as_deref(), Some("arn:aws:iam::111111111111:role/kaniko"));
            let maps = of_kind(objects, "ConfigMap");
            let docker = maps.iter().find(|m| m["metadata"]["name"] == "docker-config").expect("docker-config");
            let config: Value = serde_json::from_str(docker["data"]["config.json"].as_str().unwrap()).unwrap();
            assert_eq!(config["credHelpers"]["111111111111.dkr.ecr.eu-west-1.amazonaws.com"], "ecr-login");
            let profiles = maps.iter().find(|m| m["metadata"]["name"] == "pool-azure-agent-aws-profiles").unwrap();
            let text = profiles["data"]["config"].as_str().unwrap();
            assert!(text.contains("[profile dev]\nrole_arn = arn:aws:iam::222222222222:role/deployer"), "{text}");
            let namespaces: Vec<_> = of_kind(objects, "Role")
                .iter()
                .map(|r| r["metadata"]["namespace"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(namespaces, ["agents-build", "web", "api"], "the build role, then one per Helm namespace");
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn schema_and_checks_reject_bad_values_with_clear_messages() {
    let chart = chart();
    let cases: &[(&[&str], [&str; 2])] = &[
        (
            &["--set", "azp.url=https://dev.azure.com/contoso", "--set", "azp.token=x"],
            ["at '/azp': missing property 'pool'", "azp: pool is required"],
        ),
        (
            &["--set", "keda.maxReplicaCount=-1"],
            [
                "at '/keda/maxReplicaCount': minimum: got -1, want 1",
                "keda.maxReplicaCount: Must be greater than or equal to 1",
            ],
        ),
        (
            &["--set", "deployment.replicas=2", "--set", "mode=Deployment"],
            [
                "deployment.replicas is not a value any more: KEDA owns the replica count",
                "deployment.replicas is not a value any more: KEDA owns the replica count",
            ],
        ),
        // KEDA's CRDs (2.20 and later) require maxReplicaCount >= 1.
        (
            &["--set", "keda.maxReplicaCount=0"],
            [
                "at '/keda/maxReplicaCount': minimum: got 0, want 1",
                "keda.maxReplicaCount: Must be greater than or equal to 1",
            ],
        ),
        (
            &["--set", "keda.minReplicaCount=5", "--set", "keda.maxReplicaCount=2", "--set", "mode=Deployment"],
            [
                "keda.minReplicaCount (5) is greater than keda.maxReplicaCount (2)",
                "keda.minReplicaCount (5) is greater than keda.maxReplicaCount (2)",
            ],
        ),
        (
            &["--set", "keda.rolloutStrategy=default"],
            [
                "at '/keda/rolloutStrategy': value must be one of 'gradual', 'immediate'",
                "keda.rolloutStrategy must be one of the following: \"gradual\", \"immediate\"",
            ],
        ),
        (
            &["--set-string", "keda.version=2.20", "--set", "keda.scalingStrategy=default"],
            [
                "keda.scalingStrategy=default is refused by the CRDs of KEDA 2.20.0 and 2.20.1 (keda.version 2.20)",
                "keda.scalingStrategy=default is refused by the CRDs of KEDA 2.20.0 and 2.20.1 (keda.version 2.20)",
            ],
        ),
        (
            &["--set-string", "keda.version=2.18"],
            [
                "keda.version 2.18 is not supported: the chart needs KEDA 2.19 or later",
                "keda.version 2.18 is not supported: the chart needs KEDA 2.19 or later",
            ],
        ),
        (
            &["--set", "mode=StatefulSet"],
            [
                "at '/mode': value must be one of 'ScaledJob', 'Deployment'",
                "mode must be one of the following: \"ScaledJob\", \"Deployment\"",
            ],
        ),
        (
            &["--set", "azp.token="],
            ["the PAT is missing: set azp.existingSecret", "the PAT is missing: set azp.existingSecret"],
        ),
        (
            &["--set-string", "keda.version=2.11"],
            [
                "mode ScaledJob needs KEDA 2.12 or later (keda.version is 2.11)",
                "mode ScaledJob needs KEDA 2.12 or later (keda.version is 2.11)",
            ],
        ),
        (
            &["--set", "rbac.buildNamespace=default"],
            [
                "rbac.buildNamespace must not be the release namespace default: job steps could then delete",
                "rbac.buildNamespace must not be the release namespace default: job steps could then delete",
            ],
        ),
        (
            &["--set", "rbac.helmNamespaces={web,default}"],
            [
                "rbac.helmNamespaces must not list the release namespace default",
                "rbac.helmNamespaces must not list the release namespace default",
            ],
        ),
    ];
    for (index, (helm_name, helm)) in helms().into_iter().enumerate() {
        for (values, messages) in cases {
            let mut args = vec!["template", "pool", chart.as_str()];
            if values.iter().all(|v| !v.starts_with("azp.url")) {
                args.extend(REQUIRED);
                args.extend(["--set", "azp.token=x"]);
            }
            args.extend(values.iter());
            let out = tool(helm, &args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{helm_name} accepted {values:?}");
            assert!(stderr.contains(messages[index]), "{helm_name} {values:?}: {stderr}");
        }
    }
}

#[test]
fn scaling_strategy_and_in_flight_counting_follow_the_keda_version() {
    let helm = world().tools().helm4.as_path();
    // (ScaledJob strategy, the trigger's scaleOnInFlight) for a Deployment or ScaledJob pool.
    let rendered = |values: &[&str]| {
        let mut extra: Vec<String> = vec!["--set".into(), "azp.token=x".into()];
        extra.extend(values.iter().flat_map(|v| ["--set-string".to_string(), v.to_string()]));
        let objects = render(helm, &extra);
        let scaler = of_kind(&objects, "ScaledJob").into_iter().chain(of_kind(&objects, "ScaledObject")).next();
        let spec = &scaler.expect("a scaler")["spec"];
        let in_flight = spec["triggers"][0]["metadata"]["scaleOnInFlight"].as_str().map(str::to_string);
        (spec["scalingStrategy"]["strategy"].as_str().map(str::to_string), in_flight)
    };
    let pair =
        |strategy: Option<&str>, in_flight: Option<&str>| (strategy.map(str::to_string), in_flight.map(str::to_string));
    assert_eq!(rendered(&["keda.version=2.19"]), pair(Some("default"), None), "before 2.20 a job counts until it ends");
    assert_eq!(rendered(&["keda.version=2.20"]), pair(Some("accurate"), None), "2.20 counts waiting jobs only");
    // KEDA 2.21 counts jobs agents already run unless scaleOnInFlight is "false";
    // accurate would then add an idle agent per running job on every poll.
    assert_eq!(rendered(&["keda.version=2.21.1"]), pair(Some("accurate"), Some("false")));
    assert_eq!(rendered(&["keda.version=2.21", "keda.scalingStrategy=default"]), pair(Some("default"), Some("true")));
    assert_eq!(
        rendered(&["keda.version=2.19", "keda.scalingStrategy=eager"]),
        pair(Some("eager"), None),
        "an explicit choice wins"
    );
    assert_eq!(
        rendered(&["keda.version=2.20.2", "keda.scalingStrategy=default"]),
        pair(Some("default"), None),
        "2.20.2's CRDs accept default again"
    );
    // A ScaledObject has no strategy: it must count busy agents or it scales them down.
    assert_eq!(rendered(&["keda.version=2.21", "mode=Deployment"]), pair(None, Some("true")));
}

#[test]
fn the_build_namespace_is_a_separate_one_the_chart_creates_or_one_given() {
    let helm = world().tools().helm4.as_path();
    let render_with = |values: &[&str]| {
        let mut extra: Vec<String> = vec!["--set".into(), "azp.token=x".into()];
        extra.extend(values.iter().flat_map(|v| ["--set".to_string(), v.to_string()]));
        render(helm, &extra)
    };
    let objects = render_with(&["rbac.buildNamespace=builds", "rbac.createBuildNamespace=false"]);
    assert!(of_kind(&objects, "Namespace").is_empty(), "a namespace created beforehand");
    let role = of_kind(&objects, "Role")[0];
    assert_eq!(role["metadata"]["namespace"], "builds");
    for kind in ["ServiceAccount", "ConfigMap"] {
        let kaniko: Vec<_> = of_kind(&objects, kind)
            .into_iter()
            .filter(|o| matches!(o["metadata"]["name"].as_str(), Some("azure-agent-kaniko" | "docker-config")))
            .collect();
        assert_eq!(kaniko.len(), 1, "{kind}");
        assert_eq!(kaniko[0]["metadata"]["namespace"], "builds", "{kind} where kaniko pods run");
    }
    // No Role of the chart gives the agents pods in their own namespace.
    for role in of_kind(&render_with(&["rbac.helmNamespaces={web}"]), "Role") {
        assert_ne!(role["metadata"]["namespace"], "agents", "{role}");
        assert!(role["metadata"]["namespace"].is_string(), "every Role names its namespace: {role}");
    }
}
