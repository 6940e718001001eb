//! `eic-ssh ls`: the instances the targets match (or every one that is not
//! terminated), with the endpoint that would serve each.

use futures_util::future::try_join_all;
use serde::Serialize;

use crate::aws::Aws;
use crate::aws::ec2::InstanceInfo;
use crate::cli::LsArgs;
use crate::connect::context::{Context, Settings};
use crate::error::Error;
use crate::target::find;
use crate::target::resolve::route_from_listing;
use crate::target::syntax::TargetExpr;
use crate::term::table;

/// One row of `eic-ssh ls --json`.
#[derive(Debug, Serialize)]
struct Row<'a> {
    id: &'a str,
    name: Option<&'a str>,
    state: &'a str,
    private_ip: Option<String>,
    availability_zone: Option<&'a str>,
    /// The endpoint that would serve the instance, or null.
    endpoint: Option<String>,
    /// Why no endpoint would, or null.
    no_endpoint_reason: Option<String>,
}

/// `eic-ssh ls [TARGET…] [--json]`: one `DescribeInstances` per target (or
/// one for the whole region) and one `DescribeInstanceConnectEndpoints`, all
/// at once. A target finds instances in any state but terminated, as with
/// no target; one that finds none running says how to start them.
pub async fn run(args: LsArgs, quiet: bool) -> Result<u8, Error> {
    let settings = Settings {
        cache: !args.no_cache,
        ..args.aws.settings()
    };
    let Context { aws, cache } = Context::load(&settings).await?;
    let (per_target, endpoints) =
        tokio::try_join!(instances(&aws, &args), find::endpoints_in_region(aws.ec2()))?;
    let mut found: Vec<InstanceInfo> = Vec::new();
    for i in per_target.iter().flatten() {
        if !found.iter().any(|x| x.id == i.id) {
            found.push(i.clone());
        }
    }
    // What was listed serves the next connection and shell completion, as
    // a connection's own lookup does.
    if let Some(cache) = cache {
        let routes: Vec<_> = found
            .iter()
            .filter_map(|i| route_from_listing(i, &endpoints, aws.use_fips))
            .collect();
        cache.put_all(Some(&aws.cache_scope()), &aws.region, &routes);
    }
    if found.is_empty() && !args.targets.is_empty() {
        let exprs: Vec<&TargetExpr> = args.targets.iter().map(|t| &t.expr).collect();
        return Err(crate::target::choose::no_match(&aws, &exprs).await);
    }
    let status = print(&args, &found, &endpoints)?;
    if !quiet {
        for (target, matched) in args.targets.iter().zip(&per_target) {
            if let Some(e) =
                crate::target::choose::not_running(&aws, &target.expr.describe(), matched)
            {
                crate::term::report(&e);
            }
        }
    }
    Ok(status)
}

/// The table, or the JSON array.
fn print(
    args: &LsArgs,
    found: &[InstanceInfo],
    endpoints: &[crate::aws::ec2::EndpointInfo],
) -> Result<u8, Error> {
    if args.json {
        let rows: Vec<Row> = found
            .iter()
            .map(|i| {
                let ep = find::endpoint_for(endpoints, i);
                Row {
                    id: &i.id,
                    name: i.name.as_deref(),
                    state: &i.state,
                    private_ip: i.private_ip.map(|ip| ip.to_string()),
                    availability_zone: i.availability_zone.as_deref(),
                    endpoint: ep.as_ref().ok().map(|e| e.id.clone()),
                    no_endpoint_reason: ep.err().map(|why| why.to_string()),
                }
            })
            .collect();
        let text = serde_json::to_string_pretty(&rows).map_err(|e| Error::Io(e.into()))?;
        crate::term::out(&format!("{text}\n"))?;
        return Ok(0);
    }
    let mut rows = crate::target::choose::instance_rows(found);
    if let Some(header) = rows.first_mut() {
        header.push("ENDPOINT".into());
    }
    for (row, i) in rows.iter_mut().skip(1).zip(found) {
        row.push(crate::target::choose::endpoint_cell(endpoints, i));
    }
    for line in table::render(&rows) {
        crate::term::out(&format!("{line}\n"))?;
    }
    Ok(0)
}

/// What each target matches (in any state but terminated), or with no
/// target every such instance in the region.
async fn instances(aws: &Aws, args: &LsArgs) -> Result<Vec<Vec<InstanceInfo>>, Error> {
    if args.targets.is_empty() {
        return Ok(vec![
            find::instances_in_states(aws.ec2(), &find::LISTED_STATES).await?,
        ]);
    }
    try_join_all(args.targets.iter().map(|t| {
        find::find_instances_in_states(aws.ec2(), &t.expr, &aws.region, &find::LISTED_STATES)
    }))
    .await
}
