//! What breaks in the middle: every fault the simulator can inject, and
//! what eic-ssh does about it — the exit status, the message, and where
//! bytes flowed, their counts and checksums.

use std::process::Stdio;
use std::time::{Duration, Instant};

use eic_sim::{Cut, Direction, Stall};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::support::*;

/// Attempts of `op` the simulator saw, with their statuses.
fn attempts(f: &Fixture, op: &str) -> Vec<u16> {
    f.sim
        .request_log()
        .iter()
        .filter(|e| e.op == op)
        .map(|e| e.status)
        .collect()
}

fn random(len: usize) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

/// `exec -- cat` with 1 MB of random stdin: the output's checksum must be
/// the input's, however many attempts it took.
async fn cat_round_trip(f: &Fixture, extra: &[&str]) -> Output {
    let data = random(1 << 20);
    let target = f.target();
    let mut args = extra.to_vec();
    args.extend([target.as_str(), "--", "cat"]);
    let out = f.run(&args, &data).await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(
        Sha256::digest(&out.stdout),
        Sha256::digest(&data),
        "lost or duplicated bytes: {} of {}",
        out.stdout.len(),
        data.len()
    );
    out
}

// --- A tunnel cut mid-stream -------------------------------------------------

/// A remote command printing 1 MB, through a tunnel cut after 300,000 bytes
/// towards the client, however it is cut: never exit 0, always say how much
/// got through.
#[async_test]
async fn exec_through_a_cut_tunnel_exits_255_with_the_byte_count() {
    const AFTER: u64 = 300_000;
    for close in [
        None,
        Some((1011, "Internal error".to_owned())),
        Some((1000, String::new())),
    ] {
        let f = Fixture::new().await;
        f.sim.cut_next_tunnel(Cut {
            direction: Direction::ToClient,
            after: AFTER,
            close: close.clone(),
        });
        let out = f
            .run(&[&f.target(), "--", "head -c 1000000 /dev/zero"], b"")
            .await;
        assert_eq!(out.status, Some(255), "{close:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("cut mid-stream after {AFTER} bytes received")),
            "{close:?}: {}",
            out.stderr
        );
        assert!(
            (out.stdout.len() as u64) < AFTER,
            "{close:?}: {} bytes of output",
            out.stdout.len()
        );
        if let Some((1011, reason)) = &close {
            assert!(out.stderr.contains(reason.as_str()), "{}", out.stderr);
        }
        // Bytes had flowed: nothing was retried.
        assert_eq!(attempts(&f, "OpenTunnel"), vec![101], "{close:?}");
    }
}

