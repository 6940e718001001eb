//! The EC2 Instance Connect Endpoint websocket: `GET /openTunnel`,
//! presigned with SigV4 in the query string, upgraded to a websocket whose
//! binary messages carry the bytes of one TCP connection to the instance.
//!
//! The upgrade is served with hyper (not tungstenite's own handshake) so
//! that refusals are ordinary HTTP answers with a JSON body and a
//! `Content-Length`, written and flushed like any response.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{sleep_until, timeout};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::faults::{ArmedCut, Direction, stalled_connection};
use super::sigv4::{self, AuthError, Expected, Identity};
use super::{Failure, Shared, TunnelEvent, World};

/// Longest `X-Amz-Expires` accepted. SigV4 allows a week, but the
/// service's own client uses 60 s and nothing needs more than an hour.
const MAX_PRESIGN_EXPIRES: u64 = 3600;
/// The service's default and maximum `maxTunnelDuration`.
const MAX_TUNNEL_SECS: u64 = 3600;
/// Concurrent connections per endpoint (a fixed service quota).
pub(crate) const MAX_TUNNELS_PER_ENDPOINT: usize = 20;
/// Endpoint states in which the service opens tunnels.
const USABLE_STATES: [&str; 4] = [
    "create-complete",
    "update-in-progress",
    "update-complete",
    "update-failed",
];
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

/// Accepts tunnel connections until the simulator is dropped. `dns` is the
/// name this listener is known by (the endpoints' `DnsName` or `FipsDnsName`).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<()>,
    dns: String,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut stop = shutdown.clone();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!("sim eice accept on {dns}: {e}");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        if let Some(stall) = shared.take_connection_stall() {
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stalled_connection(stall, tcp, acceptor, &shared) => {}
                    _ = stop.changed() => {}
                }
            });
            continue;
        }
        tokio::spawn(async move {
            let mut stop = shutdown.clone();
            let conn = async {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req| {
                    let shared = shared.clone();
                    let shutdown = shutdown.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(handle(req, shared, shutdown, peer).await)
                    }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .with_upgrades()
                    .await
                {
                    tracing::debug!("sim eice connection: {e}");
                }
            };
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}

/// A refused upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reject {
    pub status: u16,
    pub code: String,
    pub message: String,
}

fn reject(status: u16, code: &str, message: impl Into<String>) -> Reject {
    Reject {
        status,
        code: code.to_string(),
        message: message.into(),
    }
}

/// An accepted tunnel request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub endpoint_id: String,
    pub instance_id: String,
    pub port: u16,
    /// Where to connect; `None` makes the tunnel close with 1011.
    pub target: Option<SocketAddr>,
    pub max_duration: Duration,
    /// Why security groups drop the connection to the instance, if they do
    /// (decided after [`check_open_tunnel`], which knows no client address).
    pub blocked: Option<String>,
}

