//! Host keys from the instance's boot console (`ec2:GetConsoleOutput`), where
//! cloud-init prints them, so that a first contact can be verified instead of
//! trusted blindly.

use russh::keys::PublicKey;

use crate::error::Error;

/// What the console says about the instance's host keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleHostKeys {
    /// From the `SSH HOST KEY KEYS` block.
    pub keys: Vec<PublicKey>,
    /// `SHA256:…` from the `SSH HOST KEY FINGERPRINTS` block.
    pub fingerprints: Vec<String>,
}

/// How an offered host key compares with the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleVerdict {
    /// The console lists this key (or its fingerprint).
    Verified,
    /// The console lists keys, and this is not one of them.
    Mismatch { console: Vec<String> },
    /// The console lists no keys: not printed, not yet available, or truncated.
    NoKeys,
}

impl ConsoleHostKeys {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.fingerprints.is_empty()
    }

    /// Compare an offered key with the console's.
    pub fn verdict(&self, offered: &PublicKey) -> ConsoleVerdict {
        if self.is_empty() {
            return ConsoleVerdict::NoKeys;
        }
        let fp = crate::ssh::known_hosts::fingerprint(offered);
        let listed = self.keys.iter().any(|k| k.key_data() == offered.key_data())
            || self.fingerprints.contains(&fp);
        if listed {
            ConsoleVerdict::Verified
        } else {
            ConsoleVerdict::Mismatch {
                console: self.all_fingerprints(),
            }
        }
    }

    /// Every fingerprint the console shows, keys first.
    pub fn all_fingerprints(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .keys
            .iter()
            .map(crate::ssh::known_hosts::fingerprint)
            .collect();
        for f in &self.fingerprints {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        out
    }
}

const KEYS_BEGIN: &str = "-----BEGIN SSH HOST KEY KEYS-----";
const KEYS_END: &str = "-----END SSH HOST KEY KEYS-----";
const FP_BEGIN: &str = "-----BEGIN SSH HOST KEY FINGERPRINTS-----";
const FP_END: &str = "-----END SSH HOST KEY FINGERPRINTS-----";

/// Parse console text. Lines may carry prefixes (`ec2: `, timestamps,
/// `cloud-init[123]: `), end in CRLF, and the text may be truncated; junk
/// around and inside the blocks is ignored. When several boots printed
/// blocks, the last of each kind wins.
pub fn parse(text: &str) -> ConsoleHostKeys {
    #[derive(PartialEq)]
    enum In {
        Nothing,
        Keys,
        Fingerprints,
    }
    let mut state = In::Nothing;
    let mut keys = Vec::new();
    let mut fps = Vec::new();
    let mut out = ConsoleHostKeys::default();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.contains(KEYS_BEGIN) {
            state = In::Keys;
            keys.clear();
        } else if line.contains(FP_BEGIN) {
            state = In::Fingerprints;
            fps.clear();
        } else if line.contains(KEYS_END) {
            if state == In::Keys {
                out.keys = std::mem::take(&mut keys);
            }
            state = In::Nothing;
        } else if line.contains(FP_END) {
            if state == In::Fingerprints {
                out.fingerprints = std::mem::take(&mut fps);
            }
            state = In::Nothing;
        } else if state == In::Keys {
            if let Some(k) = key_in(line) {
                keys.push(k);
            }
        } else if state == In::Fingerprints
            && let Some(f) = fingerprint_in(line)
        {
            fps.push(f);
        }
    }
    // A block cut off by truncation still counts for what it showed.
    if state == In::Keys && !keys.is_empty() {
        out.keys = keys;
    }
    if state == In::Fingerprints && !fps.is_empty() {
        out.fingerprints = fps;
    }
    out
}

fn key_in(line: &str) -> Option<PublicKey> {
    const TYPES: [&str; 4] = ["ssh-ed25519 ", "ecdsa-sha2-", "ssh-rsa ", "sk-"];
    let start = TYPES.iter().filter_map(|t| line.find(t)).min()?;
    let mut words = line[start..].split_whitespace();
    let (alg, b64) = (words.next()?, words.next()?);
    PublicKey::from_openssh(&format!("{alg} {b64}")).ok()
}

/// A well-formed `SHA256:` fingerprint: 43 base64 characters that decode
/// to 32 bytes. Anything else (a console can hold any bytes, escape
/// sequences included) is not a fingerprint.
fn fingerprint_in(line: &str) -> Option<String> {
    use base64::Engine;
    let start = line.find("SHA256:")?;
    let fp: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let b64 = fp.strip_prefix("SHA256:")?;
    let digest = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(b64)
        .ok()?;
    (digest.len() == 32).then_some(fp)
}

