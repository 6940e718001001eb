//! The relay: a tunnel joined to a local reader/writer pair, frames moved
//! straight through.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{self, Message};

use super::{MAX_FRAME, Tunnel, WRITE_BUFFER, no_close_frame, on_close, text_frame, ws_to_io};

/// After the local side closes, how long to wait for the endpoint to confirm the close.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

impl Tunnel {
    /// Carry bytes both ways between a local reader/writer pair and the
    /// tunnel until either side ends, with no copy beyond what TLS and the
    /// websocket framing need: each read from `from` becomes one frame as it
    /// is, and each frame received is written to `to` as it is.
    ///
    /// It ends when the tunnel ends, or when `from` reaches EOF: then the
    /// tunnel is closed and the endpoint's confirmation awaited for at most
    /// `linger`. An abnormal close by the endpoint is an error carrying its
    /// code and reason; [`Tunnel::close_status`] has them too.
    pub async fn relay<R, W>(self, mut from: R, mut to: W, linger: Duration) -> io::Result<Relayed>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let Tunnel {
            ws,
            pending,
            closed,
            ..
        } = self;
        let (mut sink, mut stream) = ws.split();
        let sent = AtomicU64::new(0);
        let received = AtomicU64::new(0);
        // Once our side has finished, the endpoint may drop the connection
        // instead of confirming the close: that cuts nothing.
        let finished = AtomicBool::new(false);
        let broken = |e: tungstenite::Error| {
            let e = ws_to_io(e);
            if !finished.load(Ordering::Relaxed) {
                closed.record_broken(&e);
            }
            e
        };

        let upstream = async {
            let mut buf = BytesMut::with_capacity(WRITE_BUFFER);
            loop {
                // Frames already written were dropped: this reclaims their memory.
                buf.reserve(MAX_FRAME);
                let n = from.read_buf(&mut (&mut buf).limit(MAX_FRAME)).await?;
                if n == 0 {
                    break;
                }
                sink.send(Message::Binary(buf.split().freeze()))
                    .await
                    .map_err(broken)?;
                sent.fetch_add(n as u64, Ordering::Relaxed);
                closed.count_sent(n);
            }
            finished.store(true, Ordering::Relaxed);
            match sink.close().await {
                Ok(())
                | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    Ok(())
                }
                Err(e) => Err(broken(e)),
            }
        };
        let downstream = async {
            // Bytes already received through `AsyncRead` come first.
            if !pending.is_empty() {
                to.write_all(&pending).await?;
                received.fetch_add(pending.len() as u64, Ordering::Relaxed);
                closed.count_received(pending.len());
            }
            loop {
                let Some(message) = stream.next().await else {
                    if finished.load(Ordering::Relaxed) {
                        break;
                    }
                    let e = no_close_frame();
                    closed.record_broken(&e);
                    return Err(e);
                };
                match message.map_err(broken)? {
                    Message::Binary(b) => {
                        to.write_all(&b).await?;
                        to.flush().await?;
                        received.fetch_add(b.len() as u64, Ordering::Relaxed);
                        closed.count_received(b.len());
                    }
                    Message::Close(frame) => {
                        on_close(&closed, frame)?;
                        break;
                    }
                    Message::Text(_) => return Err(text_frame()),
                    _ => {} // ping, pong: answered by tungstenite
                }
            }
            to.flush().await
        };
        tokio::pin!(upstream, downstream);
        tokio::select! {
            up = &mut upstream => {
                up?;
                // Our side is done and everything it sent is flushed. Give
                // the endpoint a moment to confirm, no more; how it ends is
                // still recorded in the close status.
                let _ = tokio::time::timeout(linger, &mut downstream).await;
            }
            down = &mut downstream => down?,
        }
        Ok(Relayed {
            sent: sent.load(Ordering::Relaxed),
            received: received.load(Ordering::Relaxed),
        })
    }
}

/// The in-memory pipe between a session and [`Tunnel::into_pipe`]'s relay.
const PIPE_BUFFER: usize = 256 << 10;

impl Tunnel {
    /// The tunnel as an in-memory pipe, whose far end a task of its own
    /// relays (TLS and websocket framing, as [`Tunnel::relay`] does for
    /// `proxy`), so that the tunnel is still read while the SSH session on
    /// the near end waits (on a channel, on a write). On the CLI's one
    /// thread this overlaps waiting, not CPU work. The pipe ends when the tunnel
    /// does; how it ended stays in [`Tunnel::close_status`].
    pub fn into_pipe(self) -> tokio::io::DuplexStream {
        let (near, far) = tokio::io::duplex(PIPE_BUFFER);
        tokio::spawn(async move {
            let (from, to) = tokio::io::split(far);
            if let Err(e) = self.relay(from, to, CLOSE_GRACE).await {
                tracing::debug!("the tunnel's relay ended: {e}");
            }
        });
        near
    }
}

