//! The tunnel as the SSH session's byte stream, read ahead by a task of its
//! own. The task takes TLS records and websocket frames off the connection
//! while the session is busy (waiting on a channel, on a write), and hands
//! each frame's bytes over as they are; the session's writes become frames
//! at once. No byte is copied beyond what TLS, the framing and the session's
//! own buffers need (the in-memory pipe this replaced copied every byte in
//! and out once more, and woke both sides for each copy).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::{self, Message};

use super::relay::CLOSE_GRACE;
use super::{
    CloseStatus, MAX_FRAME, Tunnel, WRITE_BUFFER, Ws, no_close_frame, on_close, text_frame,
    ws_to_io,
};

/// Bytes read ahead of the session, as the in-memory pipe before held. A
/// tunnel cut with a TCP reset loses what the kernel still held for us, so
/// the connection is drained this far ahead while the session is busy.
const READ_AHEAD: usize = 256 << 10;

/// An open tunnel as one `AsyncRead + AsyncWrite` byte stream, its reading
/// done ahead by a task of its own (see [`Tunnel::into_stream`]).
pub struct TunnelStream {
    frames: mpsc::UnboundedReceiver<io::Result<Bytes>>,
    /// Room for bytes read ahead: taken by the reading task, given back as
    /// the session reads.
    room: Arc<Semaphore>,
    pending: Bytes,
    /// The room `pending` holds, given back as it is read.
    held: usize,
    eof: bool,
    sink: SplitSink<Ws, Message>,
    /// Frames are split off this buffer; see [`Tunnel`]'s.
    outgoing: BytesMut,
    closed: CloseStatus,
    /// Our side has closed: the endpoint may now drop the connection
    /// instead of confirming, which cuts nothing.
    finished: Arc<AtomicBool>,
}

impl Tunnel {
    /// The tunnel as the byte stream of an SSH session, read ahead by a task
    /// of its own so that the connection is still read while the session
    /// waits. On the CLI's one thread this overlaps waiting, not CPU work.
    /// How the tunnel ended stays in [`Tunnel::close_status`].
    pub fn into_stream(self) -> TunnelStream {
        let Tunnel {
            ws,
            pending,
            outgoing,
            closed,
            eof,
            // Read by the connection log before the session starts.
            opening: _,
        } = self;
        let (sink, stream) = ws.split();
        let (tx, frames) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(READ_AHEAD));
        let finished = Arc::new(AtomicBool::new(false));
        if !eof {
            let reader = ReadAhead {
                tx,
                room: room.clone(),
                closed: closed.clone(),
                finished: finished.clone(),
            };
            tokio::spawn(reader.run(stream));
        }
        TunnelStream {
            frames,
            room,
            pending,
            held: 0,
            eof: false,
            sink,
            outgoing,
            closed,
            finished,
        }
    }
}

/// The reading task's side.
struct ReadAhead {
    tx: mpsc::UnboundedSender<io::Result<Bytes>>,
    room: Arc<Semaphore>,
    closed: CloseStatus,
    finished: Arc<AtomicBool>,
}

