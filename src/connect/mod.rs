//! One connection's critical path: resolve the instance and endpoint, push
//! the key concurrently, presign, and open the tunnel.
//!
//! ```text
//!  cold:  DescribeInstances ─► DescribeInstanceConnectEndpoints ─► presign ─► websocket upgrade ─► SSH
//!         SendSSHPublicKey ─────────────────────────────────────────────────────────────────────┘ (joined before SSH auth)
//!  warm:  (cached route) presign ─► websocket upgrade ─► SSH
//!         SendSSHPublicKey ─────────────────────────┘
//! ```

pub mod background;
pub mod context;
pub mod login;

use std::time::SystemTime;

use crate::aws::endpoint_name;
use crate::aws::{Aws, retry};
use crate::error::Error;
use crate::target::cache::RouteCache;
pub use crate::target::resolve::resolve;
use crate::target::{Destination, KeyPush, Route};
use crate::tunnel::Tunnel;
use crate::tunnel::presign::{self, TunnelRequest};

/// Presign a fresh URL for `route` and open the websocket. The endpoint name
/// is checked first, wherever it came from: the signed URL carries the
/// access key ID, the session token and a signature good for 60 s, and the
/// host that receives it will then be trusted to carry SSH. A refusal that
/// is transient (throttling, a 5xx) is tried again with a fresh URL after a
/// jittered backoff, up to [`retry::ATTEMPTS`] attempts in all; a refusal
/// of the signature's time by an endpoint whose clock differs from ours is
/// tried again once, signed with the endpoint's time. Nothing has reached
/// the user before the tunnel opens, so a retry loses and repeats nothing.
pub async fn open_tunnel(aws: &Aws, dest: &Destination, route: &Route) -> Result<Tunnel, Error> {
    endpoint_name::check(&route.dns_name, &route.endpoint_id, &aws.region).map_err(|reason| {
        Error::UntrustedEndpointName {
            endpoint: route.endpoint_id.clone(),
            name: crate::text::remote_text(&route.dns_name),
            reason,
        }
    })?;
    let mut attempt = 1;
    let mut corrected_skew = None;
    loop {
        let err = match open_once(aws, dest, route).await {
            Ok(tunnel) => return Ok(tunnel),
            Err(e) => e,
        };
        if let Error::TunnelRejected {
            status: 403,
            date: Some(date),
            message,
            ..
        } = &err
        {
            if let Some(skew) = corrected_skew {
                return Err(Error::ClockSkew {
                    skew,
                    message: message.clone(),
                });
            }
            if let Some(skew) = retry::significant_skew(*date, SystemTime::now()) {
                tracing::warn!(
                    "this machine's clock is {skew} s off the endpoint's (clock skew), so it refused the signed URL; signing again with the endpoint's time"
                );
                aws.set_clock_skew(skew);
                corrected_skew = Some(skew);
                continue;
            }
        }
        match &err {
            Error::TunnelRejected { status, .. }
                if retry::transient_status(*status) && attempt < retry::ATTEMPTS =>
            {
                let wait = retry::backoff(attempt);
                tracing::info!(
                    "{err}; trying again in {} ms (attempt {} of {})",
                    wait.as_millis(),
                    attempt + 1,
                    retry::ATTEMPTS
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            _ => return Err(err),
        }
    }
}

async fn open_once(aws: &Aws, dest: &Destination, route: &Route) -> Result<Tunnel, Error> {
    let credentials = aws.credentials().await?;
    let url = presign::presign(
        &TunnelRequest {
            endpoint_id: route.endpoint_id.clone(),
            host: route.dns_name.clone(),
            private_ip: route.private_ip,
            remote_port: dest.port,
            max_tunnel_duration: dest.max_tunnel_duration,
        },
        &credentials,
        &aws.region,
        aws.now(),
    )?;
    Tunnel::open_within(&url, aws.tls.clone(), aws.connect_timeout).await
}

/// The whole path: lookups and tunnel on one branch, the key push on the
/// other, concurrently. With `serial`, the push waits for the lookups (only
/// to measure what the concurrency saves).
pub async fn connect(
    aws: &Aws,
    dest: &Destination,
    push: Option<&KeyPush>,
    serial: bool,
) -> Result<(Tunnel, Route), Error> {
    dest.check_eice_dns(&aws.region)?;
    let push_key = async {
        match push {
            Some(p) => {
                crate::aws::keypush::send_public_key(
                    aws.eic(),
                    &dest.instance_id,
                    &p.os_user,
                    &p.public_key,
                )
                .await
            }
            None => Ok(()),
        }
    };
    if serial {
        let route = resolve(aws, dest).await?;
        push_key.await?;
        let tunnel = open_tunnel(aws, dest, &route).await?;
        return Ok((tunnel, route));
    }
    // Resolve first among errors: "instance stopped" explains a failed push.
    let path = async {
        let route = resolve(aws, dest).await.map_err(Failure::Route)?;
        let tunnel = open_tunnel(aws, dest, &route)
            .await
            .map_err(Failure::Tunnel)?;
        Ok::<_, Failure>((tunnel, route))
    };
    let (path, pushed) = tokio::join!(path, push_key);
    match (path, pushed) {
        (Err(Failure::Route(e)), _) => Err(e),
        (_, Err(e)) => Err(e),
        (Err(Failure::Tunnel(e)), Ok(())) => Err(e),
        (Ok(ok), Ok(())) => Ok(ok),
    }
}

enum Failure {
    Route(Error),
    Tunnel(Error),
}

/// Whether a failure may come from a stale route (endpoint gone, IP
/// changed, tunnel refused for its parameters) rather than from the user.
pub fn may_be_stale_route(e: &Error) -> bool {
    matches!(
        e,
        Error::TunnelRejected { .. }
            | Error::TunnelConnect { .. }
            | Error::TunnelClosed { .. }
            | Error::EndpointNotFound { .. }
    )
}

/// [`connect`] through the cached route when there is a fresh one. A cached
/// route that fails is forgotten and looked up afresh, once; a route that
/// was looked up is remembered. Returns whether the route came from the cache.
pub async fn connect_cached(
    aws: &Aws,
    dest: &Destination,
    push: Option<&KeyPush>,
    cache: Option<&RouteCache>,
    serial: bool,
) -> Result<(Tunnel, Route, bool), Error> {
    // A route given on the command line, even in part, is a one-off: it is
    // neither read from the cache (the flag must win) nor written to it (a
    // later run without flags must not inherit it).
    let cache = cache.filter(|_| !dest.has_route_flags());
    let scope = aws.cache_scope();
    let profile = Some(scope.as_str());
    let cached = cache.and_then(|c| c.get(profile, &aws.region, &dest.instance_id));
    // A cached endpoint name is checked like any other before it is dialed.
    let cached = cached.filter(|route| {
        let ok = endpoint_name::check(&route.dns_name, &route.endpoint_id, &aws.region).is_ok();
        if !ok {
            tracing::info!(dns_name = %crate::text::remote_text(&route.dns_name), "ignoring a cached route whose endpoint name is not the service's");
            forget(cache, aws, &dest.instance_id);
        }
        ok
    });
    if let Some(route) = cached {
        tracing::info!(endpoint = route.endpoint_id, ip = %route.private_ip, "using the cached route");
        let cached = Destination {
            private_ip: Some(route.private_ip),
            eice_id: Some(route.endpoint_id.clone()),
            eice_dns: Some(route.dns_name.clone()),
            ..dest.clone()
        };
        match connect(aws, &cached, push, serial).await {
            Ok((tunnel, _)) => return Ok((tunnel, route, true)),
            Err(e) if may_be_stale_route(&e) => {
                tracing::info!("the cached route failed ({e}); looking it up afresh");
                forget(cache, aws, &dest.instance_id);
            }
            Err(e) => return Err(e),
        }
    }
    let (tunnel, route) = connect(aws, dest, push, serial).await?;
    if let Some(c) = cache {
        c.put(profile, &aws.region, &route);
    }
    Ok((tunnel, route, false))
}

/// Drop a cached route that failed.
pub fn forget(cache: Option<&RouteCache>, aws: &Aws, instance_id: &str) {
    if let Some(c) = cache {
        c.remove(Some(&aws.cache_scope()), &aws.region, instance_id);
    }
}
