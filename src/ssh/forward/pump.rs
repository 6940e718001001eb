//! Moving one forwarded connection's bytes.
//!
//! Flow control: russh 0.65 re-opens a channel's window when data arrives,
//! not when it is read, and hands each message to the channel through a
//! bounded queue whose `send` the whole session waits on. A channel nobody
//! reads would therefore stop every channel of the session after a few
//! megabytes. So each connection's bytes from the instance are read at
//! once into a buffer of its own (up to [`DOWN_BUFFER`]); a local side that
//! reads slowly only fills its own buffer. One that reads nothing while its
//! buffer is full for [`STUCK_AFTER`] is closed with a warning, so that the
//! others move again: the stall it can cause is bounded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use russh::client::{Handle, Msg};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::ssh::host_keys::Client;

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

/// Bytes from the instance held for one connection whose local side reads
/// slower than they come.
pub const DOWN_BUFFER: usize = 16 << 20;

/// How long a connection may read nothing while its buffer is full before
/// it is closed, so that it stops holding up the session's other channels.
pub const STUCK_AFTER: Duration = Duration::from_secs(5);

const CHUNK: usize = 64 << 10;

/// Move bytes both ways between a local socket and a channel until the
/// instance closes the channel (or either side fails); log the totals each
/// way at `-v`, and a connection closed for not reading as a warning. The
/// channel's messages are taken as they come (no copy), and the channel is
/// closed at the end.
///
/// An EOF either way is passed on and the other way goes on; the instance's
/// close ends the local connection too, as OpenSSH does, even while the
/// local side is still sending (the target has gone, and a channel russh
/// has closed would take those bytes without ever sending them).
pub async fn pump<L>(local: L, channel: russh::Channel<Msg>, label: &str)
where
    L: AsyncRead + AsyncWrite + Unpin,
{
    let (mut local_rd, mut local_wr) = tokio::io::split(local);
    let (mut chan_rd, chan_wr) = channel.split();
    let mut chan_writer = chan_wr.make_writer();
    let mut sent = 0u64;
    let mut received = 0u64;
    let failure = {
        let up = copy(&mut local_rd, &mut chan_writer, &mut sent);
        let down = async {
            let closed = AtomicBool::new(false);
            copy_buffered(
                channel_data(&mut chan_rd, &closed),
                &mut local_wr,
                &mut received,
                STUCK_AFTER,
            )
            .await?;
            // After the instance's EOF, wait for its close.
            while !closed.load(Ordering::Relaxed) {
                if let Some(russh::ChannelMsg::Close) | None = chan_rd.wait().await {
                    closed.store(true, Ordering::Relaxed);
                }
            }
            Ok::<(), std::io::Error>(())
        };
        tokio::pin!(up, down);
        let mut up_done = false;
        loop {
            tokio::select! {
                r = &mut up, if !up_done => {
                    up_done = true;
                    if let Err(e) = r {
                        break Some(e);
                    }
                }
                r = &mut down => break r.err(),
            }
        }
    };
    // Let go of the incoming side first (the session never waits on it
    // again), then close the channel.
    drop(chan_rd);
    let _ = chan_wr.close().await;
    match failure {
        None => tracing::info!("{label}: closed, {sent} bytes sent, {received} bytes received"),
        Some(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            tracing::warn!("{label}: {e}; {sent} bytes sent, {received} bytes received")
        }
        Some(e) => {
            tracing::info!("{label}: ended ({e}), {sent} bytes sent, {received} bytes received")
        }
    }
}

/// The data a channel receives, message by message, until its EOF or
/// close; `closed` says whether it ended with the close.
fn channel_data<'a>(
    rd: &'a mut russh::ChannelReadHalf,
    closed: &'a AtomicBool,
) -> impl Stream<Item = Bytes> + Unpin + 'a {
    Box::pin(futures_util::stream::unfold(rd, move |rd| async move {
        loop {
            match rd.wait().await {
                Some(russh::ChannelMsg::Data { data }) => return Some((data, rd)),
                Some(russh::ChannelMsg::Eof) => return None,
                Some(russh::ChannelMsg::Close) | None => {
                    closed.store(true, Ordering::Relaxed);
                    return None;
                }
                Some(_) => {}
            }
        }
    }))
}

