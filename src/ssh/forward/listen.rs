//! Local listening sockets for `-L` and `-D`: loopback by default (both
//! 127.0.0.1 and ::1, as OpenSSH does), every interface for `*`, or the
//! addresses a bind name resolves to.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;

use crate::error::Error;
use crate::ssh::forward::spec::Bind;

/// The sockets of one forward, all on the same port.
pub struct Listeners {
    bind: Bind,
    listeners: Vec<TcpListener>,
}

/// `addr:port` for messages, with IPv6 in brackets.
pub fn show(bind: &Bind, port: u16) -> String {
    format!("{bind}:{port}")
}

/// Whether `ip` is a loopback address (an IPv4-mapped one too): only this
/// machine can connect to a listener there.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// The addresses `bind:port` stands for: both loopbacks, both wildcards
/// for `*`, or what a name resolves to.
pub async fn resolve(bind: &Bind, port: u16) -> Result<Vec<SocketAddr>, Error> {
    Ok(match bind {
        Bind::Loopback => vec![
            (Ipv4Addr::LOCALHOST, port).into(),
            (Ipv6Addr::LOCALHOST, port).into(),
        ],
        // [::] takes IPv4 connections too where the system makes it
        // dual-stack (then 0.0.0.0 is refused as in use, and that is
        // fine); with bindv6only set, or IPv6 off, 0.0.0.0 is needed.
        Bind::Any => vec![
            (Ipv6Addr::UNSPECIFIED, port).into(),
            (Ipv4Addr::UNSPECIFIED, port).into(),
        ],
        Bind::Addr(host) => match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| listen_error(bind, port, e))?
                .collect(),
        },
    })
}

impl Listeners {
    /// Bind `bind:port`. Port 0 picks a free port (the same one on every
    /// address). The first address is required; further loopback or
    /// wildcard addresses are best effort, for hosts without IPv6.
    pub async fn bind(bind: &Bind, port: u16) -> Result<Listeners, Error> {
        Listeners::bind_addrs(bind, port, resolve(bind, port).await?).await
    }

    /// Bind the addresses `bind:port` was [`resolve`]d to.
    pub async fn bind_addrs(
        bind: &Bind,
        port: u16,
        addrs: Vec<SocketAddr>,
    ) -> Result<Listeners, Error> {
        let mut listeners: Vec<TcpListener> = Vec::new();
        let mut first_error = None;
        for mut addr in addrs {
            // Port 0: every address gets the port the first one picked.
            if let Some(l) = listeners.first()
                && addr.port() == 0
            {
                addr.set_port(l.local_addr()?.port());
            }
            match TcpListener::bind(addr).await {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    tracing::debug!("cannot listen on {addr}: {e}");
                    first_error.get_or_insert((addr, e));
                }
            }
        }
        match (listeners.is_empty(), first_error) {
            (true, Some((addr, source))) => Err(Error::Listen {
                addr: addr.to_string(),
                source,
            }),
            (true, None) => Err(Error::Listen {
                addr: show(bind, port),
                source: io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    "the name resolves to no address",
                ),
            }),
            // Loopback: a missing ::1 is fine, a taken one is not.
            (false, Some((addr, e)))
                if matches!(bind, Bind::Loopback) && e.kind() == io::ErrorKind::AddrInUse =>
            {
                Err(Error::Listen {
                    addr: addr.to_string(),
                    source: e,
                })
            }
            (false, _) => Ok(Listeners {
                bind: bind.clone(),
                listeners,
            }),
        }
    }

    /// The bound addresses.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// E.g. `127.0.0.1:5432 and [::1]:5432`.
    pub fn describe(&self) -> String {
        let addrs: Vec<String> = self.addrs().iter().map(ToString::to_string).collect();
        if addrs.is_empty() {
            show(&self.bind, 0)
        } else {
            addrs.join(" and ")
        }
    }

    pub fn into_inner(self) -> Vec<TcpListener> {
        self.listeners
    }
}

fn listen_error(bind: &Bind, port: u16, source: io::Error) -> Error {
    Error::Listen {
        addr: show(bind, port),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_in_use_is_an_error_naming_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = Listeners::bind(&Bind::Loopback, port).await.err().unwrap();
        assert!(
            err.to_string()
                .contains(&format!("cannot listen on 127.0.0.1:{port}")),
            "{err}"
        );
        assert_eq!(err.exit_code(), 255);
    }

    #[tokio::test]
    async fn port_zero_picks_one_port_for_every_loopback_address() {
        let l = Listeners::bind(&Bind::Loopback, 0).await.unwrap();
        let addrs = l.addrs();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == addrs[0].port() && a.port() != 0)
        );
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
