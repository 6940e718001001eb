//! The SSH session over the tunnel: host-key checking, public-key
//! authentication with the ephemeral key, and running a command or shell.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, Sig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::Error;
use crate::ssh::host_keys::Incoming;
use crate::ssh::host_keys::{Client, Disconnect, Forwarded, HostKeyPolicy};
use crate::term::{self, EscapeCommand, Escapes, RawMode};
use crate::tunnel::within;

/// Keepalives: sent after `interval` of silence; the connection is declared
/// dead after `count` go unanswered.
#[derive(Debug, Clone, Copy)]
pub struct Keepalive {
    pub interval: Duration,
    pub count: usize,
}

/// How to run the remote side.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Request a PTY (and put the local terminal in raw mode).
    pub pty: bool,
    /// The escape character, or `None` for `-e none`.
    pub escape: Option<u8>,
}

/// Pushes the key again, for an authentication refused because the pushed
/// key expired before it was used (it is valid for 60 s).
pub type Repush<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// Makes and pushes another key, for a server that refuses the first one's
/// type.
pub type Fallback<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<PrivateKey, Error>> + Send + 'a>>;

/// What logging in over a tunnel needs: who, with which key, how the host
/// key is checked, and how long each step may take.
pub struct Login<'a> {
    /// The host-key checks, and the host they are for.
    pub policy: HostKeyPolicy,
    /// The OS user.
    pub user: &'a str,
    /// The key pushed for `user`.
    pub key: PrivateKey,
    pub keepalive: Keepalive,
    /// How long the handshake, and each authentication, may take.
    pub limit: Duration,
    /// Pushes the key again if the server refuses it (it may have expired).
    pub repush: Option<Repush<'a>>,
    /// Another key to try once if the server still refuses this one.
    pub fallback: Option<Fallback<'a>>,
}

/// An authenticated SSH connection.
pub struct Session {
    handle: Arc<Handle<Client>>,
    host: String,
    keepalive: Keepalive,
    disconnect: Arc<Mutex<Option<Disconnect>>>,
    alive: tokio::sync::watch::Receiver<()>,
    forwarded: Forwarded,
    /// Whether the `-R` connections were taken already.
    forwarded_taken: std::sync::atomic::AtomicBool,
}

/// Offer `key` for `user`; RSA signs with the best hash the server takes.
async fn authenticate(
    handle: &mut client::Handle<Client>,
    user: &str,
    key: PrivateKey,
) -> Result<bool, Error> {
    let hash = match key.algorithm().is_rsa() {
        true => handle.best_supported_rsa_hash().await?.flatten(),
        false => None,
    };
    let auth = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
        .await?;
    Ok(auth.success())
}

