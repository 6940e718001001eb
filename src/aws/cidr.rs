//! CIDR blocks, as security-group rules and `--expect-cidr` give them.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Parse a rule's IPv4 CIDR, normalised to its network (AWS does the same).
pub fn parse_cidr(s: &str) -> Result<Ipv4Net, String> {
    let bad =
        |e: &dyn std::fmt::Display| format!("'{s}' is not an IPv4 CIDR (e.g. 203.0.113.0/24): {e}");
    let net = if s.contains('/') {
        s.parse::<Ipv4Net>().map_err(|e| bad(&e))?
    } else {
        Ipv4Net::from(s.parse::<Ipv4Addr>().map_err(|e| bad(&e))?)
    };
    Ok(net.trunc())
}
