//! Port forwarding over the session: `-L` (local listeners, `direct-tcpip`
//! channels), `-D` (a local SOCKS proxy whose connections leave from the
//! instance) and `-R` (`tcpip-forward` on the instance, connections carried
//! back here).
//!
//! Local listeners are bound before anything touches the network, so a port
//! in use fails at once, naming the address. Each forwarded connection is
//! its own channel.
//!
//! Each connection's bytes are moved by [`pump`], which keeps one channel
//! that nobody reads from stopping the others.

pub mod listen;
pub mod local;
pub mod pump;
pub mod remote;
pub mod socks;
pub mod spec;

use std::net::SocketAddr;
use std::sync::Arc;

use russh::client::Handle;

use crate::error::Error;
use crate::ssh::host_keys::Client;
pub use listen::Listeners;
pub use spec::{Bind, DynamicForward, PortForward};

/// What the user asked to forward.
#[derive(Debug, Clone, Default)]
pub struct ForwardSpecs {
    pub local: Vec<PortForward>,
    pub remote: Vec<PortForward>,
    pub dynamic: Vec<DynamicForward>,
    /// A remote forward the server refuses is a warning, not an error.
    pub remote_best_effort: bool,
}

impl ForwardSpecs {
    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.remote.is_empty() && self.dynamic.is_empty()
    }
}

/// The local side of every `-L` and `-D`, bound and waiting for the session.
pub struct Bound {
    local: Vec<(PortForward, Listeners)>,
    dynamic: Vec<(DynamicForward, Listeners)>,
    remote: Vec<PortForward>,
    remote_best_effort: bool,
}

impl Bound {
    /// Bind every local listener now, before the session: the first one that
    /// cannot bind is an error naming its address. A listener beyond
    /// loopback is warned about first.
    pub async fn bind(specs: &ForwardSpecs) -> Result<Bound, Error> {
        let mut local = Vec::new();
        for f in &specs.local {
            let addrs = listen::resolve(&f.bind, f.port).await?;
            warn_if_exposed(
                &addrs,
                &format!("-L {f}"),
                &format!(
                    "a connection to {} from the instance",
                    listen::show(&Bind::Addr(f.host.clone()), f.host_port)
                ),
            );
            local.push((
                f.clone(),
                Listeners::bind_addrs(&f.bind, f.port, addrs).await?,
            ));
        }
        let mut dynamic = Vec::new();
        for d in &specs.dynamic {
            let addrs = listen::resolve(&d.bind, d.port).await?;
            warn_if_exposed(
                &addrs,
                &format!("-D {}", listen::show(&d.bind, d.port)),
                "a SOCKS proxy into the instance's network (the VPC and beyond)",
            );
            dynamic.push((
                d.clone(),
                Listeners::bind_addrs(&d.bind, d.port, addrs).await?,
            ));
        }
        Ok(Bound {
            local,
            dynamic,
            remote: specs.remote.clone(),
            remote_best_effort: specs.remote_best_effort,
        })
    }

    /// Start serving over `handle`: the listeners accept, and the remote
    /// forwards are requested (a refusal is an error naming the port unless
    /// best effort was asked). `notify` prints one line per forward.
    pub async fn start(
        self,
        handle: Arc<Handle<Client>>,
        incoming: Option<tokio::sync::mpsc::UnboundedReceiver<remote::Incoming>>,
        notify: bool,
    ) -> Result<(), Error> {
        let say = |line: String| {
            if notify {
                eprintln!("eic-ssh: {line}");
            } else {
                tracing::info!("{line}");
            }
        };
        if !self.remote.is_empty() {
            let routes = remote::request(&handle, &self.remote, self.remote_best_effort).await?;
            for r in &routes {
                say(format!(
                    "forwarding {} on the instance to {}:{}",
                    listen::show(&r.bind, r.port),
                    r.host,
                    r.host_port
                ));
            }
            if let Some(incoming) = incoming {
                tokio::spawn(remote::serve(routes, incoming));
            }
        }
        for (f, listeners) in self.local {
            say(format!(
                "forwarding {} to {}:{} through the instance",
                listeners.describe(),
                f.host,
                f.host_port
            ));
            for l in listeners.into_inner() {
                tokio::spawn(local::serve(l, f.clone(), handle.clone()));
            }
        }
        for (_, listeners) in self.dynamic {
            say(format!(
                "SOCKS proxy on {}: connections leave from the instance",
                listeners.describe()
            ));
            for l in listeners.into_inner() {
                tokio::spawn(socks::serve(l, handle.clone()));
            }
        }
        Ok(())
    }

    /// The addresses bound for `-L` and `-D`, in the order given.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.local
            .iter()
            .map(|(_, l)| l)
            .chain(self.dynamic.iter().map(|(_, l)| l))
            .flat_map(|l| l.addrs())
            .collect()
    }
}

/// Warn, on stderr and even with -q (the user may not know what they are
/// exposing), when a forward listens beyond loopback: the listener has no
/// authentication of its own, and what it gives is opened through the
/// user's session. The wording follows `tunnel --bind`'s.
fn warn_if_exposed(addrs: &[SocketAddr], forward: &str, gives: &str) {
    let Some(addr) = addrs.iter().find(|a| !listen::is_loopback(a.ip())) else {
        return;
    };
    eprintln!(
        "eic-ssh: warning: {forward} listens on {addr}, not a loopback address: anyone who can reach it gets {gives}, unauthenticated, through your session. Bind to localhost (the default) unless you mean this."
    );
}