/// Fetch the instance's console output and parse it.
pub async fn fetch(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Result<ConsoleHostKeys, Error> {
    Ok(parse(&crate::aws::console::output(ec2, instance_id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
        russh::keys::PrivateKey::from(pair).public_key().clone()
    }

    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=";

    #[test]
    fn cloud_init_layout_with_prefixes_crlf_and_junk() {
        let ed = key(7).to_openssh().unwrap();
        let ed_fp = crate::ssh::known_hosts::fingerprint(&key(7));
        let text = format!(
            "[    0.000000] Linux version 6.1\r\n\
             random junk -----\r\n\
             [   12.345678] cloud-init[1234]: ec2: #############################################################\r\n\
             [   12.345679] cloud-init[1234]: ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n\
             [   12.345680] cloud-init[1234]: ec2: 256 {ed_fp} root@ip-10-0-1-10 (ED25519)\r\n\
             [   12.345681] cloud-init[1234]: ec2: 256 SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU root@ip (ECDSA)\r\n\
             [   12.345682] cloud-init[1234]: ec2: -----END SSH HOST KEY FINGERPRINTS-----\r\n\
             -----BEGIN SSH HOST KEY KEYS-----\r\n\
             {ECDSA} root@ip-10-0-1-10\r\n\
             {ed} root@ip-10-0-1-10\r\n\
             not a key at all\r\n\
             -----END SSH HOST KEY KEYS-----\r\n\
             login: "
        );
        let parsed = parse(&text);
        assert_eq!(parsed.keys.len(), 2);
        assert_eq!(parsed.fingerprints.len(), 2);
        assert_eq!(parsed.verdict(&key(7)), ConsoleVerdict::Verified);
        assert!(matches!(
            parsed.verdict(&key(8)),
            ConsoleVerdict::Mismatch { .. }
        ));
    }

    #[test]
    fn ec2_prefixed_keys_block_and_fingerprints_alone() {
        let ed = key(1).to_openssh().unwrap();
        let parsed = parse(&format!(
            "ec2: -----BEGIN SSH HOST KEY KEYS-----\nec2: {ed} root@x\nec2: -----END SSH HOST KEY KEYS-----\n"
        ));
        assert_eq!(parsed.keys, vec![key(1)]);
        let fp = crate::ssh::known_hosts::fingerprint(&key(2));
        let parsed = parse(&format!(
            "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 {fp} root@x (ED25519)\n-----END SSH HOST KEY FINGERPRINTS-----\n"
        ));
        assert_eq!(parsed.verdict(&key(2)), ConsoleVerdict::Verified);
    }

    #[test]
    fn only_well_formed_fingerprints_count() {
        let good = crate::ssh::known_hosts::fingerprint(&key(9));
        let text = format!(
            "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n\
             256 SHA256:\x1b]0;PWNED\x07\x1b[2J root@x (ED25519)\n\
             256 SHA256:notbase64! root@x (ED25519)\n\
             256 SHA256:AAAA root@x (ED25519)\n\
             256 {good} root@x (ED25519)\n\
             -----END SSH HOST KEY FINGERPRINTS-----\n"
        );
        assert_eq!(parse(&text).fingerprints, vec![good]);
    }

    #[test]
    fn empty_truncated_and_repeated_boots() {
        assert_eq!(parse("").verdict(&key(1)), ConsoleVerdict::NoKeys);
        assert_eq!(
            parse("-----BEGIN SSH HOST KEY KEYS-----\n").verdict(&key(1)),
            ConsoleVerdict::NoKeys
        );
        // Truncated in the middle of the block: what it showed still counts.
        let ed = key(3).to_openssh().unwrap();
        let parsed = parse(&format!(
            "-----BEGIN SSH HOST KEY KEYS-----\n{ed} root@x\nssh-rsa AAAAB3Nza"
        ));
        assert_eq!(parsed.verdict(&key(3)), ConsoleVerdict::Verified);
        // Two boots: the last block wins.
        let (a, b) = (key(4).to_openssh().unwrap(), key(5).to_openssh().unwrap());
        let parsed = parse(&format!(
            "-----BEGIN SSH HOST KEY KEYS-----\n{a}\n-----END SSH HOST KEY KEYS-----\n-----BEGIN SSH HOST KEY KEYS-----\n{b}\n-----END SSH HOST KEY KEYS-----\n"
        ));
        assert_eq!(parsed.keys, vec![key(5)]);
    }
}
