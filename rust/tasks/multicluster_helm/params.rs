//! Every check of MulticlusterHelm's inputs, before any network call; each
//! error names its input. The result is a plan the steps only carry out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::aws::arn::{self, RoleArn};
use crate::aws::credentials::{self, AssumeRole, Base};
use crate::aws::ecr;
use crate::azp::proxy::ProxySettings;
use crate::azp::{Env, Secret};
use crate::helm::args::oci_host;
use crate::helm::{ChartRef, Upgrade, values, words};
use crate::kube::Connection;
use crate::kube::names::check_dns1123_label;
use crate::tasks::inputs::multicluster_helm::{ChartType, Command as HelmCommand, ConnectionType, Inputs};
use crate::tasks::syntax::check_go_duration;

use super::targets::{self, FanOut};

/// An input that cannot be used, named by its task.json name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("input {input}: {message}")]
pub struct InputError {
    pub input: &'static str,
    pub message: String,
}

pub(super) fn bad(input: &'static str, message: impl Into<String>) -> InputError {
    InputError { input, message: message.into() }
}

/// Which cluster the step deploys to: an EKS cluster, which AWS describes
/// first, or a Kubernetes connection as given.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant, reason = "one per step; boxing would only add noise")]
pub enum Target {
    Eks { name: String, region: String, base: Base, role: Option<AssumeRole> },
    Kubernetes(Connection),
}

/// A chart repository to add before the upgrade.
#[derive(Debug, Clone)]
pub struct Repository {
    pub name: String,
    pub url: String,
    pub login: Option<(String, Secret)>,
}

/// What the step does with the release.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant, reason = "one per step; boxing would only add noise")]
pub enum Command {
    Upgrade {
        upgrade: Upgrade,
        repository: Option<Repository>,
        /// `helm registry login <host>` for an OCI chart with credentials.
        registry_login: Option<RegistryLogin>,
        /// Fail when helm upgrade writes to stderr, as HelmDeploy@1's `failOnStderr`.
        fail_on_stderr: bool,
        /// Free a release a killed helm left `pending-*` before upgrading.
        unlock: bool,
    },
    Uninstall {
        ignore_missing: bool,
    },
    Rollback {
        /// The previous revision when None.
        revision: Option<u64>,
    },
    Test,
    /// What `Upgrade` with these inputs would change; changes nothing.
    Diff {
        upgrade: Upgrade,
        repository: Option<Repository>,
        registry_login: Option<RegistryLogin>,
    },
}

impl Command {
    /// helm's name of the command.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Upgrade { .. } => "upgrade",
            Self::Uninstall { .. } => "uninstall",
            Self::Rollback { .. } => "rollback",
            Self::Test => "test",
            Self::Diff { .. } => "diff",
        }
    }
}

/// The plan of the step.
#[derive(Debug, Clone)]
pub struct Params {
    pub target: Target,
    pub helm: PathBuf,
    pub release: ReleaseRef,
    /// `--wait` (upgrade, uninstall, rollback).
    pub wait: bool,
    /// helm's `--timeout`, a Go duration.
    pub timeout: Option<String>,
    pub command: Command,
    /// The agent's proxy, the step's for every target ([`Plan::with_proxy`]).
    pub proxy: Option<ProxySettings>,
}

/// Which release: its name and namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRef {
    pub name: String,
    pub namespace: String,
}

/// One cluster, or several (the `targets` input).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant, reason = "one per step")]
pub enum Plan {
    One(Params),
    Many(FanOut),
}

impl Plan {
    /// Every target reaches AWS and its cluster through the agent's `proxy`.
    pub fn with_proxy(mut self, proxy: Option<ProxySettings>) -> Self {
        match &mut self {
            Plan::One(params) => params.proxy = proxy,
            Plan::Many(fan_out) => fan_out.targets.iter_mut().for_each(|t| t.params.proxy = proxy.clone()),
        }
        self
    }

