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
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let mut algs = Vec::new();
    for (_, line) in text_lines(path, &bytes) {
        if let Some(entry) = parse_line(line)
            && entry.marker.is_none()
            && host_matches(entry.hosts, host)
            && let Some(k) = entry.key
            && !algs.contains(&k.algorithm())
        {
            algs.push(k.algorithm());
        }
    }
    algs
}

/// The file's lines with their 1-based numbers. A line that is not UTF-8
/// (a comment in Latin-1, say) cannot be an entry OpenSSH would match for an
/// instance ID: it is skipped, and said so at -v, instead of making the whole
/// file unreadable.
fn text_lines<'a>(path: &'a Path, bytes: &'a [u8]) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter_map(move |(i, line)| match std::str::from_utf8(line) {
            Ok(text) => Some((i + 1, text)),
            Err(_) => {
                tracing::info!(
                    "{}:{}: skipping a line that is not valid UTF-8",
                    path.display(),
                    i + 1
                );
                None
            }
        })
}

/// The keys recorded for `host` (not `@revoked` or `@cert-authority`
/// lines), with their line numbers.
pub fn recorded(path: &Path, host: &str) -> Result<Vec<(usize, PublicKey)>, Error> {
    let bytes = match read(path)? {
        Some(b) => b,
        None => return Ok(Vec::new()),
    };
    Ok(text_lines(path, &bytes)
        .filter_map(|(n, line)| {
            let entry = parse_line(line)?;
            let key = entry
                .key
                .filter(|_| entry.marker.is_none() && host_matches(entry.hosts, host))?;
            Some((n, key))
        })
        .collect())
}

/// The file's bytes; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::KnownHosts {
            file: path.to_owned(),
            source: e.into(),
        }),
    }
}

/// Check `key` for `host` against the file. A missing file knows nothing.
pub fn check(path: &Path, host: &str, key: &PublicKey) -> Result<HostKeyStatus, Error> {
    let Some(bytes) = read(path)? else {
        return Ok(HostKeyStatus::Unknown);
    };
    let mut other: Option<(usize, PublicKey)> = None;
    let mut known = false;
    for (n, line) in text_lines(path, &bytes) {
        let Some(entry) = parse_line(line) else {
            continue;
        };
        let Some(entry_key) = entry.key else { continue };
        let same = entry_key.key_data() == key.key_data();
        match entry.marker {
            Some("@revoked") if same => return Ok(HostKeyStatus::Revoked { line: n }),
            Some(_) => continue,
            None => {}
        }
        if !host_matches(entry.hosts, host) {
            continue;
        }
        if same {
            known = true;
        } else if other.is_none() {
            other = Some((n, entry_key));
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
        source: e.into(),
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
            source: e.into(),
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
    let mut locked = crate::fs::lock::lock(f).map_err(err)?;
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

/// `*` and `?` matching, ASCII case-insensitive, as OpenSSH's
/// `match_pattern`. Iterative, remembering only the last `*`: at worst
/// pattern length × host length steps, never the exponential backtracking
/// of a recursive matcher (a field of many `*` then `x` took seconds).
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || s.get(si).is_some_and(|b| b.eq_ignore_ascii_case(&c)) => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                // Let the last `*` take one more byte, and go on from there.
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
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
    fn glob_matches_like_openssh() {
        for (p, h, want) in [
            ("i-*", "i-0abc", true),
            ("I-0ABC", "i-0abc", true),
            ("i-?abc", "i-0abc", true),
            ("i-?abc", "i-abc", false),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("*a*b*c", "xaybzc", true),
            ("*a*b*c", "xaybzcd", false),
            ("a*", "b", false),
            ("**x", "abx", true),
        ] {
            assert_eq!(glob(p, h), want, "{p} vs {h}");
        }
    }

    #[test]
    fn many_stars_match_quickly() {
        // Exponential in the star count with a backtracking matcher: 14
        // stars took 5 s, 30 would take days.
        let started = std::time::Instant::now();
        let field = format!("{}x", "*".repeat(10_000));
        assert!(!host_matches(&field, "i-0123456789abcdef0"));
        assert!(host_matches(
            &format!("{}0", "*".repeat(10_000)),
            "i-0123456789abcdef0"
        ));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn lines_that_are_not_utf8_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let a = key(4);
        let mut bytes = b"# caf\xe9\n".to_vec();
        bytes.extend_from_slice(format!("i-0abc {}\n", a.to_openssh().unwrap()).as_bytes());
        bytes.extend_from_slice(b"i-0abc ssh-ed25519 \xff\xfe\n");
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(check(&path, "i-0abc", &a).unwrap(), HostKeyStatus::Known);
        assert_eq!(known_algorithms(&path, "i-0abc"), vec![a.algorithm()]);
        assert_eq!(recorded(&path, "i-0abc").unwrap(), vec![(2, a)]);
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