/// `proxy` joined to the tunnel: sshd's banner is cut after 10 bytes; the
/// proxy passed on exactly those 10 and says so.
#[async_test]
async fn proxy_through_a_cut_tunnel_exits_255_with_the_byte_count() {
    for close in [None, Some((1011, "Internal error".to_owned()))] {
        let f = Fixture::new().await;
        f.sim.cut_next_tunnel(Cut {
            direction: Direction::ToClient,
            after: 10,
            close: close.clone(),
        });
        let mut child = f
            .command()
            .args(["proxy", "--no-push", INSTANCE, "22"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Stdin stays open: only the cut may end the proxy.
        let stdin = child.stdin.take().unwrap();
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("the proxy ended")
            .unwrap();
        drop(stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{close:?}: {stderr}");
        assert_eq!(out.stdout, b"SSH-2.0-Op", "{close:?}");
        assert!(
            stderr.contains("cut mid-stream after 10 bytes received and 0 bytes sent"),
            "{close:?}: {stderr}"
        );
    }
}

/// `eic-ssh proxy` with piped stdin and stdout, once sshd's banner has come
/// through it: the child, its stdin, the rest of its stdout, and the banner.
async fn proxy_past_the_banner(
    f: &Fixture,
    stderr: Stdio,
) -> (
    tokio::process::Child,
    tokio::process::ChildStdin,
    BufReader<tokio::process::ChildStdout>,
    String,
) {
    let mut child = f
        .command()
        .args(["proxy", "--no-push", INSTANCE, "22"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).await.unwrap();
    assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
    (child, stdin, stdout, banner)
}

/// Cut on the way in: the endpoint closes with an error after 1,000 of the
/// client's bytes reached the instance.
#[async_test]
async fn proxy_cut_towards_the_instance_exits_255() {
    let f = Fixture::new().await;
    f.sim.cut_next_tunnel(Cut {
        direction: Direction::ToInstance,
        after: 1000,
        close: Some((1011, "Internal error".into())),
    });
    // sshd's banner first, so that bytes flowed both ways before the cut.
    let (child, mut stdin, _stdout, banner) = proxy_past_the_banner(&f, Stdio::piped()).await;
    // A banner, then junk sshd reads as a packet; it waits for more.
    let mut data = b"SSH-2.0-test\r\n".to_vec();
    data.extend(std::iter::repeat_n(0u8, 4000));
    stdin.write_all(&data).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the proxy ended")
        .unwrap();
    drop(stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cut mid-stream after {} bytes received",
            banner.len()
        )) && stderr.contains("code 1011"),
        "{stderr}"
    );
}

// --- Transient refusals: retried before any byte flows ----------------------

#[async_test]
async fn handshake_refusals_are_retried_and_nothing_is_lost() {
    for status in [429, 500, 503] {
        let f = Fixture::new().await;
        f.sim
            .fail_times("OpenTunnel", 2, status, "ServiceUnavailable", "try later");
        cat_round_trip(&f, &[]).await;
        assert_eq!(
            attempts(&f, "OpenTunnel"),
            vec![status, status, 101],
            "{status}"
        );
    }
}

#[async_test]
async fn a_handshake_refused_three_times_fails_after_three_attempts() {
    let f = Fixture::new().await;
    f.sim
        .fail_times("OpenTunnel", 3, 503, "ServiceUnavailable", "try later");
    let out = f.run(&[&f.target(), "--", "echo", "never"], b"").await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .contains("refused the tunnel: HTTP 503 ServiceUnavailable: try later"),
        "{}",
        out.stderr
    );
    assert_eq!(attempts(&f, "OpenTunnel"), vec![503, 503, 503]);
}

#[async_test]
async fn api_throttling_and_server_errors_are_retried() {
    let f = Fixture::new().await;
    f.sim.fail_times(
        "DescribeInstances",
        2,
        503,
        "RequestLimitExceeded",
        "slow down",
    );
    f.sim.fail_times(
        "SendSSHPublicKey",
        1,
        400,
        "ThrottlingException",
        "slow down",
    );
    f.sim.fail_times(
        "DescribeInstanceConnectEndpoints",
        2,
        500,
        "InternalError",
        "oops",
    );
    cat_round_trip(&f, &["--no-cache"]).await;
    assert_eq!(attempts(&f, "DescribeInstances"), vec![503, 503, 200]);
    assert_eq!(attempts(&f, "SendSSHPublicKey"), vec![400, 200]);
    assert_eq!(
        attempts(&f, "DescribeInstanceConnectEndpoints"),
        vec![500, 500, 200]
    );
}

#[async_test]
async fn api_throttling_three_times_fails_with_the_services_words() {
    let f = Fixture::new().await;
    f.sim.fail_times(
        "DescribeInstances",
        3,
        503,
        "RequestLimitExceeded",
        "Request limit exceeded.",
    );
    let out = f
        .run(&["--no-cache", &f.target(), "--", "echo", "never"], b"")
        .await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("RequestLimitExceeded"),
        "{}",
        out.stderr
    );
    assert_eq!(attempts(&f, "DescribeInstances"), vec![503, 503, 503]);
}

// --- Stalls: bounded by --connect-timeout, naming the step -------------------

