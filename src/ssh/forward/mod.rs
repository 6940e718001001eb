//! Port forwarding over the session: `-L` (local listeners, `direct-tcpip`
//! channels), `-D` (a local SOCKS proxy whose connections leave from the
//! instance) and `-R` (`tcpip-forward` on the instance, connections carried
//! back here).
//!
//! Local listeners are bound before anything touches the network, so a port
//! in use fails at once, naming the address. Each forwarded connection is
//! its own channel with its own window.

pub mod listen;
pub mod local;
pub mod remote;
pub mod socks;
pub mod spec;

use std::net::SocketAddr;
use std::sync::Arc;

use russh::client::{Handle, Msg};
use tokio::io::{AsyncRead, AsyncWrite};

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
    /// cannot bind is an error naming its address.
    pub async fn bind(specs: &ForwardSpecs) -> Result<Bound, Error> {
        let mut local = Vec::new();
        for f in &specs.local {
            local.push((f.clone(), Listeners::bind(&f.bind, f.port).await?));
        }
        let mut dynamic = Vec::new();
        for d in &specs.dynamic {
            dynamic.push((d.clone(), Listeners::bind(&d.bind, d.port).await?));
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

/// Open a `direct-tcpip` channel to `host:port` as the instance resolves it.
pub async fn open_direct(
    handle: &Handle<Client>,
    host: &str,
    port: u16,
    from: SocketAddr,
) -> Result<russh::Channel<Msg>, russh::Error> {
    handle
        .channel_open_direct_tcpip(
            host,
            u32::from(port),
            from.ip().to_string(),
            u32::from(from.port()),
        )
        .await
}

/// Move bytes both ways between a local socket and a channel until both
/// sides are done (or either fails); log the totals each way at `-v`.
pub async fn pump<L>(local: L, channel: russh::Channel<Msg>, label: &str)
where
    L: AsyncRead + AsyncWrite + Unpin,
{
    let (mut local_rd, mut local_wr) = tokio::io::split(local);
    let (mut chan_rd, mut chan_wr) = tokio::io::split(channel.into_stream());
    let mut sent = 0u64;
    let mut received = 0u64;
    let failure = {
        let up = copy(&mut local_rd, &mut chan_wr, &mut sent);
        let down = copy(&mut chan_rd, &mut local_wr, &mut received);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        let mut failure = None;
        while !(up_done && down_done) && failure.is_none() {
            tokio::select! {
                r = &mut up, if !up_done => {
                    up_done = true;
                    failure = r.err();
                }
                r = &mut down, if !down_done => {
                    down_done = true;
                    failure = r.err();
                }
            }
        }
        failure
    };
    match failure {
        None => tracing::info!("{label}: closed, {sent} bytes sent, {received} bytes received"),
        Some(e) => {
            tracing::info!("{label}: ended ({e}), {sent} bytes sent, {received} bytes received")
        }
    }
}

/// Copy until EOF, then pass the EOF on; count what went through.
async fn copy<R, W>(rd: &mut R, wr: &mut W, count: &mut u64) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            return wr.shutdown().await;
        }
        wr.write_all(&buf[..n]).await?;
        *count += n as u64;
    }
}
