//! The EICE tunnel: a TLS websocket whose binary frames carry the TCP bytes
//! of the remote port, presented as one `AsyncRead + AsyncWrite` byte stream.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::error::Error;

/// The most bytes sent in one frame, as the service's own client does.
pub const MAX_FRAME: usize = 65_000;

/// How the endpoint ended the tunnel, kept so that an SSH-level error can be
/// explained by its real cause.
#[derive(Debug, Clone, Default)]
pub struct CloseStatus(Arc<Mutex<Option<(u16, String)>>>);

impl CloseStatus {
    /// The close code and reason, if the endpoint closed with anything but a
    /// normal close (1000, or a close frame with no code: 1005).
    pub fn abnormal(&self) -> Option<(u16, String)> {
        self.0
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .filter(|(code, _)| !is_normal_close(*code))
    }

    fn record(&self, code: u16, reason: String) {
        if let Ok(mut g) = self.0.lock() {
            g.get_or_insert((code, reason));
        }
    }

    /// The error to report for a tunnel that ended abnormally.
    pub fn error(&self) -> Option<Error> {
        self.abnormal()
            .map(|(code, reason)| Error::TunnelClosed { code, reason })
    }
}

/// Room kept for outgoing frames: enough for a few full frames in flight.
const WRITE_BUFFER: usize = 4 * MAX_FRAME;
/// Bytes taken from the socket per `recv`. TLS asks for 4 KiB at a time;
/// serving those asks from one large read cuts the system calls per GB
/// several-fold.
const SOCKET_READ_BUFFER: usize = 64 * 1024;
/// The most the websocket layer reads at once. A TLS record holds at most
/// 16 KiB, so a larger size only makes tungstenite zero more memory per read.
const WS_READ_BUFFER: usize = 16 * 1024;

type Ws = WebSocketStream<MaybeTlsStream<BufReader<TcpStream>>>;

/// An open tunnel: a byte stream over the websocket.
pub struct Tunnel {
    ws: Ws,
    pending: Bytes,
    /// Frames are split off this buffer; once tungstenite has written them
    /// and dropped them, `reserve` reclaims the same memory, so steady-state
    /// writes allocate nothing.
    outgoing: BytesMut,
    closed: CloseStatus,
    eof: bool,
}

impl Tunnel {
    /// Open the presigned URL: TCP with `TCP_NODELAY`, TLS with certificates
    /// verified against `tls`'s roots, then the websocket upgrade.
    pub async fn open(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Tunnel, Error> {
        let parsed =
            url::Url::parse(url).map_err(|e| Error::Tunnel(format!("bad tunnel URL: {e}")))?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let authority = format!("{host}:{port}");
        tracing::info!(url = %crate::presign::redact(url), "opening tunnel");

        let tcp = BufReader::with_capacity(SOCKET_READ_BUFFER, connect_tcp(&host, port).await?);
        let mut config = WebSocketConfig::default();
        config.max_frame_size = Some(16 << 20);
        config.max_message_size = Some(16 << 20);
        config.read_buffer_size = WS_READ_BUFFER;
        let (ws, response) = tokio_tungstenite::client_async_tls_with_config(
            url,
            tcp,
            Some(config),
            Some(Connector::Rustls(tls)),
        )
        .await
        .map_err(|e| handshake_error(e, &authority))?;
        tracing::debug!(
            request_id = response
                .headers()
                .get("x-amzn-requestid")
                .and_then(|v| v.to_str().ok()),
            "tunnel open"
        );
        Ok(Tunnel {
            ws,
            pending: Bytes::new(),
            outgoing: BytesMut::with_capacity(WRITE_BUFFER),
            closed: CloseStatus::default(),
            eof: false,
        })
    }

    /// A handle that reports how the endpoint closed the tunnel.
    pub fn close_status(&self) -> CloseStatus {
        self.closed.clone()
    }

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
                    .map_err(ws_to_io)?;
                sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            match sink.close().await {
                Ok(())
                | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    Ok(())
                }
                Err(e) => Err(ws_to_io(e)),
            }
        };
        let downstream = async {
            // Bytes already received through `AsyncRead` come first.
            if !pending.is_empty() {
                to.write_all(&pending).await?;
                received.fetch_add(pending.len() as u64, Ordering::Relaxed);
            }
            while let Some(message) = stream.next().await {
                match message.map_err(ws_to_io)? {
                    Message::Binary(b) => {
                        to.write_all(&b).await?;
                        to.flush().await?;
                        received.fetch_add(b.len() as u64, Ordering::Relaxed);
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

/// Bytes a [`Tunnel::relay`] carried each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// From the local side into the tunnel.
    pub sent: u64,
    /// From the tunnel to the local side.
    pub received: u64,
}

/// Record how the endpoint closed the tunnel; an abnormal close is an error.
fn on_close(
    closed: &CloseStatus,
    frame: Option<tungstenite::protocol::CloseFrame>,
) -> io::Result<()> {
    let (code, reason) = frame
        .map(|f| (u16::from(f.code), f.reason.to_string()))
        .unwrap_or((u16::from(CloseCode::Status), String::new()));
    tracing::debug!(code, reason, "the endpoint closed the tunnel");
    closed.record(code, reason.clone());
    match is_normal_close(code) {
        true => Ok(()),
        false => Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("the tunnel was closed by the endpoint (code {code}): {reason}"),
        )),
    }
}

fn text_frame() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "protocol error: the endpoint sent a text frame",
    )
}

