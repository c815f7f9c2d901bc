//! deploy/agent-image/start.sh: shellcheck, and runs against a fake Azure
//! DevOps organisation on 127.0.0.1 that serves the agent package API, a
//! package whose config.sh and run.sh record their calls, and the agent
//! registration calls those make.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::support::repo;

fn start_sh() -> PathBuf {
    repo().join("deploy/agent-image/start.sh")
}

#[test]
fn start_sh_passes_shellcheck() {
    let out =
        Command::new("shellcheck").arg(start_sh()).output().expect("shellcheck is installed (scripts/setup-deploy.sh)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// What the fake organisation saw and holds.
#[derive(Default)]
struct State {
    /// `METHOD path?query auth` per request, auth being `pat`, `none` or `wrong`.
    requests: Vec<String>,
    registered: BTreeSet<String>,
    job_running: bool,
    refused_removals: u32,
}

struct FakeOrganisation {
    url: String,
    state: Arc<Mutex<State>>,
}

impl FakeOrganisation {
    fn start(pat: &str, package: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let (shared, pat, download_base) = (state.clone(), pat.to_string(), base.clone());
        let package = Arc::new(package);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (state, pat, base, package) = (shared.clone(), pat.clone(), download_base.clone(), package.clone());
                std::thread::spawn(move || serve(stream, &state, &pat, &base, &package));
            }
        });
        Self { url: format!("{base}/org"), state }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, pat: &str, base: &str, package: &[u8]) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    let (mut auth, mut length) = ("none", 0usize);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        match name.to_ascii_lowercase().as_str() {
            "authorization" => {
                let decoded = value
                    .trim()
                    .strip_prefix("Basic ")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                auth = if decoded.split_once(':').map(|(_, p)| p) == Some(pat) { "pat" } else { "wrong" };
            }
            "content-length" => length = value.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let (status, answer) = route(state, &method, &target, auth, base, package);
    state.lock().unwrap().requests.push(format!("{method} {target} {auth}"));
    let mut stream = stream;
    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", answer.len());
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&answer));
}

fn route(
    state: &Mutex<State>,
    method: &str,
    target: &str,
    auth: &str,
    base: &str,
    package: &[u8],
) -> (&'static str, Vec<u8>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path.starts_with("/downloads/") {
        return ("200 OK", package.to_vec());
    }
    if auth != "pat" {
        return ("401 Unauthorized", b"{}".to_vec());
    }
    let name = query.strip_prefix("name=").unwrap_or_default().to_string();
    let mut state = state.lock().unwrap();
    match (method, path) {
        ("GET", "/org/_apis/distributedtask/packages/agent") if query == "platform=linux-x64&top=1" => {
            let url = format!("{base}/downloads/vsts-agent-linux-x64-9.9.9.tar.gz");
            let json = serde_json::json!({"count": 1, "value": [{"type": "agent", "platform": "linux-x64", "downloadUrl": url}]});
            ("200 OK", json.to_string().into_bytes())
        }
        ("POST", "/org/_apis/distributedtask/pools/1/agents") => {
            state.registered.insert(name);
            ("200 OK", b"{}".to_vec())
        }
        ("DELETE", "/org/_apis/distributedtask/pools/1/agents") if state.job_running => {
            state.refused_removals += 1;
            ("409 Conflict", b"{\"message\":\"the agent is running a job\"}".to_vec())
        }
        ("DELETE", "/org/_apis/distributedtask/pools/1/agents") if state.registered.remove(&name) => {
            ("204 No Content", vec![])
        }
        _ => ("404 Not Found", b"{}".to_vec()),
    }
}

const CONFIG_SH: &str = r#"#!/usr/bin/env bash
# Stands in for the agent's config.sh: records its call, registers or removes
# the agent at the organisation with the PAT from VSTS_AGENT_INPUT_TOKEN.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
printf 'config.sh %s\n' "$*" >>"$here/calls.log"
[[ -n "${VSTS_AGENT_INPUT_TOKEN:-}" ]] && echo 'config.sh got the token in its environment' >>"$here/calls.log"
call() { printf 'user = ":%s"\n' "$VSTS_AGENT_INPUT_TOKEN" | curl -fsS --config - -o /dev/null "$@"; }
if [[ "${1:-}" == remove ]]; then
    call -X DELETE "$(<"$here/.url")/_apis/distributedtask/pools/1/agents?name=$(<"$here/.agent")"
    exit 0
