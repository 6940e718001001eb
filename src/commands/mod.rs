//! One file per subcommand. Commands depend on the domain modules (aws,
//! route, tunnel, ssh, term) and on `cli`; never the reverse.

pub mod cache;
pub mod completions;
pub mod cp;
pub mod doctor;
pub mod exec;
pub mod host_keys;
pub mod ls;
pub mod man;
pub mod proxy;
pub mod restrict;
pub mod ssh;
pub mod ssh_config;
pub mod tunnel;

use crate::cli;
use crate::error::Error;

/// Run the chosen mode; the result is the exit status.
pub async fn run(cli: cli::Cli) -> Result<u8, Error> {
    run_subcommand(cli)
        .await
        .map_err(|e| crate::target::choose::suggest_subcommand(e, &cli::subcommand_names()))
}

async fn run_subcommand(cli: cli::Cli) -> Result<u8, Error> {
    let no_pick = cli.no_pick;
    match cli.subcommand {
        Some(cli::Subcommand::Proxy(args)) => proxy::run(args, no_pick).await,
        Some(cli::Subcommand::Tunnel(args)) => tunnel::run(args, no_pick).await,
        Some(cli::Subcommand::Ls(args)) => ls::run(args, cli.verbosity.quiet).await,
        Some(cli::Subcommand::Exec(args)) => exec::run(args, cli.verbosity).await,
        Some(cli::Subcommand::SshConfig(args)) => ssh_config::run(&args, cli.verbosity.quiet),
        Some(cli::Subcommand::Completions { shell }) => completions::run(shell),
        Some(cli::Subcommand::Man { subcommand }) => man::run(subcommand.as_deref()),
        Some(cli::Subcommand::HostKeys(args)) => {
            host_keys::run(args, no_pick, cli.verbosity.quiet).await
        }
        Some(cli::Subcommand::Doctor(args)) => doctor::run(args, no_pick).await,
        Some(cli::Subcommand::Restrict(args)) => restrict::run(args, no_pick).await,
        Some(cli::Subcommand::Cp(args)) => cp::run(args, cli.verbosity).await,
        Some(cli::Subcommand::Cache { action }) => cache::run(&action, cli.verbosity.quiet),
        None => ssh::run(cli.ssh, cli.verbosity, no_pick).await,
    }
}
