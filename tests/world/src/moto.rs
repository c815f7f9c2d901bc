//! moto's server (S3, STS, EKS, ECR on one port), started through `moto_launcher.py` so
//! that EKS clusters report the simulator's endpoint and CA. The process is killed when the
//! [`Moto`] value drops, and by the kernel (PR_SET_PDEATHSIG) if the thread that started it
//! dies first.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why moto could not be started or called.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No free port, or the process could not be spawned.
    #[error("failed to start moto: {0}")]
    Spawn(#[source] std::io::Error),
    /// moto did not answer in time, or exited.
    #[error("moto did not answer on port {port} within {waited:?} (see {log})")]
    NotReady {
        /// The port it should listen on.
        port: u16,
        /// How long we waited.
        waited: Duration,
        /// Its log file.
        log: String,
    },
    /// An HTTP call to moto failed.
    #[error("failed to call moto ({what}): {source}")]
    Call {
        /// Which call.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// moto answered with an error status.
    #[error("moto answered {status} to {what}: {body}")]
    Status {
        /// Which call.
        what: &'static str,
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
}

/// A running moto server.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Spawns moto on a free loopback port; EKS clusters get `eks_endpoint` and the CA in `ca_file`.
    pub fn spawn(
        python: &Path,
        launcher: &Path,
        eks_endpoint: &str,
        ca_file: &Path,
        log: &Path,
    ) -> Result<Self, Error> {
        // Bound here and handed to moto (its fd survives exec), so the port is never free
        // between choosing it and moto's start, where another server could take it.
        let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::Spawn)?;
        let port = listener.local_addr().map_err(Error::Spawn)?.port();
        let listen_fd = listener.as_raw_fd();
        let log_file = std::fs::File::create(log).map_err(Error::Spawn)?;
        let log_err = log_file.try_clone().map_err(Error::Spawn)?;
        let mut command = Command::new(python);
        command
            .arg(launcher)
            .args(["--port", &port.to_string(), "--listen-fd", &listen_fd.to_string()])
            .args(["--eks-endpoint", eks_endpoint])
            .arg("--eks-ca-file")
            .arg(ca_file)
            .arg("--credentials-file")
            .arg(credentials_file(log))
            .arg("--eks-endpoints-file")
            .arg(eks_endpoints_file(log))
            .env("PYTHONUNBUFFERED", "1")
            // Buckets are always in the path: moto would take `moto` of `moto.proxied.invalid`
            // (the forward proxy's name for it) for a virtual-hosted bucket. The world's clients
            // all address S3 by path (IP and proxied endpoints), so nothing else changes.
            .env("S3_IGNORE_SUBDOMAIN_BUCKETNAME", "true")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        // SAFETY: prctl and fcntl are async-signal-safe and touch no memory of the parent;
        // clearing close-on-exec affects only the child's copy of the descriptor.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                    || libc::fcntl(listen_fd, libc::F_SETFD, 0) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(Error::Spawn)?;
        // moto has its own copy now.
        drop(listener);
        Ok(Self { child, port })
    }

    /// The port moto listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Already exited is fine: either way it is gone after wait.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the launcher records assumed-role credentials (beside moto's log).
pub fn credentials_file(log: &Path) -> std::path::PathBuf {
    log.with_file_name("moto-credentials")
}

/// Where the world lists the EKS clusters (by ARN) that have a simulator of their own.
pub fn eks_endpoints_file(log: &Path) -> std::path::PathBuf {
    log.with_file_name("eks-endpoints.json")
}

/// Waits until moto answers on `port`: connections queue on its socket from the start,
/// while moto imports for many seconds on two busy cores (and if it exits, nothing listens).
pub fn wait_ready(port: u16, timeout: Duration, log: &Path) -> Result<(), Error> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if call(port, "config", "GET", "/moto-api/config", &[], "").is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(Error::NotReady { port, waited: timeout, log: log.display().to_string() })
}

/// One plain-HTTP request to moto; returns the status and body.
fn call(
    port: u16,
    what: &'static str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<String, Error> {
    let io = |source| Error::Call { what, source };
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(io)?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(io)?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(io)?;
    let status: u16 = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(Error::Status { what, status, body });
    }
    Ok(body)
}

/// Wipes all of moto's state.
pub fn reset(port: u16) -> Result<(), Error> {
    call(port, "reset", "POST", "/moto-api/reset", &[], "").map(|_| ())
}

/// Creates an S3 bucket (moto does not check the signature).
pub fn create_bucket(port: u16, region: &str, name: &str) -> Result<(), Error> {
    let credential = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20250101/{region}/s3/aws4_request, SignedHeaders=host, Signature=00"
    );
    call(port, "CreateBucket", "PUT", &format!("/{name}"), &[("Authorization", credential.as_str())], "").map(|_| ())
}

/// Creates an EKS cluster in moto's default account (it points at the simulator).
pub fn create_cluster(port: u16, region: &str, name: &str) -> Result<(), Error> {
    let credential = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20250101/{region}/eks/aws4_request, SignedHeaders=host, Signature=00"
    );
    let body = serde_json::json!({
        "name": name,
        "roleArn": "arn:aws:iam::123456789012:role/eks-cluster",
        "resourcesVpcConfig": {"subnetIds": []},
    })
    .to_string();
    let headers = [("Authorization", credential.as_str()), ("Content-Type", "application/json")];
    call(port, "CreateCluster", "POST", "/clusters", &headers, &body).map(|_| ())
}
