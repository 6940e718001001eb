//! Child processes: command lines with their whole environment, run to
//! completion (timed by the bench, and by GNU time when asked) or kept
//! alive for a session.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

/// GNU time.
pub(crate) const TIME: &str = "/usr/bin/time";
/// What GNU time reports: wall, user and system seconds, peak RSS in kB.
pub(crate) const TIME_FORMAT: &str = "%e %U %S %M";

/// A command line with its whole environment, so that it can be run plainly,
/// under GNU time, or concurrently from another task.
#[derive(Clone, Debug)]
pub(crate) struct Cmd {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
}

/// A started child, its stdout piped to the bench and its stderr collected
/// in the background.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) stdout: ChildStdout,
    pub(crate) stderr: JoinHandle<String>,
}

impl Cmd {
    /// The command, under `/usr/bin/time -o time_file` when one is given.
    fn command(&self, time_file: Option<&Path>) -> Command {
        let mut c = match time_file {
            Some(f) => {
                let mut c = Command::new(TIME);
                c.arg("-f").arg(TIME_FORMAT).arg("-o").arg(f);
                c.arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        c.args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        c
    }

    /// The program's file name and its first arguments, for messages.
    pub(crate) fn describe(&self) -> String {
        let mut s = Path::new(&self.program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for a in self.args.iter().take(12) {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Starts the command with `stdin`, stdout and stderr piped.
    pub(crate) fn spawn(&self, stdin: Stdio, time_file: Option<&Path>) -> anyhow::Result<Spawned> {
        let mut child = self
            .command(time_file)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.describe()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let stderr = tokio::spawn(read_all(child.stderr.take().context("no stderr pipe")?));
        Ok(Spawned {
            child,
            stdout,
            stderr,
        })
    }
}

/// Ends a child kept alive for a session and returns `result`, its error
/// prefixed with `what` and the child's stderr.
pub(crate) async fn end_session<T>(
    mut child: Child,
    stderr: JoinHandle<String>,
    result: anyhow::Result<T>,
    what: &str,
) -> anyhow::Result<T> {
    let _ = child.start_kill();
    let _ = child.wait().await;
    let stderr = stderr.await.unwrap_or_default();
    result.with_context(|| format!("{what}: {}", stderr.trim()))
}

/// A child's stdin.
pub(crate) enum Input {
    Null,
    File(PathBuf),
}

/// What GNU time reported.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    user: f64,
    sys: f64,
    pub(crate) max_rss_kb: u64,
}

impl Usage {
    /// User plus system CPU seconds.
    pub(crate) fn cpu(&self) -> f64 {
        self.user + self.sys
    }

    /// Peak RSS in MB.
    pub(crate) fn rss_mb(&self) -> f64 {
        self.max_rss_kb as f64 / 1000.0
    }
}

/// The last line of a GNU time output file, in [`TIME_FORMAT`].
fn parse_usage(text: &str) -> Option<Usage> {
    // GNU time puts "Command exited with non-zero status N" first.
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut it = line.split_whitespace();
    let _wall: f64 = it.next()?.parse().ok()?;
    Some(Usage {
        user: it.next()?.parse().ok()?,
        sys: it.next()?.parse().ok()?,
        max_rss_kb: it.next()?.parse().ok()?,
    })
}

/// Waits for a time file written by a process we cannot wait for (a
/// ProxyCommand outlives ssh by up to its close grace).
pub(crate) async fn wait_usage(path: &Path, limit: Duration) -> Option<Usage> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(u) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| parse_usage(&t))
        {
            return Some(u);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One finished run.
pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) wall: Duration,
    /// From just before the spawn to the first stdout byte.
    pub(crate) first_byte: Option<Duration>,
    pub(crate) bytes: u64,
    /// The first bytes of stdout.
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
    pub(crate) usage: Option<Usage>,
}

impl Run {
    /// The run, or an error naming `what` if it failed.
    pub(crate) fn check(self, what: &str) -> anyhow::Result<Run> {
        if self.status.success() {
            Ok(self)
        } else {
            bail!("{what} failed ({}): {}", self.status, self.stderr.trim())
        }
    }
}

/// Everything `r` gives, as text.
async fn read_all<R: AsyncRead + Unpin>(mut r: R) -> String {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs `cmd` to completion, counting stdout (all of it is read, so the
/// bench is the sink) and timing the first byte.
pub(crate) async fn run(
    cmd: &Cmd,
    input: Input,
    time_file: Option<&Path>,
    limit: Duration,
) -> anyhow::Result<Run> {
    const KEEP: usize = 64 * 1024;
    let stdin = match input {
        Input::Null => Stdio::null(),
        Input::File(p) => Stdio::from(
            std::fs::File::open(&p).with_context(|| format!("opening {}", p.display()))?,
        ),
    };
    let start = Instant::now();
    let Spawned {
        mut child,
        mut stdout,
        stderr,
    } = cmd.spawn(stdin, time_file)?;
    let body = async {
        let mut buf = vec![0u8; 256 * 1024];
        let mut first = None;
        let mut bytes = 0u64;
        let mut kept = Vec::new();
        loop {
            let n = stdout.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            if first.is_none() {
                first = Some(start.elapsed());
            }
            bytes += n as u64;
            let room = KEEP.saturating_sub(kept.len()).min(n);
            kept.extend_from_slice(buf.get(..room).unwrap_or_default());
        }
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, first, bytes, kept))
    };
    let (status, first_byte, bytes, stdout) = tokio::time::timeout(limit, body)
        .await
        .map_err(|_| anyhow!("{} did not finish within {limit:?}", cmd.describe()))??;
    let wall = start.elapsed();
    let stderr = stderr.await.unwrap_or_default();
    let usage = time_file
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| parse_usage(&t));
    Ok(Run {
        status,
        wall,
        first_byte,
        bytes,
        stdout,
        stderr,
        usage,
    })
}

/// Runs `cmd` with no input and without GNU time, and fails unless it
/// succeeds.
pub(crate) async fn run_ok(cmd: &Cmd, what: &str, limit: Duration) -> anyhow::Result<Run> {
    run(cmd, Input::Null, None, limit).await?.check(what)
}
