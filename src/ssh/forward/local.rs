//! `-L`: each local connection becomes a `direct-tcpip` channel to
//! HOST:HOSTPORT, which the instance resolves and connects to.

use std::sync::Arc;

use russh::client::Handle;
use tokio::net::TcpListener;

use crate::ssh::forward::pump::{open_direct, pump};
use crate::ssh::forward::spec::PortForward;
use crate::ssh::host_keys::Client;

/// Accept on `listener` for as long as the session lives.
pub async fn serve(listener: TcpListener, fwd: PortForward, handle: Arc<Handle<Client>>) {
    loop {
        let (socket, from) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, say: keep serving the others.
                tracing::warn!("-L {fwd}: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let handle = handle.clone();
        let fwd = fwd.clone();
        tokio::spawn(async move {
            let label = format!("-L {}:{} from {from}", fwd.host, fwd.host_port);
            match open_direct(&handle, &fwd.host, fwd.host_port, from).await {
                Ok(channel) => {
                    tracing::info!("{label}: open");
                    pump(socket, channel, &label).await;
                }
                Err(e) => {
                    tracing::warn!(
                        "-L: the instance could not connect to {}:{}: {e}",
                        fwd.host,
                        fwd.host_port
                    );
                }
            }
        });
    }
}