fi
while (($#)); do
    case "$1" in
        --url) url="$2"; shift ;;
        --agent) name="$2"; shift ;;
    esac
    shift
done
call -X POST "$url/_apis/distributedtask/pools/1/agents?name=$name"
printf '%s' "$name" >"$here/.agent"
printf '%s' "$url" >"$here/.url"
"#;

const RUN_SH: &str = r#"#!/usr/bin/env bash
# Stands in for the agent's run.sh: records its call and environment, "runs a
# job" until the test writes job-done.
here="$(cd "$(dirname "$0")" && pwd)"
printf 'run.sh %s\n' "$*" >>"$here/calls.log"
env >"$here/run.env"
while [[ ! -e "$here/job-done" ]]; do sleep 0.05; done
echo 'run.sh finished its job' >>"$here/calls.log"
"#;

const ENV_SH: &str = "#!/usr/bin/env bash\necho env.sh >>\"$(dirname \"$0\")/calls.log\"\n";

/// A tar.gz with the fake scripts, as the agent package lays them out.
fn package() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("config.sh", CONFIG_SH), ("run.sh", RUN_SH), ("env.sh", ENV_SH)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let archive = dir.path().join("agent.tar.gz");
    let status = Command::new("tar")
        .args(["-czf", archive.to_str().unwrap(), "-C", dir.path().to_str().unwrap(), "config.sh", "run.sh", "env.sh"])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(archive).unwrap()
}

