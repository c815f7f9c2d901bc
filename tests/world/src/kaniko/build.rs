//! Building and pushing with buildah (vfs storage, chroot isolation) in a storage root of
//! the world's own, and the busybox base image pushed once to the world's registry.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::pods::LogWriter;

/// Where buildah keeps its images, and how it reaches the registry.
pub struct Buildah {
    /// The storage root (`--root`); `run/` beside it is the run root.
    pub dir: PathBuf,
    /// The world's registry (`127.0.0.1:PORT`).
    pub registry: String,
}

/// A kaniko-like log, in logrus's formats as kaniko configures them: `color` (the default)
/// `\x1b[36mINFO\x1b[0m[0001] text` (seconds since start, message padded to 44),
/// `text` `time="…" level=info msg="text"`, `json` `{"level":"info","msg":"text","time":"…"}`.
#[derive(Clone)]
pub struct Logger {
    log: LogWriter,
    start: Instant,
    format: String,
}

impl Logger {
    /// A logger for one run (colour format until [`Logger::set_format`]).
    pub fn new(log: LogWriter) -> Self {
        Self { log, start: Instant::now(), format: "color".into() }
    }

    /// `--log-format`.
    pub fn set_format(&mut self, format: &str) {
        self.format = format.to_string();
    }

    /// One line at a level (`INFO`, `WARN`, `ERRO`).
    pub fn line(&self, level: &str, text: &str) {
        let name = match level {
            "WARN" => "warning",
            "ERRO" => "error",
            "DEBU" => "debug",
            _ => "info",
        };
        let now = || jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let line = match self.format.as_str() {
            "text" => format!("time=\"{}\" level={name} msg={}\n", now(), quote(text)),
            "json" => format!("{}\n", serde_json::json!({"level": name, "msg": text, "time": now()})),
            _ => {
                let color = match level {
                    "WARN" => 33,
                    "ERRO" => 31,
                    "DEBU" => 37,
                    _ => 36,
                };
                let secs = self.start.elapsed().as_secs();
                format!("\x1b[{color}m{level}\x1b[0m[{secs:04}] {text:<44} \n")
            }
        };
        self.log.write(line.as_bytes());
    }

    /// A line without prefix (cobra's `Error: ...`, kaniko's final error).
    pub fn raw(&self, text: &str) {
        self.log.write(format!("{text}\n").as_bytes());
    }
}

/// logrus quotes a value unless it is made of letters, digits and `-._/@^+`.
fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+'));
    if plain { text.to_string() } else { serde_json::to_string(text).unwrap_or_default() }
}

/// How a buildah command ended.
pub enum Outcome {
    /// Exit 0.
    Done,
    /// Failed, with the `Error:` lines buildah printed (prefix removed).
    Failed(String),
    /// Cancelled (pod deleted).
    Cancelled,
}

impl Buildah {
    fn write_configs(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.dir.join("root"))?;
        std::fs::create_dir_all(self.dir.join("run"))?;
        std::fs::create_dir_all(self.dir.join("tmp"))?;
        std::fs::write(self.policy(), r#"{"default":[{"type":"insecureAcceptAnything"}]}"#)?;
        std::fs::write(
            self.registries_conf(),
            format!(
                "unqualified-search-registries = []\n\n[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                self.registry
            ),
        )
    }

    fn policy(&self) -> PathBuf {
        self.dir.join("policy.json")
    }

