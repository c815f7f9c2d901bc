//! Pure builders of helm's argument lists, for Helm 3 and Helm 4. No secret
//! ever goes into an argument: passwords reach helm through stdin.

use std::path::PathBuf;

/// The major version of the helm binary in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Major {
    V3,
    V4,
}

/// helm's version output that is neither 3 nor 4.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("helm reports version {0:?}; this task supports Helm 3 and Helm 4")]
pub struct UnsupportedVersion(pub String);

impl Major {
    /// Reads `helm version --template '{{.Version}}'` (`v3.17.3`, `v4.1.4`).
    pub fn parse(version: &str) -> Result<Self, UnsupportedVersion> {
        let text = version.trim();
        let major = text.trim_start_matches('v').split('.').next().unwrap_or_default();
        match major {
            "3" => Ok(Self::V3),
            "4" => Ok(Self::V4),
            _ => Err(UnsupportedVersion(text.into())),
        }
    }

    /// The flag that rolls a failed upgrade back.
    pub fn rollback_flag(self) -> &'static str {
        match self {
            Self::V3 => "--atomic",
            Self::V4 => "--rollback-on-failure",
        }
    }

    /// The flag that replaces resources (delete and re-create).
    pub fn replace_flag(self) -> &'static str {
        match self {
            Self::V3 => "--force",
            Self::V4 => "--force-replace",
        }
    }

    /// A user's flag spelled for this version: `--atomic` and
    /// `--rollback-on-failure`, `--force` and `--force-replace` are the same
    /// thing under two names.
    pub fn spell(self, arg: &str) -> String {
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (arg, None),
        };
        let flag = match flag {
            "--atomic" | "--rollback-on-failure" => self.rollback_flag(),
            "--force" | "--force-replace" => self.replace_flag(),
            other => other,
        };
        match value {
            Some(value) => format!("{flag}={value}"),
            None => flag.to_string(),
        }
    }
}

/// `helm version` asking for the bare version.
pub fn version_args() -> Vec<String> {
    strings(&["version", "--template", "{{.Version}}"])
}

/// Where the chart comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartRef {
    /// A chart folder or packaged chart on the agent.
    Path(PathBuf),
    /// `repo/chart` from a chart repository.
    Repo(String),
    /// `oci://registry/path/chart`.
    Oci(String),
}

impl ChartRef {
    pub fn as_arg(&self) -> String {
        match self {
            // A relative path that starts with `-` would read as a flag.
            Self::Path(path) if path.to_string_lossy().starts_with('-') => {
                format!("./{}", path.display())
            }
            Self::Path(path) => path.display().to_string(),
            Self::Repo(name) | Self::Oci(name) => name.clone(),
        }
    }
}

/// Everything `helm upgrade` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub release: String,
    pub chart: ChartRef,
    pub version: Option<String>,
    pub namespace: String,
    pub create_namespace: bool,
    pub install: bool,
    pub wait: bool,
    pub timeout: Option<String>,
    pub atomic: bool,
    /// Replace resources that cannot be patched.
    pub force: bool,
    pub reset_values: bool,
    pub reuse_values: bool,
    /// Fetch missing chart dependencies first.
    pub dependency_update: bool,
    pub value_files: Vec<PathBuf>,
    /// `--set` values, already escaped for strvals.
    pub set: Vec<String>,
    /// `--set-string` values, already escaped for strvals.
    pub set_string: Vec<String>,
    /// The user's extra arguments, already checked.
    pub extra: Vec<String>,
}

/// `helm upgrade [--install] <release> <chart> …`.
pub fn upgrade_args(major: Major, upgrade: &Upgrade) -> Vec<String> {
    let mut args = strings(&["upgrade"]);
    if upgrade.install {
        args.push("--install".into());
    }
    args.extend([upgrade.release.clone(), upgrade.chart.as_arg()]);
    args.extend(["--namespace".into(), upgrade.namespace.clone()]);
    if upgrade.create_namespace && upgrade.install {
        args.push("--create-namespace".into());
    }
    if let Some(version) = &upgrade.version {
        args.extend(["--version".into(), version.clone()]);
    }
    if upgrade.wait {
        args.push("--wait".into());
    }
    if let Some(timeout) = &upgrade.timeout {
        args.extend(["--timeout".into(), timeout.clone()]);
    }
    if upgrade.atomic {
        args.push(major.rollback_flag().into());
    }
    for (on, flag) in [
        (upgrade.force, major.replace_flag()),
        (upgrade.reset_values, "--reset-values"),
        (upgrade.reuse_values, "--reuse-values"),
        (upgrade.dependency_update, "--dependency-update"),
    ] {
        if on {
            args.push(flag.into());
        }
    }
    for file in &upgrade.value_files {
        args.extend(["--values".into(), file.display().to_string()]);
    }
    for value in &upgrade.set {
        args.extend(["--set".into(), value.clone()]);
    }
    for value in &upgrade.set_string {
        args.extend(["--set-string".into(), value.clone()]);
    }
    args.extend(upgrade.extra.iter().map(|arg| major.spell(arg)));
    args
}

