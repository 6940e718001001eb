//! The command line: clap definitions, validated into settings.

mod audit;
mod complete;
pub mod help;
mod meaning;
mod parse;
mod shared;
pub mod usage;

pub use audit::{AuditArgs, LogArgs, PlayArgs, RecordArgs};
pub use shared::{AwsArgs, ConnectArgs, HostKeyArgs, UserArg, Verbosity, VerifyHostKey};

use complete::{copy_completer, port_candidates, target_completer};
use parse::*;
pub use parse::{os_user, parse_host_patterns, parse_port};
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Args, Parser};

use crate::target::syntax::Target;

/// SSH into private EC2 instances through an EC2 Instance Connect Endpoint.
///
/// No bastion, no public IP, no long-lived keys: eic-ssh looks the instance
/// up, pushes a fresh key valid for 60 seconds, opens the endpoint's tunnel
/// and speaks SSH over it, checking the host key against the instance's
/// console output on a first contact. With no subcommand it logs in to
/// TARGET, or runs COMMAND there.
#[derive(Debug, Parser)]
#[command(
    name = "eic-ssh",
    version,
    long_version = long_version(),
    after_help = help::SHORT_FOOTER,
    after_long_help = help::examples_text(),
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

    #[command(flatten)]
    pub audit: AuditArgs,

    /// When a target matches several instances, never open the picker:
    /// list them on stderr and exit 2.
    #[arg(long, global = true, hide_short_help = true)]
    pub no_pick: bool,
}

