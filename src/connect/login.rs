//! Log in to one instance with the embedded client: choose the instance the
//! target names, push an ephemeral key, open the tunnel, check the host key
//! and authenticate. Shared by the default command and `cp`.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::Instant;

use super::context::{Context, Settings};
use crate::aws::{self, keypush};
use crate::connect;
use crate::error::Error;
use crate::ssh::host_keys::{self, HostKeyChecking};
use crate::ssh::{known_hosts, session};
use crate::target::{self, Target};
use crate::term;
use crate::tunnel::CloseStatus;

/// What a login needs besides the target.
pub struct LoginOptions {
    pub user: String,
    /// The AWS configuration, timeouts and cache to load.
    pub settings: Settings,
    /// The port and the route given on the command line (`--eice-id`,
    /// `--private-ip`…); its instance ID is replaced by the chosen one's.
    pub dest: target::Destination,
    pub host_keys: HostKeyChecking,
    pub keepalive: session::Keepalive,
    pub quiet: bool,
    pub serial_push: bool,
    /// The key type the user asked for; `None`: ed25519, falling back to
    /// ECDSA once if the server refuses it.
    pub key_type: Option<keypush::KeyType>,
    /// Never open the picker: several matches are a usage error.
    pub no_pick: bool,
}

/// An authenticated session, how its tunnel closed (for explaining a later
/// failure) and when it opened.
pub struct LoggedIn {
    pub session: session::Session,
    pub closed: CloseStatus,
    pub opened: Instant,
}

impl LoggedIn {
    /// An SSH-level failure caused by the tunnel ending is reported as that,
    /// with the bytes that got through when it was cut mid-stream.
    pub fn explain(&self, e: Error) -> Error {
        self.closed.explain(e)
    }
}

/// Log in to the instance `target` names, or (no target, on a terminal) the
/// one the user picks among the running instances that have an endpoint.
pub async fn login(target: Option<&Target>, args: LoginOptions) -> Result<LoggedIn, Error> {
    let user = args.user.clone();
    let progress = term::Progress::new(args.quiet);
    // Say what is under way, and no more: a Name is looked up before any
    // key is pushed (it may name no instance); an ID is looked up while
    // the key goes.
    if let Some(target) = target {
        progress.say(&match target.instance_id() {
            Some(id) => format!("looking up {id} and pushing a key"),
            None => format!("looking up {}", target.expr),
        });
    }
    let Context { aws, cache } = Context::load(&args.settings).await?;
    let scope = aws.cache_scope();
    let profile = Some(scope.as_str());
    // A target that names an instance reached before (by its Name tag or
    // private IP) is looked up again, but the key push and the tunnel to
    // the remembered instance start at once beside that lookup, and are used
    // only if it finds that same instance: a warm connection by name is
    // then one round trip, as by ID.
    let remembered = match (target, &cache) {
        (Some(t), Some(c)) if t.instance_id().is_none() && !args.dest.has_route_flags() => {
            c.instance_for(profile, &aws.region, &t.expr)
        }
        _ => None,
    };
    let (chosen, early) = match (target, remembered) {
        (Some(t), Some(id)) => {
            tracing::info!(
                "{} was {id} last time: starting on it while looking it up",
                t.expr
            );
            progress.say(&format!("looking up {} and pushing a key to {id}", t.expr));
            let choose = crate::target::choose::choose(&aws, t, args.no_pick, false);
            let early = start(
                &aws,
                &args,
                &user,
                cache.as_ref(),
                args.dest.with_instance(&id),
            );
            let (chosen, early) = tokio::join!(choose, early);
            (chosen, Some(early))
        }
        (Some(t), None) => (
            crate::target::choose::choose(&aws, t, args.no_pick, true).await,
            None,
        ),
        (None, _) => (crate::target::choose::pick_running(&aws).await, None),
    };
    let chosen = chosen.inspect_err(|_| progress.clear())?;
    let started = match early {
        Some(Ok(s)) if s.dest.instance_id == chosen.instance_id => s,
        early => {
            match early {
                Some(Ok(s)) => tracing::info!(
                    "the target is now {}, not {}: starting again on it",
                    chosen.instance_id,
                    s.dest.instance_id
                ),
                Some(Err(e)) => tracing::info!(
                    "the remembered instance did not answer ({e}); going on with the lookup"
                ),
                None => {}
            }
            if target.is_none_or(|t| t.instance_id().is_none()) {
                progress.say(&format!("pushing a key to {}", chosen.instance_id));
            }
            let mut dest = args.dest.with_instance(&chosen.instance_id);
            dest.prefetched = chosen.prefetched;
            start(&aws, &args, &user, cache.as_ref(), dest)
                .await
                .inspect_err(|_| progress.clear())?
        }
    };
    let Started {
        dest,
        key,
        push,
        console,
        known_algorithms,
        may_fall_back,
        tunnel,
        from_cache,
    } = started;
    let fell_back = AtomicBool::new(false);
    let fallback = || -> Option<session::Fallback<'_>> {
        may_fall_back.then(|| -> session::Fallback<'_> {
            Box::pin(async {
                tracing::info!(
                    "the server refused the ed25519 key; pushing an ECDSA P-256 key and trying again"
                );
                let k = keypush::EphemeralKey::generate_type(keypush::KeyType::Ecdsa)?;
                keypush::send_public_key(aws.eic(), &dest.instance_id, &user, &k.public_openssh)
                    .await?;
                fell_back.store(true, Ordering::Relaxed);
                Ok(k.private)
            })
        })
    };
    let mut opened = Instant::now();
    let mut closed = tunnel.close_status();
    let policy = host_keys::HostKeyPolicy {
        host: dest.instance_id.clone(),
        known_hosts: args.host_keys.known_hosts.clone(),
        notify: !args.quiet,
        strict: args.host_keys.strict,
        console,
        known_algorithms,
        recorder: None,
    };
    progress.say(&format!("authenticating as {user}"));
    let limit = aws.connect_timeout;
    // A key refused because it expired before it was used is pushed again:
    // the same key, once per connection.
    let repush = || -> session::Repush<'_> {
        Box::pin(keypush::send_public_key(
            aws.eic(),
            &dest.instance_id,
            &push.os_user,
            &push.public_key,
        ))
    };
    // The tunnel's TLS and framing run in a task of their own, beside the
    // session's SSH work: bulk transfers use both cores.
    let login = |policy| session::Login {
        policy,
        user: &user,
        key: key.private.clone(),
        keepalive: args.keepalive,
        limit,
        repush: Some(repush()),
        fallback: fallback(),
    };
    let mut session = session::Session::connect(tunnel.into_pipe(), login(policy.clone())).await;
    // A cached route whose tunnel closed before SSH could start (the IP now
    // belongs to nothing, say): look up afresh and retry, once.
    if from_cache && session.is_err() && closed.abnormal().is_some() {
        tracing::info!("the cached route failed before SSH started; looking it up afresh");
        connect::forget(cache.as_ref(), &aws, &dest.instance_id);
        let connected =
            connect::connect_cached(&aws, &dest, Some(&push), cache.as_ref(), args.serial_push)
                .await;
        let (tunnel, _route, _) = connected.inspect_err(|_| progress.clear())?;
        opened = Instant::now();
        closed = tunnel.close_status();
        session = session::Session::connect(tunnel.into_pipe(), login(policy)).await;
    }
    if session.is_ok() && fell_back.load(Ordering::Relaxed) {
        tracing::info!(
            "{} accepted the ECDSA key: remembering that in the route cache",
            dest.instance_id
        );
        if let Some(c) = &cache {
            c.set_key_type(profile, &aws.region, &dest.instance_id, "ecdsa");
        }
    }
    progress.clear();
    match session {
        Ok(session) => Ok(LoggedIn {
            session,
            closed,
            opened,
        }),
        Err(e) => Err(closed.explain(e)),
    }
}