impl Session {
    /// Run SSH over `stream`, check the host key, and log in as
    /// `login.user` with `login.key`. The handshake and the authentication
    /// must each finish within `login.limit`. A refused authentication is
    /// tried once more after `login.repush`, when given, pushed the key
    /// again; if the server still refuses the key, once more on the same
    /// connection with the key `login.fallback` makes (and pushes), for
    /// images whose sshd refuses ed25519.
    pub async fn connect<S>(stream: S, login: Login<'_>) -> Result<Session, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Login {
            policy,
            user,
            key,
            keepalive,
            limit,
            repush,
            fallback,
        } = login;
        // Prefer the host key algorithms already recorded, as OpenSSH does.
        let known = &policy.known_algorithms;
        let mut algorithms: Vec<_> = known.clone();
        algorithms.extend(
            russh::Preferred::DEFAULT
                .key
                .iter()
                .filter(|a| !known.contains(a))
                .cloned(),
        );
        let config = client::Config {
            preferred: russh::Preferred {
                key: Cow::Owned(algorithms),
                ..Default::default()
            },
            nodelay: true,
            // A 2 MiB window caps a download at 2 MiB per round trip; the
            // endpoint adds latency, so allow more in flight.
            window_size: 16 << 20,
            keepalive_interval: (!keepalive.interval.is_zero()).then_some(keepalive.interval),
            keepalive_max: keepalive.count,
            ..Default::default()
        };
        let host = policy.host.clone();
        let disconnect = Arc::new(Mutex::new(None));
        let (alive_tx, alive) = tokio::sync::watch::channel(());
        let forwarded = Forwarded::default();
        let client = Client {
            policy,
            disconnect: disconnect.clone(),
            _alive: alive_tx,
            forwarded: forwarded.clone(),
            refused: Default::default(),
        };
        let handshake = client::connect_stream(Arc::new(config), stream, client);
        let mut handle = within(limit, "the SSH handshake with", &host, handshake).await?;
        let step = "SSH authentication at";
        let mut accepted = within(
            limit,
            step,
            &host,
            authenticate(&mut handle, user, key.clone()),
        )
        .await?;
        // Refused: the pushed key may have expired before it was used. Push
        // the same key again, once, and retry it.
        if let (false, Some(repush)) = (accepted, repush) {
            tracing::warn!(
                "{host} refused the pushed key, which may have expired before it was used (it is valid for 60 s): pushing it again"
            );
            repush.await?;
            accepted = within(limit, step, &host, authenticate(&mut handle, user, key)).await?;
        }
        // Still refused: the server may not take this key type at all.
        if let (false, Some(fallback)) = (accepted, fallback) {
            let key = fallback.await?;
            accepted = within(limit, step, &host, authenticate(&mut handle, user, key)).await?;
        }
        if !accepted {
            return Err(Error::AuthRefused {
                user: user.to_owned(),
            });
        }
        tracing::debug!(user, "authenticated");
        Ok(Session {
            handle: Arc::new(handle),
            host,
            keepalive,
            disconnect,
            alive,
            forwarded,
            forwarded_taken: Default::default(),
        })
    }

    /// The connection, shared with forwarding and SFTP tasks.
    pub fn handle(&self) -> Arc<Handle<Client>> {
        self.handle.clone()
    }

    /// The `-R` connections the server opens (once; later calls get
    /// `None`). Until this is called, and once the receiver is dropped, the
    /// client refuses them.
    pub fn take_forwarded(&self) -> Option<UnboundedReceiver<Incoming>> {
        use std::sync::atomic::Ordering;
        if self.forwarded_taken.swap(true, Ordering::SeqCst) {
            return None;
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.forwarded.lock().ok()? = Some(tx);
        Some(rx)
    }

    /// Resolves when the connection has ended, for whatever reason.
    pub async fn closed(&self) {
        let mut alive = self.alive.clone();
        while alive.changed().await.is_ok() {}
    }

    /// Wait with no command (`-N`) until the connection ends (an error
    /// saying why) or SIGINT/SIGTERM/SIGHUP asks to stop (a clean end).
    pub async fn wait(&self) -> Result<(), Error> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        tokio::select! {
            _ = self.closed() => Err(match self.lost() {
                Error::SshProtocol(_) => Error::SshProtocol("the connection closed, and the forwards with it"),
                e => e,
            }),
            _ = int.recv() => Ok(()),
            _ = term.recv() => Ok(()),
            _ = hup.recv() => Ok(()),
        }
    }

    /// Run `command` (or the user's shell when `None`), with local stdin
    /// streamed in and remote stdout/stderr streamed out. Returns the exit
    /// status for this process.
    pub async fn exec(&self, command: Option<&[u8]>, opts: &RunOptions) -> Result<u8, Error> {
        let channel = self.handle.channel_open_session().await?;
        if opts.pty {
            let term = std::env::var("TERM")
                .ok()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "dumb".into());
            let (cols, rows) = term::size();
            channel
                .request_pty(true, &term, cols, rows, 0, 0, &[])
                .await?;
            for (k, v) in std::env::vars().filter(|(k, _)| k == "LANG" || k.starts_with("LC_")) {
                // The server may refuse (AcceptEnv); that is not an error.
                channel.set_env(false, k, v).await?;
            }
        }
        match command {
            Some(cmd) => channel.exec(true, cmd).await?,
            None => channel.request_shell(true).await?,
        }
        let (mut reader, writer) = channel.split();
        let writer = Arc::new(writer);

        // Escapes apply only to a terminal, as in OpenSSH.
        let escape = opts
            .escape
            .filter(|_| opts.pty && std::io::stdin().is_terminal());
        let (commands, mut command_rx) = tokio::sync::mpsc::channel(4);
        let stdin_pump = tokio::spawn(pump_stdin(writer.clone(), Escapes::new(escape), commands));
        // The handlers first: a signal that arrived after raw mode but before
        // its handler would kill the process with the terminal still raw.
        // In raw mode Ctrl-C and Ctrl-\ are bytes for the remote side, so
        // SIGINT and SIGQUIT can only come from another process: they end
        // the session like SIGTERM, restoring the terminal.
        let mut winch = signal(SignalKind::window_change())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut quit = signal(SignalKind::quit())?;
        let mut raw = opts.pty.then(RawMode::enable);
        // The first reply answers the PTY request (when there is one), the
        // next the command or shell: a refused PTY is not a refused command.
        let mut pty_reply = opts.pty;
        let mut stdout = Some(tokio::io::stdout());
        let mut stderr = tokio::io::stderr();
        let mut status: Option<u8> = None;
        let ended = loop {
            tokio::select! {
                msg = reader.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        let Some(out) = stdout.as_mut() else { continue };
                        match write_all_flushed(out, &data).await {
                            Ok(()) => {}
                            // Nobody reads stdout any more (`… | head`): end
                            // quietly, closing the channel so that the remote
                            // command's next write fails (SIGPIPE), and exit
                            // 255 as ssh does then. (ssh learns the status of
                            // a command that ignores SIGPIPE through its
                            // eow@openssh.com; russh has no such request, and
                            // takes in nothing after its own close.)
                            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                                tracing::info!("stdout was closed: closing the channel");
                                stdout = None;
                                let _ = writer.close().await;
                                status = status.or(Some(crate::error::EXIT_CONNECT_FAILED));
                                break Ok(());
                            }
                            Err(e) => break Err(e.into()),
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        // A closed stderr silences the remote's, and no more.
                        let _ = write_all_flushed(&mut stderr, &data).await;
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(u8::try_from(exit_status).unwrap_or(255)),
                    Some(ChannelMsg::ExitSignal { signal_name, error_message, .. }) => {
                        if !error_message.is_empty() {
                            tracing::info!("remote command killed by signal: {error_message}");
                        }
                        status = Some(128u8.saturating_add(signal_number(&signal_name)));
                    }
                    Some(ChannelMsg::Success) if pty_reply => pty_reply = false,
                    Some(ChannelMsg::Failure) if pty_reply => {
                        // As OpenSSH: leave raw mode, say so, and go on.
                        pty_reply = false;
                        drop(raw.take());
                        crate::term::notice(&format!(
                            "PTY allocation request failed: {} gave no terminal (PermitTTY or a no-pty key option); going on without one",
                            self.host
                        ));
                    }
                    Some(ChannelMsg::Failure) => break Err(Error::SshProtocol("the server refused to run the command or shell")),
                    Some(ChannelMsg::Close) | None => break Ok(()),
                    Some(_) => {}
                },
                Some(cmd) = command_rx.recv() => match cmd {
                    EscapeCommand::Disconnect => {
                        drop(raw);
                        eprintln!("\r\nConnection to {} closed.", self.host);
                        stdin_pump.abort();
                        return Ok(crate::error::EXIT_CONNECT_FAILED);
                    }
                    EscapeCommand::Help => {
                        let help = Escapes::new(escape).help();
                        stderr.write_all(help.as_bytes()).await?;
                        stderr.flush().await?;
                    }
                },
                _ = winch.recv() => {
                    let (cols, rows) = term::size();
                    let _ = writer.window_change(cols, rows, 0, 0).await;
                }
                _ = term.recv() => {
                    status = status.or(Some(128 + 15));
                    break Ok(());
                }
                _ = hup.recv() => {
                    status = status.or(Some(128 + 1));
                    break Ok(());
                }
                _ = int.recv() => {
                    status = status.or(Some(128 + 2));
                    break Ok(());
                }
                _ = quit.recv() => {
                    status = status.or(Some(128 + 3));
                    break Ok(());
                }
            }
        };
        stdin_pump.abort();
        drop(raw);
        if let Some(mut out) = stdout {
            match out.flush().await {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
        }
        ended?;
        match status {
            Some(s) => Ok(s),
            None => Err(self.lost()),
        }
    }

    /// Why the connection ended without an exit status.
    fn lost(&self) -> Error {
        let reason = self.disconnect.lock().ok().and_then(|g| g.clone());
        match reason {
            Some(Disconnect::KeepaliveTimeout) => Error::ConnectionLost {
                host: self.host.clone(),
                reason: format!(
                    "no answer to {} keepalives sent every {} s",
                    self.keepalive.count,
                    self.keepalive.interval.as_secs()
                ),
            },
            Some(Disconnect::Other(reason)) => Error::ConnectionLost {
                host: self.host.clone(),
                reason,
            },
            None => Error::SshProtocol(
                "the connection closed before the remote command's exit status arrived",
            ),
        }
    }

    /// Say goodbye politely, then wait (at most `within`) until the
    /// connection is over and its stream dropped, so the tunnel under it is
    /// really closed when this returns.
    pub async fn close_and_wait(self, within: Duration) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        // A forwarding or SFTP task may still hold the connection: the
        // disconnect above ends it; only a sole owner can wait for the end.
        if let Ok(handle) = Arc::try_unwrap(self.handle) {
            let _ = tokio::time::timeout(within, handle).await;
        }
    }

    /// Say goodbye politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Write `data` and flush it, so the remote side's output shows at once.
