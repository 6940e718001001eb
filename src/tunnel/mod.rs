//! The EICE tunnel: a TLS websocket whose binary frames carry the TCP bytes
//! of the remote port, presented as one `AsyncRead + AsyncWrite` byte stream.

pub mod connect_to;
mod dial;
pub mod presign;
pub mod relay;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
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
/// tungstenite writes out once this much is buffered (its default).
const WS_WRITE_BUFFER: usize = 128 * 1024;
/// The most tungstenite may hold unsent: the buffer, frames and pongs
/// queued behind it. About 1 MiB.
pub const MAX_WS_WRITE_BUFFER: usize = WS_WRITE_BUFFER + 14 * MAX_FRAME;
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
    /// The TCP destination may be remapped by [`connect_to::VAR`].
    pub async fn open(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Tunnel, Error> {
        let (host, port) = url_host_port(url)?;
        let dial = connect_to::from_env(&host, port)?;
        Tunnel::open_via(url, tls, dial).await
    }

    /// [`Tunnel::open`], dialing `dial` (address, port) instead of the URL's
    /// host when given; TLS is still verified against the URL's host.
    pub async fn open_via(
        url: &str,
        tls: Arc<rustls::ClientConfig>,
        dial: Option<(String, u16)>,
    ) -> Result<Tunnel, Error> {
        let (host, port) = url_host_port(url)?;
        let authority = format!("{host}:{port}");
        tracing::info!(url = %crate::tunnel::presign::redact(url), "opening tunnel");
        let (dial_host, dial_port) = match dial {
            Some((h, p)) => {
                tracing::info!("dialing {h}:{p} for {authority}");
                (h, p)
            }
            None => (host.clone(), port),
        };

        let tcp =
            BufReader::with_capacity(SOCKET_READ_BUFFER, dial::dial(&dial_host, dial_port).await?);
        let mut config = WebSocketConfig::default();
        config.max_frame_size = Some(16 << 20);
        config.max_message_size = Some(16 << 20);
        config.read_buffer_size = WS_READ_BUFFER;
        // Replies to pings queue up when the endpoint does not read them; a
        // hostile one flooding pings grew memory without bound. Past this,
        // the tunnel fails instead. (tungstenite requires it to exceed
        // `write_buffer_size`; a full frame and a buffer's worth fit.)
        config.write_buffer_size = WS_WRITE_BUFFER;
        config.max_write_buffer_size = MAX_WS_WRITE_BUFFER;
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
}

/// Record how the endpoint closed the tunnel; an abnormal close is an error.
fn on_close(
    closed: &CloseStatus,
    frame: Option<tungstenite::protocol::CloseFrame>,
) -> io::Result<()> {
    let (code, reason) = frame
        .map(|f| (u16::from(f.code), crate::term::text::remote_text(&f.reason)))
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

fn url_host_port(url: &str) -> Result<(String, u16), Error> {
    let parsed = url::Url::parse(url).map_err(|e| Error::Tunnel(format!("bad tunnel URL: {e}")))?;
    // An IPv6 literal without its brackets: what is dialed and matched.
    let host = match parsed.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    Ok((host, parsed.port_or_known_default().unwrap_or(443)))
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
                code: field("ErrorCode").map(|c| crate::term::text::remote_text(&c)),
                message: crate::term::text::remote_text(&message),
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
        other => Error::Websocket(other),
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
