//! deploy/agent-image/start.sh: shellcheck, and runs against a fake Azure
//! DevOps organisation on 127.0.0.1 that serves the agent package API, a
//! package whose config.sh and run.sh record their calls and write and read the
//! files the real agent does, and the registration calls those make. A pod of
//! the chart is played by three processes with their own directories, as its
//! containers have: `register` (init container), `run` (the agent's container)
//! and `deregister` (the native sidecar), sharing only the pod's volumes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
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
    /// Registered agents by id.
    agents: BTreeMap<u32, String>,
    next_id: u32,
    /// Registration answers without OAuth data, as servers without the agents'
    /// key exchange give (config.sh then keeps the PAT as the agent's credentials).
    no_oauth: bool,
    job_running: bool,
    refused_removals: u32,
}

impl State {
    fn registered(&self) -> BTreeSet<String> {
        self.agents.values().cloned().collect()
    }
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
    let mut state = state.lock().unwrap();
    const AGENTS: &str = "/org/_apis/distributedtask/pools/1/agents";
    match (method, path) {
        ("GET", "/org/_apis/distributedtask/packages/agent") if query == "platform=linux-x64&top=1" => {
            let url = format!("{base}/downloads/vsts-agent-linux-x64-9.9.9.tar.gz");
            let json = serde_json::json!({"count": 1, "value": [{"type": "agent", "platform": "linux-x64", "downloadUrl": url}]});
            ("200 OK", json.to_string().into_bytes())
        }
        ("POST", AGENTS) => {
            let name = query.strip_prefix("name=").unwrap_or_default().to_string();
            state.next_id += 1;
            let id = 6 + state.next_id;
            state.agents.insert(id, name.clone());
            let mut agent = serde_json::json!({"id": id, "name": name});
            if !state.no_oauth {
                agent["authorization"] = serde_json::json!({
                    "clientId": "00000000-0000-0000-0000-0000000000c1",
                    "authorizationUrl": format!("{base}/oauth2/token"),
                });
            }
            ("200 OK", agent.to_string().into_bytes())
        }
        ("DELETE", p) if p.starts_with(AGENTS) && query == "api-version=7.1" => {
            let id = p[AGENTS.len()..].strip_prefix('/').and_then(|id| id.parse::<u32>().ok());
            match id {
                Some(id) if state.agents.contains_key(&id) && state.job_running => {
                    state.refused_removals += 1;
                    ("409 Conflict", b"{\"message\":\"the agent is running a job\"}".to_vec())
                }
                Some(id) if state.agents.remove(&id).is_some() => ("204 No Content", vec![]),
                _ => ("404 Not Found", b"{}".to_vec()),
            }
        }
        _ => ("404 Not Found", b"{}".to_vec()),
    }
}

const CONFIG_SH: &str = r#"#!/usr/bin/env bash
# Stands in for the agent's config.sh: records its call, registers the agent at
# the organisation with the PAT from VSTS_AGENT_INPUT_TOKEN and writes what the
# real one writes next to itself: .agent (the settings, with the agent's and
# the pool's id), .credentials (OAuth when the server offers it, else the PAT)
# and .credentials_rsaparams (the agent's key).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
printf 'config.sh %s\n' "$*" >>"$here/calls.log"
[[ -n "${VSTS_AGENT_INPUT_TOKEN:-}" ]] && echo 'config.sh got the token in its environment' >>"$here/calls.log"
while (($#)); do
    case "$1" in
        --url) url="$2"; shift ;;
        --agent) name="$2"; shift ;;
        --work) work="$2"; shift ;;
    esac
    shift
done
answer="$(printf 'user = ":%s"\n' "$VSTS_AGENT_INPUT_TOKEN" |
    curl -fsS --config - -X POST "$url/_apis/distributedtask/pools/1/agents?name=$name")"
jq -n --argjson id "$(jq .id <<<"$answer")" --arg name "$name" --arg url "$url" --arg work "$work" \
    '{agentId: $id, agentName: $name, poolId: 1, poolName: "k8s-agents", serverUrl: $url, workFolder: $work}' >"$here/.agent"
if jq -e .authorization <<<"$answer" >/dev/null; then
    jq '{scheme: "OAuth", data: {clientId: .authorization.clientId, authorizationUrl: .authorization.authorizationUrl}}' \
        <<<"$answer" >"$here/.credentials"
    echo '{"d": "agent-private-key"}' >"$here/.credentials_rsaparams"
    chmod 600 "$here/.credentials_rsaparams"