impl ReadAhead {
    /// Reads frames off the websocket for the session until the tunnel ends
    /// or the session is gone, [`READ_AHEAD`] bytes ahead at most. The end
    /// is recorded in the close status: a close frame's code and reason, or
    /// why the connection broke; a tunnel that ends cleanly ends the stream
    /// (EOF).
    async fn run(self, mut stream: SplitStream<Ws>) {
        loop {
            let message = tokio::select! {
                m = stream.next() => m,
                () = self.tx.closed() => {
                    // The session is gone. If it closed the tunnel, give
                    // the endpoint a moment to confirm, no more; how it
                    // ends is still recorded.
                    if self.finished.load(Ordering::Relaxed) {
                        let confirmed = confirm(&mut stream, &self.closed);
                        let _ = tokio::time::timeout(CLOSE_GRACE, confirmed).await;
                    }
                    return;
                }
            };
            let frame = match message {
                Some(Ok(Message::Binary(b))) => Ok(b),
                Some(Ok(Message::Close(frame))) => match on_close(&self.closed, frame) {
                    Ok(()) => return,
                    Err(e) => Err(e),
                },
                Some(Ok(Message::Text(_))) => Err(text_frame()),
                // Pings and pongs: answered by tungstenite.
                Some(Ok(_)) => continue,
                Some(Err(e)) => Err(self.broken(ws_to_io(e))),
                None => {
                    let _ = self.broken(no_close_frame());
                    return;
                }
            };
            let last = frame.is_err();
            if let Ok(b) = &frame {
                // Wait for room; a frame larger than all of it takes all.
                let want = b.len().min(READ_AHEAD);
                let room = self.room.acquire_many(want as u32);
                tokio::select! {
                    permit = room => match permit {
                        Ok(p) => p.forget(),
                        Err(_) => return,
                    },
                    () = self.tx.closed() => return,
                }
            }
            if self.tx.send(frame).is_err() || last {
                return;
            }
        }
    }

    /// Record a break, unless our side had closed the tunnel already: then
    /// the endpoint may drop the connection instead of confirming.
    fn broken(&self, e: io::Error) -> io::Error {
        if !self.finished.load(Ordering::Relaxed) {
            self.closed.record_broken(&e);
        }
        e
    }
}

