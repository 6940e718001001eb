//! The security group writes `restrict` makes: `AuthorizeSecurityGroupIngress`,
//! `AuthorizeSecurityGroupEgress` (by `IpPermissions`), and
//! `RevokeSecurityGroupIngress` / `RevokeSecurityGroupEgress` (by
//! `SecurityGroupRuleId`). Each change lands in the world at once, so the
//! relay's enforcement and the next `DescribeSecurityGroupRules` see it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::super::query::{list, param};
use super::super::response::{Answer, XML, ec2_error};
use super::network::rule_item;
use super::{EC2_NS, short_hash};
use crate::{Peer, SgRule, World};

/// `Prefix.N.rest=value` parameters grouped by `N`, in index order, each
/// with its `rest` and value.
fn indexed(params: &[(String, String)], prefix: &str) -> BTreeMap<u32, Vec<(String, String)>> {
    let mut out: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    for (k, v) in params {
        let Some((n, rest)) = k
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.split_once('.'))
        else {
            continue;
        };
        if let Ok(n) = n.parse::<u32>() {
            out.entry(n)
                .or_default()
                .push((rest.to_string(), v.clone()));
        }
    }
    out
}

fn get<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The rules an `IpPermissions` list asks for (one per peer), or the error.
fn requested_rules(
    world: &World,
    params: &[(String, String)],
    egress: bool,
    request_id: &str,
) -> Result<Vec<SgRule>, Answer> {
    let bad = |code: &str, msg: String| ec2_error(400, code, &msg, request_id);
    let perms = indexed(params, "IpPermissions");
    if perms.is_empty() {
        return Err(bad(
            "MissingParameter",
            "The request must contain the parameter ipPermissions".into(),
        ));
    }
    let mut rules = Vec::new();
    for fields in perms.values() {
        let protocol = match get(fields, "IpProtocol").map(str::to_ascii_lowercase) {
            Some(p) if p == "6" => "tcp".to_string(),
            Some(p) if p == "17" => "udp".to_string(),
            Some(p) if ["tcp", "udp", "icmp", "-1"].contains(&p.as_str()) => p,
            Some(p) => {
                return Err(bad(
                    "InvalidParameterValue",
                    format!("Invalid value '{p}' for IP protocol. Unknown protocol."),
                ));
            }
            None => {
                return Err(bad(
                    "MissingParameter",
                    "The request must contain the parameter ipProtocol".into(),
                ));
            }
        };
        let (from, to) = if protocol == "-1" {
            (-1, -1)
        } else {
            let port = |name: &str| -> Result<i32, Answer> {
                let v = get(fields, name).ok_or_else(|| {
                    bad(
                        "InvalidParameterValue",
                        format!(
                            "Invalid value 'null' for {}. It must be specified.",
                            name.to_ascii_lowercase()
                        ),
                    )
                })?;
                v.parse::<i32>()
                    .ok()
                    .filter(|p| (-1..=65535).contains(p))
                    .ok_or_else(|| {
                        bad(
                            "InvalidParameterValue",
                            format!("Invalid value '{v}' for {name}."),
                        )
                    })
            };
            let (from, to) = (port("FromPort")?, port("ToPort")?);
            if protocol != "icmp" && from > to {
                return Err(bad(
                    "InvalidParameterValue",
                    format!("Invalid port range: {from} is greater than {to}"),
                ));
            }
            (from, to)
        };
        let mut peers: Vec<(Peer, Option<String>)> = Vec::new();
        for f in indexed(fields, "IpRanges").values() {
            let cidr = get(f, "CidrIp").unwrap_or_default();
            let Ok(net) = cidr.parse::<ipnet::Ipv4Net>() else {
                return Err(bad(
                    "InvalidParameterValue",
                    format!("CIDR block {cidr} is malformed"),
                ));
            };
            peers.push((
                Peer::Cidr(net.trunc().to_string()),
                get(f, "Description").map(str::to_string),
            ));
        }
        for f in indexed(fields, "Groups").values() {
            let g = get(f, "GroupId").unwrap_or_default();
            if !world.security_groups.iter().any(|sg| sg.id == g) {
                return Err(bad(
                    "InvalidGroup.NotFound",
                    format!("The security group '{g}' does not exist"),
                ));
            }
            peers.push((
                Peer::Group(g.to_string()),
                get(f, "Description").map(str::to_string),
            ));
        }
        for f in indexed(fields, "PrefixListIds").values() {
            peers.push((
                Peer::PrefixList(get(f, "PrefixListId").unwrap_or_default().to_string()),
                get(f, "Description").map(str::to_string),
            ));
        }
        for f in indexed(fields, "Ipv6Ranges").values() {
            let cidr = get(f, "CidrIpv6").unwrap_or_default();
            let Ok(net) = cidr.parse::<ipnet::Ipv6Net>() else {
                return Err(bad(
                    "InvalidParameterValue",
                    format!("CIDR block {cidr} is malformed"),
                ));
            };
            peers.push((
                Peer::CidrV6(net.trunc().to_string()),
                get(f, "Description").map(str::to_string),
            ));
        }
        if peers.is_empty() {
            return Err(bad(
                "MissingParameter",
                "No source or destination: give IpRanges, Ipv6Ranges, Groups or PrefixListIds"
                    .into(),
            ));
        }
        for (peer, description) in peers {
            rules.push(SgRule {
                id: String::new(),
                egress,
                protocol: protocol.clone(),
                from_port: from,
                to_port: to,
                peer,
                description,
            });
        }
    }
    Ok(rules)
}

