//! `eic-ssh tunnel`: a local listener that opens a fresh tunnel per connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::aws::Aws;
use crate::aws::keypush;
use crate::cli::TunnelArgs;
use crate::connect;
use crate::connect::context::{Context, Settings};
use crate::error::Error;
use crate::target::{self, KeyPush};
use crate::tunnel::relay::{CLOSE_GRACE, Relayed};

/// `eic-ssh tunnel`: listen locally; each accepted connection gets its own
/// freshly presigned tunnel.
pub async fn run(args: TunnelArgs, no_pick: bool) -> Result<u8, Error> {
    let user = args.user.resolve(Some(&args.target));
    let push = match args.push_key {
        true => Some(KeyPush {
            os_user: user,
            public_key: keypush::user_public_key(args.public_key.as_deref()).await?,
        }),
        false => None,
    };
    if let Some(warning) = args.bind.and_then(exposure_warning) {
        // Shown even with -q: the user may not know what they are exposing.
        eprintln!("eic-ssh: warning: {warning}");
    }
    let listeners = bind(args.bind, args.local_port).await?;
    // Each connection's route is the one looked up here: no cache.
    let settings = Settings {
        cache: false,
        ..args.connect.settings()
    };
    let aws = Arc::new(Context::load(&settings).await?.aws);
    let chosen = crate::target::choose::choose(&aws, &args.target, no_pick, true).await?;
    let mut dest = args.connect.destination(&chosen.instance_id);
    dest.prefetched = chosen.prefetched;
    // The route does not change between connections; the URL must.
    let route = connect::resolve(&aws, &dest).await?;

    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    eprintln!(
        "eic-ssh: listening on {} -> {}:{} ({}) through {}; Ctrl-C to stop",
        addrs.join(" and "),
        dest.instance_id,
        dest.port,
        route.private_ip,
        route.endpoint_id
    );
    // The chosen port, alone on stdout, for scripts.
    if args.local_port == 0
        && let Some(port) = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    {
        println!("{port}");
    }

    // Open tunnels count against --max-connections; tunnels still being set
    // up do not, so handshakes that hang (each bounded by --connect-timeout)
    // cannot keep a real connection out. They have a larger bound of their own.
    let limit = Arc::new(Semaphore::new(args.max_connections as usize));
    let setting_up = Arc::new(Semaphore::new(
        (args.max_connections as usize).saturating_mul(PENDING_PER_SLOT),
    ));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(TcpStream, SocketAddr)>(16);
    let mut acceptors = JoinSet::new();
    for l in listeners {
        let tx = tx.clone();
        acceptors.spawn(async move {
            let mut backoff = ACCEPT_BACKOFF_MIN;
            loop {
                match l.accept().await {
                    Ok(conn) => {
                        backoff = ACCEPT_BACKOFF_MIN;
                        if tx.send(conn).await.is_err() {
                            break;
                        }
                    }
                    // Out of file descriptors, say: the listener must outlive
                    // it. Say so, wait for connections to close, go on.
                    Err(e) => {
                        let on = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                        eprintln!(
                            "eic-ssh: accepting a connection on {on} failed: {e}; trying again in {} ms",
                            backoff.as_millis()
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    }
                }
            }
        });
    }
    drop(tx);

    let next_id = AtomicU64::new(1);
    let mut conns = JoinSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = rx.recv() => {
                let Some((socket, peer)) = accepted else { break };
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let max = args.max_connections;
                if limit.available_permits() == 0 {
                    eprintln!("eic-ssh: [{id}] refused {peer}: {}", full(max));
                    continue;
                }
                let Ok(setting_up) = setting_up.clone().try_acquire_owned() else {
                    eprintln!(
                        "eic-ssh: [{id}] refused {peer}: {} connections are still being set up",
                        max as usize * PENDING_PER_SLOT
                    );
                    continue;
                };
                let (aws, dest, route, push) = (aws.clone(), dest.clone(), route.clone(), push.clone());
                let limit = limit.clone();
                conns.spawn(async move {
                    let open = Open { id, peer, aws: &aws, dest: &dest, route: &route, push: push.as_ref() };
                    serve(open, socket, setting_up, limit, max).await;
                });
            }
        }
    }
    // Closed listening sockets refuse new connections at once.
    acceptors.abort_all();
    // An aborted task drops its listener only when it is next polled: wait
    // for that, so "stopped accepting" is true when it is printed.
    while acceptors.join_next().await.is_some() {}
    if !conns.is_empty() {
        eprintln!(
            "eic-ssh: stopped accepting; waiting up to {} s for {} open connection(s)",
            args.drain_timeout,
            conns.len()
        );
        let drained = tokio::time::timeout(Duration::from_secs(args.drain_timeout), async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            eprintln!("eic-ssh: closing {} connection(s) still open", conns.len());
            conns.abort_all();
        }
    }
    eprintln!("eic-ssh: listener stopped");
    Ok(0)
}

