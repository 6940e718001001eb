//! Who may reach an instance through its EC2 Instance Connect Endpoint: the
//! facts (instance, endpoint, security group rules, subnet and VPC CIDRs),
//! fetched once, and the checks over them, judged as AWS evaluates security
//! groups. `doctor` reports the checks; `restrict` plans changes against the
//! same facts and proves the end state with the same checks.
//!
//! The checks ([`evaluate`]) are pure functions over [`Facts`], plain data
//! fetched once by a thin layer ([`gather`]): `DescribeInstances`,
//! `DescribeInstanceConnectEndpoints`, `DescribeSecurityGroupRules` (all
//! pages, for every group on the endpoint and on every network interface of
//! the instance), `DescribeSubnets` and `DescribeVpcs`.
//!
//! The rules are judged the way AWS evaluates them: the union of all the
//! instance's groups; with Preserve Client IP on, the instance sees the
//! client's own address, with it off the endpoint's; a rule that references
//! the endpoint's security group matches in both modes, and so admits every
//! client.

mod address;
mod gather;
mod matching;
mod model;
pub mod plan;
mod render;
mod rules;
#[cfg(test)]
mod tests;
pub mod writes;

pub use crate::aws::cidr::parse_cidr;
pub use address::{CHECKIP_URL, parse_checkip_response};
pub use gather::{Query, gather, security_group_rules};
pub use matching::*;
pub use model::*;
pub use render::render;
pub use rules::*;

/// 1 when any check failed, else 0 (warnings pass).
pub fn exit_status(checks: &[Check]) -> u8 {
    u8::from(checks.iter().any(|c| c.status == Status::Fail))
}
