//! The EICE tunnel: a TLS websocket whose binary frames carry the TCP bytes
//! of the remote port, presented as one `AsyncRead + AsyncWrite` byte stream.

pub mod connect_to;
mod dial;
pub mod presign;
pub mod relay;
pub mod stream;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::Error;

/// The most bytes sent in one frame, as the service's own client does.
pub const MAX_FRAME: usize = 65_000;

/// How the tunnel ended and how many bytes it carried, kept so that an
/// SSH-level error can be explained by its real cause, with the byte counts
/// that got through.
#[derive(Debug, Clone, Default)]
pub struct CloseStatus(Arc<Ended>);

#[derive(Debug)]
struct Ended {
    /// The endpoint's close frame: code and reason.
    close: Mutex<Option<(u16, String)>>,
    /// The tunnel broke without a close frame: why.
    broken: Mutex<Option<String>>,
    /// Bytes handed to the tunnel, and bytes delivered from it.
    sent: AtomicU64,
    received: AtomicU64,
    /// When the tunnel opened, and when it ended (its close frame came, or
    /// it broke).
    opened: Instant,
    ended: Mutex<Option<Instant>>,
    /// The maximum duration in effect, once known.
    max: Mutex<Option<Duration>>,
}

impl Default for Ended {
    fn default() -> Ended {
        Ended {
            close: Mutex::default(),
            broken: Mutex::default(),
            sent: AtomicU64::default(),
            received: AtomicU64::default(),
            opened: Instant::now(),
            ended: Mutex::default(),
            max: Mutex::default(),
        }
    }
}

/// How close to its maximum duration a tunnel that ends counts as ended by
/// it: the endpoint's clock starts a little before ours (at the upgrade),
/// and the close frame takes a moment to come.
pub const CAP_SLACK: Duration = Duration::from_secs(2);

impl CloseStatus {
    /// The tunnel's maximum duration: the one asked for
    /// (`maxTunnelDuration`), else the service's 3600 s. A tunnel that ends
    /// within [`CAP_SLACK`] of it ended because of it, whatever the close
    /// frame says: the code and reason the service sends then are not
    /// documented.
    pub fn set_max_duration(&self, max: Duration) {
        if let Ok(mut g) = self.0.max.lock() {
            *g = Some(max);
        }
    }

    /// The error for a tunnel that ended at its maximum duration, with the
    /// endpoint's close code and reason (when it sent a close frame).
    fn at_max_duration(&self) -> Option<Error> {
        let max = self.0.max.lock().ok().and_then(|g| *g)?;
        let ended = self.0.ended.lock().ok().and_then(|g| *g)?;
        if ended.duration_since(self.0.opened) + CAP_SLACK < max {
            return None;
        }
        let close = self.0.close.lock().ok().and_then(|g| g.clone());
        Some(Error::TunnelMaxDuration {
            seconds: max.as_secs(),
            code: close.as_ref().map(|(code, _)| *code),
            reason: close.map(|(_, reason)| reason).unwrap_or_default(),
        })
    }

    fn mark_ended(&self) {
        if let Ok(mut g) = self.0.ended.lock() {
            g.get_or_insert_with(Instant::now);
        }
    }

    /// The close code and reason, if the endpoint closed with anything but a
    /// normal close (1000, or a close frame with no code: 1005).
    pub fn abnormal(&self) -> Option<(u16, String)> {
        self.0
            .close
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .filter(|(code, _)| !is_normal_close(*code))
    }

    fn record(&self, code: u16, reason: String) {
        self.mark_ended();
        if let Ok(mut g) = self.0.close.lock() {
            g.get_or_insert((code, reason));
        }
    }

    /// Record that the tunnel broke without a close frame.
    fn record_broken(&self, why: &io::Error) {
        self.mark_ended();
        if let Ok(mut g) = self.0.broken.lock() {
            g.get_or_insert_with(|| why.to_string());
        }
    }

    pub(crate) fn count_sent(&self, n: usize) {
        self.0.sent.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn count_received(&self, n: usize) {
        self.0.received.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The endpoint's close frame, normal or not: code and reason.
    pub fn close_frame(&self) -> Option<(u16, String)> {
        self.0.close.lock().ok().and_then(|g| g.clone())
    }

    /// Why the tunnel broke without a close frame, if it did.
    pub fn broken(&self) -> Option<String> {
        self.0.broken.lock().ok().and_then(|g| g.clone())
    }

    /// Bytes handed to the tunnel so far, and bytes delivered from it.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.0.sent.load(Ordering::Relaxed),
            self.0.received.load(Ordering::Relaxed),
        )
    }

