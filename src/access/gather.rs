//! The fetch layer: every API call doctor makes, failures kept as facts.

use ipnet::{Ipv4Net, Ipv6Net};

use super::address::{CHECKIP_TIMEOUT, CHECKIP_URL, discover_ip};
use super::model::*;
use crate::aws::Aws;
use crate::aws::cidr::parse_cidr;
use crate::aws::ec2::{self};
use crate::error::Error;

/// What to gather facts about.
#[derive(Debug, Clone)]
pub struct Query {
    pub instance_id: String,
    /// 22 or 3389.
    pub port: u16,
    /// The only client networks that should get in (`--expect-cidr`).
    pub expect_cidr: Vec<Ipv4Net>,
    /// This machine's public address, when the user gave it.
    pub client_ip: Option<std::net::Ipv4Addr>,
    /// Do not discover this machine's address over the internet.
    pub offline: bool,
    /// The endpoint, when the user named it.
    pub eice_id: Option<String>,
}

/// Fetch everything the checks need, concurrently where possible. Failures
/// become part of the facts: the checks report them, gathering does not stop.
pub async fn gather(aws: &Aws, args: &Query) -> Facts {
    let instance_id = args.instance_id.clone();
    let mut aws_args = format!(" --region {}", aws.region);
    if let Some(p) = &aws.profile {
        aws_args.push_str(&format!(" --profile {p}"));
    }
    let client = async {
        match (args.client_ip, args.offline) {
            (Some(ip), _) => ClientAddr::Given(ip),
            (None, true) => ClientAddr::Offline,
            (None, false) => {
                let url = std::env::var("EIC_SSH_CHECKIP_URL")
                    .ok()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| CHECKIP_URL.to_owned());
                match tokio::time::timeout(CHECKIP_TIMEOUT, discover_ip(&url, aws.tls.clone()))
                    .await
                {
                    Ok(Ok(ip)) => ClientAddr::Discovered(ip),
                    Ok(Err(e)) => ClientAddr::Failed(format!("{url}: {e}")),
                    Err(_) => ClientAddr::Failed(format!("{url}: timed out")),
                }
            }
        }
    };
    let path = async {
        let instance = ec2::describe_instance(aws.ec2(), &instance_id, &aws.region)
            .await
            .map_err(|e| e.to_string());
        let endpoints = match (&instance, &args.eice_id) {
            (_, Some(id)) => ec2::endpoint_by_id(aws.ec2(), id)
                .await
                .map(|e| vec![e])
                .or_else(|e| match e {
                    Error::EndpointNotFound { .. } => Ok(Vec::new()),
                    other => Err(other.to_string()),
                }),
            (Ok(i), None) => match &i.vpc_id {
                Some(vpc) => ec2::endpoints_in_vpc(aws.ec2(), vpc)
                    .await
                    .map_err(|e| e.to_string()),
                None => Ok(Vec::new()),
            },
            (Err(_), None) => Ok(Vec::new()),
        };
        (instance, endpoints)
    };
    let (client, (instance, endpoints)) = tokio::join!(client, path);
    let mut facts = Facts {
        instance_id,
        port: args.port,
        use_fips: aws.use_fips,
        expect: args.expect_cidr.clone(),
        client,
        instance,
        eice_id: args.eice_id.clone(),
        endpoints,
        rules: Ok(Vec::new()),
        endpoint_subnet_cidr: None,
        endpoint_subnet_cidrs_v6: Vec::new(),
        vpc_cidrs: Vec::new(),
        aws_args,
        served: None,
    };
    let Some((ep, _)) = facts.chosen_endpoint() else {
        return facts;
    };
    let mut groups = ep.security_group_ids.clone();
    let ep_subnet = ep.subnet_id.clone();
    let vpc = facts.instance.as_ref().ok().and_then(|i| i.vpc_id.clone());
    if let Ok(i) = &facts.instance {
        for g in &i.security_group_ids {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
    }
    let (rules, subnet, vpc_cidrs) = tokio::join!(
        security_group_rules(aws.ec2(), &groups),
        subnet_cidr(aws.ec2(), ep_subnet.as_deref()),
        vpc_cidrs(aws.ec2(), vpc.as_deref()),
    );
    facts.rules = rules.map_err(|e| e.to_string());
    (facts.endpoint_subnet_cidr, facts.endpoint_subnet_cidrs_v6) = subnet;
    facts.vpc_cidrs = vpc_cidrs;
    facts
}

