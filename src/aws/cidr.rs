//! CIDR blocks, as security-group rules and `--expect-cidr` give them.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Parse a rule's IPv4 CIDR, normalised to its network (AWS does the same).
pub fn parse_cidr(s: &str) -> Result<Ipv4Net, String> {
    let net = if s.contains('/') {
        s.parse::<Ipv4Net>().map_err(|e| e.to_string())?
    } else {
        Ipv4Net::from(s.parse::<Ipv4Addr>().map_err(|e| e.to_string())?)
    };
    Ok(net.trunc())
}