/// Decides an `/openTunnel` request the way the service does: signature
/// first, then any injected failure, then the parameters.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_open_tunnel(
    world: &World,
    identities: &[Identity],
    path: &str,
    query: &str,
    headers: &HeaderMap,
    now: u64,
    inject: impl FnOnce() -> Option<Failure>,
) -> Result<Plan, Reject> {
    if path != "/openTunnel" {
        return Err(reject(404, "NotFound", format!("No such resource: {path}")));
    }
    let expected = Expected {
        region: &world.region,
        service: "ec2-instance-connect",
        now,
    };
    if let Err(e) = sigv4::verify_presigned(
        "GET",
        path,
        query,
        headers,
        identities,
        &expected,
        MAX_PRESIGN_EXPIRES,
    ) {
        return Err(match e {
            AuthError::Mismatch => reject(
                403,
                "AccessDenied",
                "The request signature we calculated does not match the signature you provided.",
            ),
            AuthError::Malformed(m) => reject(400, "AuthorizationQueryParametersError", m),
            other => reject(403, "AccessDenied", other.message()),
        });
    }
    if let Some(f) = inject() {
        return Err(reject(f.status, &f.code, f.message));
    }

    let params = sigv4::decode_query(query);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let endpoint_id = get("instanceConnectEndpointId").ok_or_else(|| {
        reject(
            400,
            "InvalidParameter",
            "The instanceConnectEndpointId parameter is required",
        )
    })?;
    let endpoint = world.endpoint(endpoint_id).ok_or_else(|| {
        reject(
            404,
            "ResourceNotFound",
            format!("The instance connect endpoint '{endpoint_id}' does not exist"),
        )
    })?;
    if !USABLE_STATES.contains(&endpoint.state.as_str()) {
        return Err(reject(
            400,
            "IncorrectState",
            format!(
                "The instance connect endpoint '{endpoint_id}' is not available (state: {})",
                endpoint.state
            ),
        ));
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let dns = super::endpoint_dns_name(&endpoint.id, &world.region, false);
    let fips_dns = super::endpoint_dns_name(&endpoint.id, &world.region, true);
    let dualstack_dns = super::endpoint_dualstack_dns_name(&endpoint.id, &world.region);
    let named = host.eq_ignore_ascii_case(&dns)
        || (endpoint.fips && host.eq_ignore_ascii_case(&fips_dns))
        || (endpoint.dualstack && host.eq_ignore_ascii_case(&dualstack_dns));
    if !named {
        return Err(reject(
            400,
            "InvalidParameter",
            format!(
                "The host '{host}' is not a DNS name of instance connect endpoint '{endpoint_id}'"
            ),
        ));
    }
    let port = match get("remotePort") {
        Some("22") => 22,
        Some("3389") => 3389,
        _ => {
            return Err(reject(
                400,
                "InvalidParameter",
                "The specified RemotePort is not valid. Specify either 22 or 3389",
            ));
        }
    };
    let max_duration = match get("maxTunnelDuration") {
        None => MAX_TUNNEL_SECS,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=MAX_TUNNEL_SECS).contains(s))
            .ok_or_else(|| {
                reject(
                    400,
                    "InvalidParameter",
                    "The specified MaxTunnelDuration is not valid. Specify a value between 1 and 3600 seconds",
                )
            })?,
    };
    if let Some(cap) = world.max_tunnel_duration_cap
        && max_duration > cap
    {
        return Err(reject(
            403,
            "AccessDeniedException",
            format!(
                "User: arn:aws:iam::123456789012:user/sim is not authorized to perform: ec2-instance-connect:OpenTunnel on resource: {endpoint_id} because no identity-based policy allows it (ec2-instance-connect:maxTunnelDuration {max_duration})"
            ),
        ));
    }
    let ip = get("privateIpAddress")
        .and_then(|s| s.parse::<std::net::IpAddr>().ok())
        .ok_or_else(|| {
            reject(
                400,
                "InvalidParameter",
                "The specified PrivateIpAddress is not a valid IP address",
            )
        })?;
    // The endpoint's IpAddressType decides which family it reaches.
    let serves = match endpoint.ip_address_type.as_str() {
        "dualstack" => true,
        "ipv6" => ip.is_ipv6(),
        _ => ip.is_ipv4(),
    };
    if !serves {
        return Err(reject(
            400,
            "InvalidParameter",
            format!(
                "The instance connect endpoint '{endpoint_id}' has IpAddressType {} and cannot connect to {ip}",
                endpoint.ip_address_type
            ),
        ));
    }
    let ip = ip.to_string();
    let instance = world
        .instances
        .iter()
        .find(|i| {
            i.vpc_id == endpoint.vpc_id
                && (i.private_ip.as_deref() == Some(ip.as_str())
                    || i.ipv6_address.as_deref() == Some(ip.as_str()))
        })
        .ok_or_else(|| {
            reject(
                400,
                "InvalidParameter",
                format!(
                    "No instance with private IP address {ip} in {} (the VPC of instance connect endpoint '{endpoint_id}')",
                    endpoint.vpc_id
                ),
            )
        })?;
    if instance.state != "running" {
        return Err(reject(
            400,
            "InvalidParameter",
            format!(
                "The instance {} at {ip} is not running (state: {})",
                instance.id, instance.state
            ),
        ));
    }
    Ok(Plan {
        endpoint_id: endpoint.id.clone(),
        instance_id: instance.id.clone(),
        port,
        target: if port == 22 {
            instance.ssh
        } else {
            instance.rdp
        },
        max_duration: Duration::from_secs(max_duration),
        blocked: None,
    })
}