/// Every rule of `groups`, across all pages of `DescribeSecurityGroupRules`.
pub async fn security_group_rules(
    ec2: &aws_sdk_ec2::Client,
    groups: &[String],
) -> Result<Vec<Rule>, Error> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut pages = ec2
        .describe_security_group_rules()
        .filters(crate::aws::ec2::group_id_filter(groups))
        .into_paginator()
        .send();
    let mut rules = Vec::new();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| crate::aws::errors::api_error("DescribeSecurityGroupRules", e))?;
        for r in page.security_group_rules() {
            let peer = if let Some(c) = r.cidr_ipv4() {
                parse_cidr(c).map_or(Peer::Unknown, Peer::Cidr)
            } else if let Some(c) = r.cidr_ipv6() {
                Peer::CidrV6(c.to_owned())
            } else if let Some(p) = r.prefix_list_id() {
                Peer::PrefixList(p.to_owned())
            } else if let Some(g) = r.referenced_group_info().and_then(|g| g.group_id()) {
                Peer::Group(g.to_owned())
            } else {
                Peer::Unknown
            };
            rules.push(Rule {
                id: r.security_group_rule_id().unwrap_or_default().to_owned(),
                group_id: r.group_id().unwrap_or_default().to_owned(),
                egress: r.is_egress().unwrap_or(false),
                protocol: r.ip_protocol().unwrap_or("-1").to_owned(),
                from_port: r.from_port().unwrap_or(-1),
                to_port: r.to_port().unwrap_or(-1),
                peer,
                description: r.description().map(str::to_owned),
            });
        }
    }
    Ok(rules)
}

/// The subnet's IPv4 CIDR (`None` when unknown: the checks then say so)
/// and its associated IPv6 CIDRs (empty when it has none or when unknown).
pub(super) async fn subnet_cidr(
    ec2: &aws_sdk_ec2::Client,
    subnet: Option<&str>,
) -> (Option<Ipv4Net>, Vec<Ipv6Net>) {
    let Some(subnet) = subnet else {
        return (None, Vec::new());
    };
    let out = match ec2.describe_subnets().subnet_ids(subnet).send().await {
        Ok(o) => o,
        Err(e) => {
            tracing::info!("DescribeSubnets: {}", crate::error::chain(&e));
            return (None, Vec::new());
        }
    };
    let Some(s) = out.subnets().first() else {
        return (None, Vec::new());
    };
    let v4 = s.cidr_block().and_then(|c| parse_cidr(c).ok());
    let v6 = s
        .ipv6_cidr_block_association_set()
        .iter()
        .filter(|a| {
            a.ipv6_cidr_block_state()
                .and_then(|st| st.state())
                .is_none_or(|st| st.as_str() == "associated")
        })
        .filter_map(|a| a.ipv6_cidr_block()?.parse::<Ipv6Net>().ok())
        .map(|n| n.trunc())
        .collect();
    (v4, v6)
}

/// The VPC's IPv4 CIDRs; empty when unknown.
pub(super) async fn vpc_cidrs(ec2: &aws_sdk_ec2::Client, vpc: Option<&str>) -> Vec<Ipv4Net> {
    let Some(vpc) = vpc else {
        return Vec::new();
    };
    let out = match ec2.describe_vpcs().vpc_ids(vpc).send().await {
        Ok(o) => o,
        Err(e) => {
            tracing::info!("DescribeVpcs: {}", crate::error::chain(&e));
            return Vec::new();
        }
    };
    let mut nets = Vec::new();
    for v in out.vpcs() {
        let cidrs = v.cidr_block().into_iter().chain(
            v.cidr_block_association_set()
                .iter()
                .filter_map(|a| a.cidr_block()),
        );
        for c in cidrs {
            if let Ok(n) = parse_cidr(c)
                && !nets.contains(&n)
            {
                nets.push(n);
            }
        }
    }
    nets
}