/// Reads on until the endpoint's close frame (recorded) or the end.
async fn confirm(stream: &mut SplitStream<Ws>, closed: &CloseStatus) {
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Close(frame) = message {
            let _ = on_close(closed, frame);
            return;
        }
    }
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                this.closed.count_received(n);
                let freed = n.min(this.held);
                this.held -= freed;
                this.room.add_permits(freed);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.frames.poll_recv(cx)) {
                Some(Ok(b)) => {
                    this.held = b.len().min(READ_AHEAD);
                    this.pending = b;
                }
                Some(Err(e)) => {
                    this.eof = true;
                    return Poll::Ready(Err(e));
                }
                None => this.eof = true,
            }
        }
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let closed = self.closed.clone();
        let broken = |e: tungstenite::Error| {
            let e = ws_to_io(e);
            closed.record_broken(&e);
            e
        };
        ready!(Pin::new(&mut self.sink).poll_ready(cx)).map_err(broken)?;
        let n = buf.len().min(MAX_FRAME);
        if self.outgoing.capacity() < n {
            self.outgoing.reserve(WRITE_BUFFER);
        }
        self.outgoing.extend_from_slice(&buf[..n]);
        let frame = self.outgoing.split().freeze();
        Pin::new(&mut self.sink)
            .start_send(Message::Binary(frame))
            .map_err(broken)?;
        // Start sending right away; a pending flush carries on at the next call.
        if let Poll::Ready(Err(e)) = Pin::new(&mut self.sink).poll_flush(cx) {
            return Poll::Ready(Err(broken(e)));
        }
        closed.count_sent(n);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sink).poll_flush(cx).map_err(ws_to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.finished.store(true, Ordering::Relaxed);
        match ready!(Pin::new(&mut self.sink).poll_close(cx)) {
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(ws_to_io(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::relay::tests::{Server, open_with};
    use super::*;
    use crate::error::Error;

    use futures_util::SinkExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    #[tokio::test]
    async fn carries_bytes_both_ways_in_frames_of_at_most_max_frame() {
        let upload: Vec<u8> = (0..3 * MAX_FRAME + 123).map(|i| (i % 251) as u8).collect();
        // More than the read-ahead, so that the reading task waits for room.
        let download: Vec<u8> = (0..3 * READ_AHEAD + 7).map(|i| (i % 241) as u8).collect();
        let reply = download.clone();
        let (tunnel, server) = open_with(move |mut ws: Server| async move {
            for chunk in reply.chunks(50_000) {
                ws.send(Message::Binary(Bytes::copy_from_slice(chunk)))
                    .await
                    .unwrap();
            }
            let mut got = Vec::new();
            let mut largest = 0;
            while let Some(m) = ws.next().await {
                match m.unwrap() {
                    Message::Binary(b) => {
                        largest = largest.max(b.len());
                        got.extend_from_slice(&b);
                    }
                    Message::Close(_) => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            (got, largest)
        })
        .await;
        let status = tunnel.close_status();
        let mut stream = tunnel.into_stream();
        let mut received = vec![0u8; download.len()];
        stream.read_exact(&mut received).await.unwrap();
        stream.write_all(&upload).await.unwrap();
        stream.shutdown().await.unwrap();
        let (got, largest) = server.await.unwrap();
        assert_eq!(received, download);
        assert_eq!(got, upload);
        assert!(largest <= MAX_FRAME, "a frame of {largest} bytes");
        assert_eq!(status.bytes(), (upload.len() as u64, download.len() as u64));
        assert!(status.error().is_none(), "{:?}", status.error());
    }

    #[tokio::test]
    async fn an_abnormal_close_is_an_error_after_the_bytes_before_it() {
        let (tunnel, server) = open_with(|mut ws: Server| async move {
            ws.send(Message::Binary(Bytes::from_static(b"SSH-2.0-x\r\n")))
                .await
                .unwrap();
            let _ = ws
                .close(Some(CloseFrame {
                    code: CloseCode::Error,
                    reason: "Connection to the instance timed out".into(),
                }))
                .await;
        })
        .await;
        let status = tunnel.close_status();
        let mut stream = tunnel.into_stream();
        let mut banner = [0u8; 11];
        stream.read_exact(&mut banner).await.unwrap();
        let err = stream.read(&mut [0u8; 16]).await.unwrap_err();
        server.await.unwrap();
        assert_eq!(&banner, b"SSH-2.0-x\r\n");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        assert!(err.to_string().contains("code 1011"), "{err}");
        match status.error() {
            Some(Error::TunnelCut {
                sent: 0,
                received: 11,
                cause,
            }) => assert!(cause.contains("code 1011"), "{cause}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_normal_close_is_the_end_of_the_stream() {
        let (mut tunnel, server) = open_with(|mut ws: Server| async move {
            ws.send(Message::Binary(Bytes::from_static(b"SSH-2.0-x\r\nrest")))
                .await
                .unwrap();
            let _ = ws.close(None).await;
        })
        .await;
        let status = tunnel.close_status();
        // What a read before left behind comes first.
        let mut banner = [0u8; 11];
        tunnel.read_exact(&mut banner).await.unwrap();
        let mut stream = tunnel.into_stream();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        server.await.unwrap();
        assert_eq!(&banner, b"SSH-2.0-x\r\n");
        assert_eq!(rest, b"rest");
        assert_eq!(status.abnormal(), None);
        assert!(status.error().is_none(), "{:?}", status.error());
    }

    #[tokio::test]
    async fn a_text_frame_is_a_protocol_error() {
        let (tunnel, server) = open_with(|mut ws: Server| async move {
            ws.send(Message::Text("hello".into())).await.unwrap();
            // Hold the connection open until the client gives up.
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        let mut stream = tunnel.into_stream();
        let err = stream.read(&mut [0u8; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        server.abort();
    }

    #[tokio::test]
    async fn a_connection_dropped_without_a_close_frame_is_a_cut() {
        let (tunnel, server) = open_with(|mut ws: Server| async move {
            ws.send(Message::Binary(Bytes::from_static(b"SSH-2.0-x\r\n")))
                .await
                .unwrap();
            // The TCP connection ends here, with no close frame.
        })
        .await;
        let status = tunnel.close_status();
        let mut stream = tunnel.into_stream();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got).await;
        server.await.unwrap();
        assert_eq!(got, b"SSH-2.0-x\r\n");
        match status.error() {
            Some(Error::TunnelCut { received: 11, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
