//! Property tests for every parser of outside input: none may panic, and
//! what is written can be read back. The case count is fixed (`CASES`), so
//! CI's run time is too.

use std::io::Write;
use std::net::Ipv4Addr;
use std::str::FromStr;

use clap::Parser;
use proptest::prelude::*;

use eic_ssh::aws::cidr::parse_cidr;
use eic_ssh::ssh::console_keys;
use eic_ssh::ssh::known_hosts::{self, HostKeyStatus};
use eic_ssh::target::syntax::Target;

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A fixed pool of real keys (generating one per case would dominate).
fn keys() -> &'static Vec<russh::keys::PublicKey> {
    static KEYS: std::sync::OnceLock<Vec<russh::keys::PublicKey>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        (0..8)
            .map(|_| {
                let k = eic_ssh::aws::keypush::EphemeralKey::generate().unwrap();
                // As a console shows it: no comment.
                russh::keys::PublicKey::from_openssh(&openssh(k.private.public_key())).unwrap()
            })
            .collect()
    })
}

fn openssh(key: &russh::keys::PublicKey) -> String {
    let line = key.to_openssh().unwrap();
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn instance_id() -> impl Strategy<Value = String> {
    prop_oneof!["i-[0-9a-f]{8}", "i-[0-9a-f]{17}"]
}

/// Text as it comes from outside: any characters, often lines of them.
fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec("[ -~]{0,40}", 0..8).prop_map(|l| l.join("\n")),
        proptest::collection::vec(any::<String>(), 0..6).prop_map(|l| l.join("\r\n")),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn targets_never_panic_and_round_trip(s in junk(), user in "[a-z_][a-z0-9_-]{0,30}", id in instance_id()) {
        let _ = Target::from_str(&s);
        let t = Target::from_str(&format!("{user}@{id}")).unwrap();
        prop_assert_eq!(t.user.as_deref(), Some(user.as_str()));
        prop_assert_eq!(t.instance_id(), Some(id.as_str()));
        let t = Target::from_str(&id).unwrap();
        prop_assert_eq!(t.user.as_deref(), None);
        prop_assert_eq!(t.instance_id(), Some(id.as_str()));
    }

    #[test]
    fn cidrs_never_panic_and_round_trip(s in junk(), ip in any::<u32>(), len in 0u8..=32) {
        let _ = parse_cidr(&s);
        let ip = Ipv4Addr::from(ip);
        let net = parse_cidr(&format!("{ip}/{len}")).unwrap();
        prop_assert_eq!(net.prefix_len(), len);
        prop_assert!(net.contains(&ip));
        prop_assert_eq!(parse_cidr(&net.to_string()).unwrap(), net);
        prop_assert_eq!(parse_cidr(&ip.to_string()).unwrap().prefix_len(), 32);
    }

    /// Any known_hosts file: checking never panics; learning a host keeps
    /// every byte that was there and is then known.
    #[test]
    fn known_hosts_never_panic_and_keep_their_lines(
        existing in junk(),
        host in instance_id(),
        k in 0usize..8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, &existing).unwrap();
        let key = &keys()[k];
        let _ = known_hosts::check(&path, &host, key);
        let _ = known_hosts::known_algorithms(&path, &host);
        let before = known_hosts::check(&path, &host, key);
        known_hosts::learn(&path, &host, key).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        prop_assert!(after.starts_with(&existing));
        if matches!(before, Ok(HostKeyStatus::Known | HostKeyStatus::Unknown)) {
            prop_assert_eq!(known_hosts::check(&path, &host, key).unwrap(), HostKeyStatus::Known);
        }
        // Learning again adds nothing.
        known_hosts::learn(&path, &host, key).unwrap();
        prop_assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
    }

    /// cloud-init's block among noise, with prefixes and CRLF: the keys are
    /// found; cut anywhere, nothing panics and nothing is invented.
    #[test]
    fn console_output_is_read_through_noise_and_truncation(
        before in junk(),
        after in junk(),
        prefix in prop_oneof![Just(String::new()), Just("ec2: ".to_owned()), "\\[ *[0-9]{1,4}\\.[0-9]{6}\\] "],
        crlf in any::<bool>(),
        picks in proptest::collection::vec(0usize..8, 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = format!("{before}{eol}{prefix}-----BEGIN SSH HOST KEY KEYS-----{eol}");
        for &p in &picks {
            text.push_str(&format!("{prefix}{} root@host{eol}", openssh(&keys()[p])));
        }
        text.push_str(&format!("{prefix}-----END SSH HOST KEY KEYS-----{eol}{after}"));
        let found = console_keys::parse(&text);
        for &p in &picks {
            prop_assert!(found.keys.contains(&keys()[p]), "{:?}", found.keys);
        }
        let mut end = cut.index(text.len() + 1);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let partial = console_keys::parse(&text[..end]);
        for k in &partial.keys {
            prop_assert!(picks.iter().any(|&p| &keys()[p] == k) || before.contains(&openssh(k)) || after.contains(&openssh(k)));
        }
    }

    /// `ssh-config`'s ProxyCommand, read as OpenSSH reads it (`%%` is `%`,
    /// then the shell splits words), gives back the profile and region.
    /// Every profile without a control character and every region name
    /// (lower-case letters, digits and dashes) is accepted: each draw is
    /// checked, none is passed over.
    #[test]
    fn ssh_config_quoting_round_trips_through_the_shell(
        profile in "[^\\p{Cc}]{1,24}",
        region in "[a-z0-9-]{1,20}",
    ) {
        let cli = eic_ssh::cli::Cli::try_parse_from([
            "eic-ssh".to_owned(), "ssh-config".to_owned(),
            format!("--profile={profile}"), format!("--region={region}"),
        ]);
        let cli = match cli {
            Ok(cli) => cli,
            Err(e) => return Err(TestCaseError::fail(format!("refused: {e}"))),
        };
        let Some(eic_ssh::cli::Subcommand::SshConfig(args)) = cli.subcommand else {
            panic!("not ssh-config");
        };
        let rendered = eic_ssh::commands::ssh_config::render(&args);
        // The one refusal: `${`, which ssh expands whatever the quoting.
        if profile.contains("${") {
            let e = rendered.expect_err("a profile with ${ was written");
            prop_assert!(e.to_string().contains("which ssh would expand as an environment variable"), "{}", e);
            return Ok(());
        }
        let text = match rendered {
            Ok(text) => text,
            Err(e) => return Err(TestCaseError::fail(format!("refused: {e}"))),
        };
        let line = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("ProxyCommand "))
            .unwrap();
        let expanded = line.replace("%%", "%");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {expanded}"))
            .output()
            .unwrap();
        let words: Vec<String> = out
            .stdout
            .split(|&b| b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let after = |flag: &str| words.iter().position(|w| w == flag).and_then(|i| words.get(i + 1)).cloned();
        prop_assert_eq!(after("--profile"), Some(profile));
        prop_assert_eq!(after("--region"), Some(region));
        prop_assert!(words.iter().any(|w| w == "proxy"), "{:?}", words);
    }
}

/// A known_hosts edited by hand, then written to by eic-ssh, parses line
/// for line as OpenSSH's own `ssh-keygen -F` sees it.
#[test]
fn learned_lines_are_openssh_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_hosts");
    let mut f = std::fs::File::create(&path).unwrap();
    write!(
        f,
        "# mine\nother-host {}\n# no newline at the end",
        openssh(&keys()[0])
    )
    .unwrap();
    drop(f);
    known_hosts::learn(&path, "i-0123456789abcdef0", &keys()[1]).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .args(["-F", "i-0123456789abcdef0", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&openssh(&keys()[1])), "{text}");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-F", "other-host", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&openssh(&keys()[0])));
}
