//! The default command: an SSH session with the embedded client.

use crate::aws::{self, keypush};
use crate::cli;
use crate::connect;
use crate::error::Error;
use crate::route;
use crate::ssh::{host_keys, known_hosts, session};
use crate::term;

/// The default mode: connect and run the command or shell.
pub async fn run(cli: cli::SshArgs, verbosity: cli::Verbosity) -> Result<u8, Error> {
    let user = cli.user();
    let Some(target) = &cli.target else {
        return Err(Error::Usage("no instance given".into()));
    };
    let dest = cli.connect.destination(&target.instance_id);
    let progress = term::Progress::new(verbosity.quiet);
    progress.say(&format!(
        "resolving {} and pushing a key",
        target.instance_id
    ));
    let mut aws = aws::Aws::load(
        cli.connect.aws.region.as_deref(),
        cli.connect.aws.profile.as_deref(),
    )
    .await?;
    aws.set_connect_timeout(cli.connect.connect_timeout());
    // A first contact is verified against the console, fetched alongside.
    let known_algorithms =
        known_hosts::known_algorithms(&cli.host_keys.file(), &target.instance_id);
    let console = (known_algorithms.is_empty()
        && cli.host_keys.verify_host_key == cli::VerifyHostKey::Console)
        .then(|| host_keys::fetch_console(aws.ec2().clone(), target.instance_id.clone()));
    let key = keypush::EphemeralKey::generate()?;
    let push = route::KeyPush {
        os_user: user.clone(),
        public_key: key.public_openssh.clone(),
    };
    let cache = cli.connect.cache();
    let connected =
        connect::connect_cached(&aws, &dest, Some(&push), cache.as_ref(), cli.serial_push).await;
    let (tunnel, _route, from_cache) = connected.inspect_err(|_| progress.clear())?;
    let mut closed = tunnel.close_status();
    let policy = host_keys::HostKeyPolicy {
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
    let limit = aws.connect_timeout;
    let repush = || -> session::Repush<'_> {
        Box::pin(keypush::send_public_key(
            aws.eic(),
            &dest.instance_id,
            &push.os_user,
            &push.public_key,
        ))
    };
    let mut session = session::Session::connect(
        tunnel,
        policy.clone(),
        &user,
        key.private.clone(),
        keepalive,
        limit,
        Some(repush()),
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
        session = session::Session::connect(
            tunnel,
            policy,
            &user,
            key.private.clone(),
            keepalive,
            limit,
            Some(repush()),
        )
        .await;
    }
    progress.clear();
    let outcome = async {
        let session = session?;
        let status = session.exec(cli.remote_command().as_deref(), &opts).await?;
        session.close().await;
        Ok(status)
    }
    .await;
    // An SSH-level failure caused by the tunnel ending is reported as that,
    // with the bytes that got through when it was cut mid-stream.
    outcome.map_err(|e| closed.explain(e))
}
