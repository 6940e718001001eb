//! `eic-ssh log --cloudtrail ID`: the `aws cloudtrail lookup-events`
//! commands that find a connection's key push (`SendSSHPublicKey`) and its
//! tunnel (`OpenTunnel`) in CloudTrail, by the request IDs the log kept.
//!
//! CloudTrail cannot look an event up by its request ID, so each command
//! asks for the event name within ten minutes around the connection's
//! start, and keeps the events whose record holds one of the request IDs
//! (a JMESPath `--query`, applied by the AWS CLI after it has paged through
//! the answer). Nothing here calls AWS.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::read::Logged;

/// One command, and what it finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// e.g. `the key push (SendSSHPublicKey)`.
    pub finds: String,
    /// The command line, quoted for a POSIX shell.
    pub command: String,
}

/// How far either side of the connection's start the events are looked
/// for: CloudTrail stamps an event with its request's time, seconds before
/// the `start` line.
const WINDOW: i64 = 5;

/// The lookups for `c`: one per event name that has request IDs. The
/// command lines are for a shell: whatever in the log could not go into
/// one safely is refused.
pub fn lookups(c: &Logged) -> Result<Vec<Lookup>, String> {
    let start = c.start.as_ref().ok_or_else(|| {
        format!(
            "the start line of {} is no longer in the log (rotated away), and with it the request IDs",
            c.id
        )
    })?;
    let text = |name: &str| start.get(name).and_then(|v| v.as_str());
    let time = text("time")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("the start line of {} has no valid time", c.id))?;
    let region = text("region")
        .filter(|r| crate::aws::region_name(r).is_ok())
        .ok_or_else(|| format!("the start line of {} has no valid region", c.id))?;
    let profile = text("aws_profile").filter(|p| !p.is_empty() && *p != "default");
    // Quoted for the shell below; a control character has no place in it.
    let profile = match profile {
        Some(p) if p.chars().any(char::is_control) => {
            return Err(format!(
                "the start line of {} names a profile with control characters",
                c.id
            ));
        }
        Some(p) => Some(
            shlex::try_quote(p)
                .map_err(|e| format!("the profile {p:?} cannot be quoted: {e}"))?
                .into_owned(),
        ),
        None => None,
    };

    let mut pushes: Vec<&str> = text("push_request_id").into_iter().collect();
    if let Some(later) = c.end_field("later_pushes").and_then(|v| v.as_array()) {
        pushes.extend(
            later
                .iter()
                .filter_map(|p| p.get("request_id").and_then(|v| v.as_str())),
        );
    }
    let tunnels: Vec<&str> = text("tunnel_request_id").into_iter().collect();

    let mut out = Vec::new();
    for (event, what, ids) in [
        ("SendSSHPublicKey", "the key push", pushes),
        ("OpenTunnel", "the tunnel", tunnels),
    ] {
        if ids.is_empty() {
            continue;
        }
        if let Some(bad) = ids.iter().find(|id| !is_request_id(id)) {
            return Err(format!(
                "the log holds {bad:?} as a request ID of {}, which is not one AWS issues",
                c.id
            ));
        }
        out.push(Lookup {
            finds: format!("{what} ({event}, request {})", ids.join(", ")),
            command: command(event, &ids, time, region, profile.as_deref()),
        });
    }
    if out.is_empty() {
        return Err(format!(
            "{} has no request IDs in the log (the service answered without them)",
            c.id
        ));
    }
    Ok(out)
}

