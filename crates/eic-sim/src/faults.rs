//! Faults injected per test: what breaks in the middle. Each is armed on the
//! [`Simulator`] for the next request(s) or connection(s) and used up as it
//! strikes, so a test says exactly how many times something fails.
//!
//! * [`Simulator::fail_times`]: an API action or the tunnel handshake
//!   answered with an error (`Throttling`, `RequestLimitExceeded`, a 5xx,
//!   429…) a given number of times;
//! * [`Simulator::stall_next`]: an API answer or handshake answer that never
//!   comes;
//! * [`Simulator::stall_connections`]: an endpoint that goes silent after
//!   accepting TCP, after TLS, or that sends one header line a second;
//! * [`Simulator::cut_next_tunnel`]: a tunnel cut after N bytes in either
//!   direction, with or without a close frame;
//! * [`Simulator::expire_next_keys`]: pushed keys that expire before SSH
//!   authentication uses them;
//! * [`Simulator::set_clock_offset`]: the service's clock off from the
//!   client's (as if the client's clock were off the other way);
//! * [`Simulator::omit_date_header`]: answers without a `Date` header, so
//!   that a client cannot tell the service's time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use super::{Failure, Shared, Simulator};

/// Which way a [`Cut`] counts bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client → instance.
    ToInstance,
    /// Instance → client.
    ToClient,
}

/// A tunnel cut after `after` bytes went `direction`.
#[derive(Clone, Debug)]
pub struct Cut {
    /// The direction whose bytes are counted.
    pub direction: Direction,
    /// Exactly this many bytes get through that way, then the cut.
    pub after: u64,
    /// `Some((code, reason))`: the endpoint sends this close frame; `None`:
    /// the connection just drops, with no close frame.
    pub close: Option<(u16, String)>,
}

/// How an endpoint connection stalls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// Accepts TCP, then says nothing.
    AfterAccept,
    /// Completes TLS, then says nothing.
    AfterTls,
    /// Answers the upgrade with a status line, then one header line a
    /// second, never ending the headers.
    SlowHeaders,
}

/// Armed faults, in the simulator's state.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Per operation: how many answers never come.
    pub stalls: std::collections::HashMap<String, usize>,
    /// Stalls for the next endpoint connections, in order.
    pub connection_stalls: std::collections::VecDeque<Stall>,
    /// Cuts for the next tunnels, in order.
    pub cuts: std::collections::VecDeque<Cut>,
    /// How many of the next pushed keys expire before anyone can use them.
    pub expiring_keys: usize,
    /// Seconds the service's clock is ahead of the real one (negative:
    /// behind).
    pub clock_offset: i64,
    /// Answers leave out their `Date` header.
    pub omit_date: bool,
}

impl Simulator {
    /// Makes the next `times` calls of `op` (an API action, or `OpenTunnel`
    /// for the handshake) fail with this status, code and message, after
    /// their signature was accepted.
    pub fn fail_times(&self, op: &str, times: usize, http_status: u16, code: &str, message: &str) {
        let mut st = self.shared().state();
        let queue = st.failures.entry(op.to_string()).or_default();
        for _ in 0..times {
            queue.push_back(Failure {
                status: http_status,
                code: code.to_string(),
                message: message.to_string(),
            });
        }
    }

    /// The next `times` calls of `op` (an API action, or `OpenTunnel`) are
    /// never answered: the request is read, then nothing comes back until
    /// the client gives up.
    pub fn stall_next(&self, op: &str, times: usize) {
        *self
            .shared()
            .state()
            .faults
            .stalls
            .entry(op.to_string())
            .or_default() += times;
    }

    /// The next `times` connections to the endpoints stall as `stall` says.
    pub fn stall_connections(&self, stall: Stall, times: usize) {
        let mut st = self.shared().state();
        for _ in 0..times {
            st.faults.connection_stalls.push_back(stall);
        }
    }

    /// The next tunnel opened is cut as `cut` says.
    pub fn cut_next_tunnel(&self, cut: Cut) {
        self.shared().state().faults.cuts.push_back(cut);
    }

    /// The next `times` keys pushed with `SendSSHPublicKey` are accepted but
    /// expire before SSH authentication can use them (as if the 60 s had
    /// passed).
    pub fn expire_next_keys(&self, times: usize) {
        self.shared().state().faults.expiring_keys += times;
    }

    /// Sets the service's clock `secs` ahead of the real one (negative:
    /// behind), as seen by signature checks and in `Date` headers. A client
    /// then looks as if its clock were off by `-secs`.
    pub fn set_clock_offset(&self, secs: i64) {
        self.shared().state().faults.clock_offset = secs;
    }

