//! `DescribeInstances` and `GetConsoleOutput`.

use std::fmt::Write as _;

use super::super::query::{
    FilterField, apply_filter_list, filters, is_hex_id, list, paginate, param, parse_max_results,
};
use super::super::response::{Answer, XML, ec2_error, esc};
use super::{EC2_NS, OWNER_ID, short_hash};
use crate::{Instance, World, unix_now};

fn state_code(state: &str) -> u16 {
    match state {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        "stopped" => 80,
        _ => 0,
    }
}

/// `DescribeInstances`: `InstanceId.N`, filters, and paging when asked for.
pub(crate) fn describe_instances(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let ids = list(params, "InstanceId");
    if let Some(bad) = ids.iter().find(|id| !is_hex_id(id, "i-")) {
        return ec2_error(
            400,
            "InvalidInstanceID.Malformed",
            &format!("Invalid id: \"{bad}\""),
            request_id,
        );
    }
    let missing: Vec<&str> = ids
        .iter()
        .filter(|id| world.instance(id).is_none())
        .map(String::as_str)
        .collect();
    match missing.as_slice() {
        [] => {}
        [one] => {
            return ec2_error(
                400,
                "InvalidInstanceID.NotFound",
                &format!("The instance ID '{one}' does not exist"),
                request_id,
            );
        }
        many => {
            return ec2_error(
                400,
                "InvalidInstanceID.NotFound",
                &format!("The instance IDs '{}' do not exist", many.join(", ")),
                request_id,
            );
        }
    }
    let max_results = match parse_max_results(params, 5..=1000) {
        Ok(m) => m,
        Err(msg) => return ec2_error(400, "InvalidParameterValue", &msg, request_id),
    };
    if max_results.is_some() && !ids.is_empty() {
        return ec2_error(
            400,
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
            request_id,
        );
    }
    let mut selected: Vec<&Instance> = world
        .instances
        .iter()
        .filter(|i| ids.is_empty() || ids.contains(&i.id))
        .collect();
    let fields: &[FilterField<Instance>] = &[
        ("instance-id", |i| Some(&i.id)),
        ("instance-state-name", |i| Some(&i.state)),
        ("vpc-id", |i| Some(&i.vpc_id)),
        ("subnet-id", |i| Some(&i.subnet_id)),
        ("private-ip-address", |i| i.private_ip.as_deref()),
        ("availability-zone", |i| Some(&i.availability_zone)),
    ];
    // `tag:KEY` filters name their key; `private-dns-name` is computed.
    let (tagged, plain): (Vec<_>, Vec<_>) = filters(params)
        .into_iter()
        .partition(|(name, _)| name.starts_with("tag:") || name == "private-dns-name");
    for (name, values) in tagged {
        selected.retain(|i| {
            let v = match name.strip_prefix("tag:") {
                Some(key) => i.tag(key).map(str::to_owned),
                None => i.private_dns_name(),
            };
            v.is_some_and(|v| values.contains(&v))
        });
    }
    if let Err(answer) = apply_filter_list(&mut selected, plain, fields, request_id) {
        return answer;
    }
    let page_size = max_results.unwrap_or(usize::MAX);
    let (page, next) = match paginate(
        &selected,
        "instances",
        page_size,
        param(params, "NextToken"),
    ) {
        Ok(p) => p,
        Err(msg) => return ec2_error(400, "InvalidPaginationToken", &msg, request_id),
    };

    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<reservationSet>\n",
        esc(request_id)
    );
    for inst in &page {
        let _ = write!(
            xml,
            "<item><reservationId>r-{}</reservationId><ownerId>{OWNER_ID}</ownerId><groupSet/><instancesSet><item>",
            short_hash(&inst.id)
        );
        let _ = write!(
            xml,
            "<instanceId>{}</instanceId><imageId>ami-0123456789abcdef0</imageId>\
             <instanceState><code>{}</code><name>{}</name></instanceState>\
             <instanceType>t3.micro</instanceType>\
             <placement><availabilityZone>{}</availabilityZone><tenancy>default</tenancy></placement>\
             <subnetId>{}</subnetId><vpcId>{}</vpcId>",
            esc(&inst.id),
            state_code(&inst.state),
            esc(&inst.state),
            esc(&inst.availability_zone),
            esc(&inst.subnet_id),
            esc(&inst.vpc_id),
        );
        if let (Some(ip), Some(dns)) = (&inst.private_ip, inst.private_dns_name()) {
            let _ = write!(
                xml,
                "<privateDnsName>{}</privateDnsName><privateIpAddress>{}</privateIpAddress>",
                esc(&dns),
                esc(ip)
            );
        }
        if !inst.tags.is_empty() {
            xml.push_str("<tagSet>");
            for (k, v) in &inst.tags {
                let _ = write!(
                    xml,
                    "<item><key>{}</key><value>{}</value></item>",
                    esc(k),
                    esc(v)
                );
            }
            xml.push_str("</tagSet>");
        }
        if let Some(ip) = &inst.ipv6_address {
            let _ = write!(xml, "<ipv6Address>{}</ipv6Address>", esc(ip));
        }
        // The instance's groups are its primary interface's; every
        // interface lists its own.
        xml.push_str("<groupSet>");
        if let Some(primary) = inst.network_interfaces.first() {
            group_items(&mut xml, world, &primary.security_group_ids);
        }
        xml.push_str("</groupSet><networkInterfaceSet>");
        for (n, nic) in inst.network_interfaces.iter().enumerate() {
            let _ = write!(
                xml,
                "<item><networkInterfaceId>{}</networkInterfaceId><subnetId>{}</subnetId><vpcId>{}</vpcId>\
                 <ownerId>{OWNER_ID}</ownerId><status>in-use</status><interfaceType>interface</interfaceType>",
                esc(&nic.id),
                esc(&inst.subnet_id),
                esc(&inst.vpc_id),
            );
            let _ = write!(
                xml,
                "<attachment><attachmentId>eni-attach-{}</attachmentId><deviceIndex>{n}</deviceIndex>\
                 <status>attached</status><deleteOnTermination>true</deleteOnTermination></attachment>",
                esc(nic.id.trim_start_matches("eni-")),
            );
            if n == 0
                && let Some(ip) = &inst.private_ip
            {
                let _ = write!(xml, "<privateIpAddress>{}</privateIpAddress>", esc(ip));
            }
            xml.push_str("<groupSet>");
            group_items(&mut xml, world, &nic.security_group_ids);
            xml.push_str("</groupSet></item>");
        }
        xml.push_str("</networkInterfaceSet>");
        xml.push_str("<architecture>x86_64</architecture></item></instancesSet></item>\n");
    }
    xml.push_str("</reservationSet>\n");
    if let Some(t) = next {
        let _ = writeln!(xml, "<nextToken>{}</nextToken>", esc(&t));
    }
    xml.push_str("</DescribeInstancesResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} instance(s)", page.len()),
        error_type: None,
    }
}

