//! `-R`: the instance's sshd listens (`tcpip-forward`) and each connection
//! it accepts comes back as a `forwarded-tcpip` channel, carried to
//! HOST:HOSTPORT as resolved here.

use std::sync::Arc;

use russh::ChannelOpenFailure;
use russh::client::Handle;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::Error;
use crate::ssh::forward::pump::pump;
use crate::ssh::forward::spec::{Bind, PortForward};
use crate::ssh::host_keys::Client;
pub use crate::ssh::host_keys::Incoming;
use crate::text::remote_text;

/// A remote forward the server accepted, with the port it listens on.
#[derive(Debug, Clone)]
pub struct Route {
    pub bind: Bind,
    pub port: u16,
    pub host: String,
    pub host_port: u16,
}

/// The address sent in `tcpip-forward`, as OpenSSH sends it.
fn wire_address(bind: &Bind) -> String {
    match bind {
        Bind::Loopback => "localhost".into(),
        Bind::Any => String::new(),
        Bind::Addr(a) => a.clone(),
    }
}

/// Ask the server to listen for each of `specs`. A refusal is an error
/// naming the port, or with `best_effort` a warning.
pub async fn request(
    handle: &Handle<Client>,
    specs: &[PortForward],
    best_effort: bool,
) -> Result<Vec<Route>, Error> {
    let mut routes = Vec::new();
    for f in specs {
        match handle
            .tcpip_forward(wire_address(&f.bind), u32::from(f.port))
            .await
        {
            Ok(bound) => {
                let port = if f.port == 0 {
                    u16::try_from(bound).unwrap_or(0)
                } else {
                    f.port
                };
                if f.port == 0 {
                    // As ssh prints it, for scripts that parse it.
                    eprintln!(
                        "Allocated port {port} for remote forward to {}:{}",
                        f.host, f.host_port
                    );
                }
                routes.push(Route {
                    bind: f.bind.clone(),
                    port,
                    host: f.host.clone(),
                    host_port: f.host_port,
                });
            }
            Err(e) => {
                let err = Error::RemoteForwardRefused {
                    listen: format!("{}:{}", f.bind, f.port),
                    source: e,
                };
                if best_effort {
                    tracing::warn!("{err}");
                } else {
                    return Err(err);
                }
            }
        }
    }
    Ok(routes)
}

/// Carry every incoming connection to its route's HOST:HOSTPORT.
pub async fn serve(routes: Vec<Route>, mut incoming: UnboundedReceiver<Incoming>) {
    let routes = Arc::new(routes);
    while let Some(inc) = incoming.recv().await {
        let route = routes
            .iter()
            .find(|r| {
                u32::from(r.port) == inc.connected_port
                    && wire_address(&r.bind) == inc.connected_address
            })
            .or_else(|| {
                routes
                    .iter()
                    .find(|r| u32::from(r.port) == inc.connected_port)
            })
            .cloned();
        let Some(route) = route else {
            tracing::warn!(
                "-R: the instance forwarded a connection for {}:{}, which was not asked for",
                remote_text(&inc.connected_address),
                inc.connected_port
            );
            inc.reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            continue;
        };
        tokio::spawn(async move {
            let label = format!(
                "-R {}:{} from {}:{} on the instance",
                route.host,
                route.host_port,
                remote_text(&inc.originator),
                inc.originator_port
            );
            match tokio::net::TcpStream::connect((route.host.as_str(), route.host_port)).await {
                Ok(socket) => {
                    let _ = socket.set_nodelay(true);
                    inc.reply.accept().await;
                    tracing::info!("{label}: open");
                    pump(socket, inc.channel, &label).await;
                }
                Err(e) => {
                    tracing::warn!(
                        "-R: cannot connect to {}:{}: {e}",
                        route.host,
                        route.host_port
                    );
                    inc.reply.reject(ChannelOpenFailure::ConnectFailed).await;
                }
            }
        });
    }
}
