//! The SSH session over the tunnel: host-key checking, public-key
//! authentication with the ephemeral key, and running a command or shell.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Sig};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::Error;
use crate::known_hosts::{self, HostKeyStatus};

/// How to check the server's host key.
#[derive(Debug, Clone)]
pub struct HostKeyPolicy {
    /// The name keys are recorded under: the instance ID.
    pub host: String,
    pub known_hosts: PathBuf,
    /// Print the one-line notice when a first key is recorded.
    pub notify: bool,
}

/// russh event handler: decides about the host key; never prompts.
pub struct Client {
    policy: HostKeyPolicy,
}

impl client::Handler for Client {
    type Error = Error;

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Error> {
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                return Err(Error::Ssh(
                    "the server offered a host certificate, which eic-ssh does not trust".into(),
                ));
            }
        };
        let p = &self.policy;
        match known_hosts::check(&p.known_hosts, &p.host, key)? {
            HostKeyStatus::Known => {
                tracing::debug!(host = p.host, fingerprint = %known_hosts::fingerprint(key), "host key matches known_hosts");
                Ok(true)
            }
            HostKeyStatus::Unknown => {
                known_hosts::learn(&p.known_hosts, &p.host, key)?;
                if p.notify {
                    eprintln!(
                        "eic-ssh: permanently added '{}' ({} {}) to {}",
                        p.host,
                        key.algorithm(),
                        known_hosts::fingerprint(key),
                        p.known_hosts.display()
                    );
                }
                Ok(true)
            }
            HostKeyStatus::Changed { line, known } => Err(Error::HostKeyChanged {
                host: p.host.clone(),
                file: p.known_hosts.clone(),
                line,
                known: format!("{} {}", known.algorithm(), known_hosts::fingerprint(&known)),
                offered: format!("{} {}", key.algorithm(), known_hosts::fingerprint(key)),
            }),
            HostKeyStatus::Revoked { line } => Err(Error::KnownHosts {
                file: p.known_hosts.clone(),
                reason: format!(
                    "line {line} marks the host key of {} ({}) as revoked",
                    p.host,
                    known_hosts::fingerprint(key)
                ),
            }),
        }
    }
}

/// An authenticated SSH connection.
pub struct Session {
    handle: Handle<Client>,
}

impl Session {
    /// Run SSH over `stream`, check the host key, and authenticate `user`
    /// with `key`.
    pub async fn connect<S>(
        stream: S,
        policy: HostKeyPolicy,
        user: &str,
        key: PrivateKey,
    ) -> Result<Session, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Prefer the host key algorithms already recorded, as OpenSSH does.
        let known = known_hosts::known_algorithms(&policy.known_hosts, &policy.host);
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
            ..Default::default()
        };
        let mut handle =
            client::connect_stream(Arc::new(config), stream, Client { policy }).await?;
        let auth = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), None))
            .await?;
        if !auth.success() {
            return Err(Error::AuthRefused {
                user: user.to_owned(),
            });
        }
        tracing::debug!(user, "authenticated");
        Ok(Session { handle })
    }

    /// Run `command` (or the user's shell without a PTY, when `None`), with
    /// local stdin streamed in and remote stdout/stderr streamed out.
    /// Returns the exit status for this process.
    pub async fn exec(&self, command: Option<&[u8]>) -> Result<u8, Error> {
        let channel = self.handle.channel_open_session().await?;
        match command {
            Some(cmd) => channel.exec(true, cmd).await?,
            None => channel.request_shell(true).await?,
        }
        let (mut reader, writer) = channel.split();

        let stdin_pump = tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut remote = writer.make_writer();
            let copied = tokio::io::copy(&mut stdin, &mut remote).await;
            let _ = remote.flush().await;
            drop(remote);
            if copied.is_ok() {
                let _ = writer.eof().await;
            }
            writer
        });

        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        let mut status: Option<u8> = None;
        while let Some(msg) = reader.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    stdout.write_all(&data).await?;
                    stdout.flush().await?;
                }
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    stderr.write_all(&data).await?;
                    stderr.flush().await?;
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    status = Some(u8::try_from(exit_status).unwrap_or(255));
                }
                ChannelMsg::ExitSignal {
                    signal_name,
                    error_message,
                    ..
                } => {
                    if !error_message.is_empty() {
                        tracing::info!("remote command killed by signal: {error_message}");
                    }
                    status = Some(128u8.saturating_add(signal_number(&signal_name)));
                }
                ChannelMsg::Failure => {
                    stdin_pump.abort();
                    return Err(Error::Ssh("the server refused to run the command".into()));
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        stdin_pump.abort();
        stdout.flush().await?;
        status.ok_or_else(|| {
            Error::Ssh(
                "the connection closed before the remote command's exit status arrived".into(),
            )
        })
    }

    /// Say goodbye politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
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
