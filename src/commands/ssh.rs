//! The default command: an SSH session with the embedded client, with any
//! -L/-R/-D forwards; -N forwards only, -f goes to the background.

use crate::audit::{self, Audit};
use crate::cli;
use crate::connect::background;
use crate::connect::login::{self, LoginOptions};
use crate::error::Error;
use crate::record;
use crate::ssh::forward::Bound;
use crate::ssh::session;
use crate::term::{self, deadline};

/// The default mode: connect, start the forwards, and run the command or
/// shell (or nothing, with -N).
pub async fn run(
    cli: cli::SshArgs,
    verbosity: cli::Verbosity,
    no_pick: bool,
    audit: &Audit,
) -> Result<u8, Error> {
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
    // A recording that cannot be written fails now, before the network.
    let record_dir = cli.record.dir().filter(|_| !cli.no_command);
    if let Some(dir) = &record_dir {
        record::writer::check_dir(dir)?;
    }
    // Every local listener is bound before anything touches the network: a
    // port in use fails now, naming the address.
    let bound = Bound::bind(&cli.forwards()).await?;
    let command = cli.remote_command();
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
            audit,
            purpose: audit::Purpose {
                kind: match cli.no_command {
                    true => audit::Kind::Forward,
                    false => audit::Kind::Session,
                },
                command: command.as_deref(),
                forwards: forwards_as_given(&cli),
            },
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
        // With -N, a ^C right after the forwards are said to be up ends
        // cleanly (and logs the end): listen before saying so.
        let mut stop = match cli.no_command {
            true => Some(crate::term::signals::StopSignals::new()?),
            false => None,
        };
        bound
            .start(session.handle(), session.take_forwarded(), !verbosity.quiet)
            .await?;
        if cli.background {
            background::detach_and_notify(verbosity.verbose > 0).await;
        }
        if let Some(stop) = &mut stop {
            session.wait(stop).await?;
            return Ok(0);
        }
        let record = match &record_dir {
            Some(dir) => Some(std::sync::Arc::new(start_recording(dir, &cli, &logged)?)),
            None => None,
        };
        let opts = session::RunOptions {
            pty: !cli.background
                && cli.wants_pty(std::io::IsTerminal::is_terminal(&std::io::stdin())),
            escape: cli.escape_char.0,
            record,
        };
        // An interactive session hears before the endpoint cuts it.
        let warnings = opts
            .pty
            .then(|| deadline::spawn_warnings(logged.opened, max, &cli.warn_before.0));
        let status = session.exec(command.as_deref(), &opts).await;
        if let Some(w) = warnings {
            w.abort();
        }
        status
    }
    .await;
    // A tunnel that ended at its maximum duration says so (see
    // `CloseStatus::set_max_duration`).
    let outcome = outcome.map_err(|e| logged.explain(e));
    logged.session.close().await;
    logged.log.finish(&outcome);
    outcome
}

/// `-L`, `-R` and `-D` as the connection log shows them.
fn forwards_as_given(cli: &cli::SshArgs) -> Vec<String> {
    let local = cli.local_forward.iter().map(|f| format!("-L {f}"));
    let remote = cli.remote_forward.iter().map(|f| format!("-R {f}"));
    let dynamic = cli
        .dynamic_forward
        .iter()
        .map(|d| format!("-D {}:{}", d.bind, d.port));
    local.chain(remote).chain(dynamic).collect()
}

/// Start recording the session (`--record`), named in its log's end line.
fn start_recording(
    dir: &std::path::Path,
    cli: &cli::SshArgs,
    logged: &login::LoggedIn,
) -> Result<record::Recorder, Error> {
    let (width, height) = term::size();
    let id = &logged.instance_id;
    let user = cli.user();
    let title = match &cli.target {
        Some(t) if t.expr.to_string() != *id => format!("eic-ssh {user}@{id} ({})", t.expr),
        _ => format!("eic-ssh {user}@{id}"),
    };
    let recorder = record::Recorder::create(
        dir,
        &record::Session {
            instance_id: id.clone(),
            title,
            width,
            height,
            term: std::env::var("TERM")
                .ok()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "dumb".into()),
            connection_id: logged.log.id().map(str::to_owned),
        },
        cli.record.record_input,
    )?;
    logged.log.set_recording(recorder.path());
    Ok(recorder)
}
