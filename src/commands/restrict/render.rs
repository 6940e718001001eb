//! The human plan, and the report after applying it.

use std::fmt::Write as _;

use super::apply::{StepResult, StepStatus};
use crate::access::Check;
use crate::access::plan::{Action, ClientVsAllow, Plan, PlanStatus};

fn check_lines(out: &mut String, checks: &[Check]) {
    for c in checks {
        let _ = writeln!(
            out,
            "  {} {}. {:<17} {}",
            c.status.label(),
            c.id,
            c.name,
            c.message
        );
    }
}

/// The plan, for a person to review. `doctor` is the command that checks
/// the end state; `apply` the whole command that applies the plan.
pub fn render_plan(plan: &Plan, doctor: &str, apply: Option<&str>) -> String {
    let mut out = format!(
        "eic-ssh restrict: {} tcp/{}, allowing only {}{}\n\n",
        plan.instance,
        plan.port,
        plan.allow.join(", "),
        plan.endpoint
            .as_deref()
            .map(|e| format!(", through {e}"))
            .unwrap_or_default()
    );
    if plan.status == PlanStatus::Unconfirmed {
        let _ = writeln!(
            out,
            "Not confirmed: nothing for eic-ssh to change, but {} allow(s) a prefix list whose entries it cannot check, so it cannot say that only {} can reach tcp/{} of {} (see the warnings).",
            plan.unchecked.join(", "),
            plan.allow.join(", "),
            plan.port,
            plan.instance
        );
    } else if plan.status == PlanStatus::AlreadyRestricted {
        let _ = writeln!(
            out,
            "Already restricted: only {} can reach tcp/{} of {}. Nothing to change.",
            plan.allow.join(", "),
            plan.port,
            plan.instance
        );
    } else if !plan.changes.is_empty() {
        let _ = writeln!(
            out,
            "Plan: {} change(s), in this order (an order that never opens a wider path):",
            plan.changes.len()
        );
        for c in &plan.changes {
            let undo = if c.action == Action::RevokeIngress {
                "restore"
            } else {
                "undo"
            };
            let _ = writeln!(out, "  {}. {}", c.step, c.what);
            let _ = writeln!(out, "     why: {}", c.why);
            let _ = writeln!(out, "     run: {}", c.command);
            let _ = writeln!(out, "     {undo}: {}", c.undo);
        }
    }
    if !plan.warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        for w in &plan.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    if !plan.shared_with.is_empty() {
        let _ = writeln!(
            out,
            "\nShared: the changed group(s) {} are also used by:",
            plan.touched_groups.join(", ")
        );
        for s in &plan.shared_with {
            let _ = writeln!(out, "  - {s}");
        }
        out.push_str(
            "  The changes affect them too: --apply needs --shared-ok (or give this instance a group of its own).\n",
        );
    }
    if !plan.endpoint_shared_with.is_empty() {
        let _ = writeln!(
            out,
            "\nShared: Preserve Client IP is a setting of the endpoint {}, which may also serve:",
            plan.endpoint.as_deref().unwrap_or("(unknown)")
        );
        for s in &plan.endpoint_shared_with {
            let _ = writeln!(out, "  - {s}");
        }
        out.push_str(
            "  Turning it on, their groups see each client's address instead of the endpoint's: a rule that admits the endpoint or the VPC's range stops letting anyone in through it. --apply needs --shared-ok.\n",
        );
    }
    if !plan.refusals.is_empty() {
        out.push_str("\nRefused: the restriction cannot be made this way:\n");
        for r in &plan.refusals {
            let _ = writeln!(out, "  - {r}");
        }
    }
    if !plan.end_state.is_empty() && plan.status != PlanStatus::Refused {
        let when = if plan.changes.is_empty() {
            "Now"
        } else {
            "End state"
        };
        let _ = writeln!(out, "\n{when}, as `{doctor}` judges it:");
        check_lines(&mut out, &plan.end_state);
    }
    if plan.status == PlanStatus::Changes {
        let _ = writeln!(out, "\n{}", client_line(plan));
    }
    if let Some(apply) = apply {
        match plan.status {
            PlanStatus::Changes => {
                let _ = writeln!(out, "\nDry run: nothing was changed. To apply: {apply}");
            }
            PlanStatus::Refused => out.push_str("\nNothing was changed.\n"),
            PlanStatus::AlreadyRestricted | PlanStatus::Unconfirmed => {}
        }
    }
    out
}

/// Whether this machine keeps its way in once the plan is applied.
fn client_line(plan: &Plan) -> String {
    let allow = plan.allow.join(", ");
    match &plan.client_address {
        ClientVsAllow::Inside { ip } => format!(
            "This machine's public address, {ip}, is inside {allow}: it can still connect afterwards."
        ),
        ClientVsAllow::Outside { ip } => format!(
            "Warning: this machine's public address, {ip}, is outside {allow}: once applied, it can no longer connect through the endpoint. Add it to --allow if it should."
        ),
        ClientVsAllow::Unknown { reason } => format!(
            "Could not learn this machine's public address ({reason}): make sure it is inside {allow}, or it will be shut out too (--client-ip IP checks it)."
        ),
        ClientVsAllow::NotChecked => format!(
            "Offline: not checked whether this machine's public address is inside {allow} (--client-ip IP checks it)."
        ),
    }
}

/// One line as a step finishes.
pub fn render_step(r: &StepResult) -> String {
    let label = match r.status {
        StepStatus::Done => "done",
        StepStatus::Failed => "FAILED",
        StepStatus::NotDone => "not done",
    };
    let mut line = format!("  {label} {}. {}", r.step, r.what);
    if let Some(d) = &r.detail
        && r.status == StepStatus::Done
    {
        let _ = write!(line, " ({d})");
    }
    line.push('\n');
    line
}

/// After a failure: what was done (with undo commands, last first), what
/// failed and why, and what was not done (with the commands to finish).
pub fn render_failure(results: &[StepResult], rerun: &str) -> String {
    let mut out = String::new();
    if let Some(f) = results.iter().find(|r| r.status == StepStatus::Failed) {
        let _ = writeln!(out, "\nStopped at step {}: {}", f.step, f.what);
        if let Some(d) = &f.detail {
            let _ = writeln!(out, "  error: {d}");
        }
        if let Some(h) = &f.hint {
            let _ = writeln!(out, "  hint: {h}");
        }
    }
    let done: Vec<&StepResult> = results
        .iter()
        .filter(|r| r.status == StepStatus::Done)
        .collect();
    if done.is_empty() {
        out.push_str("\nDone: nothing; every resource is as it was.\n");
    } else {
        out.push_str("\nDone (these stay in place; to undo them, run these, last first):\n");
        for r in done.iter().rev() {
            let _ = writeln!(out, "  {}. {}", r.step, r.what);
            let _ = writeln!(out, "     undo: {}", r.command);
        }
    }
    let rest: Vec<&StepResult> = results
        .iter()
        .filter(|r| r.status != StepStatus::Done)
        .collect();
    if !rest.is_empty() {
        let _ = writeln!(
            out,
            "\nNot done (to finish once the cause is fixed, rerun `{rerun}`, or run these in order):"
        );
        for r in rest {
            let _ = writeln!(out, "  {}. {}", r.step, r.what);
            let _ = writeln!(out, "     run: {}", r.command);
        }
    }
    out
}
