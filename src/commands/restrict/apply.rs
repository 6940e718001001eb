//! Making the plan's changes, in order, stopping at the first failure.

use serde::Serialize;

use crate::access::plan::{Action, Change, Plan};
use crate::access::writes;
use crate::error::Error;

/// What happened to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Done,
    Failed,
    NotDone,
}

/// One step's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: usize,
    pub status: StepStatus,
    pub what: String,
    /// New rule ids, or the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For a failure: the permission to grant, when it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Done: the command that undoes it. Not done: the command that does it.
    pub command: String,
}

/// The permission an API call needs.
pub fn permission(op: &str) -> String {
    format!("ec2:{op}")
}

/// Whether an error is a refusal by IAM.
fn is_denied(code: &str) -> bool {
    matches!(
        code,
        "UnauthorizedOperation"
            | "AccessDenied"
            | "AccessDeniedException"
            | "Client.UnauthorizedOperation"
    )
}

async fn run_step(ec2: &aws_sdk_ec2::Client, c: &Change) -> Result<Option<String>, Error> {
    match (c.action, &c.rule) {
        (Action::AuthorizeIngress | Action::AuthorizeEgress, Some(rule)) => {
            match writes::authorize(ec2, rule).await {
                Ok(ids) => Ok(Some(format!("added {}", ids.join(", ")))),
                // Already there (e.g. a rerun after a partial apply).
                Err(Error::Api { code, .. }) if code == "InvalidPermission.Duplicate" => {
                    Ok(Some("already there".into()))
                }
                Err(e) => Err(e),
            }
        }
        (Action::RevokeIngress, Some(rule)) => {
            writes::revoke_ingress(ec2, rule).await?;
            Ok(None)
        }
        (Action::PreserveClientIp, _) => {
            let ep = writes::preserve_client_ip(ec2, &c.resource).await?;
            Ok(Some(format!("{} is {}", ep.id, ep.state)))
        }
        _ => Err(Error::Internal(format!(
            "step {} has no rule to apply",
            c.step
        ))),
    }
}

/// Apply every change in order; after the first failure the rest are not
/// tried. `progress` sees each result as it happens.
pub async fn apply(
    ec2: &aws_sdk_ec2::Client,
    plan: &Plan,
    mut progress: impl FnMut(&StepResult),
) -> Vec<StepResult> {
    let mut out = Vec::new();
    let mut failed = false;
    for c in &plan.changes {
        let result = if failed {
            StepResult {
                step: c.step,
                status: StepStatus::NotDone,
                what: c.what.clone(),
                detail: None,
                hint: None,
                command: c.command.clone(),
            }
        } else {
            match run_step(ec2, c).await {
                Ok(detail) => StepResult {
                    step: c.step,
                    status: StepStatus::Done,
                    what: c.what.clone(),
                    detail,
                    hint: None,
                    command: c.undo.clone(),
                },
                Err(e) => {
                    failed = true;
                    let hint = match &e {
                        Error::Api { op, code, .. } if is_denied(code) => Some(format!(
                            "grant {} on {} to the identity running eic-ssh restrict",
                            permission(op),
                            c.resource
                        )),
                        _ => None,
                    };
                    StepResult {
                        step: c.step,
                        status: StepStatus::Failed,
                        what: c.what.clone(),
                        detail: Some(crate::error::chain(&e)),
                        hint,
                        command: c.command.clone(),
                    }
                }
            }
        };
        progress(&result);
        out.push(result);
    }
    out
}

/// Whether every step was done.
pub fn all_done(results: &[StepResult]) -> bool {
    results.iter().all(|r| r.status == StepStatus::Done)
}