    /// With `true`, no answer carries a `Date` header (the API's, and the
    /// endpoint's upgrade answers), as if something between stripped it:
    /// a client then cannot learn the service's clock from them.
    pub fn omit_date_header(&self, omit: bool) {
        self.shared().state().faults.omit_date = omit;
    }

    /// How many endpoint connections stalled so far.
    pub fn stalled_connections(&self) -> u64 {
        self.shared().stalled_connections.load(Ordering::SeqCst)
    }
}

impl Shared {
    /// Takes one armed stall of `op`, if any.
    pub(crate) fn take_stall(&self, op: &str) -> bool {
        let mut st = self.state();
        match st.faults.stalls.get_mut(op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn take_connection_stall(&self) -> Option<Stall> {
        self.state().faults.connection_stalls.pop_front()
    }

    pub(crate) fn take_cut(&self) -> Option<Cut> {
        self.state().faults.cuts.pop_front()
    }

    /// Whether the key being pushed must expire at once.
    pub(crate) fn take_expiring_key(&self) -> bool {
        let mut st = self.state();
        let armed = st.faults.expiring_keys > 0;
        st.faults.expiring_keys = st.faults.expiring_keys.saturating_sub(1);
        armed
    }

    /// The service's clock: the real one plus the armed offset.
    pub(crate) fn now(&self) -> u64 {
        let offset = self.state().faults.clock_offset;
        super::unix_now().saturating_add_signed(offset)
    }

    /// The service's clock as an HTTP `Date` header value; `None` while
    /// [`Simulator::omit_date_header`] is armed.
    pub(crate) fn date_header(&self) -> Option<http::HeaderValue> {
        if self.state().faults.omit_date {
            return None;
        }
        let date =
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(self.now()));
        http::HeaderValue::from_str(&date).ok()
    }

    /// Never answers: logs the stall and waits until the simulator stops
    /// (the caller's connection task is dropped with it, or when the
    /// client goes away).
    pub(crate) async fn stall(&self, op: &str, started: Instant) {
        self.record(op, started, 0, "stalled: never answered", None);
        std::future::pending::<()>().await;
    }
}

/// Plays one stalled endpoint connection until the client gives up.
pub(crate) async fn stalled_connection(
    stall: Stall,
    mut tcp: TcpStream,
    acceptor: TlsAcceptor,
    shared: &Shared,
) {
    shared.stalled_connections.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    shared.record(
        "OpenTunnel",
        started,
        0,
        &format!("stalled: {stall:?}"),
        None,
    );
    if stall == Stall::AfterAccept {
        // Read (and drop) whatever comes, until the client closes.
        let mut buf = [0u8; 4096];
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
        return;
    }
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let mut buf = [0u8; 4096];
    if stall == Stall::AfterTls {
        while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
        return;
    }
    // Slow headers: read the request head, then drip the answer's headers.
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf).await {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    if tls
        .write_all(b"HTTP/1.1 101 Switching Protocols\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for n in 0u64.. {
        tick.tick().await;
        let line = format!("X-Slow-{n}: one line a second\r\n");
        if tls.write_all(line.as_bytes()).await.is_err() || tls.flush().await.is_err() {
            return;
        }
    }
}

/// A [`Cut`] armed on one tunnel: counts the bytes going its way, and
/// signals the relay when it strikes.
pub(crate) struct ArmedCut {
    pub cut: Cut,
    passed: AtomicU64,
    /// Notified when the cut strikes without a close frame: the relay then
    /// drops the connection.
    pub drop_now: Notify,
}

impl ArmedCut {
    pub(crate) fn new(cut: Cut) -> ArmedCut {
        ArmedCut {
            cut,
            passed: AtomicU64::new(0),
            drop_now: Notify::new(),
        }
    }

    /// How much of a `len`-byte chunk going `direction` may pass, and
    /// whether the cut strikes with it.
    pub(crate) fn admit(&self, direction: Direction, len: usize) -> (usize, bool) {
        if direction != self.cut.direction {
            return (len, false);
        }
        let passed = self.passed.load(Ordering::SeqCst);
        let room = self.cut.after.saturating_sub(passed);
        let take = u64::try_from(len).unwrap_or(u64::MAX).min(room);
        self.passed.fetch_add(take, Ordering::SeqCst);
        let strikes = passed + take >= self.cut.after;
        (usize::try_from(take).unwrap_or(len), strikes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_lets_exactly_its_bytes_through() {
        let armed = ArmedCut::new(Cut {
            direction: Direction::ToClient,
            after: 10,
            close: None,
        });
        assert_eq!(armed.admit(Direction::ToInstance, 100), (100, false));
        assert_eq!(armed.admit(Direction::ToClient, 4), (4, false));
        assert_eq!(armed.admit(Direction::ToClient, 100), (6, true));
        assert_eq!(armed.admit(Direction::ToClient, 100), (0, true));
    }
}
