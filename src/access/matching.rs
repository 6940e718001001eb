//! Rule matching: which of the instance's inbound rules admit what comes
//! through the endpoint, and whether a rule allows more than expected.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::model::*;

/// What an inbound rule on the instance admits, for tunnels through the endpoint.
#[derive(Debug, Clone, Copy)]
pub(super) enum Admits<'a> {
    /// It references the endpoint's security group: every client.
    EveryClient(&'a Rule),
    Cidr(&'a Rule, Ipv4Net),
    /// A prefix list: its entries are not checked.
    PrefixList(&'a Rule),
    /// Another group or IPv6: nothing that comes through the endpoint.
    Nothing(&'a Rule),
}

/// The inbound rules of all the instance's groups that cover the port,
/// classified by what they admit through `endpoint_groups`.
pub(super) fn inbound<'a>(
    rules: &'a [Rule],
    instance_groups: &'a [String],
    endpoint_groups: &[String],
    port: u16,
) -> Vec<Admits<'a>> {
    rules_of(rules, instance_groups)
        .filter(|r| !r.egress && r.covers_tcp(port))
        .map(|r| match &r.peer {
            Peer::Group(g) if endpoint_groups.contains(g) => Admits::EveryClient(r),
            Peer::Cidr(n) => Admits::Cidr(r, *n),
            Peer::PrefixList(_) => Admits::PrefixList(r),
            _ => Admits::Nothing(r),
        })
        .collect()
}

/// Whether the instance's inbound rules admit `source`: `Some(rule)` that
/// does, else `None`. A rule naming the endpoint's group admits everyone.
pub fn admitting_rule<'a>(
    rules: &'a [Rule],
    instance_groups: &'a [String],
    endpoint_groups: &[String],
    port: u16,
    source: Ipv4Addr,
) -> Option<&'a Rule> {
    inbound(rules, instance_groups, endpoint_groups, port)
        .into_iter()
        .find_map(|a| match a {
            Admits::EveryClient(r) => Some(r),
            Admits::Cidr(r, n) if n.contains(&source) => Some(r),
            _ => None,
        })
}

/// Why a CIDR rule allows more than the expected networks, if it does.
pub fn wider_than_expected(net: Ipv4Net, expect: &[Ipv4Net], vpc: &[Ipv4Net]) -> Option<String> {
    if expect.iter().any(|e| e.contains(&net)) {
        return None;
    }
    let exp = join(expect.iter().map(ToString::to_string));
    Some(if net.prefix_len() == 0 {
        "allows every address".to_owned()
    } else if let Some(v) = vpc.iter().find(|v| v.contains(&net) || net.contains(*v)) {
        format!(
            "covers addresses of the VPC ({v}): every client whose address falls there gets in, e.g. over a VPN, Direct Connect or peering"
        )
    } else {
        format!("is not inside {exp}")
    })
}

/// `items`, comma-separated.
pub fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}
