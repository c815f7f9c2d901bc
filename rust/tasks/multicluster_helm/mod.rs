//! MulticlusterHelm@1: assume a role, reach an EKS cluster, run helm upgrade.
//!
//! The steps, as a user would tell them: check the inputs → get credentials
//! (and assume the role) → describe the cluster with that identity → write a
//! private kubeconfig → check that the identity is let in → run helm → report
//! the release → clean up (always: the private directory goes on success,
//! failure and cancel).

mod federation;
mod params;
mod report;

use std::path::Path;

use anyhow::Context as _;

use self::federation::{Federation, TokenBroker};
use self::params::{Params, Target};
use self::report::Summary;
use super::cancel::{Canceled, Cancellation};
use super::inputs::multicluster_helm::{Inputs, SPEC};
use super::{read_inputs, show_plan, shown};
use crate::aws::credentials::{self, Base, Cache};
use crate::aws::{AwsTarget, eks};
use crate::azp::report::Outcome;
use crate::azp::{Agent, Env};
use crate::helm::{self, Helm, Major, Release, Stdout};
use crate::kube::kubeconfig::{self, Access, EksExec, PrivateDir, Source};

pub fn run(env: &Env, agent: &Agent) -> anyhow::Result<Outcome> {
    let inputs = read_inputs(env, agent, &SPEC, Inputs::read)?;
    describe(agent, &inputs);
    let params = Params::from_inputs(&inputs, env)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let cancel = Cancellation::on_signals()?;
        let stale = PrivateDir::remove_stale(&env.temp_dir());
        if stale > 0 {
            agent.line(&format!("Removed {stale} private folder(s) that killed steps left in the agent's temp folder"));
        }
        let private = PrivateDir::create(&env.temp_dir())?;
        let result = deploy(env, agent, &params, &private, &cancel).await;
        drop(private);
        result
    })
}

/// The steps after validation; `private` is removed by the caller.
async fn deploy(
    env: &Env,
    agent: &Agent,
    params: &Params,
    private: &PrivateDir,
    cancel: &Cancellation,
) -> anyhow::Result<Outcome> {
    let (source, identity, broker) = cancelable(cancel, reach_cluster(env, agent, params, private)).await?;
    let Some(broker) = broker else {
        return with_kubeconfig(env, agent, params, private, cancel, &source, &identity).await;
    };
    let socket = crate::aws::token_broker::socket(private.path());
    let _serving = broker.serve(&socket).context("cannot open the exec entry's token socket")?;
    with_kubeconfig(env, agent, params, private, cancel, &source, &identity).await
}

/// The steps once the cluster is reached: kubeconfig, preflight, helm.
async fn with_kubeconfig(
    env: &Env,
    agent: &Agent,
    params: &Params,
    private: &PrivateDir,
    cancel: &Cancellation,
    source: &Source,
    identity: &str,
) -> anyhow::Result<Outcome> {
    let identity = identity.to_string();
    let kubeconfig = kubeconfig::write(private, source)?;
    let hidden = hidden_from_helm(env, &params.target);
    cancelable(cancel, preflight(agent, &kubeconfig, &hidden, &identity, &params.target)).await?;
    let helm = Helm::new(&params.helm, &kubeconfig, &private.subdir("helm")?).without(hidden.clone());
    let major = helm_version(agent, &helm, cancel).await?;
    log_in(agent, &helm, params, cancel).await?;
    let upgraded = upgrade(agent, &helm, major, params, cancel).await;
    let code = upgraded.as_ref().err().map_or(0, helm::runner::Error::exit_code);
    agent.set_variable("helmExitCode", &code.to_string(), output());
    if let Err(error) = upgraded {
        let error = explain_failure(agent, &helm, params, cancel, error).await;
        if cancel.is_cancelled() {
            return Err(error);
        }
        return Err(match refused_now(&kubeconfig, &hidden, &identity, &params.target).await {
            Some(refused) => error.context(refused),
            None => error,
        });
    }
    let release = read_release(agent, &helm, params, cancel).await?;
    set_outputs(agent, &release);
    let summary = Summary { release: &release, params, cluster: &target_name(&params.target), identity: &identity };
    summary.upload(agent, &env.temp_dir());
    Ok(Outcome::Succeeded)
}

/// Variables of the task that helm and the kubeconfig's exec entry do not
/// get: inputs, service connections, secret variables, the job's access
/// token (the preflight runs the exec entry too); for EKS also the
/// agent's AWS keys, which `eks-token` reads from the private directory. (A
/// user's own kubeconfig may run `aws eks get-token` with them: it keeps them.)
fn hidden_from_helm(env: &Env, target: &Target) -> Vec<String> {
    let task_only = ["INPUT_", "ENDPOINT_", "SECRET_"];
    let keys = if matches!(target, Target::Eks { .. }) { credentials::KEY_VARIABLES } else { &[] };
    env.names()
        .filter(|n| task_only.iter().any(|p| n.starts_with(p)) || *n == "SYSTEM_ACCESSTOKEN" || keys.contains(n))
        .map(str::to_string)
        .collect()
}

