//! SSH over the tunnel: the session, host-key policy, known_hosts and the
//! host keys that the console shows.

pub mod capture;
pub mod console_keys;
pub mod forward;
pub mod host_keys;
pub mod known_hosts;
pub mod openssh_trust;
pub mod recorder;
pub mod session;
pub mod sftp;
