//! `azp-kube-world --dir DIR`: starts the test world (API simulator and moto), writes
//! `DIR/kubeconfig` and `DIR/world.json`, prints `ready`, and runs until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use azp_kube_world::World;

fn parse_args() -> Result<PathBuf, String> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            "-h" | "--help" => return Err("usage: azp-kube-world --dir DIR".into()),
            other => return Err(format!("unexpected argument {other}; usage: azp-kube-world --dir DIR")),
        }
    }
    dir.ok_or_else(|| "usage: azp-kube-world --dir DIR".into())
}

fn wait_for_signal() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    })
}

fn run() -> Result<(), String> {
    let dir = parse_args()?;
    let world = World::start().map_err(|e| format!("{e}"))?;
    world.write_info(&dir).map_err(|e| format!("{e}"))?;
    println!("ready");
    wait_for_signal().map_err(|e| format!("failed to wait for a signal: {e}"))?;
    drop(world);
    Ok(())
}

/// `azp-kube-world eks-token --access-key K --secret-key S [--session-token T] --sts-host H
/// --cluster C [--region R] [--ttl-seconds N]`: prints an ExecCredential with a fresh EKS token
/// (a client-go exec plugin for tests).
fn eks_token(args: &[String]) -> Result<(), String> {
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let need = |name: &str| value(name).ok_or_else(|| format!("eks-token needs {name}"));
    let (access, secret, host, cluster) =
        (need("--access-key")?, need("--secret-key")?, need("--sts-host")?, need("--cluster")?);
    let session = value("--session-token");
    let region = value("--region").unwrap_or_else(|| azp_kube_world::world::REGION.into());
    let ttl: i64 = value("--ttl-seconds").and_then(|t| t.parse().ok()).unwrap_or(14 * 60);
    let keys =
        azp_kube_world::eks::Keys { access_key: &access, secret_key: &secret, session_token: session.as_deref() };
    let token = azp_kube_world::eks::token(&keys, &region, &host, &cluster, std::time::SystemTime::now());
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(ttl);
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()},
    });
    println!("{credential}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("eks-token") {
        return match eks_token(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("azp-kube-world: {e}");
                ExitCode::from(2)
            }
        };
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("azp-kube-world: {e}");
            ExitCode::from(2)
        }
    }
}
