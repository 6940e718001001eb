//! The endpoint's HTTP side: TLS, the websocket upgrade served with hyper
//! (not tungstenite's own handshake) so that refusals are ordinary HTTP
//! answers with a JSON body and a `Content-Length`, and the 101 that hands
//! the connection to the relay.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::admission::{
    MAX_TUNNELS_PER_ENDPOINT, Reject, TunnelGuard, check_open_tunnel, reject, security_verdict,
};
use super::relay::run_tunnel;
use crate::Shared;
use crate::faults::{ArmedCut, stalled_connection};

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
                // Every Date is the service's clock, set in `handle`
                // (hyper's own would be the real clock).
                if let Err(e) = http1::Builder::new()
                    .auto_date_header(false)
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
    // Every answer, refusal or 101, carries the service's time.
    let date = shared.date_header();
    let refuse = |r: Reject| {
        shared.record(OP, started, r.status, &r.code, Some(&request_id));
        let mut resp = json_response(r.status, &request_id, &r.code, &r.message);
        if let Some(v) = date.clone() {
            resp.headers_mut().insert(http::header::DATE, v);
        }
        resp
    };

    for pair in req.uri().query().unwrap_or("").split('&') {
        if let Some(sig) = pair.strip_prefix("X-Amz-Signature=") {
            shared.saw_signature(sig);
        }
    }
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

    shared.record(OP, started, 101, &detail, Some(&request_id));
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
    if let Some(v) = date {
        h.insert(http::header::DATE, v);
    }
    resp
}
