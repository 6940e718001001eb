//! The network below the AWS calls and the tunnel: HTTP proxies (the
//! environment's `HTTPS_PROXY`, `NO_PROXY`...) and dialing a host name over
//! both address families (Happy Eyeballs).

pub mod dial;
pub mod proxy;

/// How long each step of connecting may take by default (an API call
/// attempt, each step of opening a tunnel), as OpenSSH's `ConnectTimeout`
/// in eic-ssh's `ssh-config` output.
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
