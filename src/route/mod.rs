//! The route to an instance: where to connect (the destination), what was
//! resolved (the route), how it is found and how it is cached.

pub mod cache;
pub mod locked_file;
pub mod resolve;
pub mod target;

use std::net::Ipv4Addr;

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
