//! Runs helm: with `KUBECONFIG` set to the step's private file, helm's cache,
//! config and data homes in the step's private directory, and nothing of the
//! agent's that could point it elsewhere (`HELM_*` but a few tuning knobs:
//! `HELM_KUBE*`, `HELM_NAMESPACE`, `HELM_REPOSITORY_CONFIG`, `HELM_PLUGINS`,
//! `HELM_DEBUG`, `HELM_DRIVER`, …) or that it has no business seeing (what
//! the caller names: the task's inputs, service connections, AWS keys).
//!
//! Output is streamed live through the untrusted-output filter: stdout as
//! plain lines, stderr as `##[warning]` lines (helm warns there; a warning
//! is no failure) and kept for the error. On cancel, helm gets SIGTERM, then
//! SIGKILL a few seconds later.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use crate::azp::untrusted::LineSplitter;
use crate::azp::{Agent, Secret};

/// How long helm has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);
/// How many stderr lines an error keeps.
const STDERR_KEPT: usize = 20;

/// Variables of the agent that would point helm at another cluster,
/// context, identity or namespace than the task's.
const REDIRECTS: &[&str] = &[
    "KUBECONFIG",
    "HELM_KUBECONTEXT",
    "HELM_KUBETOKEN",
    "HELM_KUBEAPISERVER",
    "HELM_KUBECAFILE",
    "HELM_KUBEASUSER",
    "HELM_KUBEASGROUPS",
    "HELM_KUBEINSECURE_SKIP_TLS_VERIFY",
    "HELM_KUBETLS_SERVER_NAME",
    "HELM_NAMESPACE",
    "SYSTEM_ACCESSTOKEN",
];

/// The agent's `HELM_*` variables helm keeps: tuning only. Every other one
/// (helm/pkg/cli/environment.go and cmd: HELM_*_HOME, HELM_PLUGINS,
/// HELM_REPOSITORY_CONFIG, HELM_REGISTRY_CONFIG, HELM_REPOSITORY_CACHE,
/// HELM_CONTENT_CACHE, HELM_DEBUG, HELM_DRIVER, HELM_DRIVER_SQL_CONNECTION_STRING,
/// HELM_KUBE*, …) would move helm's configuration, credentials or releases
/// out of the step, or print values.
const KEPT_HELM_VARS: &[&str] = &["HELM_MAX_HISTORY", "HELM_BURST_LIMIT", "HELM_QPS"];

/// A run of helm that failed to start, or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start {program}")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("helm {command} failed with exit code {code}{}", stderr_suffix(.stderr))]
    Failed { command: String, code: i32, stderr: Vec<String> },
    #[error("helm {command} was killed by {} (signal {signal}){}", signal_name(*.signal), kill_hint(*.signal))]
    Killed { command: String, signal: i32, stderr: Vec<String> },
    #[error("helm {command} was stopped: the step was canceled")]
    Canceled { command: String },
}

impl Error {
    /// The exit code a shell would report: helm's own, or 128 + the signal.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Failed { code, .. } => *code,
            Self::Killed { signal, .. } => 128 + signal,
            Self::Start { .. } | Self::Canceled { .. } => -1,
        }
    }

    /// helm's last stderr lines, if it ran.
    pub fn stderr(&self) -> &[String] {
        match self {
            Self::Failed { stderr, .. } | Self::Killed { stderr, .. } => stderr,
            Self::Start { .. } | Self::Canceled { .. } => &[],
        }
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

fn kill_hint(signal: i32) -> &'static str {
    // The kernel's OOM killer and a container runtime's memory limit both send SIGKILL.
    if signal == libc::SIGKILL { ": the out-of-memory killer sends this; check the agent's memory limit" } else { "" }
}

fn stderr_suffix(stderr: &[String]) -> String {
    let errors: Vec<&str> = stderr.iter().map(String::as_str).filter(|l| l.starts_with("Error")).collect();
    let shown =
        if errors.is_empty() { stderr.iter().rev().take(3).rev().map(String::as_str).collect() } else { errors };
    if shown.is_empty() { String::new() } else { format!(": {}", shown.join(" ")) }
}