    pub fn from_inputs(inputs: &Inputs, env: &Env) -> Result<Self, InputError> {
        let Some(text) = &inputs.targets else { return Params::from_inputs(inputs, env).map(Plan::One) };
        let single = [
            ("clusterName", inputs.cluster_name.is_some()),
            ("regionName", inputs.region_name.is_some()),
            ("assumeRoleArn", inputs.assume_role_arn.is_some()),
            ("externalId", inputs.external_id.is_some()),
        ];
        if let Some((input, _)) = single.iter().find(|(_, given)| *given) {
            return Err(bad(
                input,
                "cannot be used with targets: give each target its clusterName, region, assumeRoleArn and externalId",
            ));
        }
        let base = match &inputs.aws_credentials {
            Some(endpoint) => Base::Connection(endpoint.clone()),
            None => Base::DefaultChain,
        };
        let placeholder = Target::Eks { name: String::new(), region: String::new(), base, role: None };
        let step = Params::with_target(inputs, env, placeholder)?;
        let session = RoleSession {
            name: session_name(inputs, env)?,
            duration: session_duration(inputs.session_duration_seconds.as_deref())?,
        };
        Ok(Plan::Many(FanOut {
            targets: targets::parse(text, &step, &session, env)?,
            max_parallel: targets::max_parallel(inputs.max_parallel.as_deref())?,
            fail_fast: inputs.fail_fast,
            allow_partial_success: inputs.allow_partial_success,
        }))
    }
}

/// The session of every role a step assumes: its name and asked lifetime.
#[derive(Debug, Clone)]
pub struct RoleSession {
    pub name: String,
    pub duration: Duration,
}

impl Params {
    pub fn from_inputs(inputs: &Inputs, env: &Env) -> Result<Self, InputError> {
        Self::with_target(inputs, env, target(inputs, env)?)
    }

    /// The plan for `target`, from every other input.
    fn with_target(inputs: &Inputs, env: &Env, target: Target) -> Result<Self, InputError> {
        check_dns1123_label(&inputs.release_name, 53).map_err(|m| bad("releaseName", m))?;
        check_dns1123_label(&inputs.namespace, 63).map_err(|m| bad("namespace", m))?;
        let release = ReleaseRef { name: inputs.release_name.clone(), namespace: inputs.namespace.clone() };
        let timeout = inputs
            .timeout
            .clone()
            .map(|t| check_go_duration(&t).map(|()| t).map_err(|e| bad("timeout", e)))
            .transpose()?;
        let command = match inputs.command {
            HelmCommand::Upgrade => {
                let mut upgrade = upgrade(inputs, env, &release, timeout.clone())?;
                let (repository, registry_login) = logins(inputs, env, &mut upgrade.chart)?;
                Command::Upgrade {
                    upgrade,
                    repository,
                    registry_login,
                    fail_on_stderr: inputs.fail_on_stderr,
                    unlock: inputs.unlock_pending_release,
                }
            }
            HelmCommand::Uninstall => Command::Uninstall { ignore_missing: inputs.ignore_missing_release },
            HelmCommand::Rollback => Command::Rollback { revision: revision(inputs.revision.as_deref())? },
            HelmCommand::Test => Command::Test,
            HelmCommand::Diff => {
                let mut upgrade = upgrade(inputs, env, &release, timeout.clone())?;
                let (repository, registry_login) = logins(inputs, env, &mut upgrade.chart)?;
                Command::Diff { upgrade, repository, registry_login }
            }
        };
        Ok(Self {
            target,
            helm: inputs.helm_path.clone().map(PathBuf::from).unwrap_or_else(|| "helm".into()),
            release,
            wait: inputs.wait_for_execution,
            timeout,
            command,
            proxy: None,
        })
    }
}

/// A revision of `helm history`: a positive whole number.
fn revision(text: Option<&str>) -> Result<Option<u64>, InputError> {
    let Some(text) = text else { return Ok(None) };
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(bad("revision", format!("{text:?} is not a revision number (1, 2, …; see helm history)"))),
    }
}

fn target(inputs: &Inputs, env: &Env) -> Result<Target, InputError> {
    match inputs.connection_type {
        ConnectionType::AmazonEks => eks_target(inputs, env),
        ConnectionType::KubernetesServiceConnection => inputs
            .kubernetes_service_connection
            .clone()
            .map(|endpoint| Target::Kubernetes(Connection::ServiceConnection(endpoint)))
            .ok_or_else(|| bad("kubernetesServiceConnection", "a service connection is required")),
        ConnectionType::KubeconfigFile => {
            let path = inputs.kubeconfig.clone().ok_or_else(|| bad("kubeconfig", "a kubeconfig file is required"))?;
            if !path.is_file() {
                return Err(bad("kubeconfig", format!("{} does not exist", path.display())));
            }
            Ok(Target::Kubernetes(Connection::KubeconfigFile(path)))
        }
        ConnectionType::InCluster => Ok(Target::Kubernetes(Connection::InCluster)),
    }
}