/// `<item><groupId/><groupName/></item>` for each group.
pub(super) fn group_items(xml: &mut String, world: &World, groups: &[String]) {
    for g in groups {
        let name = world
            .security_groups
            .iter()
            .find(|sg| &sg.id == g)
            .map_or("default", |sg| sg.name.as_str());
        let _ = write!(
            xml,
            "<item><groupId>{}</groupId><groupName>{}</groupName></item>",
            esc(g),
            esc(name)
        );
    }
}

/// `GetConsoleOutput`: the instance's `console_output`, base64-encoded.
/// `Latest` is accepted either way (as on Nitro instances).
pub(crate) fn get_console_output(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let Some(id) = param(params, "InstanceId") else {
        return ec2_error(
            400,
            "MissingParameter",
            "The request must contain the parameter InstanceId",
            request_id,
        );
    };
    if !is_hex_id(id, "i-") {
        return ec2_error(
            400,
            "InvalidInstanceID.Malformed",
            &format!("Invalid id: \"{id}\""),
            request_id,
        );
    }
    let Some(inst) = world.instance(id) else {
        return ec2_error(
            400,
            "InvalidInstanceID.NotFound",
            &format!("The instance ID '{id}' does not exist"),
            request_id,
        );
    };
    if inst.console_denied {
        return ec2_error(
            403,
            "UnauthorizedOperation",
            &format!(
                "You are not authorized to perform this operation. User: arn:aws:iam::{OWNER_ID}:user/sim \
                 is not authorized to perform: ec2:GetConsoleOutput on resource: \
                 arn:aws:ec2:{}:{OWNER_ID}:instance/{id} because no identity-based policy allows the \
                 ec2:GetConsoleOutput action",
                world.region
            ),
            request_id,
        );
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetConsoleOutputResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<instanceId>{}</instanceId>\n<timestamp>{}</timestamp>\n",
        esc(request_id),
        esc(id),
        crate::sigv4::format_iso8601(unix_now()),
    );
    if let Some(text) = &inst.console_output {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        let _ = writeln!(xml, "<output>{b64}</output>");
    }
    xml.push_str("</GetConsoleOutputResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: if inst.console_output.is_some() {
            "output".to_string()
        } else {
            "no output".to_string()
        },
        error_type: None,
    }
}