/// How many connections may be setting up their tunnel per open-connection slot.
const PENDING_PER_SLOT: usize = 4;
/// The first and the longest wait after a failed accept.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

fn full(max: u32) -> String {
    format!("{max} connections are open, the most allowed (--max-connections)")
}

/// One accepted connection and what opening its tunnel needs.
struct Open<'a> {
    id: u64,
    peer: SocketAddr,
    aws: &'a Aws,
    dest: &'a target::Destination,
    route: &'a target::Route,
    push: Option<&'a KeyPush>,
}

async fn serve(
    open: Open<'_>,
    mut socket: TcpStream,
    setting_up: OwnedSemaphorePermit,
    limit: Arc<Semaphore>,
    max: u32,
) {
    let Open {
        id,
        peer,
        aws,
        dest,
        route,
        push,
    } = open;
    let started = Instant::now();
    let _ = socket.set_nodelay(true);
    let pushed = async {
        match push {
            Some(p) => {
                keypush::send_public_key(aws.eic(), &dest.instance_id, &p.os_user, &p.public_key)
                    .await
            }
            None => Ok(()),
        }
    };
    // Credentials are looked at afresh for each tunnel, and refreshed when
    // they near expiry.
    let (tunnel, pushed) = tokio::join!(connect::open_tunnel(aws, dest, route), pushed);
    drop(setting_up);
    let tunnel = match (tunnel, pushed) {
        (Ok(t), Ok(())) => t,
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("eic-ssh: [{id}] {peer}: {e}");
            return;
        }
    };
    let Ok(_permit) = limit.try_acquire_owned() else {
        eprintln!("eic-ssh: [{id}] refused {peer}: {}", full(max));
        return;
    };
    eprintln!(
        "eic-ssh: [{id}] opened {peer} -> {}:{}",
        dest.instance_id, dest.port
    );
    let closed = tunnel.close_status();
    let (from, to) = socket.split();
    let result = tunnel.relay(from, to, CLOSE_GRACE).await;
    let secs = started.elapsed().as_secs_f64();
    match (result, closed.error()) {
        (_, Some(e)) => eprintln!("eic-ssh: [{id}] closed {peer} after {secs:.1} s: {e}"),
        (Ok(Relayed { sent, received }), None) => eprintln!(
            "eic-ssh: [{id}] closed {peer} after {secs:.1} s: sent {sent} bytes, received {received} bytes"
        ),
        (Err(e), None) => eprintln!("eic-ssh: [{id}] closed {peer} after {secs:.1} s: {e}"),
    }
}

/// What binding to a non-loopback address exposes: the listener has no
/// authentication of its own, so anyone who can reach it gets a tunnel
/// opened with the user's AWS identity.
pub fn exposure_warning(addr: IpAddr) -> Option<String> {
    (!crate::ssh::forward::listen::is_loopback(addr)).then(|| {
        format!(
            "--bind {addr} is not a loopback address: anyone who can reach it gets an unauthenticated tunnel to the instance, opened with your AWS identity (and with --push-key, a key push for each connection). Bind to 127.0.0.1 or ::1 unless you mean this."
        )
    })
}

/// Listen on `addr`, or on both loopbacks; port 0 gets one free port shared
/// by both.
async fn bind(addr: Option<IpAddr>, port: u16) -> Result<Vec<TcpListener>, Error> {
    let listen = |a: SocketAddr| async move {
        TcpListener::bind(a).await.map_err(|source| Error::Listen {
            addr: a.to_string(),
            source,
        })
    };
    if let Some(ip) = addr {
        return Ok(vec![listen(SocketAddr::new(ip, port)).await?]);
    }
    let v4 = listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)).await?;
    let port = v4.local_addr()?.port();
    let mut all = vec![v4];
    match TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port)).await {
        Ok(v6) => all.push(v6),
        Err(e) => tracing::info!("not listening on [::1]:{port}: {e}"),
    }
    Ok(all)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_binds_are_quiet() {
        for quiet in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(exposure_warning(quiet.parse().unwrap()), None, "{quiet}");
        }
        for loud in ["0.0.0.0", "::", "10.0.0.5", "192.0.2.1", "fe80::1"] {
            let w = exposure_warning(loud.parse().unwrap()).unwrap();
            assert!(w.contains(loud) && w.contains("unauthenticated"), "{w}");
        }
    }
}
