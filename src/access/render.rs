//! The human checklist.

use super::matching::join;
use super::model::*;

/// The human checklist; `color` paints the verdicts.
pub fn render(f: &Facts, checks: &[Check], color: bool) -> String {
    let mut out = format!(
        "eic-ssh doctor: {} port {}{}\n\n",
        f.instance_id,
        f.port,
        if f.expect.is_empty() {
            String::new()
        } else {
            format!(
                ", expecting only {}",
                join(f.expect.iter().map(ToString::to_string))
            )
        }
    );
    for c in checks {
        out.push_str(&format!(
            "{} {}. {:<17} {}\n",
            paint_status(c.status, color),
            c.id,
            c.name,
            c.message
        ));
        if let Some(fix) = &c.fix {
            for (i, line) in fix.lines().enumerate() {
                let lead = if i == 0 { "fix:" } else { " or:" };
                out.push_str(&format!("        {lead} {line}\n"));
            }
        }
        for d in &c.details {
            out.push_str(&format!("        - {d}\n"));
        }
    }
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "\n{} passed, {} failed, {} warning(s), {} skipped.\n",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Skip)
    ));
    out
}

fn paint_status(status: Status, color: bool) -> String {
    let code = match status {
        Status::Pass => "32",
        Status::Warn => "33",
        Status::Fail => "1;31",
        Status::Skip => "2",
    };
    crate::term::color::paint(color, code, status.label())
}