/// Decides whether security groups let the endpoint reach the instance for
/// a client at `peer` (or the configured stand-in for its public address).
fn security_verdict(world: &World, plan: &Plan, client: Ipv4Addr) -> Option<String> {
    let endpoint = world.endpoint(&plan.endpoint_id)?;
    let instance = world.instance(&plan.instance_id)?;
    super::security::tunnel_allowed(world, endpoint, instance, plan.port, client).err()
}

fn json_response(
    status: u16,
    request_id: &str,
    code: &str,
    message: &str,
) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "ErrorCode": code, "Message": message }).to_string();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

fn header_has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Counts a tunnel against its endpoint's quota while alive.
struct TunnelGuard {
    shared: Arc<Shared>,
    endpoint_id: String,
    instance_id: String,
}

impl TunnelGuard {
    fn acquire(shared: &Arc<Shared>, endpoint_id: &str, instance_id: &str) -> Option<TunnelGuard> {
        let mut st = shared.state();
        let n = st
            .tunnels_per_endpoint
            .entry(endpoint_id.to_string())
            .or_default();
        if *n >= MAX_TUNNELS_PER_ENDPOINT {
            return None;
        }
        *n += 1;
        let open_after = *n;
        st.tunnel_events.push(TunnelEvent {
            at: Instant::now(),
            endpoint_id: endpoint_id.to_string(),
            instance_id: instance_id.to_string(),
            opened: true,
            open_after,
        });
        shared.open_tunnels.fetch_add(1, Ordering::SeqCst);
        Some(TunnelGuard {
            shared: shared.clone(),
            endpoint_id: endpoint_id.to_string(),
            instance_id: instance_id.to_string(),
        })
    }
}

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        let mut st = self.shared.state();
        let open_after = match st.tunnels_per_endpoint.get_mut(&self.endpoint_id) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => 0,
        };
        st.tunnel_events.push(TunnelEvent {
            at: Instant::now(),
            endpoint_id: self.endpoint_id.clone(),
            instance_id: self.instance_id.clone(),
            opened: false,
            open_after,
        });
        drop(st);
        self.shared.open_tunnels.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    mut req: http::Request<Incoming>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<()>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    const OP: &str = "OpenTunnel";
    let started = Instant::now();
    let latency = shared.state().handshake_latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if shared.take_stall(OP) {
        shared.stall(OP, started).await;
    }
    let request_id = shared.request_id();
    let date = shared.http_date();
    let refuse = |r: Reject| {
        shared.record(OP, started, r.status, &r.code);
        let mut resp = json_response(r.status, &request_id, &r.code, &r.message);
        if let Ok(v) = http::HeaderValue::from_str(&date) {
            resp.headers_mut().insert(http::header::DATE, v);
        }
        resp
    };

    let headers = req.headers();
    let key = headers
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()));
    let is_upgrade = req.method() == http::Method::GET
        && header_has_token(headers, http::header::CONNECTION, "upgrade")
        && header_has_token(headers, http::header::UPGRADE, "websocket")
        && headers
            .get("sec-websocket-version")
            .is_some_and(|v| v.as_bytes() == b"13");
    let Some(accept) = key.filter(|_| is_upgrade) else {
        return refuse(reject(
            400,
            "InvalidParameter",
            "Expected a websocket upgrade request (GET with Upgrade: websocket)",
        ));
    };

    let world = shared.state().world.clone();
    let decision = check_open_tunnel(
        &world,
        &shared.identities,
        req.uri().path(),
        req.uri().query().unwrap_or(""),
        req.headers(),
        shared.now(),
        || shared.take_failure(OP),
    );
    let mut plan = match decision {
        Ok(p) => p,
        Err(r) => return refuse(r),
    };
    let client = shared.state().client_public_ip.unwrap_or(match peer.ip() {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::LOCALHOST),
    });
    plan.blocked = security_verdict(&world, &plan, client);
    let Some(guard) = TunnelGuard::acquire(&shared, &plan.endpoint_id, &plan.instance_id) else {
        return refuse(reject(
            429,
            "TooManyConnections",
            format!(
                "The instance connect endpoint '{}' already has the maximum of {MAX_TUNNELS_PER_ENDPOINT} concurrent connections",
                plan.endpoint_id
            ),
        ));
    };

    let on_upgrade = hyper::upgrade::on(&mut req);
    // Which name the client dialed, and over which family it came.
    let dialed = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let family = if peer.is_ipv6() { "IPv6" } else { "IPv4" };
    let mut detail = format!(
        "{} -> {}:{} via {dialed} over {family}",
        plan.endpoint_id, plan.instance_id, plan.port
    );
    if let Some(why) = &plan.blocked {
        detail.push_str(&format!(" blocked: {why}"));
    }
    let task_shared = shared.clone();
    // Subscribe now: a close_tunnels() right after the client saw 101 must
    // reach this tunnel even though it is still being set up.
    let closer = shared.closer.subscribe();
    let cut = shared.take_cut().map(|c| Arc::new(ArmedCut::new(c)));
    tokio::spawn(async move {
        let _guard = guard;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("sim eice upgrade failed: {e}");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(WebSocketConfig::default()),
        )
        .await;
        run_tunnel(ws, plan, task_shared, closer, shutdown, cut).await;
    });

    shared.record(OP, started, 101, &detail);
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    if let Ok(v) = http::HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Ok(v) = http::HeaderValue::from_str(&date) {
        h.insert(http::header::DATE, v);
    }
    resp
}

