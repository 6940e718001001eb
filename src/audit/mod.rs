//! The connection log: a local record of every tunnel eic-ssh opens, linked
//! to CloudTrail by the AWS request IDs. A `start` line is appended as the
//! tunnel opens, so a process killed with `-9` still leaves one; an `end`
//! line with the same ID follows when the connection ends, however it
//! ends (the command's outcome, or, dropped without one, a line that says
//! so). Writing the log never stops a connection: a failure is a warning.
//!
//! - [`record`]: the lines' format;
//! - [`file`]: where the log lives, appending under a lock, rotation;
//! - [`read`]: reading it back, start and end paired, for `eic-ssh log`;
//! - [`cloudtrail`]: the `aws cloudtrail lookup-events` commands that find
//!   a connection's key push and tunnel.

pub mod cloudtrail;
pub mod file;
pub mod read;
pub mod record;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::aws::Aws;
use crate::aws::keypush::Pushed;
use crate::error::Error;
use crate::target::Route;
use crate::tunnel::{CloseStatus, Tunnel};
use file::LogFile;
pub use record::Kind;
use record::{EndRecord, PushRecord, StartRecord};

/// Where a command's connections are logged (nowhere, with `--no-log`), and
/// who runs it. Cheap to clone: every connection of a command shares it.
#[derive(Debug, Clone)]
pub struct Audit {
    log: Option<Arc<Log>>,
}

#[derive(Debug)]
struct Log {
    file: LogFile,
    local_user: String,
    uid: u32,
    /// A failure to write is said once per process, not once per line.
    warned: AtomicBool,
}

impl Audit {
    /// Log to `path`, rotated as `rotation` says. The default log is kept
    /// user-only even when it or its directory was made with a looser mode.
    pub fn to_file(path: PathBuf, rotation: file::Rotation) -> Audit {
        let own = path == file::default_path();
        let uid = nix::unistd::Uid::current();
        // Through NSS, as `id -un` finds it; the uid when it has no name.
        let local_user = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        Audit {
            log: Some(Arc::new(Log {
                file: LogFile::new(path, rotation).own(own),
                local_user,
                uid: uid.as_raw(),
                warned: AtomicBool::new(false),
            })),
        }
    }

    /// Log nothing (`--no-log`).
    pub fn off() -> Audit {
        Audit { log: None }
    }

    /// The log file, unless logging is off.
    pub fn path(&self) -> Option<&Path> {
        self.log.as_ref().map(|l| l.file.path())
    }

    /// Append the `start` line of a connection whose tunnel has just
    /// opened, and return the handle that writes its `end` line.
    pub fn start(&self, s: Start<'_>) -> Connection {
        let Some(log) = &self.log else {
            return Connection(None);
        };
        let id = record::new_id();
        let opening = s.tunnel.opening();
        let line = StartRecord {
            event: "start".into(),
            id: id.clone(),
            time: record::format_time(SystemTime::now()),
            pid: std::process::id(),
            kind: s.purpose.kind,
            local_user: log.local_user.clone(),
            uid: log.uid,
            aws_profile: s.aws.profile_name(),
            access_key_id: opening.access_key_id.clone(),
            region: s.aws.region.clone(),
            target: s.target.map(str::to_owned),
            instance_id: s.route.instance_id.clone(),
            endpoint_id: s.route.endpoint_id.clone(),
            private_ip: s.route.private_ip.to_string(),
            remote_port: s.port,
            os_user: s.os_user.map(str::to_owned),
            key_sha256: s.public_key.and_then(record::fingerprint),
            push_request_id: s.pushed.and_then(|p| p.request_id.clone()),
            tunnel_request_id: opening.request_id.clone(),
            command: s.purpose.command.map(command_text),
            forwards: s.purpose.forwards,
        };
        log.append(&line);
        Connection(Some(Box::new(Open {
            log: log.clone(),
            id,
            instance_id: s.route.instance_id.clone(),
            started: Instant::now(),
            closed: s.tunnel.close_status(),
            later_pushes: Mutex::new(Vec::new()),
            recording: Mutex::new(None),
            ended: AtomicBool::new(false),
        })))
    }
}

impl Log {
    fn append(&self, record: &impl serde::Serialize) {
        let written = serde_json::to_string(record)
            .map_err(std::io::Error::other)
            .and_then(|line| self.file.append(&line));
        if let Err(e) = written
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "cannot write the connection log {}: {e}; the connection goes on unlogged (--no-log turns the log off)",
                self.file.path().display()
            );
        }
    }
}

