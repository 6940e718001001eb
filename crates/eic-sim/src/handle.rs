//! The running simulator: [`Simulator::start`] binds the listeners, and the
//! handle describes them, changes the world, injects latency and failures,
//! and reads the logs.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::keys::KeyStore;
use crate::names::{SIM_DNS_TAG, endpoint_dns_name, endpoint_dualstack_dns_name};
use crate::sigv4::Identity;
use crate::state::{
    Credentials, Failure, LONG_TERM_KEY_ID, LogEntry, SESSION_KEY_ID, Shared, State, TunnelEvent,
};
use crate::state_dir::create_state_dir;
use crate::{World, api, eice, faults, tls};

/// The reason of the simulator's default close at a tunnel's maximum
/// duration (code 1001), a guess: see [`Simulator::set_cap_close`].
pub const CAP_REASON: &str = "Tunnel closed: maximum tunnel duration reached";

/// A running simulator. Dropping it stops its listeners and open tunnels and
/// removes its state directory.
pub struct Simulator {
    shared: Arc<Shared>,
    // Dropping the sender wakes every task waiting on `changed()`.
    _shutdown: watch::Sender<()>,
    tasks: Vec<JoinHandle<()>>,
    // Declared last so it is removed after everything else stopped.
    dir: tempfile::TempDir,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One port on both `[::1]` and `127.0.0.1`, as a dual-stack name's
/// addresses are: bind IPv6 on port 0, then IPv4 on the same port, trying
/// again if that port is taken on IPv4.
async fn dual_stack_listeners() -> io::Result<(TcpListener, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let v6 = TcpListener::bind(("::1", 0)).await?;
        let port = v6.local_addr()?.port();
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(v4) => return Ok((v6, v4)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port free on both families")))
}

impl Simulator {
    /// Starts the listeners on 127.0.0.1 (ephemeral ports) and writes the CA
    /// bundle, key database and `AuthorizedKeysCommand` script into a fresh
    /// state directory (see [`Simulator::state_dir`]).
    pub async fn start(world: World) -> io::Result<Simulator> {
        let dir = create_state_dir()?;
        let tls = tls::build(&world.region, SIM_DNS_TAG)?;
        let ca_pem_path = dir.path().join("ca.pem");
        std::fs::write(&ca_pem_path, &tls.ca_pem)?;
        let keys = KeyStore::create(dir.path())?;

        let api_listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let eice_listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let fips_listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let api_addr = api_listener.local_addr()?;
        let eice_port = eice_listener.local_addr()?.port();
        let fips_port = fips_listener.local_addr()?.port();
        let (dual_v6, dual_v4) = dual_stack_listeners().await?;
        let dualstack_port = dual_v6.local_addr()?.port();

        let nonce = hex::encode(Sha256::digest(
            format!(
                "{:?} {} {:?}",
                SystemTime::now(),
                std::process::id(),
                dir.path()
            )
            .as_bytes(),
        ));
        let identities = vec![
            Identity {
                access_key_id: LONG_TERM_KEY_ID.to_string(),
                secret_access_key: format!("simSecret/{}", &nonce[..24]),
                session_token: None,
            },
            Identity {
                access_key_id: SESSION_KEY_ID.to_string(),
                secret_access_key: format!("simSessionSecret+{}", &nonce[24..48]),
                session_token: Some(format!("IQoJsimSessionToken/{}==", &nonce[48..64])),
            },
        ];

        let (frozen, _) = watch::channel(false);
        let (closer, _) = broadcast::channel(16);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                world,
                key_lifetime: Duration::from_secs(60),
                api_latency: Duration::ZERO,
                handshake_latency: Duration::ZERO,
                failures: HashMap::new(),
                log: Vec::new(),
                signatures: Vec::new(),
                tunnels_per_endpoint: HashMap::new(),
                tunnel_events: Vec::new(),
                client_public_ip: None,
                faults: faults::Faults::default(),
                cap_close: (1001, CAP_REASON.to_string()),
            }),
            identities,
            keys,
            frozen,
            closer,
            open_tunnels: AtomicUsize::new(0),
            frame_latency_ns: AtomicU64::new(0),
            api_addr,
            ca_pem_path,
            eice_port,
            fips_port,
            dualstack_port,
            ping_flood: std::sync::atomic::AtomicBool::new(false),
            pings_sent: AtomicU64::new(0),
            huge_frame: AtomicU64::new(0),
            stalled_connections: AtomicU64::new(0),
            request_counter: AtomicU64::new(0),
            nonce,
        });

        let (shutdown, shutdown_rx) = watch::channel(());
        let tasks = vec![
            tokio::spawn(api::serve(
                api_listener,
                tls.api_config.clone(),
                shared.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(eice::serve(
                eice_listener,
                tls.ws_config.clone(),
                shared.clone(),
                shutdown_rx.clone(),
                "eice".to_owned(),
            )),
            tokio::spawn(eice::serve(
                fips_listener,
                tls.ws_config.clone(),
                shared.clone(),
                shutdown_rx.clone(),
                "eice-fips".to_owned(),
            )),
            tokio::spawn(eice::serve(
                dual_v6,
                tls.ws_config.clone(),
                shared.clone(),
                shutdown_rx.clone(),
                "eice-dualstack-v6".to_owned(),
            )),
            tokio::spawn(eice::serve(
                dual_v4,
                tls.ws_config,
                shared.clone(),
                shutdown_rx,
                "eice-dualstack-v4".to_owned(),
            )),
        ];

        Ok(Simulator {
            shared,
            _shutdown: shutdown,
            tasks,
            dir,
        })
    }

    /// `https://localhost:<port>`: the EC2 and the EC2 Instance Connect API.
    pub fn api_url(&self) -> String {
        self.shared.api_url()
    }

    /// The `DnsName` of the world's first endpoint (the demo world's only
    /// one), see [`endpoint_dns_name`].
    pub fn eice_dns(&self) -> String {
        let world = self.world();
        let id = world
            .endpoints
            .first()
            .map(|e| e.id.clone())
            .unwrap_or_default();
        endpoint_dns_name(&id, &world.region, false)
    }

    /// The `FipsDnsName` of the world's first endpoint. It is served by a
    /// separate listener, so a client that picked the wrong name shows up
    /// in the Host check.
    pub fn eice_fips_dns(&self) -> String {
        let world = self.world();
        let id = world
            .endpoints
            .first()
            .map(|e| e.id.clone())
            .unwrap_or_default();
        endpoint_dns_name(&id, &world.region, true)
    }

    /// The loopback address of the endpoints' (non-FIPS) listener, for
    /// in-process clients that dial it directly (the client's
    /// `Tunnel::open_via`).
    pub fn eice_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.shared.eice_port))
    }

    /// `EIC_SSH_CONNECT_TO` for this simulator: the endpoints' names (any
    /// endpoint ID) to the loopback listeners, the dual-stack one by a name
    /// with both loopback addresses.
    pub fn connect_to(&self) -> String {
        self.shared.connect_to()
    }

    /// The `PublicDnsNames.Dualstack.DnsName` of the world's first endpoint
    /// (reported for endpoints with `dualstack` set), see
    /// [`endpoint_dualstack_dns_name`]. Its listener takes connections on
    /// both `[::1]` and `127.0.0.1`.
    pub fn eice_dualstack_dns(&self) -> String {
        let world = self.world();
        let id = world
            .endpoints
            .first()
            .map(|e| e.id.clone())
            .unwrap_or_default();
        endpoint_dualstack_dns_name(&id, &world.region)
    }

    /// The CA certificate (PEM) that signed every listener's certificate.
    pub fn ca_pem_path(&self) -> &Path {
        &self.shared.ca_pem_path
    }

    /// The simulator's state directory (CA bundle, `keys.db`, script, sshd files).
    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Long-term credentials (no session token).
    pub fn credentials(&self) -> Credentials {
        self.shared.credentials(LONG_TERM_KEY_ID)
    }

    /// Temporary credentials: requests must carry their session token.
    pub fn session_credentials(&self) -> Credentials {
        self.shared.credentials(SESSION_KEY_ID)
    }

    /// The environment a client process needs to use this simulator with
    /// the long-term credentials.
    pub fn env(&self) -> Vec<(String, String)> {
        self.shared.aws_env()
    }

    /// Changes the world; takes effect for the next request.
    pub fn set_world(&self, f: impl FnOnce(&mut World)) {
        f(&mut self.shared.state().world);
    }

    /// A copy of the current world.
    pub fn world(&self) -> World {
        self.shared.state().world.clone()
    }

    /// How long a pushed key stays valid (default 60 s).
    pub fn set_key_lifetime(&self, d: Duration) {
        self.shared.state().key_lifetime = d;
    }

    /// Delay added before every API answer.
    pub fn set_api_latency(&self, d: Duration) {
        self.shared.state().api_latency = d;
    }

    /// The address the endpoint takes a tunnel's client to come from (its
    /// public or NAT address; the instance sees it when Preserve Client IP
    /// is on). `None`, the default, uses the connection's TCP peer address
    /// (127.0.0.1).
    pub fn set_client_public_ip(&self, ip: Option<Ipv4Addr>) {
        self.shared.state().client_public_ip = ip;
    }

    /// Delay added before answering a websocket upgrade.
    pub fn set_handshake_latency(&self, d: Duration) {
        self.shared.state().handshake_latency = d;
    }

    /// Delay added to every relayed message, both ways. Messages are
    /// pipelined: each is held until its arrival time plus this delay, while
    /// later ones keep arriving.
    pub fn set_frame_latency(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.shared.frame_latency_ns.store(ns, Ordering::Relaxed);
    }

    /// A hostile endpoint: new tunnels send pings as fast as the client
    /// takes them and never read what it sends (its pongs pile up), until
    /// this is turned off (then they drop the connection), for at most 60
    /// seconds.
    pub fn flood_pings(&self, on: bool) {
        self.shared.ping_flood.store(on, Ordering::Relaxed);
    }

    /// A hostile endpoint: new tunnels start with the header of a binary
    /// frame of `len` bytes (0 turns it off), then wait, for at most 60
    /// seconds, for the client to hang up.
    pub fn announce_huge_frames(&self, len: u64) {
        self.shared.huge_frame.store(len, Ordering::Relaxed);
    }

    /// How many pings the flood (see [`flood_pings`](Self::flood_pings))
    /// has written to clients so far.
    pub fn pings_sent(&self) -> u64 {
        self.shared.pings_sent.load(Ordering::Relaxed)
    }

    /// While frozen, tunnels neither read nor write (not even pongs) and do
    /// not close: they look dead to the client.
    pub fn freeze_tunnels(&self, frozen: bool) {
        self.shared.frozen.send_replace(frozen);
    }

    /// The close frame tunnels get when they reach their maximum duration,
    /// from then on. The service's is not documented (its reference client
    /// tells only 1000 from the rest); the default is 1001 with
    /// [`CAP_REASON`], a guess a client must not depend on.
    pub fn set_cap_close(&self, code: u16, reason: &str) {
        self.shared.state().cap_close = (code, reason.to_string());
    }

    /// Sends a close frame with this code and reason on every open tunnel.
    pub fn close_tunnels(&self, code: u16, reason: &str) {
        // An error only means no tunnel is listening.
        let _ = self.shared.closer.send((code, reason.to_string()));
    }

    /// Makes the next call of `op` (e.g. `DescribeInstances`,
    /// `DescribeInstanceConnectEndpoints`, `SendSSHPublicKey`, `OpenTunnel`)
    /// fail with this status, error code and message, after its signature
    /// was accepted. Calls queue up: two calls fail the next two requests.
    pub fn fail_next(&self, op: &str, http_status: u16, code: &str, message: &str) {
        self.shared
            .state()
            .failures
            .entry(op.to_string())
            .or_default()
            .push_back(Failure {
                status: http_status,
                code: code.to_string(),
                message: message.to_string(),
            });
    }

    /// Every API request and tunnel handshake so far, in order of answer.
    pub fn request_log(&self) -> Vec<LogEntry> {
        self.shared.state().log.clone()
    }

    /// Every SigV4 signature the simulator was sent so far: the API
    /// requests' `Authorization` header signatures and the presigned tunnel
    /// URLs' `X-Amz-Signature`s, in order of arrival.
    pub fn signatures_seen(&self) -> Vec<String> {
        self.shared.state().signatures.clone()
    }

    /// Every tunnel opened and closed so far, with the endpoint's count of
    /// open tunnels after each, recorded under the same lock that enforces
    /// the quota.
    pub fn tunnel_log(&self) -> Vec<TunnelEvent> {
        self.shared.state().tunnel_events.clone()
    }

    /// The most tunnels ever open at once, per endpoint, from
    /// [`Simulator::tunnel_log`].
    pub fn peak_tunnels(&self) -> HashMap<String, usize> {
        let mut peaks: HashMap<String, usize> = HashMap::new();
        for e in self.shared.state().tunnel_events.iter() {
            let p = peaks.entry(e.endpoint_id.clone()).or_default();
            *p = (*p).max(e.open_after);
        }
        peaks
    }

    /// The unexpired public keys pushed for an instance and OS user.
    pub fn keys(&self, instance_id: &str, user: &str) -> Vec<String> {
        self.shared.keys.keys(instance_id, user)
    }

    /// The `AuthorizedKeysCommand` script: `script <instance-id> <user>`
    /// prints the unexpired keys pushed for them.
    pub fn authorized_keys_command(&self) -> &Path {
        self.shared.keys.script()
    }

    /// How many tunnels are open right now. A tunnel counts until the
    /// server side finished tearing it down, which can be a moment after the
    /// client saw it close.
    pub fn open_tunnels(&self) -> usize {
        self.shared.open_tunnels.load(Ordering::SeqCst)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_and_describes_itself() {
        let sim = Simulator::start(World::demo()).await.unwrap();
        assert!(sim.api_url().starts_with("https://localhost:"));
        assert!(
            sim.eice_dns()
                .ends_with(".ec2-instance-connect-endpoint.us-east-1.amazonaws.com")
        );
        assert_ne!(sim.eice_dns(), sim.eice_fips_dns());
        // The names the endpoint reports have the service's shape (pinned
        // by `endpoint_names_have_the_services_shape`).
        let id = "eice-0123456789abcdef0";
        assert_eq!(sim.eice_dns(), endpoint_dns_name(id, "us-east-1", false));
        assert_eq!(
            sim.eice_fips_dns(),
            endpoint_dns_name(id, "us-east-1", true)
        );
        assert_eq!(
            sim.eice_dualstack_dns(),
            endpoint_dualstack_dns_name(id, "us-east-1")
        );
        assert!(sim.ca_pem_path().exists());
        assert!(sim.authorized_keys_command().exists());
        assert!(sim.session_credentials().session_token.is_some());
        assert!(sim.credentials().session_token.is_none());
        let env = sim.env();
        assert!(env.iter().any(|(k, _)| k == "AWS_CA_BUNDLE"));
        let id1 = sim.shared().request_id();
        let id2 = sim.shared().request_id();
        assert_ne!(id1, id2);
        assert_eq!(id1.len(), 36);
    }
}