/// A random PAT for one test (the helm tests' PAT is in helm's argv meanwhile).
fn random_pat() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Agent {
    child: Child,
    home: PathBuf,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(org: &FakeOrganisation, pat: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{pat}\n")).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o400)).unwrap();
        let (home, output) = (dir.path().join("agent"), dir.path().join("output.log"));
        let log = std::fs::File::create(&output).unwrap();
        let child = Command::new("bash")
            .arg(start_sh())
            .args(args)
            .env_remove("AZP_TOKEN")
            .env("AZP_URL", &org.url)
            .env("AZP_POOL", "k8s-agents")
            .env("AZP_TOKEN_FILE", &token)
            .env("AZP_AGENT_NAME", "agent-1")
            .env("AZP_HOME", &home)
            .env("AZP_AGENT_PLATFORM", "linux-x64")
            .env("AZP_REMOVE_RETRY_SECONDS", "0.1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { child, home, output, _dir: dir }
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.home.join("calls.log")).unwrap_or_default()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    fn wait_until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\ncalls:\n{}\noutput:\n{}",
                self.calls(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish_job(&self) {
        std::fs::write(self.home.join("job-done"), "").unwrap();
    }

    fn wait(mut self) -> (Option<i32>, Self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), self);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("start.sh did not end\ncalls:\n{}\noutput:\n{}", self.calls(), self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Processes whose command line or environment holds `secret`.
fn processes_holding(secret: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for file in ["cmdline", "environ"] {
            let Ok(bytes) = std::fs::read(entry.path().join(file)) else { continue };
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                found.push(format!("{pid} {file}: {}", String::from_utf8_lossy(&cmdline).replace('\0', " ")));
            }
        }
    }
    found
}

fn assert_registration_call(calls: &str, org: &FakeOrganisation) {
    let expected = format!(
        "config.sh --unattended --url {} --auth PAT --pool k8s-agents --agent agent-1 --work _work --replace --acceptTeeEula",
        org.url
    );
    assert!(calls.lines().any(|l| l == expected), "{calls}");
    assert!(calls.contains("config.sh got the token in its environment"), "{calls}");
    assert!(!calls.contains("--token"), "the PAT is never an argument: {calls}");
}

/// A run-once agent started against a new fake organisation, once it runs.
fn running_once_agent() -> (String, FakeOrganisation, Agent) {
    let pat = random_pat();
    let org = FakeOrganisation::start(&pat, package());
    let agent = Agent::start(&org, &pat, &["--once"], &[]);
    agent.wait_until("the agent to run", || agent.calls().contains("run.sh"));
    (pat, org, agent)
}

#[test]
fn run_once_agent_registers_takes_one_job_and_removes_its_registration() {
    let (pat, org, agent) = running_once_agent();
    assert_eq!(org.state().registered, BTreeSet::from(["agent-1".to_string()]));

    // While the agent runs, the PAT is in no process's arguments or environment.
    assert_eq!(processes_holding(&pat), Vec::<String>::new());
    agent.wait_until("run.env", || {
        std::fs::read_to_string(agent.home.join("run.env")).is_ok_and(|e| e.contains("PATH="))
    });
    let run_env = std::fs::read_to_string(agent.home.join("run.env")).unwrap();
    assert!(!run_env.contains(&pat) && !run_env.contains("VSTS_AGENT_INPUT_TOKEN"), "{run_env}");
    assert!(run_env.contains("VSO_AGENT_IGNORE=AZP_URL,"), "our variables are no capabilities");

    agent.finish_job();
    let (code, agent) = agent.wait();
    assert_eq!(code, Some(0), "{}", agent.output());
    let calls = agent.calls();
    assert_registration_call(&calls, &org);
    assert!(calls.lines().any(|l| l == "run.sh --once"), "{calls}");
    assert!(calls.lines().any(|l| l == "config.sh remove --unattended --auth PAT"), "{calls}");
    assert!(org.state().registered.is_empty(), "the registration is removed");

    let requests = org.state().requests.clone();
    assert_eq!(
        requests[0], "GET /org/_apis/distributedtask/packages/agent?platform=linux-x64&top=1 pat",
        "{requests:?}"
    );
    assert_eq!(requests[1], "GET /downloads/vsts-agent-linux-x64-9.9.9.tar.gz none", "no PAT to the download host");
    assert!(!agent.output().contains(&pat), "the PAT is never printed");
}

#[test]
fn term_during_a_job_retries_the_removal_until_the_job_ends() {
    let (pat, org, agent) = running_once_agent();
    org.state().job_running = true;

    unsafe { libc::kill(agent.child.id() as i32, libc::SIGTERM) };
    agent.wait_until("three refused removals", || org.state().refused_removals >= 3);
    assert_eq!(org.state().registered.len(), 1, "still registered while the job runs");
    assert!(!agent.calls().contains("run.sh finished"), "the running job is not killed");

    org.state().job_running = false;
    agent.finish_job();
    let (code, agent) = agent.wait();
    assert_eq!(code, Some(143), "ends as terminated\n{}", agent.output());
    assert!(org.state().registered.is_empty(), "removed once the job ended");
    let removals = agent.calls().lines().filter(|l| l.starts_with("config.sh remove")).count();
    assert!(removals >= 4, "retried: {}", agent.calls());
    assert!(agent.output().contains("retrying in 0.1s"), "{}", agent.output());
    assert!(!agent.output().contains(&pat));
}

#[test]
fn template_agent_registers_from_a_pinned_package_and_stays_registered() {
    let pat = random_pat();
    let org = FakeOrganisation::start(&pat, package());
    let pinned = format!("{}/downloads/pinned.tar.gz", org.url.trim_end_matches("/org"));
    let env = [("AZP_TEMPLATE_AGENT", "true"), ("AZP_AGENT_PACKAGE_URL", pinned.as_str())];
    let (code, agent) = Agent::start(&org, &pat, &[], &env).wait();
    assert_eq!(code, Some(0), "{}", agent.output());
    let calls = agent.calls();
    assert_registration_call(&calls, &org);
    assert!(
        !calls.contains("run.sh") && !calls.contains("config.sh remove"),
        "configured, never run or removed: {calls}"
    );
    assert_eq!(org.state().registered, BTreeSet::from(["agent-1".to_string()]), "the template stays registered");
    let requests = org.state().requests.clone();
    assert_eq!(requests[0], "GET /downloads/pinned.tar.gz none", "the pinned package, no API call: {requests:?}");
}

#[test]
fn a_missing_token_file_stops_before_any_call() {
    let org = FakeOrganisation::start("unused", package());
    let out = Command::new("bash")
        .arg(start_sh())
        .env_remove("AZP_TOKEN")
        .env("AZP_URL", &org.url)
        .env("AZP_POOL", "k8s-agents")
        .env("AZP_TOKEN_FILE", "/nonexistent/token")
        .env("AZP_HOME", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the token file /nonexistent/token"));
    assert!(org.state().requests.is_empty());
}