    /// The error to report for a tunnel that ended abnormally: at its
    /// maximum duration (any close, or none); closed with an error code
    /// before anything came through it; or cut mid-stream (an error close,
    /// or no close frame at all) after bytes flowed.
    pub fn error(&self) -> Option<Error> {
        if let Some(capped) = self.at_max_duration() {
            return Some(capped);
        }
        let (sent, received) = self.bytes();
        if let Some((code, reason)) = self.abnormal() {
            return Some(match received {
                0 => Error::TunnelClosed { code, reason },
                _ => Error::TunnelCut {
                    sent,
                    received,
                    cause: format!("the tunnel was closed by the endpoint (code {code}): {reason}"),
                },
            });
        }
        let broken = self.0.broken.lock().ok().and_then(|g| g.clone())?;
        Some(Error::TunnelCut {
            sent,
            received,
            cause: format!("the tunnel broke: {broken}"),
        })
    }

    /// Explain a failure of what ran over the tunnel (the SSH session, the
    /// relay): by how the tunnel ended when it ended abnormally; as a cut
    /// with its byte counts when it closed normally but too early, after
    /// bytes flowed; else as it is.
    pub fn explain(&self, e: Error) -> Error {
        if let Some(closed) = self.error() {
            return match e {
                Error::Ssh(_)
                | Error::SshProtocol(_)
                | Error::Io(_)
                | Error::Tunnel(_)
                | Error::ConnectionLost { .. } => closed,
                other => other,
            };
        }
        // The endpoint closed normally, but too early: before what ran over
        // the tunnel was done, after bytes flowed. (A tunnel that did not
        // end, as behind a keepalive timeout, was not cut.)
        let (sent, received) = self.bytes();
        let ended = self.0.close.lock().ok().is_some_and(|g| g.is_some());
        match e {
            Error::Ssh(_)
            | Error::SshProtocol(_)
            | Error::Io(_)
            | Error::Tunnel(_)
            | Error::ConnectionLost { .. }
                if ended && received > 0 =>
            {
                Error::TunnelCut {
                    sent,
                    received,
                    cause: format!("the endpoint closed the tunnel early: {e}"),
                }
            }
            other => other,
        }
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
    opening: Opening,
}

/// What a tunnel's opening says about it, for the connection log: the
/// request ID the endpoint answered the upgrade with (`x-amzn-requestid`,
/// which CloudTrail's `OpenTunnel` event carries), and the access key ID
/// that signed its URL.
#[derive(Debug, Clone, Default)]
pub struct Opening {
    pub request_id: Option<String>,
    pub access_key_id: Option<String>,
}

impl Opening {
    fn new(url: &str, response: &tungstenite::handshake::client::Response) -> Opening {
        // The header comes from the network: shown only as printable text,
        // and no longer than any request ID AWS issues.
        let request_id = response
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(|v| crate::text::remote_text(v).chars().take(128).collect());
        // X-Amz-Credential is `<access key ID>/<date>/<region>/<service>/aws4_request`.
        let access_key_id = url::Url::parse(url).ok().and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "X-Amz-Credential")
                .and_then(|(_, v)| v.split('/').next().map(str::to_owned))
        });
        Opening {
            request_id,
            access_key_id,
        }
    }
}

/// Run one step of a connection within `limit`; a stall becomes an error
/// naming the step and the host.
pub async fn within<T>(
    limit: Duration,
    step: &'static str,
    host: &str,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(Error::ConnectTimeout {
            step,
            host: host.to_owned(),
            secs: limit.as_secs_f64(),
        })
    })
}