/// Runs `exec -- true` with `--connect-timeout 2` and checks that it gave up
/// within bounds, naming `step`.
async fn times_out_naming(f: &Fixture, step: &str) {
    let started = Instant::now();
    let out = f
        .run(&["--connect-timeout", "2", &f.target(), "--", "true"], b"")
        .await;
    let took = started.elapsed();
    assert_eq!(out.status, Some(255), "{step}: {}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("timed out after 2 s waiting for {step}")),
        "{step}: {}",
        out.stderr
    );
    assert!(out.stderr.contains("--connect-timeout"), "{}", out.stderr);
    assert!(took < Duration::from_secs(20), "{step}: took {took:?}");
}

#[async_test]
async fn a_silent_endpoint_times_out_at_the_step_that_stalled() {
    let f = Fixture::new().await;
    f.sim.stall_connections(Stall::AfterAccept, 1);
    // The endpoint's name (the service's shape), not the address dialed.
    let at = format!("{}:443", f.sim.eice_dns());
    times_out_naming(&f, &format!("the TLS handshake with {at}")).await;

    f.sim.stall_connections(Stall::AfterTls, 1);
    times_out_naming(&f, &format!("the websocket upgrade at {at}")).await;

    // One header line a second, forever: the upgrade as a whole is bounded.
    f.sim.stall_connections(Stall::SlowHeaders, 1);
    times_out_naming(&f, &format!("the websocket upgrade at {at}")).await;

    // An upgrade request read and never answered.
    f.sim.stall_next("OpenTunnel", 1);
    times_out_naming(&f, &format!("the websocket upgrade at {at}")).await;
    assert_eq!(f.sim.stalled_connections(), 3);

    // The tunnel opens, then nothing moves: the SSH handshake is bounded.
    f.sim.freeze_tunnels(true);
    times_out_naming(&f, &format!("the SSH handshake with {INSTANCE}")).await;
}

/// The TCP connect itself never completes (the endpoint's address drops
/// the SYN): bounded by --connect-timeout, named, exit 255.
#[async_test]
async fn a_tcp_connect_that_never_completes_times_out() {
    let f = Fixture::new().await;
    let hole = Blackhole::on("127.0.0.1".parse().unwrap());
    let mut cmd = f.command();
    cmd.env(
        "EIC_SSH_CONNECT_TO",
        format!(":443:127.0.0.1:{}", hole.addr.port()),
    );
    let started = Instant::now();
    let out = f
        .run_cmd(
            cmd,
            &["--connect-timeout", "2", &f.target(), "--", "true"],
            b"",
        )
        .await;
    let at = format!("{}:443", f.sim.eice_dns());
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "timed out after 2 s waiting for the TCP connection to {at}"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    assert!(started.elapsed() < Duration::from_secs(20));
    // Nothing reached the endpoint.
    assert!(
        !f.sim.request_log().iter().any(|e| e.op == "OpenTunnel"),
        "{:?}",
        f.sim.request_log()
    );
}

