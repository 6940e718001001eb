//! Host keys in OpenSSH's `known_hosts` format, keyed by instance ID (the
//! name OpenSSH itself uses when it reaches `i-…` through a ProxyCommand),
//! so that eic-ssh and `ssh` through `eic-ssh proxy` share one trust store.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{KeyInit, Mac};
use russh::keys::{HashAlg, PublicKey};

use crate::error::Error;

/// What the file says about a host and the key it offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// The offered key is recorded for this host.
    Known,
    /// Nothing is recorded for this host.
    Unknown,
    /// Other keys are recorded for this host; the first is at `line`.
    Changed { line: usize, known: Box<PublicKey> },
    /// The offered key is marked `@revoked`.
    Revoked { line: usize },
}

/// The default file, as OpenSSH uses: `~/.ssh/known_hosts`.
pub fn default_path() -> PathBuf {
    std::env::home_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".ssh")
        .join("known_hosts")
}

/// `SHA256:…`, as OpenSSH prints fingerprints.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The algorithms recorded for `host`, to prefer them in the key exchange as
/// OpenSSH does (so an existing RSA entry is not mistaken for a change).
pub fn known_algorithms(path: &Path, host: &str) -> Vec<russh::keys::Algorithm> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut algs = Vec::new();
    for entry in text.lines().filter_map(parse_line) {
        if entry.marker.is_none()
            && host_matches(entry.hosts, host)
            && let Some(k) = entry.key
            && !algs.contains(&k.algorithm())
        {
            algs.push(k.algorithm());
        }
    }
    algs
}

/// Check `key` for `host` against the file. A missing file knows nothing.
pub fn check(path: &Path, host: &str, key: &PublicKey) -> Result<HostKeyStatus, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HostKeyStatus::Unknown),
        Err(e) => {
            return Err(Error::KnownHosts {
                file: path.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    let mut other: Option<(usize, PublicKey)> = None;
    let mut known = false;
    for (i, line) in text.lines().enumerate() {
        let Some(entry) = parse_line(line) else {
            continue;
        };
        let Some(entry_key) = entry.key else { continue };
        let same = entry_key.key_data() == key.key_data();
        match entry.marker {
            Some("@revoked") if same => return Ok(HostKeyStatus::Revoked { line: i + 1 }),
            Some(_) => continue,
            None => {}
        }
        if !host_matches(entry.hosts, host) {
            continue;
        }
        if same {
            known = true;
        } else if other.is_none() {
            other = Some((i + 1, entry_key));
        }
    }
    Ok(match (known, other) {
        (true, _) => HostKeyStatus::Known,
        (false, Some((line, k))) => HostKeyStatus::Changed {
            line,
            known: Box::new(k),
        },
        (false, None) => HostKeyStatus::Unknown,
    })
}

/// Append `host key` to the file, creating it (and `~/.ssh`) user-only.
pub fn learn(path: &Path, host: &str, key: &PublicKey) -> Result<(), Error> {
    let err = |e: std::io::Error| Error::KnownHosts {
        file: path.to_owned(),
        reason: e.to_string(),
    };
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
    }
    let line = format!(
        "{host} {}\n",
        key.to_openssh().map_err(|e| Error::KnownHosts {
            file: path.to_owned(),
            reason: e.to_string(),
        })?
    );
    // Keep the line free of the key's comment, as OpenSSH writes it.
    let line = strip_comment(&line);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    // Other eic-ssh processes may be adding hosts at the same moment: append
    // under the lock, after re-reading, so no line is torn or duplicated.
    // Existing lines, comments and their order are never rewritten.
    let mut locked = crate::route::locked_file::lock(f).map_err(err)?;
    let existing = std::fs::read(path).unwrap_or_default();
    if String::from_utf8_lossy(&existing)
        .lines()
        .any(|l| strip_comment(l).trim_end() == line.trim_end())
    {
        return Ok(());
    }
    // A file whose last line lacks a newline would swallow ours.
    let mut out = Vec::with_capacity(line.len() + 1);
    if existing.last().is_some_and(|&c| c != b'\n') {
        out.push(b'\n');
    }
    out.extend_from_slice(line.as_bytes());
    locked.file().write_all(&out).map_err(err)
}

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

fn strip_comment(line: &str) -> String {
    let mut parts = line.trim_end().splitn(4, ' ');
    let (h, a, k) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    format!("{h} {a} {k}\n")
}

struct Entry<'a> {
    marker: Option<&'a str>,
    hosts: &'a str,
    key: Option<PublicKey>,
}

