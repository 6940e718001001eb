//! The checks: pure functions over the facts, judged as AWS evaluates
//! security groups.

use super::matching::*;
use super::model::*;
use crate::aws::ec2::{EndpointInfo, InstanceInfo};

mod path;

/// Run checks 1 to 7 over the facts.
pub fn evaluate(f: &Facts) -> Vec<Check> {
    let mut checks = vec![check_instance(f)];
    let endpoint = check_endpoint(f);
    checks.push(endpoint);
    let (Ok(instance), Some((ep, _))) = (&f.instance, f.chosen_endpoint()) else {
        let why = if f.instance.is_err() {
            "the instance could not be looked up"
        } else {
            "there is no usable endpoint"
        };
        for (id, name) in CHECK_NAMES.iter().skip(2).take(5) {
            checks.push(Check::new(
                *id,
                name,
                Status::Skip,
                format!("Skipped: {why}."),
            ));
        }
        return checks;
    };
    match &f.rules {
        Ok(rules) => {
            let path = PathFacts {
                f,
                instance,
                ep,
                rules,
            };
            checks.push(path.endpoint_egress());
            checks.push(path.endpoint_ingress());
            checks.push(path.instance_ingress());
            checks.push(path.client_address());
        }
        Err(e) => {
            for (id, name) in CHECK_NAMES.iter().skip(2).take(4) {
                checks.push(
                    Check::new(
                        *id,
                        name,
                        Status::Fail,
                        format!("Could not read the security group rules: {e}."),
                    )
                    .fix("grant ec2:DescribeSecurityGroupRules (and ec2:DescribeSubnets, ec2:DescribeVpcs) to the identity running eic-ssh doctor"),
                );
            }
        }
    }
    checks.push(check_address_type(f, ep));
    checks
}

pub(super) const CHECK_NAMES: [(u8, &str); 8] = [
    (1, "instance"),
    (2, "endpoint"),
    (3, "endpoint-egress"),
    (4, "endpoint-ingress"),
    (5, "instance-ingress"),
    (6, "client-address"),
    (7, "ip-address-type"),
    (8, "connect"),
];

pub(super) fn check_instance(f: &Facts) -> Check {
    let c = |status, msg: String| Check::new(1, "instance", status, msg);
    let i = match &f.instance {
        Ok(i) => i,
        Err(e) => return c(Status::Fail, format!("{e}.")),
    };
    let place = format!(
        "{} / {}",
        i.vpc_id.as_deref().unwrap_or("no VPC"),
        i.subnet_id.as_deref().unwrap_or("no subnet")
    );
    if i.state != "running" {
        return c(
            Status::Fail,
            format!(
                "{} is {}, not running: the endpoint can only reach a running instance.",
                i.id, i.state
            ),
        )
        .fix(format!(
            "aws ec2 start-instances --instance-ids {}{}",
            i.id, f.aws_args
        ));
    }
    match i.target_ip() {
        Some(std::net::IpAddr::V4(ip)) => c(
            Status::Pass,
            format!("{} is running in {place} with private IP {ip}.", i.id),
        ),
        Some(std::net::IpAddr::V6(ip)) => c(
            Status::Pass,
            format!(
                "{} is running in {place}, IPv6-only: tunnels name it by its IPv6 address {ip}.",
                i.id
            ),
        ),
        None => c(
            Status::Fail,
            format!(
                "{} has no private IP address: endpoints reach instances by private IPv4, or IPv6 for IPv6-only ones.",
                i.id
            ),
        ),
    }
}

