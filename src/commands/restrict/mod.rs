//! `eic-ssh restrict`: make an IP restriction through Preserve Client IP
//! hold, as a plan a person reviews, applied safely, then proven by
//! doctor's checks.
//!
//! It reads the same facts as `doctor` ([`crate::access`]), plans the
//! changes as a pure function of them ([`plan`]), checks whether the
//! changed groups are shared, and with `--apply` makes the changes in an
//! order that never opens a wider path ([`apply`]), then gathers the facts
//! again and prints doctor's verdict.
//!
//! Exit status: 0 when the plan was printed, the instance was already
//! restricted, or the changes were applied and doctor's checks pass; 1 when
//! the plan is refused, not confirmed, or doctor's checks fail after
//! applying; 255 when a change failed (the report says what was done).

pub mod apply;
pub mod render;
#[cfg(test)]
mod tests;

use std::io::IsTerminal;

use crate::access::plan::{self, Action, Plan, PlanStatus};
use crate::access::{self, Query, writes};
use crate::cli::RestrictArgs;
use crate::connect::context::Context;
use crate::error::{EXIT_CONNECT_FAILED, Error};

/// `eic-ssh restrict`.
pub async fn run(args: RestrictArgs, no_pick: bool) -> Result<u8, Error> {
    if args.apply && !args.yes && !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "--apply asks for confirmation, and stdin is not a terminal: add --yes to apply without asking".into(),
        ));
    }
    // The networks together, not one by one: /1 and /1 make every address.
    let allow: Vec<ipnet::IpNet> = args.allow.iter().copied().map(Into::into).collect();
    for warning in crate::aws::cidr::judge_allowed(&allow).map_err(Error::Usage)? {
        // Always shown: a range this wide is rarely meant.
        eprintln!("eic-ssh: warning: {warning}");
    }
    let Context { aws, .. } = Context::load(&args.aws.settings()).await?;
    let chosen = crate::target::choose::choose(&aws, &args.target, no_pick, false).await?;
    let instance_id = chosen.instance_id;
    let query = Query {
        instance_id: instance_id.clone(),
        port: args.port,
        expect_cidr: args.allow.clone(),
        client_ip: args.client_ip,
        offline: args.offline,
        eice_id: args.eice_id.clone(),
    };
    let facts = access::gather(&aws, &query).await;
    let mut plan = plan::make_plan(&facts);
    let mut shared_unknown = false;
    if plan.status == PlanStatus::Changes {
        match writes::group_users(aws.ec2(), &plan.touched_groups).await {
            Ok(users) => {
                for u in users {
                    if u.instance.as_deref() == Some(plan.instance.as_str()) {
                        continue;
                    }
                    let who = match &u.instance {
                        Some(i) => format!("{i} ({})", u.interface),
                        None if u.description.is_empty() => format!("{} ({})", u.interface, u.kind),
                        None => format!("{} ({}: {})", u.interface, u.kind, u.description),
                    };
                    plan.shared_with
                        .push(format!("{who}, through {}", u.groups.join(", ")));
                }
            }
            Err(e) => {
                shared_unknown = true;
                plan.warnings.push(format!(
                    "Could not tell whether {} is used by other instances ({e}); grant ec2:DescribeNetworkInterfaces, or check it yourself. --apply needs --shared-ok.",
                    plan.touched_groups.join(", ")
                ));
            }
        }
    }
    // Preserve Client IP is the endpoint's setting: turning it on changes
    // what every instance behind it sees (client addresses instead of the
    // endpoint's), which can lock the others out.
    let vpc = facts.instance.as_ref().ok().and_then(|i| i.vpc_id.clone());
    if plan
        .changes
        .iter()
        .any(|c| c.action == Action::PreserveClientIp)
        && let Some(vpc) = vpc
    {
        match writes::vpc_instances(aws.ec2(), &vpc).await {
            Ok(others) => plan
                .endpoint_shared_with
                .extend(others.into_iter().filter(|i| *i != plan.instance)),
            Err(e) => {
                shared_unknown = true;
                plan.warnings.push(format!(
                    "Could not tell which other instances in {vpc} the endpoint serves ({e}); grant ec2:DescribeNetworkInterfaces, or check it yourself. --apply needs --shared-ok."
                ));
            }
        }
    }
    let doctor = doctor_command(&args, &instance_id);
    let rerun = restrict_command(&args, &instance_id);
    let shared =
        !plan.shared_with.is_empty() || !plan.endpoint_shared_with.is_empty() || shared_unknown;

    // What applies it: --shared-ok too when the plan needs it.
    let apply_command = match shared {
        true => format!("{rerun} --apply --shared-ok"),
        false => format!("{rerun} --apply"),
    };
    if !args.apply || plan.status != PlanStatus::Changes {
        print_plan(&plan, &args, &doctor, &apply_command)?;
        return Ok(u8::from(matches!(
            plan.status,
            PlanStatus::Refused | PlanStatus::Unconfirmed
        )));
    }
    if shared && !args.shared_ok {
        print_plan(&plan, &args, &doctor, &apply_command)?;
        eprintln!(
            "eic-ssh: refused: {} is shared, and the changes would affect the others too; nothing was changed. Review the plan, then add --shared-ok to apply it anyway.",
            plan.touched_groups.join(", ")
        );
        return Ok(1);
    }
    if !args.json {
        crate::term::out(&render::render_plan(&plan, &doctor, None))?;
    }
    if !args.yes && !confirm(&plan).await? {
        eprintln!("eic-ssh: not confirmed: nothing was changed.");
        return Ok(1);
    }
    if !args.json {
        crate::term::out("\nApplying:\n")?;
    }
    // Once changes begin, a closed stdout never stops them halfway.
    let results = apply::apply(aws.ec2(), &plan, |r| {
        if !args.json {
            let _ = crate::term::out(&render::render_step(r));
        }
    })
    .await;
    if !apply::all_done(&results) {
        let _ = match args.json {
            true => print_json(&serde_json::json!({ "plan": plan, "result": results })),
            false => crate::term::out(&render::render_failure(&results, &rerun)),
        };
        return Ok(EXIT_CONNECT_FAILED);
    }
    // Prove it: the facts again, fresh, and doctor's checks over them.
    let after = access::gather(&aws, &query).await;
    let checks = access::evaluate(&after);
    let status = access::exit_status(&checks);
    if args.json {
        print_json(&serde_json::json!({
            "plan": plan,
            "result": results,
            "verdict": checks,
            "exit_status": status,
        }))?;
    } else {
        crate::term::out(&format!(
            "\nApplied. Doctor's checks now (`{doctor}`):\n\n{}",
            access::render(&after, &checks, crate::term::color::stdout())
        ))?;
    }
    Ok(status)
}

