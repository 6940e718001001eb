//! One connection's critical path: resolve the instance and endpoint, push
//! the key concurrently, presign, and open the tunnel.
//!
//! ```text
//!  cold:  DescribeInstances ─► DescribeInstanceConnectEndpoints ─► presign ─► websocket upgrade ─► SSH
//!         SendSSHPublicKey ─────────────────────────────────────────────────────────────────────┘ (joined before SSH auth)
//!  warm:  (cached route) presign ─► websocket upgrade ─► SSH
//!         SendSSHPublicKey ─────────────────────────┘
//! ```

use std::net::Ipv4Addr;
use std::time::SystemTime;

use crate::aws::Aws;
use crate::cache::RouteCache;
use crate::error::Error;
use crate::lookup::{self, EndpointInfo};
use crate::presign::{self, TunnelRequest};
use crate::tunnel::Tunnel;

/// Where to connect and what to skip looking up.
#[derive(Debug, Clone)]
pub struct Destination {
    pub instance_id: String,
    pub port: u16,
    pub eice_id: Option<String>,
    pub eice_dns: Option<String>,
    pub private_ip: Option<Ipv4Addr>,
    pub max_tunnel_duration: Option<u32>,
}

/// A public key to push for an OS user before SSH authenticates.
#[derive(Debug, Clone)]
pub struct KeyPush {
    pub os_user: String,
    pub public_key: String,
}

/// The resolved path to the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub instance_id: String,
    pub private_ip: Ipv4Addr,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub endpoint_id: String,
    pub dns_name: String,
}

/// Find the private IP and endpoint, skipping each lookup the caller answered.
/// With `--private-ip`, `--eice-id` and `--eice-dns` all given, no EC2 call
/// is made.
pub async fn resolve(aws: &Aws, dest: &Destination) -> Result<Route, Error> {
    if let (Some(ip), Some(id), Some(dns)) = (dest.private_ip, &dest.eice_id, &dest.eice_dns) {
        return Ok(Route {
            instance_id: dest.instance_id.clone(),
            private_ip: ip,
            vpc_id: None,
            subnet_id: None,
            endpoint_id: id.clone(),
            dns_name: dns.clone(),
        });
    }

    // The endpoint by ID can be fetched at the same time as the instance.
    let by_id = async {
        match (&dest.eice_id, &dest.eice_dns) {
            (Some(id), None) => lookup::endpoint_by_id(aws.ec2(), id).await.map(Some),
            _ => Ok(None),
        }
    };
    let instance = async {
        let need_vpc = dest.eice_id.is_none();
        if dest.private_ip.is_some() && !need_vpc {
            return Ok(None);
        }
        let info = lookup::describe_instance(aws.ec2(), &dest.instance_id, &aws.region).await?;
        if info.state != "running" {
            return Err(Error::InstanceNotRunning {
                instance: info.id,
                state: info.state,
            });
        }
        Ok(Some(info))
    };
    let (instance, by_id) = tokio::try_join!(instance, by_id)?;

    let private_ip = match (dest.private_ip, &instance) {
        (Some(ip), _) => ip,
        (None, Some(info)) => info.private_ip.ok_or_else(|| Error::NoPrivateIp {
            instance: dest.instance_id.clone(),
        })?,
        (None, None) => unreachable_route()?,
    };

    let endpoint: EndpointInfo = match (by_id, &dest.eice_id, &instance) {
        (Some(ep), _, _) => ep,
        (None, Some(id), _) => EndpointInfo {
            id: id.clone(),
            dns_name: dest.eice_dns.clone(),
            fips_dns_name: dest.eice_dns.clone(),
            ..Default::default()
        },
        (None, None, Some(info)) => {
            let vpc = info.vpc_id.clone().ok_or_else(|| Error::NoPrivateIp {
                instance: dest.instance_id.clone(),
            })?;
            let all = lookup::endpoints_in_vpc(aws.ec2(), &vpc).await?;
            let chosen = lookup::choose_endpoint(&all, info.subnet_id.as_deref()).cloned();
            chosen.ok_or_else(|| Error::NoEndpointInVpc {
                vpc,
                subnet: info
                    .subnet_id
                    .clone()
                    .unwrap_or_else(|| "<subnet-id>".into()),
                instance: dest.instance_id.clone(),
            })?
        }
        (None, None, None) => unreachable_route()?,
    };
    let dns_name = match &dest.eice_dns {
        Some(d) => d.clone(),
        None => endpoint.dial_name(aws.use_fips)?,
    };
    tracing::info!(endpoint = endpoint.id, dns_name, %private_ip, "route resolved");
    Ok(Route {
        instance_id: dest.instance_id.clone(),
        private_ip,
        vpc_id: instance
            .as_ref()
            .and_then(|i| i.vpc_id.clone())
            .or(endpoint.vpc_id),
        subnet_id: instance.as_ref().and_then(|i| i.subnet_id.clone()),
        endpoint_id: endpoint.id,
        dns_name,
    })
}

fn unreachable_route<T>() -> Result<T, Error> {
    Err(Error::Config(
        "internal error: the route could not be resolved".into(),
    ))
}

/// Presign a fresh URL for `route` and open the websocket.
pub async fn open_tunnel(aws: &Aws, dest: &Destination, route: &Route) -> Result<Tunnel, Error> {
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
        SystemTime::now(),
    )?;
    Tunnel::open(&url, aws.tls.clone()).await
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
    let push_key = async {
        match push {
            Some(p) => {
                crate::keypush::send_public_key(
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
    let explicit = dest.private_ip.is_some() && dest.eice_id.is_some() && dest.eice_dns.is_some();
    let cache = cache.filter(|_| !explicit);
    let profile = aws.profile.as_deref();
    if let Some(route) = cache.and_then(|c| c.get(profile, &aws.region, &dest.instance_id)) {
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
        c.remove(aws.profile.as_deref(), &aws.region, instance_id);
    }
}