/// `helm repo add --force-update`, the password (if any) on stdin.
pub fn repo_add_args(name: &str, url: &str, username: Option<&str>) -> Vec<String> {
    let mut args = strings(&["repo", "add", "--force-update", name, url]);
    if let Some(username) = username {
        args.extend(["--username".into(), username.into(), "--password-stdin".into()]);
    }
    args
}

/// `helm registry login`, the password on stdin.
pub fn registry_login_args(host: &str, username: &str) -> Vec<String> {
    strings(&["registry", "login", host, "--username", username, "--password-stdin"])
}

/// The registry host of an `oci://host[:port]/path` reference.
pub fn oci_host(reference: &str) -> &str {
    let rest = reference.strip_prefix("oci://").unwrap_or(reference);
    rest.split('/').next().unwrap_or(rest)
}

/// `helm status -o json`: the release, read by the task and never printed
/// (it holds the values and the rendered manifest).
pub fn status_args(release: &str, namespace: &str) -> Vec<String> {
    strings(&["status", release, "--namespace", namespace, "--output", "json"])
}

/// The last revisions of the release, as a table.
pub fn history_args(release: &str, namespace: &str, max: u32) -> Vec<String> {
    strings(&["history", release, "--namespace", namespace, "--max", &max.to_string()])
}

/// `helm history -o json`: every revision with its status, for finding the
/// last deployed one.
pub fn history_json_args(release: &str, namespace: &str) -> Vec<String> {
    strings(&["history", release, "--namespace", namespace, "--output", "json"])
}

/// `helm get manifest`: the release's resources as last applied (no hooks).
pub fn get_manifest_args(release: &str, namespace: &str) -> Vec<String> {
    strings(&["get", "manifest", release, "--namespace", namespace])
}

/// The upgrade rendered, not applied: `--install --dry-run=server` (so
/// `lookup` sees the cluster), printed as JSON; nothing waits or rolls back.
pub fn dry_run_args(major: Major, upgrade: &Upgrade) -> Vec<String> {
    let rendered = Upgrade { install: true, create_namespace: false, wait: false, atomic: false, ..upgrade.clone() };
    let mut args = upgrade_args(major, &rendered);
    args.extend(strings(&["--dry-run=server", "--output", "json"]));
    args
}

/// `helm uninstall`, waiting for the resources to go when `wait`.
pub fn uninstall_args(
    release: &str,
    namespace: &str,
    wait: bool,
    timeout: Option<&str>,
    ignore_missing: bool,
) -> Vec<String> {
    let mut args = strings(&["uninstall", release, "--namespace", namespace]);
    push_wait(&mut args, wait, timeout);
    if ignore_missing {
        args.push("--ignore-not-found".into());
    }
    args
}

/// `helm rollback` to `revision`, or to the one before the current.
pub fn rollback_args(
    release: &str,
    namespace: &str,
    revision: Option<u64>,
    wait: bool,
    timeout: Option<&str>,
) -> Vec<String> {
    let mut args = strings(&["rollback", release]);
    args.extend(revision.map(|r| r.to_string()));
    args.extend(["--namespace".into(), namespace.into()]);
    push_wait(&mut args, wait, timeout);
    args
}

/// `helm test`, printing the test pods' logs.
pub fn test_args(release: &str, namespace: &str, timeout: Option<&str>) -> Vec<String> {
    let mut args = strings(&["test", release, "--namespace", namespace, "--logs"]);
    push_wait(&mut args, false, timeout);
    args
}

