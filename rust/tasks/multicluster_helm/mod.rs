//! MulticlusterHelm@1: assume a role, reach an EKS cluster, run helm upgrade.
//!
//! The steps, as a user would tell them: check the inputs → get credentials
//! (and assume the role) → describe the cluster with that identity → write a
//! private kubeconfig → check that the identity is let in → run helm → report
//! the release → clean up (always: the private directory goes on success,
//! failure and cancel).

mod fan_out;
mod federation;
mod params;
mod report;
mod targets;
mod verbs;

use std::path::Path;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use self::federation::{Federation, TokenBroker};
use self::params::{Command, Params, Plan, RegistryLogin, Repository, Target};
use self::report::{Outputs, Summary};
use super::cancel::{self, Canceled};
use super::inputs::multicluster_helm::{Inputs, SPEC};
use super::{read_inputs, show_plan, shown};
use crate::aws::credentials::{self, AssumeRole, Base, Cache};
use crate::aws::{AwsTarget, ecr, eks};
use crate::azp::command::{Issue, IssueType};
use crate::azp::proxy::ProxySettings;
use crate::azp::report::Outcome;
use crate::azp::{Agent, Env, Secret};
use crate::helm::{self, Helm, Major, Release, Stdout, Upgrade};
use crate::kube::kubeconfig::{self, Access, PrivateDir};
use crate::kube::{Connection, ExecCluster};

pub fn run(env: &Env, agent: &Agent) -> anyhow::Result<Outcome> {
    let inputs = read_inputs(env, agent, &SPEC, Inputs::read)?;
    describe(agent, &inputs);
    warn_of_helmdeploy_lists(agent, &inputs);
    let plan = Plan::from_inputs(&inputs, env)?.with_proxy(super::agent_proxy(env, agent)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let cancel = cancel::on_signals()?;
        let stale = PrivateDir::remove_stale(&env.temp_dir());
        if stale > 0 {
            agent.line(&format!("Removed {stale} private folder(s) that killed steps left in the agent's temp folder"));
        }
        let private = PrivateDir::create(&env.temp_dir())?;
        let result = match &plan {
            Plan::One(params) => deploy(env, agent, params, &private, &cancel, &Outputs::of_step(agent), None).await,
            Plan::Many(fan_out) => fan_out::deploy_all(env, agent, fan_out, &private, &cancel).await,
        };
        drop(private);
        result
    })
}