/// What to do with helm's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Show it, line by line.
    Show,
    /// Keep it for the task, unshown (`-o json` holds values and Secrets).
    Keep,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Finished {
    pub code: i32,
    /// stdout, when kept.
    pub stdout: String,
    pub stderr: Vec<String>,
}

/// The helm binary and the environment it runs in.
#[derive(Debug, Clone)]
pub struct Helm {
    program: PathBuf,
    env: Vec<(String, String)>,
    removed: Vec<String>,
    /// The environment helm inherits from, before the removals: the
    /// process's own unless [`Helm::inheriting`] replaces it.
    inherited: Vec<(OsString, OsString)>,
}

impl Helm {
    /// helm with `KUBECONFIG` and its three homes under `homes` (in the
    /// step's private directory). It inherits the agent's environment minus
    /// [`REDIRECTS`] and whatever [`Helm::without`] names.
    pub fn new(program: &Path, kubeconfig: &Path, homes: &Path) -> Self {
        let home = |name: &str| homes.join(name).display().to_string();
        let env = vec![
            ("KUBECONFIG".into(), kubeconfig.display().to_string()),
            ("HELM_CACHE_HOME".into(), home("cache")),
            ("HELM_CONFIG_HOME".into(), home("config")),
            ("HELM_DATA_HOME".into(), home("data")),
            // helm's default (helm 3 and 4), named so that the login's file is the one checked.
            ("HELM_REGISTRY_CONFIG".into(), home("config/registry/config.json")),
            // client-go's discovery cache, else `~/.kube/cache`.
            ("KUBECACHEDIR".into(), home("kube-cache")),
        ];
        Self {
            program: program.into(),
            env,
            removed: REDIRECTS.iter().map(|s| s.to_string()).collect(),
            inherited: std::env::vars_os().collect(),
        }
    }

    /// Inherits from `vars` instead of the process's environment.
    pub fn inheriting(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.inherited = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self
    }

    /// Variables helm must not see (the task's `INPUT_*`).
    pub fn without(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.removed.extend(names);
        self
    }

    /// Also sets these variables for helm (the agent's proxy).
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    /// The file helm keeps registry logins in (in the step's private directory).
    pub fn registry_config(&self) -> PathBuf {
        let set = self.env.iter().find(|(name, _)| name == "HELM_REGISTRY_CONFIG");
        set.map(|(_, path)| PathBuf::from(path)).unwrap_or_default()
    }

    /// The variables set for helm (tests).
    pub fn environment(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Runs `helm <args>`, shown as a `##[command]` line, with `stdin` written
    /// to its standard input (passwords) and closed.
    pub async fn run(
        &self,
        agent: &Agent,
        args: &[String],
        stdin: Option<&Secret>,
        stdout: Stdout,
        cancel: &CancellationToken,
    ) -> Result<Finished, Error> {
        let command = args.iter().take_while(|a| !a.starts_with('-')).take(2).cloned().collect::<Vec<_>>().join(" ");
        agent.shell_command(&format!("helm {}", super::words::shown(args)));
        let mut process = tokio::process::Command::new(&self.program);
        let inherited = self.inherited.iter().filter(|(name, _)| {
            let name = name.to_string_lossy();
            let helm_setting = name.starts_with("HELM_") && !KEPT_HELM_VARS.contains(&name.as_ref());
            !helm_setting && !self.removed.iter().any(|r| *r == name)
        });
        let mut child = process
            .env_clear()
            .envs(inherited.map(|(k, v)| (k, v)))
            .args(args)
            .envs(self.environment())
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Start { program: self.program.display().to_string(), source })?;
        if let (Some(secret), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // helm reads the password line, then closes; a failed write shows in its exit code.
            let _ = pipe.write_all(format!("{}\n", secret.expose()).as_bytes()).await;
        }
        let (exited, exit) = tokio::sync::watch::channel(false);
        let out = tokio::spawn(read_lines(child.stdout.take(), agent.clone(), Sink::from(stdout), exit.clone()));
        let err = tokio::spawn(read_lines(child.stderr.take(), agent.clone(), Sink::Warnings, exit));
        let status = tokio::select! {
            status = child.wait() => status,
            () = cancel.cancelled() => {
                stop(&mut child).await;
                return Err(Error::Canceled { command });
            }
        };
        let _ = exited.send(true);
        let stdout = out.await.unwrap_or_default().join("\n");
        let stderr = err.await.unwrap_or_default();
        let kept = || stderr[stderr.len().saturating_sub(STDERR_KEPT)..].to_vec();
        let status = status.map_err(|source| Error::Start { program: self.program.display().to_string(), source })?;
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
            return Err(Error::Killed { command, signal, stderr: kept() });
        }
        let code = status.code().unwrap_or(-1);
        if code != 0 {
            return Err(Error::Failed { command, code, stderr: kept() });
        }
        Ok(Finished { code, stdout, stderr })
    }
}

