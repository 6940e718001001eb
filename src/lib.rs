//! eic-ssh: SSH into private EC2 instances through an EC2 Instance Connect
//! Endpoint (EICE): no bastion, no public IP, no long-lived keys.
//!
//! The flow: look up the instance and its endpoint ([`lookup`]), push an
//! ephemeral key ([`keypush`]) concurrently, presign the `openTunnel` URL
//! ([`presign`]), open the websocket ([`tunnel`]) and run SSH over it
//! ([`session`]).
#![forbid(unsafe_code)]

pub mod aws;
pub mod cache;
pub mod cli;
pub mod connect;
pub mod console;
pub mod doctor;
pub mod error;
pub mod keypush;
pub mod known_hosts;
pub mod logging;
pub mod lookup;
pub mod presign;
pub mod proxy;
pub mod session;
#[cfg(feature = "sim")]
pub mod sim;
pub mod stdio;
pub mod target;
pub mod terminal;
pub mod tunnel;

use std::process::ExitCode;

use clap::Parser;

pub use error::Error;

/// The whole program: parse `args`, run, and return the exit status. The
/// binary's `main` and the demo's re-executed child both call this.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    logging::init(cli.verbosity.verbose, cli.verbosity.quiet);
    terminal::install_panic_hook();
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
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
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

/// Print an error once, with its hint.
pub fn report(e: &Error) {
    eprintln!("eic-ssh: {e}");
    if let Some(hint) = e.hint() {
        eprintln!("eic-ssh: hint: {hint}");
    }
}

/// Run the chosen mode; the result is the exit status.
pub async fn run(cli: cli::Cli) -> Result<u8, Error> {
    match cli.subcommand {
        Some(cli::Subcommand::Proxy(args)) => proxy::proxy(args).await,
        Some(cli::Subcommand::Tunnel(args)) => proxy::listen(args).await,
        Some(cli::Subcommand::SshConfig(args)) => {
            print!("{}", proxy::ssh_config(&args));
            Ok(0)
        }
        Some(cli::Subcommand::HostKeys(args)) => console::host_keys_command(args).await,
        Some(cli::Subcommand::Doctor(args)) => doctor::run(args).await,
        Some(cli::Subcommand::Cache { action }) => {
            let cache = cache::RouteCache::default_location();
            match action {
                cli::CacheAction::Clear => {
                    let removed = cache.clear()?;
                    if !cli.verbosity.quiet {
                        let what = if removed {
                            "cleared"
                        } else {
                            "was already empty"
                        };
                        eprintln!(
                            "eic-ssh: the lookup cache {what} ({})",
                            cache.path().display()
                        );
                    }
                }
                cli::CacheAction::Path => println!("{}", cache.path().display()),
            }
            Ok(0)
        }
        None => ssh(cli.ssh, cli.verbosity).await,
    }
}

/// The default mode: connect and run the command or shell.
pub async fn ssh(cli: cli::SshArgs, verbosity: cli::Verbosity) -> Result<u8, Error> {
    let user = cli.user();
    let Some(target) = &cli.target else {
        return Err(Error::Config("no instance given".into()));
    };
    let dest = cli.connect.destination(&target.instance_id);
    let progress = terminal::Progress::new(verbosity.quiet);
    progress.say(&format!(
        "resolving {} and pushing a key",
        target.instance_id
    ));
    let aws = aws::Aws::load(
        cli.connect.region.as_deref(),
        cli.connect.profile.as_deref(),
    )
    .await?;
    // A first contact is verified against the console, fetched alongside.
    let known_algorithms =
        known_hosts::known_algorithms(&cli.host_keys.file(), &target.instance_id);
    let console = (known_algorithms.is_empty()
        && cli.host_keys.verify_host_key == cli::VerifyHostKey::Console)
        .then(|| session::fetch_console(aws.ec2().clone(), target.instance_id.clone()));
    let key = keypush::EphemeralKey::generate()?;
    let push = connect::KeyPush {
        os_user: user.clone(),
        public_key: key.public_openssh.clone(),
    };
    let cache = cli.connect.cache();
    let connected =
        connect::connect_cached(&aws, &dest, Some(&push), cache.as_ref(), cli.serial_push).await;
    let (tunnel, _route, from_cache) = connected.inspect_err(|_| progress.clear())?;
    let mut closed = tunnel.close_status();
    let policy = session::HostKeyPolicy {
        host: dest.instance_id.clone(),
        known_hosts: cli.host_keys.file(),
        notify: !verbosity.quiet,
        strict: cli.host_keys.strict_host_key_checking,
        console,
        known_algorithms,
    };
    let keepalive = session::Keepalive {
        interval: std::time::Duration::from_secs(cli.keepalive_interval),
        count: cli.keepalive_count as usize,
    };
    let opts = session::RunOptions {
        pty: cli.wants_pty(std::io::IsTerminal::is_terminal(&std::io::stdin())),
        escape: cli.escape_char.0,
    };
    progress.say(&format!("authenticating as {user}"));
    let mut session = session::Session::connect(
        tunnel,
        policy.clone(),
        &user,
        key.private.clone(),
        keepalive,
    )
    .await;
    // A cached route whose tunnel closed before SSH could start (the IP now
    // belongs to nothing, say): look up afresh and retry, once.
    if from_cache && session.is_err() && closed.abnormal().is_some() {
        tracing::info!("the cached route failed before SSH started; looking it up afresh");
        connect::forget(cache.as_ref(), &aws, &dest.instance_id);
        let connected =
            connect::connect_cached(&aws, &dest, Some(&push), cache.as_ref(), cli.serial_push)
                .await;
        let (tunnel, _route, _) = connected.inspect_err(|_| progress.clear())?;
        closed = tunnel.close_status();
        session =
            session::Session::connect(tunnel, policy, &user, key.private.clone(), keepalive).await;
    }
    progress.clear();
    let outcome = async {
        let session = session?;
        let status = session.exec(cli.remote_command().as_deref(), &opts).await?;
        session.close().await;
        Ok(status)
    }
    .await;
    // An SSH-level failure caused by the endpoint closing is reported as that.
    outcome.map_err(|e| match (&e, closed.error()) {
        (Error::Ssh(_) | Error::Io(_), Some(closed)) => closed,
        _ => e,
    })
}
