//! `-f`: go to the background once the forwards are up and the key was
//! accepted, as `ssh -f` does. With no `fork` (unsafe code is forbidden),
//! the process runs itself again with stdin from /dev/null, and waits on a
//! private Unix socket until the copy says it is ready: only then does it
//! exit 0. If the copy fails first, its status is ours (it has already
//! printed why). Once ready, the copy lets go of the caller's stdout (and
//! stderr, unless -v) and of the terminal's session, so that
//! `eic-ssh -f … | cat` ends and a closing terminal does not hang it up.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::error::{EXIT_CONNECT_FAILED, Error};

/// Set in the background copy: where to say "ready".
const READY_SOCKET: &str = "EIC_SSH_BACKGROUND_READY";

/// Whether this process is the background copy.
pub fn is_child() -> bool {
    std::env::var_os(READY_SOCKET).is_some()
}

/// Start the background copy and wait until it is ready or gone.
pub async fn run_parent() -> Result<u8, Error> {
    let dir = private_dir()?;
    let result = spawn_and_wait(&dir.join("ready")).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn spawn_and_wait(socket: &Path) -> Result<u8, Error> {
    let listener = UnixListener::bind(socket)?;
    let exe = std::env::current_exe()?;
    // In our process group until it is ready (Ctrl-C on the terminal stops
    // it too), and not its leader, so that it can then start a session of
    // its own.
    let mut child = tokio::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(READY_SOCKET, socket)
        .stdin(Stdio::null())
        .spawn()?;
    let ready = async {
        let (mut stream, _) = listener.accept().await?;
        let mut word = Vec::new();
        stream.read_to_end(&mut word).await?;
        Ok::<_, std::io::Error>(word == b"ready")
    };
    // A signal sent to this process alone (kill, or a SIGHUP) is passed
    // on while the copy is not ready yet, or it would log in and keep
    // forwarding after all.
    let mut stop = crate::term::signals::StopSignals::new()?;
    tokio::select! {
        r = ready => match r {
            Ok(true) => Ok(0),
            _ => ended(child.wait().await?),
        },
        status = child.wait() => ended(status?),
        signal = stop.recv() => {
            if let Some(pid) = child.id().and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?)) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
            Err(Error::Interrupted(format!(
                "{signal} before the background session was ready: it was stopped"
            )))
        }
    }
}

/// The copy ended before it was ready: its status, or (Ctrl-C on the
/// terminal reached it as well as us) an interruption, said once.
fn ended(status: std::process::ExitStatus) -> Result<u8, Error> {
    use std::os::unix::process::ExitStatusExt;
    if status.signal() == Some(rustix::process::Signal::INT.as_raw()) {
        return Err(Error::Interrupted(
            "interrupted before the background session was ready: it was stopped".into(),
        ));
    }
    Ok(exit_code(status))
}

/// How long the background copy may take to end once told to stop.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

fn exit_code(status: std::process::ExitStatus) -> u8 {
    status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(EXIT_CONNECT_FAILED)
}

/// In the background copy, once all is up: let go of the caller's stdout
/// (and stderr, unless `keep_stderr`, as with -v) and start a session of
/// its own, as `ssh -f` does, then tell the waiting parent.
pub async fn detach_and_notify(keep_stderr: bool) {
    let Some(path) = std::env::var_os(READY_SOCKET) else {
        return;
    };
    if let Err(e) = detach(keep_stderr) {
        tracing::warn!("-f: cannot leave the terminal: {e}");
    }
    match UnixStream::connect(&path).await {
        Ok(mut s) => {
            let _ = s.write_all(b"ready").await;
            let _ = s.shutdown().await;
        }
        Err(e) => tracing::debug!("cannot tell the parent we are ready: {e}"),
    }
}

/// stdout (and stderr unless `keep_stderr`) to /dev/null, then `setsid`:
/// no pipe of the caller's stays open, and no terminal can hang us up.
fn detach(keep_stderr: bool) -> std::io::Result<()> {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    rustix::stdio::dup2_stdout(&null)?;
    if !keep_stderr {
        rustix::stdio::dup2_stderr(&null)?;
    }
    rustix::process::setsid()?;
    Ok(())
}

/// A new directory only we can enter, for the socket.
fn private_dir() -> Result<PathBuf, Error> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!(
        "eic-ssh-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}
