//! The default command: an SSH session with the embedded client, with any
//! -L/-R/-D forwards; -N forwards only, -f goes to the background.

use crate::cli;
use crate::connect::background;
use crate::connect::login::{self, LoginOptions};
use crate::error::Error;
use crate::ssh::forward::Bound;
use crate::ssh::session;
use crate::term::{self, deadline};

/// The default mode: connect, start the forwards, and run the command or
/// shell (or nothing, with -N).
pub async fn run(cli: cli::SshArgs, verbosity: cli::Verbosity, no_pick: bool) -> Result<u8, Error> {
    if cli.target.is_none() && (no_pick || !term::picker::available()) {
        return Err(Error::Usage(
            "no instance given (on a terminal, eic-ssh with no target offers a list to choose from)"
                .into(),
        ));
    }
    if cli.background && !cli.no_command && cli.command.is_empty() {
        return Err(Error::Usage(
            "-f needs a command to run, or -N to only forward ports".into(),
        ));
    }
    if cli.background && cli.target.is_none() {
        return Err(Error::Usage(
            "-f needs an instance: the picker cannot run in the background".into(),
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
        cli.target.as_ref(),
        LoginOptions {
            user: cli.user(),
            settings: cli.connect.settings(),
            dest: cli.connect.destination(""),
            host_keys: cli.host_keys.checking(),
            keepalive,
            quiet: verbosity.quiet,
            serial_push: cli.serial_push,
            key_type: cli.key_type,
            no_pick,
        },
    )
    .await?;
    let max = cli
        .connect
        .max_tunnel_duration
        .map(|s| std::time::Duration::from_secs(s.into()))
        .unwrap_or(deadline::DEFAULT_MAX_DURATION);
    let session = &logged.session;
    let outcome = async {
        bound
            .start(session.handle(), session.take_forwarded(), !verbosity.quiet)
            .await?;
        if cli.background {
            background::detach_and_notify(verbosity.verbose > 0).await;
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
        // An interactive session hears before the endpoint cuts it.
        let warnings = opts
            .pty
            .then(|| deadline::spawn_warnings(logged.opened, max, &cli.warn_before.0));
        let status = session.exec(cli.remote_command().as_deref(), &opts).await;
        if let Some(w) = warnings {
            w.abort();
        }
        status
    }
    .await;
    let outcome = outcome
        .map_err(|e| logged.explain(e))
        .map_err(|e| at_max_duration(e, &logged.closed, logged.opened, max));
    logged.session.close().await;
    outcome
}

/// A close that came when the tunnel reached its maximum duration says so.
fn at_max_duration(
    e: Error,
    closed: &crate::tunnel::CloseStatus,
    opened: tokio::time::Instant,
    max: std::time::Duration,
) -> Error {
    // The endpoint's clock started a little before ours.
    let slack = std::time::Duration::from_secs(1);
    let late = opened.elapsed() + slack >= max;
    match (e, closed.abnormal()) {
        (Error::TunnelClosed { code, reason }, _) if late => Error::TunnelMaxDuration {
            seconds: max.as_secs(),
            code,
            reason,
        },
        // Cut mid-stream at the maximum duration: that is the reason.
        (Error::TunnelCut { .. }, Some((code, reason))) if late => Error::TunnelMaxDuration {
            seconds: max.as_secs(),
            code,
            reason,
        },
        (other, _) => other,
    }
}
