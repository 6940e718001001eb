//! What the listeners share with the [`Simulator`](crate::Simulator)
//! handle: the world and the logs behind one lock, the identities, the key
//! store and the controls read on every frame.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};

use crate::World;
use crate::faults;
use crate::keys::KeyStore;
use crate::names::{CONNECT_TO_VAR, endpoint_dns_name, endpoint_dualstack_dns_name};
use crate::sigv4::Identity;

/// AWS credentials the simulator accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token, when the identity requires one.
    pub session_token: Option<String>,
}

/// The access key IDs of the long-term and the temporary identity.
pub(crate) const LONG_TERM_KEY_ID: &str = "AKIDSIMEXAMPLE1";
pub(crate) const SESSION_KEY_ID: &str = "AKIDSIMSESSION1";

/// One API request or tunnel handshake the simulator answered.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// `DescribeInstances`, `DescribeInstanceConnectEndpoints`,
    /// `SendSSHPublicKey`, `OpenTunnel`, or the unknown action's name.
    pub op: String,
    /// When the request arrived (before any injected latency).
    pub started: Instant,
    /// When the answer was ready to send (after any injected latency).
    pub finished: Instant,
    /// The HTTP status answered (101 for an accepted tunnel).
    pub status: u16,
    /// The error code for failures; for successes a short description.
    pub detail: String,
    /// The request ID the answer carried (`RequestId` in an API answer's
    /// body and `x-amz-request-id`, or the handshake's `x-amzn-requestid`);
    /// `None` for a request that was never answered.
    pub request_id: Option<String>,
}

/// A tunnel opened or closed at an endpoint, with the count after it: the
/// log that shows the 20-connection quota held.
#[derive(Clone, Debug)]
pub struct TunnelEvent {
    /// When the count changed.
    pub at: Instant,
    /// The endpoint.
    pub endpoint_id: String,
    /// The instance the tunnel leads to.
    pub instance_id: String,
    /// `true` when a tunnel opened, `false` when one closed.
    pub opened: bool,
    /// Tunnels open at the endpoint right after this event.
    pub open_after: usize,
}

/// A failure queued with [`Simulator::fail_next`].
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Mutable simulator state behind one lock.
pub(crate) struct State {
    pub world: World,
    pub key_lifetime: Duration,
    pub api_latency: Duration,
    pub handshake_latency: Duration,
    pub failures: HashMap<String, VecDeque<Failure>>,
    pub log: Vec<LogEntry>,
    /// Every SigV4 signature a request carried (an `Authorization`
    /// header's `Signature=`, a presigned URL's `X-Amz-Signature`), so
    /// tests can check that no client wrote one down.
    pub signatures: Vec<String>,
    /// Open tunnels per endpoint id, for the 20-connection quota.
    pub tunnels_per_endpoint: HashMap<String, usize>,
    /// Every change of those counts, in order.
    pub tunnel_events: Vec<TunnelEvent>,
    /// The client's public address as the endpoint sees it; `None`: the
    /// TCP peer address of the tunnel connection.
    pub client_public_ip: Option<Ipv4Addr>,
    /// Faults armed for the next requests and connections.
    pub faults: faults::Faults,
    /// The close frame (code, reason) a tunnel gets at its maximum
    /// duration. What the service sends is not documented: tests try
    /// several.
    pub cap_close: (u16, String),
}

/// What the listeners share with the [`Simulator`] handle.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub identities: Vec<Identity>,
    pub keys: KeyStore,
    /// `true` while tunnels must hold their bytes.
    pub frozen: watch::Sender<bool>,
    /// Close code and reason sent to every open tunnel.
    pub closer: broadcast::Sender<(u16, String)>,
    pub open_tunnels: AtomicUsize,
    /// Frame latency in nanoseconds; atomic because every frame reads it.
    pub frame_latency_ns: AtomicU64,
    /// The EC2 and Instance Connect API listener.
    pub api_addr: SocketAddr,
    /// The CA certificate (PEM) that signed every listener's certificate.
    pub ca_pem_path: PathBuf,
    pub eice_port: u16,
    pub fips_port: u16,
    /// The port of the dual-stack listener pair (`[::1]` and `127.0.0.1`).
    pub dualstack_port: u16,
    /// `true`: tunnels flood the client with pings and never read.
    pub ping_flood: std::sync::atomic::AtomicBool,
    /// Pings the flood wrote to clients.
    pub pings_sent: AtomicU64,
    /// `true`: tunnels announce a binary frame of this many bytes (0: off)
    /// and send none of it.
    pub huge_frame: AtomicU64,
    /// Endpoint connections that stalled on purpose.
    pub stalled_connections: AtomicU64,
    pub request_counter: AtomicU64,
    pub nonce: String,
}

