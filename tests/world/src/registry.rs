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
        // docker-registry binds the address in its config itself, so the free port we pick
        // can be taken by another server before it does; it then exits, and we pick again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Self::spawn_on_a_free_port(dir)? {
                Some(registry) => return Ok(registry),
                None if attempts < 5 => continue,
                None => {
                    return Err(std::io::Error::other("docker-registry exited on start five times (see registry.log)"));
                }
            }
        }
    }

    /// `None` if it exited on start (its port was taken meanwhile).
    fn spawn_on_a_free_port(dir: &Path) -> std::io::Result<Option<Self>> {
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
        let mut registry = Self { child, port };
        let start = Instant::now();
        // Something listening is not enough: whoever took the port listens too.
        while !listens(registry.child.id(), port)? {
            if registry.child.try_wait()?.is_some() {
                return Ok(None);
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(std::io::Error::other(format!("docker-registry did not listen on {port} within 10 s")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(registry))
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

/// Whether process `pid` holds the socket listening on loopback `port` (its inode, from
/// /proc/net/tcp, is among the process's descriptors).
fn listens(pid: u32, port: u16) -> std::io::Result<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    let local = format!("0100007F:{port:04X}");
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `st` 0A is LISTEN.
        (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
            .then(|| fields.get(9).map(|s| s.to_string()))?
    });
    let Some(inode) = inode else { return Ok(false) };
    let wanted = format!("socket:[{inode}]");
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Ok(false) };
    Ok(descriptors
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str())))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_counts_as_the_registry_s_only_when_the_registry_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::spawn(dir.path()).unwrap();
        assert!(listens(registry.pid(), registry.port()).unwrap());
        // What the race looked like: another server on a port the registry was given.
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = other.local_addr().unwrap().port();
        assert!(!listens(registry.pid(), taken).unwrap());
        assert!(listens(std::process::id(), taken).unwrap());
    }
}