fn eks_target(inputs: &Inputs, env: &Env) -> Result<Target, InputError> {
    let name = inputs.cluster_name.clone().ok_or_else(|| {
        bad("clusterName", "the EKS cluster name is required (or targets, to deploy to several clusters)")
    })?;
    check_cluster_name(&name).map_err(|m| bad("clusterName", m))?;
    let region = crate::aws::region(env, inputs.region_name.as_deref())
        .ok_or_else(|| bad("regionName", "no region given, and the agent has no AWS_REGION or AWS_DEFAULT_REGION"))?;
    arn::check_region(&region).map_err(|e| bad("regionName", e.to_string()))?;
    let base = match &inputs.aws_credentials {
        Some(endpoint) => Base::Connection(endpoint.clone()),
        None => Base::DefaultChain,
    };
    let duration = session_duration(inputs.session_duration_seconds.as_deref())?;
    let role = match &inputs.assume_role_arn {
        None => None,
        Some(text) => Some(AssumeRole {
            arn: role_in_partition(text, &region)?,
            external_id: inputs.external_id.clone().map(|id| check_external_id(&id)).transpose()?,
            session_name: session_name(inputs, env)?,
            duration,
        }),
    };
    Ok(Target::Eks { name, region, base, role })
}

/// A role ARN in the partition of the cluster's region: STS in one partition
/// cannot hand out a role of another.
pub(super) fn role_in_partition(text: &str, region: &str) -> Result<RoleArn, InputError> {
    let role = RoleArn::parse(text).map_err(|e| bad("assumeRoleArn", e.to_string()))?;
    let partition = arn::partition_of_region(region);
    if role.partition() != partition {
        return Err(bad(
            "assumeRoleArn",
            format!(
                "{} is in partition {}, but region {region} is in partition {partition}",
                role.as_str(),
                role.partition()
            ),
        ));
    }
    Ok(role)
}

/// EKS cluster names: 1–100 letters, digits, `-` and `_`, starting alphanumeric.
pub(super) fn check_cluster_name(name: &str) -> Result<(), String> {
    let ok = (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err(format!("{name:?} is not an EKS cluster name (letters, digits, '-', '_')")) }
}

pub(super) fn check_external_id(id: &str) -> Result<String, InputError> {
    let ok = (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
    if ok { Ok(id.into()) } else { Err(bad("externalId", "must be 2 to 1224 of letters, digits and +=,.@:/-_")) }
}

fn session_name(inputs: &Inputs, env: &Env) -> Result<String, InputError> {
    let name = match &inputs.role_session_name {
        Some(name) => name.clone(),
        None => format!("azp-kube-{}", env.var("BUILD_BUILDID").unwrap_or("local")),
    };
    let ok = (2..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c));
    if ok {
        Ok(name)
    } else {
        Err(bad("roleSessionName", format!("{name:?} must be 2 to 64 of letters, digits and +=,.@-_")))
    }
}

fn session_duration(text: Option<&str>) -> Result<Duration, InputError> {
    let seconds = match text {
        None => 3600,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| bad("sessionDurationSeconds", format!("{text:?} is not a number of seconds")))?,
    };
    if !(900..=43200).contains(&seconds) {
        return Err(bad("sessionDurationSeconds", format!("{seconds} is outside 900 to 43200 seconds")));
    }
    Ok(Duration::from_secs(seconds))
}

