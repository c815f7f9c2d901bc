//! Starting a task as the agent's Node handler does.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::outcome::Outcome;
use crate::parse::mangle;

/// One input as task.json declares it (what the agent needs of it).
struct DeclaredInput {
    name: String,
    /// Other names a pipeline may use (task.json `aliases`): the server
    /// hands the task the value under `name`.
    aliases: Vec<String>,
    kind: String,
    default: Option<String>,
}

/// A task run being set up.
pub struct TaskRun {
    task_dir: PathBuf,
    declared: Vec<DeclaredInput>,
    outputs: Vec<String>,
    inputs: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    sources: Option<PathBuf>,
    temp: tempfile::TempDir,
    timeout: Duration,
}

impl TaskRun {
    /// A run of the task in `task_dir` (which holds task.json and run.js).
    pub fn new(task_dir: &Path) -> Self {
        let text = std::fs::read_to_string(task_dir.join("task.json")).expect("read task.json");
        let task: serde_json::Value = serde_json::from_str(&text).expect("task.json is JSON");
        let declared = task["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| DeclaredInput {
                name: i["name"].as_str().unwrap_or_default().to_string(),
                aliases: i["aliases"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect(),
                kind: i["type"].as_str().unwrap_or_default().to_string(),
                default: match &i["defaultValue"] {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                },
            })
            .collect();
        let outputs = task["outputVariables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["name"].as_str().map(str::to_string))
            .collect();
        Self {
            task_dir: task_dir.to_path_buf(),
            declared,
            outputs,
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
            sources: None,
            temp: tempfile::Builder::new().prefix("agent-").tempdir().expect("create the agent's temp folder"),
            timeout: Duration::from_secs(300),
        }
    }

    /// Sets an input as a pipeline's `inputs:` would.
    pub fn input(mut self, name: &str, value: &str) -> Self {
        self.inputs.insert(name.to_string(), value.to_string());
        self
    }

    /// Sets another environment variable (a service connection, `AWS_*`, …).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Sets several environment variables at once.
    pub fn envs(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    /// The agent's web proxy, as the agent gives it to a Node handler
    /// (azure-pipelines-agent v5.278.0 `ExecutionContext.cs` sets the
    /// variables, `Handler.cs` `AddVariablesToEnvironment` maps them):
    /// `Agent.ProxyUrl` as `AGENT_PROXYURL`; `Agent.ProxyUsername`; the
    /// password, a secret variable, as `SECRET_AGENT_PROXYPASSWORD` (and named
    /// in `VSTS_SECRET_VARIABLES`); the bypass list, only when not empty, as a
    /// JSON array; `Agent.UseBasicAuthForProxy` as `False` by default.
    pub fn agent_proxy(mut self, url: &str, credentials: Option<(&str, &str)>, bypass: &[&str]) -> Self {
        self.env.insert("AGENT_PROXYURL".into(), url.into());
        if let Some((user, password)) = credentials {
            self.env.insert("AGENT_PROXYUSERNAME".into(), user.into());
            self.env.insert("SECRET_AGENT_PROXYPASSWORD".into(), password.into());
            self.env.insert("VSTS_SECRET_VARIABLES".into(), r#"["Agent.ProxyPassword"]"#.into());
        }
        if !bypass.is_empty() {
            let list = serde_json::to_string(bypass).expect("a list of strings is JSON");
            self.env.insert("AGENT_PROXYBYPASSLIST".into(), list);
        }
        self.env.insert("AGENT_USEBASICAUTHFORPROXY".into(), "False".into());
        self
    }

    /// The repository checkout (`Build.SourcesDirectory`); a fresh empty
    /// folder when not given.
    pub fn sources(mut self, dir: &Path) -> Self {
        self.sources = Some(dir.to_path_buf());
        self
    }

    /// Kills the run after this long (default 5 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The agent's temp directory for this run (`Agent.TempDirectory`).
    pub fn agent_temp(&self) -> &Path {
        self.temp.path()
    }

    fn environment(&self, sources: &Path) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for key in ["PATH", "HOME", "LANG"] {
            if let Ok(value) = std::env::var(key) {
                env.insert(key.to_string(), value);
            }
        }
        let sources = sources.to_string_lossy().into_owned();
        for (key, value) in [
            ("TF_BUILD", "True"),
            ("AGENT_OS", "Linux"),
            ("AGENT_TEMPDIRECTORY", &self.temp.path().to_string_lossy()),
            ("BUILD_SOURCESDIRECTORY", &sources),
            ("SYSTEM_DEFAULTWORKINGDIRECTORY", &sources),
            ("BUILD_BUILDID", "1"),
            ("SYSTEM_DEBUG", "false"),
        ] {
            env.insert(key.to_string(), value.to_string());
        }
        // Defaults first, then the step's values; literal values are trimmed.
        for input in &self.declared {
            let by_alias = || input.aliases.iter().find_map(|alias| self.inputs.get(alias));
            let given = self.inputs.get(&input.name).or_else(by_alias).or(input.default.as_ref());
            let mut value = given.map(|v| v.trim().to_string()).unwrap_or_default();
            if input.kind == "filePath" {
                value = root_file_path(&value, &sources);
            }
            env.insert(format!("INPUT_{}", mangle(&input.name)), value);
        }
        // Inputs that task.json does not declare still arrive (the agent does not check).
        let aliases: Vec<&String> = self.declared.iter().flat_map(|i| &i.aliases).collect();
        for (name, value) in self.inputs.iter().filter(|(name, _)| !aliases.contains(name)) {
            env.entry(format!("INPUT_{}", mangle(name))).or_insert_with(|| value.trim().to_string());
        }
        env.extend(self.env.clone());
        env
    }

    /// Starts the task.
    pub fn spawn(self) -> RunningTask {
        let sources = match &self.sources {
            Some(dir) => dir.clone(),
            None => {
                let dir = self.temp.path().join("s");
                std::fs::create_dir_all(&dir).expect("create the sources folder");
                dir
            }
        };
        let env = self.environment(&sources);
        let mut child = Command::new("node")
            .arg(self.task_dir.join("run.js"))
            .env_clear()
            .envs(&env)
            .current_dir(&sources)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node (is Node.js on PATH?)");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            read_lines(child.stdout.take().expect("piped stdout"), lines.clone()),
            read_lines(child.stderr.take().expect("piped stderr"), lines.clone()),
        ];
        RunningTask {
            child,
            lines,
            readers,
            outputs: self.outputs,
            started: Instant::now(),
            timeout: self.timeout,
            _run: self.temp,
        }
    }

    /// Runs the task to its end.
    pub fn run(self) -> Outcome {
        self.spawn().wait()
    }
}

/// The agent roots a filePath input at the sources folder; empty becomes it.
fn root_file_path(value: &str, sources: &str) -> String {
    if value.is_empty() {
        sources.to_string()
    } else if Path::new(value).is_absolute() {
        value.to_string()
    } else {
        Path::new(sources).join(value).to_string_lossy().into_owned()
    }
}

fn read_lines(stream: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        // The agent reads lines as text; invalid UTF-8 is replaced.
        while reader.read_until(b'\n', &mut buf).unwrap_or(0) > 0 {
            let line = String::from_utf8_lossy(&buf);
            into.lock().unwrap().push(line.trim_end_matches(['\n', '\r']).to_string());
            buf.clear();
        }
    })
}

/// A task that is running.
pub struct RunningTask {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    outputs: Vec<String>,
    started: Instant,
    timeout: Duration,
    _run: tempfile::TempDir,
}

impl RunningTask {
    /// The launcher's (node's) process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until a printed line satisfies `found`; false on timeout or exit.
    pub fn wait_for_line(&mut self, found: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.lines.lock().unwrap().iter().any(|l| found(l)) {
                return true;
            }
            if self.child.try_wait().ok().flatten().is_some() {
                return self.lines.lock().unwrap().iter().any(|l| found(l));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends a signal to the launcher, as the agent does on cancel
    /// (`libc::SIGINT`, then `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits for the end (killing the run at its timeout) and reads the outcome.
    pub fn wait(mut self) -> Outcome {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for node") {
                break status;
            }
            if self.started.elapsed() > self.timeout {
                let _ = self.child.kill();
                break self.child.wait().expect("wait for killed node");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let lines = self.lines.lock().unwrap().clone();
        Outcome::from_lines(&lines, status.code(), &self.outputs)
    }
}