async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, Error> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Error::TunnelConnect {
            host: format!("{host}:{port}"),
            reason: e.to_string(),
        })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::TunnelConnect {
        host: format!("{host}:{port}"),
        reason: last.map_or_else(
            || "the name resolved to no address".into(),
            |e| e.to_string(),
        ),
    })
}

/// Turn a failed upgrade into the service's own words: its HTTP status and
/// the JSON `{"ErrorCode","Message"}` body, never just "bad handshake".
fn handshake_error(e: tungstenite::Error, authority: &str) -> Error {
    match e {
        tungstenite::Error::Http(resp) => {
            let status = resp.status().as_u16();
            let body = resp.body().as_deref().unwrap_or_default();
            let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
            let field = |k: &str| {
                json.as_ref()
                    .and_then(|j| j.get(k))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let message = field("Message")
                .or_else(|| field("message"))
                .unwrap_or_else(|| {
                    let text = String::from_utf8_lossy(body).trim().to_owned();
                    if text.is_empty() {
                        resp.status()
                            .canonical_reason()
                            .unwrap_or("no reason given")
                            .to_owned()
                    } else {
                        text
                    }
                });
            Error::TunnelRejected {
                status,
                code: field("ErrorCode"),
                message,
            }
        }
        tungstenite::Error::Tls(e) => Error::TunnelConnect {
            host: authority.to_owned(),
            reason: format!("TLS failed: {e}"),
        },
        tungstenite::Error::Io(e) => Error::TunnelConnect {
            host: authority.to_owned(),
            reason: e.to_string(),
        },
        other => Error::Tunnel(other.to_string()),
    }
}

fn is_normal_close(code: u16) -> bool {
    code == 1000 || code == 1005
}

fn ws_to_io(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the tunnel is closed")
        }
        other => io::Error::other(other),
    }
}

impl AsyncRead for Tunnel {
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
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(b))) => this.pending = b,
                Some(Ok(Message::Close(frame))) => {
                    this.eof = true;
                    on_close(&this.closed, frame)?;
                }
                Some(Ok(Message::Text(_))) => return Poll::Ready(Err(text_frame())),
                Some(Ok(_)) => {} // ping, pong, raw frames: handled by tungstenite
                Some(Err(e)) => return Poll::Ready(Err(ws_to_io(e))),
                None => this.eof = true,
            }
        }
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let ws = Pin::new(&mut self.ws);
        ready!(ws.poll_ready(cx)).map_err(ws_to_io)?;
        let n = buf.len().min(MAX_FRAME);
        if self.outgoing.capacity() < n {
            self.outgoing.reserve(WRITE_BUFFER);
        }
        self.outgoing.extend_from_slice(&buf[..n]);
        let frame = self.outgoing.split().freeze();
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(frame))
            .map_err(ws_to_io)?;
        // Start sending right away; a pending flush carries on at the next call.
        if let Poll::Ready(Err(e)) = Pin::new(&mut self.ws).poll_flush(cx) {
            return Poll::Ready(Err(ws_to_io(e)));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(ws_to_io(e))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
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
        assert!(matches!(
            status.error(),
            Some(Error::TunnelClosed { code: 1011, .. })
        ));
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
}