async fn write_all_flushed(
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
    data: &[u8],
) -> std::io::Result<()> {
    out.write_all(data).await?;
    out.flush().await
}

/// Local stdin to the channel, as soon as it is read: no polling interval,
/// no batching timer. Escape sequences are taken out on the way.
async fn pump_stdin(
    writer: Arc<russh::ChannelWriteHalf<client::Msg>>,
    mut escapes: Escapes,
    commands: tokio::sync::mpsc::Sender<EscapeCommand>,
) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = Vec::with_capacity(buf.len() + 1);
    loop {
        let n = match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        out.clear();
        let cmd = escapes.feed(&buf[..n], &mut out);
        if !out.is_empty() && writer.data(&out[..]).await.is_err() {
            return;
        }
        if let Some(cmd) = cmd
            && (commands.send(cmd).await.is_err() || cmd == EscapeCommand::Disconnect)
        {
            return;
        }
    }
    let _ = writer.eof().await;
}

/// Linux signal numbers, for the 128+N exit status shells use.
pub fn signal_number(sig: &Sig) -> u8 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(name) => match name.as_str() {
            "BUS" => 7,
            "USR2" => 12,
            "STKFLT" => 16,
            "CHLD" => 17,
            "CONT" => 18,
            "STOP" => 19,
            "TSTP" => 20,
            "TTIN" => 21,
            "TTOU" => 22,
            "URG" => 23,
            "XCPU" => 24,
            "XFSZ" => 25,
            "VTALRM" => 26,
            "PROF" => 27,
            "WINCH" => 28,
            "IO" => 29,
            "PWR" => 30,
            "SYS" => 31,
            _ => 127,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_shell_exit_statuses() {
        assert_eq!(128 + signal_number(&Sig::TERM), 143);
        assert_eq!(128 + signal_number(&Sig::KILL), 137);
        assert_eq!(128 + signal_number(&Sig::INT), 130);
        assert_eq!(128 + signal_number(&Sig::Custom("USR2".into())), 140);
    }
}
