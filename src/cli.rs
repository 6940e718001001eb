//! The command line: clap definitions, validated into settings.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser};

use crate::route::target::Target;

/// SSH into private EC2 instances through an EC2 Instance Connect Endpoint:
/// no bastion, no public IP, no long-lived keys.
#[derive(Debug, Parser)]
#[command(
    name = "eic-ssh",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Subcommand>,

    #[command(flatten)]
    pub ssh: SshArgs,

    #[command(flatten)]
    pub verbosity: Verbosity,
}

/// The modes besides the default SSH session.
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// ProxyCommand mode: join stdin/stdout to a tunnel, for OpenSSH and all
    /// that builds on it (scp, sftp, rsync, git, Ansible, VS Code).
    Proxy(ProxyArgs),
    /// Listen on a local port and open a fresh tunnel per connection (the
    /// drop-in for `aws ec2-instance-connect open-tunnel --local-port`).
    Tunnel(TunnelArgs),
    /// Print a ready-to-paste ~/.ssh/config block that routes `ssh i-*`
    /// through eic-ssh.
    SshConfig(SshConfigArgs),
    /// Print the instance's host keys as its console output shows them, in
    /// known_hosts format (--add writes them), to pre-seed OpenSSH.
    HostKeys(HostKeysArgs),
    /// Explain why a connection fails, and check that an IP restriction
    /// through Preserve Client IP really holds: a checklist of the instance,
    /// the endpoint and their security groups.
    Doctor(DoctorArgs),
    /// Manage the lookup cache (instance → endpoint and private IP).
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
}

/// `eic-ssh cache ...`.
#[derive(Debug, clap::Subcommand)]
pub enum CacheAction {
    /// Forget every cached route.
    Clear,
    /// Print where the cache lives.
    Path,
}

/// The default mode: an SSH session with the embedded client.
#[derive(Debug, Args)]
pub struct SshArgs {
    /// The instance, as [USER@]INSTANCE-ID (e.g. ec2-user@i-0123456789abcdef0).
    #[arg(value_name = "[USER@]INSTANCE", value_parser = parse_target, required = true)]
    pub target: Option<Target>,

    /// A command to run instead of a shell. Its words are joined with spaces
    /// and run by the remote user's shell, as ssh does.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,

    #[command(flatten)]
    pub user: UserArg,

    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub host_keys: HostKeyArgs,

    /// Force a PTY, even with a command (e.g. for top).
    #[arg(short = 't', conflicts_with = "no_tty")]
    pub force_tty: bool,

    /// Never request a PTY.
    #[arg(short = 'T')]
    pub no_tty: bool,

    /// Escape character for ~. ~? ~~ (a character, ^X, or none).
    #[arg(short = 'e', value_name = "CHAR", default_value = "~", value_parser = crate::term::parse_escape_char)]
    pub escape_char: crate::term::EscapeChar,

    /// Seconds of silence before a keepalive is sent (0 disables).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub keepalive_interval: u64,

    /// Unanswered keepalives after which the connection is declared dead.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub keepalive_count: u32,

    /// Push the key only after the endpoint is found, instead of concurrently
    /// (for measuring what the concurrency saves).
    #[arg(long, hide = true)]
    pub serial_push: bool,
}

/// `eic-ssh proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The instance, as [USER@]INSTANCE-ID (OpenSSH's %h).
    #[arg(value_name = "[USER@]INSTANCE", value_parser = parse_target)]
    pub target: Target,

    /// Remote port (OpenSSH's %p): 22 or 3389.
    #[arg(value_name = "PORT", value_parser = parse_port)]
    pub port_arg: Option<u16>,

    #[command(flatten)]
    pub user: UserArg,

    #[command(flatten)]
    pub key: PushKeyArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Which public key to push for OpenSSH to authenticate with.
#[derive(Debug, Clone, Args)]
pub struct PushKeyArgs {
    /// Push this public key (default: the first key ssh-agent offers, else
    /// ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub).
    #[arg(long, value_name = "FILE", conflicts_with = "no_push")]
    pub public_key: Option<PathBuf>,

    /// Push no key (for keys managed another way).
    #[arg(long)]
    pub no_push: bool,
}