/// The modes besides the default SSH session. The first line of each is
/// its line in `eic-ssh -h`: short enough for 80 columns.
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// OpenSSH's ProxyCommand: stdin and stdout joined to a tunnel
    ///
    /// For ssh, scp, sftp, rsync, git, Ansible and VS Code: it pushes your
    /// public key for OpenSSH to authenticate with, then carries the bytes.
    /// `eic-ssh ssh-config` writes the ~/.ssh/config block that uses it.
    Proxy(ProxyArgs),
    /// A local port that opens a fresh tunnel per connection (RDP too)
    ///
    /// The drop-in for `aws ec2-instance-connect open-tunnel --local-port`.
    Tunnel(TunnelArgs),
    /// Print or install the ~/.ssh/config block for ssh, scp and rsync
    ///
    /// The block routes the --host patterns (default `i-*`) through `eic-ssh
    /// proxy`, and has OpenSSH (8.5 and later) verify host keys as eic-ssh
    /// does. --include writes it to a file of its own and includes that from
    /// ~/.ssh/config.
    SshConfig(SshConfigArgs),
    /// Print the instance's host keys from its console output
    ///
    /// In known_hosts format, keyed by instance ID, with their fingerprints;
    /// --add writes those not already there, to pre-seed OpenSSH.
    HostKeys(HostKeysArgs),
    /// OpenSSH's KnownHostsCommand, as `ssh-config` writes it: print the host
    /// keys ssh may accept for TARGET under NAME (ssh's %H): those recorded
    /// under the instance ID, or the offered key (%K) once the instance's
    /// console lists it.
    #[command(hide = true)]
    KnownHosts(KnownHostsArgs),
    /// Explain why a connection fails; check an IP restriction
    ///
    /// A checklist of the instance, the endpoint and their security groups,
    /// this machine's clock, and whether an IP restriction through Preserve
    /// Client IP really holds.
    Doctor(DoctorArgs),
    /// Let only some client networks reach an instance (a plan; --apply)
    ///
    /// Through Preserve Client IP and the instance's security group. Prints
    /// a plan to review; --apply makes it so, and checks it.
    Restrict(RestrictArgs),
    /// List instances and the endpoint that serves each
    ///
    /// ID, Name, state, private IP, availability zone and the endpoint that
    /// would serve each.
    Ls(LsArgs),
    /// Run a command on every instance the targets match
    ///
    /// In parallel, within the endpoints' limit of 20 connections each; each
    /// instance's lines come prefixed with its Name and ID.
    Exec(ExecArgs),
    /// Copy files to, from or between instances (scp's syntax)
    ///
    /// Over SFTP, with the instance's own sftp-server.
    /// A remote side is [USER@]TARGET:PATH, and a remote glob
    /// (TARGET:'logs/*.gz') is matched against the instance's listing.
    Cp(CpArgs),
    /// Show the connection log, or the CloudTrail lookup for one
    ///
    /// Recent connections, or the CloudTrail lookup that finds one's key
    /// push and tunnel.
    Log(LogArgs),
    /// Play a session recording (--record) in this terminal
    Play(PlayArgs),
    /// Manage the lookup cache (instance to endpoint and private IP)
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Print a shell completion script
    #[command(long_about = help::COMPLETIONS)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the man page, or install every page with --dir
    ///
    /// Generated from the same definitions as --help. Install:
    /// eic-ssh man --dir ~/.local/share/man/man1 (then: man eic-ssh).
    Man {
        /// A subcommand's own page (e.g. doctor), instead of eic-ssh's.
        #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir")]
        subcommand: Option<String>,

        /// Write eic-ssh.1 and a page per subcommand (eic-ssh-cp.1, ...)
        /// into DIR, creating it if need be, instead of printing.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
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
    /// ID, private IP or DNS name, tag:KEY=VALUE or Name tag
    ///
    /// As [USER@]TARGET, e.g. ec2-user@web-1: an instance ID, a private IPv4
    /// address, a private DNS name, tag:KEY=VALUE, or else a Name tag.
    /// Omitted on a terminal: choose from a list.
    #[arg(value_name = "[USER@]TARGET", value_parser = parse_target, add = target_completer())]
    pub target: Option<Target>,

    /// Run this instead of a shell
    ///
    /// Its words are joined with spaces and run by the remote user's shell,
    /// as ssh does.
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

    #[command(flatten)]
    pub record: RecordArgs,

    /// Local PORT to HOST:HOSTPORT, via the instance
    ///
    /// PORT listens on BIND (loopback by default); HOST is resolved and
    /// reached by the instance, e.g. a database. Repeatable.
    #[arg(short = 'L', value_name = "[BIND:]PORT:HOST:HOSTPORT", value_parser = parse_port_forward)]
    pub local_forward: Vec<crate::ssh::forward::PortForward>,

    /// Have the instance listen on PORT (on BIND, its loopback by default)
    /// and carry each connection back to HOST:HOSTPORT as reached from here
    /// (repeatable; port 0 lets the instance pick one).
    #[arg(short = 'R', hide_short_help = true, value_name = "[BIND:]PORT:HOST:HOSTPORT", value_parser = parse_port_forward)]
    pub remote_forward: Vec<crate::ssh::forward::PortForward>,

    /// A SOCKS proxy into the instance's network
    ///
    /// SOCKS5/SOCKS4a on PORT (on BIND, loopback by default), whose
    /// connections leave from the instance; names resolve there. Repeatable.
    #[arg(short = 'D', value_name = "[BIND:]PORT", value_parser = parse_dynamic_forward)]
    pub dynamic_forward: Vec<crate::ssh::forward::DynamicForward>,

    /// Carry on when the instance refuses a -R forward (a warning, not an error).
    #[arg(long, hide_short_help = true)]
    pub forward_best_effort: bool,

    /// Only forward ports, no remote command
    ///
    /// Until Ctrl-C (exit 0).
    #[arg(short = 'N', conflicts_with = "command")]
    pub no_command: bool,

    /// Go to the background once connected
    ///
    /// Once the forwards are up and the key is accepted (needs -N or a
    /// command); as with ssh -f, stdout (and stderr, unless -v) then go to
    /// /dev/null.
    #[arg(short = 'f', hide_short_help = true)]
    pub background: bool,

    /// Force a PTY, even with a command
    ///
    /// E.g. eic-ssh -t web-1 -- top.
    #[arg(short = 't', hide_short_help = true, conflicts_with = "no_tty")]
    pub force_tty: bool,

    /// Never request a PTY.
    #[arg(short = 'T', hide_short_help = true)]
    pub no_tty: bool,

    /// Escape character for ~. ~? ~~ (a character, ^X, or none).
    #[arg(short = 'e', hide_short_help = true, value_name = "CHAR", default_value = "~", value_parser = crate::term::parse_escape_char)]
    pub escape_char: crate::term::EscapeChar,

    /// Seconds of silence before a keepalive is sent (0 disables, at most 86400).
    #[arg(long, hide_short_help = true, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub keepalive_interval: u64,

    /// Unanswered keepalives after which the connection is declared dead.
    #[arg(long, hide_short_help = true, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub keepalive_count: u32,

    /// Push the key only after the endpoint is found, instead of concurrently
    /// (for measuring what the concurrency saves).
    #[arg(long, hide = true)]
    pub serial_push: bool,

    /// Seconds before the tunnel's maximum duration at which an interactive
    /// session warns, comma-separated; empty for never.
    #[arg(long, hide_short_help = true, value_name = "SECONDS,...", env = "EIC_SSH_WARN_BEFORE", default_value = "300,60", value_parser = crate::term::deadline::parse_warn_before)]
    pub warn_before: crate::term::deadline::WarnBefore,

    /// The ephemeral key's type (default ed25519; if the server refuses
    /// ed25519, eic-ssh pushes an ECDSA P-256 key and retries, once, and
    /// remembers that for the instance).
    #[arg(long, hide_short_help = true, value_name = "TYPE")]
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

    /// What to copy: local paths or [USER@]TARGET:PATH (a relative remote
    /// path starts in the user's home; a remote glob, quoted from the local
    /// shell, is matched against the instance's listing).
    #[arg(value_name = "SRC", num_args = 1.., required = true, add = copy_completer())]
    pub sources: Vec<String>,

    /// Where to: a local path or [USER@]TARGET:PATH (a directory, or a new
    /// name for a single source).
    #[arg(value_name = "DST", required = true, add = copy_completer())]
    pub dest: String,

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

/// `eic-ssh known-hosts`.
#[derive(Debug, Args)]
pub struct KnownHostsArgs {
    /// The host ssh connects to (its %h): an ID, private IP, private DNS
    /// name, tag:KEY=VALUE or Name tag.
    #[arg(value_name = "TARGET", value_parser = parse_target)]
    pub target: Target,

    /// The name ssh looks host keys up under (its %H; default: TARGET).
    #[arg(long = "as", value_name = "NAME")]
    pub name: Option<String>,

    /// The host key the server offered, in base64 (ssh's %K); NONE (or
    /// none given) before the key exchange: only the recorded keys.
    #[arg(long, value_name = "BASE64")]
    pub key: Option<String>,

    /// known_hosts file eic-ssh records in (default: ~/.ssh/known_hosts).
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
    /// The instance, as [USER@]TARGET: an ID, private IP, private DNS name,
    /// tag:KEY=VALUE or Name tag.
    #[arg(value_name = "[USER@]TARGET", value_parser = parse_target, add = target_completer())]
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
        let mut command = command_with(color_choice(&args));
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

/// The subcommands where a global option means nothing, and so is not
/// shown: `--no-pick` where no instance is ever picked from several,
/// `--color` where nothing is ever coloured.
const MEANINGLESS: &[(&str, &[&str])] = &[
    (
        "no_pick",
        &[
            "ls",
            "exec",
            "ssh-config",
            "known-hosts",
            "log",
            "play",
            "cache",
            "completions",
            "man",
        ],
    ),
    ("color", &["known-hosts", "cache", "completions", "man"]),
];

/// The command-line definition as `--help`, the man pages and completion
/// show it, built, with `color` for help and clap's own errors.
pub fn command_with(color: clap::ColorChoice) -> clap::Command {
    let mut command = <Cli as clap::CommandFactory>::command().color(color);
    // A subcommand that has an argument of its own is not given the global
    // one of that name: give these a hidden copy before the build
    // propagates the rest (changing an argument after the build would leave
    // clap's index of the flags stale).
    for (id, subcommands) in MEANINGLESS {
        let Some(global) = command.get_arguments().find(|a| a.get_id() == *id).cloned() else {
            continue;
        };
        for name in *subcommands {
            let hidden = global.clone().hide(true);
            command = command.mut_subcommand(*name, |s| s.arg(hidden));
        }
    }
    command.build();
    command
}

/// [`command_with`] as `--color auto` has it.
pub fn command() -> clap::Command {
    command_with(clap::ColorChoice::Auto)
}

#[cfg(test)]
mod tests;
