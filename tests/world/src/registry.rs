//! The world's image registry: Debian's `docker-registry` (distribution 2.8) on a free
//! loopback port with a temporary root, killed when dropped (and by the kernel through
//! PR_SET_PDEATHSIG if the thread that started it dies first).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The manifest types a digest lookup accepts (OCI first, as buildah pushes OCI).
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json";

/// A running registry.
pub struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    /// Starts `docker-registry serve` with its storage under `dir`.
    pub fn spawn(dir: &Path) -> std::io::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let root = dir.join("registry");
        std::fs::create_dir_all(&root)?;
        let config = root.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                root.join("data").display()
            ),
        )?;
        let log = std::fs::File::create(root.join("registry.log"))?;
        let mut command = Command::new(binary());
        command.arg("serve").arg(&config).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        let registry = Self { child, port };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(std::io::Error::other(format!("docker-registry did not listen on {port} within 10 s")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(registry)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Already exited is fine: either way it is gone after wait.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The registry binary (`$AZP_KUBE_DOCKER_REGISTRY` or `docker-registry` on PATH).
pub fn binary() -> String {
    std::env::var("AZP_KUBE_DOCKER_REGISTRY").unwrap_or_else(|_| "docker-registry".into())
}

/// The `Docker-Content-Digest` the registry at `address` serves for `repo:tag`.
pub fn digest(address: &str, repo: &str, tag: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!(
        "HEAD /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {address}\r\nAccept: {MANIFEST_TYPES}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let mut lines = response.lines();
    let status = lines.next()?;
    if status.split(' ').nth(1) != Some("200") {
        return None;
    }
    lines.take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("docker-content-digest").then(|| value.trim().to_string())
    })
}
