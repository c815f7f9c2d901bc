//! helm's verbs besides `upgrade`: `uninstall`, `rollback`, `test`, and the
//! recovery of a release that a killed helm left `pending-*` (which helm
//! refuses every later operation on).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::params::{Params, ReleaseRef};
use crate::azp::Agent;
use crate::helm::diff::Change;
use crate::helm::runner::Error;
use crate::helm::{self, Helm, Major, Release, Stdout, Upgrade};
use crate::tasks::syntax::parse_go_duration;

/// helm's words for a release that does not exist.
fn is_not_found(error: &Error) -> bool {
    error.stderr().iter().any(|line| line.contains("release: not found"))
}

/// The release as it is now; None when it does not exist (or cannot be read).
pub async fn current(agent: &Agent, helm: &Helm, release: &ReleaseRef, cancel: &CancellationToken) -> Option<Release> {
    let args = helm::args::status_args(&release.name, &release.namespace);
    let out = helm.run(agent, &args, None, Stdout::Keep, cancel).await.ok()?;
    Release::from_json(&out.stdout).ok()
}

/// What `uninstall` did.
pub enum Uninstalled {
    /// The release that was there, now gone.
    Release(Option<Release>),
    /// There was no such release, and that was allowed.
    WasMissing,
}

pub async fn uninstall(
    agent: &Agent,
    helm: &Helm,
    params: &Params,
    ignore_missing: bool,
    cancel: &CancellationToken,
) -> Result<Uninstalled, anyhow::Error> {
    let release = &params.release;
    let before = current(agent, helm, release, cancel).await;
    if before.is_none() && ignore_missing {
        agent.line(&format!("Release {}/{} does not exist: nothing to uninstall", release.namespace, release.name));
    }
    agent.section(&format!("helm uninstall {}", release.name));
    let args = helm::args::uninstall_args(
        &release.name,
        &release.namespace,
        params.wait,
        params.timeout.as_deref(),
        ignore_missing,
    );
    match helm.run(agent, &args, None, Stdout::Show, cancel).await {
        Ok(_) if before.is_none() => Ok(Uninstalled::WasMissing),
        Ok(_) => Ok(Uninstalled::Release(before)),
        Err(error) if is_not_found(&error) => Err(anyhow::Error::from(error).context(format!(
            "release {}/{} does not exist (set ignoreMissingRelease to count that as uninstalled)",
            release.namespace, release.name
        ))),
        Err(error) => Err(error.into()),
    }
}

pub async fn rollback(
    agent: &Agent,
    helm: &Helm,
    params: &Params,
    revision: Option<u64>,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let release = &params.release;
    let to = revision.map_or_else(|| "the previous revision".to_string(), |r| format!("revision {r}"));
    agent.section(&format!("helm rollback {} to {to}", release.name));
    let args =
        helm::args::rollback_args(&release.name, &release.namespace, revision, params.wait, params.timeout.as_deref());
    helm.run(agent, &args, None, Stdout::Show, cancel).await.map(drop)
}

pub async fn test(agent: &Agent, helm: &Helm, params: &Params, cancel: &CancellationToken) -> Result<(), Error> {
    let release = &params.release;
    agent.section(&format!("helm test {}", release.name));
    let args = helm::args::test_args(&release.name, &release.namespace, params.timeout.as_deref());
    helm.run(agent, &args, None, Stdout::Show, cancel).await.map(drop)
}

/// helm's own `--timeout` when the step gives none.
const HELM_DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Frees a release left `pending-install` (uninstalled: it never deployed)
/// or `pending-upgrade`/`pending-rollback` (rolled back to its last
/// deployed revision), so that the upgrade after it can run.
///
/// helm cannot tell a killed run from one still working (another
/// pipeline's, on a shared pool): a revision pending for less than the
/// step's timeout may be a live run's, and is left alone.
pub async fn unlock(agent: &Agent, helm: &Helm, params: &Params, cancel: &CancellationToken) -> anyhow::Result<()> {
    let release = &params.release;
    let Some(state) = current(agent, helm, release, cancel).await else { return Ok(()) };
    if !state.status.starts_with("pending-") {
        return Ok(());
    }
    let name = format!("{}/{} (revision {}, {})", release.namespace, release.name, state.revision, state.status);
    let history = helm::args::history_json_args(&release.name, &release.namespace);
    let out = helm.run(agent, &history, None, Stdout::Keep, cancel).await?;
    let revisions = helm::release::history(&out.stdout)?;
    let timeout = match params.timeout.as_deref().map(parse_go_duration) {
        Some(Ok(nanos)) => Duration::from_nanos(nanos.max(0) as u64),
        _ => HELM_DEFAULT_TIMEOUT,
    };
    let began = revisions.iter().find(|r| r.revision == state.revision).and_then(|r| r.updated);
    let pending_for =
        began.map(|t| Duration::from_secs(jiff::Timestamp::now().duration_since(t).as_secs().max(0) as u64));
    if pending_for.is_none_or(|age| age < timeout) {
        let age = pending_for.map_or("an unknown time".to_string(), |a| format!("{} s", a.as_secs()));
        anyhow::bail!(
            "release {name} has been pending for {age}, less than the step's timeout ({} s): a helm run, perhaps another \
             pipeline's, may still be working on it, so it is not unlocked; run the step again later",
            timeout.as_secs()
        );
    }
    let args = match helm::release::last_deployed_revision(&revisions) {
        Some(deployed) => {
            agent.line(&format!(
                "Release {name} was left by a helm run that did not finish: rolling back to revision {deployed}"
            ));
            helm::args::rollback_args(
                &release.name,
                &release.namespace,
                Some(deployed),
                false,
                params.timeout.as_deref(),
            )
        }
        None => {
            agent.line(&format!(
                "Release {name} was never deployed and is locked by a helm run that did not finish: uninstalling it"
            ));
            helm::args::uninstall_args(&release.name, &release.namespace, true, params.timeout.as_deref(), false)
        }
    };
    helm.run(agent, &args, None, Stdout::Show, cancel)
        .await
        .map_err(|e| anyhow::Error::from(e).context(format!("cannot recover release {name}")))?;
    Ok(())
}

/// The release's manifest now against the one `upgrade` would apply:
/// `helm get manifest` and `helm upgrade --install --dry-run=server`
/// (rendered with the cluster's answers to `lookup`, sent nowhere).
pub async fn diff(
    agent: &Agent,
    helm: &Helm,
    major: Major,
    upgrade: &Upgrade,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<Change>> {
    agent.section(&format!("helm diff of {}", upgrade.release));
    let current = helm::args::get_manifest_args(&upgrade.release, &upgrade.namespace);
    let current = match helm.run(agent, &current, None, Stdout::Keep, cancel).await {
        Ok(out) => out.stdout,
        Err(error) if is_not_found(&error) => {
            agent.line(&format!(
                "Release {}/{} is not installed: everything is new",
                upgrade.namespace, upgrade.release
            ));
            String::new()
        }
        Err(error) => return Err(error.into()),
    };
    // The printed release holds the values (secrets too): kept, never shown.
    let args = helm::args::dry_run_args(major, upgrade);
    let rendered = helm.run(agent, &args, None, Stdout::Keep, cancel).await?;
    let proposed = helm::release::manifest_of(&rendered.stdout)?;
    Ok(helm::diff::compare(&current, &proposed)?)
}
