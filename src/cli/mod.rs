//! The command line: clap definitions, validated into settings.

mod complete;
mod meaning;
mod parse;
pub mod usage;

use complete::{copy_completer, port_candidates, target_completer};
use parse::*;
pub use parse::{os_user, parse_host_patterns, parse_port};
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser};

use crate::target::syntax::Target;

/// SSH into private EC2 instances through an EC2 Instance Connect Endpoint:
/// no bastion, no public IP, no long-lived keys.
#[derive(Debug, Parser)]
#[command(
    name = "eic-ssh",
    version,
    long_version = long_version(),
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

    /// When a target matches several instances, never open the picker:
    /// list them on stderr and exit 2.
    #[arg(long, global = true)]
    pub no_pick: bool,
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
    /// Restrict who reaches an instance through the endpoint to the given
    /// client networks (Preserve Client IP and the instance's security
    /// group): prints a plan to review; --apply makes it so and checks it.
    Restrict(RestrictArgs),
    /// List instances: ID, Name, state, private IP, availability zone and
    /// the endpoint that would serve each.
    Ls(LsArgs),
    /// Run one command on every instance the targets match, in parallel,
    /// within the endpoints' limit of 20 connections each.
    Exec(ExecArgs),
    /// Copy files to, from or between instances over SFTP, with scp's
    /// syntax: a remote side is [USER@]INSTANCE:PATH.
    Cp(CpArgs),
    /// Manage the lookup cache (instance → endpoint and private IP).
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Print a shell completion script. Install it with:
    ///   bash:  eic-ssh completions bash > ~/.local/share/bash-completion/completions/eic-ssh
    ///   zsh:   eic-ssh completions zsh > "${fpath[1]}/_eic-ssh"  (or: source <(eic-ssh completions zsh) in ~/.zshrc)
    ///   fish:  eic-ssh completions fish > ~/.config/fish/completions/eic-ssh.fish
    ///   elvish: eic-ssh completions elvish >> ~/.config/elvish/rc.elv
    ///   powershell: eic-ssh completions powershell >> $PROFILE
    /// Instance IDs complete from the lookup cache, without calling AWS.
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the man page (roff), generated from the same definitions as
    /// --help. Install: eic-ssh man > ~/.local/share/man/man1/eic-ssh.1
    Man {
        /// A subcommand's own page (e.g. doctor), instead of eic-ssh's.
        #[arg(value_name = "SUBCOMMAND")]
        subcommand: Option<String>,
    },
}

/// The shells `eic-ssh completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

