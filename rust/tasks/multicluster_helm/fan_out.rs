//! `targets`: the step's command on several clusters. At most `maxParallel`
//! run at once, wave after wave; after a failure no later wave starts (and,
//! with `failFast`, no other target). Each target's log is held and shown as
//! one group when the target ends, so lines of targets never interleave.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::report::{Outputs, TargetEnd, TargetResult, TargetsReport};
use super::targets::{FanOut, NamedTarget};
use super::{Canceled, Env, deploy, helm_version, hidden_from_helm};
use crate::azp::Agent;
use crate::azp::command::{Issue, IssueType};
use crate::azp::report::{Outcome, one_line};
use crate::helm::{Helm, Major};
use crate::kube::kubeconfig::PrivateDir;

/// Runs every target and reports them all.
pub async fn deploy_all(
    env: &Env,
    agent: &Agent,
    fan_out: &FanOut,
    private: &PrivateDir,
    cancel: &CancellationToken,
) -> anyhow::Result<Outcome> {
    show_targets(agent, fan_out);
    // One `helm version` for all: the same helm runs every target.
    let first = &fan_out.targets[0].params;
    let helm = Helm::new(&first.helm, &private.kubeconfig(), &private.subdir("helm")?)
        .without(hidden_from_helm(env, &first.target));
    let major = helm_version(agent, &helm, cancel).await?;
    let permits = Semaphore::new(fan_out.max_parallel);
    let failed = AtomicBool::new(false);
    let mut results = Vec::with_capacity(fan_out.targets.len());
    let waves: BTreeSet<u32> = fan_out.targets.iter().map(|t| t.wave).collect();
    for wave in waves {
        let members = fan_out.targets.iter().filter(|t| t.wave == wave);
        if failed.load(Ordering::SeqCst) {
            results.extend(members.map(|t| TargetResult::not_started(t, "a target of an earlier wave failed")));
            continue;
        }
        let runs = members.map(|target| async {
            // The semaphore is fair: targets start in the order listed.
            let _permit = permits.acquire().await;
            if cancel.is_cancelled() {
                return TargetResult::not_started(target, "the step was canceled");
            }
            if fan_out.fail_fast && failed.load(Ordering::SeqCst) {
                return TargetResult::not_started(target, "another target failed (failFast)");
            }
            let result = deploy_target(env, agent, target, private, cancel, major).await;
            if matches!(result.end, TargetEnd::Failed(_)) {
                failed.store(true, Ordering::SeqCst);
            }
            result
        });
        results.extend(futures::future::join_all(runs).await);
    }
    if cancel.is_cancelled() {
        return Err(Canceled.into());
    }
    let report = TargetsReport { results: &results, release: &fan_out.targets[0].params.release.name };
    report.publish(agent, &env.temp_dir());
    Ok(outcome(&results, fan_out.allow_partial_success))
}

/// The targets as planned, before any starts.
fn show_targets(agent: &Agent, fan_out: &FanOut) {
    agent.group(&format!(
        "{} targets, at most {} at once{}",
        fan_out.targets.len(),
        fan_out.max_parallel,
        if fan_out.fail_fast { ", none started after a failure" } else { "" }
    ));
    for target in &fan_out.targets {
        let (cluster, region) = target.cluster();
        let release = &target.params.release;
        agent.line(&format!(
            "{}: cluster {cluster} in {region}, release {}/{}, wave {}",
            target.name, release.namespace, release.name, target.wave
        ));
    }
    agent.end_group();
}

/// One target, its log held until it ends.
async fn deploy_target(
    env: &Env,
    agent: &Agent,
    target: &NamedTarget,
    private: &PrivateDir,
    cancel: &CancellationToken,
    major: Major,
) -> TargetResult {
    let (cluster, region) = target.cluster();
    agent.line(&format!("Target {} started: cluster {cluster} in {region}", target.name));
    let started = Instant::now();
    let (held_agent, held) = agent.held();
    let outputs = Outputs::of_target(&held_agent, &target.name);
    // Each target has its own kubeconfig, helm folders and token cache.
    let result = match PrivateDir::create(private.path()) {
        Ok(dir) => deploy(env, &held_agent, &target.params, &dir, cancel, &outputs, Some(major)).await,
        Err(error) => Err(error.into()),
    };
    let duration = started.elapsed();
    let end = match &result {
        Ok(_) => TargetEnd::Succeeded,
        Err(error) if error.is::<Canceled>() => TargetEnd::Canceled,
        Err(error) => TargetEnd::Failed(one_line(error)),
    };
    let how = end.as_str();
    held.release(&format!("Target {}: cluster {cluster} in {region}, {how} after {}", target.name, seconds(duration)));
    if let TargetEnd::Failed(message) = &end {
        agent.log_issue(&Issue::new(
            IssueType::Error,
            format!("target {} (cluster {cluster} in {region}): {message}", target.name),
        ));
    }
    TargetResult::ended(target, &outputs, duration, end)
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// Failed if any target failed, unless partial success is allowed and one
/// target succeeded.
fn outcome(results: &[TargetResult], allow_partial_success: bool) -> Outcome {
    let failed: Vec<&str> =
        results.iter().filter(|r| matches!(r.end, TargetEnd::Failed(_))).map(|r| r.name.as_str()).collect();
    let succeeded = results.iter().filter(|r| r.end == TargetEnd::Succeeded).count();
    let not_started = results.len() - failed.len() - succeeded;
    if failed.is_empty() {
        return Outcome::Succeeded;
    }
    let mut message = format!("{} of {} targets failed: {}", failed.len(), results.len(), failed.join(", "));
    if not_started > 0 {
        message.push_str(&format!("; {not_started} not started"));
    }
    if allow_partial_success && succeeded > 0 {
        Outcome::SucceededWithIssues(message)
    } else {
        Outcome::Failed(message)
    }
}
