//! The network around instances: `DescribeSecurityGroupRules`,
//! `DescribeSubnets` and `DescribeVpcs`.

use std::fmt::Write as _;

use super::super::query::{
    FilterField, apply_filters, filters, list, paginate, param, parse_max_results,
};
use super::super::response::{Answer, XML, ec2_error, esc};
use super::{EC2_NS, OWNER_ID, short_hash};
use crate::{Peer, SgRule, Subnet, Vpc, World};

/// Page size for `DescribeSecurityGroupRules` without `MaxResults`: small
/// on purpose, so clients must page.
pub(crate) const DEFAULT_RULE_PAGE: usize = 3;

/// `DescribeSecurityGroupRules`: `SecurityGroupRuleId.N`, `group-id` and
/// `security-group-rule-id` filters, and real paging.
pub(crate) fn describe_security_group_rules(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let ids = list(params, "SecurityGroupRuleId");
    let max_results = match parse_max_results(params, 5..=1000) {
        Ok(m) => m,
        Err(msg) => return ec2_error(400, "InvalidParameterValue", &msg, request_id),
    };
    let mut selected: Vec<(&str, &SgRule)> = world
        .security_groups
        .iter()
        .flat_map(|g| g.rules.iter().map(move |r| (g.id.as_str(), r)))
        .filter(|(_, r)| ids.is_empty() || ids.contains(&r.id))
        .collect();
    for (name, values) in filters(params) {
        match name.as_str() {
            "group-id" => selected.retain(|(g, _)| values.iter().any(|v| v == g)),
            "security-group-rule-id" => selected.retain(|(_, r)| values.contains(&r.id)),
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
    let page_size = max_results.unwrap_or(DEFAULT_RULE_PAGE);
    let (page, next) = match paginate(&selected, "sgr", page_size, param(params, "NextToken")) {
        Ok(p) => p,
        Err(msg) => return ec2_error(400, "InvalidPaginationToken", &msg, request_id),
    };
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSecurityGroupRulesResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<securityGroupRuleSet>\n",
        esc(request_id)
    );
    for (group, r) in &page {
        rule_item(&mut xml, &world.region, group, r);
    }
    xml.push_str("</securityGroupRuleSet>\n");
    if let Some(t) = next {
        let _ = writeln!(xml, "<nextToken>{}</nextToken>", esc(&t));
    }
    xml.push_str("</DescribeSecurityGroupRulesResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} rule(s)", page.len()),
        error_type: None,
    }
}

/// One `<item>` of a `securityGroupRuleSet`, as `DescribeSecurityGroupRules`
/// and `AuthorizeSecurityGroup{Ingress,Egress}` answer it.
pub(super) fn rule_item(xml: &mut String, region: &str, group: &str, r: &SgRule) {
    let _ = write!(
        xml,
        "<item><securityGroupRuleId>{id}</securityGroupRuleId><groupId>{group}</groupId>\
         <groupOwnerId>{OWNER_ID}</groupOwnerId><isEgress>{egress}</isEgress>\
         <ipProtocol>{proto}</ipProtocol><fromPort>{from}</fromPort><toPort>{to}</toPort>",
        id = esc(&r.id),
        group = esc(group),
        egress = r.egress,
        proto = esc(&r.protocol),
        from = r.from_port,
        to = r.to_port,
    );
    match &r.peer {
        Peer::Cidr(c) => {
            let _ = write!(xml, "<cidrIpv4>{}</cidrIpv4>", esc(c));
        }
        Peer::CidrV6(c) => {
            let _ = write!(xml, "<cidrIpv6>{}</cidrIpv6>", esc(c));
        }
        Peer::Group(g) => {
            let _ = write!(
                xml,
                "<referencedGroupInfo><groupId>{}</groupId><userId>{OWNER_ID}</userId></referencedGroupInfo>",
                esc(g)
            );
        }
        Peer::PrefixList(p) => {
            let _ = write!(xml, "<prefixListId>{}</prefixListId>", esc(p));
        }
    }
    if let Some(d) = &r.description {
        let _ = write!(xml, "<description>{}</description>", esc(d));
    }
    let _ = writeln!(
        xml,
        "<securityGroupRuleArn>arn:aws:ec2:{}:{OWNER_ID}:security-group-rule/{}</securityGroupRuleArn><tagSet/></item>",
        esc(region),
        esc(&r.id)
    );
}