fn peer_words(p: &Peer) -> String {
    match p {
        Peer::Cidr(c) | Peer::CidrV6(c) => c.clone(),
        Peer::Group(g) | Peer::PrefixList(g) => g.clone(),
    }
}

/// `AuthorizeSecurityGroupIngress` and `AuthorizeSecurityGroupEgress`.
pub(crate) fn authorize(
    world: &mut World,
    params: &[(String, String)],
    request_id: &str,
    egress: bool,
) -> Answer {
    let op = if egress {
        "AuthorizeSecurityGroupEgressResponse"
    } else {
        "AuthorizeSecurityGroupIngressResponse"
    };
    let Some(group_id) = param(params, "GroupId").map(str::to_string) else {
        return ec2_error(
            400,
            "MissingParameter",
            "The request must contain the parameter groupId",
            request_id,
        );
    };
    let requested = match requested_rules(world, params, egress, request_id) {
        Ok(r) => r,
        Err(a) => return a,
    };
    let region = world.region.clone();
    let Some(group) = world.security_group_mut(&group_id) else {
        return ec2_error(
            400,
            "InvalidGroup.NotFound",
            &format!("The security group '{group_id}' does not exist"),
            request_id,
        );
    };
    for r in &requested {
        let same = |e: &SgRule| {
            e.egress == r.egress
                && e.protocol == r.protocol
                && e.from_port == r.from_port
                && e.to_port == r.to_port
                && e.peer == r.peer
        };
        if group.rules.iter().any(same) {
            return ec2_error(
                400,
                "InvalidPermission.Duplicate",
                &format!(
                    "the specified rule \"peer: {}, {}, from port: {}, to port: {}, ALLOW\" already exists",
                    peer_words(&r.peer),
                    r.protocol.to_ascii_uppercase(),
                    r.from_port,
                    r.to_port
                ),
                request_id,
            );
        }
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{op} xmlns=\"{EC2_NS}\">\n<requestId>{request_id}</requestId>\n<return>true</return>\n<securityGroupRuleSet>\n"
    );
    for (n, mut r) in requested.into_iter().enumerate() {
        r.id = format!("sgr-{}", short_hash(&format!("{request_id}/{n}")));
        rule_item(&mut xml, &region, &group_id, &r);
        group.rules.push(r);
    }
    let _ = writeln!(xml, "</securityGroupRuleSet>\n</{op}>");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{group_id} authorized"),
        error_type: None,
    }
}

/// `RevokeSecurityGroupIngress` and `RevokeSecurityGroupEgress` by
/// `SecurityGroupRuleId.N` (the only form `restrict` uses).
pub(crate) fn revoke(
    world: &mut World,
    params: &[(String, String)],
    request_id: &str,
    egress: bool,
) -> Answer {
    let op = if egress {
        "RevokeSecurityGroupEgressResponse"
    } else {
        "RevokeSecurityGroupIngressResponse"
    };
    let Some(group_id) = param(params, "GroupId").map(str::to_string) else {
        return ec2_error(
            400,
            "MissingParameter",
            "The request must contain the parameter groupId",
            request_id,
        );
    };
    let ids = list(params, "SecurityGroupRuleId");
    if ids.is_empty() {
        return ec2_error(
            400,
            "MissingParameter",
            "The simulator revokes by SecurityGroupRuleId only: give SecurityGroupRuleId.N",
            request_id,
        );
    }
    let Some(group) = world.security_group_mut(&group_id) else {
        return ec2_error(
            400,
            "InvalidGroup.NotFound",
            &format!("The security group '{group_id}' does not exist"),
            request_id,
        );
    };
    if let Some(missing) = ids.iter().find(|id| {
        !group
            .rules
            .iter()
            .any(|r| &r.id == *id && r.egress == egress)
    }) {
        return ec2_error(
            400,
            "InvalidSecurityGroupRuleId.NotFound",
            &format!("The security group rule ID '{missing}' does not exist"),
            request_id,
        );
    }
    group.rules.retain(|r| !ids.contains(&r.id));
    Answer {
        status: 200,
        content_type: XML,
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{op} xmlns=\"{EC2_NS}\">\n<requestId>{request_id}</requestId>\n<return>true</return>\n</{op}>\n"
        ),
        detail: format!("{group_id} revoked {}", ids.join(",")),
        error_type: None,
    }
}
