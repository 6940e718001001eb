//! The route to an instance: where to connect (the destination), what was
//! resolved (the route), how it is found and how it is cached.

use std::sync::Arc;

use crate::aws::ec2::{EndpointInfo, InstanceInfo};
use std::net::IpAddr;

use crate::error::Error;

/// Where to connect and what to skip looking up.
#[derive(Debug, Clone)]
pub struct Destination {
    pub instance_id: String,
    pub port: u16,
    pub eice_id: Option<String>,
    pub eice_dns: Option<String>,
    /// The instance's private address: IPv4, or IPv6 for an IPv6-only one.
    pub private_ip: Option<IpAddr>,
    pub max_tunnel_duration: Option<u32>,
    /// What a lookup by target expression already found, so that resolving
    /// asks AWS nothing twice.
    pub prefetched: Option<Arc<Prefetched>>,
}

/// Lookups already made for a destination.
#[derive(Debug, Clone)]
pub struct Prefetched {
    /// The instance, as `DescribeInstances` described it.
    pub instance: InstanceInfo,
    /// The region's usable endpoints, when they were read too.
    pub endpoints: Option<Arc<Vec<EndpointInfo>>>,
}

impl Destination {
    /// The same port and route flags, for `instance_id`.
    pub fn with_instance(&self, instance_id: &str) -> Destination {
        Destination {
            instance_id: instance_id.to_owned(),
            ..self.clone()
        }
    }

    /// Whether the command line gave any part of the route (`--private-ip`,
    /// `--eice-id`, `--eice-dns`).
    pub fn has_route_flags(&self) -> bool {
        self.private_ip.is_some() || self.eice_id.is_some() || self.eice_dns.is_some()
    }

    /// `--eice-dns` must be the service's name for `--eice-id` in `region`:
    /// a usage error naming the value otherwise, before any network call.
    pub fn check_eice_dns(&self, region: &str) -> Result<(), Error> {
        let (Some(dns), Some(id)) = (&self.eice_dns, &self.eice_id) else {
            return Ok(());
        };
        crate::aws::endpoint_name::check(dns, id, region).map_err(|reason| {
            Error::Usage(format!(
                "--eice-dns {dns:?} is not the DNS name of EC2 Instance Connect Endpoint {id} in {region}: {reason}"
            ))
        })
    }
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
    pub private_ip: IpAddr,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub endpoint_id: String,
    pub dns_name: String,
    /// The instance's `Name` tag, when the lookup saw it (for completion).
    pub name: Option<String>,
}
