//! Writing a recording as the session runs: each event is one line, written
//! at once (a recording cut by `kill -9` keeps what came before), to a
//! user-only file that is never overwritten.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use super::cast::{self, Env, Header};
use crate::error::Error;

/// What the header says about a session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The instance, for the file's name.
    pub instance_id: String,
    /// e.g. `eic-ssh ec2-user@i-0123… (web-1)`.
    pub title: String,
    pub width: u32,
    pub height: u32,
    pub term: String,
    /// The connection's ID in the log, for the file's name.
    pub connection_id: Option<String>,
}

/// A recording being written. Shared by the session's output, its input
/// pump and its resize handler.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    started: Instant,
    input: bool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// `None` once a write failed: the session goes on unrecorded.
    file: Option<File>,
    output: Utf8Stream,
    input: Utf8Stream,
}

/// Check, before connecting, that recordings can be written in `dir`
/// (made user-only if it is missing).
pub fn check_dir(dir: &Path) -> Result<(), Error> {
    let bad = |reason: String| Error::Recording {
        path: dir.to_owned(),
        reason,
    };
    crate::audit::file::create_private_dir(dir).map_err(|e| bad(e.to_string()))?;
    if !dir.is_dir() {
        return Err(bad("it is not a directory".into()));
    }
    rustix::fs::access(
        dir,
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
    )
    .map_err(|e| bad(std::io::Error::from(e).to_string()))
}

impl Recorder {
    /// Start a recording of `session` in `dir` (made user-only if missing),
    /// keystrokes included only with `input`.
    pub fn create(dir: &Path, session: &Session, input: bool) -> Result<Recorder, Error> {
        let bad = |reason: String| Error::Recording {
            path: dir.to_owned(),
            reason,
        };
        crate::audit::file::create_private_dir(dir).map_err(|e| bad(e.to_string()))?;
        let now = SystemTime::now();
        let stamp = chrono::DateTime::<chrono::Utc>::from(now).format("%Y%m%dT%H%M%SZ");
        let tag = session
            .connection_id
            .clone()
            .unwrap_or_else(|| format!("{:06x}", rand::random::<u32>() & 0xff_ffff));
        // An instance ID is letters, digits and dashes: keep nothing else
        // in a file name.
        let instance: String = session
            .instance_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let path = dir.join(format!("{stamp}-{instance}-{tag}.cast"));
        let bad = |reason: String| Error::Recording {
            path: path.clone(),
            reason,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| bad(e.to_string()))?;
        let header = Header {
            version: 2,
            width: session.width,
            height: session.height,
            timestamp: now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            title: session.title.clone(),
            env: Env {
                term: session.term.clone(),
            },
        };
        let line = serde_json::to_string(&header).map_err(|e| bad(e.to_string()))?;
        writeln!(file, "{line}").map_err(|e| bad(e.to_string()))?;
        Ok(Recorder {
            path,
            started: Instant::now(),
            input,
            state: Mutex::new(State {
                file: Some(file),
                output: Utf8Stream::default(),
                input: Utf8Stream::default(),
            }),
        })
    }

    /// The recording's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes the remote side sent to the terminal.
    pub fn output(&self, bytes: &[u8]) {
        self.event("o", |s| s.output.decode(bytes));
    }

    /// Bytes typed (sent to the remote side); kept only with
    /// `--record-input`.
    pub fn input(&self, bytes: &[u8]) {
        if self.input {
            self.event("i", |s| s.input.decode(bytes));
        }
    }

    /// The terminal's new size.
    pub fn resize(&self, cols: u32, rows: u32) {
        self.event("r", |_| format!("{cols}x{rows}"));
    }

    fn event(&self, code: &str, data: impl FnOnce(&mut State) -> String) {
        let time = self.started.elapsed().as_secs_f64();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.file.is_none() {
            return;
        }
        let data = data(&mut state);
        if data.is_empty() && code != "r" {
            return;
        }
        let line = format!("{}\n", cast::event_line(time, code, &data));
        let written = state.file.as_mut().map(|f| f.write_all(line.as_bytes()));
        if let Some(Err(e)) = written {
            state.file = None;
            tracing::warn!(
                "cannot write the recording {}: {e}; the session goes on unrecorded",
                self.path.display()
            );
        }
    }
}

/// Bytes to text across reads: a character split between two reads is
/// kept until its end comes; bytes that are not UTF-8 become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn decode(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::with_capacity(self.pending.len());
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // Cut off mid-character: wait for the rest.
                        None => {
                            rest = after;
                            break;
                        }
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = after.get(n..).unwrap_or_default();
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::cast::{Event, Events, parse_header};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn characters_split_between_reads_stay_whole() {
        let mut s = Utf8Stream::default();
        let text = "né €ok";
        let bytes = text.as_bytes();
        // é is 2 bytes at 1..3, € 3 bytes at 4..7.
        assert_eq!(s.decode(&bytes[..2]), "n");
        assert_eq!(s.decode(&bytes[2..5]), "é ");
        assert_eq!(s.decode(&bytes[5..]), "€ok");
        assert_eq!(s.decode(b"a\xffb\xe2\x82"), "a\u{fffd}b");
        assert_eq!(s.decode(b"\xac"), "€");
    }

    #[test]
    fn a_recording_is_user_only_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let rec_dir = dir.path().join("recordings");
        let session = Session {
            instance_id: "i-0123456789abcdef0".into(),
            title: "eic-ssh me@i-0123456789abcdef0".into(),
            width: 100,
            height: 30,
            term: "xterm-256color".into(),
            connection_id: Some("0123456789ab".into()),
        };
        let r = Recorder::create(&rec_dir, &session, false).unwrap();
        r.output("hello ".as_bytes());
        r.input(b"secret\r");
        r.resize(120, 40);
        r.output(b"world\r\n");
        let name = r.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.ends_with("-i-0123456789abcdef0-0123456789ab.cast"),
            "{name}"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(r.path()), 0o600);
        assert_eq!(mode(&rec_dir), 0o700);
        let text = std::fs::read_to_string(r.path()).unwrap();
        assert!(!text.contains("secret"), "{text}");
        let mut lines = text.lines();
        let format = parse_header(lines.next().unwrap()).unwrap();
        assert_eq!((format.width, format.height), (Some(100), Some(30)));
        let mut events = Events::new(&format);
        let parsed: Vec<Event> = lines.filter_map(|l| events.parse(l).unwrap()).collect();
        assert_eq!(parsed.len(), 3);
        assert!(matches!(&parsed[0], Event::Output(_, s) if s == "hello "));
        assert!(text.contains("\"r\", \"120x40\""), "{text}");
        // Never overwritten: a second recording gets its own file.
        let again = Recorder::create(
            &rec_dir,
            &Session {
                connection_id: None,
                ..session
            },
            true,
        )
        .unwrap();
        again.input(b"typed");
        assert_ne!(again.path(), r.path());
        assert!(
            std::fs::read_to_string(again.path())
                .unwrap()
                .contains("\"i\", \"typed\"")
        );
    }
}