else
    jq -n --arg token "$VSTS_AGENT_INPUT_TOKEN" '{scheme: "PAT", data: {token: $token}}' >"$here/.credentials"
fi
"#;

const RUN_SH: &str = r#"#!/usr/bin/env bash
# Stands in for the agent's run.sh: refuses to run unconfigured, as the real
# agent does, records its call and environment, and "runs a job" until the test
# writes job-done.
here="$(cd "$(dirname "$0")" && pwd)"
printf 'run.sh %s\n' "$*" >>"$here/calls.log"
for file in .agent .credentials .credentials_rsaparams; do
    [[ -s "$here/$file" ]] || { echo "run.sh: not configured ($file)" >>"$here/calls.log"; exit 1; }
done
echo "run.sh runs agent $(jq -r .agentId "$here/.agent") with $(jq -r .scheme "$here/.credentials") credentials" >>"$here/calls.log"
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

/// One pod of the chart: the PAT Secret's file, the two emptyDir volumes
/// (handover: register, agent and sidecar; registration: register and sidecar)
/// and each container's own agent directory.
struct Pod {
    dir: tempfile::TempDir,
    org_url: String,
}

impl Pod {
    fn new(org: &FakeOrganisation, pat: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["secret", "handover", "registration", "register", "agent", "sidecar"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let token = dir.path().join("secret/token");
        std::fs::write(&token, format!("{pat}\n")).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o400)).unwrap();
        Self { dir, org_url: org.url.clone() }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// `start.sh ROLE ARGS` as the chart's container `home` runs it: the
    /// agent's container gets neither the token file nor the registration volume.
    fn start(&self, home: &str, role: &str, args: &[&str], env: &[(&str, &str)]) -> Container {
        let output = self.path(&format!("{home}.log"));
        let log = std::fs::File::create(&output).unwrap();
        let mut command = Command::new("bash");
        command
            .arg(start_sh())
            .arg(role)
            .args(args)
            .env_remove("AZP_TOKEN")
            .env_remove("AZP_TOKEN_FILE")
            .env("AZP_URL", &self.org_url)
            .env("AZP_POOL", "k8s-agents")
            .env("AZP_AGENT_NAME", "agent-1")
            .env("AZP_HOME", self.path(home))
            .env("AZP_HANDOVER_DIR", self.path("handover"))
            .env("AZP_AGENT_PLATFORM", "linux-x64")
            .env("AZP_REMOVE_RETRY_SECONDS", "0.1");
        if home != "agent" {
            command
                .env("AZP_TOKEN_FILE", self.path("secret/token"))
                .env("AZP_REGISTRATION_DIR", self.path("registration"));
        }
        let child = command
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Container { child, output }
    }

    /// What config.sh and run.sh recorded, in every container.
    fn calls(&self) -> String {
        ["register", "agent"]
            .iter()
            .map(|home| std::fs::read_to_string(self.path(home).join("calls.log")).unwrap_or_default())
            .collect()
    }

    fn output(&self) -> String {
        ["register", "agent", "sidecar"]
            .iter()
            .map(|home| {
                format!(
                    "--- {home}\n{}",
                    std::fs::read_to_string(self.path(&format!("{home}.log"))).unwrap_or_default()
                )
            })
            .collect()
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
        std::fs::write(self.path("agent/job-done"), "").unwrap();
    }

    /// Waits for a container to end; its exit code.
    fn wait(&self, container: &mut Container) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = container.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = container.child.kill();
                panic!("start.sh did not end\ncalls:\n{}\noutput:\n{}", self.calls(), self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Files under the agent container's view (its own directory and the
    /// handover volume) whose content holds `secret`.
    fn agent_files_holding(&self, secret: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for root in [self.path("agent"), self.path("handover")] {
            files_holding(&root, secret, &mut found);
        }
        found
    }
}

fn files_holding(dir: &Path, secret: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_holding(&path, secret, found);
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(secret.len()).any(|w| w == secret.as_bytes())) {
            found.push(path);
        }
    }
}

struct Container {
    child: Child,
    output: PathBuf,
}

