//! The changes `restrict` makes, one API call each, and the one extra
//! lookup it needs (who else uses a security group). Errors keep the
//! service's code and message.

use std::time::Duration;

use aws_sdk_ec2::types::{IpPermission, IpRange, PrefixListId, UserIdGroupPair};

use super::model::{Peer, Rule};
use crate::aws::ec2::{self, EndpointInfo};
use crate::aws::errors::api_error;
use crate::error::Error;
use crate::text::remote_text;

/// A rule as `IpPermissions` says it.
fn permission(rule: &Rule) -> Result<IpPermission, Error> {
    let mut p = IpPermission::builder()
        .ip_protocol(&rule.protocol)
        .from_port(rule.from_port)
        .to_port(rule.to_port);
    let description = rule.description.clone();
    p = match &rule.peer {
        Peer::Cidr(n) => p.ip_ranges(
            IpRange::builder()
                .cidr_ip(n.to_string())
                .set_description(description)
                .build(),
        ),
        Peer::Group(g) => p.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(g)
                .set_description(description)
                .build(),
        ),
        Peer::PrefixList(pl) => p.prefix_list_ids(
            PrefixListId::builder()
                .prefix_list_id(pl)
                .set_description(description)
                .build(),
        ),
        Peer::CidrV6(_) | Peer::Unknown => {
            return Err(Error::Internal(format!(
                "restrict does not write rules for {}",
                rule.peer_text()
            )));
        }
    };
    Ok(p.build())
}

/// `AuthorizeSecurityGroupIngress`/`Egress` for one rule; the new rules' ids.
pub async fn authorize(ec2: &aws_sdk_ec2::Client, rule: &Rule) -> Result<Vec<String>, Error> {
    let perm = permission(rule)?;
    let ids = if rule.egress {
        ec2.authorize_security_group_egress()
            .group_id(&rule.group_id)
            .ip_permissions(perm)
            .send()
            .await
            .map_err(|e| api_error("AuthorizeSecurityGroupEgress", e))?
            .security_group_rules()
            .iter()
            .filter_map(|r| r.security_group_rule_id().map(str::to_owned))
            .collect()
    } else {
        ec2.authorize_security_group_ingress()
            .group_id(&rule.group_id)
            .ip_permissions(perm)
            .send()
            .await
            .map_err(|e| api_error("AuthorizeSecurityGroupIngress", e))?
            .security_group_rules()
            .iter()
            .filter_map(|r| r.security_group_rule_id().map(str::to_owned))
            .collect()
    };
    Ok(ids)
}

/// `RevokeSecurityGroupIngress` of one rule, by its `sgr-` id.
pub async fn revoke_ingress(ec2: &aws_sdk_ec2::Client, rule: &Rule) -> Result<(), Error> {
    ec2.revoke_security_group_ingress()
        .group_id(&rule.group_id)
        .security_group_rule_ids(&rule.id)
        .send()
        .await
        .map_err(|e| api_error("RevokeSecurityGroupIngress", e))?;
    Ok(())
}

/// How long to wait for an endpoint update to finish.
const UPDATE_WAIT: Duration = Duration::from_secs(300);
/// The first pause while it is in progress; it doubles up to [`UPDATE_POLL_MAX`].
const UPDATE_POLL: Duration = Duration::from_secs(1);
/// The longest pause between two looks.
const UPDATE_POLL_MAX: Duration = Duration::from_secs(10);

/// `ModifyInstanceConnectEndpoint` with Preserve Client IP on, then wait
/// until the endpoint reports it on and is no longer `update-in-progress`
/// (at most [`UPDATE_WAIT`]): the changes after it rely on it.
pub async fn preserve_client_ip(
    ec2: &aws_sdk_ec2::Client,
    endpoint: &str,
) -> Result<EndpointInfo, Error> {
    ec2.modify_instance_connect_endpoint()
        .instance_connect_endpoint_id(endpoint)
        .preserve_client_ip(true)
        .send()
        .await
        .map_err(|e| api_error("ModifyInstanceConnectEndpoint", e))?;
    let deadline = tokio::time::Instant::now() + UPDATE_WAIT;
    let mut pause = UPDATE_POLL;
    loop {
        let now = ec2::endpoint_by_id(ec2, endpoint).await?;
        if now.preserve_client_ip == Some(true) && now.state != "update-in-progress" {
            return Ok(now);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Api {
                op: "ModifyInstanceConnectEndpoint",
                code: "UpdateNotFinished".into(),
                message: format!(
                    "{endpoint} is still {} with Preserve Client IP {:?} after {} s",
                    now.state,
                    now.preserve_client_ip,
                    UPDATE_WAIT.as_secs()
                ),
            });
        }
        tracing::info!("{endpoint} is {}: waiting {pause:?}", now.state);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(UPDATE_POLL_MAX);
    }
}

/// A network interface that uses one of the groups asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupUser {
    /// `eni-…`.
    pub interface: String,
    /// The instance it is attached to, if any.
    pub instance: Option<String>,
    /// `interface`, `lambda`, `ec2_instance_connect_endpoint`, ….
    pub kind: String,
    /// The interface's description (names the owner of managed ones).
    pub description: String,
    /// Which of the groups asked about it uses.
    pub groups: Vec<String>,
}

/// Every network interface that uses any of `groups`
/// (`DescribeNetworkInterfaces`, all pages).
pub async fn group_users(
    ec2: &aws_sdk_ec2::Client,
    groups: &[String],
) -> Result<Vec<GroupUser>, Error> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut pages = ec2
        .describe_network_interfaces()
        .filters(crate::aws::ec2::group_id_filter(groups))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_error("DescribeNetworkInterfaces", e))?;
        for n in page.network_interfaces() {
            // Shown in the plan: a description is whatever its creator
            // wrote, so no escapes or bidirectional controls.
            let shown = |s: Option<&str>| remote_text(s.unwrap_or_default());
            out.push(GroupUser {
                interface: shown(n.network_interface_id()),
                instance: n
                    .attachment()
                    .and_then(|a| a.instance_id())
                    .map(remote_text),
                kind: shown(n.interface_type().map(|t| t.as_str())),
                description: shown(n.description()),
                groups: n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id())
                    .filter(|g| groups.iter().any(|x| x == g))
                    .map(str::to_owned)
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// The instances with an interface in `vpc` (running or not), each once:
/// those an endpoint in that VPC may serve.
pub async fn vpc_instances(ec2: &aws_sdk_ec2::Client, vpc: &str) -> Result<Vec<String>, Error> {
    let mut pages = ec2
        .describe_network_interfaces()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(vpc)
                .build(),
        )
        .into_paginator()
        .send();
    let mut out: Vec<String> = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_error("DescribeNetworkInterfaces", e))?;
        for n in page.network_interfaces() {
            if let Some(i) = n.attachment().and_then(|a| a.instance_id())
                && !out.iter().any(|x| x == i)
            {
                out.push(i.to_owned());
            }
        }
    }
    Ok(out)
}
