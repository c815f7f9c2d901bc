//! `azp-kube`: argv → task → one report → exit code.

use std::process::ExitCode;

use azp_kube::azp::{self, Agent, Env};
use azp_kube::cli::{self, Invocation};

fn main() -> ExitCode {
    let invocation = match cli::parse(std::env::args_os()) {
        Ok(invocation) => invocation,
        // --help, --version and usage mistakes: clap prints and picks the code.
        Err(error) => error.exit(),
    };
    let agent = Agent::stdout();
    match invocation {
        Invocation::Task { spec, inputs } => {
            let env = Env::from_process().with(inputs);
            azp::log::init(&agent, env.system_debug());
            let result = azp_kube::tasks::run(spec, &env, &agent);
            azp::report::finish(&agent, &env, result)
        }
        #[cfg(feature = "multicluster-helm")]
        Invocation::EksToken(args) => match azp_kube::tasks::eks_token::run(&Env::from_process(), &args) {
            Ok(credential) => {
                println!("{credential}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("azp-kube eks-token: {error:#}");
                ExitCode::FAILURE
            }
        },
        #[cfg(feature = "kaniko-build")]
        Invocation::Context(args) => match azp_kube::tasks::context_command::run(&Env::from_process(), &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("azp-kube context: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}
