//! The asciicast format: a JSON header line, then one JSON array per event.
//! Version 2 (what `--record` writes, and `asciinema play` reads) stamps
//! each event with its time since the start; version 3 (asciinema 3's)
//! with the time since the previous event. Both are read.
//!
//! A recording may come from anyone: every field is checked as it is read,
//! and nothing in it is trusted beyond being text to write to a terminal.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version-2 header, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u8,
    pub width: u32,
    pub height: u32,
    /// The start, in seconds since the Unix epoch.
    pub timestamp: u64,
    pub title: String,
    pub env: Env,
}

/// The terminal's environment: `TERM` (and `SHELL`, which a remote session
/// does not know).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Env {
    #[serde(rename = "TERM")]
    pub term: String,
}

/// What a player needs from a header, whichever the version.
#[derive(Debug, Clone, PartialEq)]
pub struct Format {
    pub version: u8,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub idle_time_limit: Option<f64>,
}

/// One event, with its time since the start of the recording.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Bytes for the terminal (`o`).
    Output(f64, String),
    /// Anything else: input, resizes, markers, the exit (`i`, `r`, `m`, `x`).
    Other(f64),
}

impl Event {
    /// Its time since the start, in seconds.
    pub fn time(&self) -> f64 {
        match self {
            Event::Output(t, _) | Event::Other(t) => *t,
        }
    }
}

/// Read a header line.
pub fn parse_header(line: &str) -> Result<Format, String> {
    let v: Value = serde_json::from_str(line)
        .map_err(|e| format!("its first line is not an asciicast header ({e})"))?;
    let version = v.get("version").and_then(Value::as_u64);
    let (width, height) = match version {
        Some(2) => (
            v.get("width").and_then(Value::as_u64),
            v.get("height").and_then(Value::as_u64),
        ),
        Some(3) => {
            let term = v.get("term");
            (
                term.and_then(|t| t.get("cols")).and_then(Value::as_u64),
                term.and_then(|t| t.get("rows")).and_then(Value::as_u64),
            )
        }
        Some(n) => {
            return Err(format!(
                "it is asciicast version {n}; versions 2 and 3 play"
            ));
        }
        None => return Err("its first line is not an asciicast header (no version)".into()),
    };
    let idle_time_limit = v
        .get("idle_time_limit")
        .and_then(Value::as_f64)
        .filter(|t| t.is_finite() && *t > 0.0);
    Ok(Format {
        version: version.map(|n| n as u8).unwrap_or(2),
        width,
        height,
        idle_time_limit,
    })
}

/// Read the events after the header, turning version 3's intervals into
/// times since the start. Times must be numbers of seconds, not negative.
pub struct Events {
    version: u8,
    elapsed: f64,
}

impl Events {
    pub fn new(format: &Format) -> Events {
        Events {
            version: format.version,
            elapsed: 0.0,
        }
    }

    /// One event line; `None` for a blank line or (in version 3) a comment.
    pub fn parse(&mut self, line: &str) -> Result<Option<Event>, String> {
        let line = line.trim();
        if line.is_empty() || (self.version == 3 && line.starts_with('#')) {
            return Ok(None);
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("an event is not JSON ({e})"))?;
        let Some([time, code, data, ..]) = v.as_array().map(Vec::as_slice) else {
            return Err("an event is not [time, code, data]".into());
        };
        let t = time
            .as_f64()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or("an event's time is not a number of seconds")?;
        let t = match self.version {
            3 => {
                self.elapsed += t;
                self.elapsed
            }
            _ => t,
        };
        Ok(Some(match (code.as_str(), data.as_str()) {
            (Some("o"), Some(text)) => Event::Output(t, text.to_owned()),
            (Some(_), _) => Event::Other(t),
            (None, _) => return Err("an event's code is not a string".into()),
        }))
    }
}

/// An event line as `--record` writes it: `[time, code, data]`, the time to
/// the microsecond, as asciinema writes it.
pub fn event_line(time: f64, code: &str, data: &str) -> String {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "\"\"".into());
    format!("[{time:.6}, \"{code}\", {data}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_2_headers_and_events_read_back() {
        let header = Header {
            version: 2,
            width: 100,
            height: 30,
            timestamp: 1_765_151_458,
            title: "eic-ssh ec2-user@i-0123".into(),
            env: Env {
                term: "xterm-256color".into(),
            },
        };
        let line = serde_json::to_string(&header).unwrap();
        assert!(line.contains("\"TERM\":\"xterm-256color\""), "{line}");
        let f = parse_header(&line).unwrap();
        assert_eq!((f.version, f.width, f.height), (2, Some(100), Some(30)));
        assert_eq!(f.idle_time_limit, None);
        let mut events = Events::new(&f);
        let out = event_line(1.5, "o", "a\u{1b}[1m\"b\"\r\n");
        assert_eq!(out, r#"[1.500000, "o", "a\u001b[1m\"b\"\r\n"]"#);
        assert_eq!(
            events.parse(&out).unwrap(),
            Some(Event::Output(1.5, "a\u{1b}[1m\"b\"\r\n".into()))
        );
        assert_eq!(
            events.parse(&event_line(2.0, "r", "80x24")).unwrap(),
            Some(Event::Other(2.0))
        );
        assert_eq!(events.parse("").unwrap(), None);
    }

    #[test]
    fn version_3_intervals_become_times() {
        let f = parse_header(
            r#"{"version":3,"term":{"cols":80,"rows":24,"type":"xterm"},"idle_time_limit":1.5}"#,
        )
        .unwrap();
        assert_eq!(
            (f.width, f.height, f.idle_time_limit),
            (Some(80), Some(24), Some(1.5))
        );
        let mut events = Events::new(&f);
        assert_eq!(events.parse("# a comment").unwrap(), None);
        assert_eq!(
            events.parse(r#"[0.5, "o", "a"]"#).unwrap(),
            Some(Event::Output(0.5, "a".into()))
        );
        assert_eq!(
            events.parse(r#"[0.25, "i", "b"]"#).unwrap(),
            Some(Event::Other(0.75))
        );
        assert_eq!(
            events.parse(r#"[1, "o", "c"]"#).unwrap(),
            Some(Event::Output(1.75, "c".into()))
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert!(
            parse_header("hello")
                .unwrap_err()
                .contains("not an asciicast header")
        );
        assert!(
            parse_header(r#"{"version":1}"#)
                .unwrap_err()
                .contains("version 1")
        );
        let mut events = Events::new(&parse_header(r#"{"version":2}"#).unwrap());
        for (line, says) in [
            ("[", "not JSON"),
            (r#"{"a":1}"#, "not [time, code, data]"),
            (r#"[-1, "o", "x"]"#, "not a number of seconds"),
            (r#"["1", "o", "x"]"#, "not a number of seconds"),
            (r#"[1, 2, "x"]"#, "code is not a string"),
        ] {
            assert!(events.parse(line).unwrap_err().contains(says), "{line}");
        }
    }
}
