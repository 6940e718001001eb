//! Hostile and odd input (issue 18): each test here failed before its fix.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_a_tunnel_beyond_loopback_warns() {
    let f = Fixture::new().await;
    // TEST-NET-1 is on no interface: the bind fails after the warning, so
    // nothing is ever exposed by this test.
    let out = f
        .run(
            &[
                "tunnel",
                INSTANCE,
                "--local-port",
                "0",
                "--bind",
                "192.0.2.1",
            ],
            b"",
        )
        .await;
    assert!(
        out.stderr
            .contains("WARNING: --bind 192.0.2.1 is not a loopback address")
            && out.stderr.contains("unauthenticated tunnel"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_flags_before_a_subcommand() {
    let f = Fixture::new().await;
    let out = f.run(&["-v", "cache", "path"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(out.stdout_str().trim_end().ends_with("eic-ssh/routes.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_keepalive_interval_is_a_usage_error() {
    let f = Fixture::new().await;
    let out = f
        .run(
            &[
                "--keepalive-interval",
                "18446744073709551615",
                &f.target(),
                "--",
                "true",
            ],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("18446744073709551615"),
        "{}",
        out.stderr
    );
    assert!(f.sim.request_log().is_empty(), "no network call");
}

/// A known_hosts with the instance's real key, in `bytes` around it.
fn write_known_hosts(f: &Fixture, before: &[u8], after: &[u8]) {
    let dir = f.home.path().join(".ssh");
    std::fs::create_dir_all(&dir).unwrap();
    let two: Vec<&str> = f.sshd.host_key_pubs[0].split_whitespace().take(2).collect();
    let mut bytes = before.to_vec();
    bytes.extend_from_slice(format!("{INSTANCE} {}\n", two.join(" ")).as_bytes());
    bytes.extend_from_slice(after);
    std::fs::write(f.known_hosts(), bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_is_not_utf8_does_not_block_connections() {
    let f = Fixture::new().await;
    write_known_hosts(&f, b"# caf\xe9\n", b"# \xff\xfe\n");
    let out = f
        .run(
            &[
                "-v",
                "--strict-host-key-checking",
                "yes",
                &f.target(),
                "--",
                "echo",
                "ok",
            ],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n");
    assert!(
        out.stderr
            .contains("known_hosts:1: skipping a line that is not valid UTF-8"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_field_of_many_stars_is_matched_quickly() {
    let f = Fixture::new().await;
    let stars = format!(
        "{}x ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJjtsVLBPMkqLrbBaDRtsnfLOntPqhcicrl2X7kt2nEN\n",
        "*".repeat(40)
    );
    write_known_hosts(&f, stars.as_bytes(), b"");
    let started = std::time::Instant::now();
    let out = f
        .run(
            &[
                "--strict-host-key-checking",
                "yes",
                &f.target(),
                "--",
                "echo",
                "ok",
            ],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n");
    // 40 stars took days with the backtracking matcher.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_keys_add_refuses_beside_a_different_recorded_key() {
    let f = Fixture::new().await;
    let key = f.sshd.host_key_pubs[0].clone();
    let two: Vec<&str> = key.split_whitespace().take(2).collect();
    let console = format!(
        "-----BEGIN SSH HOST KEY KEYS-----\r\n{} root@ip\r\n-----END SSH HOST KEY KEYS-----\r\n",
        two.join(" ")
    );
    f.sim.set_world(|w| {
        for i in &mut w.instances {
            if i.id == INSTANCE {
                i.console_output = Some(console.clone());
            }
        }
    });
    // Another instance's key, recorded for this instance ID.
    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJjtsVLBPMkqLrbBaDRtsnfLOntPqhcicrl2X7kt2nEN";
    let dir = f.home.path().join(".ssh");
    std::fs::create_dir_all(&dir).unwrap();
    let before = format!("# kept\n{INSTANCE} {other}\n");
    std::fs::write(f.known_hosts(), &before).unwrap();
    let out = f.run(&["host-keys", INSTANCE, "--add"], b"").await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    let other_fp = russh::keys::PublicKey::from_openssh(other)
        .unwrap()
        .fingerprint(russh::keys::HashAlg::Sha256)
        .to_string();
    assert!(
        out.stderr
            .contains(&format!("known_hosts:2 records ssh-ed25519 {other_fp}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("ssh-keygen -R {INSTANCE} -f ")),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(f.known_hosts()).unwrap(),
        before,
        "nothing added"
    );
    // The same key recorded already: nothing to refuse.
    std::fs::write(f.known_hosts(), format!("{INSTANCE} {}\n", two.join(" "))).unwrap();
    let out = f.run(&["host-keys", INSTANCE, "--add"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
}