/// Copy until EOF, then pass the EOF on; count what went through.
async fn copy<R, W>(rd: &mut R, wr: &mut W, count: &mut u64) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            return wr.shutdown().await;
        }
        wr.write_all(&buf[..n]).await?;
        *count += n as u64;
    }
}

/// Write what `source` yields to `wr`, then shut `wr` down; `source` is
/// never kept waiting on `wr` until [`DOWN_BUFFER`] bytes are held, and a
/// writer that takes nothing for `stuck` while the buffer is full ends the
/// copy with `TimedOut`.
async fn copy_buffered<S, W>(
    mut source: S,
    wr: &mut W,
    count: &mut u64,
    stuck: Duration,
) -> std::io::Result<()>
where
    S: Stream<Item = Bytes> + Unpin,
    W: AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let room = tokio::sync::Semaphore::new(DOWN_BUFFER);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let reader = async {
        let tx = tx;
        while let Some(data) = source.next().await {
            // Wait for room only once the buffer is full: backpressure then
            // reaches the session, for at most `stuck`.
            let permits = u32::try_from(data.len()).unwrap_or(u32::MAX);
            if let Ok(p) = room.acquire_many(permits).await {
                p.forget();
            }
            if tx.send(data).is_err() {
                break;
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let writer = async {
        while let Some(mut chunk) = rx.recv().await {
            while !chunk.is_empty() {
                match tokio::time::timeout(stuck, wr.write(&chunk)).await {
                    Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(Ok(n)) => {
                        let _ = chunk.split_to(n);
                        *count += n as u64;
                        room.add_permits(n);
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) if room.available_permits() < CHUNK => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "the local side read nothing for {} s with {} MiB from the instance waiting; closed so that the session's other connections keep moving",
                                stuck.as_secs(),
                                DOWN_BUFFER >> 20
                            ),
                        ));
                    }
                    Err(_) => {}
                }
            }
        }
        wr.shutdown().await
    };
    tokio::try_join!(reader, writer).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A writer that reads slowly still gets every byte, in order, while
    /// the source runs ahead up to the buffer.
    #[tokio::test]
    async fn a_slow_reader_gets_every_byte() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<Bytes> = data.chunks(32 * 1024).map(Bytes::copy_from_slice).collect();
        let (mut dst_w, mut dst_r) = tokio::io::duplex(1 << 10);
        let mut got = Vec::new();
        let reader = async {
            let mut buf = [0u8; 4096];
            loop {
                let n = dst_r.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        };
        let mut count = 0;
        let copy = copy_buffered(
            futures_util::stream::iter(chunks),
            &mut dst_w,
            &mut count,
            Duration::from_secs(5),
        );
        let (r, ()) = tokio::join!(copy, reader);
        r.unwrap();
        assert_eq!(count, data.len() as u64);
        assert!(got == data);
    }

    /// The source is drained well past what the destination takes, without
    /// waiting on it, and a destination that takes nothing while the buffer
    /// is full ends the copy.
    #[tokio::test]
    async fn a_reader_that_takes_nothing_is_dropped_once_the_buffer_is_full() {
        let (mut dst_w, _dst_r) = tokio::io::duplex(1 << 10);
        let mut fed = 0usize;
        let flood = futures_util::stream::repeat_with(|| {
            fed += 1 << 15;
            Bytes::from(vec![7u8; 1 << 15])
        });
        let mut count = 0;
        let err = copy_buffered(flood, &mut dst_w, &mut count, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(
            fed >= DOWN_BUFFER,
            "the source was not drained ahead of the stuck destination"
        );
        assert!(count <= 1 << 10);
    }
}
