//! A small SSH server built on russh, for machines without OpenSSH's sshd
//! (the demo). Like an EC2 instance with EC2 Instance Connect, it accepts a
//! public key only while the key store holds it for that instance and user,
//! checked at authentication time. `exec` requests run `sh -c <command>`
//! locally as the simulator's own user; there is no interactive shell and
//! no subsystem (so no sftp/scp).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use russh::keys::{Algorithm, PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Handle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, Pty};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::{Shared, Simulator};

/// A running built-in SSH server. Stops (with its sessions) on drop.
pub struct BuiltinSshd {
    /// Where it listens (127.0.0.1); also set as the instance's `ssh` target.
    pub addr: SocketAddr,
    /// Its ed25519 host key as an OpenSSH public key line.
    pub host_key_pub: String,
    task: JoinHandle<()>,
}

impl Drop for BuiltinSshd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the built-in server for `instance_id` and points the instance's
/// `ssh` target at it.
pub async fn start_builtin_sshd(sim: &Simulator, instance_id: &str) -> io::Result<BuiltinSshd> {
    if sim.world().instance(instance_id).is_none() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("instance {instance_id} is not in the simulator's world"),
        ));
    }
    let host_key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| io::Error::other(format!("generating the host key: {e}")))?;
    let host_key_pub = host_key
        .public_key()
        .to_openssh()
        .map_err(|e| io::Error::other(format!("encoding the host key: {e}")))?;
    let config = Arc::new(russh::server::Config {
        keys: vec![host_key],
        // OpenSSH probes with "none" first; don't make it wait for that.
        auth_rejection_time: std::time::Duration::from_millis(50),
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    });
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let shared = sim.shared().clone();
    let instance = instance_id.to_string();
    let task = tokio::spawn(async move {
        // Dropping the set (when this task is aborted) ends every session.
        let mut sessions = JoinSet::new();
        loop {
            while sessions.try_join_next().is_some() {}
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let handler = Handler {
                shared: shared.clone(),
                instance_id: instance.clone(),
                stdin: HashMap::new(),
            };
            let config = config.clone();
            sessions.spawn(async move {
                match russh::server::run_stream(config, tcp, handler).await {
                    Ok(session) => {
                        if let Err(e) = session.await {
                            tracing::debug!("builtin sshd session: {e}");
                        }
                    }
                    Err(e) => tracing::debug!("builtin sshd handshake: {e}"),
                }
            });
        }
    });
    sim.set_world(|w| {
        if let Some(i) = w.instances.iter_mut().find(|i| i.id == instance_id) {
            i.ssh = Some(addr);
        }
    });
    Ok(BuiltinSshd {
        addr,
        host_key_pub,
        task,
    })
}

struct Handler {
    shared: Arc<Shared>,
    instance_id: String,
    /// Feeds each running command's stdin; dropping the sender is EOF.
    stdin: HashMap<ChannelId, mpsc::Sender<Bytes>>,
}

impl Handler {
    /// Whether the key store holds `key` for this instance and `user` now.
    fn key_is_pushed(&self, user: &str, key: &PublicKey) -> bool {
        self.shared
            .keys
            .keys(&self.instance_id, user)
            .iter()
            .filter_map(|line| PublicKey::from_openssh(line).ok())
            .any(|k| k.key_data() == key.key_data())
    }
}

impl russh::server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.key_is_pushed(user, offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        // Checked again: the key may have expired since it was offered.
        Ok(if self.key_is_pushed(user, key.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Accepted so `ssh -t` works; commands still run without a terminal.
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        session.data(
            channel,
            Bytes::from_static(
                b"This is the eic-ssh simulator's built-in SSH server: it runs commands \
                  (ssh host 'command') but has no interactive shell.\r\n",
            ),
        )?;
        session.exit_status_request(channel, 0)?;
        session.eof(channel)?;
        session.close(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("builtin sshd cannot run sh: {e}");
                return session.channel_failure(channel);
            }
        };
        session.channel_success(channel)?;
        let handle = session.handle();
        let (tx, mut rx) = mpsc::channel::<Bytes>(16);
        self.stdin.insert(channel, tx);
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let feeder = tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                let Some(w) = stdin.as_mut() else { continue };
                if w.write_all(&chunk).await.is_err() {
                    // The command stopped reading; discard the rest.
                    stdin = None;
                }
            }
            // The sender is dropped on channel EOF: close the command's stdin.
        });
        tokio::spawn(async move {
            tokio::join!(
                pump(stdout, &handle, channel, None),
                pump(stderr, &handle, channel, Some(1)),
            );
            let status = child.wait().await;
            // Input nobody reads any more must not keep anything alive.
            feeder.abort();
            let code = match status {
                Ok(s) => s.code().map_or(255, |c| u32::try_from(c).unwrap_or(255)),
                Err(_) => 255,
            };
            let _ = handle.exit_status_request(channel, code).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.stdin.get(&channel) {
            // A closed receiver means the command is gone; drop the data.
            let _ = tx.send(Bytes::copy_from_slice(data)).await;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.stdin.remove(&channel);
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.stdin.remove(&channel);
        Ok(())
    }
}

/// Copies a child's output to the channel (as extended data `ext` when
/// given) until EOF or until the channel is gone.
async fn pump<R: AsyncRead + Unpin>(
    reader: Option<R>,
    handle: &Handle,
    channel: ChannelId,
    ext: Option<u32>,
) {
    let Some(mut reader) = reader else { return };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let data = Bytes::copy_from_slice(&buf[..n]);
        let sent = match ext {
            None => handle.data(channel, data).await,
            Some(ext) => handle.extended_data(channel, ext, data).await,
        };
        if sent.is_err() {
            return;
        }
    }
}
