//! The default command: an SSH session with the embedded client.

use crate::aws::{self, keypush};
use crate::cli;
use crate::connect;
use crate::error::Error;
use crate::route;
use crate::ssh::{host_keys, known_hosts, session};
use crate::term::{self, deadline};

/// The default mode: connect and run the command or shell.
pub async fn run(cli: cli::SshArgs, verbosity: cli::Verbosity, no_pick: bool) -> Result<u8, Error> {
    let user = cli.user();
    if cli.target.is_none() && (no_pick || !term::picker::available()) {
        return Err(Error::Usage(
            "no instance given (on a terminal, eic-ssh with no target offers a list to choose from)"
                .into(),
        ));
    }
    let progress = term::Progress::new(verbosity.quiet);
    if let Some(target) = &cli.target {
        progress.say(&format!("resolving {} and pushing a key", target.expr));
    }
    let aws = aws::Aws::load(
        cli.connect.aws.region.as_deref(),
        cli.connect.aws.profile.as_deref(),
    )
    .await?;
    let chosen = match &cli.target {
        Some(target) => super::target::choose(&aws, target, no_pick, true).await,
        None => super::target::pick_running(&aws).await,
    };
    let chosen = chosen.inspect_err(|_| progress.clear())?;
    let instance_id = chosen.instance_id.clone();
    let mut dest = cli.connect.destination(&instance_id);
    dest.prefetched = chosen.prefetched;
    dest.check_eice_dns(&aws.region)?;
    // A first contact is verified against the console, fetched alongside.
    let known_algorithms = known_hosts::known_algorithms(&cli.host_keys.file(), &instance_id);
    let console = (known_algorithms.is_empty()
        && cli.host_keys.verify_host_key == cli::VerifyHostKey::Console)
        .then(|| host_keys::fetch_console(aws.ec2().clone(), instance_id.clone()));
    let cache = cli.connect.cache();
    let profile = aws.profile.as_deref();
    // An instance that refused ed25519 before gets the type it took then.
    let remembered = cache
        .as_ref()
        .filter(|_| cli.key_type.is_none())
        .and_then(|c| c.key_type(profile, &aws.region, &instance_id))
        .and_then(|name| keypush::KeyType::from_name(&name));
    if let Some(t) = remembered {
        tracing::info!(
            "pushing an {} key: {} refused ed25519 before (remembered in the route cache)",
            t.name(),
            instance_id
        );
    }
    let key_type = cli
        .key_type
        .or(remembered)
        .unwrap_or(keypush::KeyType::Ed25519);
    let key = keypush::EphemeralKey::generate_type(key_type)?;
    // Only the default may fall back; a type the user asked for is final.
    let may_fall_back = cli.key_type.is_none() && key_type == keypush::KeyType::Ed25519;
    let fell_back = std::sync::atomic::AtomicBool::new(false);
    let fallback = || {
        may_fall_back.then_some(async {
            tracing::info!(
                "the server refused the ed25519 key; pushing an ECDSA P-256 key and trying again"
            );
            let k = keypush::EphemeralKey::generate_type(keypush::KeyType::Ecdsa)?;
            keypush::send_public_key(aws.eic(), &dest.instance_id, &user, &k.public_openssh)
                .await?;
            fell_back.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(k.private)
        })
    };
    let push = route::KeyPush {
        os_user: user.clone(),
        public_key: key.public_openssh.clone(),
    };
    let connected =
        connect::connect_cached(&aws, &dest, Some(&push), cache.as_ref(), cli.serial_push).await;
    let (tunnel, _route, from_cache) = connected.inspect_err(|_| progress.clear())?;
    let mut opened = tokio::time::Instant::now();
    let mut closed = tunnel.close_status();
    let policy = host_keys::HostKeyPolicy {
        host: dest.instance_id.clone(),
        known_hosts: cli.host_keys.file(),
        notify: !verbosity.quiet,
        strict: cli.host_keys.strict_host_key_checking,
        console,
        known_algorithms,
        recorder: None,
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
    let mut session = session::Session::connect_with_fallback(
        tunnel,
        policy.clone(),
        &user,
        key.private.clone(),
        keepalive,
        fallback(),
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
        opened = tokio::time::Instant::now();
        closed = tunnel.close_status();
        session = session::Session::connect_with_fallback(
            tunnel,
            policy,
            &user,
            key.private.clone(),
            keepalive,
            fallback(),
        )
        .await;
    }
    if session.is_ok() && fell_back.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(
            "{} accepted the ECDSA key: remembering that in the route cache",
            dest.instance_id
        );
        if let Some(c) = &cache {
            c.set_key_type(profile, &aws.region, &dest.instance_id, "ecdsa");
        }
    }
    progress.clear();
    let max = dest
        .max_tunnel_duration
        .map(|s| std::time::Duration::from_secs(s.into()))
        .unwrap_or(deadline::DEFAULT_MAX_DURATION);
    let outcome = async {
        let session = session?;
        // An interactive session hears before the endpoint cuts it.
        let warnings = opts
            .pty
            .then(|| deadline::spawn_warnings(opened, max, &cli.warn_before.0));
        let status = session.exec(cli.remote_command().as_deref(), &opts).await;
        if let Some(w) = warnings {
            w.abort();
        }
        let status = status?;
        session.close().await;
        Ok(status)
    }
    .await;
    // An SSH-level failure caused by the endpoint closing is reported as that.
    outcome
        .map_err(|e| match (&e, closed.error()) {
            (
                Error::Ssh(_) | Error::SshProtocol(_) | Error::Io(_) | Error::ConnectionLost { .. },
                Some(closed),
            ) => closed,
            _ => e,
        })
        .map_err(|e| at_max_duration(e, opened, max))
}

/// A close that came when the tunnel reached its maximum duration says so.
fn at_max_duration(e: Error, opened: tokio::time::Instant, max: std::time::Duration) -> Error {
    // The endpoint's clock started a little before ours.
    let slack = std::time::Duration::from_secs(1);
    match e {
        Error::TunnelClosed { code, reason } if opened.elapsed() + slack >= max => {
            Error::TunnelMaxDuration {
                seconds: max.as_secs(),
                code,
                reason,
            }
        }
        other => other,
    }
}
