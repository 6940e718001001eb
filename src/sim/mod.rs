//! A local stand-in for the AWS services eic-ssh talks to.
//!
//! The simulator runs on loopback only and is reached exclusively through
//! standard AWS configuration (endpoint URLs, a CA bundle and static
//! credentials, see [`Simulator::env`]), so the client under test runs its
//! production code paths unchanged. It serves:
//!
//! * the EC2 Query API (`DescribeInstances`, `DescribeInstanceConnectEndpoints`)
//!   and the EC2 Instance Connect JSON API (`SendSSHPublicKey`) on one HTTPS
//!   listener ([`Simulator::api_url`]);
//! * the EC2 Instance Connect Endpoint websocket (`/openTunnel`) on a second
//!   TLS listener, and the same service on a third listener for the
//!   endpoints' `FipsDnsName`. Endpoints have the service's own names
//!   ([`endpoint_dns_name`]: `<id>.51mu1a7e.ec2-instance-connect-endpoint.<region>.amazonaws.com`,
//!   with `.fips` for the FIPS name), which the client accepts like any real
//!   one; its environment ([`Simulator::env`]) maps them to the loopback
//!   listeners with `EIC_SSH_CONNECT_TO`, curl's `--connect-to`, while TLS
//!   is still verified against the name.
//!
//! Every request is SigV4-checked by an independent verifier ([`sigv4`]).
//! Tunnels relay to whatever TCP address the world names for the instance:
//! a real sshd ([`sshd::Sshd`]) or the built-in server
//! ([`builtin_sshd::start_builtin_sshd`]).

mod api;
pub mod builtin_sshd;
mod eice;
mod faults;
mod keys;
mod security;
#[cfg(test)]
mod selftest;
pub(crate) mod sigv4;
pub mod sshd;
mod tls;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use faults::{Cut, Direction, Stall};
use keys::KeyStore;
pub use security::{Peer, SecurityGroup, SgRule};
use sigv4::Identity;

/// The simulated AWS account: instances and Instance Connect Endpoints.
#[derive(Clone, Debug)]
pub struct World {
    /// EC2 instances.
    pub instances: Vec<Instance>,
    /// EC2 Instance Connect Endpoints.
    pub endpoints: Vec<Endpoint>,
    /// The only region the simulator answers for; default `us-east-1`.
    pub region: String,
    /// VPCs, for `DescribeVpcs`.
    pub vpcs: Vec<Vpc>,
    /// Subnets, for `DescribeSubnets`.
    pub subnets: Vec<Subnet>,
    /// Security groups with their rules, for `DescribeSecurityGroupRules`
    /// and enforced by the tunnel relay (see `security.rs`).
    pub security_groups: Vec<SecurityGroup>,
    /// An IAM policy capping `ec2-instance-connect:maxTunnelDuration`
    /// (`NumericLessThanEquals`): a tunnel asking for more, or for the
    /// default 3600 s, is denied with a 403.
    pub max_tunnel_duration_cap: Option<u64>,
    /// Network interfaces attached to no instance (a Lambda function's, a
    /// VPC endpoint's, one made by hand), for `DescribeNetworkInterfaces`.
    pub loose_interfaces: Vec<LooseInterface>,
}

/// A network interface attached to no instance: its description is
/// whatever its creator wrote.
#[derive(Clone, Debug, Default)]
pub struct LooseInterface {
    /// `eni-…`.
    pub id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub description: String,
    pub security_group_ids: Vec<String>,
}

/// One VPC.
#[derive(Clone, Debug)]
pub struct Vpc {
    /// E.g. `vpc-1`.
    pub id: String,
    /// The primary IPv4 CIDR, then any secondary ones.
    pub cidrs: Vec<String>,
}

/// One subnet.
#[derive(Clone, Debug)]
pub struct Subnet {
    /// E.g. `subnet-1`.
    pub id: String,
    /// The VPC it belongs to.
    pub vpc_id: String,
    /// Its IPv4 CIDR, inside one of the VPC's.
    pub cidr: String,
    /// E.g. `us-east-1a`.
    pub availability_zone: String,
}