/// Bytes a [`Tunnel::relay`] carried each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// From the local side into the tunnel.
    pub sent: u64,
    /// From the tunnel to the local side.
    pub received: u64,
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    type Server = WebSocketStream<TcpStream>;

    /// A plain-websocket endpoint on loopback; `serve` runs the server side.
    async fn open_with<F, Fut>(serve: F) -> (Tunnel, tokio::task::JoinHandle<Fut::Output>)
    where
        F: FnOnce(Server) -> Fut + Send + 'static,
        Fut: std::future::Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            serve(tokio_tungstenite::accept_async(socket).await.unwrap()).await
        });
        let roots = rustls::RootCertStore::empty();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tunnel = Tunnel::open(&format!("ws://{addr}/openTunnel"), Arc::new(tls))
            .await
            .unwrap();
        (tunnel, server)
    }

    #[tokio::test]
    async fn relay_carries_bytes_both_ways_in_frames_of_at_most_max_frame() {
        let upload: Vec<u8> = (0..3 * MAX_FRAME + 123).map(|i| (i % 251) as u8).collect();
        let download: Vec<u8> = (0..200_000).map(|i| (i % 241) as u8).collect();
        let reply = download.clone();
        let (tunnel, server) = open_with(move |mut ws: Server| async move {
            ws.send(Message::Binary(reply.into())).await.unwrap();
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

        let (local, mut app) = tokio::io::duplex(1 << 20);
        let (from, to) = tokio::io::split(local);
        let relay = tokio::spawn(tunnel.relay(from, to, Duration::from_secs(1)));
        let mut received = vec![0u8; download.len()];
        app.read_exact(&mut received).await.unwrap();
        app.write_all(&upload).await.unwrap();
        app.shutdown().await.unwrap();

        let moved = relay.await.unwrap().unwrap();
        let (got, largest) = server.await.unwrap();
        assert_eq!(received, download);
        assert_eq!(got, upload);
        assert!(largest <= MAX_FRAME, "a frame of {largest} bytes");
        assert_eq!(
            moved,
            Relayed {
                sent: upload.len() as u64,
                received: download.len() as u64
            }
        );
    }

    #[tokio::test]
    async fn relay_reports_an_abnormal_close_with_its_code_and_reason() {
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
        let (local, mut app) = tokio::io::duplex(1 << 16);
        let (from, to) = tokio::io::split(local);
        let relay = tokio::spawn(tunnel.relay(from, to, Duration::from_secs(1)));
        let mut banner = [0u8; 11];
        app.read_exact(&mut banner).await.unwrap();
        let err = relay.await.unwrap().unwrap_err();
        server.await.unwrap();
        assert_eq!(&banner, b"SSH-2.0-x\r\n");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        assert!(err.to_string().contains("code 1011"), "{err}");
        assert_eq!(
            status.abnormal(),
            Some((1011, "Connection to the instance timed out".into()))
        );
        // Bytes came through before the close: a cut, with its counts.
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
    async fn relay_ends_when_the_endpoint_closes_normally() {
        let (tunnel, server) = open_with(|mut ws: Server| async move {
            let _ = ws.close(None).await;
        })
        .await;
        let status = tunnel.close_status();
        // The local side never closes: the relay must end on its own.
        let (local, _app) = tokio::io::duplex(1 << 16);
        let (from, to) = tokio::io::split(local);
        let moved = tokio::time::timeout(
            Duration::from_secs(5),
            tunnel.relay(from, to, Duration::from_secs(1)),
        )
        .await
        .expect("the relay lingered after the endpoint closed")
        .unwrap();
        server.await.unwrap();
        assert_eq!(
            moved,
            Relayed {
                sent: 0,
                received: 0
            }
        );
        assert_eq!(status.abnormal(), None);
    }

    #[tokio::test]
    async fn relay_first_delivers_what_a_read_left_behind() {
        let (mut tunnel, server) = open_with(|mut ws: Server| async move {
            ws.send(Message::Binary(Bytes::from_static(b"SSH-2.0-x\r\nrest")))
                .await
                .unwrap();
            let _ = ws.close(None).await;
        })
        .await;
        let mut banner = [0u8; 11];
        tunnel.read_exact(&mut banner).await.unwrap();
        let (local, mut app) = tokio::io::duplex(1 << 16);
        let (from, to) = tokio::io::split(local);
        let moved = tunnel
            .relay(from, to, Duration::from_secs(1))
            .await
            .unwrap();
        server.await.unwrap();
        let mut rest = [0u8; 4];
        app.read_exact(&mut rest).await.unwrap();
        assert_eq!(&banner, b"SSH-2.0-x\r\n");
        assert_eq!(&rest, b"rest");
        assert_eq!(moved.received, 4);
    }

    #[tokio::test]
    async fn a_text_frame_is_a_protocol_error() {
        let (tunnel, server) = open_with(|mut ws: Server| async move {
            ws.send(Message::Text("hello".into())).await.unwrap();
            // Hold the connection open until the client gives up.
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        let (local, _app) = tokio::io::duplex(1 << 16);
        let (from, to) = tokio::io::split(local);
        let err = tunnel
            .relay(from, to, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        server.abort();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Any close code and reason from the endpoint: no panic; an
        /// abnormal close is an error carrying the reason as it may reach a
        /// terminal (control characters made harmless, at most about 1 KB).
        #[test]
        fn close_reasons_are_reported_as_sent(code in 1000u16..5000, reason in ".{0,60}") {
            let status = CloseStatus::default();
            let frame = CloseFrame { code: CloseCode::from(code), reason: reason.clone().into() };
            let result = on_close(&status, Some(frame));
            if code == 1000 || code == 1005 {
                proptest::prop_assert!(result.is_ok());
                proptest::prop_assert!(status.error().is_none());
            } else {
                let e = result.unwrap_err();
                let safe = crate::text::remote_text(&reason);
                proptest::prop_assert!(e.to_string().contains(&safe));
                proptest::prop_assert_eq!(status.abnormal().map(|(c, _)| c), Some(code));
                let shown = status.error().map(|e| e.to_string()).unwrap_or_default();
                proptest::prop_assert!(shown.contains(&safe), "{}", shown);
                proptest::prop_assert!(!shown.chars().any(|c| c.is_control()), "{:?}", shown);
            }
        }
    }
}
