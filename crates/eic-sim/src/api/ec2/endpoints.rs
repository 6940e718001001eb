//! `DescribeInstanceConnectEndpoints`.

use std::fmt::Write as _;

use super::super::query::{
    FilterField, apply_filters, is_hex_id, list, paginate, param, parse_max_results,
};
use super::super::response::{Answer, XML, ec2_error, esc};
use super::{EC2_NS, OWNER_ID, short_hash};
use crate::{Endpoint, World};

/// Page size when the caller gives no `MaxResults`: small on purpose, so
/// clients must page.
pub(crate) const DEFAULT_ENDPOINT_PAGE: usize = 2;

/// `DescribeInstanceConnectEndpoints`: ids, `vpc-id`/`state`/`subnet-id`/
/// `instance-connect-endpoint-id` filters, and real paging.
pub(crate) fn describe_endpoints(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let ids = list(params, "InstanceConnectEndpointId");
    if let Some(bad) = ids.iter().find(|id| !is_hex_id(id, "eice-")) {
        return ec2_error(
            400,
            "InvalidInstanceConnectEndpointId.Malformed",
            &format!("Invalid id: \"{bad}\""),
            request_id,
        );
    }
    if let Some(missing) = ids.iter().find(|id| world.endpoint(id).is_none()) {
        return ec2_error(
            400,
            "InvalidInstanceConnectEndpointId.NotFound",
            &format!("The instanceConnectEndpoint ID '{missing}' does not exist"),
            request_id,
        );
    }
    let max_results = match parse_max_results(params, 1..=50) {
        Ok(m) => m,
        Err(msg) => return ec2_error(400, "InvalidParameterValue", &msg, request_id),
    };
    let mut selected: Vec<&Endpoint> = world
        .endpoints
        .iter()
        .filter(|e| ids.is_empty() || ids.contains(&e.id))
        .collect();
    let fields: &[FilterField<Endpoint>] = &[
        ("vpc-id", |e| Some(&e.vpc_id)),
        ("state", |e| Some(&e.state)),
        ("subnet-id", |e| Some(&e.subnet_id)),
        ("instance-connect-endpoint-id", |e| Some(&e.id)),
    ];
    if let Err(answer) = apply_filters(&mut selected, params, fields, request_id) {
        return answer;
    }
    let page_size = max_results.unwrap_or(DEFAULT_ENDPOINT_PAGE);
    let (page, next) = match paginate(&selected, "eice", page_size, param(params, "NextToken")) {
        Ok(p) => p,
        Err(msg) => return ec2_error(400, "InvalidPaginationToken", &msg, request_id),
    };

    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstanceConnectEndpointsResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<instanceConnectEndpointSet>\n",
        esc(request_id)
    );
    for e in &page {
        let az = world
            .instances
            .iter()
            .find(|i| i.subnet_id == e.subnet_id)
            .map(|i| i.availability_zone.clone())
            .unwrap_or_else(|| format!("{}a", world.region));
        let dns = e
            .dns_name_override
            .clone()
            .unwrap_or_else(|| crate::endpoint_dns_name(&e.id, &world.region, false));
        let fips_dns = crate::endpoint_dns_name(&e.id, &world.region, true);
        let _ = write!(
            xml,
            "<item><ownerId>{OWNER_ID}</ownerId>\
             <instanceConnectEndpointId>{id}</instanceConnectEndpointId>\
             <instanceConnectEndpointArn>arn:aws:ec2:{region}:{OWNER_ID}:instance-connect-endpoint/{id}</instanceConnectEndpointArn>\
             <state>{state}</state><stateMessage/>\
             <dnsName>{dns}</dnsName>",
            id = esc(&e.id),
            region = esc(&world.region),
            state = esc(&e.state),
            dns = esc(&dns),
        );
        if e.fips {
            let _ = write!(xml, "<fipsDnsName>{}</fipsDnsName>", esc(&fips_dns));
        }
        let _ = write!(
            xml,
            "<networkInterfaceIdSet><item>eni-{eni}</item></networkInterfaceIdSet>\
             <vpcId>{vpc}</vpcId><availabilityZone>{az}</availabilityZone>\
             <createdAt>2023-06-13T12:00:00.000Z</createdAt>\
             <subnetId>{subnet}</subnetId>\
             <preserveClientIp>{pci}</preserveClientIp>\
             <securityGroupIdSet>",
            eni = short_hash(&e.id),
            vpc = esc(&e.vpc_id),
            az = esc(&az),
            subnet = esc(&e.subnet_id),
            pci = e.preserve_client_ip,
        );
        for sg in &e.security_group_ids {
            let _ = write!(xml, "<item>{}</item>", esc(sg));
        }
        xml.push_str("</securityGroupIdSet><publicDnsNames><ipv4>");
        let _ = write!(xml, "<dnsName>{}</dnsName>", esc(&dns));
        if e.fips {
            let _ = write!(xml, "<fipsDnsName>{}</fipsDnsName>", esc(&fips_dns));
        }
        xml.push_str("</ipv4>");
        if e.dualstack {
            let _ = write!(
                xml,
                "<dualstack><dnsName>{}</dnsName></dualstack>",
                esc(&crate::endpoint_dualstack_dns_name(&e.id, &world.region))
            );
        }
        xml.push_str("</publicDnsNames>");
        let _ = writeln!(
            xml,
            "<ipAddressType>{}</ipAddressType><tagSet/></item>",
            esc(&e.ip_address_type)
        );
    }
    xml.push_str("</instanceConnectEndpointSet>\n");
    if let Some(t) = next {
        let _ = writeln!(xml, "<nextToken>{}</nextToken>", esc(&t));
    }
    xml.push_str("</DescribeInstanceConnectEndpointsResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} endpoint(s)", page.len()),
        error_type: None,
    }
}
