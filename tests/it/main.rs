//! Integration tests: the real `eic-ssh` binary against the in-process AWS
//! simulator and a real OpenSSH sshd, all on loopback. One test binary with
//! shared fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cache;
mod channels;
mod claims;
mod cli;
mod colour;
mod concurrent;
mod cp;
mod cp_hostile;
mod docs;
mod doctor;
mod exec;
mod faults;
mod fleet;
mod forward;
mod hardening;
mod hostile_sftp;
mod hostkeys;
mod interactive;
mod ipv6;
mod keytypes;
mod layering;
mod openssh;
mod profiles;
mod properties;
mod proxy;
mod restrict;
mod security;
mod shell;
mod stdout;
mod support;
mod targets;