fn print_plan(plan: &Plan, args: &RestrictArgs, doctor: &str, apply: &str) -> Result<(), Error> {
    if args.json {
        print_json(&serde_json::json!({ "plan": plan }))
    } else {
        crate::term::out(&render::render_plan(plan, doctor, Some(apply)))
    }
}

fn print_json(v: &serde_json::Value) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Io(e.into()))?;
    crate::term::out(&format!("{text}\n"))
}

/// Ask on the terminal; `true` only for yes.
async fn confirm(plan: &Plan) -> Result<bool, Error> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut stderr = tokio::io::stderr();
    stderr
        .write_all(format!("\nApply these {} change(s)? [y/N] ", plan.changes.len()).as_bytes())
        .await?;
    stderr.flush().await?;
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// ` --port P --eice-id E --region R --profile P`, as given.
fn common_flags(args: &RestrictArgs) -> String {
    let mut s = String::new();
    if let Some(ip) = args.client_ip {
        s.push_str(&format!(" --client-ip {ip}"));
    }
    if args.offline {
        s.push_str(" --offline");
    }
    if args.port != 22 {
        s.push_str(&format!(" --port {}", args.port));
    }
    if let Some(e) = &args.eice_id {
        s.push_str(&format!(" --eice-id {e}"));
    }
    if let Some(r) = &args.aws.region {
        s.push_str(&format!(" --region {r}"));
    }
    if let Some(p) = &args.aws.profile {
        s.push_str(&format!(" --profile {p}"));
    }
    s
}

fn allow_list(args: &RestrictArgs) -> String {
    args.allow
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The doctor command that checks the restriction.
fn doctor_command(args: &RestrictArgs, instance_id: &str) -> String {
    format!(
        "eic-ssh doctor {} --expect-cidr {}{}",
        instance_id,
        allow_list(args),
        common_flags(args)
    )
}

/// This restrict command, without --apply and its companions.
fn restrict_command(args: &RestrictArgs, instance_id: &str) -> String {
    format!(
        "eic-ssh restrict {} --allow {}{}",
        instance_id,
        allow_list(args),
        common_flags(args)
    )
}
