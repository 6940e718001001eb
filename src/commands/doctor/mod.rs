//! `eic-ssh doctor`: walk the path to an instance, explain what stops a
//! connection, and check that an IP restriction through Preserve Client IP
//! really holds.
//!
//! The checks ([`evaluate`]) are pure functions over [`Facts`], plain data
//! fetched once by a thin layer ([`gather`]): `DescribeInstances`,
//! `DescribeInstanceConnectEndpoints`, `DescribeSecurityGroupRules` (all
//! pages, for every group on the endpoint and on every network interface of
//! the instance), `DescribeSubnets` and `DescribeVpcs`. Only `--connect`
//! goes further and tries a real connection.
//!
//! The rules are judged the way AWS evaluates them: the union of all the
//! instance's groups; with Preserve Client IP on, the instance sees the
//! client's own address, with it off the endpoint's; a rule that references
//! the endpoint's security group matches in both modes, and so admits every
//! client.

use crate::aws::Aws;

mod address;
mod gather;
mod model;
mod probe;
mod render;
mod rules;
#[cfg(test)]
mod tests;

pub use crate::aws::cidr::parse_cidr;
use crate::cli::DoctorArgs;
use crate::error::Error;
pub use address::{CHECKIP_URL, parse_checkip_response};
pub use gather::{gather, security_group_rules};
pub use model::*;
use probe::connect_check;
pub use render::render;
pub use rules::*;

/// `eic-ssh doctor`: gather, check, print; 0 when nothing failed, else 1.
pub async fn run(args: DoctorArgs) -> Result<u8, Error> {
    let aws = Aws::load(args.aws.region.as_deref(), args.aws.profile.as_deref()).await?;
    let facts = gather(&aws, &args).await;
    let mut checks = evaluate(&facts);
    checks.push(if args.connect {
        connect_check(&aws, &facts, &args).await
    } else {
        Check::new(
            8,
            "connect",
            Status::Skip,
            "Pass --connect to try a real connection.",
        )
    });
    if args.json {
        let text = serde_json::to_string_pretty(&checks).map_err(|e| Error::Io(e.into()))?;
        println!("{text}");
    } else {
        print!("{}", render(&facts, &checks, crate::term::color::stdout()));
    }
    Ok(exit_status(&checks))
}

/// 1 when any check failed, else 0 (warnings pass).
pub fn exit_status(checks: &[Check]) -> u8 {
    u8::from(checks.iter().any(|c| c.status == Status::Fail))
}