/// `DescribeSubnets`: `SubnetId.N` and `subnet-id`/`vpc-id` filters.
pub(crate) fn describe_subnets(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let ids = list(params, "SubnetId");
    if let Some(missing) = ids
        .iter()
        .find(|id| !world.subnets.iter().any(|s| &s.id == *id))
    {
        return ec2_error(
            400,
            "InvalidSubnetID.NotFound",
            &format!("The subnet ID '{missing}' does not exist"),
            request_id,
        );
    }
    let mut selected: Vec<&Subnet> = world
        .subnets
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .collect();
    let fields: &[FilterField<Subnet>] = &[
        ("subnet-id", |s| Some(&s.id)),
        ("vpc-id", |s| Some(&s.vpc_id)),
    ];
    if let Err(answer) = apply_filters(&mut selected, params, fields, request_id) {
        return answer;
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSubnetsResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<subnetSet>\n",
        esc(request_id)
    );
    for s in &selected {
        let _ = write!(
            xml,
            "<item><subnetId>{}</subnetId><state>available</state><vpcId>{}</vpcId>\
             <cidrBlock>{}</cidrBlock><availabilityZone>{}</availabilityZone>\
             <ownerId>{OWNER_ID}</ownerId>",
            esc(&s.id),
            esc(&s.vpc_id),
            esc(&s.cidr),
            esc(&s.availability_zone),
        );
        xml.push_str("<ipv6CidrBlockAssociationSet>");
        if let Some(v6) = &s.ipv6_cidr {
            let _ = write!(
                xml,
                "<item><ipv6CidrBlock>{}</ipv6CidrBlock><associationId>subnet-cidr-assoc-{}</associationId>\
                 <ipv6CidrBlockState><state>associated</state></ipv6CidrBlockState></item>",
                esc(v6),
                super::short_hash(&s.id),
            );
        }
        let _ = writeln!(
            xml,
            "</ipv6CidrBlockAssociationSet><assignIpv6AddressOnCreation>{}</assignIpv6AddressOnCreation><tagSet/></item>",
            s.ipv6_cidr.is_some()
        );
    }
    xml.push_str("</subnetSet>\n</DescribeSubnetsResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} subnet(s)", selected.len()),
        error_type: None,
    }
}

/// `DescribeVpcs`: `VpcId.N` and the `vpc-id` filter.
pub(crate) fn describe_vpcs(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let mut ids = list(params, "VpcId");
    for (name, values) in filters(params) {
        if name != "vpc-id" {
            return ec2_error(
                400,
                "InvalidParameterValue",
                &format!("The filter '{name}' is invalid"),
                request_id,
            );
        }
        ids.extend(values);
    }
    if let Some(missing) = ids
        .iter()
        .find(|id| !world.vpcs.iter().any(|v| &v.id == *id))
    {
        return ec2_error(
            400,
            "InvalidVpcID.NotFound",
            &format!("The vpc ID '{missing}' does not exist"),
            request_id,
        );
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeVpcsResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<vpcSet>\n",
        esc(request_id)
    );
    let selected: Vec<&Vpc> = world
        .vpcs
        .iter()
        .filter(|v| ids.is_empty() || ids.contains(&v.id))
        .collect();
    for v in &selected {
        let primary = v.cidrs.first().map(String::as_str).unwrap_or_default();
        let _ = write!(
            xml,
            "<item><vpcId>{}</vpcId><ownerId>{OWNER_ID}</ownerId><state>available</state>\
             <cidrBlock>{}</cidrBlock><cidrBlockAssociationSet>",
            esc(&v.id),
            esc(primary),
        );
        for (n, c) in v.cidrs.iter().enumerate() {
            let _ = write!(
                xml,
                "<item><associationId>vpc-cidr-assoc-{}</associationId><cidrBlock>{}</cidrBlock>\
                 <cidrBlockState><state>associated</state></cidrBlockState></item>",
                &short_hash(&format!("{}/{n}", v.id)),
                esc(c),
            );
        }
        xml.push_str(
            "</cidrBlockAssociationSet><instanceTenancy>default</instanceTenancy><isDefault>false</isDefault><tagSet/></item>\n",
        );
    }
    xml.push_str("</vpcSet>\n</DescribeVpcsResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} vpc(s)", selected.len()),
        error_type: None,
    }
}