/// What a command logs its connections as: their kind, the remote
/// command and the forwards.
#[derive(Debug, Clone)]
pub struct Purpose<'a> {
    pub kind: Kind,
    /// The remote command; `None` for a shell or no command.
    pub command: Option<&'a [u8]>,
    /// `-L`, `-R`, `-D`, their bind addresses spelled out.
    pub forwards: Vec<String>,
}

impl Purpose<'_> {
    /// A kind with no command and no forwards.
    pub fn plain(kind: Kind) -> Purpose<'static> {
        Purpose {
            kind,
            command: None,
            forwards: Vec::new(),
        }
    }
}

/// What a command knows once a tunnel has opened (and its key was pushed).
pub struct Start<'a> {
    pub purpose: Purpose<'a>,
    pub aws: &'a Aws,
    /// The target as the user typed it; `None` when picked from the list.
    pub target: Option<&'a str>,
    pub route: &'a Route,
    pub port: u16,
    /// The OS user the key was pushed for.
    pub os_user: Option<&'a str>,
    /// The public key pushed (OpenSSH format), if one was.
    pub public_key: Option<&'a str>,
    pub pushed: Option<&'a Pushed>,
    pub tunnel: &'a Tunnel,
}

/// The command as the log keeps it: text, with secrets in it (a key, a
/// `password=…`) redacted as in every log eic-ssh writes.
fn command_text(command: &[u8]) -> String {
    crate::text::redact::redact(&String::from_utf8_lossy(command)).into_owned()
}

/// One logged connection. Its `end` line is written once: by [`end`] or
/// [`finish`], or when it is dropped without either (a line that says no
/// outcome was recorded). Without a log, every method does nothing.
///
/// [`end`]: Connection::end
/// [`finish`]: Connection::finish
#[derive(Debug)]
pub struct Connection(Option<Box<Open>>);

#[derive(Debug)]
struct Open {
    log: Arc<Log>,
    id: String,
    instance_id: String,
    started: Instant,
    closed: CloseStatus,
    later_pushes: Mutex<Vec<PushRecord>>,
    recording: Mutex<Option<PathBuf>>,
    ended: AtomicBool,
}

impl Connection {
    /// A connection that logs nothing.
    pub fn none() -> Connection {
        Connection(None)
    }

    /// The connection's ID in the log.
    pub fn id(&self) -> Option<&str> {
        self.0.as_ref().map(|o| o.id.as_str())
    }

    /// Note a key pushed after the tunnel opened (a re-push, a fallback key
    /// type), for the `end` line and the CloudTrail lookup.
    pub fn pushed_again(&self, public_key: &str, pushed: &Pushed) {
        if let Some(o) = &self.0
            && let Ok(mut p) = o.later_pushes.lock()
        {
            p.push(PushRecord {
                key_sha256: record::fingerprint(public_key),
                request_id: pushed.request_id.clone(),
            });
        }
    }

    /// Note the session's recording, for the `end` line.
    pub fn set_recording(&self, path: &Path) {
        if let Some(o) = &self.0
            && let Ok(mut r) = o.recording.lock()
        {
            *r = Some(path.to_owned());
        }
    }

    /// End with the command's outcome: its exit status, or the error.
    pub fn finish(&self, outcome: &Result<u8, Error>) {
        match outcome {
            Ok(status) => self.end(Some(*status), None),
            Err(e) => self.fail(e),
        }
    }

    /// End with an error.
    pub fn fail(&self, e: &Error) {
        self.end(Some(e.exit_code()), Some(error_text(&e.to_string())));
    }

    /// Write the `end` line, once.
    pub fn end(&self, exit_status: Option<u8>, error: Option<String>) {
        let Some(o) = &self.0 else { return };
        if o.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        let (bytes_sent, bytes_received) = o.closed.bytes();
        let close = o.closed.close_frame();
        let line = EndRecord {
            event: "end".into(),
            id: o.id.clone(),
            time: record::format_time(SystemTime::now()),
            pid: std::process::id(),
            instance_id: o.instance_id.clone(),
            duration_ms: u64::try_from(o.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            bytes_sent,
            bytes_received,
            close_code: close.as_ref().map(|(code, _)| *code),
            close_reason: close.map(|(_, reason)| reason),
            cut: o.closed.broken(),
            exit_status,
            error,
            later_pushes: o.later_pushes.lock().map(|p| p.clone()).unwrap_or_default(),
            recording: o
                .recording
                .lock()
                .ok()
                .and_then(|r| r.as_ref().map(|p| p.display().to_string())),
        };
        o.log.append(&line);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.end(
            None,
            Some("eic-ssh ended the connection without recording its outcome".into()),
        );
    }
}

/// An error as the log keeps it: as the user saw it (one line, redacted).
pub fn error_text(message: &str) -> String {
    crate::text::printable(&crate::text::redact::redact_message(message))
}