/// SIGTERM, then SIGKILL after [`STOP_GRACE`].
async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        // SAFETY: signalling our own child, whose pid is valid until we wait on it.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

#[derive(Clone, Copy)]
enum Sink {
    Lines,
    Keep,
    Warnings,
}

impl From<Stdout> for Sink {
    fn from(stdout: Stdout) -> Self {
        match stdout {
            Stdout::Show => Self::Lines,
            Stdout::Keep => Self::Keep,
        }
    }
}

/// Reads a pipe to its end, showing lines as they come; returns the lines
/// (sanitised for `Lines`/`Warnings`, raw text for `Keep`). Once helm has
/// exited (`exit`), the pipe ends, unless a process helm started still holds
/// it: that one gets [`STOP_GRACE`], not the step's whole timeout.
async fn read_lines(
    pipe: Option<impl AsyncRead + Unpin>,
    agent: Agent,
    sink: Sink,
    mut exit: tokio::sync::watch::Receiver<bool>,
) -> Vec<String> {
    let Some(mut pipe) = pipe else { return Vec::new() };
    let lingering = async move {
        let _ = exit.wait_for(|exited| *exited).await;
        tokio::time::sleep(STOP_GRACE).await;
    };
    tokio::pin!(lingering);
    let mut splitter = LineSplitter::default();
    let mut raw = Vec::new();
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = tokio::select! {
            read = pipe.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            () = &mut lingering => break,
        };
        if let Sink::Keep = sink {
            raw.extend_from_slice(&buf[..n]);
            continue;
        }
        show(&agent, sink, splitter.push(&buf[..n]), &mut kept);
    }
    if let Sink::Keep = sink {
        return vec![String::from_utf8_lossy(&raw).into_owned()];
    }
    show(&agent, sink, splitter.finish().into_iter().collect(), &mut kept);
    kept
}

fn show(agent: &Agent, sink: Sink, lines: Vec<String>, kept: &mut Vec<String>) {
    match sink {
        Sink::Lines => agent.untrusted_lines(&lines),
        Sink::Warnings => lines.iter().for_each(|line| agent.warning_line(line)),
        Sink::Keep => {}
    }
    kept.extend(lines);
}

#[cfg(test)]
mod tests {
    use super::*;
    use azp_harness::Capture;

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("helm");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn helm(program: &Path) -> Helm {
        Helm::new(program, Path::new("/p/kubeconfig"), Path::new("/p/helm"))
    }