fn push_wait(args: &mut Vec<String>, wait: bool, timeout: Option<&str>) {
    if wait {
        args.push("--wait".into());
    }
    if let Some(timeout) = timeout {
        args.extend(["--timeout".into(), timeout.into()]);
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade() -> Upgrade {
        Upgrade {
            release: "web".into(),
            chart: ChartRef::Path("charts/web".into()),
            version: None,
            namespace: "web".into(),
            create_namespace: true,
            install: true,
            wait: true,
            timeout: Some("10m".into()),
            atomic: true,
            force: false,
            reset_values: false,
            reuse_values: false,
            dependency_update: false,
            value_files: vec!["a.yaml".into(), "b.yaml".into()],
            set: vec!["image.ref=r/web:1".into(), "hosts=a\\,b".into()],
            set_string: vec!["build=0123".into()],
            extra: vec!["--force".into(), "--description=x".into()],
        }
    }

    #[test]
    fn versions() {
        assert_eq!(Major::parse("v3.17.3"), Ok(Major::V3));
        assert_eq!(Major::parse("v4.1.4\n"), Ok(Major::V4));
        assert!(Major::parse("v2.16.0").unwrap_err().to_string().contains("Helm 3 and Helm 4"));
        assert!(Major::parse("").is_err());
    }

    #[test]
    fn upgrade_golden_helm3() {
        assert_eq!(
            upgrade_args(Major::V3, &upgrade()).join(" "),
            "upgrade --install web charts/web --namespace web --create-namespace --wait --timeout 10m --atomic \
             --values a.yaml --values b.yaml --set image.ref=r/web:1 --set hosts=a\\,b --set-string build=0123 \
             --force --description=x"
        );
    }

    #[test]
    fn upgrade_golden_helm4() {
        assert_eq!(
            upgrade_args(Major::V4, &upgrade()).join(" "),
            "upgrade --install web charts/web --namespace web --create-namespace --wait --timeout 10m \
             --rollback-on-failure --values a.yaml --values b.yaml --set image.ref=r/web:1 --set hosts=a\\,b \
             --set-string build=0123 --force-replace --description=x"
        );
    }

    #[test]
    fn upgrade_golden_minimal_from_a_repository() {
        let minimal = Upgrade {
            chart: ChartRef::Repo("bitnami/nginx".into()),
            version: Some("1.2.3".into()),
            install: false,
            wait: false,
            timeout: None,
            atomic: false,
            value_files: vec![],
            set: vec![],
            set_string: vec![],
            extra: vec!["--rollback-on-failure".into()],
            ..upgrade()
        };
        assert_eq!(
            upgrade_args(Major::V3, &minimal).join(" "),
            "upgrade web bitnami/nginx --namespace web --version 1.2.3 --atomic"
        );
    }

    #[test]
    fn helmdeploy_s_switches_become_upgrade_flags() {
        let switches = Upgrade {
            extra: vec![],
            force: true,
            reset_values: true,
            dependency_update: true,
            value_files: vec![],
            set: vec![],
            set_string: vec![],
            ..upgrade()
        };
        let tail = |major| upgrade_args(major, &switches)[11..].join(" ");
        assert_eq!(tail(Major::V3), "--force --reset-values --dependency-update");
        assert_eq!(tail(Major::V4), "--force-replace --reset-values --dependency-update");
        let reuse = Upgrade { reuse_values: true, ..upgrade() };
        assert!(upgrade_args(Major::V3, &reuse).contains(&"--reuse-values".to_string()));
    }

    #[test]
    fn a_diff_renders_without_waiting_or_rolling_back() {
        let args = dry_run_args(Major::V4, &Upgrade { install: false, extra: vec![], ..upgrade() }).join(" ");
        assert_eq!(
            args,
            "upgrade --install web charts/web --namespace web --timeout 10m --values a.yaml --values b.yaml \
             --set image.ref=r/web:1 --set hosts=a\\,b --set-string build=0123 --dry-run=server --output json"
        );
        assert_eq!(get_manifest_args("web", "ns").join(" "), "get manifest web --namespace ns");
    }

    #[test]
    fn the_other_verbs() {
        assert_eq!(
            uninstall_args("web", "ns", true, Some("2m"), true).join(" "),
            "uninstall web --namespace ns --wait --timeout 2m --ignore-not-found"
        );
        assert_eq!(uninstall_args("web", "ns", false, None, false).join(" "), "uninstall web --namespace ns");
        assert_eq!(rollback_args("web", "ns", Some(3), true, None).join(" "), "rollback web 3 --namespace ns --wait");
        assert_eq!(
            rollback_args("web", "ns", None, false, Some("1m")).join(" "),
            "rollback web --namespace ns --timeout 1m"
        );
        assert_eq!(test_args("web", "ns", Some("5m")).join(" "), "test web --namespace ns --logs --timeout 5m");
    }

    #[test]
    fn flags_are_spelled_per_version() {
        assert_eq!(Major::V4.spell("--atomic"), "--rollback-on-failure");
        assert_eq!(Major::V3.spell("--rollback-on-failure=true"), "--atomic=true");
        assert_eq!(Major::V3.spell("--force-replace"), "--force");
        assert_eq!(Major::V4.spell("--force-conflicts"), "--force-conflicts");
    }

    #[test]
    fn repositories_and_registries_take_passwords_on_stdin() {
        assert_eq!(
            repo_add_args("co", "https://charts.example.com", Some("bob")).join(" "),
            "repo add --force-update co https://charts.example.com --username bob --password-stdin"
        );
        assert_eq!(repo_add_args("co", "https://c", None).join(" "), "repo add --force-update co https://c");
        assert_eq!(
            registry_login_args(oci_host("oci://r.example.com:5000/charts/web"), "AWS").join(" "),
            "registry login r.example.com:5000 --username AWS --password-stdin"
        );
    }

    #[test]
    fn a_chart_path_is_never_a_flag() {
        assert_eq!(ChartRef::Path("--kube-context=prod".into()).as_arg(), "./--kube-context=prod");
        assert_eq!(ChartRef::Path("/charts/web".into()).as_arg(), "/charts/web");
    }

    #[test]
    fn release_queries() {
        assert_eq!(status_args("web", "ns").join(" "), "status web --namespace ns --output json");
        assert_eq!(history_args("web", "ns", 5).join(" "), "history web --namespace ns --max 5");
        assert_eq!(history_json_args("web", "ns").join(" "), "history web --namespace ns --output json");
        assert_eq!(version_args().join(" "), "version --template {{.Version}}");
    }
}
