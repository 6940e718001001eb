//! The flags of the connection log and of recordings, and the `log` and
//! `play` subcommands.

use std::path::PathBuf;

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use clap::Args;

use crate::audit::{self, Audit};
use crate::error::Error;

/// Where the connection log goes; global, so that every command that opens
/// a tunnel and `eic-ssh log` agree on the file.
#[derive(Debug, Clone, Default, Args)]
pub struct AuditArgs {
    /// The connection log (JSON lines) to append to, and that `eic-ssh log`
    /// reads (default: ~/.local/state/eic-ssh/connections.jsonl).
    #[arg(
        long,
        value_name = "FILE",
        env = "EIC_SSH_LOG_FILE",
        global = true,
        value_hint = clap::ValueHint::FilePath
    )]
    pub log_file: Option<PathBuf>,

    /// Keep no connection log for this run.
    #[arg(long, global = true)]
    pub no_log: bool,
}

impl AuditArgs {
    /// The log file in effect: `--log-file`, `EIC_SSH_LOG_FILE`, or the default.
    pub fn path(&self) -> PathBuf {
        self.log_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(audit::file::default_path)
    }

    /// The log for a command that opens tunnels: off with `--no-log`; a bad
    /// rotation setting is a usage error, before any network call.
    pub fn audit(&self) -> Result<Audit, Error> {
        if self.no_log {
            return Ok(Audit::off());
        }
        let rotation = audit::file::Rotation::from_env().map_err(Error::Usage)?;
        Ok(Audit::to_file(self.path(), rotation))
    }
}

/// `--record`, `--record-input`, `--no-record`.
#[derive(Debug, Clone, Default, Args)]
pub struct RecordArgs {
    /// Record the session as an asciicast v2 file (.cast, user-only) in
    /// DIR, or with no DIR in $EIC_SSH_RECORD_DIR or
    /// ~/.local/state/eic-ssh/recordings. Give DIR as --record=DIR.
    #[arg(
        long,
        value_name = "DIR",
        num_args = 0..=1,
        require_equals = true,
        env = "EIC_SSH_RECORD_DIR",
        value_hint = clap::ValueHint::DirPath
    )]
    pub record: Option<Option<PathBuf>>,

    /// Record keystrokes too (off by default: they include passwords typed
    /// at prompts).
    #[arg(long)]
    pub record_input: bool,

    /// Record nothing, even with EIC_SSH_RECORD_DIR set.
    #[arg(long)]
    pub no_record: bool,
}

impl RecordArgs {
    /// The directory to record into, if recording.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_record {
            return None;
        }
        if let Some(dir) = self.record.clone()? {
            return Some(dir);
        }
        // `--record` alone: the environment's directory, else the default.
        Some(
            std::env::var_os("EIC_SSH_RECORD_DIR")
                .map(PathBuf::from)
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or_else(|| audit::file::state_dir().join("recordings")),
        )
    }
}

/// `eic-ssh log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only connections that started since WHEN: a time back from now
    /// (30m, 2h, 7d, 1week) or a local date and time (2026-12-07,
    /// 2026-12-07T14:30, or RFC 3339 with its offset).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,

    /// Only connections to this instance: its ID, or the target as typed
    /// (a Name tag, an IP).
    #[arg(long, value_name = "INSTANCE")]
    pub instance: Option<String>,

    /// Show the N most recent connections (default 20, or all with
    /// --since; 0 for all).
    #[arg(short = 'n', long, value_name = "N")]
    pub limit: Option<usize>,

    /// Print a JSON array instead of the table: for each connection its id,
    /// whether it is open, and its start and end records as logged.
    #[arg(long, conflicts_with = "cloudtrail")]
    pub json: bool,

    /// Print the `aws cloudtrail lookup-events` commands that find
    /// connection ID's key push and tunnel in CloudTrail, by their request
    /// IDs (a unique prefix of the ID will do). AWS is not called.
    #[arg(long, value_name = "ID")]
    pub cloudtrail: Option<String>,
}

/// `eic-ssh play`.
#[derive(Debug, Args)]
pub struct PlayArgs {
    /// The recording: an asciicast file (.cast, v2 as --record writes, or v3).
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: PathBuf,

    /// Play N times as fast (e.g. 2, or 0.5 for half speed).
    #[arg(short = 's', long, value_name = "N", default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,