/// `eic-ssh tunnel`.
#[derive(Debug, Args)]
pub struct TunnelArgs {
    /// The instance, as [USER@]INSTANCE-ID.
    #[arg(value_name = "[USER@]INSTANCE", value_parser = parse_target)]
    pub target: Target,

    /// Local port to listen on; 0 picks a free one and prints it.
    #[arg(long, value_name = "PORT")]
    pub local_port: u16,

    /// Address to listen on (default: loopback, both 127.0.0.1 and ::1).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::IpAddr>,

    /// Refuse connections beyond this many at once (the endpoint allows 20).
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_connections: u32,

    /// Before each connection, push the user's public key (see --public-key).
    #[arg(long)]
    pub push_key: bool,

    /// Public key to push with --push-key (default: ssh-agent's first key,
    /// else ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub).
    #[arg(long, value_name = "FILE", requires = "push_key")]
    pub public_key: Option<PathBuf>,

    #[command(flatten)]
    pub user: UserArg,

    /// Seconds to let open connections finish after Ctrl-C.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub drain_timeout: u64,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `eic-ssh host-keys`.
#[derive(Debug, Args)]
pub struct HostKeysArgs {
    /// The instance.
    #[arg(value_name = "[USER@]INSTANCE", value_parser = parse_target)]
    pub target: Target,

    /// Add the keys to the known_hosts file (skipping those already there).
    #[arg(long)]
    pub add: bool,

    /// known_hosts file for --add (default: ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `eic-ssh doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The instance, as [USER@]INSTANCE-ID.
    #[arg(value_name = "[USER@]INSTANCE", value_parser = parse_target)]
    pub target: Target,

    /// This machine's public IPv4 address as AWS sees it (default: asked of
    /// https://checkip.amazonaws.com, unless --offline).
    #[arg(long, value_name = "IP")]
    pub client_ip: Option<Ipv4Addr>,

    /// The only client networks that should reach the instance (repeatable,
    /// or comma-separated): any rule that allows more fails.
    #[arg(long = "expect-cidr", value_name = "CIDR", value_delimiter = ',', value_parser = crate::aws::cidr::parse_cidr)]
    pub expect_cidr: Vec<ipnet::Ipv4Net>,

    /// Remote port to check: 22 (SSH) or 3389 (RDP).
    #[arg(short = 'p', long, value_name = "PORT", default_value_t = 22, value_parser = parse_port)]
    pub port: u16,

    /// Print the checks as JSON (for CI pipelines that audit access).
    #[arg(long)]
    pub json: bool,

    /// Do not discover this machine's public address over the internet.
    #[arg(long)]
    pub offline: bool,

    /// Also try a real connection: key push, tunnel, SSH banner, with timings.
    #[arg(long)]
    pub connect: bool,

    #[command(flatten)]
    pub user: UserArg,

    /// Check this endpoint instead of the one eic-ssh would pick.
    #[arg(long, value_name = "ID", value_parser = parse_eice_id)]
    pub eice_id: Option<String>,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `eic-ssh ssh-config`.
#[derive(Debug, Args)]
pub struct SshConfigArgs {
    /// The Host pattern the block applies to.
    #[arg(long, value_name = "PATTERN", default_value = "i-*")]
    pub host: String,

    /// Default OS user for those hosts.
    #[arg(long, value_name = "USER", default_value = "ec2-user", value_parser = parse_user)]
    pub user: String,

    /// The AWS profile and region to put in the ProxyCommand.
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `--region` and `--profile`, shared by every command that calls AWS.
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// AWS region (default: the AWS configuration's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// AWS profile from the shared config and credentials files.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
}

/// `-l/--user`, shared by every command that logs in or pushes a key.
#[derive(Debug, Clone, Default, Args)]
pub struct UserArg {
    /// OS user to log in as, and whose key is pushed (default: ec2-user, or
    /// the USER@ of the target).
    #[arg(short = 'l', long = "user", value_name = "USER", value_parser = parse_user)]
    pub user: Option<String>,
}

impl UserArg {
    /// The OS user: `-l` wins over `user@`, and `ec2-user` is the default.
    pub fn resolve(&self, target: Option<&Target>) -> String {
        os_user(self.user.as_ref(), target)
    }
}

/// How to reach the instance: AWS configuration and tunnel parameters.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Use this EC2 Instance Connect Endpoint instead of looking one up.
    #[arg(long, value_name = "ID", value_parser = parse_eice_id)]
    pub eice_id: Option<String>,