/// Runs a step unless the step is canceled first.
async fn cancelable<T>(cancel: &Cancellation, step: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::select! {
        result = step => result,
        () = cancel.cancelled() => Err(Canceled.into()),
    }
}

fn output() -> crate::azp::agent::VariableOptions {
    crate::azp::agent::VariableOptions { is_output: true, is_secret: false }
}

/// The kubeconfig's source, who we are, and (OIDC) the exec entry's token broker.
type Reached = (Source, String, Option<TokenBroker>);

/// Credentials and cluster description (EKS), or the connection as given.
/// Returns the kubeconfig source and who we are. What the kubeconfig's exec
/// entry needs (base credentials, external ID) is handed over in `private`;
/// with OIDC, it asks this process's broker instead.
async fn reach_cluster(env: &Env, agent: &Agent, params: &Params, private: &PrivateDir) -> anyhow::Result<Reached> {
    let Target::Eks { name, region, base, role } = &params.target else {
        return Ok((other_source(env, &params.target)?, "the connection's identity".into(), None));
    };
    agent.group("AWS identity and cluster");
    let target = AwsTarget { region: Some(region.clone()), endpoint_url: None };
    let register = |obtained: &_| credentials::secret_values(obtained).for_each(|secret| agent.set_secret(secret));
    let federation = match base {
        Base::Connection(endpoint) => Federation::of(env, agent, endpoint)?,
        _ => None,
    };
    let base = match &federation {
        Some(federation) => {
            agent.line(&format!("AWS credentials: {}", federation.describe()));
            Base::Given(federation.credentials(env, agent, &target).await?)
        }
        None => base.clone(),
    };
    let resolved = credentials::resolve(env, &target, &base, role.as_ref(), &register).await?;
    let identity = credentials::caller_identity(&resolved.config).await?.describe();
    agent.line(&format!("AWS identity: {identity}"));
    if let (Some(role), Some(session)) = (role, resolved.session)
        && session < role.duration
    {
        agent.line(&format!("Session: {} s (a role assumed from a role lasts at most one hour)", session.as_secs()));
    }
    let cluster = eks::describe_cluster(&resolved.config, name, &identity).await?;
    agent.line(&format!("Cluster: {} ({}), Kubernetes {}", cluster.name, cluster.endpoint, shown(&cluster.version)));
    agent.end_group();
    let program = std::env::current_exe().context("cannot find the azp-kube binary for the kubeconfig's exec entry")?;
    let source = Source::Eks { cluster, exec: EksExec { program, role: role.clone() } };
    if let Some(federation) = federation {
        // Nothing is handed over: the exec entry asks this process.
        let current = std::sync::Mutex::new((resolved.credentials, crate::aws::eks::clock(env)?));
        let (cluster, role) = (name.clone(), role.clone());
        let (env, agent) = (env.clone(), agent.clone());
        let broker = TokenBroker { env, agent, federation, role, target, cluster, current };
        return Ok((source, identity, Some(broker)));
    }
    let cache = Cache::new(private.path());
    if resolved.credentials.expiry().is_some() {
        // The first tokens need no new AssumeRole; a failure only costs speed.
        let _ = cache.put(role.as_ref(), &resolved.credentials);
    }
    // helm does not inherit the agent's keys (nor gets the connection's).
    let base = resolved.base_from_connection.clone().or_else(|| credentials::environment_keys(env));
    let external_id = role.as_ref().and_then(|r| r.external_id.as_deref());
    cache.hand_over(base.as_ref(), external_id).context("cannot write the exec entry's credentials")?;
    Ok((source, identity, None))
}

fn other_source(env: &Env, target: &Target) -> anyhow::Result<Source> {
    Ok(match target {
        Target::ServiceConnection(endpoint) => Source::ServiceConnection(endpoint.clone()),
        Target::File(path) => Source::File(path.clone()),
        Target::InCluster => kubeconfig::in_cluster(env)?,
        Target::Eks { .. } => unreachable!("EKS is handled by reach_cluster"),
    })
}

