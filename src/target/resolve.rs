//! Resolving a destination into a route: the instance's private IP and the
//! endpoint that serves it, skipping every lookup the caller answered.

use std::sync::Arc;

use crate::aws::Aws;
use crate::aws::ec2::{self as lookup, EndpointInfo, InstanceInfo};
use crate::error::Error;
use crate::target::find;
use crate::target::{Destination, Route};

/// Find the private IP and endpoint, skipping each lookup the caller answered.
/// With `--private-ip`, `--eice-id` and `--eice-dns` all given, no EC2 call
/// is made.
pub async fn resolve(aws: &Aws, dest: &Destination) -> Result<Route, Error> {
    dest.check_eice_dns(&aws.region)?;
    if let (Some(ip), Some(id), Some(dns)) = (dest.private_ip, &dest.eice_id, &dest.eice_dns) {
        return Ok(Route {
            instance_id: dest.instance_id.clone(),
            private_ip: ip,
            vpc_id: None,
            subnet_id: None,
            endpoint_id: id.clone(),
            dns_name: dns.clone(),
            name: None,
        });
    }

    // Everything that does not depend on another answer starts at once: the
    // instance, and the endpoint by ID or else the region's endpoint list
    // (small, so it is read whole rather than after the instance's VPC is
    // known). A cold connection is then one round trip of lookups.
    let prefetched = dest.prefetched.as_deref();
    let by_id = async {
        match (&dest.eice_id, &dest.eice_dns) {
            (Some(id), None) => lookup::endpoint_by_id(aws.ec2(), id).await.map(Some),
            _ => Ok(None),
        }
    };
    let need_vpc = dest.eice_id.is_none();
    let region_endpoints = async {
        if !need_vpc {
            return Ok(None);
        }
        match prefetched.and_then(|p| p.endpoints.clone()) {
            Some(eps) => Ok(Some(eps)),
            None => find::endpoints_in_region(aws.ec2())
                .await
                .map(|e| Some(Arc::new(e))),
        }
    };
    let instance = async {
        if dest.private_ip.is_some() && !need_vpc {
            return Ok(None);
        }
        let info = match prefetched {
            Some(p) => p.instance.clone(),
            None => lookup::describe_instance(aws.ec2(), &dest.instance_id, &aws.region).await?,
        };
        if info.state != "running" {
            return Err(Error::InstanceNotRunning {
                instance: info.id,
                name: None,
                state: info.state,
                region: aws.region.clone(),
                profile: aws.chosen_profile().map(str::to_owned),
            });
        }
        Ok(Some(info))
    };
    let (instance, by_id, region_endpoints) = tokio::try_join!(instance, by_id, region_endpoints)?;

    let private_ip = match (dest.private_ip, &instance) {
        (Some(ip), _) => ip,
        // An IPv6-only instance is reached at its IPv6 address.
        (None, Some(info)) => info.target_ip().ok_or_else(|| Error::NoPrivateIp {
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
            let all = region_endpoints.unwrap_or_default();
            // Only an endpoint that reaches the target's address family.
            let serving: Vec<EndpointInfo> = all
                .iter()
                .filter(|e| e.serves(private_ip))
                .cloned()
                .collect();
            match find::endpoint_for(&serving, info) {
                Ok(ep) => ep.clone(),
                Err(_) => {
                    if let Ok(other) = find::endpoint_for(&all, info) {
                        return Err(Error::EndpointFamily {
                            endpoint: other.id.clone(),
                            ip_address_type: other
                                .ip_address_type
                                .clone()
                                .unwrap_or_else(|| "ipv4".into()),
                            target: private_ip,
                        });
                    }
                    return Err(Error::NoEndpointInVpc {
                        vpc: info.vpc_id.clone().unwrap_or_else(|| "<no VPC>".into()),
                        subnet: info
                            .subnet_id
                            .clone()
                            .unwrap_or_else(|| "<subnet-id>".into()),
                        instance: dest.instance_id.clone(),
                    });
                }
            }
        }
        (None, None, None) => unreachable_route()?,
    };
    // An endpoint named by ID must serve the target's family too.
    if endpoint.ip_address_type.is_some() && !endpoint.serves(private_ip) {
        return Err(Error::EndpointFamily {
            endpoint: endpoint.id.clone(),
            ip_address_type: endpoint.ip_address_type.clone().unwrap_or_default(),
            target: private_ip,
        });
    }
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
        name: instance.as_ref().and_then(|i| i.name.clone()),
    })
}

/// The route a connection would take to `instance`, from a listing of it
/// and the region's endpoints, when it has one: running, with an address
/// and an endpoint in its VPC that serves that address's family.
pub fn route_from_listing(
    instance: &InstanceInfo,
    endpoints: &[EndpointInfo],
    use_fips: bool,
) -> Option<Route> {
    if instance.state != "running" {
        return None;
    }
    let private_ip = instance.target_ip()?;
    let serving: Vec<EndpointInfo> = endpoints
        .iter()
        .filter(|e| e.serves(private_ip))
        .cloned()
        .collect();
    let endpoint = find::endpoint_for(&serving, instance).ok()?;
    Some(Route {
        instance_id: instance.id.clone(),
        private_ip,
        vpc_id: instance.vpc_id.clone(),
        subnet_id: instance.subnet_id.clone(),
        endpoint_id: endpoint.id.clone(),
        dns_name: endpoint.dial_name(use_fips).ok()?,
        name: instance.name.clone(),
    })
}

fn unreachable_route<T>() -> Result<T, Error> {
    Err(Error::Internal(
        "internal error: the route could not be resolved".into(),
    ))
}