    fn registries_conf(&self) -> PathBuf {
        self.dir.join("registries.conf")
    }

    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("buildah");
        command
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .env("CONTAINERS_REGISTRIES_CONF", self.registries_conf())
            .env("BUILDAH_ISOLATION", "chroot")
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs buildah with `args`, streaming its output lines through `on_line`.
    /// stdout and stderr share one pipe, so the lines keep the order buildah
    /// wrote them in (kaniko logs everything to one stream).
    async fn run(&self, args: &[String], on_line: &(dyn Fn(&str) + Sync), cancel: &CancellationToken) -> Outcome {
        let mut command = self.command();
        command.args(args);
        let pipe = std::io::pipe().and_then(|(reader, writer)| {
            command.stdout(writer.try_clone()?).stderr(writer);
            tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader))
        });
        let receiver = match pipe {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("failed to make buildah's output pipe: {e}")),
        };
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(format!("failed to start buildah: {e}")),
        };
        // The command holds the pipe's write ends: without dropping it, the output never ends.
        drop(command);
        let mut lines = BufReader::new(receiver).lines();
        let mut errors: Vec<String> = Vec::new();
        loop {
            let line = tokio::select! {
                l = lines.next_line() => match l {
                    Ok(Some(l)) => l,
                    _ => break,
                },
                _ = cancel.cancelled() => return Outcome::Cancelled,
            };
            if let Some(e) = line.strip_prefix("Error: ") {
                errors.push(e.to_string());
            }
            on_line(&line);
        }
        let status = tokio::select! {
            s = child.wait() => s,
            _ = cancel.cancelled() => return Outcome::Cancelled,
        };
        match status {
            Ok(s) if s.success() => Outcome::Done,
            Ok(s) if errors.is_empty() => Outcome::Failed(format!("buildah exited with {s}")),
            Ok(_) => Outcome::Failed(errors.join("; ")),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// `buildah bud` of `dockerfile` in `context`, tagged `tag`.
    pub async fn build(
        &self,
        context: &Path,
        dockerfile: &Path,
        extra: &[String],
        tag: &str,
        on_line: &(dyn Fn(&str) + Sync),
        cancel: &CancellationToken,
    ) -> Outcome {
        let mut args: Vec<String> = vec![
            "bud".into(),
            "--isolation".into(),
            "chroot".into(),
            "--tls-verify=false".into(),
            "--signature-policy".into(),
            self.policy().display().to_string(),
            "-f".into(),
            dockerfile.display().to_string(),
            "-t".into(),
            tag.into(),
        ];
        args.extend(extra.iter().cloned());
        args.push(context.display().to_string());
        self.run(&args, on_line, cancel).await
    }

    /// Pushes `tag` to `destination` (`registry/repo:tag`, or a transport such as `oci:DIR`);
    /// returns the pushed manifest's digest.
    pub async fn push(
        &self,
        tag: &str,
        destination: &str,
        on_line: &(dyn Fn(&str) + Sync),
        cancel: &CancellationToken,
    ) -> Result<String, Outcome> {
        let digest_file = self.dir.join("tmp").join(format!("digest-{}", crate::auth::random_token()));
        let args: Vec<String> = vec![
            "push".into(),
            "--tls-verify=false".into(),
            "--signature-policy".into(),
            self.policy().display().to_string(),
            "--digestfile".into(),
            digest_file.display().to_string(),
            tag.into(),
            if destination.starts_with("oci:") { destination.to_string() } else { format!("docker://{destination}") },
        ];
        match self.run(&args, on_line, cancel).await {
            Outcome::Done => {
                let digest = std::fs::read_to_string(&digest_file).map_err(|e| Outcome::Failed(e.to_string()))?;
                let _ = std::fs::remove_file(&digest_file);
                Ok(digest.trim().to_string())
            }
            other => Err(other),
        }
    }

    /// Removes a local image (the world's storage would otherwise grow with every build).
    pub async fn remove(&self, tag: &str) {
        let mut command = self.command();
        command.args(["rmi", "-f", tag]).stdout(Stdio::null()).stderr(Stdio::null());
        let _ = command.status().await;
    }

    /// Builds `<registry>/busybox:latest` FROM scratch with Debian's static busybox and
    /// pushes it.
    pub async fn push_base_image(&self, cancel: &CancellationToken) -> Result<(), String> {
        self.write_configs().map_err(|e| format!("failed to write buildah's configuration: {e}"))?;
        let context = self.dir.join("busybox-context");
        std::fs::create_dir_all(&context).map_err(|e| e.to_string())?;
        let busybox = std::env::var("AZP_KUBE_BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into());
        std::fs::copy(&busybox, context.join("busybox")).map_err(|e| format!("copying {busybox}: {e}"))?;
        std::fs::write(
            context.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
             RUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/tmp\", \"/usr/bin\", \"/etc\"]\n",
        )
        .map_err(|e| e.to_string())?;
        let tag = "localhost/world-busybox:latest";
        let lines = std::sync::Mutex::new(Vec::new());
        let collect = |l: &str| lines.lock().unwrap_or_else(|e| e.into_inner()).push(l.to_string());
        let dockerfile = context.join("Dockerfile");
        match self.build(&context, &dockerfile, &[], tag, &collect, cancel).await {
            Outcome::Done => {}
            Outcome::Failed(e) => return Err(format!("building the busybox base image: {e}")),
            Outcome::Cancelled => return Err("cancelled".into()),
        }
        let destination = format!("{}/busybox:latest", self.registry);
        match self.push(tag, &destination, &collect, cancel).await {
            Ok(_) => Ok(()),
            Err(Outcome::Failed(e)) => Err(format!("pushing the busybox base image: {e}")),
            Err(_) => Err("cancelled".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn logrus_quotes_like_go() {
        assert_eq!(super::quote("Pushed"), "Pushed");
        assert_eq!(super::quote("Pushed a@sha256:1"), "\"Pushed a@sha256:1\"");
        assert_eq!(super::quote("say \"hi\""), "\"say \\\"hi\\\"\"");
    }
}
