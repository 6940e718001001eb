//! Resolving a destination into a route: the instance's private IP and the
//! endpoint that serves it, skipping every lookup the caller answered.

use crate::aws::Aws;
use crate::aws::ec2::{self as lookup, EndpointInfo};
use crate::error::Error;
use crate::route::{Destination, Route};

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
    Err(Error::Internal(
        "internal error: the route could not be resolved".into(),
    ))
}