/// The steps after validation, on one cluster; `private` is removed by the
/// caller. Output variables go to `outputs`. `major` is helm's version when
/// the caller already asked it (once for all targets).
async fn deploy(
    env: &Env,
    agent: &Agent,
    params: &Params,
    private: &PrivateDir,
    cancel: &CancellationToken,
    outputs: &Outputs,
    major: Option<Major>,
) -> anyhow::Result<Outcome> {
    let (connection, identity, broker, aws) =
        cancelable(cancel, reach_cluster(env, agent, params, private, outputs)).await?;
    // OIDC: the exec entry asks this process for tokens while the step runs.
    let socket = crate::aws::token_broker::socket(private.path());
    let _serving = broker.map(|b| b.serve(&socket)).transpose().context("cannot open the exec entry's token socket")?;
    let kubeconfig = kubeconfig::write(private, &connection, env)?;
    let hidden = hidden_from_helm(env, &params.target);
    let proxy = params.proxy.as_ref();
    let reach = Reach { kubeconfig: &kubeconfig, hidden: &hidden, identity: &identity, target: &params.target, proxy };
    cancelable(cancel, preflight(agent, &reach)).await?;
    let helm = Helm::new(&params.helm, &kubeconfig, &private.subdir("helm")?)
        .without(hidden.clone())
        .without(proxy.map(|_| LOWER_CASE_PROXY_VARIABLES.map(String::from)).into_iter().flatten())
        .with_env(helm_proxy_env(agent, proxy));
    let major = match major {
        Some(major) => major,
        None => helm_version(agent, &helm, cancel).await?,
    };
    let ran = match &params.command {
        Command::Upgrade { upgrade, repository, registry_login, fail_on_stderr, unlock } => {
            log_in(env, agent, &helm, &aws, repository.as_ref(), registry_login.as_ref(), cancel).await?;
            if *unlock {
                verbs::unlock(agent, &helm, params, cancel).await?;
            }
            run_upgrade(agent, &helm, major, upgrade, cancel).await.map(|stderr| (*fail_on_stderr, stderr))
        }
        Command::Uninstall { ignore_missing } => {
            let uninstalled = verbs::uninstall(agent, &helm, params, *ignore_missing, cancel).await;
            let code = uninstalled
                .as_ref()
                .err()
                .and_then(|e| e.downcast_ref::<helm::runner::Error>())
                .map_or(0, |e| e.exit_code());
            outputs.set("helmExitCode", &code.to_string());
            return match uninstalled {
                Ok(uninstalled) => Ok(report_uninstall(agent, env, params, &identity, uninstalled, outputs)),
                Err(error) => Err(on_failure(error, cancel, &reach).await),
            };
        }
        Command::Rollback { revision } => {
            verbs::rollback(agent, &helm, params, *revision, cancel).await.map(|()| (false, Vec::new()))
        }
        Command::Test => verbs::test(agent, &helm, params, cancel).await.map(|()| (false, Vec::new())),
        Command::Diff { upgrade, repository, registry_login } => {
            log_in(env, agent, &helm, &aws, repository.as_ref(), registry_login.as_ref(), cancel).await?;
            let changes = verbs::diff(agent, &helm, major, upgrade, cancel).await?;
            outputs.set("helmExitCode", "0");
            report_diff(agent, env, params, &changes, outputs);
            return Ok(Outcome::Succeeded);
        }
    };
    let code = ran.as_ref().err().map_or(0, helm::runner::Error::exit_code);
    outputs.set("helmExitCode", &code.to_string());
    let (fail_on_stderr, stderr) = match ran {
        Ok(ran) => ran,
        Err(error) => {
            let error = explain_failure(agent, &helm, params, cancel, error, outputs).await;
            return Err(on_failure(error, cancel, &reach).await);
        }
    };
    let release = read_release(agent, &helm, params, cancel).await?;
    set_outputs(outputs, &release);
    if outputs.is_step() {
        let summary = Summary { release: &release, params, cluster: &target_name(&params.target), identity: &identity };
        summary.upload(agent, &env.temp_dir());
    }
    if fail_on_stderr && !stderr.is_empty() {
        anyhow::bail!(
            "helm upgrade succeeded but wrote {} line(s) to standard error (the warnings above), and failOnStderr is true",
            stderr.len()
        );
    }
    Ok(Outcome::Succeeded)
}

/// A failed helm run's error, with the cluster's refusal when that is the
/// cause (an access entry removed during the deploy).
async fn on_failure(error: anyhow::Error, cancel: &CancellationToken, reach: &Reach<'_>) -> anyhow::Error {
    if cancel.is_cancelled() {
        return error;
    }
    match refused_now(reach).await {
        Some(refused) => error.context(refused),
        None => error,
    }
}

/// The diff in the log (Secret values hidden), as the run's summary, and
/// `hasChanges`.
fn report_diff(agent: &Agent, env: &Env, params: &Params, changes: &[helm::diff::Change], outputs: &Outputs) {
    let release = &params.release;
    let title =
        format!("Helm diff of {}/{} on cluster {}", release.namespace, release.name, target_name(&params.target));
    agent.group(&title);
    if changes.is_empty() {
        agent.line("No changes: the upgrade would leave every resource as it is");
    }
    for change in changes {
        agent.line(&format!("{}: {}", change.resource, change.kind.as_str()));
        // Chart text: never read as agent commands.
        agent.untrusted_lines(&change.diff.lines().map(str::to_string).collect::<Vec<_>>());
    }
    agent.end_group();
    outputs.set("hasChanges", if changes.is_empty() { "false" } else { "true" });
    let file = env.temp_dir().join(format!(
        "azp-kube-helm-diff-{}-{}{}-{}.md",
        release.namespace,
        release.name,
        outputs.target().map(|t| format!("-{t}")).unwrap_or_default(),
        std::process::id()
    ));
    agent.attach_summary(&file, &helm::diff::markdown(&title, changes));
}

/// Outputs and summary of an uninstall: the release as it was, now gone.
fn report_uninstall(
    agent: &Agent,
    env: &Env,
    params: &Params,
    identity: &str,
    uninstalled: verbs::Uninstalled,
    outputs: &Outputs,
) -> Outcome {
    outputs.set("releaseStatus", "uninstalled");
    outputs.set("releaseNamespace", &params.release.namespace);
    if let verbs::Uninstalled::Release(Some(before)) = uninstalled {
        outputs.set("releaseRevision", &before.revision.to_string());
        let gone = Release { status: "uninstalled".into(), ..before };
        if outputs.is_step() {
            let summary = Summary { release: &gone, params, cluster: &target_name(&params.target), identity };
            summary.upload(agent, &env.temp_dir());
        }
    }
    Outcome::Succeeded
}

