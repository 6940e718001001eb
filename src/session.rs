//! The SSH session over the tunnel: host-key checking, public-key
//! authentication with the ephemeral key, and running a command or shell.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Sig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};

use crate::console::{self, ConsoleHostKeys, ConsoleVerdict};
use crate::error::Error;
use crate::known_hosts::{self, HostKeyStatus};
use crate::terminal::{self, EscapeCommand, Escapes, RawMode};

/// OpenSSH's `StrictHostKeyChecking`, with OpenSSH's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StrictHostKeyChecking {
    /// Only keys already in known_hosts (or verified from the console).
    Yes,
    /// Record new keys; refuse changed ones.
    AcceptNew,
    /// Record new keys and accept changed ones, loudly. Insecure.
    No,
}

/// The instance's console host keys, being fetched concurrently with the
/// rest of the set-up; awaited only if the key is new.
pub type ConsoleFetch = Shared<BoxFuture<'static, Result<ConsoleHostKeys, String>>>;

/// Start fetching the console in the background.
pub fn fetch_console(ec2: aws_sdk_ec2::Client, instance_id: String) -> ConsoleFetch {
    let task = tokio::spawn(async move { console::fetch(&ec2, &instance_id).await });
    async move {
        match task.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
    .boxed()
    .shared()
}

/// How to check the server's host key.
#[derive(Clone)]
pub struct HostKeyPolicy {
    /// The name keys are recorded under: the instance ID.
    pub host: String,
    pub known_hosts: PathBuf,
    /// Print one-line notices (key recorded, not verified).
    pub notify: bool,
    pub strict: StrictHostKeyChecking,
    /// The console's host keys, when verifying a first contact with them.
    pub console: Option<ConsoleFetch>,
    /// The key algorithms known_hosts already has for `host` (read once by
    /// the caller), preferred in the key exchange as OpenSSH does.
    pub known_algorithms: Vec<russh::keys::Algorithm>,
}

/// russh event handler: decides about the host key; never prompts.
pub struct Client {
    policy: HostKeyPolicy,
    disconnect: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Client {
    type Error = Error;

    async fn disconnected(&mut self, reason: client::DisconnectReason<Error>) -> Result<(), Error> {
        match reason {
            client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            client::DisconnectReason::Error(e) => {
                if let Ok(mut g) = self.disconnect.lock() {
                    *g = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Error> {
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                return Err(Error::Ssh(
                    "the server offered a host certificate, which eic-ssh does not trust".into(),
                ));
            }
        };
        check_host_key(&self.policy, key).await
    }
}

fn describe(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm(), known_hosts::fingerprint(key))
}

/// The trust decision: known_hosts first, then (for a first contact) the
/// console, then the strictness policy.
async fn check_host_key(p: &HostKeyPolicy, key: &PublicKey) -> Result<bool, Error> {
    let notice = |msg: String| {
        if p.notify {
            eprintln!("eic-ssh: {msg}");
        }
    };
    match known_hosts::check(&p.known_hosts, &p.host, key)? {
        HostKeyStatus::Known => {
            tracing::debug!(host = p.host, fingerprint = %known_hosts::fingerprint(key), "host key matches known_hosts");
            Ok(true)
        }
        HostKeyStatus::Revoked { line } => Err(Error::KnownHosts {
            file: p.known_hosts.clone(),
            reason: format!(
                "line {line} marks the host key of {} ({}) as revoked",
                p.host,
                describe(key)
            ),
        }),
        HostKeyStatus::Changed { line, known } => {
            let changed = Error::HostKeyChanged {
                host: p.host.clone(),
                file: p.known_hosts.clone(),
                line,
                known: describe(&known),
                offered: describe(key),
            };
            if p.strict != StrictHostKeyChecking::No {
                return Err(changed);
            }
            eprintln!(
                "eic-ssh: WARNING: {changed}. Connecting anyway because of --strict-host-key-checking=no: this is INSECURE, the connection may be intercepted."
            );
            Ok(true)
        }
        HostKeyStatus::Unknown => {
            let verified = match &p.console {
                None => false,
                Some(fetch) => match fetch.clone().await {
                    Ok(console) => match console.verdict(key) {
                        ConsoleVerdict::Verified => true,
                        ConsoleVerdict::Mismatch { console } => {
                            return Err(Error::HostKeyMismatch {
                                host: p.host.clone(),
                                offered: describe(key),
                                console: console.join(", "),
                            });
                        }
                        ConsoleVerdict::NoKeys => {
                            notice(format!(
                                "could not verify the host key of {}: its console output shows no host keys (not printed yet, truncated, or not cloud-init)",
                                p.host
                            ));
                            false
                        }
                    },
                    Err(why) => {
                        notice(format!(
                            "could not verify the host key of {}: {why}",
                            p.host
                        ));
                        false
                    }
                },
            };
            if !verified && p.strict == StrictHostKeyChecking::Yes {
                return Err(Error::HostKeyUnknown {
                    host: p.host.clone(),
                    offered: describe(key),
                    file: p.known_hosts.clone(),
                });
            }
            known_hosts::learn(&p.known_hosts, &p.host, key)?;
            let how = if verified {
                "verified against the instance's console output and "
            } else {
                ""
            };
            notice(format!(
                "{how}permanently added '{}' ({}) to {}",
                p.host,
                describe(key),
                p.known_hosts.display()
            ));
            Ok(true)
        }
    }
}

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

/// An authenticated SSH connection.
pub struct Session {
    handle: Handle<Client>,
    host: String,
    keepalive: Keepalive,
    disconnect: Arc<Mutex<Option<String>>>,
}

impl Session {
    /// Run SSH over `stream`, check the host key, and authenticate `user`
    /// with `key`.
    pub async fn connect<S>(
        stream: S,
        policy: HostKeyPolicy,
        user: &str,
        key: PrivateKey,
        keepalive: Keepalive,
    ) -> Result<Session, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
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
        let client = Client {
            policy,
            disconnect: disconnect.clone(),
        };
        let mut handle = client::connect_stream(Arc::new(config), stream, client).await?;
        let auth = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), None))
            .await?;
        if !auth.success() {
            return Err(Error::AuthRefused {
                user: user.to_owned(),
            });
        }
        tracing::debug!(user, "authenticated");
        Ok(Session {
            handle,
            host,
            keepalive,
            disconnect,
        })
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
            let (cols, rows) = terminal::size();
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
        let raw = opts.pty.then(RawMode::enable);

        let mut winch = signal(SignalKind::window_change())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        let mut status: Option<u8> = None;
        let ended = loop {
            tokio::select! {
                msg = reader.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        stdout.write_all(&data).await?;
                        stdout.flush().await?;
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        stderr.write_all(&data).await?;
                        stderr.flush().await?;
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(u8::try_from(exit_status).unwrap_or(255)),
                    Some(ChannelMsg::ExitSignal { signal_name, error_message, .. }) => {
                        if !error_message.is_empty() {
                            tracing::info!("remote command killed by signal: {error_message}");
                        }
                        status = Some(128u8.saturating_add(signal_number(&signal_name)));
                    }
                    Some(ChannelMsg::Failure) => break Err(Error::Ssh("the server refused to run the command or shell".into())),
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
                    let (cols, rows) = terminal::size();
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
            }
        };
        stdin_pump.abort();
        drop(raw);
        stdout.flush().await?;
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
            Some(r) if r.contains("Keepalive") => Error::ConnectionLost {
                host: self.host.clone(),
                reason: format!(
                    "no answer to {} keepalives sent every {} s",
                    self.keepalive.count,
                    self.keepalive.interval.as_secs()
                ),
            },
            Some(r) => Error::ConnectionLost {
                host: self.host.clone(),
                reason: r,
            },
            None => Error::Ssh(
                "the connection closed before the remote command's exit status arrived".into(),
            ),
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