/// One request to `/version`: a refusal becomes the access-entry message.
async fn preflight(
    agent: &Agent,
    kubeconfig: &Path,
    hidden: &[String],
    identity: &str,
    target: &Target,
) -> anyhow::Result<()> {
    let cluster = target_name(target);
    match kubeconfig::check_access(kubeconfig, hidden)
        .await
        .with_context(|| format!("preflight of cluster {cluster}"))?
    {
        Access::Allowed(version) => {
            agent.line(&format!("Cluster {cluster} lets {identity} in (server {version})"));
            Ok(())
        }
        Access::Denied(code) if matches!(target, Target::Eks { .. }) => anyhow::bail!(
            "{identity} is not allowed into cluster {cluster} (HTTP {code}): add an access entry (or an aws-auth mapping) for it"
        ),
        Access::Denied(code) => anyhow::bail!("{identity} is not allowed into cluster {cluster} (HTTP {code})"),
    }
}

/// After a failed helm run: whether the cluster now refuses us, as when an
/// access entry is removed during the deploy. helm's own error hides it or
/// only hints at it: "Unauthorized" at best, and waiting for a Deployment,
/// helm 4 waits out its timeout and reports the Deployment "not ready".
async fn refused_now(kubeconfig: &Path, hidden: &[String], identity: &str, target: &Target) -> Option<String> {
    let Ok(Access::Denied(code)) = kubeconfig::check_access(kubeconfig, hidden).await else { return None };
    let cluster = target_name(target);
    let why = if matches!(target, Target::Eks { .. }) {
        "its access entry (or aws-auth mapping) was removed or changed during the deploy"
    } else {
        "its credentials were revoked during the deploy"
    };
    Some(format!("cluster {cluster} stopped letting {identity} in (HTTP {code}): {why}"))
}

fn target_name(target: &Target) -> String {
    match target {
        Target::Eks { name, region, .. } => format!("{name} ({region})"),
        Target::ServiceConnection(_) => "of the service connection".into(),
        Target::File(path) => format!("of {}", path.display()),
        Target::InCluster => "of the agent".into(),
    }
}

async fn helm_version(agent: &Agent, helm: &Helm, cancel: &Cancellation) -> anyhow::Result<Major> {
    let out = helm.run(agent, &helm::args::version_args(), None, Stdout::Keep, cancel).await?;
    let major = Major::parse(&out.stdout)?;
    agent.line(&format!("Helm {}", out.stdout.trim()));
    Ok(major)
}

/// `helm repo add` or `helm registry login`, passwords on stdin.
async fn log_in(agent: &Agent, helm: &Helm, params: &Params, cancel: &Cancellation) -> anyhow::Result<()> {
    if let Some(repo) = &params.repository {
        let user = repo.login.as_ref().map(|(user, _)| user.as_str());
        let args = helm::args::repo_add_args(&repo.name, &repo.url, user);
        helm.run(agent, &args, repo.login.as_ref().map(|(_, p)| p), Stdout::Show, cancel).await?;
    }
    if let Some((host, user, password)) = &params.registry_login {
        let args = helm::args::registry_login_args(host, user);
        helm.run(agent, &args, Some(password), Stdout::Show, cancel).await?;
    }
    Ok(())
}

async fn upgrade(
    agent: &Agent,
    helm: &Helm,
    major: Major,
    params: &Params,
    cancel: &Cancellation,
) -> Result<(), helm::runner::Error> {
    agent.section(&format!("helm upgrade {}", params.upgrade.release));
    let args = helm::args::upgrade_args(major, &params.upgrade);
    helm.run(agent, &args, None, Stdout::Show, cancel).await.map(drop)
}

async fn read_release(agent: &Agent, helm: &Helm, params: &Params, cancel: &Cancellation) -> anyhow::Result<Release> {
    let args = helm::args::status_args(&params.upgrade.release, &params.upgrade.namespace);
    let out = helm.run(agent, &args, None, Stdout::Keep, cancel).await?;
    Ok(Release::from_json(&out.stdout)?)
}

fn set_outputs(agent: &Agent, release: &Release) {
    agent.set_variable("releaseRevision", &release.revision.to_string(), output());
    agent.set_variable("releaseStatus", &release.status, output());
    agent.set_variable("releaseNamespace", &release.namespace, output());
}

/// After a failed upgrade: the release's status and history, whether the
/// rollback worked, and the error naming what failed.
async fn explain_failure(
    agent: &Agent,
    helm: &Helm,
    params: &Params,
    cancel: &Cancellation,
    error: helm::runner::Error,
) -> anyhow::Error {
    if matches!(error, helm::runner::Error::Canceled { .. }) || cancel.is_cancelled() {
        return Canceled.into();
    }
    let (release, namespace) = (&params.upgrade.release, &params.upgrade.namespace);
    agent.group(&format!("Release {namespace}/{release} after the failure"));
    let history = helm::args::history_args(release, namespace, 5);
    let _ = helm.run(agent, &history, None, Stdout::Show, cancel).await;
    let state = read_release(agent, helm, params, cancel).await.ok();
    agent.end_group();
    if let Some(release) = &state {
        set_outputs(agent, release);
    }
    let rollback = match (&state, params.upgrade.atomic) {
        (_, false) => String::new(),
        (Some(r), true) if r.status == "deployed" => format!("; rolled back: revision {} is deployed", r.revision),
        (Some(r), true) => format!("; the rollback did not succeed: revision {} is {}", r.revision, r.status),
        (None, true) => "; the failed first install was removed".into(),
    };
    let locked =
        error.stderr().iter().any(|l| l.contains("another operation (install/upgrade/rollback) is in progress"));
    let pending = state.as_ref().map(|r| r.status.as_str()).filter(|s| s.starts_with("pending-"));
    let fix = unlock_hint(release, namespace, pending, locked);
    anyhow::Error::from(error).context(format!("helm upgrade of {namespace}/{release} failed{rollback}{fix}"))
}