/// Variables of the task that helm and the kubeconfig's exec entry do not
/// get: inputs, service connections, secret variables, the job's access
/// token (the preflight runs the exec entry too); for EKS also the
/// agent's AWS keys, which `eks-token` reads from the private directory. (A
/// user's own kubeconfig may run `aws eks get-token` with them: it keeps them.)
fn hidden_from_helm(env: &Env, target: &Target) -> Vec<String> {
    // The agent's proxy reaches helm as HTTPS_PROXY/NO_PROXY only (helm_proxy_env).
    let task_only = ["INPUT_", "ENDPOINT_", "SECRET_", "AGENT_PROXY", "AGENT_USEBASICAUTHFORPROXY"];
    let keys = if matches!(target, Target::Eks { .. }) { credentials::KEY_VARIABLES } else { &[] };
    env.names()
        .filter(|n| task_only.iter().any(|p| n.starts_with(p)) || *n == "SYSTEM_ACCESSTOKEN" || keys.contains(n))
        .map(str::to_string)
        .collect()
}

/// Runs a step unless the step is canceled first.
async fn cancelable<T>(cancel: &CancellationToken, step: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::select! {
        result = step => result,
        () = cancel.cancelled() => Err(Canceled.into()),
    }
}

/// The connection, who we are, (OIDC) the exec entry's token broker, and
/// the AWS identity an ECR registry login starts from.
type Reached = (Connection, String, Option<TokenBroker>, AwsIdentity);

/// helm's proxy variables: `HTTPS_PROXY`/`HTTP_PROXY` with the agent's
/// proxy credentials in the URL (Go's `http.ProxyFromEnvironment` takes
/// them only from there) and `NO_PROXY` from the bypass list; a bypass entry
/// that `NO_PROXY` cannot say is named in a warning.
fn helm_proxy_env(agent: &Agent, proxy: Option<&ProxySettings>) -> Vec<(String, String)> {
    let Some(proxy) = proxy else { return Vec::new() };
    let (env, unconverted) = proxy.child_env();
    if !unconverted.is_empty() {
        agent.warning_line(&format!(
            "helm connects through the agent's proxy for these Agent.ProxyBypassList entries too: NO_PROXY takes host names, not regular expressions like {}",
            unconverted.join(", ")
        ));
    }
    env.into_iter().map(|(name, value)| (name, value.expose().to_string())).collect()
}

/// The machine's own proxy variables in the spelling Go falls back to when
/// the upper-case one is empty (`NO_PROXY` of an empty bypass list): with
/// the agent's proxy, helm sees only the agent's.
const LOWER_CASE_PROXY_VARIABLES: [&str; 4] = ["https_proxy", "http_proxy", "no_proxy", "all_proxy"];

/// How the task reaches the cluster, for its own checks.
struct Reach<'a> {
    kubeconfig: &'a Path,
    hidden: &'a [String],
    identity: &'a str,
    target: &'a Target,
    proxy: Option<&'a ProxySettings>,
}

/// The step's AWS identity, for the ECR registry token.
#[derive(Debug, Clone)]
struct AwsIdentity {
    /// The base credentials (the service connection's, OIDC's as obtained,
    /// or the agent's default chain): `registryRoleArn` is assumed from them.
    base: Base,
    /// The deploy identity (after `assumeRoleArn`); None off EKS, where the
    /// base is the identity.
    deploy: Option<aws_credential_types::Credentials>,
    /// The agent's proxy, for the registry token request too.
    proxy: Option<ProxySettings>,
}