fn upgrade(inputs: &Inputs, env: &Env, release: &ReleaseRef, timeout: Option<String>) -> Result<Upgrade, InputError> {
    if inputs.reset_values && inputs.reuse_values {
        // helm would silently ignore --reuse-values.
        return Err(bad(
            "reuseValues",
            "cannot be used with resetValues: choose the chart's values or the last release's",
        ));
    }
    let set = values::set_values(&inputs.override_values).map_err(|e| bad("overrideValues", e.to_string()))?;
    let set_string =
        values::set_values(&inputs.override_values_string).map_err(|e| bad("overrideValuesString", e.to_string()))?;
    let extra = match &inputs.arguments {
        None => Vec::new(),
        Some(text) => {
            let args = words::split(text).map_err(|e| bad("arguments", e.to_string()))?;
            words::check(&args).map_err(|e| bad("arguments", e.to_string()))?;
            args
        }
    };
    Ok(Upgrade {
        release: release.name.clone(),
        chart: chart(inputs, env)?,
        version: inputs.chart_version.clone().filter(|_| inputs.chart_type != Some(ChartType::FilePath)),
        namespace: release.namespace.clone(),
        create_namespace: inputs.create_namespace,
        install: inputs.install,
        wait: inputs.wait_for_execution,
        timeout,
        atomic: inputs.atomic,
        force: inputs.force,
        reset_values: inputs.reset_values,
        reuse_values: inputs.reuse_values,
        dependency_update: inputs.update_dependency,
        value_files: value_files(&inputs.value_file, env)?,
        set,
        set_string,
        extra,
    })
}

fn chart(inputs: &Inputs, env: &Env) -> Result<ChartRef, InputError> {
    let name = || inputs.chart_name.clone().ok_or_else(|| bad("chartName", "a chart name is required"));
    match inputs.chart_type.unwrap_or(ChartType::Name) {
        ChartType::FilePath => {
            // The agent sends the repository folder for an empty path (and
            // for `.`): that is the chart when the repository is one.
            let root = || env.default_directories().map(PathBuf::from).find(|dir| dir.join("Chart.yaml").is_file());
            let path = inputs.chart_path.clone().or_else(root).ok_or_else(|| {
                bad("chartPath", "a chart path is required (the repository folder holds no Chart.yaml)")
            })?;
            let is_chart =
                path.join("Chart.yaml").is_file() || (path.is_file() && path.extension().is_some_and(|e| e == "tgz"));
            if !is_chart {
                return Err(bad(
                    "chartPath",
                    format!("{} is neither a chart folder (with Chart.yaml) nor a .tgz", path.display()),
                ));
            }
            Ok(ChartRef::Path(path))
        }
        ChartType::Name => {
            let chart = name()?;
            if chart.starts_with('-') {
                return Err(bad("chartName", "a chart name never starts with '-' (helm would read it as a flag)"));
            }
            if chart.starts_with("oci://") {
                // helm reads an oci:// name as HelmDeploy@1 passes it on.
                return oci_chart(chart);
            }
            let qualified = match (&inputs.helm_repo_name, chart.contains('/')) {
                (Some(repo), false) => format!("{repo}/{chart}"),
                _ => chart,
            };
            if qualified.contains("://") {
                return Err(bad(
                    "chartName",
                    "a chart from a repository is named repo/chart, one from a registry oci://registry/path/chart",
                ));
            }
            Ok(ChartRef::Repo(qualified))
        }
        ChartType::Oci => oci_chart(name()?),
    }
}

/// `oci://registry/path/chart` (the scheme may be left out).
fn oci_chart(chart: String) -> Result<ChartRef, InputError> {
    if chart.contains("://") && !chart.starts_with("oci://") {
        return Err(bad("chartName", format!("{chart} is not an OCI reference: write oci://registry/path/chart")));
    }
    let reference = if chart.starts_with("oci://") { chart } else { format!("oci://{chart}") };
    let host = oci_host(&reference);
    if host.starts_with('-') {
        return Err(bad("chartName", "a registry name never starts with '-' (helm would read it as a flag)"));
    }
    let path = &reference["oci://".len() + host.len()..];
    if host.is_empty()
        || path.len() < 2
        || path.contains("//")
        || path.ends_with('/')
        || path.contains(char::is_whitespace)
    {
        return Err(bad("chartName", format!("{reference} is not oci://registry/path/chart")));
    }
    ecr::Registry::parse(host).map_err(|e| bad("chartName", e.to_string()))?;
    Ok(ChartRef::Oci(reference))
}

/// Where ECR registries are reached instead of their own host (`host:port`
/// of an emulator or a mirror), as `AWS_ENDPOINT_URL` moves the AWS APIs.
pub const ECR_REGISTRY_ENDPOINT_VAR: &str = "AZP_KUBE_ECR_REGISTRY_ENDPOINT";