/// `--version`: the version, the git commit when the build knew it
/// (`EIC_SSH_GIT_COMMIT` at build time), and the versions of russh and the
/// AWS SDK.
pub fn long_version() -> &'static str {
    static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let commit = option_env!("EIC_SSH_GIT_COMMIT")
            .filter(|c| !c.is_empty())
            .map(|c| format!(" (commit {c})"))
            .unwrap_or_default();
        let russh_id = format!("{:?}", russh::client::Config::default().client_id);
        let russh: String = russh_id
            .split("russh_")
            .nth(1)
            .unwrap_or("unknown")
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .collect();
        format!(
            "{}{commit}\nrussh {russh}\naws-sdk-ec2 {}\naws-sdk-ec2instanceconnect {}",
            env!("CARGO_PKG_VERSION"),
            aws_sdk_ec2::meta::PKG_VERSION,
            aws_sdk_ec2instanceconnect::meta::PKG_VERSION,
        )
    });
    &TEXT
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
    /// The instance, as [USER@]TARGET: an instance ID, a private IPv4
    /// address, a private DNS name, tag:KEY=VALUE, or else a Name tag (e.g.
    /// ec2-user@web-1). Omitted on a terminal: choose from a list.
    #[arg(value_name = "[USER@]TARGET", value_parser = parse_target, add = target_completer())]
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

    /// Forward local port PORT (on BIND, loopback by default) to HOST:HOSTPORT
    /// as the instance resolves and reaches it, e.g. a database (repeatable).
    #[arg(short = 'L', value_name = "[BIND:]PORT:HOST:HOSTPORT", value_parser = parse_port_forward)]
    pub local_forward: Vec<crate::ssh::forward::PortForward>,

    /// Have the instance listen on PORT (on BIND, its loopback by default)
    /// and carry each connection back to HOST:HOSTPORT as reached from here
    /// (repeatable; port 0 lets the instance pick one).
    #[arg(short = 'R', value_name = "[BIND:]PORT:HOST:HOSTPORT", value_parser = parse_port_forward)]
    pub remote_forward: Vec<crate::ssh::forward::PortForward>,

    /// Run a local SOCKS5/SOCKS4a proxy on PORT whose connections leave from
    /// the instance; names resolve there (repeatable).
    #[arg(short = 'D', value_name = "[BIND:]PORT", value_parser = parse_dynamic_forward)]
    pub dynamic_forward: Vec<crate::ssh::forward::DynamicForward>,

    /// Carry on when the instance refuses a -R forward (a warning, not an error).
    #[arg(long)]
    pub forward_best_effort: bool,

    /// Run no remote command: only forward ports, until Ctrl-C.
    #[arg(short = 'N', conflicts_with = "command")]
    pub no_command: bool,

    /// Go to the background once the forwards are up and the key is
    /// accepted (needs -N or a command); as with ssh -f, stdout (and
    /// stderr, unless -v) then go to /dev/null.
    #[arg(short = 'f')]
    pub background: bool,

    /// Force a PTY, even with a command (e.g. for top).
    #[arg(short = 't', conflicts_with = "no_tty")]
    pub force_tty: bool,

    /// Never request a PTY.
    #[arg(short = 'T')]
    pub no_tty: bool,

    /// Escape character for ~. ~? ~~ (a character, ^X, or none).
    #[arg(short = 'e', value_name = "CHAR", default_value = "~", value_parser = crate::term::parse_escape_char)]
    pub escape_char: crate::term::EscapeChar,

    /// Seconds of silence before a keepalive is sent (0 disables, at most 86400).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub keepalive_interval: u64,

    /// Unanswered keepalives after which the connection is declared dead.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub keepalive_count: u32,

    /// Push the key only after the endpoint is found, instead of concurrently
    /// (for measuring what the concurrency saves).
    #[arg(long, hide = true)]
    pub serial_push: bool,

    /// Seconds before the tunnel's maximum duration at which an interactive
    /// session warns, comma-separated; empty for never.
    #[arg(long, value_name = "SECONDS,...", env = "EIC_SSH_WARN_BEFORE", default_value = "300,60", value_parser = crate::term::deadline::parse_warn_before)]
    pub warn_before: crate::term::deadline::WarnBefore,

    /// The ephemeral key's type (default ed25519; if the server refuses
    /// ed25519, eic-ssh pushes an ECDSA P-256 key and retries, once, and
    /// remembers that for the instance).
    #[arg(long, value_name = "TYPE")]
    pub key_type: Option<crate::aws::keypush::KeyType>,
}

/// `eic-ssh proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The instance, as [USER@]TARGET (OpenSSH's %h): an ID, private IP,
    /// private DNS name, tag:KEY=VALUE or Name tag.
    #[arg(value_name = "[USER@]TARGET", value_parser = parse_target, add = target_completer())]
    pub target: Target,

    /// Remote port (OpenSSH's %p): 22 or 3389.
    #[arg(value_name = "PORT", value_parser = parse_port, add = port_candidates())]
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
    /// The instance, as [USER@]TARGET: an ID, private IP, private DNS name,
    /// tag:KEY=VALUE or Name tag.
    #[arg(value_name = "[USER@]TARGET", value_parser = parse_target, add = target_completer())]
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

/// `eic-ssh cp`.
#[derive(Debug, Args)]
#[command(mut_arg("port", |a| a.short('P')))]
pub struct CpArgs {
    /// Copy directories and everything in them (not through links to
    /// directories; at most 128 levels deep).
    #[arg(short = 'r')]
    pub recursive: bool,

    /// Keep modification and access times and modes (the rwx bits: never
    /// setuid, setgid or sticky).
    #[arg(short = 'p')]
    pub preserve: bool,

