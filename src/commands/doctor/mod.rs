//! `eic-ssh doctor`: walk the path to an instance, explain what stops a
//! connection, and check that an IP restriction through Preserve Client IP
//! really holds.
//!
//! The facts and the checks live in [`crate::access`]; this command gathers
//! them, adds check 8 (`--connect`, a real connection) and prints them.

use crate::access::{self, Check, Query, Status};

mod probe;

use crate::cli::DoctorArgs;
use crate::connect::context::Context;
use crate::error::Error;
use probe::connect_check;

/// `eic-ssh doctor`: gather, check, print; 0 when nothing failed, else 1.
pub async fn run(args: DoctorArgs, no_pick: bool) -> Result<u8, Error> {
    let Context { aws, .. } = Context::load(&args.aws.settings()).await?;
    let chosen = crate::target::choose::choose(&aws, &args.target, no_pick, false).await?;
    let query = Query {
        instance_id: chosen.instance_id,
        port: args.port,
        expect_cidr: args.expect_cidr.clone(),
        client_ip: args.client_ip,
        offline: args.offline,
        eice_id: args.eice_id.clone(),
    };
    let facts = access::gather(&aws, &query).await;
    let mut checks = access::evaluate(&facts);
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
        crate::term::out(&format!("{text}\n"))?;
    } else {
        crate::term::out(&access::render(
            &facts,
            &checks,
            crate::term::color::stdout(),
        ))?;
    }
    Ok(access::exit_status(&checks))
}
