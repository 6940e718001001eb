//! Hostile and odd input (issue 18): each test here failed before its fix.

use crate::support::*;

#[async_test]
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
    out.assert_stderr_contains("eic-ssh: warning: --bind 192.0.2.1 is not a loopback address")
        .assert_stderr_contains("unauthenticated tunnel");
}

#[async_test]
async fn global_flags_before_a_subcommand() {
    let f = Fixture::new().await;
    let out = f.run(&["-v", "cache", "path"], b"").await;
    out.assert_success();
    assert!(out.stdout_str().trim_end().ends_with("eic-ssh/routes.json"));
}

#[async_test]
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
    out.assert_status(2);
    out.assert_stderr_contains("18446744073709551615");
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

#[async_test]
async fn a_line_that_is_not_utf8_does_not_block_connections() {
    let f = Fixture::new().await;
    write_known_hosts(&f, b"# caf\xe9\n", b"# \xff\xfe\n");
    let out = f
        .echo_ok(&["-v", "--strict-host-key-checking", "yes"], &[])
        .await;
    out.assert_success();
    assert_eq!(out.stdout_str(), "ok\n");
    assert!(
        out.stderr
            .contains("known_hosts:1: skipping a line that is not valid UTF-8"),
        "{}",
        out.stderr
    );
}

#[async_test]
async fn a_host_field_of_many_stars_is_matched_quickly() {
    let f = Fixture::new().await;
    let stars = format!(
        "{}x ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJjtsVLBPMkqLrbBaDRtsnfLOntPqhcicrl2X7kt2nEN\n",
        "*".repeat(40)
    );
    write_known_hosts(&f, stars.as_bytes(), b"");
    let started = std::time::Instant::now();
    let out = f.echo_ok(&["--strict-host-key-checking", "yes"], &[]).await;
    out.assert_success();
    assert_eq!(out.stdout_str(), "ok\n");
    // 40 stars took days with the backtracking matcher.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[async_test]
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
    out.assert_status(255);
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
    out.assert_success();
}

/// Control bytes a hostile peer could use to retitle or clear the terminal.
fn assert_no_control_bytes(stderr: &str) {
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "control characters reached the terminal: {stderr:?}"
    );
}

const HOSTILE: &str = "\x1b]0;PWNED\x07\x1b[2J";

#[async_test]
async fn a_hostile_error_body_is_stripped_and_capped() {
    let f = Fixture::new().await;
    let message = format!("{HOSTILE}denied {}", "x".repeat(2_000));
    f.sim.fail_next("OpenTunnel", 403, "AccessDenied", &message);
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    out.assert_status(255);
    out.assert_stderr_contains("]0;PWNED[2Jdenied xxx");
    assert_no_control_bytes(&out.stderr);
    let longest = out.stderr.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 1300, "a line of {longest} bytes");
}

#[async_test]
async fn a_hostile_close_reason_is_stripped() {
    let f = Fixture::new().await;
    let mut run = f.spawn(&[&f.target(), "--", "echo $((1+1))up; sleep 20"]);
    // Close once the remote command runs (only it prints 2up).
    assert_eq!(run.stdout_line().await, "2up");
    f.sim.close_tunnels(4000, &format!("{HOSTILE}bye"));
    assert_eq!(run.status().await, Some(255), "{}", run.stderr_so_far());
    let stderr = run.stderr_so_far();
    assert!(stderr.contains("]0;PWNED[2Jbye"), "{stderr}");
    assert_no_control_bytes(&stderr);
}

#[async_test]
async fn a_console_fingerprint_must_be_well_formed_base64() {
    let f = Fixture::new().await;
    let other = russh::keys::PublicKey::from_openssh(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJjtsVLBPMkqLrbBaDRtsnfLOntPqhcicrl2X7kt2nEN",
    )
    .unwrap()
    .fingerprint(russh::keys::HashAlg::Sha256)
    .to_string();
    let console = format!(
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n256 SHA256:{HOSTILE} root@x (ED25519)\r\n256 {other} root@x (ED25519)\r\n-----END SSH HOST KEY FINGERPRINTS-----\r\n"
    );
    f.sim.set_world(|w| {
        for i in &mut w.instances {
            if i.id == INSTANCE {
                i.console_output = Some(console.clone());
            }
        }
    });
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    out.assert_status(255);
    out.assert_stderr_contains("POSSIBLE INTERCEPTION");
    out.assert_stderr_contains(&other);
    out.assert_stderr_lacks("PWNED");
    assert_no_control_bytes(&out.stderr);
}