/// A login under way: the instance, its key pushed and its tunnel open.
struct Started {
    dest: target::Destination,
    key: keypush::EphemeralKey,
    push: target::KeyPush,
    console: Option<host_keys::ConsoleFetch>,
    known_algorithms: Vec<russh::keys::Algorithm>,
    /// Only the default key type may fall back; a type asked for is final.
    may_fall_back: bool,
    tunnel: crate::tunnel::Tunnel,
    from_cache: bool,
}

/// Push a fresh key for `dest`'s instance and open its tunnel (the console
/// fetched alongside for a first contact).
async fn start(
    aws: &aws::Aws,
    args: &LoginOptions,
    user: &str,
    cache: Option<&target::cache::RouteCache>,
    dest: target::Destination,
) -> Result<Started, Error> {
    dest.check_eice_dns(&aws.region)?;
    let instance_id = dest.instance_id.clone();
    // A first contact is verified against the console, fetched alongside.
    let known_algorithms = known_hosts::known_algorithms(&args.host_keys.known_hosts, &instance_id);
    let console = (known_algorithms.is_empty() && args.host_keys.console)
        .then(|| host_keys::fetch_console(aws.ec2().clone(), instance_id.clone()));
    let scope = aws.cache_scope();
    let profile = Some(scope.as_str());
    // An instance that refused ed25519 before gets the type it took then.
    let remembered = cache
        .filter(|_| args.key_type.is_none())
        .and_then(|c| c.key_type(profile, &aws.region, &instance_id))
        .and_then(|name| keypush::KeyType::from_name(&name));
    if let Some(t) = remembered {
        tracing::info!(
            "pushing an {} key: {instance_id} refused ed25519 before (remembered in the route cache)",
            t.name(),
        );
    }
    let key_type = args
        .key_type
        .or(remembered)
        .unwrap_or(keypush::KeyType::Ed25519);
    let key = keypush::EphemeralKey::generate_type(key_type)?;
    let may_fall_back = args.key_type.is_none() && key_type == keypush::KeyType::Ed25519;
    let push = target::KeyPush {
        os_user: user.to_owned(),
        public_key: key.public_openssh.clone(),
    };
    let (tunnel, _route, from_cache) =
        connect::connect_cached(aws, &dest, Some(&push), cache, args.serial_push).await?;
    Ok(Started {
        dest,
        key,
        push,
        console,
        known_algorithms,
        may_fall_back,
        tunnel,
        from_cache,
    })
}
