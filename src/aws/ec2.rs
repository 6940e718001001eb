//! Finding the instance and the endpoint that serves it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aws_sdk_ec2::types::Filter;

use crate::aws::errors::api_error;
use crate::error::Error;

/// Endpoint states in which the endpoint can open tunnels.
pub const USABLE_ENDPOINT_STATES: [&str; 4] = [
    "create-complete",
    "update-in-progress",
    "update-failed",
    "update-complete",
];

/// What `DescribeInstances` tells us about the instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceInfo {
    pub id: String,
    pub state: String,
    pub private_ip: Option<Ipv4Addr>,
    /// The primary IPv6 address, if the instance has one.
    pub ipv6: Option<Ipv6Addr>,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub availability_zone: Option<String>,
    pub security_group_ids: Vec<String>,
    /// The value of the `Name` tag.
    pub name: Option<String>,
    pub private_dns_name: Option<String>,
}

/// An EC2 Instance Connect Endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointInfo {
    pub id: String,
    pub dns_name: Option<String>,
    pub fips_dns_name: Option<String>,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub state: String,
    pub preserve_client_ip: Option<bool>,
    pub security_group_ids: Vec<String>,
    pub ip_address_type: Option<String>,
    /// `PublicDnsNames.Dualstack`: names that resolve to both families.
    pub dualstack_dns_name: Option<String>,
    pub dualstack_fips_dns_name: Option<String>,
}

impl InstanceInfo {
    /// The address a tunnel names: the private IPv4, else (an IPv6-only
    /// instance) the IPv6 address.
    pub fn target_ip(&self) -> Option<IpAddr> {
        self.private_ip
            .map(IpAddr::V4)
            .or(self.ipv6.map(IpAddr::V6))
    }
}

impl EndpointInfo {
    /// Whether the endpoint reaches `target`'s family inside the VPC: its
    /// `IpAddressType` is `ipv4`, `dualstack` or `ipv6` (no type: an
    /// endpoint from before IPv6, so IPv4).
    pub fn serves(&self, target: IpAddr) -> bool {
        match (self.ip_address_type.as_deref(), target) {
            (Some("dualstack"), _) => true,
            (Some("ipv6"), t) => t.is_ipv6(),
            (_, t) => t.is_ipv4(),
        }
    }

    /// The DNS name to dial: the dual-stack name where the endpoint has one
    /// (it resolves to both families, and dialing tries both, so it suits
    /// a client with IPv4, IPv6 or both), else the IPv4 name; the FIPS
    /// variant when FIPS is configured.
    pub fn dial_name(&self, use_fips: bool) -> Result<String, Error> {
        let name = if use_fips {
            self.dualstack_fips_dns_name
                .clone()
                .or_else(|| self.fips_dns_name.clone())
                .ok_or_else(|| Error::NoFipsDnsName {
                    endpoint: self.id.clone(),
                })?
        } else {
            self.dualstack_dns_name
                .clone()
                .or_else(|| self.dns_name.clone())
                .ok_or_else(|| Error::EndpointNotFound {
                    endpoint: self.id.clone(),
                })?
        };
        Ok(name)
    }
}

/// Choose the endpoint for an instance: one in the instance's own subnet
/// first, else the first usable one in the VPC (the list is in the order the
/// API returned it, across pages).
pub fn choose_endpoint<'a>(
    endpoints: &'a [EndpointInfo],
    subnet_id: Option<&str>,
) -> Option<&'a EndpointInfo> {
    let usable = || {
        endpoints
            .iter()
            .filter(|e| USABLE_ENDPOINT_STATES.contains(&e.state.as_str()))
    };
    usable()
        .find(|e| subnet_id.is_some() && e.subnet_id.as_deref() == subnet_id)
        .or_else(|| usable().next())
}

/// `DescribeInstances` for one instance.
pub async fn describe_instance(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    region: &str,
) -> Result<InstanceInfo, Error> {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|e| match api_error("DescribeInstances", e) {
            Error::Api { code, .. } if code.starts_with("InvalidInstanceID") => {
                Error::InstanceNotFound {
                    instance: id.to_owned(),
                    region: region.to_owned(),
                }
            }
            other => other,
        })?;
    let instance = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id))
        .ok_or_else(|| Error::InstanceNotFound {
            instance: id.to_owned(),
            region: region.to_owned(),
        })?;
    Ok(instance_info(instance))
}

