//! eic-ssh: SSH into private EC2 instances through an EC2 Instance Connect
//! Endpoint (EICE): no bastion, no public IP, no long-lived keys.
//!
//! The rooms, one concept each:
//! - [`commands`]: one file or folder per subcommand, named after it; the
//!   only code that reads [`cli`].
//! - [`connect`]: the preamble every command shares (AWS configuration,
//!   timeouts, the cache), logging in to one instance, and one connection's
//!   critical path, joining the domain below.
//! - [`access`]: who may reach an instance through the endpoint: the facts,
//!   the checks `doctor` reports, and `restrict`'s plan.
//! - [`target`]: targets and their resolution: syntax, finding instances
//!   and endpoints, choosing one, the route and its cache.
//! - [`aws`]: configuration and trust, EC2 calls, the key push, the console.
//! - [`tunnel`]: the presigned URL, the websocket stream and the relay.
//! - [`ssh`]: the session, host-key policy, known_hosts, console host keys,
//!   forwards and SFTP.
//! - Leaves: [`term`] (the terminal, stdio and logging), [`net`] (HTTP
//!   proxies and dialing, below the AWS calls and the tunnel), [`fs`] (locks
//!   and files replaced whole), [`text`] (remote text and redaction), and
//!   [`error`].
//!
//! Commands depend on the domain, never the reverse; no domain module
//! imports [`cli`]; and no rooms import each other in a circle
//! (`tests/it/layering.rs` checks it; see ARCHITECTURE.md).

pub mod access;
pub mod aws;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod error;
pub mod fs;
pub mod net;
pub mod ssh;
pub mod target;
pub mod term;
pub mod text;
pub mod tunnel;

use std::process::ExitCode;

pub use error::Error;

/// The whole program: parse `args`, run, and return the exit status. The
/// binary's `main` and the demo's re-executed child both call this.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    // A shell asking for completions (`COMPLETE=bash eic-ssh -- words…`, set
    // up by `eic-ssh completions`): answer from the definitions and the
    // lookup cache, and nothing else.
    let completing =
        clap_complete::CompleteEnv::with_factory(<cli::Cli as clap::CommandFactory>::command)
            .try_complete(args.clone(), std::env::current_dir().ok().as_deref());
    match completing {
        Ok(true) => return ExitCode::SUCCESS,
        Ok(false) => {}
        Err(e) => e.exit(),
    }
    let cli = match cli::Cli::try_parse_args(args.clone()) {
        Ok(cli) => cli,
        // Help and --version as clap prints them; a refusal as eic-ssh
        // says everything, with what an OpenSSH option means here.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprint!("{}", cli::usage::refusal(&e, &args));
            return ExitCode::from(error::EXIT_USAGE);
        }
    };
    if let Some((message, hint)) = cli::usage::option_as_command(&cli, &args) {
        eprintln!("eic-ssh: {message}\neic-ssh: hint: {hint}");
        return ExitCode::from(error::EXIT_USAGE);
    }
    term::color::set(cli.verbosity.color);
    term::logging::init(cli.verbosity.verbose, cli.verbosity.quiet);
    term::install_panic_hook();
    // One thread does all the I/O: a CLI moving one connection's bytes gains
    // nothing from more, and cross-thread wake-ups cost latency and CPU.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("eic-ssh: cannot start the async runtime: {e}");
            return ExitCode::from(error::EXIT_CONNECT_FAILED);
        }
    };
    let doctor = cli.doctor_command();
    let code = match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            term::report(&e);
            if let Some(cmd) = doctor.filter(|_| e.doctor_explains()) {
                eprintln!(
                    "eic-ssh: hint: `{cmd}` checks the endpoint, the security groups and Preserve Client IP, and says what blocks the connection"
                );
            }
            e.exit_code()
        }
    };
    // A blocked stdin reader must not hold the process open.
    runtime.shutdown_background();
    ExitCode::from(code)
}