    /// The endpoint's DNS name, to skip looking it up (needs --eice-id).
    #[arg(long, value_name = "DNS", requires = "eice_id")]
    pub eice_dns: Option<String>,

    /// The instance's private IPv4 address, to skip looking it up.
    #[arg(long, value_name = "IP")]
    pub private_ip: Option<Ipv4Addr>,

    /// Remote port: 22 (SSH) or 3389 (RDP), the only ports the service allows.
    #[arg(short = 'p', long, visible_alias = "remote-port", value_name = "PORT", default_value_t = 22, value_parser = parse_port)]
    pub port: u16,

    /// Ask the endpoint to close the tunnel after this many seconds (1-3600).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub max_tunnel_duration: Option<u32>,

    /// Neither read nor write the lookup cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Seconds each step of connecting may take: the TCP connect, TLS, the
    /// websocket upgrade, the SSH handshake and authentication, and each API
    /// call attempt (as OpenSSH's ConnectTimeout).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub connect_timeout: u32,
}

impl ConnectArgs {
    /// `--connect-timeout`.
    pub fn connect_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.connect_timeout))
    }

    /// The lookup cache, unless `--no-cache`.
    pub fn cache(&self) -> Option<crate::route::cache::RouteCache> {
        (!self.no_cache).then(crate::route::cache::RouteCache::default_location)
    }

    /// Where to connect, for `instance_id`.
    pub fn destination(&self, instance_id: &str) -> crate::route::Destination {
        crate::route::Destination {
            instance_id: instance_id.to_owned(),
            port: self.port,
            eice_id: self.eice_id.clone(),
            eice_dns: self.eice_dns.clone(),
            private_ip: self.private_ip,
            max_tunnel_duration: self.max_tunnel_duration,
        }
    }
}

/// Host-key checking.
#[derive(Debug, Clone, Args)]
pub struct HostKeyArgs {
    /// known_hosts file to check and record host keys in (default: ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    /// yes: only known (or console-verified) keys; accept-new: record new
    /// keys, refuse changed ones; no: accept anything (insecure).
    #[arg(long, value_name = "MODE", value_enum, default_value = "accept-new")]
    pub strict_host_key_checking: crate::ssh::host_keys::StrictHostKeyChecking,

    /// Verify a first contact's host key against the instance's console
    /// output (ec2:GetConsoleOutput), or not.
    #[arg(long, value_name = "HOW", value_enum, default_value = "console")]
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

impl HostKeyArgs {
    /// The known_hosts file in use.
    pub fn file(&self) -> PathBuf {
        self.known_hosts
            .clone()
            .unwrap_or_else(crate::ssh::known_hosts::default_path)
    }
}

/// -v / -q.
#[derive(Debug, Clone, Copy, Args)]
pub struct Verbosity {
    /// More detail on stderr (-v info, -vv debug, -vvv trace). Secrets are always redacted.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr: no notices.
    #[arg(short = 'q', long = "quiet", global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

fn parse_target(s: &str) -> Result<Target, String> {
    s.parse()
}

fn parse_user(s: &str) -> Result<String, String> {
    crate::route::target::validate_user(s).map(|()| s.to_owned())
}

/// The service tunnels only to 22 and 3389; say so before any network call.
pub fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p @ (22 | 3389)) => Ok(p),
        _ => Err(format!(
            "port '{s}' is not allowed: EC2 Instance Connect Endpoints only open tunnels to port 22 (SSH) or 3389 (RDP)"
        )),
    }
}

fn parse_eice_id(s: &str) -> Result<String, String> {
    let ok = s.strip_prefix("eice-").is_some_and(|h| {
        !h.is_empty() && h.len() <= 17 && h.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "'{s}' is not an EC2 Instance Connect Endpoint ID: expected eice- followed by hexadecimal digits, e.g. eice-0123456789abcdef0"
        ))
    }
}