/// What eic-ssh needs of one instance in a `DescribeInstances` answer.
pub fn instance_info(instance: &aws_sdk_ec2::types::Instance) -> InstanceInfo {
    // The groups that judge a tunnel are those of the interface that holds
    // the primary private IP (device index 0), not every interface's: a
    // rule on a secondary interface admits nothing to the primary IP.
    let mut security_group_ids: Vec<String> = Vec::new();
    let primary = instance
        .network_interfaces()
        .iter()
        .find(|nic| nic.attachment().and_then(|a| a.device_index()) == Some(0));
    let groups: Vec<&str> = match primary {
        Some(nic) => nic.groups().iter().filter_map(|g| g.group_id()).collect(),
        None => instance
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id())
            .collect(),
    };
    for g in groups {
        if !security_group_ids.iter().any(|x| x == g) {
            security_group_ids.push(g.to_owned());
        }
    }
    InstanceInfo {
        id: instance.instance_id().unwrap_or_default().to_owned(),
        state: instance
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|| "unknown".into()),
        private_ip: instance.private_ip_address().and_then(|ip| ip.parse().ok()),
        ipv6: instance
            .ipv6_address()
            .or_else(|| {
                instance
                    .network_interfaces()
                    .iter()
                    .flat_map(|n| n.ipv6_addresses())
                    .find_map(|a| a.ipv6_address())
            })
            .and_then(|ip| ip.parse().ok()),
        vpc_id: instance.vpc_id().map(str::to_owned),
        subnet_id: instance.subnet_id().map(str::to_owned),
        availability_zone: instance
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_owned),
        security_group_ids,
        name: instance
            .tags()
            .iter()
            .find(|t| t.key() == Some("Name"))
            .and_then(|t| t.value())
            // A tag is anyone's text: shown in tables, the picker and exec's
            // prefixes, so no escapes.
            .map(crate::text::remote_text),
        private_dns_name: instance
            .private_dns_name()
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
    }
}

/// Every usable endpoint in a VPC, across all pages.
pub async fn endpoints_in_vpc(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
) -> Result<Vec<EndpointInfo>, Error> {
    let mut pages = ec2
        .describe_instance_connect_endpoints()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .filters(state_filter())
        .into_paginator()
        .send();
    let mut all = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_error("DescribeInstanceConnectEndpoints", e))?;
        all.extend(page.instance_connect_endpoints().iter().map(endpoint_info));
    }
    Ok(all)
}