/// `/proc`'s resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An endpoint that floods pings and never reads: the client answers
/// them all, and its pongs, which cannot be sent, do not pile up (a pong
/// that does not fit the bounded unsent buffer waits in place of the
/// next). It keeps the tunnel, with a flat resident set, while the
/// simulator sends far more pings than would fill that buffer; when the
/// endpoint drops the connection, the tunnel ends, said.
#[async_test]
async fn a_ping_flood_does_not_grow_memory() {
    // Pings whose pongs (131 bytes each on the wire), queued, would
    // overflow the unsent buffer 40 times over: some 40 MiB, well past what
    // the sockets hold (with the bound removed, RSS grew 34 MB).
    let pongs = 40 * eic_ssh::tunnel::MAX_WS_WRITE_BUFFER as u64 / 131;
    let f = Fixture::new().await;
    f.sim.flood_pings(true);
    let mut child = f
        .command()
        .args(["proxy", "--no-push", INSTANCE, "22"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // ssh's side stays open throughout.
    let stdin = child.stdin.take();
    let pid = child.id().unwrap();
    let alive = |child: &mut tokio::process::Child, when: &str| {
        assert!(child.try_wait().unwrap().is_none(), "ended {when}");
    };
    eventually("the flood under way", WAIT, || f.sim.pings_sent() >= 1024).await;
    alive(&mut child, "as the flood began");
    let settled = rss_kib(pid);
    let mut peak = settled;
    eventually("the flood passing its mark", WAIT, || {
        peak = peak.max(rss_kib(pid));
        f.sim.pings_sent() >= pongs
    })
    .await;
    alive(&mut child, "under the flood");
    // Unbounded, pongs piled up at several MB a second (a debug build went
    // from about 35 to 73 MB in 8 s; a release build past a gigabyte).
    // Bounded, the resident set stays flat once the flood is under way.
    assert!(
        peak < settled + 12 * 1024,
        "RSS grew from {settled} to {peak} KiB under {} pings",
        f.sim.pings_sent()
    );
    // The endpoint gives up and drops the connection: the tunnel ends.
    f.sim.flood_pings(false);
    let out = exited(child, "the proxy ending with the connection").await;
    drop(stdin);
    out.assert_status(255)
        .assert_stderr_contains("the tunnel broke: ");
}

/// An endpoint that announces a frame past the 16 MiB cap: the tunnel
/// ends at its header (255, said), instead of waiting to buffer what it
/// promises.
#[async_test]
async fn a_frame_over_16_mib_ends_the_tunnel() {
    let f = Fixture::new().await;
    f.sim.announce_huge_frames((16 << 20) + 1);
    let mut child = f
        .command()
        .args(["proxy", "--no-push", INSTANCE, "22"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // ssh's side stays open: only the frame can end it.
    let stdin = child.stdin.take();
    let out = exited(child, "the proxy ending at the frame").await;
    drop(stdin);
    out.assert_status(255)
        .assert_stdout("")
        .assert_stderr_contains("Message too long: 16777217 > 16777216");
}

#[async_test]
async fn route_flags_are_never_cached_and_always_win() {
    let f = Fixture::new().await;
    let cache = f.home.path().join(".cache/eic-ssh/routes.json");
    // A partial route on the command line is not written to the cache.
    let out = f
        .echo_ok(&[], &["--eice-id", "eice-0123456789abcdef0"])
        .await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
    assert!(
        !cache.exists(),
        "{}",
        std::fs::read_to_string(&cache).unwrap_or_default()
    );
    // A run without flags caches the route...
    let out = f.run(&[&f.target(), "--", "echo", "ok"], b"").await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
    assert!(cache.exists());
    // ...and a flag still wins over it: 10.0.0.99 is no instance, so this fails.
    let out = f
        .run(
            &[&f.target(), "--private-ip", "10.0.0.99", "--", "echo", "ok"],
            b"",
        )
        .await;
    assert_ne!(
        out.stdout_str(),
        "ok\n",
        "the cached IP was used: {}",
        out.stderr
    );
    out.assert_status(255);
}

#[async_test]
async fn a_foreign_eice_dns_is_a_usage_error_before_any_call() {
    let f = Fixture::new().await;
    for args in [
        vec![
            f.target(),
            "--eice-id".into(),
            "eice-0123456789abcdef0".into(),
            "--eice-dns".into(),
            "localhost:8443".into(),
            "--".into(),
            "true".into(),
        ],
        vec![
            "proxy".into(),
            "--eice-id".into(),
            "eice-0123456789abcdef0".into(),
            "--eice-dns".into(),
            "localhost:8443".into(),
            "--no-push".into(),
            INSTANCE.into(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = f.run(&args, b"").await;
        out.assert_status(2);
        assert!(
            out.stderr
                .contains("--eice-dns \"localhost:8443\" is not the DNS name"),
            "{}",
            out.stderr
        );
        assert!(f.sim.request_log().is_empty(), "{:?}", f.sim.request_log());
    }
    // The service's name for another endpoint, or another region, is no better.
    let other = eic_sim::endpoint_dns_name("eice-0aaaaaaaaaaaaaaa1", "us-east-1", false);
    let out = f
        .run(
            &[
                &f.target(),
                "--eice-id",
                "eice-0123456789abcdef0",
                "--eice-dns",
                &other,
                "--",
                "true",
            ],
            b"",
        )
        .await;
    out.assert_status(2);
    let out = f
        .run(
            &[
                &f.target(),
                "--eice-id",
                "eice-0123456789abcdef0",
                "--eice-dns",
                &f.sim.eice_dns(),
                "--region",
                "eu-west-1",
                "--",
                "true",
            ],
            b"",
        )
        .await;
    out.assert_status(2);
}

#[async_test]
async fn a_foreign_name_from_the_api_or_the_cache_is_never_dialed() {
    let f = Fixture::new().await;
    f.sim
        .set_world(|w| w.endpoints[0].dns_name_override = Some("localhost".into()));
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    out.assert_status(255);
    out.assert_stderr_contains("refusing to open a tunnel to \"localhost\" for EC2 Instance Connect Endpoint eice-0123456789abcdef0");
    assert!(!f.sim.request_log().iter().any(|e| e.op == "OpenTunnel"));

    // A cache entry pointing elsewhere is ignored and looked up afresh.
    f.sim.set_world(|w| w.endpoints[0].dns_name_override = None);
    let out = f.run(&[&f.target(), "--", "echo", "ok"], b"").await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
    let cache = f.home.path().join(".cache/eic-ssh/routes.json");
    let text = std::fs::read_to_string(&cache).unwrap();
    std::fs::write(&cache, text.replace(&f.sim.eice_dns(), "localhost")).unwrap();
    let before = f.sim.request_log().len();
    let out = f.run(&[&f.target(), "--", "echo", "ok"], b"").await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
    let ops: Vec<String> = f
        .sim
        .request_log()
        .split_off(before)
        .into_iter()
        .map(|e| e.op)
        .collect();
    assert!(
        ops.contains(&"DescribeInstanceConnectEndpoints".to_owned()),
        "{ops:?}"
    );
}

#[async_test]
async fn rust_log_trace_shows_no_secret_at_any_verbosity() {
    let f = Fixture::new().await;
    let creds = f.sim.session_credentials();
    let token = creds.session_token.clone().unwrap();
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    for flag in ["-q", "-v", "-vv", "-vvv", "-v"] {
        let mut cmd = f.command();
        cmd.env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
            .env("AWS_SESSION_TOKEN", &token)
            .env("RUST_LOG", "trace");
        let out = f
            .run_cmd(cmd, &[flag, &f.target(), "--", "echo", "ok"], b"")
            .await;
        assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
        // Trace really is on: the canonical request and the upgrade are logged.
        assert!(out.stderr.contains("openTunnel"), "{flag}: nothing traced");
        for secret in [
            creds.access_key_id.as_str(),
            creds.secret_access_key.as_str(),
            token.as_str(),
            encoded.as_str(),
            &token[..20],
        ] {
            assert!(!out.stderr.contains(secret), "{flag}: {secret} in stderr");
        }
        for (i, _) in out.stderr.match_indices("Signature=") {
            let value: String = out.stderr[i + 10..]
                .chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .collect();
            assert!(value.len() < 16, "{flag}: a signature in stderr: {value}");
        }
    }
}

/// A process holding the ephemeral key leaves no core dump: its core limit
/// is 0 (and it is made undumpable), set before the key exists.
#[async_test]
async fn a_process_holding_the_key_dumps_no_core() {
    use tokio::io::AsyncBufReadExt;
    let f = Fixture::new().await;
    // Started with core dumps on (up to the hard limit), as a developer's
    // shell may have them.
    let mut child = f
        .program("/bin/sh")
        .args([
            "-c",
            "ulimit -c \"$(ulimit -H -c)\" && exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_eic-ssh"),
            "-N",
            "-L",
            "0:127.0.0.1:9",
            &f.target(),
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let up = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains("forwarding") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(up, Ok(true), "the session never came up");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id().unwrap())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let soft = core.split_whitespace().nth(4).unwrap();
    assert_eq!(soft, "0", "{core}");
    let _ = child.kill().await;
}

/// Bad input found in review: each is refused before any call, naming the
/// value and what to do, with exit 2.
#[async_test]
async fn bad_regions_and_a_command_without_dashes_are_usage_errors() {
    let f = Fixture::new().await;
    let out = f
        .run(&["--region", "Us East", INSTANCE, "--", "true"], b"")
        .await;
    out.assert_status(2);
    out.assert_stderr_contains("\"Us East\" is not an AWS region name");
    // From the environment: named, and where it came from.
    let mut cmd = f.command();
    cmd.env("AWS_REGION", "Us East");
    let out = f.run_cmd(cmd, &["ls"], b"").await;
    out.assert_status(2);
    out.assert_stderr_contains("AWS_REGION or the profile");
    // `exec TARGET uptime` without `--`: uptime was read as a target.
    let out = f.run(&["exec", INSTANCE, "uptime"], b"").await;
    out.assert_status(2);
    assert!(
        out.stderr
            .contains("'uptime' was read as a target; put the command after --"),
        "{}",
        out.stderr
    );
    assert!(
        !f.sim
            .request_log()
            .iter()
            .any(|e| e.op.starts_with("Describe")),
        "a call was made"
    );
}
