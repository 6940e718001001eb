//! Host-key trust: a first contact verified against the instance's console
//! output, and OpenSSH's StrictHostKeyChecking controls.

use std::process::Stdio;

use russh::keys::{HashAlg, PublicKey};

use crate::support::*;

fn fingerprint(line: &str) -> String {
    PublicKey::from_openssh(line)
        .unwrap()
        .fingerprint(HashAlg::Sha256)
        .to_string()
}

/// The console text cloud-init prints, with the real sshd's host keys.
fn cloud_init_console(f: &Fixture, prefix: &str) -> String {
    let mut text =
        String::from("[    0.000000] Linux version 6.1.0 (builder@host)\r\nsome boot noise\r\n");
    text.push_str(&format!(
        "{prefix}#############################################################\r\n"
    ));
    text.push_str(&format!(
        "{prefix}-----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n"
    ));
    for k in &f.sshd.host_key_pubs {
        text.push_str(&format!(
            "{prefix}256 {} root@ip-10-0-1-10 (ED25519)\r\n",
            fingerprint(k)
        ));
    }
    text.push_str(&format!(
        "{prefix}-----END SSH HOST KEY FINGERPRINTS-----\r\n"
    ));
    text.push_str(&format!(
        "{prefix}#############################################################\r\n"
    ));
    text.push_str("-----BEGIN SSH HOST KEY KEYS-----\r\n");
    for k in &f.sshd.host_key_pubs {
        let two: Vec<&str> = k.split_whitespace().take(2).collect();
        text.push_str(&format!("{} root@ip-10-0-1-10\r\n", two.join(" ")));
    }
    text.push_str("-----END SSH HOST KEY KEYS-----\r\nAmazon Linux 2023\r\nip-10-0-1-10 login: ");
    text
}

pub(crate) fn set_console(f: &Fixture, text: Option<String>, denied: bool) {
    f.set_instance(INSTANCE, |i| {
        i.console_output = text;
        i.console_denied = denied;
    });
}

#[async_test]
async fn a_first_contact_is_verified_against_the_console() {
    for prefix in ["", "[   12.345678] cloud-init[1234]: ec2: "] {
        let f = Fixture::new().await;
        set_console(&f, Some(cloud_init_console(&f, prefix)), false);
        f.run(&[&f.target(), "--", "echo", "ok"], b"")
            .await
            .assert_stdout("ok\n")
            .assert_stderr_contains(
                "verified against the instance's console output and permanently added",
            );
        assert_eq!(f.attempts("GetConsoleOutput"), [200], "{prefix:?}");
        assert!(
            std::fs::read_to_string(f.known_hosts())
                .unwrap()
                .contains(INSTANCE)
        );
    }
}

#[async_test]
async fn a_key_the_console_does_not_show_is_refused_before_authentication() {
    let f = Fixture::new().await;
    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@elsewhere";
    set_console(
        &f,
        Some(format!(
            "-----BEGIN SSH HOST KEY KEYS-----\n{other}\n-----END SSH HOST KEY KEYS-----\n"
        )),
        false,
    );
    // Refused, naming the key offered and the console's.
    f.run(&[&f.target(), "--", "echo", "should-not-run"], b"")
        .await
        .assert_status(255)
        .assert_stdout("")
        .assert_stderr_contains("POSSIBLE INTERCEPTION")
        .assert_stderr_contains(fingerprint(&f.sshd.host_key_pubs[0]))
        .assert_stderr_contains(fingerprint(other));
    assert!(
        !f.known_hosts().exists()
            || !std::fs::read_to_string(f.known_hosts())
                .unwrap()
                .contains(INSTANCE)
    );
    assert!(
        !f.sshd.log().contains("Accepted publickey"),
        "authentication happened: {}",
        f.sshd.log()
    );
}

#[async_test]
async fn without_console_keys_the_policy_decides() {
    let f = Fixture::new().await;
    // Truncated before the keys: nothing to verify with.
    set_console(
        &f,
        Some("[    0.000000] Linux version 6.1.0\r\n-----BEGIN SSH HOST KEY FINGERPRI".into()),
        false,
    );
    f.run(
        &[
            "--strict-host-key-checking",
            "yes",
            &f.target(),
            "--",
            "true",
        ],
        b"",
    )
    .await
    .assert_status(255)
    .assert_stderr_contains("could not verify the host key")
    .assert_stderr_contains("--strict-host-key-checking=yes refuses unknown keys")
    .assert_stderr_contains(format!("eic-ssh host-keys {INSTANCE} --add"));

    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_success()
        .assert_stderr_contains("could not verify the host key of")
        .assert_stderr_contains("permanently added");
}

#[async_test]
async fn a_denied_console_is_explained_with_the_action_to_grant() {
    let f = Fixture::new().await;
    set_console(&f, None, true);
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_success()
        .assert_stderr_contains("could not verify the host key")
        .assert_stderr_contains("UnauthorizedOperation");

    f.run(&["host-keys", INSTANCE], b"")
        .await
        .assert_status(255)
        .assert_stderr_contains("grant ec2:GetConsoleOutput");
}

#[async_test]
async fn verify_none_skips_the_console_and_no_accepts_a_changed_key_loudly() {
    let mut f = Fixture::new().await;
    f.run(
        &["--verify-host-key", "none", &f.target(), "--", "true"],
        b"",
    )
    .await
    .assert_success();
    assert_eq!(f.attempts("GetConsoleOutput"), [0u16; 0]);

    f.sshd.replace_host_key().await.unwrap();
    for mode in ["yes", "accept-new", "no"] {
        let out = f.echo_ok(&["--strict-host-key-checking", mode], &[]).await;
        if mode == "no" {
            out.assert_stdout("ok\n").assert_stderr_contains("INSECURE");
        } else {
            out.assert_status(255).assert_stderr_contains("has changed");
        }
    }
}

#[async_test]
async fn host_keys_add_lets_openssh_connect_with_strict_checking() {
    let f = Fixture::new().await;
    set_console(&f, Some(cloud_init_console(&f, "ec2: ")), false);
    let key_b64 = f.sshd.host_key_pubs[0].split_whitespace().nth(1).unwrap();
    f.run(&["host-keys", INSTANCE, "--add"], b"")
        .await
        .assert_success()
        .assert_stdout_contains(format!("{INSTANCE} ssh-ed25519 {key_b64}"))
        .assert_stdout_contains(fingerprint(&f.sshd.host_key_pubs[0]));

    // OpenSSH, strict, through eic-ssh proxy, trusts what was added.
    let ssh_dir = f.home.path().join(".ssh");
    let key = ssh_dir.join("id_ed25519");
    assert!(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let mut ssh = f.program("ssh");
    ssh.args([
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
    ])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={}", f.known_hosts().display()))
    .arg("-i")
    .arg(&key)
    .arg("-o")
    .arg(format!(
        "ProxyCommand={} proxy --user %r %h %p",
        env!("CARGO_BIN_EXE_eic-ssh")
    ))
    .arg(f.target())
    .arg("echo strict-ok")
    .stdin(Stdio::null());
    let out: Output = tokio::time::timeout(2 * WAIT, ssh.output())
        .await
        .unwrap()
        .unwrap()
        .into();
    out.assert_stdout("strict-ok\n");
}