    /// SRC... DST, each a local path or [USER@]INSTANCE:PATH (a relative
    /// remote path starts in the user's home).
    #[arg(value_name = "SRC... DST", num_args = 2.., required = true, add = copy_completer())]
    pub paths: Vec<String>,

    #[command(flatten)]
    pub user: UserArg,

    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub host_keys: HostKeyArgs,
}

/// `eic-ssh host-keys`.
#[derive(Debug, Args)]
pub struct HostKeysArgs {
    /// The instance: an ID, private IP, private DNS name, tag:KEY=VALUE or
    /// Name tag.
    #[arg(value_name = "[USER@]TARGET", value_parser = parse_target, add = target_completer())]
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
    /// The instance, as [USER@]TARGET: an ID, private IP, private DNS name,
    /// tag:KEY=VALUE or Name tag.
    #[arg(value_name = "[USER@]TARGET", value_parser = parse_target, add = target_completer())]
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
    #[arg(short = 'p', long, value_name = "PORT", default_value_t = 22, value_parser = parse_port, add = port_candidates())]
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

/// `eic-ssh restrict`.
#[derive(Debug, Args)]
pub struct RestrictArgs {
    /// The instance, as [USER@]INSTANCE-ID.
    #[arg(value_name = "[USER@]INSTANCE", value_parser = parse_target, add = target_completer())]
    pub target: Target,

    /// A client network allowed in (repeatable, or comma-separated), e.g.
    /// your office's or VPN's public range: 203.0.113.0/24. Judged together:
    /// networks that make up every address are refused, and a range wider
    /// than /8 gets a warning.
    #[arg(long = "allow", value_name = "CIDR", value_delimiter = ',', required = true, value_parser = parse_allow_cidr)]
    pub allow: Vec<ipnet::Ipv4Net>,

    /// Remote port to restrict: 22 (SSH) or 3389 (RDP).
    #[arg(short = 'p', long, value_name = "PORT", default_value_t = 22, value_parser = parse_port)]
    pub port: u16,

    /// Make the changes (after asking on a terminal); without it, only the
    /// plan is printed and nothing changes.
    #[arg(long)]
    pub apply: bool,

    /// Do not ask before applying (needed when stdin is not a terminal).
    #[arg(long, requires = "apply")]
    pub yes: bool,

    /// Apply even though the instance's security group is used by other
    /// instances or resources, or the endpoint whose Preserve Client IP is
    /// turned on may serve other instances: the changes affect them too.
    #[arg(long, requires = "apply")]
    pub shared_ok: bool,

    /// Print the plan (and, after --apply, the result) as JSON.
    #[arg(long)]
    pub json: bool,

    /// Restrict through this endpoint instead of the one eic-ssh would pick.
    #[arg(long, value_name = "ID", value_parser = parse_eice_id)]
    pub eice_id: Option<String>,

    /// This machine's public IPv4 address as AWS sees it, to say whether it
    /// is inside --allow (default: asked of https://checkip.amazonaws.com,
    /// unless --offline).
    #[arg(long, value_name = "IP")]
    pub client_ip: Option<Ipv4Addr>,

    /// Do not discover this machine's public address over the internet.
    #[arg(long)]
    pub offline: bool,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `eic-ssh ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Which instances: IDs, private IPs, private DNS names, tag:KEY=VALUE
    /// or Name tags (default: every instance in the region that is not
    /// terminated).
    #[arg(value_name = "TARGET", value_parser = parse_target, add = target_completer())]
    pub targets: Vec<Target>,

    /// Print a JSON array of objects instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Do not record the instances listed in the lookup cache (which
    /// serves the next connection and shell completion).
    #[arg(long)]
    pub no_cache: bool,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `eic-ssh exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Which instances ([USER@]TARGET, repeatable): each instance that any
    /// target matches runs the command once.
    #[arg(value_name = "[USER@]TARGET", value_parser = parse_target, required = true, add = target_completer())]
    pub targets: Vec<Target>,

