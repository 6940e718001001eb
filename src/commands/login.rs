//! Log in to one instance with the embedded client: resolve, push an
//! ephemeral key, open the tunnel, check the host key and authenticate.
//! Shared by the default command and `cp`.

use crate::aws::{self, keypush};
use crate::cli;
use crate::connect;
use crate::error::Error;
use crate::route::{self, target::Target};
use crate::ssh::{host_keys, known_hosts, session};
use crate::term;
use crate::tunnel::CloseStatus;

/// What a login needs besides the target.
pub struct LoginArgs<'a> {
    pub user: String,
    pub connect: &'a cli::ConnectArgs,
    pub host_keys: &'a cli::HostKeyArgs,
    pub keepalive: session::Keepalive,
    pub quiet: bool,
    pub serial_push: bool,
}

/// An authenticated session and how its tunnel closed (for explaining a
/// later failure).
pub struct LoggedIn {
    pub session: session::Session,
    pub closed: CloseStatus,
}

impl LoggedIn {
    /// An SSH-level failure caused by the endpoint closing is reported as
    /// that.
    pub fn explain(&self, e: Error) -> Error {
        match (&e, self.closed.error()) {
            (Error::Ssh(_) | Error::SshProtocol(_) | Error::Io(_), Some(closed)) => closed,
            _ => e,
        }
    }
}

/// Log in to `target`.
pub async fn login(target: &Target, args: LoginArgs<'_>) -> Result<LoggedIn, Error> {
    let user = args.user;
    let dest = args.connect.destination(&target.instance_id);
    let progress = term::Progress::new(args.quiet);
    progress.say(&format!(
        "resolving {} and pushing a key",
        target.instance_id
    ));
    let aws = aws::Aws::load(
        args.connect.aws.region.as_deref(),
        args.connect.aws.profile.as_deref(),
    )
    .await?;
    // A first contact is verified against the console, fetched alongside.
    let known_algorithms =
        known_hosts::known_algorithms(&args.host_keys.file(), &target.instance_id);
    let console = (known_algorithms.is_empty()
        && args.host_keys.verify_host_key == cli::VerifyHostKey::Console)
        .then(|| host_keys::fetch_console(aws.ec2().clone(), target.instance_id.clone()));
    let key = keypush::EphemeralKey::generate()?;
    let push = route::KeyPush {
        os_user: user.clone(),
        public_key: key.public_openssh.clone(),
    };
    let cache = args.connect.cache();
    let connected =
        connect::connect_cached(&aws, &dest, Some(&push), cache.as_ref(), args.serial_push).await;
    let (tunnel, _route, from_cache) = connected.inspect_err(|_| progress.clear())?;
    let mut closed = tunnel.close_status();
    let policy = host_keys::HostKeyPolicy {
        host: dest.instance_id.clone(),
        known_hosts: args.host_keys.file(),
        notify: !args.quiet,
        strict: args.host_keys.strict_host_key_checking,
        console,
        known_algorithms,
    };
    progress.say(&format!("authenticating as {user}"));
    let mut session = session::Session::connect(
        tunnel,
        policy.clone(),
        &user,
        key.private.clone(),
        args.keepalive,
    )
    .await;
    // A cached route whose tunnel closed before SSH could start (the IP now
    // belongs to nothing, say): look up afresh and retry, once.
    if from_cache && session.is_err() && closed.abnormal().is_some() {
        tracing::info!("the cached route failed before SSH started; looking it up afresh");
        connect::forget(cache.as_ref(), &aws, &dest.instance_id);
        let connected =
            connect::connect_cached(&aws, &dest, Some(&push), cache.as_ref(), args.serial_push)
                .await;
        let (tunnel, _route, _) = connected.inspect_err(|_| progress.clear())?;
        closed = tunnel.close_status();
        session =
            session::Session::connect(tunnel, policy, &user, key.private.clone(), args.keepalive)
                .await;
    }
    progress.clear();
    match session {
        Ok(session) => Ok(LoggedIn { session, closed }),
        Err(e) => Err(match (&e, closed.error()) {
            (Error::Ssh(_) | Error::SshProtocol(_) | Error::Io(_), Some(closed)) => closed,
            _ => e,
        }),
    }
}
