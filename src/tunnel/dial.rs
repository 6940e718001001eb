//! The tunnel's TCP connection: through the proxy the environment names for
//! the endpoint, else straight to the endpoint's name over both address
//! families. `-v` says which.

use tokio::net::TcpStream;

use crate::error::Error;
use crate::net::dial::{self, DialError};
use crate::net::proxy::Proxies;

/// Connect to the endpoint `name:port` by `targets` (host, port: the name
/// itself, or where `EIC_SSH_CONNECT_TO` maps it): through a proxy where one
/// applies to the name (so `NO_PROXY` is matched against the endpoint's
/// name, as for the API calls' URLs), with a `CONNECT` to the first target,
/// else straight to every address of every target, raced (Happy Eyeballs).
pub async fn dial(name: &str, port: u16, targets: &[(String, u16)]) -> Result<TcpStream, Error> {
    let Some((host, first_port)) = targets.first() else {
        return Err(Error::Internal("internal error: nothing to dial".into()));
    };
    let named = targets
        .iter()
        .map(|(h, p)| format!("{h}:{p}"))
        .collect::<Vec<_>>()
        .join(", ");
    match Proxies::from_env().for_https(name, port) {
        Some(proxy) => {
            tracing::info!("tunnel to {host}:{first_port} through the proxy {proxy}");
            Ok(proxy.connect(host, *first_port).await?)
        }
        None => {
            tracing::info!("tunnel to {named}: direct, no proxy");
            dial::connect_any(targets).await.map_err(|e| {
                // The refusal itself (the address is in `host`), or why
                // there was no address to try.
                let source = match e {
                    DialError::Connect { source, .. } => source,
                    other => std::io::Error::other(other),
                };
                Error::TunnelConnect {
                    host: named.clone(),
                    source,
                }
            })
        }
    }
}
