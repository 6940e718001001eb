//! Integration tests: the real `eic-ssh` binary against the in-process AWS
//! simulator and a real OpenSSH sshd, all on loopback. One test binary with
//! shared fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod cache;
mod channels;
mod claims;
mod cli;
mod clock;
mod closes;
mod colour;
mod concurrent;
mod cp;
mod cp_hostile;
mod cp_links;
mod docs;
mod doctor;
mod exec;
mod exec_closed_stdout;
mod faults;
mod fleet;
mod forward;
mod hardening;
mod help;
mod hostile_sftp;
mod hostkeys;
mod interactive;
mod ipv6;
mod keytypes;
mod layering;
mod openssh;
mod openssh_host_keys;
mod profiles;
mod properties;
mod proxy;
mod restrict;
mod security;
mod shell;
mod ssh_config_upgrade;
mod stdout;
mod support;
mod targets;
