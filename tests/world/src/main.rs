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

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("azp-kube-world: {e}");
            ExitCode::from(2)
        }
    }
}