/// How to free a release that a helm run which did not finish (killed, or
/// an earlier run's) left `pending-*`; helm refuses every later operation.
fn unlock_hint(release: &str, namespace: &str, pending: Option<&str>, locked: bool) -> String {
    let unlock = match (pending, locked) {
        (Some("pending-install"), _) => format!("`helm uninstall {release} -n {namespace}`"),
        (Some(_), _) | (None, true) => {
            format!("`helm rollback {release} -n {namespace}` (see `helm history` above for the revision)")
        }
        (None, false) => return String::new(),
    };
    let status = pending.map(|s| format!(" {s}")).unwrap_or_default();
    format!("; the release is left{status} by a helm run that did not finish: run {unlock}, then run this step again")
}

/// The `arguments` input with `--set` values reduced to their keys.
fn extra_arguments(text: Option<&str>) -> String {
    match text.map(helm::words::split) {
        None => String::new(),
        Some(Ok(args)) => helm::words::shown(&args),
        Some(Err(_)) => "(cannot be read: see the error)".into(),
    }
}

/// Shows every input (never a secret). The destructuring is exhaustive on
/// purpose: a renamed or removed input in task.json breaks the build here.
fn describe(agent: &Agent, inputs: &Inputs) {
    let Inputs {
        connection_type,
        cluster_name,
        kubernetes_service_connection,
        kubeconfig,
        aws_credentials,
        region_name,
        assume_role_arn,
        external_id,
        role_session_name,
        session_duration_seconds,
        namespace,
        create_namespace,
        chart_type,
        chart_name,
        chart_path,
        chart_version,
        release_name,
        value_file,
        override_values,
        override_values_string,
        helm_repo_name,
        helm_repo_url,
        helm_repo_username,
        helm_repo_password,
        install,
        wait_for_execution,
        timeout,
        atomic,
        arguments,
        helm_path,
    } = inputs;
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let set_keys = |lines: &Vec<String>| {
        lines.iter().map(|l| l.split('=').next().unwrap_or_default()).collect::<Vec<_>>().join(", ")
    };
    show_plan(
        agent,
        "MulticlusterHelm: inputs",
        &[
            ("Cluster", connection_type.as_str().to_string()),
            ("EKS cluster", shown(cluster_name)),
            (
                "Kubernetes service connection",
                kubernetes_service_connection.as_ref().map(|_| "yes".to_string()).unwrap_or_default(),
            ),
            ("Kubeconfig", path(kubeconfig)),
            ("AWS credentials", aws_credentials.as_ref().map(|_| "service connection".to_string()).unwrap_or_default()),
            ("Region", shown(region_name)),
            ("Role to assume", shown(assume_role_arn)),
            ("External ID", external_id.as_ref().map(|_| "(set)".to_string()).unwrap_or_default()),
            ("Role session name", shown(role_session_name)),
            ("Session duration (s)", shown(session_duration_seconds)),
            ("Namespace", namespace.clone()),
            ("Create namespace", create_namespace.to_string()),
            ("Chart type", chart_type.as_str().to_string()),
            ("Chart", shown(chart_name)),
            ("Chart path", path(chart_path)),
            ("Chart version", shown(chart_version)),
            ("Release", release_name.clone()),
            ("Values files", value_file.join(", ")),
            ("Set", set_keys(override_values)),
            ("Set string", set_keys(override_values_string)),
            ("Repository", shown(helm_repo_name)),
            ("Repository URL", shown(helm_repo_url)),
            ("Repository user", shown(helm_repo_username)),
            ("Repository password", helm_repo_password.as_ref().map(|_| "(set)".to_string()).unwrap_or_default()),
            ("Install", install.to_string()),
            ("Wait", wait_for_execution.to_string()),
            ("Timeout", shown(timeout)),
            ("Roll back on failure", atomic.to_string()),
            ("Extra arguments", extra_arguments(arguments.as_deref())),
            ("Helm", shown(helm_path)),
        ],
    );
}
