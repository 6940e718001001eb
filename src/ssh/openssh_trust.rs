//! The answer to OpenSSH's `KnownHostsCommand`, which `eic-ssh ssh-config`
//! writes: the host keys `ssh` may accept for an instance it reaches through
//! `eic-ssh proxy`, under the name `ssh` looks them up by (a Name tag, an
//! ID), so that plain `ssh web-1` verifies the host as eic-ssh does.
//!
//! The answer holds only keys that are trusted: those recorded under the
//! instance ID, or the one the server offers once the instance's console
//! lists it. A key that cannot be verified is never printed (ssh's own
//! `StrictHostKeyChecking` then decides), and one the console contradicts
//! fails the command, which makes ssh stop.

use std::path::Path;

use russh::keys::PublicKey;

use crate::error::Error;
use crate::ssh::console_keys::{ConsoleHostKeys, ConsoleVerdict};
use crate::ssh::known_hosts::{self, HostKeyStatus};

/// What ssh asks about.
pub struct Question<'a> {
    /// The name ssh looks keys up under (its `%H`): lines are printed for it.
    pub name: &'a str,
    /// The instance `name` leads to, under which eic-ssh records keys.
    pub instance_id: &'a str,
    /// The known_hosts file eic-ssh records in.
    pub known_hosts: &'a Path,
    /// The key the server offered (`%K`); `None` when ssh only asks which
    /// key types to prefer, before the key exchange.
    pub offered: Option<&'a PublicKey>,
}

/// Check that `name` can head a known_hosts line as one host name: no
/// blanks, commas or control characters, and not a marker, comment or
/// hashed entry.
pub fn check_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.starts_with(['@', '#', '|', '!'])
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',');
    match bad {
        true => Err(Error::Usage(format!(
            "{:?} cannot name a host in known_hosts",
            crate::text::printable(name)
        ))),
        false => Ok(()),
    }
}

/// Answer ssh: the known_hosts lines to print for `q.name`. `console` is
/// asked only for a key nothing records yet. `notify` prints the one-line
/// notices (key verified and recorded, key not verifiable, key changed).
pub async fn answer<F>(q: &Question<'_>, console: F, notify: bool) -> Result<String, Error>
where
    F: std::future::Future<Output = Result<ConsoleHostKeys, String>>,
{
    check_name(q.name)?;
    let recorded = known_hosts::recorded(q.known_hosts, q.instance_id)?;
    let Some(key) = q.offered else {
        // Before the key exchange: what is recorded, so that ssh asks for
        // those types first, as eic-ssh itself does.
        return lines(q.name, recorded.iter().map(|(_, k)| k), None);
    };
    let notice = |msg: String| {
        if notify {
            crate::term::notice(&msg);
        }
    };
    match known_hosts::check(q.known_hosts, q.instance_id, key)? {
        HostKeyStatus::Known => lines(q.name, recorded.iter().map(|(_, k)| k), None),
        // Printed as revoked, so that ssh refuses it in every mode.
        HostKeyStatus::Revoked { .. } => lines(q.name, [key], Some("@revoked")),
        // Another key of the same type is recorded: ssh sees the change
        // (and applies its own StrictHostKeyChecking to it); the hint names
        // the entry to remove, which ssh's own message cannot.
        HostKeyStatus::Changed { line, known } if known.algorithm() == key.algorithm() => {
            if notify {
                let changed = Error::HostKeyChanged {
                    host: q.instance_id.to_owned(),
                    file: q.known_hosts.to_owned(),
                    line,
                    known: describe(&known),
                    offered: describe(key),
                };
                crate::term::notice(&format!("warning: {changed}"));
                if let Some(hint) = changed.hint() {
                    crate::term::notice(&format!("hint: {hint}"));
                }
            }
            lines(q.name, recorded.iter().map(|(_, k)| k), None)
        }
        // Nothing recorded, or only keys of other types (ssh may choose a
        // type eic-ssh never saw): a first contact for this key, verified
        // against the console as the embedded client verifies one.
        HostKeyStatus::Changed { .. } | HostKeyStatus::Unknown => {
            let why = match console.await {
                Ok(c) => match c.verdict(key) {
                    ConsoleVerdict::Verified => {
                        known_hosts::learn(q.known_hosts, q.instance_id, key)?;
                        notice(format!(
                            "verified against the instance's console output and permanently added '{}' ({}) to {}",
                            q.instance_id,
                            describe(key),
                            q.known_hosts.display()
                        ));
                        let mut keys: Vec<&PublicKey> = recorded.iter().map(|(_, k)| k).collect();
                        keys.push(key);
                        return lines(q.name, keys, None);
                    }
                    ConsoleVerdict::Mismatch { console } => {
                        return Err(Error::HostKeyMismatch {
                            host: q.instance_id.to_owned(),
                            offered: describe(key),
                            console: console.join(", "),
                        });
                    }
                    ConsoleVerdict::NoKeys => "its console output shows no host keys (not printed yet, truncated, or not cloud-init)".to_owned(),
                },
                Err(why) => why,
            };
            notice(format!(
                "could not verify the host key of {} ({}): {why}; ssh decides by its StrictHostKeyChecking",
                q.instance_id,
                describe(key)
            ));
            lines(q.name, recorded.iter().map(|(_, k)| k), None)
        }
    }
}

/// `[marker ]name type base64` lines, one per key.
fn lines<'k>(
    name: &str,
    keys: impl IntoIterator<Item = &'k PublicKey>,
    marker: Option<&str>,
) -> Result<String, Error> {
    let mut out = String::new();
    for key in keys {
        let text = key.to_openssh()?;
        let words: Vec<&str> = text.split_whitespace().take(2).collect();
        if let Some(m) = marker {
            out.push_str(m);
            out.push(' ');
        }
        out.push_str(&format!("{name} {}\n", words.join(" ")));
    }
    Ok(out)
}

