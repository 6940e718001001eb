//! Dialing a host name: every address it resolves to, both families
//! interleaved, a new attempt every 250 ms while the earlier ones are still
//! pending, the first to connect wins (Happy Eyeballs, RFC 8305). A
//! dual-stack name thus works for a client with IPv4 only, IPv6 only, or a
//! broken path on one of them.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::net::TcpStream;

/// How long an attempt runs alone before the next address is tried too.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Why a host could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("{host} resolved to no address")]
    NoAddress { host: String },
    #[error("{source} ({addr})")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Resolve `host` and connect to `port` on the first of its addresses that
/// answers; `TCP_NODELAY` is set.
pub async fn connect(host: &str, port: u16) -> Result<TcpStream, DialError> {
    connect_any(&[(host.to_owned(), port)]).await
}

/// [`connect`] over several (host, port) pairs taken as the addresses of
/// one name: all resolved, in order, then raced as one list.
pub async fn connect_any(targets: &[(String, u16)]) -> Result<TcpStream, DialError> {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for (host, port) in targets {
        let found = tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|source| DialError::Resolve {
                host: host.clone(),
                source,
            })?;
        addrs.extend(found.filter(|a| !addrs.contains(a)).collect::<Vec<_>>());
    }
    let host = targets
        .iter()
        .map(|(h, _)| h.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if addrs.is_empty() {
        return Err(DialError::NoAddress { host });
    }
    let stream = race(interleave(addrs)).await?;
    if let Ok(peer) = stream.peer_addr() {
        let family = if peer.is_ipv6() { "IPv6" } else { "IPv4" };
        tracing::debug!(host, %peer, family, "connected");
    }
    Ok(stream)
}

/// The resolver's order, with the families alternating from the first
/// address's family on (RFC 8305 §4).
pub fn interleave(addrs: Vec<SocketAddr>) -> VecDeque<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (mut first, mut second): (VecDeque<_>, VecDeque<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = VecDeque::with_capacity(first.len() + second.len());
    loop {
        match (first.pop_front(), second.pop_front()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

async fn race(mut queue: VecDeque<SocketAddr>) -> Result<TcpStream, DialError> {
    let mut running = FuturesUnordered::new();
    let mut last = None;
    loop {
        if let Some(addr) = queue.pop_front() {
            tracing::debug!(%addr, "trying");
            running.push(attempt(addr));
        }
        if running.is_empty() {
            break;
        }
        let delay = tokio::time::sleep(ATTEMPT_DELAY);
        tokio::pin!(delay);
        loop {
            tokio::select! {
                result = running.next() => match result {
                    Some(Ok(stream)) => return Ok(stream),
                    Some(Err(e)) => {
                        tracing::debug!("{e}");
                        last = Some(e);
                        // A failure starts the next address at once.
                        if !queue.is_empty() || running.is_empty() {
                            break;
                        }
                    }
                    None => break,
                },
                () = &mut delay, if !queue.is_empty() => break,
            }
        }
    }
    Err(last.unwrap_or(DialError::NoAddress {
        host: String::new(),
    }))
}

async fn attempt(addr: SocketAddr) -> Result<TcpStream, DialError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| DialError::Connect { addr, source })?;
    stream
        .set_nodelay(true)
        .map_err(|source| DialError::Connect { addr, source })?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_from_the_first() {
        let got = interleave(vec![
            a("[::1]:1"),
            a("[::2]:1"),
            a("[::3]:1"),
            a("10.0.0.1:1"),
        ]);
        assert_eq!(
            Vec::from(got),
            vec![a("[::1]:1"), a("10.0.0.1:1"), a("[::2]:1"), a("[::3]:1")]
        );
        let got = interleave(vec![a("10.0.0.1:1"), a("10.0.0.2:1"), a("[::1]:1")]);
        assert_eq!(
            Vec::from(got),
            vec![a("10.0.0.1:1"), a("[::1]:1"), a("10.0.0.2:1")]
        );
    }

    /// A dead first address (nothing listens) does not stop the second.
    #[tokio::test]
    async fn a_refused_address_falls_back_to_the_next() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap();
        let accept = tokio::spawn(async move { live.accept().await.map(|_| ()) });
        let s = race(VecDeque::from(vec![dead_addr, live_addr]))
            .await
            .unwrap();
        assert_eq!(s.peer_addr().unwrap(), live_addr);
        accept.await.unwrap().unwrap();
    }

    /// Both families of a dual-stack name: IPv6 first (as resolvers order
    /// them), nothing listening there, so IPv4 answers.
    #[tokio::test]
    async fn a_dead_ipv6_address_falls_back_to_ipv4() {
        let dead = std::net::TcpListener::bind("[::1]:0").unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap();
        let accept = tokio::spawn(async move { live.accept().await.map(|_| ()) });
        let order = interleave(vec![dead_addr, live_addr]);
        assert!(order[0].is_ipv6());
        let s = race(order).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), live_addr);
        accept.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn every_address_refused_is_an_error_naming_the_last() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let e = race(VecDeque::from(vec![dead_addr])).await.unwrap_err();
        assert!(e.to_string().contains(&dead_addr.to_string()), "{e}");
    }
}
