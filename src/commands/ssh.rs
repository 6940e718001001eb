//! The default command: an SSH session with the embedded client, with any
//! -L/-R/-D forwards; -N forwards only, -f goes to the background.

use crate::cli;
use crate::commands::background;
use crate::commands::login::{self, LoginArgs};
use crate::error::Error;
use crate::ssh::forward::Bound;
use crate::ssh::session;

/// The default mode: connect, start the forwards, and run the command or
/// shell (or nothing, with -N).
pub async fn run(cli: cli::SshArgs, verbosity: cli::Verbosity) -> Result<u8, Error> {
    let Some(target) = &cli.target else {
        return Err(Error::Usage("no instance given".into()));
    };
    if cli.background && !cli.no_command && cli.command.is_empty() {
        return Err(Error::Usage(
            "-f needs a command to run, or -N to only forward ports".into(),
        ));
    }
    if cli.background && !background::is_child() {
        return background::run_parent().await;
    }
    // Every local listener is bound before anything touches the network: a
    // port in use fails now, naming the address.
    let bound = Bound::bind(&cli.forwards()).await?;
    let keepalive = session::Keepalive {
        interval: std::time::Duration::from_secs(cli.keepalive_interval),
        count: cli.keepalive_count as usize,
    };
    let logged = login::login(
        target,
        LoginArgs {
            user: cli.user(),
            connect: &cli.connect,
            host_keys: &cli.host_keys,
            keepalive,
            quiet: verbosity.quiet,
            serial_push: cli.serial_push,
        },
    )
    .await?;
    let session = &logged.session;
    let outcome = async {
        bound
            .start(session.handle(), session.take_forwarded(), !verbosity.quiet)
            .await?;
        if cli.background {
            background::notify_ready().await;
        }
        if cli.no_command {
            session.wait().await?;
            return Ok(0);
        }
        let opts = session::RunOptions {
            pty: !cli.background
                && cli.wants_pty(std::io::IsTerminal::is_terminal(&std::io::stdin())),
            escape: cli.escape_char.0,
        };
        session.exec(cli.remote_command().as_deref(), &opts).await
    }
    .await;
    let outcome = outcome.map_err(|e| logged.explain(e));
    logged.session.close().await;
    outcome
}
