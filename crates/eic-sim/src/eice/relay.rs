//! One tunnel's bytes: binary frames to and from the instance's TCP
//! connection, each direction its own task, with the injected frame
//! latency, freezes and cuts, and every close the service sends (instance
//! EOF, a text frame, `close_tunnels`, the maximum duration, shutdown).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;

use super::admission::Plan;
use crate::Shared;
use crate::faults::{ArmedCut, Direction};

/// The largest frame the relay sends, as the reference client.
const MAX_FRAME: usize = 65_000;
/// Messages in flight per direction; with `MAX_FRAME` this bounds the
/// buffering of a delay line to about 4 MB.
const PIPELINE: usize = 64;
/// How long a closing side waits for the other before giving up.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a tunnel whose connection security groups drop waits before it
/// closes (the service waits for a TCP timeout).
const BLOCKED_DELAY: Duration = Duration::from_millis(300);
/// The close reason (code 1011) for a connection security groups drop.
pub(crate) const BLOCKED_REASON: &str = "Connection to the instance timed out";

pub(super) type Ws = WebSocketStream<TokioIo<Upgraded>>;
type WsSink = futures_util::stream::SplitSink<Ws, Message>;
type WsStream = futures_util::stream::SplitStream<Ws>;

/// A chunk of data and the time it may be delivered.
struct Stamped {
    due: tokio::time::Instant,
    data: Bytes,
}

fn stamp(shared: &Shared, data: Bytes) -> Stamped {
    Stamped {
        due: tokio::time::Instant::now() + shared.frame_latency(),
        data,
    }
}

fn close_message(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: reason.into(),
    }))
}

/// Waits while tunnels are frozen.
async fn unfrozen(frozen: &mut watch::Receiver<bool>) {
    // An error means the simulator is gone; the tunnel is torn down anyway.
    let _ = frozen.wait_for(|f| !*f).await;
}