fn describe(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm(), known_hosts::fingerprint(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::{EcdsaCurve, private};

    fn ed25519() -> PublicKey {
        let pair = private::Ed25519Keypair::from_seed(&rand::random::<[u8; 32]>());
        PrivateKey::from(pair).public_key().clone()
    }

    fn ecdsa() -> PublicKey {
        let pair = private::EcdsaKeypair::random(&mut rand::rng(), EcdsaCurve::NistP256).unwrap();
        PrivateKey::from(pair).public_key().clone()
    }

    fn console_with(keys: &[&PublicKey]) -> ConsoleHostKeys {
        ConsoleHostKeys {
            keys: keys.iter().map(|k| (*k).clone()).collect(),
            fingerprints: Vec::new(),
        }
    }

    const ID: &str = "i-0123456789abcdef0";

    async fn ask(
        file: &Path,
        offered: Option<&PublicKey>,
        console: Result<ConsoleHostKeys, String>,
    ) -> Result<String, Error> {
        let q = Question {
            name: "web-1",
            instance_id: ID,
            known_hosts: file,
            offered,
        };
        answer(&q, async { console }, false).await
    }

    fn line(name: &str, k: &PublicKey) -> String {
        lines(name, [k], None).unwrap()
    }

    #[tokio::test]
    async fn a_first_contact_is_printed_only_once_the_console_lists_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let k = ed25519();
        // Not verifiable: nothing printed, nothing recorded.
        for console in [Ok(ConsoleHostKeys::default()), Err("denied".to_owned())] {
            assert_eq!(ask(&file, Some(&k), console).await.unwrap(), "");
            assert!(!file.exists());
        }
        // Contradicted: an error, nothing recorded.
        let other = ed25519();
        let err = ask(&file, Some(&k), Ok(console_with(&[&other])))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::HostKeyMismatch { .. }), "{err}");
        assert!(!file.exists());
        // Verified: printed under the asked name, recorded under the ID.
        let out = ask(&file, Some(&k), Ok(console_with(&[&other, &k])))
            .await
            .unwrap();
        assert_eq!(out, line("web-1", &k));
        assert_eq!(
            known_hosts::check(&file, ID, &k).unwrap(),
            HostKeyStatus::Known
        );
        // Then known: the console is not asked again.
        let out = ask(&file, Some(&k), Err("must not be asked".into()))
            .await
            .unwrap();
        assert_eq!(out, line("web-1", &k));
        // Before the key exchange: the recorded keys.
        assert_eq!(
            ask(&file, None, Err("no".into())).await.unwrap(),
            line("web-1", &k)
        );
    }

    #[tokio::test]
    async fn a_changed_key_is_answered_with_the_recorded_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let old = ed25519();
        known_hosts::learn(&file, ID, &old).unwrap();
        let new = ed25519();
        // Even a console that lists the new key does not replace the
        // recorded one: the change is ssh's (and the user's) to judge.
        let out = ask(&file, Some(&new), Ok(console_with(&[&new])))
            .await
            .unwrap();
        assert_eq!(out, line("web-1", &old));
        assert_eq!(known_hosts::recorded(&file, ID).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_key_of_a_new_type_is_a_first_contact() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let ecdsa = ecdsa();
        known_hosts::learn(&file, ID, &ecdsa).unwrap();
        let ed = ed25519();
        assert_eq!(
            ask(&file, Some(&ed), Err("denied".into())).await.unwrap(),
            line("web-1", &ecdsa)
        );
        let out = ask(&file, Some(&ed), Ok(console_with(&[&ed])))
            .await
            .unwrap();
        assert_eq!(
            out,
            format!("{}{}", line("web-1", &ecdsa), line("web-1", &ed))
        );
    }

    #[tokio::test]
    async fn a_revoked_key_is_printed_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let k = ed25519();
        std::fs::write(&file, format!("@revoked * {}", line("", &k).trim())).unwrap();
        let out = ask(&file, Some(&k), Ok(console_with(&[&k]))).await.unwrap();
        assert_eq!(out, format!("@revoked {}", line("web-1", &k)));
    }

    #[test]
    fn names_that_cannot_head_a_line_are_refused() {
        for bad in ["", "a b", "a,b", "@revoked", "#x", "|1|x", "a\nb", "!a"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["web-1", "i-0123456789abcdef0", "[web-1]:2222", "10.0.1.10"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }
}