type Ws = WebSocketStream<TokioIo<Upgraded>>;
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
async fn run_tunnel(
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
        let flood = async { while ws.get_mut().write_all(&burst).await.is_ok() {} };
        let _ = timeout(Duration::from_secs(20), flood).await;
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
        deadline,
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
/// a protocol error (1003), `close_tunnels`, the maximum duration (1001)
/// and simulator shutdown (1001), and an armed cut.
#[allow(clippy::too_many_arguments)]
async fn channel_to_ws(
    mut sink: WsSink,
    mut rx: mpsc::Receiver<Stamped>,
    mut ctl: mpsc::Receiver<(u16, String)>,
    mut closer: broadcast::Receiver<(u16, String)>,
    mut frozen: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<()>,
    deadline: tokio::time::Instant,
    cut: Option<Arc<ArmedCut>>,
) {
    let (code, reason) = loop {
        let event = tokio::select! {
            biased;
            c = ctl.recv() => match c {
                Some((code, reason)) => WriterEvent::Close(code, reason),
                None => WriterEvent::Close(1011, "internal error".to_string()),
            },
            (code, reason) = next_close(&mut closer) => WriterEvent::Close(code, reason),
            _ = sleep_until(deadline) => WriterEvent::Close(
                1001,
                "Tunnel closed: maximum tunnel duration reached".to_string(),
            ),
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
    use crate::sigv4::{format_amz_date, presign_query};
    use crate::unix_now;

    const DNS: &str =
        "eice-0123456789abcdef0.51mu1a7e.ec2-instance-connect-endpoint.us-east-1.amazonaws.com";
    const FIPS: &str = "eice-0123456789abcdef0.51mu1a7e.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com";

    fn identity() -> Identity {
        Identity {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        }
    }

    fn world() -> World {
        let mut w = World::demo();
        w.instances[0].ssh = Some("127.0.0.1:2222".parse().unwrap());
        w
    }

    fn host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(http::header::HOST, http::HeaderValue::from_str(h).unwrap());
        m
    }

    fn presign(params: &[(&str, &str)], host: &str, now: u64, expires: u64) -> String {
        presign_query(
            &identity(),
            "us-east-1",
            "ec2-instance-connect",
            host,
            "/openTunnel",
            params,
            &format_amz_date(now),
            expires,
        )
    }

    fn good_params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("instanceConnectEndpointId", "eice-0123456789abcdef0"),
            ("remotePort", "22"),
            ("privateIpAddress", "10.0.1.10"),
            ("maxTunnelDuration", "3600"),
        ]
    }

    fn check(query: &str, host_header: &str, now: u64) -> Result<Plan, Reject> {
        check_open_tunnel(
            &world(),
            &[identity()],
            "/openTunnel",
            query,
            &host(host_header),
            now,
            || None,
        )
    }

    #[test]
    fn accepts_a_well_signed_request() {
        let now = unix_now();
        let q = presign(&good_params(), DNS, now, 60);
        let plan = check(&q, DNS, now).unwrap();
        assert_eq!(plan.instance_id, "i-0123456789abcdef0");
        assert_eq!(plan.port, 22);
        assert_eq!(plan.target, Some("127.0.0.1:2222".parse().unwrap()));
        assert_eq!(plan.max_duration, Duration::from_secs(3600));

        // The FIPS name works too, since the demo endpoint has one.
        let q = presign(&good_params(), FIPS, now, 60);
        assert!(check(&q, FIPS, now).is_ok());
    }

    #[test]
    fn rejects_bad_requests() {
        let now = unix_now();
        let q = presign(&good_params(), DNS, now, 60);

        // Tampered signature.
        let sig_at = q.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
        let mut t = q.clone();
        let c = if &q[sig_at..sig_at + 1] == "0" {
            "1"
        } else {
            "0"
        };
        t.replace_range(sig_at..sig_at + 1, c);
        let r = check(&t, DNS, now).unwrap_err();
        assert_eq!((r.status, r.code.as_str()), (403, "AccessDenied"));

        // Signed for one host, presented to another.
        let r = check(&q, "localhost:9999", now).unwrap_err();
        assert_eq!(r.status, 403);

        // Signed correctly for a host that is not the endpoint's.
        let q_other = presign(&good_params(), "localhost:9999", now, 60);
        let r = check(&q_other, "localhost:9999", now).unwrap_err();
        assert_eq!((r.status, r.code.as_str()), (400, "InvalidParameter"));

        // Expired.
        let r = check(&q, DNS, now + 61).unwrap_err();
        assert_eq!(r.status, 403);
        assert_eq!(r.message, "Request has expired");

        // Bad port.
        let mut p = good_params();
        p[1] = ("remotePort", "2222");
        let r = check(&presign(&p, DNS, now, 60), DNS, now).unwrap_err();
        assert_eq!(r.status, 400);
        assert_eq!(
            r.message,
            "The specified RemotePort is not valid. Specify either 22 or 3389"
        );

        // Bad durations.
        for d in ["0", "3601", "x"] {
            let mut p = good_params();
            p[3] = ("maxTunnelDuration", d);
            let r = check(&presign(&p, DNS, now, 60), DNS, now).unwrap_err();
            assert_eq!(
                (r.status, r.code.as_str()),
                (400, "InvalidParameter"),
                "{d}"
            );
        }

        // Unknown endpoint.
        let mut p = good_params();
        p[0] = ("instanceConnectEndpointId", "eice-00000000000000000");
        let r = check(&presign(&p, DNS, now, 60), DNS, now).unwrap_err();
        assert_eq!(r.status, 404);

        // Stopped instance, and an address outside the endpoint's VPC.
        for ip in ["10.0.1.11", "10.9.0.10"] {
            let mut p = good_params();
            p[2] = ("privateIpAddress", ip);
            let r = check(&presign(&p, DNS, now, 60), DNS, now).unwrap_err();
            assert_eq!(r.status, 400, "{ip}");
        }

        // Expiry too long.
        let r = check(&presign(&good_params(), DNS, now, 7200), DNS, now).unwrap_err();
        assert_eq!(r.status, 400);
    }

    #[test]
    fn injected_failure_comes_after_the_signature() {
        let now = unix_now();
        let q = presign(&good_params(), DNS, now, 60);
        let r = check_open_tunnel(
            &world(),
            &[identity()],
            "/openTunnel",
            &q,
            &host(DNS),
            now,
            || {
                Some(Failure {
                    status: 503,
                    code: "ServiceUnavailable".into(),
                    message: "try later".into(),
                })
            },
        )
        .unwrap_err();
        assert_eq!(r.status, 503);
    }

    #[test]
    fn reasons_fit_a_control_frame() {
        let long = "é".repeat(100);
        let t = truncate_reason(&long);
        assert!(t.len() <= 123);
        assert!(long.starts_with(&t));
    }
}
