//! `bench __relay HOST:PORT`: the do-nothing ProxyCommand that bulk
//! transfers are measured against.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The argument that runs this binary as a plain relay.
pub(crate) const RELAY: &str = "__relay";

/// A ProxyCommand that does nothing but move bytes: stdin/stdout joined to a
/// plain TCP connection, no TLS, no websocket, driven the way `eic-ssh proxy`
/// drives them (one current-thread runtime, non-blocking pipes, 64 KiB
/// reads). Its CPU per GB is what the kernel charges any ProxyCommand here
/// for reading a socket and writing a pipe, and back: the floor under
/// `eic-ssh proxy`'s own cost.
pub(crate) fn relay(addr: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let socket = tokio::net::TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        let (from_socket, to_socket) = socket.into_split();
        tokio::select! {
            r = pump(eic_ssh::term::stdio::stdin(), to_socket) => r?,
            r = pump(from_socket, eic_ssh::term::stdio::stdout()) => r?,
        }
        Ok(())
    })
}

/// Copies `from` to `to` in 64 KiB reads, then shuts `to` down.
async fn pump<R, W>(mut from: R, mut to: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
    }
}
