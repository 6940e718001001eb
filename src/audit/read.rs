//! Reading the log back: the current file and its rotated ones, oldest
//! first, each connection's `start` and `end` lines paired by ID. The
//! records are kept as they were written (every field, known or not), so
//! `eic-ssh log --json` gives back exactly what the file holds.

use std::collections::HashMap;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One connection as the log tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub id: String,
    /// The `start` line; `None` when it was rotated away before its end.
    pub start: Option<Value>,
    /// The `end` line; `None` while the connection is open, or when its
    /// process was killed before it could write one.
    pub end: Option<Value>,
}

impl Logged {
    /// A field of the start line, else of the end line, as text.
    pub fn field(&self, name: &str) -> Option<&str> {
        [&self.start, &self.end]
            .into_iter()
            .flatten()
            .find_map(|r| r.get(name).and_then(Value::as_str))
    }

    /// A field of the end line.
    pub fn end_field(&self, name: &str) -> Option<&Value> {
        self.end.as_ref().and_then(|e| e.get(name))
    }

    /// When it started (or, with its start line gone, ended).
    pub fn time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let text = self.field("time")?;
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// What reading the log found.
#[derive(Debug, Default)]
pub struct LogContents {
    /// In the order they started.
    pub connections: Vec<Logged>,
    /// Lines that are not a record (a torn or hand-edited line).
    pub skipped: usize,
}

/// The files of the log at `path`, oldest first: `path.N` … `path.1`, then
/// `path` itself; those that do not exist are left out.
pub fn files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut rotated: Vec<(u32, PathBuf)> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| {
                let file = e.file_name();
                let n = file
                    .to_str()?
                    .strip_prefix(name.as_ref())?
                    .strip_prefix('.')?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    rotated.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let mut all: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        all.push(path.to_owned());
    }
    Ok(all)
}

/// Read every file of the log at `path` and pair the lines.
pub fn read(path: &Path) -> io::Result<LogContents> {
    let mut lines = Vec::new();
    for file in files(path)? {
        let f = match std::fs::File::open(&file) {
            Ok(f) => f,
            // Rotated away between the listing and now.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in io::BufReader::new(f).split(b'\n') {
            lines.push(line?);
        }
    }
    Ok(pair(lines.iter().map(|l| String::from_utf8_lossy(l))))
}

/// Pair `start` and `end` lines by ID, in the order the connections started.
pub fn pair<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> LogContents {
    let mut out = LogContents::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    for line in lines {
        let line = line.as_ref().trim();
        if line.is_empty() {
            continue;
        }
        let record: Option<Value> = serde_json::from_str(line).ok();
        let parts = record.as_ref().and_then(|r| {
            Some((
                r.get("event")?.as_str()?.to_owned(),
                r.get("id")?.as_str()?.to_owned(),
            ))
        });
        let (Some(record), Some((event, id))) = (record.clone(), parts) else {
            out.skipped += 1;
            continue;
        };
        let at = *index.entry(id.clone()).or_insert_with(|| {
            out.connections.push(Logged {
                id,
                start: None,
                end: None,
            });
            out.connections.len() - 1
        });
        let slot = match event.as_str() {
            "start" => &mut out.connections[at].start,
            "end" => &mut out.connections[at].end,
            _ => {
                out.skipped += 1;
                continue;
            }
        };
        if slot.is_some() {
            // A second line of the same kind for one ID: not ours.
            out.skipped += 1;
        } else {
            *slot = Some(record);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_and_ends_pair_by_id_in_start_order() {
        let lines = [
            r#"{"event":"start","id":"a","time":"2026-01-01T00:00:00.000Z","extra":[1]}"#,
            r#"{"event":"start","id":"b","time":"2026-01-01T00:00:01.000Z"}"#,
            "torn {\"event\":",
            r#"{"event":"end","id":"b","exit_status":0}"#,
            r#"{"event":"end","id":"gone","exit_status":1}"#,
            "",
        ];
        let c = pair(lines);
        assert_eq!(c.skipped, 1);
        let ids: Vec<&str> = c.connections.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "gone"]);
        assert!(c.connections[0].end.is_none());
        // Unknown fields are kept as they were.
        assert_eq!(
            c.connections[0].start.as_ref().unwrap()["extra"],
            serde_json::json!([1])
        );
        assert_eq!(c.connections[1].end_field("exit_status"), Some(&0.into()));
        assert!(c.connections[2].start.is_none());
        assert_eq!(
            c.connections[1].time().unwrap().to_rfc3339(),
            "2026-01-01T00:00:01+00:00"
        );
    }

    #[test]
    fn rotated_files_are_read_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(
            dir.path().join("c.jsonl.2"),
            "{\"event\":\"start\",\"id\":\"1\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("c.jsonl.10"),
            "{\"event\":\"start\",\"id\":\"0\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("c.jsonl.1"),
            "{\"event\":\"end\",\"id\":\"1\"}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("c.jsonl.x"), "not ours").unwrap();
        std::fs::write(&path, "{\"event\":\"start\",\"id\":\"2\"}\n").unwrap();
        let names: Vec<String> = files(&path)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["c.jsonl.10", "c.jsonl.2", "c.jsonl.1", "c.jsonl"]);
        let c = read(&path).unwrap();
        let ids: Vec<&str> = c.connections.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["0", "1", "2"]);
        assert!(c.connections[1].start.is_some() && c.connections[1].end.is_some());
        // No log yet: nothing, not an error.
        let none = read(&dir.path().join("none.jsonl")).unwrap();
        assert!(none.connections.is_empty());
    }
}