fn parse_line(line: &str) -> Option<Entry<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = if first.starts_with('@') {
        let m = first;
        first = fields.next()?;
        Some(m)
    } else {
        None
    };
    let alg = fields.next()?;
    let b64 = fields.next()?;
    let key = PublicKey::from_openssh(&format!("{alg} {b64}")).ok();
    Some(Entry {
        marker,
        hosts: first,
        key,
    })
}

/// OpenSSH's host matching: comma-separated patterns with `*`/`?` and `!`
/// negation, `|1|salt|hash` hashed names, and `[host]:port` for other ports.
fn host_matches(patterns: &str, host: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_matches(hashed, host);
    }
    let mut matched = false;
    for p in patterns.split(',') {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg, host) {
                return false;
            }
        } else if glob(p, host) {
            matched = true;
        }
    }
    matched
}

fn hashed_matches(salt_and_hash: &str, host: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(host.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

fn glob(pattern: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.split_first(), s.split_first()) {
            (None, None) => true,
            (Some((b'*', rest)), _) => {
                go(rest, s) || s.split_first().is_some_and(|(_, srest)| go(p, srest))
            }
            (Some((b'?', prest)), Some((_, srest))) => go(prest, srest),
            (Some((pc, prest)), Some((sc, srest))) => {
                pc.eq_ignore_ascii_case(sc) && go(prest, srest)
            }
            _ => false,
        }
    }
    go(pattern.as_bytes(), s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
        russh::keys::PrivateKey::from(pair).public_key().clone()
    }

    #[test]
    fn learn_then_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        let (a, b) = (key(1), key(2));
        assert_eq!(
            check(&path, "i-0123abcd", &a).unwrap(),
            HostKeyStatus::Unknown
        );
        learn(&path, "i-0123abcd", &a).unwrap();
        assert_eq!(
            check(&path, "i-0123abcd", &a).unwrap(),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&path, "i-0123abcdx", &a).unwrap(),
            HostKeyStatus::Unknown
        );
        assert!(matches!(
            check(&path, "i-0123abcd", &b).unwrap(),
            HostKeyStatus::Changed { line: 1, .. }
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("i-0123abcd ssh-ed25519 AAAA"), "{text}");
        assert_eq!(text.lines().next().unwrap().split(' ').count(), 3);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn matches_openssh_patterns_and_hashes() {
        assert!(host_matches("i-1,i-2", "i-2"));
        assert!(host_matches("i-*", "i-0abc"));
        assert!(!host_matches("i-*,!i-0abc", "i-0abc"));
        assert!(!host_matches("[i-0abc]:2222", "i-0abc"));
        // Written by `ssh-keygen -H` for host "i-0abc" with salt of 20 zero bytes.
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = [0u8; 20];
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"i-0abc");
        let hashed = format!(
            "|1|{}|{}",
            b64.encode(salt),
            b64.encode(mac.finalize().into_bytes())
        );
        assert!(host_matches(&hashed, "i-0abc"));
        assert!(!host_matches(&hashed, "i-0abd"));
    }

    #[test]
    fn revoked_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let a = key(3);
        let line = a.to_openssh().unwrap();
        std::fs::write(&path, format!("# comment\n\n@revoked * {line}\n")).unwrap();
        assert_eq!(
            check(&path, "i-9", &a).unwrap(),
            HostKeyStatus::Revoked { line: 3 }
        );
        assert_eq!(known_algorithms(&path, "i-9"), vec![]);
    }
}