impl Tunnel {
    /// [`Tunnel::open_within`] with the default limit per step.
    pub async fn open(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Tunnel, Error> {
        Tunnel::open_within(url, tls, crate::net::DEFAULT_CONNECT_TIMEOUT).await
    }

    /// Open the presigned URL: TCP with `TCP_NODELAY` (through a proxy where
    /// one applies), TLS with certificates verified against `tls`'s roots,
    /// then the websocket upgrade. Each step must finish within `limit`, or
    /// the error names the step that stalled. The TCP destination may be
    /// remapped by [`connect_to::VAR`].
    pub async fn open_within(
        url: &str,
        tls: Arc<rustls::ClientConfig>,
        limit: Duration,
    ) -> Result<Tunnel, Error> {
        let (host, port) = url_host_port(url)?;
        let dial = connect_to::from_env(&host, port)?;
        Tunnel::open_via(url, tls, dial, limit).await
    }

    /// [`Tunnel::open_within`], dialing `dial` (addresses and ports, raced
    /// as one name's addresses) instead of the URL's host when not empty;
    /// TLS is still verified against the URL's host.
    pub async fn open_via(
        url: &str,
        tls: Arc<rustls::ClientConfig>,
        dial: Vec<(String, u16)>,
        limit: Duration,
    ) -> Result<Tunnel, Error> {
        let (host, port) = url_host_port(url)?;
        let scheme = url::Url::parse(url)
            .map(|u| u.scheme().to_owned())
            .unwrap_or_default();
        let authority = format!("{host}:{port}");
        tracing::info!(url = %crate::tunnel::presign::redact(url), "opening tunnel");
        let targets = if dial.is_empty() {
            vec![(host.clone(), port)]
        } else {
            let list: Vec<String> = dial.iter().map(|(h, p)| format!("{h}:{p}")).collect();
            tracing::info!("dialing {} for {authority}", list.join(", "));
            dial
        };

        let tcp = within(
            limit,
            "the TCP connection to",
            &authority,
            dial::dial(&host, port, &targets),
        )
        .await?;
        let tcp = BufReader::with_capacity(SOCKET_READ_BUFFER, tcp);
        let stream = match scheme.as_str() {
            "ws" => MaybeTlsStream::Plain(tcp),
            _ => {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| Error::Tunnel(format!("bad endpoint name {host}: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(tls);
                let handshake = async {
                    tls.connect(name, tcp)
                        .await
                        .map_err(|source| Error::TunnelTls {
                            host: authority.clone(),
                            source,
                        })
                };
                MaybeTlsStream::Rustls(
                    within(limit, "the TLS handshake with", &authority, handshake).await?,
                )
            }
        };
        let mut config = WebSocketConfig::default();
        config.max_frame_size = Some(16 << 20);
        config.max_message_size = Some(16 << 20);
        config.read_buffer_size = WS_READ_BUFFER;
        // Replies to pings queue up when the endpoint does not read them; a
        // hostile one flooding pings grew memory without bound. Past this,
        // a pong that does not fit waits in place of the next one
        // (security.rs's ping flood test). (tungstenite requires it to exceed
        // `write_buffer_size`; a full frame and a buffer's worth fit.)
        config.write_buffer_size = WS_WRITE_BUFFER;
        config.max_write_buffer_size = MAX_WS_WRITE_BUFFER;
        let upgrade = async {
            tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                .await
                .map_err(|e| handshake_error(e, &authority))
        };
        let (ws, response) = within(limit, "the websocket upgrade at", &authority, upgrade).await?;
        let opening = Opening::new(url, &response);
        tracing::debug!(request_id = opening.request_id, "tunnel open");
        Ok(Tunnel {
            ws,
            pending: Bytes::new(),
            outgoing: BytesMut::with_capacity(WRITE_BUFFER),
            closed: CloseStatus::default(),
            eof: false,
            opening,
        })
    }

    /// A handle that reports how the endpoint closed the tunnel.
    pub fn close_status(&self) -> CloseStatus {
        self.closed.clone()
    }

    /// The upgrade's request ID and the signing access key ID.
    pub fn opening(&self) -> &Opening {
        &self.opening
    }
}

/// Record how the endpoint closed the tunnel; an abnormal close is an error.
fn on_close(
    closed: &CloseStatus,
    frame: Option<tungstenite::protocol::CloseFrame>,
) -> io::Result<()> {
    let (code, reason) = frame
        .map(|f| (u16::from(f.code), crate::text::remote_text(&f.reason)))
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
            let date = resp
                .headers()
                .get(tungstenite::http::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok());
            Error::TunnelRejected {
                status,
                code: field("ErrorCode").map(|c| crate::text::remote_text(&c)),
                message: crate::text::remote_text(&message),
                date,
            }
        }
        tungstenite::Error::Tls(e) => Error::TunnelTls {
            host: authority.to_owned(),
            source: io::Error::other(e),
        },
        tungstenite::Error::Io(source) => Error::TunnelConnect {
            host: authority.to_owned(),
            source,
        },
        other => Error::Websocket(other),
    }
}

/// The connection ended with no close frame: a cut, not a close.
fn no_close_frame() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection to the endpoint ended without a close frame",
    )
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
                this.closed.count_received(n);
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
                Some(Err(e)) => {
                    let e = ws_to_io(e);
                    this.closed.record_broken(&e);
                    return Poll::Ready(Err(e));
                }
                None => {
                    this.eof = true;
                    this.closed.record_broken(&no_close_frame());
                }
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
        let closed = self.closed.clone();
        let broken = |e: tungstenite::Error| {
            let e = ws_to_io(e);
            closed.record_broken(&e);
            e
        };
        let ws = Pin::new(&mut self.ws);
        ready!(ws.poll_ready(cx)).map_err(broken)?;
        let n = buf.len().min(MAX_FRAME);
        if self.outgoing.capacity() < n {
            self.outgoing.reserve(WRITE_BUFFER);
        }
        self.outgoing.extend_from_slice(&buf[..n]);
        let frame = self.outgoing.split().freeze();
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(frame))
            .map_err(broken)?;
        // Start sending right away; a pending flush carries on at the next call.
        if let Poll::Ready(Err(e)) = Pin::new(&mut self.ws).poll_flush(cx) {
            return Poll::Ready(Err(broken(e)));
        }
        closed.count_sent(n);
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