/// What AWS request IDs look like: letters, digits and dashes. Anything
/// else in the log must not reach a shell command.
fn is_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn command(
    event: &str,
    ids: &[&str],
    time: DateTime<Utc>,
    region: &str,
    profile: Option<&str>,
) -> String {
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let window = Duration::minutes(WINDOW);
    // The region was checked to be a region's name; the profile comes
    // quoted.
    let mut line = vec![
        "aws cloudtrail lookup-events --region".to_owned(),
        region.to_owned(),
    ];
    if let Some(p) = profile {
        line.push("--profile".into());
        line.push(p.to_owned());
    }
    line.extend([
        "--start-time".into(),
        at(time - window),
        "--end-time".into(),
        at(time + window),
        "--lookup-attributes".into(),
        format!("AttributeKey=EventName,AttributeValue={event}"),
    ]);
    // The IDs were checked to be letters, digits and dashes: safe inside
    // double quotes, which keep the query's own single quotes.
    let matches: Vec<String> = ids
        .iter()
        .map(|id| format!("contains(CloudTrailEvent, '{id}')"))
        .collect();
    line.push("--query".into());
    line.push(format!("\"Events[?{}]\"", matches.join(" || ")));
    line.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn logged(start: serde_json::Value, end: Option<serde_json::Value>) -> Logged {
        Logged {
            id: "0123456789ab".into(),
            start: Some(start),
            end,
        }
    }

    #[test]
    fn both_events_are_looked_up_by_their_request_ids() {
        let c = logged(
            json!({"event":"start","id":"0123456789ab","time":"2026-12-07T22:50:58.123Z",
                   "region":"eu-west-1","aws_profile":"prod admin",
                   "push_request_id":"1b2c3d4e-0000-4000-8000-000000000001",
                   "tunnel_request_id":"9f8e7d6c-0000-4000-8000-000000000002"}),
            Some(json!({"event":"end","id":"0123456789ab",
                        "later_pushes":[{"request_id":"5a5a5a5a-0000-4000-8000-000000000003"}]})),
        );
        let l = lookups(&c).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[0].command,
            "aws cloudtrail lookup-events --region eu-west-1 --profile 'prod admin' \
             --start-time 2026-12-07T22:45:58Z --end-time 2026-12-07T22:55:58Z \
             --lookup-attributes AttributeKey=EventName,AttributeValue=SendSSHPublicKey \
             --query \"Events[?contains(CloudTrailEvent, '1b2c3d4e-0000-4000-8000-000000000001') || contains(CloudTrailEvent, '5a5a5a5a-0000-4000-8000-000000000003')]\""
        );
        assert!(l[1].finds.starts_with("the tunnel (OpenTunnel"));
        assert!(
            l[1].command
                .contains("AttributeValue=OpenTunnel --query \"Events[?contains(CloudTrailEvent, '9f8e7d6c-0000-4000-8000-000000000002')]\""),
            "{}",
            l[1].command
        );
    }

    #[test]
    fn the_default_profile_is_not_named() {
        let c = logged(
            json!({"time":"2026-12-07T22:50:58Z","region":"us-east-1","aws_profile":"default",
                   "tunnel_request_id":"abc-123"}),
            None,
        );
        let l = lookups(&c).unwrap();
        assert_eq!(l.len(), 1);
        assert!(!l[0].command.contains("--profile"), "{}", l[0].command);
    }

    #[test]
    fn what_could_reach_a_shell_is_refused() {
        for bad in ["x'; rm -rf ~; '", "a\"b", "$(id)", ""] {
            let c = logged(
                json!({"time":"2026-12-07T22:50:58Z","region":"us-east-1",
                       "tunnel_request_id": bad}),
                None,
            );
            let e = lookups(&c).unwrap_err();
            assert!(e.contains("not one AWS issues"), "{bad}: {e}");
        }
        let c = logged(
            json!({"time":"2026-12-07T22:50:58Z","region":"us-east-1; id",
                   "tunnel_request_id":"abc"}),
            None,
        );
        assert!(lookups(&c).unwrap_err().contains("region"));
        let c = logged(
            json!({"time":"2026-12-07T22:50:58Z","region":"us-east-1","aws_profile":"$(id)",
                   "tunnel_request_id":"abc"}),
            None,
        );
        assert!(
            lookups(&c).unwrap()[0]
                .command
                .contains("--profile '$(id)' ")
        );
        let c = logged(
            json!({"time":"2026-12-07T22:50:58Z","region":"us-east-1","aws_profile":"a\nb",
                   "tunnel_request_id":"abc"}),
            None,
        );
        assert!(lookups(&c).unwrap_err().contains("control characters"));
        let gone = Logged {
            id: "x".into(),
            start: None,
            end: Some(json!({})),
        };
        assert!(lookups(&gone).unwrap_err().contains("rotated away"));
    }
}
