//! A hostile instance opens channels eic-ssh never asked for: X11, agent,
//! session, direct-tcpip, forwarded-tcpip (no -R), direct- and
//! forwarded-streamlocal. russh's client would accept each and then serve
//! none; eic-ssh refuses them (OPEN_FAILURE, administratively prohibited)
//! and the session goes on. OpenSSH's sshd does none of this on demand, so
//! the instance here is a russh server: it takes the pushed key through the
//! simulator's AuthorizedKeysCommand, as sshd does, and on `exec` opens
//! each kind of channel toward the client before it answers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use russh::keys::{Algorithm, PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::*;

/// The address the server says a forwarded connection came in on: text
/// that would retitle the terminal if printed raw.
const HOSTILE_ADDRESS: &str = "\x1b]0;pwned\x07127.0.0.1\u{202E}";

/// What became of each channel the server opened: its kind, and `Ok` if
/// the client confirmed it, or the client's reason for refusing it.
type Outcomes = Vec<(&'static str, Result<(), String>)>;

struct Opener {
    /// The simulator's `AuthorizedKeysCommand`.
    keys_command: PathBuf,
    instance: String,
    outcomes: mpsc::UnboundedSender<Outcomes>,
}

impl Opener {
    /// Whether `key` is pushed for `user` now, as sshd asks.
    async fn pushed(&self, user: &str, key: &PublicKey) -> bool {
        let Ok(out) = tokio::process::Command::new(&self.keys_command)
            .args([&self.instance, user])
            .output()
            .await
        else {
            return false;
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| PublicKey::from_openssh(l).ok())
            .any(|k| k.key_data() == key.key_data())
    }
}

impl russh::server::Handler for Opener {
    type Error = russh::Error;

    // An offered key is acceptable (russh's default): the signed attempt
    // decides.
    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.pushed(user, key.public_key).await {
            true => Auth::Accept,
            false => Auth::reject(),
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

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let handle = session.handle();
        let outcomes = self.outcomes.clone();
        tokio::spawn(async move {
            let mut seen: Outcomes = Vec::new();
            let mut note = |kind, r: Result<Channel<Msg>, russh::Error>| {
                seen.push((
                    kind,
                    match r {
                        Ok(_) => Ok(()),
                        Err(russh::Error::ChannelOpenFailure(why)) => Err(format!("{why:?}")),
                        Err(e) => Err(format!("error: {e}")),
                    },
                ));
            };
            // Each bounded: an open nobody answers is a failure too.
            let wait = std::time::Duration::from_secs(10);
            macro_rules! open {
                ($kind:expr, $open:expr) => {
                    match tokio::time::timeout(wait, $open).await {
                        Ok(r) => note($kind, r),
                        Err(_) => note($kind, Err(russh::Error::SendError)),
                    }
                };
            }
            open!("x11", handle.channel_open_x11("127.0.0.1", 6010));
            open!("agent", handle.channel_open_agent());
            open!("session", handle.channel_open_session());
            open!(
                "direct-tcpip",
                handle.channel_open_direct_tcpip("10.0.0.9", 22, "127.0.0.1", 40000)
            );
            open!(
                "forwarded-tcpip",
                handle.channel_open_forwarded_tcpip(HOSTILE_ADDRESS, 8080, "127.0.0.1", 40001)
            );
            open!(
                "direct-streamlocal",
                handle.channel_open_direct_streamlocal("/run/agent.sock")
            );
            open!(
                "forwarded-streamlocal",
                handle.channel_open_forwarded_streamlocal("/tmp/x.sock")
            );
            let _ = outcomes.send(seen);
            // The session goes on: the command's output and status.
            let _ = handle.data(channel, Bytes::from_static(b"went on\n")).await;
            let _ = handle.exit_status_request(channel, 0).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }
}

/// Start the hostile instance and point the fixture's instance at it.
async fn start(f: &Fixture, outcomes: mpsc::UnboundedSender<Outcomes>) -> SocketAddr {
    let host_key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
    let config = Arc::new(russh::server::Config {
        keys: vec![host_key],
        auth_rejection_time: std::time::Duration::from_millis(50),
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        ..Default::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let keys_command = f.sim.authorized_keys_command().to_path_buf();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let handler = Opener {
                keys_command: keys_command.clone(),
                instance: INSTANCE.to_owned(),
                outcomes: outcomes.clone(),
            };
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(session) = russh::server::run_stream(config, tcp, handler).await {
                    let _ = session.await;
                }
            });
        }
    });
    f.sim.set_world(|w| {
        if let Some(i) = w.instances.iter_mut().find(|i| i.id == INSTANCE) {
            i.ssh = Some(addr);
        }
    });
    addr
}

#[async_test]
async fn channels_the_instance_opens_unasked_are_refused_and_the_session_goes_on() {
    let f = Fixture::new().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    start(&f, tx).await;
    let prohibited = Err(format!(
        "{:?}",
        ChannelOpenFailure::AdministrativelyProhibited
    ));
    let target = f.target();
    // The session command, exec (which never takes -R connections), and a
    // session with a -R the server refuses (so none is for 8080).
    let unasked = "-R: the instance forwarded a connection for ]0;pwned127.0.0.1:8080, which was not asked for";
    let refused =
        "the instance tried to open a forwarded-tcpip channel (for ]0;pwned127.0.0.1:8080), which";
    for (args, said, forwarded) in [
        (
            vec![target.as_str(), "--", "true"],
            "went on\n".to_owned(),
            refused,
        ),
        (
            vec!["exec", target.as_str(), "--", "true"],
            format!("web-1 ({INSTANCE}): went on\n"),
            refused,
        ),
        (
            vec![
                "--forward-best-effort",
                "-R",
                "0:127.0.0.1:9",
                target.as_str(),
                "--",
                "true",
            ],
            "went on\n".to_owned(),
            unasked,
        ),
    ] {
        let out = f.run(&args, b"").await;
        assert_eq!(out.status, Some(0), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout_str(), said, "{}", out.stderr);
        let outcomes = rx.recv().await.unwrap();
        let kinds: Vec<&str> = outcomes.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds.len(), 7, "{outcomes:?}");
        for (kind, outcome) in &outcomes {
            assert_eq!(outcome, &prohibited, "{kind}: {args:?}");
        }
        for warned in [
            "the instance tried to open an X11 channel, which eic-ssh did not ask for: refused",
            "the instance tried to open an agent channel, which eic-ssh did not ask for",
            "the instance tried to open a direct-tcpip channel (to 10.0.0.9:22), which",
            forwarded,
        ] {
            assert!(out.stderr.contains(warned), "{args:?}: {}", out.stderr);
        }
        assert!(
            !out.stderr
                .chars()
                .any(|c| (c.is_control() && c != '\n') || eic_ssh::text::is_bidi_control(c)),
            "{:?}",
            out.stderr
        );
    }
}
