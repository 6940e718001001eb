//! `eic-ssh ssh-config`: a ready-to-paste ~/.ssh/config block.

use crate::cli::SshConfigArgs;

/// `eic-ssh ssh-config`: the block that makes `ssh ec2-user@i-0abc` work.
pub fn render(args: &SshConfigArgs) -> String {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "eic-ssh".into());
    let exe = proxy_word(&exe);
    let mut aws = String::new();
    if let Some(p) = &args.aws.profile {
        aws.push_str(&format!(" --profile {}", proxy_word(p)));
    }
    if let Some(r) = &args.aws.region {
        aws.push_str(&format!(" --region {}", proxy_word(r)));
    }
    format!(
        "# Reach EC2 instances by ID through EC2 Instance Connect Endpoints.
# eic-ssh pushes your public key (ssh-agent's first, or ~/.ssh/id_*.pub) for %r,
# then carries the SSH bytes; OpenSSH does the rest (scp, sftp, rsync, git too).
Host {host}
    User {user}
    ProxyCommand {exe} proxy{aws} --user %r %h %p
    # OpenSSH records host keys under the instance ID, as eic-ssh itself does.
    # The pushed key is valid for 60 s: authenticate promptly, and detect dead tunnels.
    ConnectTimeout 30
    ServerAliveInterval 30
    ServerAliveCountMax 4
",
        host = args.host,
        user = args.user,
    )
}

/// One word of the ProxyCommand, as OpenSSH reads it: it first expands `%`
/// tokens (so a literal `%` is `%%`), then runs the line with the user's
/// shell (so anything but plain characters is single-quoted).
pub fn proxy_word(s: &str) -> String {
    let escaped = s.replace('%', "%%");
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"_-./:@=+,%".contains(&b);
    match !escaped.is_empty() && escaped.bytes().all(plain) {
        true => escaped,
        false => format!("'{}'", escaped.replace('\'', "'\\''")),
    }
}