/// One endpoint by ID.
pub async fn endpoint_by_id(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<EndpointInfo, Error> {
    let out = ec2
        .describe_instance_connect_endpoints()
        .instance_connect_endpoint_ids(id)
        .filters(state_filter())
        .send()
        .await
        .map_err(|e| match api_error("DescribeInstanceConnectEndpoints", e) {
            Error::Api { code, .. } if code.starts_with("InvalidInstanceConnectEndpointId") => {
                Error::EndpointNotFound {
                    endpoint: id.to_owned(),
                }
            }
            other => other,
        })?;
    out.instance_connect_endpoints()
        .iter()
        .map(endpoint_info)
        .find(|e| e.id == id)
        .ok_or_else(|| Error::EndpointNotFound {
            endpoint: id.to_owned(),
        })
}

pub(crate) fn state_filter() -> Filter {
    let mut f = Filter::builder().name("state");
    for s in USABLE_ENDPOINT_STATES {
        f = f.values(s);
    }
    f.build()
}

pub(crate) fn endpoint_info(e: &aws_sdk_ec2::types::Ec2InstanceConnectEndpoint) -> EndpointInfo {
    EndpointInfo {
        id: e
            .instance_connect_endpoint_id()
            .unwrap_or_default()
            .to_owned(),
        dns_name: e.dns_name().filter(|s| !s.is_empty()).map(str::to_owned),
        fips_dns_name: e
            .fips_dns_name()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        subnet_id: e.subnet_id().map(str::to_owned),
        vpc_id: e.vpc_id().map(str::to_owned),
        state: e.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        preserve_client_ip: e.preserve_client_ip(),
        security_group_ids: e.security_group_ids().to_vec(),
        ip_address_type: e.ip_address_type().map(|t| t.as_str().to_owned()),
        dualstack_dns_name: e
            .public_dns_names()
            .and_then(|n| n.dualstack())
            .and_then(|d| d.dns_name())
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        dualstack_fips_dns_name: e
            .public_dns_names()
            .and_then(|n| n.dualstack())
            .and_then(|d| d.fips_dns_name())
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    }
}

/// The `group-id` filter for `groups`, as the security-group and
/// network-interface listings take it.
pub fn group_id_filter(groups: &[String]) -> Filter {
    Filter::builder()
        .name("group-id")
        .set_values(Some(groups.to_vec()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_primary_interface_groups_count_and_names_are_made_safe() {
        use aws_sdk_ec2::types::{
            GroupIdentifier, Instance, InstanceNetworkInterface,
            InstanceNetworkInterfaceAttachment, Tag,
        };
        let nic = |index: i32, group: &str| {
            InstanceNetworkInterface::builder()
                .attachment(
                    InstanceNetworkInterfaceAttachment::builder()
                        .device_index(index)
                        .build(),
                )
                .groups(GroupIdentifier::builder().group_id(group).build())
                .build()
        };
        // The secondary interface is listed first, as the API may do.
        let instance = Instance::builder()
            .instance_id("i-0123456789abcdef0")
            .network_interfaces(nic(1, "sg-secondary"))
            .network_interfaces(nic(0, "sg-primary"))
            .security_groups(GroupIdentifier::builder().group_id("sg-primary").build())
            .tags(
                Tag::builder()
                    .key("Name")
                    .value("web\x1b]0;pwned\x07-1")
                    .build(),
            )
            .build();
        let info = instance_info(&instance);
        assert_eq!(info.security_group_ids, ["sg-primary"]);
        assert_eq!(info.name.as_deref(), Some("web]0;pwned-1"));
    }

    fn ep(id: &str, subnet: &str, state: &str) -> EndpointInfo {
        EndpointInfo {
            id: id.into(),
            subnet_id: Some(subnet.into()),
            state: state.into(),
            dns_name: Some(format!("{id}.example")),
            ..Default::default()
        }
    }

    #[test]
    fn prefers_the_instance_subnet() {
        let eps = [
            ep("eice-1", "subnet-a", "create-complete"),
            ep("eice-2", "subnet-b", "create-complete"),
        ];
        assert_eq!(
            choose_endpoint(&eps, Some("subnet-b")).map(|e| e.id.as_str()),
            Some("eice-2")
        );
    }

    #[test]
    fn falls_back_to_the_first_in_the_vpc() {
        let eps = [
            ep("eice-1", "subnet-a", "create-complete"),
            ep("eice-2", "subnet-b", "update-complete"),
        ];
        assert_eq!(
            choose_endpoint(&eps, Some("subnet-z")).map(|e| e.id.as_str()),
            Some("eice-1")
        );
        assert_eq!(
            choose_endpoint(&eps, None).map(|e| e.id.as_str()),
            Some("eice-1")
        );
    }

    #[test]
    fn skips_unusable_states() {
        let eps = [
            ep("eice-1", "subnet-a", "delete-in-progress"),
            ep("eice-2", "subnet-a", "create-failed"),
            ep("eice-3", "subnet-b", "update-failed"),
        ];
        assert_eq!(
            choose_endpoint(&eps, Some("subnet-a")).map(|e| e.id.as_str()),
            Some("eice-3")
        );
        assert!(choose_endpoint(&eps[..2], Some("subnet-a")).is_none());
        assert!(choose_endpoint(&[], Some("subnet-a")).is_none());
    }

    #[test]
    fn fips_needs_a_fips_name() {
        let mut e = ep("eice-1", "subnet-a", "create-complete");
        assert!(matches!(
            e.dial_name(true),
            Err(Error::NoFipsDnsName { .. })
        ));
        e.fips_dns_name = Some("fips.example".into());
        assert_eq!(e.dial_name(true).ok().as_deref(), Some("fips.example"));
        assert_eq!(e.dial_name(false).ok().as_deref(), Some("eice-1.example"));
    }

    #[test]
    fn the_dual_stack_name_wins_and_the_type_must_serve_the_family() {
        let mut e = ep("eice-1", "subnet-a", "create-complete");
        e.dualstack_dns_name = Some("eice-1.dualstack.example".into());
        e.fips_dns_name = Some("fips.example".into());
        assert_eq!(
            e.dial_name(false).ok().as_deref(),
            Some("eice-1.dualstack.example")
        );
        // No dual-stack FIPS name: the IPv4 FIPS one.
        assert_eq!(e.dial_name(true).ok().as_deref(), Some("fips.example"));
        let v4: IpAddr = "10.0.1.10".parse().unwrap();
        let v6: IpAddr = "2600:1f18::10".parse().unwrap();
        for (t, serves_v4, serves_v6) in [
            (None, true, false),
            (Some("ipv4"), true, false),
            (Some("dualstack"), true, true),
            (Some("ipv6"), false, true),
        ] {
            e.ip_address_type = t.map(str::to_owned);
            assert_eq!(
                (e.serves(v4), e.serves(v6)),
                (serves_v4, serves_v6),
                "{t:?}"
            );
        }
    }
}
