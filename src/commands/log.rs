//! `eic-ssh log`: the connection log as a table of recent connections, as
//! JSON, or as the CloudTrail lookup that finds one connection.

use std::fmt::Display;
use std::path::Path;

use chrono::{Local, TimeZone};
use serde_json::{Value, json};

use crate::audit::cloudtrail;
use crate::audit::read::{self, Logged};
use crate::cli::LogArgs;
use crate::error::Error;
use crate::term::{self, table};
use crate::text::printable;

/// How many connections the table shows when neither `-n` nor `--since`
/// says.
const DEFAULT_LIMIT: usize = 20;

/// Show the log at `path` as `args` ask.
pub fn run(args: &LogArgs, path: &Path) -> Result<u8, Error> {
    let contents = read::read(path).map_err(|e| Error::ConnectionLog {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if contents.skipped > 0 {
        term::notice(&format!(
            "warning: skipped {} line(s) of {} that are not connection records",
            contents.skipped,
            path.display()
        ));
    }
    if let Some(id) = &args.cloudtrail {
        return cloudtrail(&contents.connections, id, path);
    }
    let mut shown: Vec<&Logged> = contents
        .connections
        .iter()
        .filter(|c| match (args.since, c.time()) {
            (Some(since), Some(t)) => t >= since,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .filter(|c| {
            args.instance.as_deref().is_none_or(|want| {
                c.field("instance_id") == Some(want) || typed_target(c).as_deref() == Some(want)
            })
        })
        .collect();
    let limit = args.limit.unwrap_or(if args.since.is_some() {
        0
    } else {
        DEFAULT_LIMIT
    });
    if limit > 0 && shown.len() > limit {
        shown.drain(..shown.len() - limit);
    }
    if args.json {
        let all: Vec<Value> = shown
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "open": is_open(c),
                    "start": c.start,
                    "end": c.end,
                })
            })
            .collect();
        let text =
            serde_json::to_string_pretty(&all).map_err(|e| Error::Internal(e.to_string()))?;
        term::out(&format!("{text}\n"))?;
        return Ok(0);
    }
    if shown.is_empty() {
        term::notice(&format!(
            "no connections to show in {}{}",
            path.display(),
            if contents.connections.is_empty() {
                " (none logged yet)"
            } else {
                ""
            }
        ));
        return Ok(0);
    }
    let mut rows = vec![
        [
            "TIME", "ID", "KIND", "INSTANCE", "WHO", "DURATION", "STATUS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    rows.extend(shown.iter().map(|c| row(c, is_open(c), &Local)));
    let mut text = String::new();
    for line in table::render(&rows) {
        text.push_str(&line);
        text.push('\n');
    }
    term::out(&text)?;
    Ok(0)
}

/// The target as typed, without its `user@`.
fn typed_target(c: &Logged) -> Option<String> {
    let t = c.field("target")?;
    Some(match t.split_once('@') {
        Some((_, rest)) if !t.starts_with("tag:") => rest.to_owned(),
        _ => t.to_owned(),
    })
}

/// Whether a connection with no end line is still going: its process runs.
fn is_open(c: &Logged) -> bool {
    if c.end.is_some() {
        return false;
    }
    let pid = c
        .start
        .as_ref()
        .and_then(|s| s.get("pid"))
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw);
    match pid {
        // Signal 0: only whether the process exists (EPERM: it does, as
        // another user's).
        Some(pid) => match rustix::process::test_kill_process(pid) {
            Ok(()) => true,
            Err(e) => e == rustix::io::Errno::PERM,
        },
        None => false,
    }
}

/// One row of the table, times in `tz`.
fn row<Tz: TimeZone>(c: &Logged, open: bool, tz: &Tz) -> Vec<String>
where
    Tz::Offset: Display,
{
    let time = c
        .time()
        .map(|t| t.with_timezone(tz).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "?".into());
    let text = |name: &str| c.field(name).map(printable).unwrap_or_default();
    let instance = match (text("instance_id"), typed_target(c)) {
        (id, Some(t)) if t != id && !t.is_empty() => format!("{id} ({})", printable(&t)),
        (id, _) => id,
    };
    let who = match c.field("os_user") {
        Some(os) => format!("{} as {}", text("local_user"), printable(os)),
        None => text("local_user"),
    };
    let duration = c
        .end_field("duration_ms")
        .and_then(Value::as_u64)
        .map(human_duration)
        .unwrap_or_else(|| "-".into());
    vec![
        time,
        c.id.clone(),
        text("kind"),
        instance,
        who,
        duration,
        status(c, open),
    ]
}

/// How it ended, in a few words.
fn status(c: &Logged, open: bool) -> String {
    let Some(end) = &c.end else {
        return match open {
            true => "open".into(),
            false => "no end line: its process is gone".into(),
        };
    };
    let exit = end.get("exit_status").and_then(Value::as_u64);
    match end.get("error").and_then(Value::as_str) {
        Some(e) => {
            let first = printable(e.lines().next().unwrap_or_default());
            let short: String = first.chars().take(60).collect();
            let cut = if short.len() < first.len() { "…" } else { "" };
            match exit {
                Some(n) => format!("exit {n}: {short}{cut}"),
                None => format!("{short}{cut}"),
            }
        }
        None => match exit {
            Some(n) => format!("exit {n}"),
            None => "closed".into(),
        },
    }
}

/// `850 ms`, `12.3 s`, `4m 05s`, `1h 02m`.
fn human_duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h {:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// `--cloudtrail ID`: the lookups for the one connection ID (or a unique
/// prefix of it) names, as shell lines with comments.
fn cloudtrail(all: &[Logged], id: &str, path: &Path) -> Result<u8, Error> {
    let id = id.trim();
    let matching: Vec<&Logged> = match all.iter().find(|c| c.id == id) {
        Some(c) => vec![c],
        None => all
            .iter()
            .filter(|c| !id.is_empty() && c.id.starts_with(id))
            .collect(),
    };
    let c = match matching.as_slice() {
        [c] => *c,
        [] => {
            return Err(Error::NoSuchConnection {
                id: printable(id),
                path: path.to_owned(),
            });
        }
        many => {
            return Err(Error::AmbiguousConnection {
                id: printable(id),
                count: many.len(),
                path: path.to_owned(),
            });
        }
    };
    let lookups = cloudtrail::lookups(c).map_err(|reason| Error::NoLookup {
        id: c.id.clone(),
        reason,
    })?;
    let when = c
        .time()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let mut text = format!(
        "# connection {} to {} at {when}: in CloudTrail within about 15 minutes, for 90 days\n",
        c.id,
        c.field("instance_id").map(printable).unwrap_or_default()
    );
    for l in lookups {
        text.push_str(&format!("# {}\n{}\n", l.finds, l.command));
    }
    term::out(&text)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn logged(start: Value, end: Option<Value>) -> Logged {
        Logged {
            id: start["id"].as_str().unwrap_or("x").to_owned(),
            start: Some(start),
            end,
        }
    }

    #[test]
    fn rows_say_when_where_who_how_long_and_how_it_ended() {
        let start = json!({"event":"start","id":"0123456789ab","time":"2026-12-07T22:50:58.123Z",
            "kind":"session","local_user":"alice","instance_id":"i-0123456789abcdef0",
            "target":"ec2-user@web-1","os_user":"ec2-user","pid":1});
        let end = json!({"event":"end","id":"0123456789ab","duration_ms":245_000,"exit_status":0,"error":null});
        let paris = chrono::FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            row(&logged(start.clone(), Some(end)), false, &paris),
            [
                "2026-12-07 23:50:58",
                "0123456789ab",
                "session",
                "i-0123456789abcdef0 (web-1)",
                "alice as ec2-user",
                "4m 05s",
                "exit 0"
            ]
        );
        let failed = json!({"duration_ms":850,"exit_status":255,
            "error":"the tunnel was cut mid-stream after 10 bytes received and 20 bytes sent: \u{1b}[31mreset\nmore"});
        let r = row(&logged(start.clone(), Some(failed)), false, &Utc);
        assert_eq!(r[5], "850 ms");
        assert_eq!(
            r[6],
            "exit 255: the tunnel was cut mid-stream after 10 bytes received and 20…"
        );
        assert_eq!(row(&logged(start.clone(), None), true, &Utc)[6], "open");
        assert!(row(&logged(start, None), false, &Utc)[6].starts_with("no end line"));
        let tunnel = json!({"event":"start","id":"b","time":"2026-12-07T22:50:58Z","kind":"tunnel",
            "local_user":"alice","instance_id":"i-1","target":"i-1","os_user":null});
        let r = row(
            &logged(tunnel, Some(json!({"duration_ms":4_000_000}))),
            false,
            &Utc,
        );
        assert_eq!(
            (r[3].as_str(), r[4].as_str(), r[5].as_str(), r[6].as_str()),
            ("i-1", "alice", "1h 06m", "closed")
        );
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(human_duration(0), "0 ms");
        assert_eq!(human_duration(12_345), "12.3 s");
        assert_eq!(human_duration(3_599_999), "59m 59s");
        assert_eq!(human_duration(3_600_000), "1h 00m");
    }
}