pub(super) fn check_endpoint(f: &Facts) -> Check {
    let c = |status, msg: String| Check::new(2, "endpoint", status, msg);
    let Ok(instance) = &f.instance else {
        return c(
            Status::Skip,
            "Skipped: the instance could not be looked up.".into(),
        );
    };
    let vpc = instance.vpc_id.as_deref().unwrap_or("its VPC");
    let endpoints = match &f.endpoints {
        Ok(e) => e,
        Err(e) => return c(Status::Fail, format!("Could not list endpoints: {e}.")),
    };
    let Some((ep, why)) = f.chosen_endpoint() else {
        let subnet = instance.subnet_id.as_deref().unwrap_or("<subnet-id>");
        let msg = match &f.eice_id {
            Some(id) => format!("Endpoint {id} was not found or is not usable."),
            None => format!(
                "No usable EC2 Instance Connect Endpoint in {vpc}: eic-ssh has nothing to tunnel through."
            ),
        };
        return c(Status::Fail, msg).fix(format!(
            "aws ec2 create-instance-connect-endpoint --subnet-id {subnet} --preserve-client-ip{}",
            f.aws_args
        ));
    };
    let pci = match ep.preserve_client_ip {
        Some(true) => "on",
        Some(false) => "off",
        None => "not reported (treated as off)",
    };
    let mut details = vec![
        format!("DNS name: {}", ep.dns_name.as_deref().unwrap_or("none")),
        format!("Preserve Client IP: {pci}"),
        format!("security groups: {}", ep.security_group_ids.join(", ")),
    ];
    if endpoints.len() > 1 {
        details.push(format!("{} usable endpoints in {vpc}", endpoints.len()));
    }
    let mut msg = format!(
        "eic-ssh would use {} ({}) in {}, {why}.",
        ep.id,
        ep.state,
        ep.subnet_id.as_deref().unwrap_or("an unknown subnet")
    );
    if f.use_fips {
        match &ep.fips_dns_name {
            Some(name) => msg.push_str(&format!(" FIPS is configured: it dials {name}.")),
            None => {
                return c(
                    Status::Fail,
                    format!(
                        "{msg} FIPS is configured, but {} has no FIPS DNS name.",
                        ep.id
                    ),
                )
                .fix("unset AWS_USE_FIPS_ENDPOINT (or use_fips_endpoint in the profile), or use a region whose endpoints have FIPS names")
                .details(details);
            }
        }
    }
    c(Status::Pass, msg).details(details)
}

pub(super) fn check_address_type(f: &Facts, ep: &EndpointInfo) -> Check {
    let c = |status, msg: String| Check::new(7, "ip-address-type", status, msg);
    let kind = ep.ip_address_type.as_deref().unwrap_or("ipv4");
    let pci = ep.preserve_client_ip == Some(true);
    // The endpoint must reach the instance's address family at all.
    if let Some(target) = f.instance.as_ref().ok().and_then(|i| i.target_ip())
        && !ep.serves(target)
    {
        let family = if target.is_ipv6() { "IPv6" } else { "IPv4" };
        return c(
            Status::Fail,
            format!(
                "{} is a {kind} endpoint and cannot reach {target}, the instance's {family} address: every tunnel will be refused.",
                ep.id
            ),
        )
        .fix(format!(
            "aws ec2 modify-instance-connect-endpoint --instance-connect-endpoint-id {} --ip-address-type dualstack --no-preserve-client-ip{} (Preserve Client IP is IPv4-only)",
            ep.id, f.aws_args
        ));
    }
    if kind == "ipv4" {
        return c(
            Status::Pass,
            format!(
                "{} is an ipv4 endpoint, so Preserve Client IP (IPv4 only) can work.",
                ep.id
            ),
        );
    }
    // A VPC's subnet holds one endpoint: the way to Preserve Client IP is to
    // switch this one to ipv4, which only works when every instance it
    // serves has IPv4 (`eic-ssh restrict` checks that and plans it).
    let iam = format!(
        "restrict by IAM instead: a Deny on ec2-instance-connect:OpenTunnel for arn:aws:ec2:*:*:instance-connect-endpoint/{} with a NotIpAddress condition on aws:SourceIp",
        ep.id
    );
    let v6_only = f
        .instance
        .as_ref()
        .ok()
        .and_then(|i| i.target_ip())
        .is_some_and(|ip| ip.is_ipv6());
    let recreate = if v6_only {
        iam
    } else {
        format!(
            "aws ec2 modify-instance-connect-endpoint --instance-connect-endpoint-id {} --ip-address-type ipv4 --preserve-client-ip{} (only when every instance it serves has an IPv4 address: eic-ssh restrict checks that and plans it), or {iam}",
            ep.id, f.aws_args
        )
    };
    if pci || !f.expect.is_empty() {
        c(
            Status::Fail,
            format!(
                "{} is a {kind} endpoint, but Preserve Client IP works with IPv4 endpoints only, so the instance cannot see client addresses.",
                ep.id
            ),
        )
        .fix(recreate)
    } else {
        c(
            Status::Pass,
            format!(
                "{} is a {kind} endpoint; that is fine while Preserve Client IP (IPv4 only) stays off.",
                ep.id
            ),
        )
    }
}

/// The checks that need both the instance and the endpoint.
pub(super) struct PathFacts<'a> {
    f: &'a Facts,
    instance: &'a InstanceInfo,
    ep: &'a EndpointInfo,
    rules: &'a [Rule],
}
