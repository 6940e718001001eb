//! The end of an `exec` run: the summary on stderr, `--json`, and the exit
//! status.

use std::time::Duration;

use serde::Serialize;

use super::job::Outcome;
use super::output::InstanceSink;
use crate::aws::ec2::InstanceInfo;
use crate::error::Error;

/// One instance's result, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: String,
    pub name: Option<String>,
    /// The remote exit status, or null when the command never ran.
    pub exit_status: Option<u8>,
    /// Why the instance was unreachable (or its output could not be
    /// written), or null.
    pub error: Option<String>,
    pub duration_ms: u128,
    pub stdout: String,
    pub stderr: String,
}

/// Every instance's result and the wall time.
pub struct Report {
    pub entries: Vec<Entry>,
    pub wall: Duration,
}

impl Report {
    pub fn new<'a>(
        results: impl Iterator<Item = (&'a InstanceInfo, Outcome, InstanceSink)>,
        wall: Duration,
    ) -> Report {
        let entries = results
            .map(|(info, outcome, sink)| {
                let (stdout, stderr) = sink.kept.unwrap_or_default();
                let error = outcome.error.map(|e| e.to_string()).or(sink
                    .file_error
                    .map(|e| format!("writing the output failed: {e}")));
                Entry {
                    id: info.id.clone(),
                    name: info.name.clone(),
                    exit_status: outcome.status,
                    error,
                    duration_ms: outcome.duration.as_millis(),
                    stdout: String::from_utf8_lossy(&stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&stderr).into_owned(),
                }
            })
            .collect();
        Report { entries, wall }
    }

    /// 0 when every instance ran the command and it exited 0, else 1.
    pub fn exit_status(&self) -> u8 {
        u8::from(
            self.entries.is_empty()
                || self
                    .entries
                    .iter()
                    .any(|e| e.exit_status != Some(0) || e.error.is_some()),
        )
    }

    pub fn json(&self) -> Result<String, Error> {
        serde_json::to_string_pretty(&self.entries).map_err(|e| Error::Io(e.into()))
    }

    /// Counts, then one line per instance that did not succeed.
    pub fn summary(&self) -> String {
        let label = |e: &Entry| match &e.name {
            Some(n) => format!("{n} ({})", e.id),
            None => e.id.clone(),
        };
        let unreachable: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.exit_status.is_none())
            .collect();
        let failed: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.exit_status.is_some() && (e.exit_status != Some(0) || e.error.is_some()))
            .collect();
        let succeeded = self.entries.len() - unreachable.len() - failed.len();
        let mut out = format!(
            "eic-ssh: exec on {} instance(s) in {:.2} s: {succeeded} succeeded, {} failed, {} unreachable\n",
            self.entries.len(),
            self.wall.as_secs_f64(),
            failed.len(),
            unreachable.len()
        );
        for e in failed {
            let why = match (e.exit_status, &e.error) {
                (_, Some(err)) => err.clone(),
                (Some(s), None) => format!("exit status {s}"),
                (None, None) => String::new(),
            };
            out.push_str(&format!("eic-ssh:   failed       {}: {why}\n", label(e)));
        }
        for e in unreachable {
            out.push_str(&format!(
                "eic-ssh:   unreachable  {}: {}\n",
                label(e),
                e.error.as_deref().unwrap_or("no exit status")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, status: Option<u8>, error: Option<&str>) -> Entry {
        Entry {
            id: id.into(),
            name: Some(format!("n-{id}")),
            exit_status: status,
            error: error.map(Into::into),
            duration_ms: 5,
            stdout: String::new(),
            stderr: String::new(),
        }
    }

    #[test]
    fn summary_counts_and_explains() {
        let r = Report {
            entries: vec![
                entry("i-1", Some(0), None),
                entry("i-2", Some(3), None),
                entry("i-3", None, Some("instance i-3 is stopped, not running")),
            ],
            wall: Duration::from_millis(1500),
        };
        assert_eq!(
            r.summary(),
            "eic-ssh: exec on 3 instance(s) in 1.50 s: 1 succeeded, 1 failed, 1 unreachable\n\
             eic-ssh:   failed       n-i-2 (i-2): exit status 3\n\
             eic-ssh:   unreachable  n-i-3 (i-3): instance i-3 is stopped, not running\n"
        );
        assert_eq!(r.exit_status(), 1);
        let ok = Report {
            entries: vec![entry("i-1", Some(0), None)],
            wall: Duration::ZERO,
        };
        assert_eq!(ok.exit_status(), 0);
    }
}