/// The OS user: `-l` wins over `user@`, and `ec2-user` is the default.
pub fn os_user(flag: Option<&String>, target: Option<&Target>) -> String {
    flag.cloned()
        .or_else(|| target.and_then(|t| t.user.clone()))
        .unwrap_or_else(|| "ec2-user".to_owned())
}

impl Cli {
    /// The `eic-ssh doctor …` command line that would examine this
    /// invocation's instance, for hints after a failed connection.
    pub fn doctor_command(&self) -> Option<String> {
        let (target, connect) = match &self.subcommand {
            None => (self.ssh.target.as_ref()?, &self.ssh.connect),
            Some(Subcommand::Proxy(a)) => (&a.target, &a.connect),
            Some(Subcommand::Tunnel(a)) => (&a.target, &a.connect),
            Some(_) => return None,
        };
        let mut cmd = format!("eic-ssh doctor {}", target.instance_id);
        if connect.port != 22 {
            cmd.push_str(&format!(" --port {}", connect.port));
        }
        if let Some(r) = &connect.aws.region {
            cmd.push_str(&format!(" --region {r}"));
        }
        if let Some(p) = &connect.aws.profile {
            cmd.push_str(&format!(" --profile {p}"));
        }
        Some(cmd)
    }
}

impl SshArgs {
    /// Whether to request a PTY: `-t` forces, `-T` forbids, and otherwise a
    /// shell (no command) on a terminal gets one, as in ssh.
    pub fn wants_pty(&self, stdin_is_terminal: bool) -> bool {
        if self.no_tty {
            false
        } else {
            self.force_tty || (self.command.is_empty() && stdin_is_terminal)
        }
    }

    /// The OS user for the session.
    pub fn user(&self) -> String {
        self.user.resolve(self.target.as_ref())
    }

    /// The remote command line, joined with spaces exactly as ssh does.
    pub fn remote_command(&self) -> Option<Vec<u8>> {
        if self.command.is_empty() {
            return None;
        }
        let mut line = Vec::new();
        for (i, word) in self.command.iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            line.extend_from_slice(word.as_encoded_bytes());
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("eic-ssh").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn command_words_are_joined_like_ssh() {
        let cli = parse(&["i-0123456789abcdef0", "--", "echo", "a b", "-n"]).unwrap();
        assert_eq!(cli.ssh.remote_command(), Some(b"echo a b -n".to_vec()));
        let cli = parse(&["i-0123456789abcdef0", "uptime"]).unwrap();
        assert_eq!(cli.ssh.remote_command(), Some(b"uptime".to_vec()));
        let cli = parse(&["i-0123456789abcdef0"]).unwrap();
        assert_eq!(cli.ssh.remote_command(), None);
    }

    #[test]
    fn user_precedence() {
        let cli = parse(&["i-0123456789abcdef0"]).unwrap();
        assert_eq!(cli.ssh.user(), "ec2-user");
        let cli = parse(&["ubuntu@i-0123456789abcdef0"]).unwrap();
        assert_eq!(cli.ssh.user(), "ubuntu");
        let cli = parse(&["-l", "admin", "ubuntu@i-0123456789abcdef0"]).unwrap();
        assert_eq!(cli.ssh.user(), "admin");
    }

    #[test]
    fn bad_values_are_usage_errors_naming_the_value() {
        for (args, needle) in [
            (
                vec!["-p", "23", "i-0123456789abcdef0"],
                "port '23' is not allowed",
            ),
            (
                vec!["--max-tunnel-duration", "0", "i-0123456789abcdef0"],
                "0",
            ),
            (
                vec!["--max-tunnel-duration", "3601", "i-0123456789abcdef0"],
                "3601",
            ),
            (vec!["i-nothex"], "'i-nothex' is not an EC2 instance ID"),
            (vec!["--eice-id", "eic-1", "i-0123456789abcdef0"], "'eic-1'"),
            (
                vec!["--private-ip", "10.0.0.300", "i-0123456789abcdef0"],
                "10.0.0.300",
            ),
        ] {
            let err = parse(&args)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        let cli = parse(&["-p", "3389", "i-0123456789abcdef0"]).unwrap();
        assert_eq!(cli.ssh.connect.port, 3389);
    }
}
