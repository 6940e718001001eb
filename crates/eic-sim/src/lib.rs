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
//!
//! The code, one job per module: [`World`] is the simulated account;
//! [`Simulator`] the running handle that starts the listeners, changes the
//! world and reads the logs; `state` what the listeners share; `api` the
//! EC2 and Instance Connect APIs; `eice` the endpoint's websocket
//! (admission, upgrade, relay); [`names`] the endpoint names and the
//! variable the client shares with it; [`ClientHome`] a client's hermetic
//! HOME.

mod api;
pub mod builtin_sshd;
mod eice;
mod faults;
mod handle;
mod home;
mod keys;
pub mod names;
mod security;
#[cfg(test)]
mod selftest;
pub mod sigv4;
pub mod sshd;
mod state;
mod state_dir;
mod tls;
mod world;

pub use faults::{Cut, Direction, Stall};
pub use handle::{CAP_REASON, Simulator};
pub use home::ClientHome;
pub use names::{CONNECT_TO_VAR, SIM_DNS_TAG, endpoint_dns_name, endpoint_dualstack_dns_name};
pub use security::{Peer, SecurityGroup, SgRule};
pub use state::{Credentials, LogEntry, TunnelEvent};
pub(crate) use state::{Failure, Shared, lock, unix_now};
pub(crate) use state_dir::check_safe_path;
pub use world::{
    DEMO_EMPTY_VPC_SG, DEMO_ENDPOINT_SG, DEMO_INSTANCE_SG, Endpoint, Instance, LooseInterface,
    NetworkInterface, Subnet, Vpc, World,
};