    /// Shorten every pause to at most SECONDS (default: the recording's own
    /// idle_time_limit, else 2; 0 keeps every pause).
    #[arg(short = 'i', long, value_name = "SECONDS", value_parser = parse_idle)]
    pub idle_time_limit: Option<f64>,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n <= 1_000_000.0 => Ok(n),
        _ => Err(format!(
            "{s:?} is not a speed: use a number above 0, e.g. 2 or 0.5"
        )),
    }
}

fn parse_idle(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of seconds (0 keeps every pause)"
        )),
    }
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    since_at(s, Utc::now(), &Local)
}

/// `--since` read against `now`, dates and times in zone `tz`.
pub fn since_at<Tz: TimeZone>(
    s: &str,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(ago) = humantime::parse_duration(s) {
        return chrono::Duration::from_std(ago)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .ok_or_else(|| format!("{s:?} reaches back too far"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    });
    match local.map(|t| tz.from_local_datetime(&t).earliest()) {
        Some(Some(t)) => Ok(t.with_timezone(&Utc)),
        _ => Err(format!(
            "{s:?} is neither a time back from now (30m, 2h, 7d) nor a date and time (2026-12-07, 2026-12-07T14:30)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_dates_and_times() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T22:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| since_at(s, now, &Utc).map(|t| t.to_rfc3339());
        assert_eq!(at("2h").unwrap(), "2026-12-07T20:00:00+00:00");
        assert_eq!(at("1day 30m").unwrap(), "2026-12-06T21:30:00+00:00");
        assert_eq!(at("2026-12-01").unwrap(), "2026-12-01T00:00:00+00:00");
        assert_eq!(at("2026-12-01T14:30").unwrap(), "2026-12-01T14:30:00+00:00");
        assert_eq!(
            at("2026-12-01T14:30:00+01:00").unwrap(),
            "2026-12-01T13:30:00+00:00"
        );
        let paris = chrono::FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            since_at("2026-12-01 14:30", now, &paris)
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T13:30:00+00:00"
        );
        for bad in ["yesterday", "2026-13-01", "-2h", ""] {
            let e = at(bad).unwrap_err();
            assert!(e.contains("time back from now"), "{bad}: {e}");
        }
    }

    fn parse(args: &[&str]) -> crate::cli::Cli {
        crate::cli::Cli::try_parse_args(std::iter::once("eic-ssh").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn record_takes_its_directory_only_after_an_equals_sign() {
        // `--record web-1` records (where the default says) and web-1 is
        // the target, never the directory.
        let cli = parse(&["--record", "web-1"]);
        assert_eq!(cli.ssh.record.record, Some(None));
        assert_eq!(cli.ssh.target.unwrap().to_string(), "web-1");
        let cli = parse(&["--record=./casts", "--record-input", "web-1"]);
        assert_eq!(cli.ssh.record.dir(), Some(PathBuf::from("./casts")));
        assert!(cli.ssh.record.record_input);
        let cli = parse(&["--record=./casts", "--no-record", "web-1"]);
        assert_eq!(cli.ssh.record.dir(), None);
    }

    #[test]
    fn the_log_flags_go_with_every_command() {
        let cli = parse(&["exec", "--no-log", "web-1", "--", "true"]);
        assert!(cli.audit.no_log);
        let cli = parse(&[
            "proxy",
            "i-0123456789abcdef0",
            "22",
            "--log-file",
            "/tmp/l.jsonl",
        ]);
        assert_eq!(cli.audit.path(), PathBuf::from("/tmp/l.jsonl"));
        let cli = parse(&["--no-log", "exec", "web-1", "--", "true"]);
        assert!(cli.audit.no_log);
        let cli = parse(&["--log-file=/tmp/l.jsonl", "log", "--since", "2h", "--json"]);
        assert!(
            matches!(cli.subcommand, Some(crate::cli::Subcommand::Log(ref a)) if a.json && a.since.is_some())
        );
        assert_eq!(cli.audit.path(), PathBuf::from("/tmp/l.jsonl"));
        let cli = parse(&["play", "-s", "4", "x.cast"]);
        assert!(
            matches!(cli.subcommand, Some(crate::cli::Subcommand::Play(ref a)) if a.speed == 4.0)
        );
    }

    #[test]
    fn speeds_and_pauses_are_checked() {
        assert_eq!(parse_speed("2"), Ok(2.0));
        assert_eq!(parse_speed("0.5"), Ok(0.5));
        for bad in ["0", "-1", "inf", "NaN", "fast"] {
            assert!(parse_speed(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_idle("0"), Ok(0.0));
        assert!(parse_idle("-1").is_err());
    }
}