/// An OCI registry to log in to.
#[derive(Debug, Clone)]
pub enum RegistryLogin {
    /// `helmRepoUsername` and `helmRepoPassword`.
    Password { host: String, user: String, password: Secret },
    /// An ECR registry: a token of `ecr:GetAuthorizationToken`, asked by the
    /// deploy identity or by `role` (assumed from the base credentials).
    Ecr { registry: ecr::Registry, host: String, role: Option<AssumeRole> },
}

fn logins(
    inputs: &Inputs,
    env: &Env,
    chart: &mut ChartRef,
) -> Result<(Option<Repository>, Option<RegistryLogin>), InputError> {
    let registry = match &*chart {
        ChartRef::Oci(reference) => {
            ecr::Registry::parse(oci_host(reference)).map_err(|e| bad("chartName", e.to_string()))?
        }
        _ => None,
    };
    let registry_role = registry_role(inputs, env, registry.as_ref())?;
    let login = match (&inputs.helm_repo_username, &inputs.helm_repo_password) {
        (Some(user), Some(password)) => Some((user.clone(), password.clone())),
        (None, None) => None,
        (Some(_), None) => return Err(bad("helmRepoPassword", "a user name is given, but no password")),
        (None, Some(_)) => return Err(bad("helmRepoUsername", "a password is given, but no user name")),
    };
    match chart {
        ChartRef::Repo(_) => {
            let Some(url) = &inputs.helm_repo_url else { return Ok((None, None)) };
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(bad("helmRepoUrl", format!("{url} is not an http(s) URL")));
            }
            let name =
                inputs.helm_repo_name.clone().ok_or_else(|| bad("helmRepoName", "a repository URL needs a name"))?;
            check_dns1123_label(&name.to_ascii_lowercase(), 63).map_err(|m| bad("helmRepoName", m))?;
            Ok((Some(Repository { name, url: url.clone(), login }), None))
        }
        ChartRef::Oci(reference) => {
            let host = match (&registry, env.var(ECR_REGISTRY_ENDPOINT_VAR)) {
                (Some(registry), Some(endpoint)) => {
                    check_registry_endpoint(endpoint)?;
                    *reference = reference.replacen(registry.host(), endpoint, 1);
                    endpoint.to_string()
                }
                _ => oci_host(reference).to_string(),
            };
            let login = match (login, registry) {
                (Some(_), Some(_)) if registry_role.is_some() => {
                    return Err(bad(
                        "registryRoleArn",
                        "the task gets the ECR login itself: leave helmRepoUsername and helmRepoPassword empty",
                    ));
                }
                (Some((user, password)), _) => Some(RegistryLogin::Password { host, user, password }),
                (None, Some(registry)) => Some(RegistryLogin::Ecr { registry, host, role: registry_role }),
                (None, None) => None,
            };
            Ok((None, login))
        }
        ChartRef::Path(_) => Ok((None, None)),
    }
}

/// `registryRoleArn`: a role ARN, for an ECR chart only, in the registry's partition.
fn registry_role(
    inputs: &Inputs,
    env: &Env,
    registry: Option<&ecr::Registry>,
) -> Result<Option<AssumeRole>, InputError> {
    let Some(text) = &inputs.registry_role_arn else { return Ok(None) };
    let arn = RoleArn::parse(text).map_err(|e| bad("registryRoleArn", e.to_string()))?;
    let Some(registry) = registry else {
        return Err(bad(
            "registryRoleArn",
            "is only for a chart in Amazon ECR (chartName oci://<account>.dkr.ecr.<region>.amazonaws.com/<repository>)",
        ));
    };
    if arn.partition() != registry.partition() {
        return Err(bad(
            "registryRoleArn",
            format!(
                "{arn} is in partition {}, but registry {registry} is in {}",
                arn.partition(),
                registry.partition()
            ),
        ));
    }
    // One call (GetAuthorizationToken) needs the shortest session STS grants.
    Ok(Some(AssumeRole {
        arn,
        external_id: None,
        session_name: session_name(inputs, env)?,
        duration: credentials::SESSION_MIN,
    }))
}

/// `host[:port]` in `AZP_KUBE_ECR_REGISTRY_ENDPOINT`.
fn check_registry_endpoint(endpoint: &str) -> Result<(), InputError> {
    let ok = !endpoint.is_empty()
        && !endpoint.starts_with('-')
        && endpoint.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if ok {
        Ok(())
    } else {
        Err(bad("chartName", format!("{ECR_REGISTRY_ENDPOINT_VAR}={endpoint:?} is not host[:port]")))
    }
}

