//! The option groups many commands share: AWS's region and profile, the
//! user, the connection's timeouts and address, host-key checking, and the
//! verbosity and colour flags.

use std::path::PathBuf;

use clap::{ArgAction, Args};

use super::complete::port_candidates;
use super::parse::{self, parse_eice_id, parse_port, parse_user};

/// `--region` and `--profile`, shared by every command that calls AWS.
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// AWS region
    ///
    /// Default: the AWS configuration's.
    #[arg(long, value_name = "REGION", value_parser = parse::parse_region)]
    pub region: Option<String>,

    /// AWS profile
    ///
    /// From the shared config and credentials files; its credentials sign,
    /// even with AWS_ACCESS_KEY_ID set.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
}

/// `-l/--user`, shared by every command that logs in or pushes a key.
#[derive(Debug, Clone, Default, Args)]
pub struct UserArg {
    /// OS user (default: ec2-user)
    ///
    /// The user to log in as, and whose key is pushed; the target's USER@
    /// sets it too (-l wins).
    #[arg(short = 'l', long = "user", value_name = "USER", value_parser = parse_user)]
    pub user: Option<String>,
}

/// How to reach the instance: AWS configuration and tunnel parameters.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Use this EC2 Instance Connect Endpoint instead of looking one up.
    #[arg(hide_short_help = true, long, value_name = "ID", value_parser = parse_eice_id)]
    pub eice_id: Option<String>,

    /// The endpoint's DNS name, to skip looking it up (needs --eice-id).
    #[arg(hide_short_help = true, long, value_name = "DNS", requires = "eice_id")]
    pub eice_dns: Option<String>,

    /// The instance's private IP address (IPv4, or IPv6 for an IPv6-only
    /// instance), to skip looking it up.
    #[arg(hide_short_help = true, long, value_name = "IP")]
    pub private_ip: Option<std::net::IpAddr>,

    /// Remote port: 22 (SSH) or 3389 (RDP), the only ports the service allows.
    #[arg(hide_short_help = true, short = 'p', long, visible_alias = "remote-port", value_name = "PORT", default_value_t = 22, value_parser = parse_port, add = port_candidates())]
    pub port: u16,

    /// Ask the endpoint to close the tunnel after this many seconds (1-3600).
    #[arg(hide_short_help = true, long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub max_tunnel_duration: Option<u32>,

    /// Neither read nor write the lookup cache.
    #[arg(hide_short_help = true, long)]
    pub no_cache: bool,

    /// Seconds each step of connecting may take: the TCP connect, TLS, the
    /// websocket upgrade, the SSH handshake and authentication, and each API
    /// call attempt (as OpenSSH's ConnectTimeout).
    #[arg(hide_short_help = true, long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub connect_timeout: u32,
}

/// Host-key checking.
#[derive(Debug, Clone, Args)]
pub struct HostKeyArgs {
    /// known_hosts file to check and record host keys in (default: ~/.ssh/known_hosts).
    #[arg(hide_short_help = true, long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    /// yes: only known (or console-verified) keys; accept-new: record new
    /// keys, refuse changed ones; no: accept anything (insecure).
    #[arg(
        hide_short_help = true,
        long,
        value_name = "MODE",
        value_enum,
        default_value = "accept-new"
    )]
    pub strict_host_key_checking: crate::ssh::host_keys::StrictHostKeyChecking,

    /// Verify a first contact's host key against the instance's console
    /// output (ec2:GetConsoleOutput), or not.
    #[arg(
        hide_short_help = true,
        long,
        value_name = "HOW",
        value_enum,
        default_value = "console"
    )]
    pub verify_host_key: VerifyHostKey,
}

/// `--verify-host-key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyHostKey {
    /// Check a new key against the host keys cloud-init printed on the console.
    Console,
    /// Do not consult the console.
    None,
}

/// -v / -q.
#[derive(Debug, Clone, Copy, Args)]
pub struct Verbosity {
    /// More detail on stderr (-v, -vv, -vvv)
    ///
    /// -v info, -vv debug, -vvv trace. Secrets are always redacted.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr
    ///
    /// No notices, no progress or status lines.
    #[arg(short = 'q', long = "quiet", global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Colour: auto (when a terminal and NO_COLOR is unset), always, never.
    #[arg(
        long,
        value_name = "WHEN",
        value_enum,
        default_value = "auto",
        global = true,
        hide_short_help = true
    )]
    pub color: crate::term::color::ColorWhen,
}