/// Credentials and cluster description (EKS), or the connection as given.
/// Returns the connection and who we are. What the kubeconfig's exec
/// entry needs (base credentials, external ID) is handed over in `private`;
/// with OIDC, it asks this process's broker instead.
async fn reach_cluster(
    env: &Env,
    agent: &Agent,
    params: &Params,
    private: &PrivateDir,
    outputs: &Outputs,
) -> anyhow::Result<Reached> {
    let (name, region, base, role) = match &params.target {
        Target::Kubernetes(connection) => {
            let aws = AwsIdentity { base: Base::DefaultChain, deploy: None, proxy: params.proxy.clone() };
            return Ok((connection.clone(), "the connection's identity".into(), None, aws));
        }
        Target::Eks { name, region, base, role } => (name, region, base, role),
    };
    agent.group("AWS identity and cluster");
    let proxy = params.proxy.as_ref();
    let target = AwsTarget { region: Some(region.clone()), endpoint_url: None, proxy: proxy.cloned() };
    let register = |obtained: &_| credentials::secret_values(obtained).for_each(|secret| agent.set_secret(secret));
    let federation = match base {
        Base::Connection(endpoint) => Federation::of(env, agent, endpoint, proxy)?,
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
    let aws = AwsIdentity { base, deploy: Some(resolved.credentials.clone()), proxy: proxy.cloned() };
    let caller = credentials::caller_identity(&resolved.config).await?;
    outputs.note_account(&caller.account);
    let identity = caller.describe();
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
    let args = super::eks_token::exec_args(&cluster.name, &cluster.region, role.as_ref(), private.path());
    if let Some(federation) = federation {
        // Nothing is handed over: the exec entry asks this process.
        let current = std::sync::Mutex::new((resolved.credentials, eks::clock(env)?));
        let (env, agent, role) = (env.clone(), agent.clone(), role.clone());
        let broker = TokenBroker { env, agent, federation, role, target, cluster: cluster.name.clone(), current };
        let exec =
            ExecCluster { name: cluster.name, server: cluster.endpoint, ca_data: cluster.ca_data, program, args };
        return Ok((Connection::Exec(exec), identity, Some(broker), aws));
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
    if let Some(proxy) = proxy {
        cache.hand_over_proxy(&proxy.handover()).context("cannot write the exec entry's proxy settings")?;
    }
    let exec = ExecCluster { name: cluster.name, server: cluster.endpoint, ca_data: cluster.ca_data, program, args };
    Ok((Connection::Exec(exec), identity, None, aws))
}

/// One request to `/version`: a refusal becomes the access-entry message.
async fn preflight(agent: &Agent, reach: &Reach<'_>) -> anyhow::Result<()> {
    let Reach { identity, target, .. } = reach;
    let cluster = target_name(target);
    match kubeconfig::check_access(reach.kubeconfig, reach.hidden, reach.proxy)
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
async fn refused_now(reach: &Reach<'_>) -> Option<String> {
    let Reach { identity, target, .. } = reach;
    let Ok(Access::Denied(code)) = kubeconfig::check_access(reach.kubeconfig, reach.hidden, reach.proxy).await else {
        return None;
    };
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
        Target::Kubernetes(Connection::ServiceConnection(_)) => "of the service connection".into(),
        Target::Kubernetes(Connection::KubeconfigFile(path)) => format!("of {}", path.display()),
        Target::Kubernetes(Connection::InCluster) => "of the agent".into(),
        Target::Kubernetes(Connection::Exec(cluster)) => cluster.name.clone(),
    }
}

async fn helm_version(agent: &Agent, helm: &Helm, cancel: &CancellationToken) -> anyhow::Result<Major> {
    let out = helm.run(agent, &helm::args::version_args(), None, Stdout::Keep, cancel).await?;
    let major = Major::parse(&out.stdout)?;
    agent.line(&format!("Helm {}", out.stdout.trim()));
    Ok(major)
}

/// `helm repo add` or `helm registry login` (for ECR with a token the step
/// gets first), passwords on stdin.
async fn log_in(
    env: &Env,
    agent: &Agent,
    helm: &Helm,
    aws: &AwsIdentity,
    repository: Option<&Repository>,
    registry_login: Option<&RegistryLogin>,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    if let Some(repo) = repository {
        let user = repo.login.as_ref().map(|(user, _)| user.as_str());
        let args = helm::args::repo_add_args(&repo.name, &repo.url, user);
        helm.run(agent, &args, repo.login.as_ref().map(|(_, p)| p), Stdout::Show, cancel).await?;
    }
    match registry_login {
        None => {}
        Some(RegistryLogin::Password { host, user, password }) => {
            helm::registry::login(agent, helm, host, user, password, cancel).await?;
        }
        Some(RegistryLogin::Ecr { registry, host, role }) => {
            let login = cancelable(cancel, ecr_login(env, agent, aws, registry, role.as_ref())).await?;
            if host != registry.host() {
                agent.line(&format!(
                    "ECR registry {registry} is reached at {host} ({})",
                    params::ECR_REGISTRY_ENDPOINT_VAR
                ));
            }
            helm::registry::login(agent, helm, host, &login.user, &Secret::new(login.password), cancel).await?;
        }
    }
    Ok(())
}

/// The ECR registry's login, from `ecr:GetAuthorizationToken` in the
/// registry's region: by the deploy identity, or by `role` assumed from
/// the base credentials.
async fn ecr_login(
    env: &Env,
    agent: &Agent,
    aws: &AwsIdentity,
    registry: &ecr::Registry,
    role: Option<&AssumeRole>,
) -> anyhow::Result<ecr::Login> {
    let target = AwsTarget { region: Some(registry.region().into()), endpoint_url: None, proxy: aws.proxy.clone() };
    let register = |obtained: &_| credentials::secret_values(obtained).for_each(|secret| agent.set_secret(secret));
    let (base, asker) = match (role, &aws.deploy) {
        (Some(role), _) => (aws.base.clone(), format!("role {}", role.arn)),
        (None, Some(deploy)) => (Base::Given(deploy.clone()), "the deploy identity".into()),
        (None, None) => (aws.base.clone(), "the agent's AWS identity".into()),
    };
    let resolved = credentials::resolve(env, &target, &base, role, &register).await?;
    let login = ecr::login(&resolved.config, registry, &|secret| agent.set_secret(secret)).await?;
    agent.line(&format!("ECR registry {registry}: a 12-hour login from ecr:GetAuthorizationToken by {asker}"));
    Ok(login)
}

/// `helm upgrade`; returns what helm wrote to stderr.
async fn run_upgrade(
    agent: &Agent,
    helm: &Helm,
    major: Major,
    upgrade: &Upgrade,
    cancel: &CancellationToken,
) -> Result<Vec<String>, helm::runner::Error> {
    agent.section(&format!("helm upgrade {}", upgrade.release));
    let args = helm::args::upgrade_args(major, upgrade);
    Ok(helm.run(agent, &args, None, Stdout::Show, cancel).await?.stderr)
}

async fn read_release(
    agent: &Agent,
    helm: &Helm,
    params: &Params,
    cancel: &CancellationToken,
) -> anyhow::Result<Release> {
    let args = helm::args::status_args(&params.release.name, &params.release.namespace);
    let out = helm.run(agent, &args, None, Stdout::Keep, cancel).await?;
    Ok(Release::from_json(&out.stdout)?)
}

fn set_outputs(outputs: &Outputs, release: &Release) {
    outputs.set("releaseRevision", &release.revision.to_string());
    outputs.set("releaseStatus", &release.status);
    outputs.set("releaseNamespace", &release.namespace);
}

/// After a failed upgrade: the release's status and history, whether the
/// rollback worked, and the error naming what failed.
async fn explain_failure(
    agent: &Agent,
    helm: &Helm,
    params: &Params,
    cancel: &CancellationToken,
    error: helm::runner::Error,
    outputs: &Outputs,
) -> anyhow::Error {
    if matches!(error, helm::runner::Error::Canceled { .. }) || cancel.is_cancelled() {
        return Canceled.into();
    }
    let (release, namespace) = (&params.release.name, &params.release.namespace);
    agent.group(&format!("Release {namespace}/{release} after the failure"));
    let history = helm::args::history_args(release, namespace, 5);
    let _ = helm.run(agent, &history, None, Stdout::Show, cancel).await;
    let state = read_release(agent, helm, params, cancel).await.ok();
    agent.end_group();
    if let Some(release) = &state {
        set_outputs(outputs, release);
    }
    let atomic = matches!(&params.command, Command::Upgrade { upgrade, .. } if upgrade.atomic);
    let rollback = match (&state, atomic) {
        (_, false) => String::new(),
        (Some(r), true) if r.status == "deployed" => format!("; rolled back: revision {} is deployed", r.revision),
        (Some(r), true) => format!("; the rollback did not succeed: revision {} is {}", r.revision, r.status),
        (None, true) => "; the failed first install was removed".into(),
    };
    let locked =
        error.stderr().iter().any(|l| l.contains("another operation (install/upgrade/rollback) is in progress"));
    let pending = state.as_ref().map(|r| r.status.as_str()).filter(|s| s.starts_with("pending-"));
    let fix = unlock_hint(release, namespace, pending, locked) + &ecr_refusal_hint(params, error.stderr());
    let verb = params.command.verb();
    anyhow::Error::from(error).context(format!("helm {verb} of {namespace}/{release} failed{rollback}{fix}"))
}

/// When an ECR registry refused the pull (403): who must be let in, and how.
fn ecr_refusal_hint(params: &Params, stderr: &[String]) -> String {
    let Command::Upgrade { registry_login: Some(RegistryLogin::Ecr { registry, role, .. }), .. } = &params.command
    else {
        return String::new();
    };
    if !stderr.iter().any(|line| line.contains("403") || line.contains("denied:")) {
        return String::new();
    }
    let account = registry.account();
    match role {
        Some(role) => format!(
            "; registry {registry} refused role {}: it needs ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the chart's repository",
            role.arn
        ),
        None => format!(
            "; registry {registry} refused the deploy identity: let its account in with the repository's policy, or set registryRoleArn to a role of account {account} that may pull"
        ),
    }
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
    format!(
        "; the release is left{status} by a helm run that did not finish: run {unlock}, then run this step again \
         (or set unlockPendingRelease to let the step do it)"
    )
}

/// HelmDeploy@1 splits `overrideValues` at commas; this task does not, so a
/// migrated `a=1,b=2` would quietly set `a` to `1,b=2`.
fn warn_of_helmdeploy_lists(agent: &Agent, inputs: &Inputs) {
    for (input, lines) in
        [("overrideValues", &inputs.override_values), ("overrideValuesString", &inputs.override_values_string)]
    {
        for (number, line) in lines.iter().enumerate() {
            let Some(keys) = helm::values::helmdeploy_list_keys(line) else { continue };
            let one_per_line = keys.iter().map(|k| format!("{k}=…")).collect::<Vec<_>>().join(" / ");
            agent.log_issue(&Issue::new(
                IssueType::Warning,
                format!(
                    "{input} line {}: {} is set to everything after its '=', commas included; \
                     HelmDeploy@1's comma-separated list is one key=value per line here: {one_per_line}",
                    number + 1,
                    keys[0]
                ),
            ));
        }
    }
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
        targets,
        max_parallel,
        fail_fast,
        allow_partial_success,
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
        command,
        chart_type,
        chart_name,
        chart_path,
        chart_version,
        release_name,
        revision,
        ignore_missing_release,
        value_file,
        override_values,
        override_values_string,
        helm_repo_name,
        helm_repo_url,
        helm_repo_username,
        helm_repo_password,
        registry_role_arn,
        install,
        wait_for_execution,
        timeout,
        atomic,
        force,
        reset_values,
        reuse_values,
        update_dependency,
        fail_on_stderr,
        unlock_pending_release,
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
            ("Targets", targets.as_ref().map(|_| "(YAML, see below)".to_string()).unwrap_or_default()),
            ("Targets at once", targets.as_ref().map(|_| shown(max_parallel)).unwrap_or_default()),
            ("Stop after a failed target", targets.as_ref().map(|_| fail_fast.to_string()).unwrap_or_default()),
            ("Partial success", targets.as_ref().map(|_| allow_partial_success.to_string()).unwrap_or_default()),
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
            ("Command", command.as_str().to_string()),
            ("Chart type", chart_type.map(|c| c.as_str().to_string()).unwrap_or_default()),
            ("Chart", shown(chart_name)),
            ("Chart path", path(chart_path)),
            ("Chart version", shown(chart_version)),
            ("Release", release_name.clone()),
            ("Revision", shown(revision)),
            ("Missing release is uninstalled", ignore_missing_release.to_string()),
            ("Values files", value_file.join(", ")),
            ("Set", set_keys(override_values)),
            ("Set string", set_keys(override_values_string)),
            ("Repository", shown(helm_repo_name)),
            ("Repository URL", shown(helm_repo_url)),
            ("Repository user", shown(helm_repo_username)),
            ("Repository password", helm_repo_password.as_ref().map(|_| "(set)".to_string()).unwrap_or_default()),
            ("ECR registry role", shown(registry_role_arn)),
            ("Install", install.to_string()),
            ("Wait", wait_for_execution.to_string()),
            ("Timeout", shown(timeout)),
            ("Roll back on failure", atomic.to_string()),
            ("Force", force.to_string()),
            ("Reset values", reset_values.to_string()),
            ("Reuse values", reuse_values.to_string()),
            ("Update dependencies", update_dependency.to_string()),
            ("Fail on standard error", fail_on_stderr.to_string()),
            ("Recover a pending release", unlock_pending_release.to_string()),
            ("Extra arguments", extra_arguments(arguments.as_deref())),
            ("Helm", shown(helm_path)),
        ],
    );
}