    /// The command, after `--`. Its words are joined with spaces and run by
    /// the remote user's shell, as ssh does.
    #[arg(value_name = "COMMAND", last = true)]
    pub command: Vec<OsString>,

    /// Instances to run on at once.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub parallel: u32,

    /// Open tunnels per endpoint at once, at most the service's quota of 20.
    #[arg(long, value_name = "M", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub per_endpoint: u32,

    /// Write each instance's output to DIR/<id>.out and DIR/<id>.err
    /// instead of prefixed lines on stdout and stderr (new files, 0600; a
    /// symbolic link there is refused, not followed).
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Print one JSON array instead: per instance its id, name, exit
    /// status (or null), error, duration in ms, stdout and stderr.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub user: UserArg,

    #[command(flatten)]
    pub host_keys: HostKeyArgs,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `eic-ssh ssh-config`.
#[derive(Debug, Args)]
pub struct SshConfigArgs {
    /// The Host pattern(s) the block applies to, separated by spaces.
    #[arg(long, value_name = "PATTERN", default_value = "i-*", value_parser = parse_host_patterns)]
    pub host: String,

    /// Default OS user for those hosts.
    #[arg(long, value_name = "USER", default_value = "ec2-user", value_parser = parse_user)]
    pub user: String,

    /// The AWS profile and region to put in the ProxyCommand.
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Write the block to FILE (default ~/.ssh/config.d/eic-ssh) instead of
    /// printing it, and add one Include line for it at the top of
    /// ~/.ssh/config if it is not there. Running it again changes nothing.
    /// An existing FILE is replaced only if eic-ssh wrote it (its first
    /// line says so); ~/.ssh/config itself is refused.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "~/.ssh/config.d/eic-ssh")]
    pub include: Option<PathBuf>,
}

/// `--region` and `--profile`, shared by every command that calls AWS.
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// AWS region (default: the AWS configuration's).
    #[arg(long, value_name = "REGION", value_parser = parse::parse_region)]
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

    /// The instance's private IP address (IPv4, or IPv6 for an IPv6-only
    /// instance), to skip looking it up.
    #[arg(long, value_name = "IP")]
    pub private_ip: Option<std::net::IpAddr>,

    /// Remote port: 22 (SSH) or 3389 (RDP), the only ports the service allows.
    #[arg(short = 'p', long, visible_alias = "remote-port", value_name = "PORT", default_value_t = 22, value_parser = parse_port, add = port_candidates())]
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

/// -v / -q.
#[derive(Debug, Clone, Copy, Args)]
pub struct Verbosity {
    /// More detail on stderr (-v info, -vv debug, -vvv trace). Secrets are always redacted.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr: no notices, no progress or status lines.
    #[arg(short = 'q', long = "quiet", global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Colour: auto (when a terminal and NO_COLOR is unset), always, never.
    #[arg(
        long,
        value_name = "WHEN",
        value_enum,
        default_value = "auto",
        global = true
    )]
    pub color: crate::term::color::ColorWhen,
}

impl Cli {
    /// Parse the command line. Options may come before a subcommand, as
    /// with `aws --profile prod ec2 …` (`eic-ssh --region eu-west-1 ls`,
    /// `eic-ssh -v cache path`): clap refuses that, because any argument
    /// before a subcommand makes it the session's target, so options that
    /// the subcommand takes too are moved after its name, where clap takes
    /// them. Options it does not take stay the session's, and the word
    /// stays a target.
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        // Help and clap's own errors are written before the value of
        // --color exists: they follow it as given.
        let mut command = <Cli as clap::CommandFactory>::command().color(color_choice(&args));
        command.build();
        if let Some(options) = args
            .get(1..)
            .and_then(|rest| options_before_subcommand(&command, rest))
        {
            args[1..=1 + options].rotate_right(1);
        }
        let mut matches = command.try_get_matches_from_mut(args)?;
        <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
            .map_err(|e| e.format(&mut command))
    }
}

/// The subcommands' names, for "did you mean …?".
pub fn subcommand_names() -> Vec<String> {
    <Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect()
}

#[cfg(test)]
mod tests;
