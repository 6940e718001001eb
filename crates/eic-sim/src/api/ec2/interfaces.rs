//! `DescribeNetworkInterfaces`: the instances' interfaces and each
//! endpoint's, with their security groups, so a client can tell who else
//! uses a group.

use std::fmt::Write as _;

use super::super::query::{filters, list, paginate, param, parse_max_results};
use super::super::response::{Answer, XML, ec2_error, esc};
use super::instances::group_items;
use super::{EC2_NS, OWNER_ID, short_hash};
use crate::World;

/// One interface as the API lists it.
struct Eni {
    id: String,
    vpc_id: String,
    subnet_id: String,
    private_ip: Option<String>,
    kind: &'static str,
    description: String,
    requester_managed: bool,
    /// The instance and the device index, when attached to one.
    attachment: Option<(String, usize)>,
    groups: Vec<String>,
}

fn interfaces(world: &World) -> Vec<Eni> {
    let mut out = Vec::new();
    for i in &world.instances {
        for (n, nic) in i.network_interfaces.iter().enumerate() {
            out.push(Eni {
                id: nic.id.clone(),
                vpc_id: i.vpc_id.clone(),
                subnet_id: i.subnet_id.clone(),
                private_ip: if n == 0 { i.private_ip.clone() } else { None },
                kind: "interface",
                description: String::new(),
                requester_managed: false,
                attachment: Some((i.id.clone(), n)),
                groups: nic.security_group_ids.clone(),
            });
        }
    }
    for e in &world.endpoints {
        out.push(Eni {
            // The same id DescribeInstanceConnectEndpoints lists.
            id: format!("eni-{}", short_hash(&e.id)),
            vpc_id: e.vpc_id.clone(),
            subnet_id: e.subnet_id.clone(),
            private_ip: e.private_ip.clone(),
            kind: "ec2_instance_connect_endpoint",
            description: format!("EC2 Instance Connect Endpoint {}", e.id),
            requester_managed: true,
            attachment: None,
            groups: e.security_group_ids.clone(),
        });
    }
    for l in &world.loose_interfaces {
        out.push(Eni {
            id: l.id.clone(),
            vpc_id: l.vpc_id.clone(),
            subnet_id: l.subnet_id.clone(),
            private_ip: None,
            kind: "interface",
            description: l.description.clone(),
            requester_managed: false,
            attachment: None,
            groups: l.security_group_ids.clone(),
        });
    }
    out
}

/// `DescribeNetworkInterfaces`: `NetworkInterfaceId.N`, the `group-id`,
/// `vpc-id`, `attachment.instance-id` and `network-interface-id` filters,
/// and paging when asked for.
pub(crate) fn describe_network_interfaces(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let ids = list(params, "NetworkInterfaceId");
    let max_results = match parse_max_results(params, 5..=1000) {
        Ok(m) => m,
        Err(msg) => return ec2_error(400, "InvalidParameterValue", &msg, request_id),
    };
    let mut selected: Vec<Eni> = interfaces(world)
        .into_iter()
        .filter(|e| ids.is_empty() || ids.contains(&e.id))
        .collect();
    if let Some(missing) = ids.iter().find(|id| !selected.iter().any(|e| &e.id == *id)) {
        return ec2_error(
            400,
            "InvalidNetworkInterfaceID.NotFound",
            &format!("The networkInterface ID '{missing}' does not exist"),
            request_id,
        );
    }
    for (name, values) in filters(params) {
        let has = |v: &str| values.iter().any(|w| w == v);
        match name.as_str() {
            "group-id" => selected.retain(|e| e.groups.iter().any(|g| has(g))),
            "vpc-id" => selected.retain(|e| has(&e.vpc_id)),
            "network-interface-id" => selected.retain(|e| has(&e.id)),
            "attachment.instance-id" => {
                selected.retain(|e| e.attachment.as_ref().is_some_and(|(i, _)| has(i)));
            }
            other => {
                return ec2_error(
                    400,
                    "InvalidParameterValue",
                    &format!("The filter '{other}' is invalid"),
                    request_id,
                );
            }
        }
    }
    let indexes: Vec<usize> = (0..selected.len()).collect();
    let (page, next) = match paginate(
        &indexes,
        "eni",
        max_results.unwrap_or(usize::MAX),
        param(params, "NextToken"),
    ) {
        Ok(p) => p,
        Err(msg) => return ec2_error(400, "InvalidPaginationToken", &msg, request_id),
    };
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeNetworkInterfacesResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<networkInterfaceSet>\n",
        esc(request_id)
    );
    for e in page.iter().filter_map(|n| selected.get(*n)) {
        let _ = write!(
            xml,
            "<item><networkInterfaceId>{}</networkInterfaceId><subnetId>{}</subnetId><vpcId>{}</vpcId>\
             <description>{}</description><ownerId>{OWNER_ID}</ownerId>\
             <requesterManaged>{}</requesterManaged><status>in-use</status>\
             <interfaceType>{}</interfaceType>",
            esc(&e.id),
            esc(&e.subnet_id),
            esc(&e.vpc_id),
            esc(&e.description),
            e.requester_managed,
            e.kind,
        );
        if let Some(ip) = &e.private_ip {
            let _ = write!(xml, "<privateIpAddress>{}</privateIpAddress>", esc(ip));
        }
        if let Some((instance, n)) = &e.attachment {
            let _ = write!(
                xml,
                "<attachment><attachmentId>eni-attach-{}</attachmentId><deviceIndex>{n}</deviceIndex>\
                 <instanceId>{}</instanceId><instanceOwnerId>{OWNER_ID}</instanceOwnerId>\
                 <status>attached</status></attachment>",
                short_hash(&e.id),
                esc(instance),
            );
        }
        xml.push_str("<groupSet>");
        group_items(&mut xml, world, &e.groups);
        xml.push_str("</groupSet><tagSet/></item>\n");
    }
    xml.push_str("</networkInterfaceSet>\n");
    if let Some(t) = next {
        let _ = writeln!(xml, "<nextToken>{}</nextToken>", esc(&t));
    }
    xml.push_str("</DescribeNetworkInterfacesResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} interface(s)", page.len()),
        error_type: None,
    }
}
