//! The chart's azure-pipelines trigger read the way KEDA's scaler reads it
//! (kedacore/keda pkg/scalers/azure_pipelines_scaler.go, v2.19.0 to v2.20.2;
//! scaleOnInFlight from the 2.21 release, #7905), and the agents a ScaledJob
//! then starts (pkg/scaling/executor/scale_jobs.go, v2.20.2).

use serde_json::Value;

use crate::support::*;

/// The trigger of the chart's one ScaledJob or ScaledObject, and the env of the workload's agent container.
fn trigger_and_env(extra: &[String]) -> (Value, Vec<Value>) {
    let objects = render(world().tools().helm4.as_path(), extra);
    if let Some(job) = of_kind(&objects, "ScaledJob").first() {
        let env = job["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]["env"].clone();
        return (job["spec"]["triggers"][0].clone(), env.as_array().cloned().unwrap_or_default());
    }
    let scaled = of_kind(&objects, "ScaledObject")[0]["spec"]["triggers"][0].clone();
    let env = &of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"];
    (scaled, env.as_array().cloned().unwrap_or_default())
}

/// What parseAzurePipelinesMetadata and Validate make of a trigger's metadata:
/// the organisation URL and name, or the error that stops the scaler (and all scaling).
fn scaler_reads(metadata: &Value, env: &[Value]) -> Result<(String, String), String> {
    let get = |key: &str| metadata[key].as_str().filter(|v| !v.is_empty());
    if get("jobsToFetch").is_some() && get("fetchUnfinishedJobsOnly").is_some() {
        return Err("cannot specify both jobsToFetch and fetchUnfinishedJobsOnly at the same time".into());
    }
    if get("jobsToFetch").is_some() && get("parent").is_some() {
        return Err("cannot specify both jobsToFetch and parent at the same time".into());
    }
    for key in ["fetchUnfinishedJobsOnly", "scaleOnInFlight", "requireAllDemands"] {
        // Go's strconv.ParseBool.
        let bools = ["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"];
        if let Some(value) = get(key).filter(|v| !bools.contains(v)) {
            return Err(format!("{key}: invalid boolean {value:?}"));
        }
    }
    // organizationURL: order=resolvedEnv;authParams;triggerMetadata (no authParams here).
    let from_env = get("organizationURLFromEnv")
        .and_then(|name| env.iter().find(|e| e["name"] == name))
        .and_then(|e| e["value"].as_str());
    let url = from_env.or(get("organizationURL")).ok_or("missing required parameter \"organizationURL\"")?;
    let name = &url[url.rfind('/').map_or(0, |i| i + 1)..];
    if name.is_empty() {
        return Err("failed to extract organization name from organizationURL".into());
    }
    if get("poolName").is_none() && get("poolID").is_none() {
        return Err("no poolName or poolID given".into());
    }
    Ok((url.to_string(), name.to_string()))
}

fn values(pairs: &[&str]) -> Vec<String> {
    let mut extra = vec!["--set".to_string(), format!("azp.token={PAT}")];
    extra.extend(pairs.iter().flat_map(|p| ["--set-string".to_string(), p.to_string()]));
    extra
}

#[test]
fn an_organisation_url_with_a_trailing_slash_still_scales() {
    for mode in ["ScaledJob", "Deployment"] {
        for url in
            ["https://dev.azure.com/contoso/", "https://dev.azure.com/contoso//", "https://dev.azure.com/contoso"]
        {
            let (trigger, env) = trigger_and_env(&values(&[&format!("azp.url={url}"), &format!("mode={mode}")]));
            let read = scaler_reads(&trigger["metadata"], &env);
            assert_eq!(
                read,
                Ok(("https://dev.azure.com/contoso".to_string(), "contoso".to_string())),
                "{mode} with azp.url={url}: the scaler's requests go to <url>/_apis/..."
            );
        }
    }
}

#[test]
fn every_values_set_fetches_only_unfinished_jobs_and_parses_in_the_scaler() {
    for (scenario, extra) in scenarios() {
        let (trigger, env) = trigger_and_env(&extra);
        let metadata = &trigger["metadata"];
        assert_eq!(metadata["fetchUnfinishedJobsOnly"], "true", "{scenario}: a busy pool's history times out the poll");
        assert!(metadata["jobsToFetch"].is_null(), "{scenario}: jobsToFetch excludes fetchUnfinishedJobsOnly");
        assert!(scaler_reads(metadata, &env).is_ok(), "{scenario}: {:?}", scaler_reads(metadata, &env));
    }
}

/// A pipeline job in the pool's queue: taken by an agent (receiveTime set) or waiting.
#[derive(Clone, Copy)]
enum Job {
    Running,
    Waiting,
}

/// Agents (Kubernetes Jobs) one poll of a ScaledJob starts: the scaler's queue
/// length (stripDeadJobs), then the strategy's GetEffectiveMaxScale with
/// targetPipelinesQueueLength 1, minReplicaCount 0 and no pending Jobs.
fn agents_started(keda: &str, trigger: &Value, strategy: &str, queue: &[Job], running_agents: i64, max: i64) -> i64 {
    let in_flight_counts = match keda {
        "2.19" => true,                                         // only finished jobs are stripped
        "2.20" => false,                                        // #7757: taken jobs are stripped too
        _ => trigger["metadata"]["scaleOnInFlight"] != "false", // 2.21: default true
    };
    let length = queue.iter().filter(|job| matches!(job, Job::Waiting) || in_flight_counts).count() as i64;
    let max_scale = length.min(max);
    let effective = match strategy {
        "default" => max_scale - running_agents,
        "accurate" if max_scale + running_agents > max => max - running_agents,
        "accurate" => max_scale,
        other => panic!("strategy {other} is not modelled"),
    };
    if length == 0 { 0 } else { effective.clamp(0, max_scale) }
}

#[test]
fn a_running_job_gets_no_second_agent_and_a_waiting_job_gets_one_on_each_keda() {
    for keda in ["2.19", "2.20", "2.21"] {
        let objects = render(world().tools().helm4.as_path(), &values(&[&format!("keda.version={keda}")]));
        let job = of_kind(&objects, "ScaledJob")[0];
        let (trigger, strategy) =
            (&job["spec"]["triggers"][0], job["spec"]["scalingStrategy"]["strategy"].as_str().unwrap());
        let max = job["spec"]["maxReplicaCount"].as_i64().unwrap();
        let polls = |queue: &[Job], agents: i64| agents_started(keda, trigger, strategy, queue, agents, max);
        assert_eq!(polls(&[Job::Running], 1), 0, "KEDA {keda}, {strategy}: an idle agent per poll while a job runs");
        assert_eq!(polls(&[Job::Running, Job::Waiting], 1), 1, "KEDA {keda}, {strategy}: the waiting job's agent");
        assert_eq!(polls(&[Job::Waiting, Job::Waiting], 0), 2, "KEDA {keda}, {strategy}: one agent per waiting job");
    }
}
