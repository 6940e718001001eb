//! What `--help` and the man pages teach beyond the flags: examples, the
//! environment, the files and the exit status, written once for both.

/// The last lines of `eic-ssh -h`, which shows the common options only.
pub const SHORT_FOOTER: &str = "\
Every option and examples: eic-ssh --help; a command's: eic-ssh help COMMAND";

/// `eic-ssh completions --help`: how to install each shell's script.
pub const COMPLETIONS: &str = "\
Print a shell completion script. Install it with:
  bash:       eic-ssh completions bash > ~/.local/share/bash-completion/completions/eic-ssh
  zsh:        eic-ssh completions zsh > \"${fpath[1]}/_eic-ssh\"
  fish:       eic-ssh completions fish > ~/.config/fish/completions/eic-ssh.fish
  elvish:     eic-ssh completions elvish >> ~/.config/elvish/rc.elv
  powershell: eic-ssh completions powershell >> $PROFILE
Instance IDs and Names complete from the lookup cache, without calling AWS.";

/// A command line and what it does.
pub struct Example {
    pub command: &'static str,
    pub what: &'static str,
}

/// The examples of `eic-ssh --help` and the man page; a subcommand's page
/// shows those that use it.
pub const EXAMPLES: &[Example] = &[
    Example {
        command: "eic-ssh web-1",
        what: "A login shell on the instance whose Name tag is web-1 (or give its ID, private IP or DNS name).",
    },
    Example {
        command: "eic-ssh ubuntu@i-0123456789abcdef0 -- uptime",
        what: "Run one command as ubuntu; its exit status is eic-ssh's.",
    },
    Example {
        command: "eic-ssh exec tag:Role=web -- 'sudo systemctl restart app'",
        what: "The same command on every instance tagged Role=web, in parallel.",
    },
    Example {
        command: "eic-ssh cp ./app.tar.gz web-1:/tmp/",
        what: "Copy a file to the instance (scp's syntax; -r for directories).",
    },
    Example {
        command: "eic-ssh cp 'web-1:logs/*.gz' ./logs/",
        what: "Copy the files a remote glob matches.",
    },
    Example {
        command: "eic-ssh -N -L 5432:db.abc123.us-east-1.rds.amazonaws.com:5432 web-1",
        what: "Reach an RDS database behind the instance on localhost:5432.",
    },
    Example {
        command: "eic-ssh ssh-config --include --host 'i-* web-*'",
        what: "Let ssh, scp, rsync and VS Code reach instances by ID or Name, host keys verified.",
    },
    Example {
        command: "eic-ssh doctor web-1",
        what: "Explain why a connection fails.",
    },
    Example {
        command: "eic-ssh restrict web-1 --allow 203.0.113.0/24",
        what: "Plan to let only that client network in (--apply makes it so).",
    },
];

/// The environment eic-ssh reads.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "AWS_PROFILE, AWS_REGION, AWS_DEFAULT_REGION",
        "The profile and region, as the AWS CLI reads them; --profile and --region win.",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN",
        "Credentials, unless a profile is named: then the profile's credentials sign.",
    ),
    (
        "AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE",
        "Where the AWS configuration and credentials files are.",
    ),
    (
        "AWS_USE_FIPS_ENDPOINT, AWS_CA_BUNDLE",
        "FIPS endpoints, and extra certificate authorities to trust.",
    ),
    (
        "HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY",
        "The HTTP proxy for the AWS calls and the tunnel.",
    ),
    (
        "SSH_AUTH_SOCK",
        "proxy pushes the first key ssh-agent offers.",
    ),
    (
        "EIC_SSH_WARN_BEFORE",
        "When an interactive session warns of the tunnel's maximum duration (as --warn-before).",
    ),
    (
        "EIC_SSH_CONNECT_TO",
        "Dial another address for an endpoint name, as curl's --connect-to.",
    ),
    (
        "EIC_SSH_CHECKIP_URL",
        "Where doctor and restrict ask for this machine's public address.",
    ),
    (
        "EIC_SSH_LOG_FILE",
        "The connection log to write and read (as --log-file).",
    ),
    (
        "EIC_SSH_LOG_MAX_SIZE, EIC_SSH_LOG_KEEP",
        "When the connection log rotates (10M by default, e.g. 64K, 50M) and how many old ones are kept (5).",
    ),
    (
        "EIC_SSH_RECORD_DIR",
        "Record every interactive session into this directory (--no-record for one that should not be).",
    ),
    ("NO_COLOR", "No colour, as --color never."),
    (
        "RUST_LOG",
        "Log filter, as -v (secrets are redacted at every level).",
    ),
    ("XDG_CACHE_HOME", "Where the lookup cache lives."),
    (
        "XDG_STATE_HOME",
        "Where the connection log and the recordings live.",
    ),
];

/// The files eic-ssh reads and writes.
pub const FILES: &[(&str, &str)] = &[
    (
        "~/.ssh/known_hosts",
        "Host keys, under instance IDs (--known-hosts FILE for another file).",
    ),
    (
        "~/.aws/config, ~/.aws/credentials",
        "The AWS configuration and credentials.",
    ),
    (
        "~/.cache/eic-ssh/routes.json",
        "The lookup cache: instance to endpoint and private IP, for an hour (eic-ssh cache).",
    ),
    (
        "~/.local/state/eic-ssh/connections.jsonl",
        "The connection log: a line when each connection starts and ends, with the request IDs CloudTrail shows (eic-ssh log).",
    ),
    (
        "~/.local/state/eic-ssh/recordings/",
        "Sessions recorded with --record, as asciinema files (eic-ssh play).",
    ),
    (
        "~/.ssh/config, ~/.ssh/config.d/eic-ssh",
        "Where ssh-config --include writes its block, and the Include line for it.",
    ),
    (
        "~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub",
        "The public key proxy pushes when ssh-agent offers none.",
    ),
];

/// What the exit status means.
pub const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "the remote command's",
        "A command's exit status, or 128+N when signal N killed it.",
    ),
    ("0", "Success (a shell, -N, or a local command such as ls)."),
    (
        "1",
        "cp: a file could not be copied; exec: an instance failed or was unreachable; doctor: a check failed; restrict: refused or not confirmed.",
    ),
    ("2", "A usage error, reported before any network call."),
    ("130", "Interrupted (Ctrl-C), or the picker was cancelled."),
    (
        "141",
        "A local command whose output was closed (eic-ssh ls | head).",
    ),
    (
        "255",
        "The connection failed (as ssh), or its stdout was closed under a remote command.",
    ),
];

/// `eic-ssh --help`'s closing section: the examples.
pub fn examples_text() -> String {
    let mut out = String::from("Examples:\n");
    for e in EXAMPLES {
        out.push_str(&format!("  {}\n      {}\n", e.command, e.what));
    }
    out.push_str("\nMore: man eic-ssh (install it with eic-ssh man --dir ~/.local/share/man/man1)");
    out
}
