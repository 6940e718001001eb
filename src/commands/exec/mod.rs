//! `eic-ssh exec TARGET… -- COMMAND`: one command on every instance the
//! targets match, each with its own key, tunnel and session, in parallel
//! within `--parallel` and the endpoints' quota of 20 open tunnels.
//!
//! Lookups are batched: one `DescribeInstances` per target expression and
//! one `DescribeInstanceConnectEndpoints` for the region, all at once.

mod job;
mod output;
mod report;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::try_join_all;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::aws::ec2::InstanceInfo;
use crate::cli::{ExecArgs, Verbosity};
use crate::connect::context::Context;
use crate::error::Error;
use crate::ssh::recorder::KnownHostsRecorder;
use crate::target::find;
use job::{Job, Shared};
use output::{InstanceSink, Printer};
pub use report::Report;

/// The most tunnels one endpoint keeps open at once: the service's quota.
pub const ENDPOINT_QUOTA: u32 = 20;

/// Run the command everywhere; 0 when every instance exited 0, else 1.
pub async fn run(args: ExecArgs, verbosity: Verbosity) -> Result<u8, Error> {
    let started = Instant::now();
    // Without `--` a command's words read as targets: say so, naming them.
    if args.command.is_empty() {
        let last = args
            .targets
            .last()
            .map(ToString::to_string)
            .unwrap_or_default();
        return Err(Error::Usage(match args.targets.len() {
            1 => format!("no command: put it after --, e.g. eic-ssh exec {last} -- uptime"),
            _ => format!(
                "no command: '{last}' was read as a target; put the command after --, e.g. eic-ssh exec {} -- uptime",
                args.targets[0]
            ),
        }));
    }
    if let Some(dir) = &args.output {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", dir.display()),
            ))
        })?;
    }
    let aws = Arc::new(Context::load(&args.aws.settings()).await?.aws);

    let (per_target, endpoints) = tokio::try_join!(
        try_join_all(args.targets.iter().map(|t| find::find_instances(
            aws.ec2(),
            &t.expr,
            &aws.region
        )),),
        find::endpoints_in_region(aws.ec2())
    )?;
    // A target that matches nothing is a mistake to stop at, before
    // running anything on the rest.
    if let Some((t, _)) = args
        .targets
        .iter()
        .zip(&per_target)
        .find(|(_, f)| f.is_empty())
    {
        return Err(crate::target::choose::no_match(&aws, &[&t.expr]).await);
    }
    let mut jobs: Vec<(InstanceInfo, String)> = Vec::new();
    for (target, found) in args.targets.iter().zip(per_target) {
        for info in found {
            if !jobs.iter().any(|(j, _)| j.id == info.id) {
                jobs.push((info, args.user.resolve(Some(target))));
            }
        }
    }

    let per_endpoint = args.per_endpoint.min(ENDPOINT_QUOTA) as usize;
    let mut slots: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let shared = Arc::new(Shared {
        aws: aws.clone(),
        command: args.remote_command(),
        parallel: Arc::new(Semaphore::new(args.parallel as usize)),
        host_keys: args.host_keys.checking(),
        notify: !verbosity.quiet,
        recorder: KnownHostsRecorder::start(args.host_keys.file()),
    });
    let printer = (args.output.is_none() && !args.json).then(Printer::start);

    // Every instance's output first: a file that cannot be made (or an ID
    // that cannot name one) stops the run before anything runs.
    let mut sinks = Vec::with_capacity(jobs.len());
    for (index, (info, _)) in jobs.iter().enumerate() {
        let lines = printer.as_ref().map(|p| {
            (
                p.sender(),
                output::prefixes(&info.id, info.name.as_deref(), index),
            )
        });
        let mut sink = InstanceSink::new(lines, args.json);
        if let Some(dir) = &args.output {
            sink = sink.with_files(dir, &info.id).await?;
        }
        sinks.push(sink);
    }

    let mut set = JoinSet::new();
    for ((index, (info, user)), sink) in jobs.iter().enumerate().zip(sinks) {
        let endpoint = match find::endpoint_for(&endpoints, info) {
            Ok(ep) => {
                let s = slots
                    .entry(ep.id.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(per_endpoint)));
                Ok((ep.clone(), s.clone()))
            }
            Err(_) => Err(Error::NoEndpointInVpc {
                vpc: info.vpc_id.clone().unwrap_or_else(|| "<no VPC>".into()),
                subnet: info
                    .subnet_id
                    .clone()
                    .unwrap_or_else(|| "<subnet-id>".into()),
                instance: info.id.clone(),
            }),
        };
        let job = Job {
            instance: info.clone(),
            user: user.clone(),
            endpoint,
        };
        let shared = shared.clone();
        set.spawn(async move { (index, job::run(shared, job, sink).await) });
    }
    drop(shared);

    let mut results: Vec<Option<(job::Outcome, InstanceSink)>> =
        (0..jobs.len()).map(|_| None).collect();
    while let Some(done) = set.join_next().await {
        match done {
            Ok((index, result)) => {
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some(result);
                }
            }
            Err(e) => return Err(Error::Internal(format!("an exec task failed: {e}"))),
        }
    }
    if let Some(p) = printer {
        p.finish().await;
    }
    let report = Report::new(
        jobs.iter()
            .map(|(i, _)| i)
            .zip(results)
            .filter_map(|(i, r)| r.map(|(o, s)| (i, o, s))),
        started.elapsed(),
    );
    if args.json {
        crate::term::out(&format!("{}\n", report.json()?))?;
    }
    eprint!("{}", report.summary());
    Ok(report.exit_status())
}