/// Values files exist; relative ones are taken from the repository folder.
pub(super) fn value_files(lines: &[String], env: &Env) -> Result<Vec<PathBuf>, InputError> {
    let base = env.default_directories().next().map(PathBuf::from);
    lines
        .iter()
        .map(|line| {
            let path = Path::new(line.trim());
            let path = match (&base, path.is_relative()) {
                (Some(base), true) => base.join(path),
                _ => path.to_path_buf(),
            };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad("valueFile", format!("{} cannot be read: {e}", path.display())))?;
            // helm reads a values file as one YAML mapping (or nothing).
            match serde_saphyr::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(_) | serde_json::Value::Null) => Ok(path),
                Ok(_) => Err(bad("valueFile", format!("{} is YAML but not a mapping of values", path.display()))),
                Err(e) => Err(bad("valueFile", format!("{} is not valid YAML: {e}", path.display()))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::inputs::multicluster_helm::SPEC;

    fn read(vars: &[(&str, &str)]) -> Result<Params, String> {
        let env = Env::from_vars(vars.iter().map(|(k, v)| (format!("INPUT_{}", k.to_uppercase()), v.to_string())));
        let reader = crate::azp::inputs::InputReader::new(&env, &SPEC);
        let inputs = Inputs::read(&reader).map_err(|e| e.to_string())?;
        Params::from_inputs(&inputs, &env).map_err(|e| e.to_string())
    }

    fn eks(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars = vec![
            ("clusterName", "dev"),
            ("regionName", "eu-west-1"),
            ("chartType", "OCI"),
            ("chartName", "r.example.com/charts/web"),
            ("releaseName", "web"),
            ("namespace", "web"),
        ];
        vars.extend_from_slice(extra);
        vars
    }

    fn error(extra: &[(&'static str, &'static str)]) -> String {
        read(&eks(extra)).expect_err("should be refused")
    }

    #[test]
    fn a_good_eks_plan() {
        let params =
            read(&eks(&[("assumeRoleArn", "arn:aws:iam::222222222222:role/deployer"), ("externalId", "ext-1")]))
                .unwrap();
        let Target::Eks { name, region, role: Some(role), .. } = &params.target else { panic!("{:?}", params.target) };
        assert_eq!((name.as_str(), region.as_str()), ("dev", "eu-west-1"));
        assert_eq!(role.session_name, "azp-kube-local");
        assert_eq!(role.duration, Duration::from_secs(3600));
        let Command::Upgrade { upgrade, .. } = &params.command else { panic!("{:?}", params.command) };
        assert_eq!(upgrade.chart, ChartRef::Oci("oci://r.example.com/charts/web".into()));
        assert_eq!(upgrade.timeout.as_deref(), Some("10m"));
    }

    #[test]
    fn the_other_commands_need_no_chart() {
        let rollback = read(&eks(&[("command", "rollback"), ("revision", "3"), ("chartName", "")])).unwrap();
        assert!(matches!(rollback.command, Command::Rollback { revision: Some(3) }), "{:?}", rollback.command);
        let previous = read(&eks(&[("command", "rollback")])).unwrap();
        assert!(matches!(previous.command, Command::Rollback { revision: None }));
        for bad in ["0", "-1", "two", "1.5"] {
            let err = read(&eks(&[("command", "rollback"), ("revision", bad)])).unwrap_err();
            assert!(err.starts_with("input revision:"), "{bad}: {err}");
        }
        let uninstall = read(&eks(&[("command", "uninstall"), ("ignoreMissingRelease", "true")])).unwrap();
        assert!(matches!(uninstall.command, Command::Uninstall { ignore_missing: true }));
        assert!(matches!(read(&eks(&[("command", "test")])).unwrap().command, Command::Test));
        // A chart input left over from an upgrade step is not read (it is not visible).
        let leftover = read(&eks(&[("command", "test"), ("chartType", "OCI"), ("chartName", "oci://-x")])).unwrap();
        assert!(matches!(leftover.command, Command::Test));
    }

    #[test]
    fn the_region_falls_back_to_aws_default_region_as_the_sdk_does() {
        let mut vars: Vec<(String, String)> = eks(&[])
            .into_iter()
            .filter(|(k, _)| *k != "regionName")
            .map(|(k, v)| (format!("INPUT_{}", k.to_uppercase()), v.to_string()))
            .collect();
        vars.push(("AWS_DEFAULT_REGION".into(), "us-east-2".into()));
        let env = Env::from_vars(vars);
        let inputs = Inputs::read(&crate::azp::inputs::InputReader::new(&env, &SPEC)).unwrap();
        let params = Params::from_inputs(&inputs, &env).unwrap();
        let Target::Eks { region, .. } = &params.target else { panic!("{:?}", params.target) };
        assert_eq!(region, "us-east-2");
    }

    #[test]
    fn every_error_names_its_input() {
        let table: &[(&[(&str, &str)], &str)] = &[
            (&[("assumeRoleArn", "arn:aws:iam::1:role/x")], "input assumeRoleArn:"),
            (&[("regionName", "Europe")], "input regionName:"),
            (&[("clusterName", "dev cluster")], "input clusterName:"),
            (&[("sessionDurationSeconds", "60")], "input sessionDurationSeconds:"),
            (&[("sessionDurationSeconds", "1h")], "input sessionDurationSeconds:"),
            (
                &[("assumeRoleArn", "arn:aws:iam::222222222222:role/x"), ("roleSessionName", "a b")],
                "input roleSessionName:",
            ),
            (&[("assumeRoleArn", "arn:aws:iam::222222222222:role/x"), ("externalId", "x")], "input externalId:"),
            (&[("releaseName", "Web_1")], "input releaseName:"),
            (&[("namespace", "-web")], "input namespace:"),
            (&[("timeout", "ten minutes")], "input timeout:"),
            (&[("overrideValues", "a=1\nnot a pair")], "input overrideValues: line 2"),
            (&[("overrideValuesString", "=x")], "input overrideValuesString: line 1"),
            (&[("arguments", "--kube-context prod")], "input arguments: --kube-context is not allowed"),
            (&[("arguments", "-in kube-system")], "input arguments: --namespace is not allowed"),
            (&[("chartType", "Name"), ("chartName", "--kube-context=prod")], "input chartName: a chart name never"),
            (&[("chartName", "--kubeconfig=/x/y")], "input chartName:"),
            (&[("arguments", "--description 'open")], "input arguments: unterminated"),
            (&[("valueFile", "/nonexistent/values.yaml")], "input valueFile:"),
            (&[("chartName", "oci://registry-only")], "input chartName:"),
            (&[("helmRepoUsername", "bob")], "input helmRepoPassword:"),
        ];
        for (extra, expected) in table {
            let err = error(extra);
            assert!(err.contains(expected), "{extra:?}: {err}");
        }
    }

    #[test]
    fn region_falls_back_to_the_agents() {
        let mut vars = eks(&[]);
        vars.retain(|(k, _)| *k != "regionName");
        let err = read(&vars).unwrap_err();
        assert!(err.contains("input regionName: no region given"), "{err}");
    }

    #[test]
    fn repository_charts_are_qualified_and_need_a_repository_name() {
        let repo = |extra: &[(&'static str, &'static str)]| {
            let mut vars = eks(&[("chartType", "Name")]);
            vars.extend_from_slice(extra);
            read(&vars)
        };
        let ok = repo(&[("chartName", "web"), ("helmRepoName", "co"), ("helmRepoUrl", "https://charts.example.com")])
            .unwrap();
        let Command::Upgrade { upgrade, repository, .. } = ok.command else { panic!("{:?}", ok.command) };
        assert_eq!(upgrade.chart, ChartRef::Repo("co/web".into()));
        assert_eq!(repository.unwrap().url, "https://charts.example.com");
        let err = repo(&[("chartName", "web"), ("helmRepoUrl", "https://c.example.com")]).unwrap_err();
        assert!(err.contains("input helmRepoName:"), "{err}");
        let err = repo(&[("chartName", "web"), ("helmRepoName", "co"), ("helmRepoUrl", "ftp://c")]).unwrap_err();
        assert!(err.contains("input helmRepoUrl:"), "{err}");
    }

    const ECR_CHART: &str = "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/charts/web";

    #[test]
    fn an_ecr_chart_by_name_gets_the_ecr_login_and_its_role() {
        let role = "arn:aws:iam::999999999999:role/charts-reader";
        let plan = read(&eks(&[("chartType", "Name"), ("chartName", ECR_CHART), ("registryRoleArn", role)])).unwrap();
        let Command::Upgrade { upgrade, registry_login, .. } = plan.command else { panic!("{:?}", plan.command) };
        assert_eq!(upgrade.chart, ChartRef::Oci(ECR_CHART.into()));
        let Some(RegistryLogin::Ecr { registry, host, role: Some(assumed) }) = registry_login else {
            panic!("{registry_login:?}")
        };
        assert_eq!((registry.account(), registry.region()), ("123456789012", "eu-west-1"));
        assert_eq!(host, "123456789012.dkr.ecr.eu-west-1.amazonaws.com");
        assert_eq!((assumed.arn.as_str(), assumed.duration), (role, credentials::SESSION_MIN));
        // Without the role: the deploy identity; with a password: the password, as before.
        let plan = read(&eks(&[("chartName", ECR_CHART)])).unwrap();
        let Command::Upgrade { registry_login: Some(RegistryLogin::Ecr { role: None, .. }), .. } = plan.command else {
            panic!("{:?}", plan.command)
        };
        let given = [("chartName", ECR_CHART), ("helmRepoUsername", "AWS"), ("helmRepoPassword", "pw")];
        let plan = read(&eks(&given)).unwrap();
        let Command::Upgrade { registry_login: Some(RegistryLogin::Password { .. }), .. } = plan.command else {
            panic!("{:?}", plan.command)
        };
    }

    #[test]
    fn an_ecr_registry_endpoint_moves_the_login_and_the_pull_not_the_token() {
        let mut vars: Vec<(String, String)> = eks(&[("chartName", ECR_CHART)])
            .into_iter()
            .map(|(k, v)| (format!("INPUT_{}", k.to_uppercase()), v.into()))
            .collect();
        vars.push((ECR_REGISTRY_ENDPOINT_VAR.into(), "127.0.0.1:5443".into()));
        let env = Env::from_vars(vars);
        let inputs = Inputs::read(&crate::azp::inputs::InputReader::new(&env, &SPEC)).unwrap();
        let plan = Params::from_inputs(&inputs, &env).unwrap();
        let Command::Upgrade { upgrade, registry_login: Some(RegistryLogin::Ecr { registry, host, .. }), .. } =
            plan.command
        else {
            panic!("{:?}", plan.command)
        };
        assert_eq!(upgrade.chart, ChartRef::Oci("oci://127.0.0.1:5443/charts/web".into()));
        assert_eq!((host.as_str(), registry.account()), ("127.0.0.1:5443", "123456789012"));
    }

    #[test]
    fn bad_ecr_inputs_name_their_input() {
        let role = "arn:aws:iam::999999999999:role/charts-reader";
        let table: &[(&[(&str, &str)], &str)] = &[
            (&[("chartName", "oci://12345678901.dkr.ecr.eu-west-1.amazonaws.com/web")], "input chartName: "),
            (&[("chartName", "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com:443/web")], "leave the port out"),
            (&[("chartType", "Name"), ("chartName", "oci://r.example.com")], "input chartName: "),
            (&[("chartType", "Name"), ("chartName", "oci://r.example.com/a b")], "input chartName: "),
            (&[("chartName", ECR_CHART), ("registryRoleArn", "charts-reader")], "input registryRoleArn: "),
            (&[("registryRoleArn", role)], "input registryRoleArn: is only for a chart in Amazon ECR"),
            (
                &[("chartName", ECR_CHART), ("registryRoleArn", "arn:aws-cn:iam::999999999999:role/r")],
                "input registryRoleArn: arn:aws-cn:iam::999999999999:role/r is in partition aws-cn",
            ),
            (
                &[
                    ("chartName", ECR_CHART),
                    ("registryRoleArn", role),
                    ("helmRepoUsername", "AWS"),
                    ("helmRepoPassword", "x"),
                ],
                "input registryRoleArn: the task gets the ECR login itself",
            ),
        ];
        for (extra, expected) in table {
            let err = error(extra);
            assert!(err.contains(expected), "{extra:?}: {err}");
        }
        let repo = [("chartType", "Name"), ("chartName", "co/web"), ("helmRepoName", "co"), ("registryRoleArn", role)];
        assert!(error(&repo).contains("input registryRoleArn: is only for"), "{}", error(&repo));
    }
}