/// Locks a mutex, carrying on if a panicking thread poisoned it (the state
/// is plain data, always left consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// A fresh request id shaped like AWS's (a UUID).
    pub(crate) fn request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        let h = hex::encode(Sha256::digest(format!("{}:{n}", self.nonce).as_bytes()));
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Takes the next failure queued for `op`, if any.
    pub(crate) fn take_failure(&self, op: &str) -> Option<Failure> {
        self.state()
            .failures
            .get_mut(op)
            .and_then(VecDeque::pop_front)
    }

    /// Note the SigV4 signature a request carried.
    pub(crate) fn saw_signature(&self, signature: &str) {
        if !signature.is_empty() {
            self.state().signatures.push(signature.to_owned());
        }
    }

    pub(crate) fn record(
        &self,
        op: &str,
        started: Instant,
        status: u16,
        detail: &str,
        request_id: Option<&str>,
    ) {
        self.state().log.push(LogEntry {
            op: op.to_string(),
            started,
            finished: Instant::now(),
            status,
            detail: detail.to_string(),
            request_id: request_id.map(str::to_owned),
        });
    }

    pub(crate) fn frame_latency(&self) -> Duration {
        Duration::from_nanos(self.frame_latency_ns.load(Ordering::Relaxed))
    }

    /// `https://localhost:<port>`: the EC2 and the EC2 Instance Connect API.
    pub(crate) fn api_url(&self) -> String {
        format!("https://localhost:{}", self.api_addr.port())
    }

    /// `EIC_SSH_CONNECT_TO` for these listeners: the endpoints' names (any
    /// endpoint ID) to the loopback listeners, the dual-stack one by a name
    /// with both loopback addresses.
    pub(crate) fn connect_to(&self) -> String {
        let region = self.state().world.region.clone();
        let name = |fips| endpoint_dns_name("", &region, fips);
        // The dual-stack name has both families, `[::1]` first as a
        // resolver orders them: the listener pair takes either, and the
        // client races them (Happy Eyeballs).
        let dual = endpoint_dualstack_dns_name("", &region);
        format!(
            "*{}:443:127.0.0.1:{},*{}:443:127.0.0.1:{},*{dual}:443:[::1]:{},*{dual}:443:127.0.0.1:{}",
            name(false),
            self.eice_port,
            name(true),
            self.fips_port,
            self.dualstack_port,
            self.dualstack_port
        )
    }

    /// The credentials of the identity with access key ID `akid`.
    pub(crate) fn credentials(&self, akid: &str) -> Credentials {
        self.identities
            .iter()
            .find(|i| i.access_key_id == akid)
            .map(|i| Credentials {
                access_key_id: i.access_key_id.clone(),
                secret_access_key: i.secret_access_key.clone(),
                session_token: i.session_token.clone(),
            })
            .unwrap_or_else(|| Credentials {
                access_key_id: akid.to_string(),
                secret_access_key: String::new(),
                session_token: None,
            })
    }

    /// The AWS settings a client process needs to use these listeners with
    /// the long-term credentials, read now (the region is the world's).
    pub(crate) fn aws_env(&self) -> Vec<(String, String)> {
        let creds = self.credentials(LONG_TERM_KEY_ID);
        let region = self.state().world.region.clone();
        [
            ("AWS_ENDPOINT_URL_EC2", self.api_url()),
            ("AWS_ENDPOINT_URL_EC2_INSTANCE_CONNECT", self.api_url()),
            (
                "AWS_CA_BUNDLE",
                self.ca_pem_path.to_string_lossy().into_owned(),
            ),
            ("AWS_ACCESS_KEY_ID", creds.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key),
            ("AWS_REGION", region),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            (CONNECT_TO_VAR, self.connect_to()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}
