//! Finding instances by target expression, and the region's endpoints: each
//! is one `DescribeInstances` or `DescribeInstanceConnectEndpoints` call
//! (more only when the answer runs over a page).

use aws_sdk_ec2::types::Filter;

use crate::aws::ec2::{EndpointInfo, InstanceInfo, choose_endpoint, endpoint_info, instance_info};
use crate::aws::errors::api_error;
use crate::error::Error;
use crate::target::syntax::TargetExpr;

/// The states an instance found by anything but its ID may be in: stopped,
/// stopping and terminated instances cannot be reached, so a name never
/// picks them.
pub const LIVE_STATES: [&str; 2] = ["pending", "running"];

/// Every state but `terminated`, for `eic-ssh ls` with no target.
pub const LISTED_STATES: [&str; 5] = ["pending", "running", "shutting-down", "stopping", "stopped"];

/// The states in which a target finds an instance that cannot be reached:
/// why it found no live one.
pub const UNREACHABLE_STATES: [&str; 3] = ["shutting-down", "stopping", "stopped"];

/// The instances `expr` names, in one `DescribeInstances` call: an ID is
/// asked for by `InstanceId` (and found in any state), anything else by its
/// filter and the live states.
pub async fn find_instances(
    ec2: &aws_sdk_ec2::Client,
    expr: &TargetExpr,
    region: &str,
) -> Result<Vec<InstanceInfo>, Error> {
    find_instances_in_states(ec2, expr, region, &LIVE_STATES).await
}

/// As [`find_instances`], with anything but an ID found in `states`.
pub async fn find_instances_in_states(
    ec2: &aws_sdk_ec2::Client,
    expr: &TargetExpr,
    region: &str,
    states: &[&str],
) -> Result<Vec<InstanceInfo>, Error> {
    match (expr.instance_id(), expr.filter()) {
        (Some(id), _) => crate::aws::ec2::describe_instance(ec2, id, region)
            .await
            .map(|i| vec![i]),
        (None, Some((name, value))) => {
            let filters = vec![
                Filter::builder().name(name).values(value).build(),
                states_filter(states),
            ];
            describe(ec2, filters).await
        }
        (None, None) => Ok(Vec::new()),
    }
}

/// Every instance in one of `states`.
pub async fn instances_in_states(
    ec2: &aws_sdk_ec2::Client,
    states: &[&str],
) -> Result<Vec<InstanceInfo>, Error> {
    describe(ec2, vec![states_filter(states)]).await
}

fn states_filter(states: &[&str]) -> Filter {
    let mut f = Filter::builder().name("instance-state-name");
    for s in states {
        f = f.values(*s);
    }
    f.build()
}

async fn describe(
    ec2: &aws_sdk_ec2::Client,
    filters: Vec<Filter>,
) -> Result<Vec<InstanceInfo>, Error> {
    let mut pages = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    let mut all: Vec<InstanceInfo> = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_error("DescribeInstances", e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            let info = instance_info(i);
            if !all.iter().any(|x| x.id == info.id) {
                all.push(info);
            }
        }
    }
    Ok(all)
}

/// Every usable endpoint in the region. The list is small (one endpoint per
/// VPC at most per subnet), so one call of the largest page size reads it
/// whole, and it can start before the instance's VPC is known.
pub async fn endpoints_in_region(ec2: &aws_sdk_ec2::Client) -> Result<Vec<EndpointInfo>, Error> {
    let mut pages = ec2
        .describe_instance_connect_endpoints()
        .filters(crate::aws::ec2::state_filter())
        .max_results(50)
        .into_paginator()
        .send();
    let mut all = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_error("DescribeInstanceConnectEndpoints", e))?;
        all.extend(page.instance_connect_endpoints().iter().map(endpoint_info));
    }
    Ok(all)
}

/// Why an instance has no endpoint to serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoEndpoint {
    /// The instance is in no VPC (EC2-Classic) or its VPC is not known.
    NoVpc,
    /// No usable endpoint in the instance's VPC.
    NoneInVpc { vpc: String },
}

impl std::fmt::Display for NoEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoEndpoint::NoVpc => f.write_str("the instance is in no VPC"),
            NoEndpoint::NoneInVpc { vpc } => write!(f, "none in {vpc}"),
        }
    }
}

/// The endpoint that serves `instance`, chosen from the region's list the
/// way the reference client does: its own subnet's first, else the first in
/// its VPC.
pub fn endpoint_for<'a>(
    endpoints: &'a [EndpointInfo],
    instance: &InstanceInfo,
) -> Result<&'a EndpointInfo, NoEndpoint> {
    let vpc = instance.vpc_id.as_deref().ok_or(NoEndpoint::NoVpc)?;
    let in_vpc: Vec<EndpointInfo> = endpoints
        .iter()
        .filter(|e| e.vpc_id.as_deref() == Some(vpc))
        .cloned()
        .collect();
    let chosen = choose_endpoint(&in_vpc, instance.subnet_id.as_deref()).map(|e| e.id.clone());
    chosen
        .and_then(|id| endpoints.iter().find(|e| e.id == id))
        .ok_or_else(|| NoEndpoint::NoneInVpc {
            vpc: vpc.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: &str, vpc: &str, subnet: &str) -> EndpointInfo {
        EndpointInfo {
            id: id.into(),
            vpc_id: Some(vpc.into()),
            subnet_id: Some(subnet.into()),
            state: "create-complete".into(),
            ..Default::default()
        }
    }

    fn inst(vpc: Option<&str>, subnet: &str) -> InstanceInfo {
        InstanceInfo {
            id: "i-1".into(),
            vpc_id: vpc.map(Into::into),
            subnet_id: Some(subnet.into()),
            ..Default::default()
        }
    }

    #[test]
    fn picks_from_the_region_list_by_vpc_then_subnet() {
        let eps = [
            ep("eice-a", "vpc-1", "subnet-1"),
            ep("eice-b", "vpc-2", "subnet-2"),
            ep("eice-c", "vpc-2", "subnet-3"),
        ];
        let id = |i: &InstanceInfo| endpoint_for(&eps, i).map(|e| e.id.clone());
        assert_eq!(id(&inst(Some("vpc-1"), "subnet-9")), Ok("eice-a".into()));
        assert_eq!(id(&inst(Some("vpc-2"), "subnet-3")), Ok("eice-c".into()));
        assert_eq!(id(&inst(Some("vpc-2"), "subnet-9")), Ok("eice-b".into()));
        assert_eq!(
            id(&inst(Some("vpc-3"), "subnet-1")),
            Err(NoEndpoint::NoneInVpc {
                vpc: "vpc-3".into()
            })
        );
        assert_eq!(id(&inst(None, "subnet-1")), Err(NoEndpoint::NoVpc));
    }
}