/// Relays one tunnel until either side closes it.
pub(super) async fn run_tunnel(
    ws: Ws,
    plan: Plan,
    shared: Arc<Shared>,
    closer: broadcast::Receiver<(u16, String)>,
    shutdown: watch::Receiver<()>,
    cut: Option<Arc<ArmedCut>>,
) {
    let mut ws = ws;
    if shared.ping_flood.load(Ordering::Relaxed) {
        // Pre-encoded server pings (unmasked, 125-byte payload) written
        // straight to the connection, 512 at a time, and nothing ever read:
        // the client's pongs can only pile up.
        let mut ping = vec![0x89, 125];
        ping.extend_from_slice(&[0x70; 125]);
        let burst = ping.repeat(512);
        let flood = async {
            while shared.ping_flood.load(Ordering::Relaxed)
                && ws.get_mut().write_all(&burst).await.is_ok()
            {
                shared.pings_sent.fetch_add(512, Ordering::Relaxed);
            }
        };
        let _ = timeout(Duration::from_secs(60), flood).await;
        return;
    }
    let huge = shared.huge_frame.load(Ordering::Relaxed);
    if huge > 0 {
        // An unmasked binary frame with a 64-bit length, and no payload.
        let mut header = vec![0x82, 127];
        header.extend_from_slice(&huge.to_be_bytes());
        let hold = async {
            ws.get_mut().write_all(&header).await?;
            ws.get_mut().flush().await?;
            let mut sink = [0u8; 4096];
            while ws.get_mut().read(&mut sink).await? > 0 {}
            Ok::<(), std::io::Error>(())
        };
        let _ = timeout(Duration::from_secs(60), hold).await;
        return;
    }
    let (mut sink, mut stream) = ws.split();
    if plan.blocked.is_some() {
        // Security groups drop the SYN: the service gives up on the instance
        // and closes the tunnel. Real timeouts take seconds; a short delay
        // keeps tests fast while still looking like a wait.
        tokio::time::sleep(BLOCKED_DELAY).await;
        let _ = sink.send(close_message(1011, BLOCKED_REASON)).await;
        let _ = timeout(CLOSE_GRACE, async {
            while stream.next().await.is_some() {}
        })
        .await;
        return;
    }
    let tcp = match plan.target {
        None => Err(format!(
            "nothing is listening on port {} of {}",
            plan.port, plan.instance_id
        )),
        Some(addr) => match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(format!("{addr}: {e}")),
            Err(_) => Err(format!("{addr}: timed out")),
        },
    };
    let tcp = match tcp {
        Ok(t) => t,
        Err(why) => {
            let reason = truncate_reason(&format!("Connection to the instance failed: {why}"));
            let _ = sink.send(close_message(1011, &reason)).await;
            // Let the client's close reply arrive so the close is clean.
            let _ = timeout(CLOSE_GRACE, async {
                while stream.next().await.is_some() {}
            })
            .await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (tcp_r, tcp_w) = tcp.into_split();

    let (to_tcp_tx, to_tcp_rx) = mpsc::channel(PIPELINE);
    let (to_ws_tx, to_ws_rx) = mpsc::channel(PIPELINE);
    let (ctl_tx, ctl_rx) = mpsc::channel(4);
    let frozen = shared.frozen.subscribe();
    let deadline = tokio::time::Instant::now() + plan.max_duration;
    let cap_close = shared.state().cap_close.clone();

    let mut reader = tokio::spawn(ws_to_channel(
        stream,
        to_tcp_tx,
        ctl_tx,
        frozen.clone(),
        shared.clone(),
        cut.clone(),
    ));
    let mut tcp_writer = tokio::spawn(channel_to_tcp(to_tcp_rx, tcp_w, frozen.clone()));
    let tcp_reader = tokio::spawn(tcp_to_channel(
        tcp_r,
        to_ws_tx,
        frozen.clone(),
        shared.clone(),
    ));
    let mut writer = tokio::spawn(channel_to_ws(
        sink,
        to_ws_rx,
        ctl_rx,
        closer,
        frozen,
        shutdown,
        (deadline, cap_close),
        cut.clone(),
    ));
    let dropped = async {
        match &cut {
            Some(c) => c.drop_now.notified().await,
            None => std::future::pending().await,
        }
    };

    tokio::select! {
        _ = &mut reader => {}
        _ = &mut writer => {
            // We sent a close (or the connection broke): give the client a
            // moment to answer it.
            let _ = timeout(CLOSE_GRACE, &mut reader).await;
        }
        _ = dropped => {
            // A cut with no close frame: let what the instance was given
            // arrive, then drop the websocket connection as it is.
            reader.abort();
            writer.abort();
            let _ = timeout(CLOSE_GRACE, &mut tcp_writer).await;
            tcp_reader.abort();
            tcp_writer.abort();
            return;
        }
    }
    // The client is done sending; deliver what it sent before closing TCP.
    let _ = timeout(CLOSE_GRACE, &mut tcp_writer).await;
    reader.abort();
    writer.abort();
    tcp_reader.abort();
    tcp_writer.abort();
}

/// Close reasons must fit in a control frame (123 bytes).
fn truncate_reason(s: &str) -> String {
    let mut end = s.len().min(123);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Websocket → channel: binary payloads go to the instance; a text frame
/// asks for a 1003 close. Returns when the client's side is finished.
async fn ws_to_channel(
    mut stream: WsStream,
    to_tcp: mpsc::Sender<Stamped>,
    ctl: mpsc::Sender<(u16, String)>,
    mut frozen: watch::Receiver<bool>,
    shared: Arc<Shared>,
    cut: Option<Arc<ArmedCut>>,
) {
    let mut to_tcp = Some(to_tcp);
    loop {
        unfrozen(&mut frozen).await;
        // Stop reading (and so answering pings) as soon as a freeze starts.
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = frozen.wait_for(|f| *f) => continue,
        };
        match msg {
            Some(Ok(Message::Binary(mut data))) => {
                let strikes = match &cut {
                    Some(c) => {
                        let (take, strikes) = c.admit(Direction::ToInstance, data.len());
                        data.truncate(take);
                        strikes.then_some(c)
                    }
                    None => None,
                };
                if let Some(tx) = &to_tcp
                    && !data.is_empty()
                    && tx.send(stamp(&shared, data)).await.is_err()
                {
                    // The instance side is gone; the writer will close.
                    to_tcp = None;
                }
                if let Some(c) = strikes {
                    to_tcp = None;
                    match &c.cut.close {
                        Some((code, reason)) => {
                            let _ = ctl.send((*code, reason.clone())).await;
                        }
                        None => c.drop_now.notify_one(),
                    }
                }
            }
            Some(Ok(Message::Text(_))) => {
                let _ = ctl
                    .send((1003, "text frames are not supported".to_string()))
                    .await;
            }
            // The client is closing: end the TCP write side, then keep
            // reading so tungstenite sends the close reply.
            Some(Ok(Message::Close(_))) => to_tcp = None,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return,
        }
    }
}

/// Sleep until `due`, but not at all when it has come: tokio's timer rounds
/// up to the next millisecond, which would add latency at "0 ms added".
async fn wait_until(due: tokio::time::Instant) {
    if due > tokio::time::Instant::now() {
        sleep_until(due).await;
    }
}

/// Channel → instance TCP, each chunk at its due time. Shuts down the TCP
/// write side when the channel ends.
async fn channel_to_tcp(
    mut rx: mpsc::Receiver<Stamped>,
    mut tcp: OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    while let Some(item) = rx.recv().await {
        wait_until(item.due).await;
        unfrozen(&mut frozen).await;
        if tcp.write_all(&item.data).await.is_err() {
            return;
        }
    }
    let _ = tcp.shutdown().await;
}

/// Instance TCP → channel, at most `MAX_FRAME` bytes per message. Ends (and
/// so signals EOF) when the instance closes its side.
async fn tcp_to_channel(
    mut tcp: OwnedReadHalf,
    tx: mpsc::Sender<Stamped>,
    mut frozen: watch::Receiver<bool>,
    shared: Arc<Shared>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        unfrozen(&mut frozen).await;
        let n = match tcp.read(&mut buf[..MAX_FRAME]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let data = Bytes::copy_from_slice(&buf[..n]);
        if tx.send(stamp(&shared, data)).await.is_err() {
            return;
        }
    }
}

/// What the websocket writer does next.
enum WriterEvent {
    Delivered,
    Eof,
    Broken,
    Close(u16, String),
}

/// Receives the next close request broadcast by `close_tunnels`.
async fn next_close(rx: &mut broadcast::Receiver<(u16, String)>) -> (u16, String) {
    loop {
        match rx.recv().await {
            Ok(c) => return c,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// Delivers the next chunk from the instance at its due time.
async fn deliver(
    sink: &mut WsSink,
    rx: &mut mpsc::Receiver<Stamped>,
    frozen: &mut watch::Receiver<bool>,
    cut: Option<&ArmedCut>,
) -> WriterEvent {
    let Some(mut item) = rx.recv().await else {
        return WriterEvent::Eof;
    };
    wait_until(item.due).await;
    unfrozen(frozen).await;
    let strikes = match cut {
        Some(c) => {
            let (take, strikes) = c.admit(Direction::ToClient, item.data.len());
            item.data.truncate(take);
            strikes.then_some(c)
        }
        None => None,
    };
    if !item.data.is_empty() && sink.send(Message::Binary(item.data)).await.is_err() {
        return WriterEvent::Broken;
    }
    match strikes {
        None => WriterEvent::Delivered,
        Some(c) => match &c.cut.close {
            Some((code, reason)) => WriterEvent::Close(*code, reason.clone()),
            None => {
                c.drop_now.notify_one();
                // The relay drops the connection; send nothing more.
                std::future::pending().await
            }
        },
    }
}

/// Channel → websocket, plus every reason to close: instance EOF (1000),
/// a protocol error (1003), `close_tunnels`, the maximum duration (`cap`:
/// when, and the close frame then) and simulator shutdown (1001), and an
/// armed cut.
#[allow(clippy::too_many_arguments)]
async fn channel_to_ws(
    mut sink: WsSink,
    mut rx: mpsc::Receiver<Stamped>,
    mut ctl: mpsc::Receiver<(u16, String)>,
    mut closer: broadcast::Receiver<(u16, String)>,
    mut frozen: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<()>,
    cap: (tokio::time::Instant, (u16, String)),
    cut: Option<Arc<ArmedCut>>,
) {
    let (deadline, cap_close) = cap;
    let (code, reason) = loop {
        let event = tokio::select! {
            biased;
            c = ctl.recv() => match c {
                Some((code, reason)) => WriterEvent::Close(code, reason),
                None => WriterEvent::Close(1011, "internal error".to_string()),
            },
            (code, reason) = next_close(&mut closer) => WriterEvent::Close(code, reason),
            _ = sleep_until(deadline) => WriterEvent::Close(cap_close.0, cap_close.1.clone()),
            _ = shutdown.changed() => WriterEvent::Close(1001, "Simulator shutting down".to_string()),
            e = deliver(&mut sink, &mut rx, &mut frozen, cut.as_deref()) => e,
        };
        match event {
            WriterEvent::Delivered => continue,
            WriterEvent::Broken => return,
            WriterEvent::Eof => break (1000, String::new()),
            WriterEvent::Close(code, reason) => break (code, reason),
        }
    };
    let _ = sink
        .send(close_message(code, &truncate_reason(&reason)))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_a_control_frame() {
        let long = "é".repeat(100);
        let t = truncate_reason(&long);
        assert!(t.len() <= 123);
        assert!(long.starts_with(&t));
    }
}
