//! Whether the endpoint opens a tunnel: the `/openTunnel` request decided
//! the way the service does (signature first, then any injected failure,
//! then the parameters and the instance), the security groups' verdict, and
//! the 20-connection quota.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::HeaderMap;

use crate::sigv4::{self, AuthError, Expected, Identity};
use crate::{Failure, Shared, TunnelEvent, World};

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

/// A refused upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reject {
    pub status: u16,
    pub code: String,
    pub message: String,
}

pub(super) fn reject(status: u16, code: &str, message: impl Into<String>) -> Reject {
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
    let dns = crate::endpoint_dns_name(&endpoint.id, &world.region, false);
    let fips_dns = crate::endpoint_dns_name(&endpoint.id, &world.region, true);
    let dualstack_dns = crate::endpoint_dualstack_dns_name(&endpoint.id, &world.region);
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
pub(super) fn security_verdict(world: &World, plan: &Plan, client: Ipv4Addr) -> Option<String> {
    let endpoint = world.endpoint(&plan.endpoint_id)?;
    let instance = world.instance(&plan.instance_id)?;
    crate::security::tunnel_allowed(world, endpoint, instance, plan.port, client).err()
}

/// Counts a tunnel against its endpoint's quota while alive.
pub(super) struct TunnelGuard {
    shared: Arc<Shared>,
    endpoint_id: String,
    instance_id: String,
}

impl TunnelGuard {
    pub(super) fn acquire(
        shared: &Arc<Shared>,
        endpoint_id: &str,
        instance_id: &str,
    ) -> Option<TunnelGuard> {
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
}
