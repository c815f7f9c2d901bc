//! `azp-kube context`: the build context as KanikoBuild packs it, from a
//! terminal. A command, like the tasks: it only calls the concerns.

use std::io::{self, Write};

use anyhow::Context as _;

use crate::azp::Env;
use crate::cli::ContextArgs;
use crate::context::{self, PackOptions};

/// `azp-kube context`: lists the entries (`--list`), writes the tar.gz (`--output`) or
/// uploads it as KanikoBuild does (`--upload`).
/// Entries go to standard output, the summary and sizes to standard error.
pub fn run(env: &Env, args: &ContextArgs) -> anyhow::Result<()> {
    if args.upload.is_some() {
        return super::kaniko_build::upload_context_cli(env, args);
    }
    let plan = context::plan(&PackOptions {
        context_dir: args.context.clone(),
        dockerfile: args.dockerfile.clone(),
        use_dockerignore: args.use_dockerignore,
    })?;
    let mut stderr = io::stderr().lock();
    if args.list {
        let mut stdout = io::BufWriter::new(io::stdout().lock());
        for entry in plan.entries() {
            // One line per entry even for names with a newline in them.
            let name = entry.tar_name();
            for part in name.split_inclusive(|b| *b == b'\n') {
                match part.strip_suffix(b"\n") {
                    Some(part) => stdout.write_all(part).and_then(|()| stdout.write_all(b"\\n")),
                    None => stdout.write_all(part),
                }?;
            }
            stdout.write_all(b"\n")?;
        }
        stdout.flush()?;
        writeln!(stderr, "{}", plan.summary())?;
        return Ok(());
    }
    let Some(output) = &args.output else { anyhow::bail!("give --list or --output FILE (- for standard output)") };
    writeln!(stderr, "{}", plan.summary())?;
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let stream = plan.pack(threads);
    let stats = if output.as_os_str() == "-" {
        stream.write_to(io::stdout().lock())?
    } else {
        let file = std::fs::File::create(output).with_context(|| format!("failed to create {}", output.display()))?;
        stream.write_to(file).inspect_err(|_| {
            let _ = std::fs::remove_file(output);
        })?
    };
    writeln!(stderr, "{stats}")?;
    Ok(())
}
