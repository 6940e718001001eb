//! The tunnel's TCP connection: through the proxy the environment names for
//! the endpoint, else straight to the endpoint's name over both address
//! families. `-v` says which.

use tokio::net::TcpStream;

use crate::error::Error;
use crate::net::dial::{self, DialError};
use crate::net::proxy::Proxies;

/// Connect to the endpoint `host:port`, through a proxy where one applies.
pub async fn dial(host: &str, port: u16) -> Result<TcpStream, Error> {
    match Proxies::from_env().for_https(host, port) {
        Some(proxy) => {
            tracing::info!("tunnel to {host}:{port} through the proxy {proxy}");
            Ok(proxy.connect(host, port).await?)
        }
        None => {
            tracing::info!("tunnel to {host}:{port}: direct, no proxy");
            dial::connect(host, port).await.map_err(|e| {
                let reason = match e {
                    DialError::Connect { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                Error::TunnelConnect {
                    host: format!("{host}:{port}"),
                    reason,
                }
            })
        }
    }
}
