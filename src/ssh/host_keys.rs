//! Host-key checking: known_hosts first, then (for a first contact) the
//! instance's console, then the strictness policy.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use russh::client::{self};
use russh::keys::{PublicKey, PublicKeyOrCertificate};

use crate::error::Error;
use crate::ssh::console_keys::{self as console, ConsoleHostKeys, ConsoleVerdict};
use crate::ssh::known_hosts::{self, HostKeyStatus};

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
    /// The single writer to record new keys through, when many sessions
    /// share the file; `None` appends directly.
    pub recorder: Option<crate::ssh::recorder::KnownHostsRecorder>,
}

/// How host keys are checked, as the user asked: the same for every
/// instance of a command.
#[derive(Debug, Clone)]
pub struct HostKeyChecking {
    /// The known_hosts file to check and record keys in.
    pub known_hosts: PathBuf,
    pub strict: StrictHostKeyChecking,
    /// Verify a first contact's key against the instance's console output.
    pub console: bool,
}

/// A `forwarded-tcpip` channel the server opened (an `-R` connection),
/// waiting for the forwarding code to answer it.
pub struct Incoming {
    pub channel: russh::Channel<russh::client::Msg>,
    pub connected_address: String,
    pub connected_port: u32,
    pub originator: String,
    pub originator_port: u32,
    pub reply: client::ChannelOpenHandle,
}

/// russh event handler: decides about the host key; never prompts.
pub struct Client {
    pub(super) policy: HostKeyPolicy,
    pub(super) disconnect: Arc<Mutex<Option<Disconnect>>>,
    /// Dropped with the handler when the session ends, which wakes
    /// `Session::closed` in the session module.
    pub(super) _alive: tokio::sync::watch::Sender<()>,
    /// Where `-R` connections from the server go, once something asked for
    /// them (`Session::take_forwarded`); until then none is wanted.
    pub(super) forwarded: Forwarded,
    /// The kinds of unasked-for channel already warned about: once each.
    pub(super) refused: std::collections::HashSet<&'static str>,
}

/// The sender for `-R` connections, installed when they are wanted.
pub type Forwarded = Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<Incoming>>>>;

impl Client {
    /// Refuse a channel the server opened that eic-ssh never asked for
    /// (russh's default would accept it, and then nothing would serve it),
    /// with a warning the first time for each kind, as OpenSSH's "ssh
    /// server tried agent forwarding".
    async fn refuse(
        &mut self,
        kind: &'static str,
        detail: String,
        reply: client::ChannelOpenHandle,
    ) {
        let detail = crate::text::remote_text(&detail);
        if self.refused.insert(kind) {
            tracing::warn!(
                "the instance tried to open {kind} channel{detail}, which eic-ssh did not ask for: refused"
            );
        } else {
            tracing::debug!("refused {kind} channel{detail}");
        }
        reply
            .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
            .await;
    }
}

/// Why russh ended the connection, classified by the error's type.
#[derive(Debug, Clone)]
pub enum Disconnect {
    /// The server stopped answering keepalives.
    KeepaliveTimeout,
    /// Anything else, as russh described it.
    Other(String),
}

impl client::Handler for Client {
    type Error = Error;

    async fn disconnected(&mut self, reason: client::DisconnectReason<Error>) -> Result<(), Error> {
        match reason {
            client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            client::DisconnectReason::Error(e) => {
                let cause = match &e {
                    Error::Ssh(russh::Error::KeepaliveTimeout) => Disconnect::KeepaliveTimeout,
                    other => Disconnect::Other(other.to_string()),
                };
                if let Ok(mut g) = self.disconnect.lock() {
                    *g = Some(cause);
                }
                Err(e)
            }
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Error> {
        let incoming = Incoming {
            channel,
            connected_address: connected_address.to_owned(),
            connected_port,
            originator: originator_address.to_owned(),
            originator_port,
            reply,
        };
        let wanted = self.forwarded.lock().ok().and_then(|g| g.clone());
        // With no -R asked for, nothing takes it: refused, never queued.
        let unwanted = match wanted {
            Some(tx) => tx.send(incoming).err().map(|e| e.0),
            None => Some(incoming),
        };
        if let Some(i) = unwanted {
            let detail = format!(" (for {}:{})", i.connected_address, i.connected_port);
            self.refuse("a forwarded-tcpip", detail, i.reply).await;
        }
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Error> {
        self.refuse("an X11", String::new(), reply).await;
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Error> {
        self.refuse("an agent", String::new(), reply).await;
        Ok(())
    }

    async fn server_channel_open_session(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Error> {
        self.refuse("a session", String::new(), reply).await;
        Ok(())
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Error> {
        let detail = format!(" (to {host_to_connect}:{port_to_connect})");
        self.refuse("a direct-tcpip", detail, reply).await;
        Ok(())
    }

    async fn server_channel_open_direct_streamlocal(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        socket_path: &str,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Error> {
        let detail = format!(" (to {socket_path})");
        self.refuse("a direct-streamlocal", detail, reply).await;
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        socket_path: &str,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Error> {
        let detail = format!(" (for {socket_path})");
        self.refuse("a forwarded-streamlocal", detail, reply).await;
        Ok(())
    }

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Error> {
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                return Err(Error::SshProtocol(
                    "the server offered a host certificate, which eic-ssh does not trust",
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
            crate::term::notice(&msg);
        }
    };
    match known_hosts::check(&p.known_hosts, &p.host, key)? {
        HostKeyStatus::Known => {
            tracing::debug!(host = p.host, fingerprint = %known_hosts::fingerprint(key), "host key matches known_hosts");
            Ok(true)
        }
        HostKeyStatus::Revoked { line } => Err(Error::KnownHosts {
            file: p.known_hosts.clone(),
            source: format!(
                "line {line} marks the host key of {} ({}) as revoked",
                p.host,
                describe(key)
            )
            .into(),
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
            crate::term::notice(&format!(
                "warning: {changed}. Connecting anyway because of --strict-host-key-checking=no: this is INSECURE, the connection may be intercepted."
            ));
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
            match &p.recorder {
                Some(r) => r.learn(&p.host, key).await?,
                None => known_hosts::learn(&p.known_hosts, &p.host, key)?,
            }
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
