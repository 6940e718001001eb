//! The two lines a connection leaves in the log, as they are written: a
//! `start` line when its tunnel opens and an `end` line, with the same `id`,
//! when it ends. Field names are the log's public format (docs/audit.md).

use serde::{Deserialize, Serialize};

/// What kind of command opened the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The default command: a shell, or a command after `--`.
    Session,
    /// The default command with `-N`: forwards only.
    Forward,
    /// `eic-ssh proxy`, under OpenSSH.
    Proxy,
    /// One connection accepted by `eic-ssh tunnel`.
    Tunnel,
    /// One instance of `eic-ssh exec`.
    Exec,
    /// `eic-ssh cp`, one per instance copied to or from.
    Cp,
}

impl Kind {
    /// The name the log spells it with.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Forward => "forward",
            Kind::Proxy => "proxy",
            Kind::Tunnel => "tunnel",
            Kind::Exec => "exec",
            Kind::Cp => "cp",
        }
    }
}

/// The `start` line: who opened which tunnel to where, with what key, and
/// the AWS request IDs that find it in CloudTrail. Never a secret: the
/// access key ID names the credentials, and nothing else of them is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRecord {
    /// Always `"start"`.
    pub event: String,
    /// The connection ID, shared with its `end` line.
    pub id: String,
    /// When the tunnel opened (RFC 3339, UTC).
    pub time: String,
    pub pid: u32,
    pub kind: Kind,
    /// The local user's name (as `id -un` says), and the uid.
    pub local_user: String,
    pub uid: u32,
    /// The AWS profile in effect (`--profile`, `AWS_PROFILE`, or `default`).
    pub aws_profile: String,
    /// The access key ID that signed the tunnel's URL.
    pub access_key_id: Option<String>,
    pub region: String,
    /// The target as it was typed (an ID, a Name tag, an IP…); `None`
    /// when the instance was picked from the list.
    pub target: Option<String>,
    pub instance_id: String,
    pub endpoint_id: String,
    pub private_ip: String,
    pub remote_port: u16,
    /// The OS user the key was pushed for (and who logs in, unless OpenSSH
    /// on top of `proxy` or `tunnel` chooses another); `None` when no key
    /// was pushed.
    pub os_user: Option<String>,
    /// The pushed public key's fingerprint (`SHA256:…`), as `ssh-keygen -l`
    /// and sshd's log show it; `None` when no key was pushed.
    pub key_sha256: Option<String>,
    /// The `RequestId` of the `SendSSHPublicKey` that pushed the key.
    pub push_request_id: Option<String>,
    /// The `x-amzn-requestid` of the tunnel's websocket upgrade.
    pub tunnel_request_id: Option<String>,
    /// The remote command, for `exec` and `-- COMMAND`; `None` for a shell.
    pub command: Option<String>,
    /// `-L`, `-R` and `-D` forwards, their bind addresses spelled out
    /// (`-L localhost:8080:db:5432` for `-L 8080:db:5432`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwards: Vec<String>,
}

/// A key pushed after the tunnel opened: the same key again when the first
/// push expired before it was used, or an ECDSA key for an instance that
/// refuses ed25519.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRecord {
    pub key_sha256: Option<String>,
    pub request_id: Option<String>,
}

/// The `end` line: how long, how many bytes, how the tunnel closed and how
/// the command ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndRecord {
    /// Always `"end"`.
    pub event: String,
    pub id: String,
    pub time: String,
    pub pid: u32,
    pub instance_id: String,
    pub duration_ms: u64,
    /// Bytes sent into the tunnel, and received from it.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The endpoint's close frame, when one came before this line was
    /// written (none when eic-ssh ended the connection first).
    pub close_code: Option<u16>,
    pub close_reason: Option<String>,
    /// Why the tunnel broke without a close frame, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<String>,
    /// The exit status this connection ended with: the remote command's,
    /// or eic-ssh's own for a failure (255 for a connection failure).
    pub exit_status: Option<u8>,
    /// What went wrong, when something did.
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub later_pushes: Vec<PushRecord>,
    /// The session's recording (`--record`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
}

/// A new connection ID: 12 random hex digits, unique enough for one
/// machine's log and short enough to type.
pub fn new_id() -> String {
    let n: u64 = rand::random();
    format!("{:012x}", n & 0xffff_ffff_ffff)
}

/// A time as the log writes it: RFC 3339 in UTC, to the millisecond.
pub fn format_time(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The SHA256 fingerprint of an OpenSSH public key line.
pub fn fingerprint(public_openssh: &str) -> Option<String> {
    russh::keys::PublicKey::from_openssh(public_openssh.trim())
        .ok()
        .map(|k| k.fingerprint(russh::keys::HashAlg::Sha256).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_twelve_hex_digits_and_differ() {
        let a = new_id();
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_id());
    }

    #[test]
    fn times_are_utc_to_the_millisecond() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_765_151_458_123);
        assert_eq!(format_time(t), "2025-12-07T23:50:58.123Z");
    }

    #[test]
    fn fingerprints_match_ssh_keygen() {
        // `ssh-keygen -lf` on this key prints this fingerprint.
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test";
        assert_eq!(
            fingerprint(key).as_deref(),
            Some("SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU")
        );
        assert_eq!(fingerprint("not a key"), None);
    }
}