impl Container {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
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

/// A pod of a run-once agent against a new fake organisation: registered by
/// its init container, then the agent and the sidecar started, once the agent runs.
fn running_once_pod() -> (String, FakeOrganisation, Pod, Container, Container) {
    let pat = random_pat();
    let org = FakeOrganisation::start(&pat, package());
    let pod = Pod::new(&org, &pat);
    let mut register = pod.start("register", "register", &[], &[]);
    assert_eq!(pod.wait(&mut register), Some(0), "{}", pod.output());
    let sidecar = pod.start("sidecar", "deregister", &[], &[]);
    let agent = pod.start("agent", "run", &["--once"], &[]);
    pod.wait_until("the agent to run", || pod.calls().contains("run.sh runs agent"));
    (pat, org, pod, agent, sidecar)
}

#[test]
fn run_once_agent_runs_without_the_pat_and_its_sidecar_removes_the_registration() {
    let (pat, org, pod, mut agent, mut sidecar) = running_once_pod();
    assert_eq!(org.state().registered(), BTreeSet::from(["agent-1".to_string()]));
    assert!(pod.calls().contains("run.sh runs agent 7 with OAuth credentials"), "{}", pod.calls());

    // While the agent runs, its container holds no PAT: in no file it can
    // read, not in its environment, not in any process's arguments or environment.
    assert_eq!(pod.agent_files_holding(&pat), Vec::<PathBuf>::new());
    assert_eq!(processes_holding(&pat), Vec::<String>::new());
    pod.wait_until("run.env", || std::fs::read_to_string(pod.path("agent/run.env")).is_ok_and(|e| e.contains("PATH=")));
    let run_env = std::fs::read_to_string(pod.path("agent/run.env")).unwrap();
    for leak in [pat.as_str(), "VSTS_AGENT_INPUT_TOKEN", "AZP_TOKEN", "/secret/", "AZP_REGISTRATION_DIR"] {
        assert!(!run_env.contains(leak), "the agent's environment holds {leak}: {run_env}");
    }
    assert!(run_env.contains("VSO_AGENT_IGNORE=AZP_URL,"), "our variables are no capabilities");
    assert!(!pod.path("agent/.token").exists());

    // The job ends, run.sh --once exits, the kubelet then stops the sidecar,
    // which removes the registration with the PAT.
    pod.finish_job();
    assert_eq!(pod.wait(&mut agent), Some(0), "{}", pod.output());
    assert_eq!(org.state().registered().len(), 1, "registered until the sidecar is stopped");
    sidecar.signal(libc::SIGTERM);
    assert_eq!(pod.wait(&mut sidecar), Some(0), "{}", pod.output());
    assert!(org.state().registered().is_empty(), "the registration is removed");
    assert!(sidecar.output().contains("removed agent agent-1"), "{}", sidecar.output());

    let calls = pod.calls();
    assert_registration_call(&calls, &org);
    assert!(calls.lines().any(|l| l == "run.sh --once"), "{calls}");
    let requests = org.state().requests.clone();
    assert_eq!(
        requests[0], "GET /org/_apis/distributedtask/packages/agent?platform=linux-x64&top=1 pat",
        "{requests:?}"
    );
    assert_eq!(requests[1], "GET /downloads/vsts-agent-linux-x64-9.9.9.tar.gz none", "no PAT to the download host");
    assert_eq!(
        requests.iter().filter(|r| r.starts_with("GET /downloads/")).count(),
        1,
        "the agent's container unpacks the package register downloaded: {requests:?}"
    );
    assert_eq!(requests.last().unwrap(), "DELETE /org/_apis/distributedtask/pools/1/agents/7?api-version=7.1 pat");
    assert!(!pod.output().contains(&pat), "the PAT is never printed");
}

#[test]
fn term_during_a_job_removes_the_registration_once_the_job_ends_then_stops_the_agent() {
    let (pat, org, pod, mut agent, mut sidecar) = running_once_pod();
    org.state().job_running = true;

    // The kubelet stops the agent's container first (pod deletion, scale-down).
    agent.signal(libc::SIGTERM);
    pod.wait_until("three refused removals", || org.state().refused_removals >= 3);
    assert_eq!(org.state().registered().len(), 1, "still registered while the job runs");
    assert!(!pod.calls().contains("run.sh finished"), "the running job is not killed");

    org.state().job_running = false;
    pod.finish_job();
    assert_eq!(pod.wait(&mut agent), Some(143), "ends as terminated\n{}", pod.output());
    pod.wait_until("the removal", || org.state().registered().is_empty());
    sidecar.signal(libc::SIGTERM);
    assert_eq!(pod.wait(&mut sidecar), Some(0), "{}", pod.output());
    assert!(sidecar.output().contains("retrying in 0.1s"), "{}", sidecar.output());
    let state = org.state();
    let removals = state.requests.iter().filter(|r| r.starts_with("DELETE")).count();
    assert_eq!(removals as u32, state.refused_removals + 1, "no removal after the one that succeeded");
    drop(state);
    assert!(!pod.output().contains(&pat));
}

#[test]
fn a_failed_agent_still_gets_its_registration_removed_with_bounded_retries() {
    let (_pat, org, pod, mut agent, mut sidecar) = running_once_pod();
    // The agent's container dies (OOM kill) and the organisation keeps refusing.
    agent.signal(libc::SIGKILL);
    pod.wait(&mut agent);
    pod.finish_job(); // the container's other processes die with it
    org.state().job_running = true;
    sidecar.signal(libc::SIGTERM);
    assert_eq!(pod.wait(&mut sidecar), Some(1), "{}", pod.output());
    assert_eq!(org.state().refused_removals, 5, "AZP_REMOVE_ATTEMPTS (5) once the agent has stopped");
    assert!(sidecar.output().contains("giving up removing agent agent-1 after 5 attempts"), "{}", sidecar.output());
}

#[test]
fn the_agent_container_refuses_to_start_with_the_pat() {
    let pat = random_pat();
    let org = FakeOrganisation::start(&pat, package());
    let pod = Pod::new(&org, &pat);
    let token = pod.path("secret/token");
    let mut agent = pod.start("agent", "run", &["--once"], &[("AZP_TOKEN_FILE", token.to_str().unwrap())]);
    assert_eq!(pod.wait(&mut agent), Some(1));
    assert!(agent.output().contains("the agent's container must not get the PAT"), "{}", agent.output());

    // Without a registration handed over it does not run either.
    let mut agent = pod.start("agent", "run", &["--once"], &[]);
    assert_eq!(pod.wait(&mut agent), Some(1));
    assert!(agent.output().contains("no agent in"), "{}", agent.output());
    assert!(org.state().requests.is_empty());
}

#[test]
fn register_refuses_to_hand_the_pat_over_as_the_agents_credentials() {
    let pat = random_pat();
    let org = FakeOrganisation::start(&pat, package());
    org.state().no_oauth = true;
    let pod = Pod::new(&org, &pat);
    let mut register = pod.start("register", "register", &[], &[]);
    assert_eq!(pod.wait(&mut register), Some(1), "{}", pod.output());
    assert!(register.output().contains("gave the agent no credentials of its own"), "{}", register.output());
    assert_eq!(pod.agent_files_holding(&pat), Vec::<PathBuf>::new(), "nothing handed over");
    assert!(org.state().registered().is_empty(), "the unusable registration is removed");
}

#[test]
fn template_agent_registers_from_a_pinned_package_and_stays_registered() {
    let pat = random_pat();
    let org = FakeOrganisation::start(&pat, package());
    let pinned = format!("{}/downloads/pinned.tar.gz", org.url.trim_end_matches("/org"));
    let env = [("AZP_TEMPLATE_AGENT", "true"), ("AZP_AGENT_PACKAGE_URL", pinned.as_str())];
    let pod = Pod::new(&org, &pat);
    let mut register = pod.start("register", "register", &[], &env);
    assert_eq!(pod.wait(&mut register), Some(0), "{}", pod.output());
    let calls = pod.calls();
    assert_registration_call(&calls, &org);
    assert!(!calls.contains("run.sh"), "configured, never run: {calls}");
    assert_eq!(org.state().registered(), BTreeSet::from(["agent-1".to_string()]), "the template stays registered");
    let requests = org.state().requests.clone();
    assert_eq!(requests[0], "GET /downloads/pinned.tar.gz none", "the pinned package, no API call: {requests:?}");
    assert!(std::fs::read_dir(pod.path("handover")).unwrap().next().is_none(), "nothing handed over");
}

#[test]
fn a_missing_token_file_stops_before_any_call() {
    let org = FakeOrganisation::start("unused", package());
    for role in ["register", "deregister"] {
        let out = Command::new("bash")
            .arg(start_sh())
            .arg(role)
            .env_remove("AZP_TOKEN")
            .env("AZP_URL", &org.url)
            .env("AZP_POOL", "k8s-agents")
            .env("AZP_TOKEN_FILE", "/nonexistent/token")
            .env("AZP_HOME", tempfile::tempdir().unwrap().path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the token file /nonexistent/token"));
    }
    assert!(org.state().requests.is_empty());
}