#[async_test]
async fn an_api_answer_that_never_comes_is_retried_then_times_out() {
    let f = Fixture::new().await;
    // Once: the second attempt answers, and the command runs.
    f.sim.stall_next("DescribeInstances", 1);
    let out = f
        .run(
            &[
                "--no-cache",
                "--connect-timeout",
                "1",
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
    assert_eq!(attempts(&f, "DescribeInstances"), vec![0, 200]);

    // Every time: three attempts, then a failure naming the action.
    f.sim.stall_next("DescribeInstances", 3);
    let started = Instant::now();
    let out = f
        .run(
            &[
                "--no-cache",
                "--connect-timeout",
                "1",
                &f.target(),
                "--",
                "echo",
                "never",
            ],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("DescribeInstances"), "{}", out.stderr);
    assert!(out.stderr.contains("timeout"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
}

// --- Keys, clocks and certificates ------------------------------------------

#[async_test]
async fn a_key_that_expired_before_authentication_is_pushed_again() {
    let f = Fixture::new().await;
    f.sim.expire_next_keys(1);
    let out = cat_round_trip(&f, &[]).await;
    assert!(out.stderr.contains("pushing it again"), "{}", out.stderr);
    assert_eq!(attempts(&f, "SendSSHPublicKey"), vec![200, 200]);

    // Twice expired: one retry only, then the refusal. An explicit key
    // type: the default would then fall back to a fresh ECDSA key (see
    // keytypes.rs), a third push, which would be in time.
    f.sim.expire_next_keys(2);
    let out = f
        .run(
            &["--key-type", "ed25519", &f.target(), "--", "echo", "never"],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(
        out.stderr.contains("refused SSH authentication"),
        "{}",
        out.stderr
    );
}

#[async_test]
async fn a_skewed_clock_is_corrected_from_the_endpoints_date() {
    for offset in [300, -400] {
        let f = Fixture::new().await;
        // The service's clock is off by `offset`: as if ours were off by -offset.
        f.sim.set_clock_offset(offset);
        let out = cat_round_trip(&f, &[]).await;
        assert!(out.stderr.contains("clock skew"), "{}", out.stderr);
        // The Date header has whole seconds: the skew is learned to within one.
        assert!(
            (offset - 1..=offset + 1).any(|s| out.stderr.contains(&format!("clock is {s} s off"))),
            "{}",
            out.stderr
        );
        assert_eq!(attempts(&f, "OpenTunnel"), vec![403, 101], "{offset}");
    }
}

#[async_test]
async fn a_tls_failure_names_the_host_and_aws_ca_bundle() {
    let f = Fixture::new().await;
    let mut cmd = f.command();
    cmd.env_remove("AWS_CA_BUNDLE");
    let dns = f.sim.eice_dns();
    let out = f
        .run_cmd(
            cmd,
            &[
                "proxy",
                "--no-push",
                "--private-ip",
                "10.0.1.10",
                "--eice-id",
                "eice-0123456789abcdef0",
                "--eice-dns",
                &dns,
                INSTANCE,
            ],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "the TLS handshake with the endpoint {dns}:443 failed"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("AWS_CA_BUNDLE"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

// --- The listener ------------------------------------------------------------

async fn listener(
    f: &Fixture,
    cmd: tokio::process::Command,
    extra: &[&str],
) -> (
    tokio::process::Child,
    u16,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
) {
    let mut cmd = cmd;
    cmd.args(["tunnel", INSTANCE, "--local-port", "0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .expect("the listener printed its port")
        .unwrap()
        .unwrap_or_default();
    let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let _ = f;
    (child, port.trim().parse().expect("a port number"), stderr)
}

/// Reads sshd's banner through the listener.
async fn banner_through(port: u16) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut buf = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut buf))
        .await
        .expect("a banner within 20 s")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

async fn wait_for_line(
    log: &mut tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
    what: &str,
    within: Duration,
) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let line = tokio::time::timeout_at(deadline, log.next_line())
            .await
            .unwrap_or_else(|_| panic!("no line with {what:?} among:\n{}", seen.join("\n")))
            .unwrap()
            .unwrap_or_else(|| panic!("the listener ended; it said:\n{}", seen.join("\n")));
        let found = line.contains(what);
        seen.push(line);
        if found {
            return seen;
        }
    }
}

#[async_test]
async fn hung_handshakes_do_not_hold_the_listeners_slots() {
    let f = Fixture::new().await;
    f.sim.stall_next("OpenTunnel", 20);
    let (mut child, port, mut log) = listener(&f, f.command(), &["--connect-timeout", "8"]).await;
    let mut hung = Vec::new();
    for _ in 0..20 {
        hung.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    // Wait until the endpoint holds all 20 handshakes.
    let deadline = Instant::now() + Duration::from_secs(20);
    while attempts(&f, "OpenTunnel").len() < 20 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            attempts(&f, "OpenTunnel")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The 21st real connection is served while they hang.
    assert_eq!(banner_through(port).await, "SSH-2.0-");
    // And the hung ones end, each with the step named.
    let mut timed_out = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while timed_out < 20 {
        let line = tokio::time::timeout_at(deadline, log.next_line())
            .await
            .expect("20 timeouts within 30 s")
            .unwrap()
            .unwrap();
        if line.contains("timed out after 8 s waiting for the websocket upgrade at") {
            timed_out += 1;
        }
    }
    let _ = child.kill().await;
}

/// Out of file descriptors, accept fails. Each served connection takes two
/// (the local socket and the tunnel's), and one whose tunnel cannot open
/// gives its one back, so whether accept itself meets the limit depends on
/// its parity: two limits, one of each parity, make sure it does.
#[async_test]
async fn the_listener_survives_running_out_of_file_descriptors() {
    let f = Fixture::new().await;
    let mut accept_failed = 0;
    for limit in [40, 41] {
        let mut cmd = f.program("sh");
        cmd.args([
            "-c",
            &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_eic-ssh"),
        ]);
        let (mut child, port, mut log) = listener(&f, cmd, &["--max-connections", "100"]).await;
        let mut held = Vec::new();
        for _ in 0..60 {
            if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                held.push(s);
            }
        }
        let failed = tokio::time::timeout(
            Duration::from_secs(10),
            wait_for_line(
                &mut log,
                "failed: Too many open files",
                Duration::from_secs(10),
            ),
        )
        .await;
        accept_failed += usize::from(failed.is_ok());
        drop(held);
        // Once descriptors are free again, it serves as before.
        let mut served = false;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !served {
            assert!(Instant::now() < deadline, "never served again");
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let mut buf = [0u8; 8];
            served = matches!(
                tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await,
                Ok(Ok(_)) if &buf == b"SSH-2.0-"
            );
        }
        assert!(child.try_wait().unwrap().is_none(), "the listener exited");
        let _ = child.kill().await;
    }
    assert!(accept_failed > 0, "accept never ran out of descriptors");
}

/// Credentials that expire while the listener runs (here: always within
/// the refresh window) are fetched afresh for each new connection.
#[async_test]
async fn the_listener_refreshes_expiring_credentials_per_connection() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new().await;
    let creds = f.sim.credentials();
    let calls = f.home.path().join("credential-calls");
    let script = f.home.path().join("credentials.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho call >> '{}'\nexp=$(date -u -d '+120 seconds' +%Y-%m-%dT%H:%M:%SZ)\n\
             printf '{{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"%s\", \"Expiration\": \"%s\"}}' '{}' '{}' \"$exp\"\n",
            calls.display(),
            creds.access_key_id,
            creds.secret_access_key
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        f.home.path().join("aws-config"),
        format!("[default]\ncredential_process = {}\n", script.display()),
    )
    .unwrap();
    let mut cmd = f.command();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let (mut child, port, _log) = listener(&f, cmd, &[]).await;
    let count = || {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let mut before = count();
    assert!(before >= 1, "the credentials were never fetched");
    for _ in 0..3 {
        assert_eq!(banner_through(port).await, "SSH-2.0-");
        let now = count();
        assert!(
            now > before,
            "no fresh credentials for a connection: {now} calls"
        );
        before = now;
    }
    let _ = child.kill().await;
}

/// ssh goes away while an upload is stalled (the endpoint stopped reading):
/// the proxy notices its reader gone and exits, instead of waiting on the
/// stalled tunnel for as long as TCP retries.
#[async_test]
async fn proxy_exits_when_ssh_goes_away_during_a_stalled_upload() {
    let f = Fixture::new().await;
    let (mut child, mut stdin, stdout, _) = proxy_past_the_banner(&f, Stdio::null()).await;
    f.sim.freeze_tunnels(true);
    // Far more than the socket buffers and the websocket's hold: the
    // proxy's upload stalls on the frozen tunnel.
    let writer = tokio::spawn(async move {
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..256 {
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // ssh exits: both pipes close.
    writer.abort();
    let _ = writer.await;
    drop(stdout);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the proxy exits once its reader is gone")
        .unwrap();
    f.sim.freeze_tunnels(false);
    assert!(status.code().is_some(), "{status:?}");
}