/// One network interface of an instance.
#[derive(Clone, Debug)]
pub struct NetworkInterface {
    /// `eni-…`.
    pub id: String,
    /// The security groups on this interface.
    pub security_group_ids: Vec<String>,
}

/// One EC2 instance.
#[derive(Clone, Debug)]
pub struct Instance {
    /// `i-` followed by 8 or 17 hex digits.
    pub id: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping` or `stopped`.
    pub state: String,
    /// The private IPv4 address the tunnel names; `None` is omitted from
    /// answers (with `ipv6_address` set: an IPv6-only instance).
    pub private_ip: Option<String>,
    /// The primary IPv6 address, `ipv6Address` in answers.
    pub ipv6_address: Option<String>,
    /// The VPC the instance is in.
    pub vpc_id: String,
    /// The subnet the instance is in.
    pub subnet_id: String,
    /// E.g. `us-east-1a`.
    pub availability_zone: String,
    /// Where a tunnel to port 22 really connects.
    pub ssh: Option<SocketAddr>,
    /// Where a tunnel to port 3389 really connects.
    pub rdp: Option<SocketAddr>,
    /// What `GetConsoleOutput` returns (plain text; the API base64-encodes
    /// it). `None`: no output yet, so the answer has no `output` element.
    pub console_output: Option<String>,
    /// Makes `GetConsoleOutput` fail with `UnauthorizedOperation` (403), as
    /// for a caller without `ec2:GetConsoleOutput`.
    pub console_denied: bool,
    /// Network interfaces, the primary first; their security groups
    /// together decide what reaches the instance.
    pub network_interfaces: Vec<NetworkInterface>,
    /// Tags as (key, value), e.g. `("Name", "web-1")`.
    pub tags: Vec<(String, String)>,
}

impl Instance {
    /// The private DNS name EC2 gives the address, e.g.
    /// `ip-10-0-1-10.ec2.internal`.
    pub fn private_dns_name(&self) -> Option<String> {
        self.private_ip
            .as_ref()
            .map(|ip| format!("ip-{}.ec2.internal", ip.replace('.', "-")))
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The security groups that judge traffic to the primary private IP
    /// (what a tunnel reaches): those of the primary interface (device
    /// index 0, the first), each once. A secondary interface's groups
    /// guard only that interface's own addresses.
    pub fn security_group_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in self
            .network_interfaces
            .first()
            .into_iter()
            .flat_map(|n| &n.security_group_ids)
        {
            if !out.contains(g) {
                out.push(g.clone());
            }
        }
        out
    }
}

/// One EC2 Instance Connect Endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `eice-` followed by 17 hex digits.
    pub id: String,
    /// The VPC the endpoint serves.
    pub vpc_id: String,
    /// The subnet the endpoint's interface is in.
    pub subnet_id: String,
    /// E.g. `create-complete`, `create-in-progress`, `delete-complete`.
    pub state: String,
    /// Whether the endpoint has a `FipsDnsName`.
    pub fips: bool,
    /// The `PreserveClientIp` setting: with it on, the instance sees the
    /// client's address ([`Simulator::set_client_public_ip`]), else
    /// `private_ip`.
    pub preserve_client_ip: bool,
    /// The endpoint's security groups; their outbound rules are enforced.
    pub security_group_ids: Vec<String>,
    /// The address of the endpoint's network interface in its subnet: the
    /// source the instance sees with Preserve Client IP off.
    pub private_ip: Option<String>,
    /// `ipv4`, `dualstack` or `ipv6`: which address families it reaches
    /// in the VPC (a tunnel to the other family is refused).
    pub ip_address_type: String,
    /// Whether it has `PublicDnsNames.Dualstack` names
    /// ([`endpoint_dualstack_dns_name`]).
    pub dualstack: bool,
    /// A `DnsName` to report instead of the service-shaped one, to play a
    /// broken or hostile API (`None`: [`endpoint_dns_name`]).
    pub dns_name_override: Option<String>,
}

impl Default for World {
    fn default() -> Self {
        World {
            instances: Vec::new(),
            endpoints: Vec::new(),
            region: "us-east-1".to_string(),
            vpcs: Vec::new(),
            subnets: Vec::new(),
            security_groups: Vec::new(),
            max_tunnel_duration_cap: None,
            loose_interfaces: Vec::new(),
        }
    }
}

impl World {
    /// A small account to start from:
    ///
    /// * `i-0123456789abcdef0`: running, `vpc-1`/`subnet-1`, 10.0.1.10,
    ///   `us-east-1a`, tagged `Name=web-1`, `Role=web`;
    /// * `i-0000000000000dead`: stopped, same subnet, 10.0.1.11, tagged
    ///   `Name=web-1`, `Role=web` too (a stopped predecessor);
    /// * `i-0fedcba9876543210`: running, in `vpc-empty` (no endpoint),
    ///   10.9.0.10, tagged `Name=isolated`;
    /// * `eice-0123456789abcdef0`: `create-complete` in `vpc-1`/`subnet-1`
    ///   (interface address 10.0.1.5), with a FIPS name and Preserve Client IP
    ///   on, in security group [`DEMO_ENDPOINT_SG`];
    /// * `vpc-1` is 10.0.0.0/16 with `subnet-1` 10.0.1.0/24; `vpc-empty` is
    ///   10.9.0.0/16 with `subnet-empty` 10.9.0.0/24;
    /// * security groups, permissive but realistic: [`DEMO_ENDPOINT_SG`] allows
    ///   outbound tcp/22 and tcp/3389 to [`DEMO_INSTANCE_SG`], and
    ///   [`DEMO_INSTANCE_SG`] (on both instances in `vpc-1`, one interface
    ///   each) allows inbound tcp/22 and tcp/3389 from [`DEMO_ENDPOINT_SG`];
    ///   the instance in `vpc-empty` has [`DEMO_EMPTY_VPC_SG`] with the same
    ///   inbound rules.
    ///
    /// No instance has an `ssh` or `rdp` target (the caller fills them in)
    /// or console output.
    pub fn demo() -> World {
        let instance =
            |id: &str, state: &str, ip: &str, vpc: &str, subnet: &str, az: &str| Instance {
                id: id.to_string(),
                state: state.to_string(),
                private_ip: Some(ip.to_string()),
                ipv6_address: None,
                vpc_id: vpc.to_string(),
                subnet_id: subnet.to_string(),
                availability_zone: az.to_string(),
                ssh: None,
                rdp: None,
                console_output: None,
                console_denied: false,
                tags: match id {
                    "i-0fedcba9876543210" => vec![("Name".to_string(), "isolated".to_string())],
                    _ => vec![
                        ("Name".to_string(), "web-1".to_string()),
                        ("Role".to_string(), "web".to_string()),
                    ],
                },
                network_interfaces: vec![NetworkInterface {
                    id: format!("eni-{}", id.trim_start_matches("i-")),
                    security_group_ids: vec![
                        if vpc == "vpc-1" {
                            DEMO_INSTANCE_SG
                        } else {
                            DEMO_EMPTY_VPC_SG
                        }
                        .to_string(),
                    ],
                }],
            };
        let ingress_from_endpoint = |prefix: &str| {
            vec![
                SgRule::tcp_in(
                    &format!("sgr-{prefix}00000000000022"),
                    22,
                    Peer::Group(DEMO_ENDPOINT_SG.into()),
                ),
                SgRule::tcp_in(
                    &format!("sgr-{prefix}00000000003389"),
                    3389,
                    Peer::Group(DEMO_ENDPOINT_SG.into()),
                ),
            ]
        };
        World {
            instances: vec![
                instance(
                    "i-0123456789abcdef0",
                    "running",
                    "10.0.1.10",
                    "vpc-1",
                    "subnet-1",
                    "us-east-1a",
                ),
                instance(
                    "i-0000000000000dead",
                    "stopped",
                    "10.0.1.11",
                    "vpc-1",
                    "subnet-1",
                    "us-east-1a",
                ),
                instance(
                    "i-0fedcba9876543210",
                    "running",
                    "10.9.0.10",
                    "vpc-empty",
                    "subnet-empty",
                    "us-east-1b",
                ),
            ],
            endpoints: vec![Endpoint {
                id: "eice-0123456789abcdef0".to_string(),
                vpc_id: "vpc-1".to_string(),
                subnet_id: "subnet-1".to_string(),
                state: "create-complete".to_string(),
                fips: true,
                preserve_client_ip: true,
                security_group_ids: vec![DEMO_ENDPOINT_SG.to_string()],
                private_ip: Some("10.0.1.5".to_string()),
                ip_address_type: "ipv4".to_string(),
                dualstack: false,
                dns_name_override: None,
            }],
            region: "us-east-1".to_string(),
            vpcs: vec![
                Vpc {
                    id: "vpc-1".to_string(),
                    cidrs: vec!["10.0.0.0/16".to_string()],
                },
                Vpc {
                    id: "vpc-empty".to_string(),
                    cidrs: vec!["10.9.0.0/16".to_string()],
                },
            ],
            subnets: vec![
                Subnet {
                    id: "subnet-1".to_string(),
                    vpc_id: "vpc-1".to_string(),
                    cidr: "10.0.1.0/24".to_string(),
                    availability_zone: "us-east-1a".to_string(),
                },
                Subnet {
                    id: "subnet-empty".to_string(),
                    vpc_id: "vpc-empty".to_string(),
                    cidr: "10.9.0.0/24".to_string(),
                    availability_zone: "us-east-1b".to_string(),
                },
            ],
            security_groups: vec![
                SecurityGroup {
                    id: DEMO_ENDPOINT_SG.to_string(),
                    name: "eice".to_string(),
                    vpc_id: "vpc-1".to_string(),
                    rules: vec![
                        SgRule::tcp_out(
                            "sgr-0e000000000000022",
                            22,
                            Peer::Group(DEMO_INSTANCE_SG.into()),
                        ),
                        SgRule::tcp_out(
                            "sgr-0e000000000003389",
                            3389,
                            Peer::Group(DEMO_INSTANCE_SG.into()),
                        ),
                    ],
                },
                SecurityGroup {
                    id: DEMO_INSTANCE_SG.to_string(),
                    name: "instance".to_string(),
                    vpc_id: "vpc-1".to_string(),
                    rules: ingress_from_endpoint("0a0"),
                },
                SecurityGroup {
                    id: DEMO_EMPTY_VPC_SG.to_string(),
                    name: "instance".to_string(),
                    vpc_id: "vpc-empty".to_string(),
                    rules: ingress_from_endpoint("0b0"),
                },
            ],
            max_tunnel_duration_cap: None,
            loose_interfaces: Vec::new(),
        }
    }

    pub(crate) fn instance(&self, id: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.id == id)
    }

    pub(crate) fn endpoint(&self, id: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.id == id)
    }

    /// The security group `id`, to change its rules.
    pub fn security_group_mut(&mut self, id: &str) -> Option<&mut SecurityGroup> {
        self.security_groups.iter_mut().find(|g| g.id == id)
    }
}

/// The demo endpoint's security group.
pub const DEMO_ENDPOINT_SG: &str = "sg-0123456789abcdef0";
/// The security group of the demo instances in `vpc-1`.
pub const DEMO_INSTANCE_SG: &str = "sg-0a1b2c3d4e5f60718";
/// The security group of the demo instance in `vpc-empty`.
pub const DEMO_EMPTY_VPC_SG: &str = "sg-0b1b2c3d4e5f60718";

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
    /// Open tunnels per endpoint id, for the 20-connection quota.
    pub tunnels_per_endpoint: HashMap<String, usize>,
    /// Every change of those counts, in order.
    pub tunnel_events: Vec<TunnelEvent>,
    /// The client's public address as the endpoint sees it; `None`: the
    /// TCP peer address of the tunnel connection.
    pub client_public_ip: Option<Ipv4Addr>,
    /// Faults armed for the next requests and connections.
    pub faults: faults::Faults,
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
    pub eice_port: u16,
    pub fips_port: u16,
    /// The port of the dual-stack listener pair (`[::1]` and `127.0.0.1`).
    pub dualstack_port: u16,
    /// `true`: tunnels flood the client with pings and never read.
    pub ping_flood: std::sync::atomic::AtomicBool,
    /// Endpoint connections that stalled on purpose.
    pub stalled_connections: AtomicU64,
    request_counter: AtomicU64,
    nonce: String,
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

    pub(crate) fn record(&self, op: &str, started: Instant, status: u16, detail: &str) {
        self.state().log.push(LogEntry {
            op: op.to_string(),
            started,
            finished: Instant::now(),
            status,
            detail: detail.to_string(),
        });
    }

    pub(crate) fn frame_latency(&self) -> Duration {
        Duration::from_nanos(self.frame_latency_ns.load(Ordering::Relaxed))
    }
}

/// A running simulator. Dropping it stops its listeners and open tunnels and
/// removes its state directory.
pub struct Simulator {
    shared: Arc<Shared>,
    api_addr: SocketAddr,
    // Dropping the sender wakes every task waiting on `changed()`.
    _shutdown: watch::Sender<()>,
    tasks: Vec<JoinHandle<()>>,
    ca_pem_path: PathBuf,
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

/// The second label of every simulated endpoint name (the service puts a
/// short random identifier there).
pub const SIM_DNS_TAG: &str = "51mu1a7e";

/// The simulated endpoint `id`'s `DnsName` (or, with `fips`, its
/// `FipsDnsName`) in `region`, shaped as the service's.
pub fn endpoint_dns_name(id: &str, region: &str, fips: bool) -> String {
    let fips = if fips { "fips." } else { "" };
    format!("{id}.{SIM_DNS_TAG}.{fips}ec2-instance-connect-endpoint.{region}.amazonaws.com")
}

/// The simulated endpoint `id`'s `PublicDnsNames.Dualstack.DnsName` in
/// `region`. The service does not document that name's shape; this one
/// follows the AWS dual-stack convention (a `dualstack` label, the `api.aws`
/// suffix) and passes the client's endpoint-name check.
pub fn endpoint_dualstack_dns_name(id: &str, region: &str) -> String {
    format!("{id}.{SIM_DNS_TAG}.dualstack.ec2-instance-connect-endpoint.{region}.api.aws")
}

const LONG_TERM_KEY_ID: &str = "AKIDSIMEXAMPLE1";
const SESSION_KEY_ID: &str = "AKIDSIMSESSION1";

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
                tunnels_per_endpoint: HashMap::new(),
                tunnel_events: Vec::new(),
                client_public_ip: None,
                faults: faults::Faults::default(),
            }),
            identities,
            keys,
            frozen,
            closer,
            open_tunnels: AtomicUsize::new(0),
            frame_latency_ns: AtomicU64::new(0),
            eice_port,
            fips_port,
            dualstack_port,
            ping_flood: std::sync::atomic::AtomicBool::new(false),
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
            api_addr,
            _shutdown: shutdown,
            tasks,
            ca_pem_path,
            dir,
        })
    }

    /// `https://localhost:<port>`: the EC2 and the EC2 Instance Connect API.
    pub fn api_url(&self) -> String {
        format!("https://localhost:{}", self.api_addr.port())
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
    /// in-process clients that dial it directly ([`crate::tunnel::Tunnel::open_via`]).
    pub fn eice_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.shared.eice_port))
    }

    /// `EIC_SSH_CONNECT_TO` for this simulator: the endpoints' names (any
    /// endpoint ID) to the loopback listeners, the dual-stack one by a name
    /// with both loopback addresses.
    pub fn connect_to(&self) -> String {
        let region = self.shared.state().world.region.clone();
        let name = |fips| endpoint_dns_name("", &region, fips);
        // The dual-stack name has both families, `[::1]` first as a
        // resolver orders them: the listener pair takes either, and the
        // client races them (Happy Eyeballs).
        let dual = endpoint_dualstack_dns_name("", &region);
        format!(
            "*{}:443:127.0.0.1:{},*{}:443:127.0.0.1:{},*{dual}:443:[::1]:{},*{dual}:443:127.0.0.1:{}",
            name(false),
            self.shared.eice_port,
            name(true),
            self.shared.fips_port,
            self.shared.dualstack_port,
            self.shared.dualstack_port
        )
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
        &self.ca_pem_path
    }

    /// The simulator's state directory (CA bundle, `keys.db`, script, sshd files).
    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Long-term credentials (no session token).
    pub fn credentials(&self) -> Credentials {
        self.identity_credentials(LONG_TERM_KEY_ID)
    }

    /// Temporary credentials: requests must carry their session token.
    pub fn session_credentials(&self) -> Credentials {
        self.identity_credentials(SESSION_KEY_ID)
    }

    fn identity_credentials(&self, akid: &str) -> Credentials {
        self.shared
            .identities
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

    /// The environment a client process needs to use this simulator with
    /// the long-term credentials.
    pub fn env(&self) -> Vec<(String, String)> {
        let creds = self.credentials();
        let region = self.shared.state().world.region.clone();
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
            (crate::tunnel::connect_to::VAR, self.connect_to()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The hermetic environment of a client process, shared by the tests,
    /// the demo and the bench: nothing from the developer's own AWS or SSH
    /// set-up leaks in (`HOME`, the AWS config and credentials files live
    /// under `home`), and AWS is reached through standard settings only.
    pub fn client_env(
        &self,
        home: &std::path::Path,
        tmp: &std::path::Path,
    ) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = vec![
            ("PATH".into(), std::env::var_os("PATH").unwrap_or_default()),
            ("HOME".into(), home.into()),
            ("TMPDIR".into(), tmp.into()),
            ("AWS_CONFIG_FILE".into(), home.join("aws-config").into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                home.join("aws-credentials").into(),
            ),
        ];
        env.extend(self.env().into_iter().map(|(k, v)| (k.into(), v.into())));
        env
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
    /// takes them and never read what it sends (its pongs pile up), for
    /// at most 20 seconds.
    pub fn flood_pings(&self, on: bool) {
        self.shared.ping_flood.store(on, Ordering::Relaxed);
    }

    /// While frozen, tunnels neither read nor write (not even pongs) and do
    /// not close: they look dead to the client.
    pub fn freeze_tunnels(&self, frozen: bool) {
        self.shared.frozen.send_replace(frozen);
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

/// Creates the per-simulator state directory under a base directory that is
/// not writable by others (sshd refuses an `AuthorizedKeysCommand` that is):
/// `$EIC_SSH_SIM_DIR`, else `$HOME/.cache/eic-ssh/sim`.
fn create_state_dir() -> io::Result<tempfile::TempDir> {
    let base = match std::env::var_os("EIC_SSH_SIM_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME").ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "neither EIC_SSH_SIM_DIR nor HOME is set: no place for the simulator's state",
                )
            })?;
            PathBuf::from(home).join(".cache/eic-ssh/sim")
        }
    };
    if !base.exists() {
        std::fs::create_dir_all(&base)?;
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700))?;
    }
    // sshd needs absolute paths in its configuration.
    let base = base.canonicalize()?;
    let dir = tempfile::Builder::new().prefix("sim-").tempdir_in(&base)?;
    // sshd (possibly another user) must be able to traverse it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Checks that `path` and every ancestor are owned by root and not
/// writable by group or others: sshd refuses to run an
/// `AuthorizedKeysCommand` otherwise.
pub(crate) fn check_safe_path(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut p = Some(path);
    while let Some(dir) = p {
        let md = std::fs::metadata(dir)?;
        if md.uid() != 0 || md.mode() & 0o022 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} (uid {}, mode {:o}) is unsafe for sshd's AuthorizedKeysCommand: the \
                     script and every directory above it must be owned by root and not group- \
                     or world-writable. Point EIC_SSH_SIM_DIR at such a directory (default: \
                     $HOME/.cache/eic-ssh/sim).",
                    dir.display(),
                    md.uid(),
                    md.mode() & 0o7777
                ),
            ));
        }
        p = dir.parent();
    }
    Ok(())
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
        // Every name an endpoint reports passes the client's check.
        for name in [
            sim.eice_dns(),
            sim.eice_fips_dns(),
            sim.eice_dualstack_dns(),
        ] {
            assert_eq!(
                crate::aws::endpoint_name::check(&name, "eice-0123456789abcdef0", "us-east-1"),
                Ok(()),
                "{name}"
            );
        }
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
