//! The HTTPS API listener: the EC2 Query API and the EC2 Instance Connect
//! JSON API share it, told apart the way the SDKs address them (a JSON
//! request carries `X-Amz-Target`, a Query request a form body with
//! `Action=`).
//!
//! Element names follow the `aws-sdk-ec2` deserializers
//! (`protocol_serde/shape_*.rs`): EC2 answers use lower-camel-case names,
//! lists are `<…Set><item>…</item></…Set>`, and errors are
//! `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
//!
//! This file accepts connections, routes each request to [`ec2`] (the Query
//! API) or [`instance_connect`] (`SendSSHPublicKey`) and holds the SigV4
//! check both share; [`query`] reads Query parameters and [`response`]
//! renders answers and errors.

mod ec2;
mod instance_connect;
mod query;
mod response;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::Shared;
use super::sigv4::{self, AuthError, Expected};
use response::respond;

/// Accepts connections until the simulator is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut stop = shutdown.clone();
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!("sim api accept: {e}");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let conn = async {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(req, &shared).await) }
                });
                // Every Date is the service's clock, set in `handle`
                // (hyper's own would be the real clock).
                if let Err(e) = http1::Builder::new()
                    .auto_date_header(false)
                    .serve_connection(TokioIo::new(tls), svc)
                    .await
                {
                    tracing::debug!("sim api connection: {e}");
                }
            };
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}

const TARGET_PREFIX: &str = "AWSEC2InstanceConnectService.";

/// Answers one request; every answer carries the service's `Date`, as
/// AWS's do (a client corrects a wrong clock by it).
async fn handle(req: http::Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let mut resp = answer(req, shared).await;
    if let Some(date) = shared.date_header() {
        resp.headers_mut().insert(http::header::DATE, date);
    }
    resp
}

async fn answer(req: http::Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    if let Some(auth) = parts.headers.get(http::header::AUTHORIZATION) {
        let auth = String::from_utf8_lossy(auth.as_bytes());
        for part in auth.split([',', ' ']) {
            if let Some(sig) = part.trim().strip_prefix("Signature=") {
                shared.saw_signature(sig);
            }
        }
    }
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return respond(413, "text/plain", "request body too large".into(), "", None),
    };
    let latency = shared.state().api_latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let request_id = shared.request_id();
    let (op, answer) = if let Some(target) = parts.headers.get("x-amz-target") {
        let target = String::from_utf8_lossy(target.as_bytes()).into_owned();
        // The service knows its operations only by their full target.
        let op = match target.strip_prefix(TARGET_PREFIX) {
            Some(op) => op.to_string(),
            None => format!("(unknown target {target})"),
        };
        let answer = instance_connect::handle(&parts, &body, &op, shared, &request_id);
        (op, answer)
    } else {
        ec2::handle(&parts, &body, shared, &request_id)
    };
    if shared.take_stall(&op) {
        shared.stall(&op, started).await;
    }
    shared.record(
        &op,
        started,
        answer.status,
        &answer.detail,
        Some(&request_id),
    );
    let mut resp = respond(
        answer.status,
        answer.content_type,
        answer.body,
        &request_id,
        answer.error_type.as_deref(),
    );
    if let Ok(v) = http::HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    resp
}

fn expected<'a>(region: &'a str, service: &'a str, now: u64) -> Expected<'a> {
    Expected {
        region,
        service,
        now,
    }
}

/// Checks the request's header signature for `service` in `region`.
fn verify(
    parts: &http::request::Parts,
    body: &[u8],
    shared: &Shared,
    region: &str,
    service: &str,
) -> Result<String, AuthError> {
    sigv4::verify_header_auth(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &parts.headers,
        body,
        &shared.identities,
        &expected(region, service, shared.now()),
    )
}