    #[tokio::test]
    async fn helm_sees_only_the_private_kubeconfig_and_homes() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(dir.path(), "env | sort");
        let capture = Capture::default();
        let agent = Agent::to_writer(capture.clone());
        let agents = [
            ("PATH", "/usr/bin:/bin"),
            ("HELM_KUBECONTEXT", "prod"),
            ("HELM_REPOSITORY_CONFIG", "/shared/repositories.yaml"),
            ("HELM_PLUGINS", "/shared/plugins"),
            ("HELM_MAX_HISTORY", "7"),
            ("INPUT_AZPKUBETESTSECRET", "pw"),
            ("SYSTEM_ACCESSTOKEN", "job-token"),
        ];
        let helm = helm(&program)
            .inheriting(agents.map(|(k, v)| (k.to_string(), v.to_string())))
            .without(["INPUT_AZPKUBETESTSECRET".to_string()]);
        helm.run(&agent, &["env".into()], None, Stdout::Show, &CancellationToken::new()).await.unwrap();
        let log = capture.text();
        for line in ["KUBECONFIG=/p/kubeconfig", "HELM_CACHE_HOME=/p/helm/cache", "HELM_CONFIG_HOME=/p/helm/config"] {
            assert!(log.contains(line), "{line}: {log}");
        }
        assert!(log.contains("HELM_DATA_HOME=/p/helm/data"), "{log}");
        assert!(log.contains("PATH="), "inherits the rest");
        assert!(!log.contains("HELM_KUBECONTEXT") && !log.contains("INPUT_AZPKUBETESTSECRET"), "{log}");
        assert!(!log.contains("job-token"), "SYSTEM_ACCESSTOKEN: {log}");
        assert!(!log.contains("/shared/"), "{log}");
        assert!(log.contains("HELM_MAX_HISTORY=7"), "tuning is kept: {log}");
    }

    #[tokio::test]
    async fn output_is_streamed_filtered_and_stderr_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(
            dir.path(),
            "echo 'Release \"web\" ##vso[task.complete result=Failed]'; echo 'WARNING: old' >&2; read pw; echo \"got ${#pw}\"",
        );
        let capture = Capture::default();
        let agent = Agent::to_writer(capture.clone());
        let args = vec!["upgrade".to_string(), "web".into()];
        let done = helm(&program)
            .run(&agent, &args, Some(&Secret::new("hunter2")), Stdout::Show, &CancellationToken::new())
            .await
            .unwrap();
        let log = capture.text();
        assert!(log.contains("##[command]helm upgrade web\n"), "{log}");
        assert!(log.contains("Release \"web\" **vso[task.complete result=Failed]\n"), "{log}");
        assert!(log.contains("##[warning]WARNING: old\n"), "{log}");
        assert!(log.contains("got 7\n"), "{log}");
        assert!(!log.contains("hunter2"));
        assert_eq!(done.stderr, vec!["WARNING: old".to_string()]);
    }

    #[tokio::test]
    async fn kept_stdout_is_not_shown_and_failures_carry_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let capture = Capture::default();
        let agent = Agent::to_writer(capture.clone());
        let program = script(dir.path(), "echo '{\"config\":{\"password\":\"s3cret\"}}'");
        let never = CancellationToken::new();
        let done = helm(&program).run(&agent, &["status".into()], None, Stdout::Keep, &never).await;
        assert!(done.unwrap().stdout.contains("s3cret"));
        assert!(!capture.text().contains("s3cret"));
        let program = script(dir.path(), "echo 'Error: UPGRADE FAILED: context deadline exceeded' >&2; exit 1");
        let err = helm(&program).run(&agent, &["upgrade".into()], None, Stdout::Show, &never).await;
        let text = err.unwrap_err().to_string();
        assert_eq!(text, "helm upgrade failed with exit code 1: Error: UPGRADE FAILED: context deadline exceeded");
    }

    #[tokio::test]
    async fn a_helm_killed_by_a_signal_is_named_and_its_orphans_do_not_hold_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let agent = Agent::to_writer(Capture::default());
        // A child that keeps helm's stdout and stderr open long after helm is gone.
        let program = script(dir.path(), "echo 'Error: oh no' >&2; sleep 30 & kill -9 $$");
        let started = std::time::Instant::now();
        let err = helm(&program).run(&agent, &["upgrade".into()], None, Stdout::Show, &CancellationToken::new()).await;
        let err = err.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        assert_eq!(err.exit_code(), 137);
        assert!(err.to_string().starts_with("helm upgrade was killed by SIGKILL (signal 9): the out-of-memory killer"));
        assert_eq!(err.stderr(), ["Error: oh no"]);
    }

    #[tokio::test]
    async fn a_canceled_run_stops_helm() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("stopped");
        let program = script(dir.path(), &format!("trap 'touch {}; exit 143' TERM; sleep 30 & wait", marker.display()));
        let cancel = CancellationToken::new();
        let agent = Agent::to_writer(Capture::default());
        let started = std::time::Instant::now();
        let helm = helm(&program);
        let args = ["upgrade".to_string()];
        let run = helm.run(&agent, &args, None, Stdout::Show, &cancel);
        let (result, _) = tokio::join!(run, async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cancel.cancel();
        });
        assert!(matches!(result, Err(Error::Canceled { .. })));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(marker.exists(), "helm got SIGTERM");
    }
}
