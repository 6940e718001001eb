//! What breaks in the middle: every fault the simulator can inject, and
//! what eic-ssh does about it — the exit status, the message, and where
//! bytes flowed, their counts and checksums.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eic_sim::{Cut, Direction, Stall};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::openssh::listener;
use crate::support::*;

/// `exec -- cat` with 1 MB of random stdin: the output's checksum must be
/// the input's, however many attempts it took.
async fn cat_round_trip(f: &Fixture, extra: &[&str]) -> Output {
    let data = random_bytes(1 << 20);
    let target = f.target();
    let mut args = extra.to_vec();
    args.extend([target.as_str(), "--", "cat"]);
    let out = f.run(&args, &data).await;
    out.assert_success();
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
        out.assert_status(255)
            .assert_stderr_contains(format!("cut mid-stream after {AFTER} bytes received"));
        assert!((out.stdout.len() as u64) < AFTER, "{close:?}: {out}");
        if let Some((1011, reason)) = &close {
            out.assert_stderr_contains(reason);
        }
        // Bytes had flowed: nothing was retried.
        assert_eq!(f.attempts("OpenTunnel"), vec![101], "{close:?}");
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
        let mut child = proxy_child(&f, &[]);
        // Stdin stays open: only the cut may end the proxy.
        let stdin = child.stdin.take().unwrap();
        let out = exited(child, "the proxy ending").await;
        drop(stdin);
        out.assert_status(255)
            .assert_stdout("SSH-2.0-Op")
            .assert_stderr_contains("cut mid-stream after 10 bytes received and 0 bytes sent");
    }
}

/// `eic-ssh FLAGS proxy --no-push` to the demo instance, with piped
/// stdin, stdout and stderr.
fn proxy_child(f: &Fixture, flags: &[&str]) -> tokio::process::Child {
    f.command()
        .args(flags)
        .args(["proxy", "--no-push", INSTANCE, "22"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `eic-ssh FLAGS proxy` with piped stdin, stdout and stderr, once sshd's
/// banner has come through it: the child, its stdin, the rest of its
/// stdout, and the banner.
async fn proxy_past_the_banner(
    f: &Fixture,
    flags: &[&str],
) -> (
    tokio::process::Child,
    tokio::process::ChildStdin,
    BufReader<tokio::process::ChildStdout>,
    String,
) {
    let mut child = proxy_child(f, flags);
    let stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).await.unwrap();
    assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
    (child, stdin, stdout, banner)
}

/// Cut on the way in, after 1,000 of the client's bytes reached the
/// instance: with an error close, and with no close frame at all.
#[async_test]
async fn proxy_cut_towards_the_instance_exits_255() {
    for close in [Some((1011, "Internal error".to_owned())), None] {
        let f = Fixture::new().await;
        f.sim.cut_next_tunnel(Cut {
            direction: Direction::ToInstance,
            after: 1000,
            close: close.clone(),
        });
        // sshd's banner first, so that bytes flowed both ways before the cut.
        let (child, mut stdin, _stdout, banner) = proxy_past_the_banner(&f, &[]).await;
        // A banner, then junk sshd reads as a packet; it waits for more.
        let mut data = b"SSH-2.0-test\r\n".to_vec();
        data.extend(std::iter::repeat_n(0u8, 4000));
        stdin.write_all(&data).await.unwrap();
        let out = exited(child, "the proxy ending").await;
        drop(stdin);
        out.assert_status(255).assert_stderr_contains(format!(
            "cut mid-stream after {} bytes received",
            banner.len()
        ));
        match close {
            Some(_) => out.assert_stderr_contains("code 1011"),
            None => out.assert_stderr_lacks("code "),
        };
    }
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
            f.attempts("OpenTunnel"),
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
    f.run(&[&f.target(), "--", "echo", "never"], b"")
        .await
        .assert_status(255)
        .assert_stdout("")
        .assert_stderr_contains("refused the tunnel: HTTP 503 ServiceUnavailable: try later");
    assert_eq!(f.attempts("OpenTunnel"), vec![503, 503, 503]);
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
    assert_eq!(f.attempts("DescribeInstances"), vec![503, 503, 200]);
    assert_eq!(f.attempts("SendSSHPublicKey"), vec![400, 200]);
    assert_eq!(
        f.attempts("DescribeInstanceConnectEndpoints"),
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
    f.run(&["--no-cache", &f.target(), "--", "echo", "never"], b"")
        .await
        .assert_status(255)
        .assert_stdout("")
        .assert_stderr_contains("RequestLimitExceeded: Request limit exceeded.");
    assert_eq!(f.attempts("DescribeInstances"), vec![503, 503, 503]);
}

// --- Stalls: bounded by --connect-timeout, naming the step -------------------

/// Runs `eic-ssh FLAGS --connect-timeout 2 TARGET -- true` and checks that
/// it gave up, naming `step`, long before anything but the timeout could
/// have ended it (a stalled step waits for ever).
async fn times_out_naming(f: &Fixture, flags: &[&str], step: &str) {
    let started = Instant::now();
    let target = f.target();
    let mut args = flags.to_vec();
    args.extend(["--connect-timeout", "2", &target, "--", "true"]);
    f.run(&args, b"")
        .await
        .assert_status(255)
        .assert_stderr_contains(format!("timed out after 2 s waiting for {step}"))
        .assert_stderr_contains("--connect-timeout");
    let took = started.elapsed();
    assert!(took < WAIT, "{step}: took {took:?}");
}

#[async_test]
async fn a_silent_endpoint_times_out_at_the_step_that_stalled() {
    let f = Fixture::new().await;
    f.sim.stall_connections(Stall::AfterAccept, 1);
    // The endpoint's name (the service's shape), not the address dialed.
    let at = format!("{}:443", f.sim.eice_dns());
    times_out_naming(&f, &[], &format!("the TLS handshake with {at}")).await;

    f.sim.stall_connections(Stall::AfterTls, 1);
    times_out_naming(&f, &[], &format!("the websocket upgrade at {at}")).await;

    // One header line a second, forever: the upgrade as a whole is bounded.
    f.sim.stall_connections(Stall::SlowHeaders, 1);
    times_out_naming(&f, &[], &format!("the websocket upgrade at {at}")).await;

    // An upgrade request read and never answered.
    f.sim.stall_next("OpenTunnel", 1);
    times_out_naming(&f, &[], &format!("the websocket upgrade at {at}")).await;
    assert_eq!(f.sim.stalled_connections(), 3);

    // The tunnel opens, then nothing moves: the SSH handshake is bounded.
    f.sim.freeze_tunnels(true);
    times_out_naming(&f, &[], &format!("the SSH handshake with {INSTANCE}")).await;
}

/// An SSH server that completes the handshake and never answers an
/// authentication request: authentication is bounded by
/// `--connect-timeout` too, and named.
#[async_test]
async fn authentication_that_never_answers_times_out() {
    let f = Fixture::new().await;
    let addr = never_authenticates().await;
    f.set_instance(INSTANCE, |i| i.ssh = Some(addr));
    // Its host key is nobody's: not checked against a console here.
    times_out_naming(
        &f,
        &["--verify-host-key", "none"],
        &format!("SSH authentication at {INSTANCE}"),
    )
    .await;
}

/// A russh server on loopback whose every authentication request waits
/// for ever; its address.
async fn never_authenticates() -> std::net::SocketAddr {
    use russh::server::{Auth, Handler};
    struct Stalls;
    impl Handler for Stalls {
        type Error = russh::Error;
        async fn auth_none(&mut self, _: &str) -> Result<Auth, Self::Error> {
            std::future::pending().await
        }
        // An offered key is acceptable (russh's default); its signature
        // is never answered.
        async fn auth_publickey(
            &mut self,
            _: &str,
            _: russh::server::VerifiedPublicKey<'_>,
        ) -> Result<Auth, Self::Error> {
            std::future::pending().await
        }
    }
    let key =
        russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
    let config = Arc::new(russh::server::Config {
        keys: vec![key],
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(session) = russh::server::run_stream(config, tcp, Stalls).await {
                    let _ = session.await;
                }
            });
        }
    });
    addr
}

/// The TCP connect itself never completes (the endpoint's address drops
/// the SYN): bounded by --connect-timeout, named, exit 255.
#[async_test]
async fn a_tcp_connect_that_never_completes_times_out() {
    let f = Fixture::new().await;
    let hole = Blackhole::on("127.0.0.1".parse().unwrap());
    let started = Instant::now();
    f.run_env(
        &[(
            eic_sim::CONNECT_TO_VAR,
            &format!(":443:127.0.0.1:{}", hole.addr.port()),
        )],
        &["--connect-timeout", "2", &f.target(), "--", "true"],
    )
    .await
    .assert_timed_out(
        2,
        &format!("the TCP connection to {}:443", f.sim.eice_dns()),
    );
    assert!(started.elapsed() < WAIT);
    // Nothing reached the endpoint.
    assert_eq!(f.attempts("OpenTunnel"), [0u16; 0]);
}

#[async_test]
async fn an_api_answer_that_never_comes_is_retried_then_times_out() {
    let f = Fixture::new().await;
    // Once: the second attempt answers, and the command runs.
    f.sim.stall_next("DescribeInstances", 1);
    let target = f.target();
    let args = |word| {
        [
            "--no-cache",
            "--connect-timeout",
            "1",
            &target,
            "--",
            "echo",
            word,
        ]
    };
    f.run(&args("ok"), b"")
        .await
        .assert_success()
        .assert_stdout("ok\n");
    assert_eq!(f.attempts("DescribeInstances"), vec![0, 200]);

    // Every time: three attempts, then a failure naming the action.
    f.sim.stall_next("DescribeInstances", 3);
    let started = Instant::now();
    f.run(&args("never"), b"")
        .await
        .assert_status(255)
        .assert_stdout("")
        .assert_stderr_contains("DescribeInstances")
        .assert_stderr_contains("timeout");
    assert_eq!(f.attempts("DescribeInstances"), vec![0, 200, 0, 0, 0]);
    assert!(started.elapsed() < WAIT);
}

// --- Keys, clocks and certificates ------------------------------------------

#[async_test]
async fn a_key_that_expired_before_authentication_is_pushed_again() {
    let f = Fixture::new().await;
    f.sim.expire_next_keys(1);
    cat_round_trip(&f, &[])
        .await
        .assert_stderr_contains("pushing it again");
    assert_eq!(f.attempts("SendSSHPublicKey"), vec![200, 200]);

    // Twice expired: one retry only, then the refusal, with the hint. An
    // explicit key type: the default would then fall back to a fresh
    // ECDSA key (see keytypes.rs), a third push, which would be in time.
    f.sim.expire_next_keys(2);
    f.run(
        &["--key-type", "ed25519", &f.target(), "--", "echo", "never"],
        b"",
    )
    .await
    .assert_status(255)
    .assert_stdout("")
    .assert_stderr_contains(format!(
        "the instance refused SSH authentication for user {}",
        f.user()
    ))
    .assert_stderr_contains("valid for 60 seconds");
    assert_eq!(f.attempts("SendSSHPublicKey"), vec![200; 4]);
}

/// `cp` pushes an expired key again too, once, and copies.
#[async_test]
async fn cp_pushes_an_expired_key_again() {
    let f = Fixture::new().await;
    let data = random_bytes(300_000);
    let src = f.home.tmp().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let dest = f.home.tmp().join("dest.bin");
    f.sim.expire_next_keys(1);
    f.run(
        &[
            "cp",
            src.to_str().unwrap(),
            &format!("{}:{}", f.target(), dest.display()),
        ],
        b"",
    )
    .await
    .assert_success()
    .assert_stderr_contains("pushing it again");
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(f.attempts("SendSSHPublicKey"), vec![200, 200]);
}

/// `exec` over two instances whose first keys both expire before use:
/// each instance pushes its key again, once, and runs the command.
#[async_test]
async fn exec_pushes_each_instances_expired_key_again() {
    let (world, ids) = crate::fleet::fleet_world(2);
    let f = Fixture::with_world(world).await;
    let _servers = crate::fleet::builtin_servers(&f, &ids).await;
    f.sim.expire_next_keys(2);
    let out = f
        .run(
            &[
                "exec",
                "--verify-host-key",
                "none",
                &format!("{}@tag:Role=fleet", f.user()),
                "--",
                "echo",
                "ran",
            ],
            b"",
        )
        .await;
    out.assert_success()
        .assert_stderr_contains(": 2 succeeded, 0 failed, 0 unreachable");
    for (i, id) in ids.iter().enumerate() {
        out.assert_stdout_contains(format!("node-{i} ({id}): ran\n"));
        let pushes = f
            .sim
            .request_log()
            .into_iter()
            .filter(|e| e.op == "SendSSHPublicKey" && e.detail.contains(id.as_str()))
            .count();
        assert_eq!(pushes, 2, "{id}: {:?}", f.ops());
    }
}

/// In `exec`, a tunnel cut under one instance's command (no close frame)
/// is that instance's failure, with the byte counts; the other instance's
/// run is not affected.
#[async_test]
async fn exec_reports_a_cut_tunnel_as_that_instances_failure() {
    const AFTER: u64 = 300_000;
    let (world, ids) = crate::fleet::fleet_world(2);
    let f = Fixture::with_world(world).await;
    let _servers = crate::fleet::builtin_servers(&f, &ids).await;
    f.sim.cut_next_tunnel(Cut {
        direction: Direction::ToClient,
        after: AFTER,
        close: None,
    });
    let out = f
        .run(
            &[
                "exec",
                "--json",
                "--verify-host-key",
                "none",
                &format!("{}@tag:Role=fleet", f.user()),
                "--",
                "head -c 1000000 /dev/zero | tr '\\0' x",
            ],
            b"",
        )
        .await;
    out.assert_status(1);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    let (cut, whole): (Vec<_>, Vec<_>) = rows.iter().partition(|r| !r["error"].is_null());
    assert_eq!((cut.len(), whole.len()), (1, 1), "{rows:#?}");
    let error = cut[0]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "the tunnel was cut mid-stream after {AFTER} bytes received and "
        )) && error.contains(" bytes sent"),
        "{error}"
    );
    assert_eq!(cut[0]["exit_status"], serde_json::Value::Null);
    assert_eq!(whole[0]["exit_status"], 0);
    assert_eq!(whole[0]["stdout"].as_str().unwrap().len(), 1_000_000);
    // Bytes had flowed: the cut one was not retried.
    assert_eq!(f.attempts("OpenTunnel"), vec![101, 101]);
}

/// The service's clock off from ours (as if ours were off the other way):
/// 200 s breaks only the presigned URL (good for 60 s), 400 s every
/// signature too. Each refusal's Date gives AWS's time; the URL or the API
/// call is signed again with it, once, said once at -v, and the bytes
/// arrive whole.
#[async_test]
async fn a_skewed_clock_is_corrected_from_the_services_date() {
    let cases: [(i64, &str, &[u16], &[u16]); 3] = [
        (200, "3 min behind", &[403, 101], &[200]),
        (400, "7 min behind", &[101], &[400, 200]),
        (-400, "7 min ahead of", &[101], &[400, 200]),
    ];
    for (offset, words, tunnels, describes) in cases {
        let f = Fixture::new().await;
        f.sim.set_clock_offset(offset);
        let out = cat_round_trip(&f, &["-v"]).await;
        let said = format!("this machine's clock is {words} AWS's");
        assert_eq!(
            out.stderr.matches(&said).count(),
            1,
            "{offset}: {}",
            out.stderr
        );
        assert_eq!(f.attempts("OpenTunnel"), tunnels, "{offset}");
        assert_eq!(f.attempts("DescribeInstances"), describes, "{offset}");
    }
    // Without -v it goes unsaid.
    let f = Fixture::new().await;
    f.sim.set_clock_offset(-400);
    let out = cat_round_trip(&f, &[]).await;
    out.assert_stderr_lacks("clock");
}

#[async_test]
async fn a_tls_failure_names_the_host_and_aws_ca_bundle() {
    let f = Fixture::new().await;
    let dns = f.sim.eice_dns();
    f.run_without(&["AWS_CA_BUNDLE"], &strs(&f.tunnel_only()))
        .await
        .assert_status(255)
        .assert_stdout("")
        .assert_stderr_contains(format!(
            "the TLS handshake with the endpoint {dns}:443 failed"
        ))
        .assert_stderr_contains("AWS_CA_BUNDLE");
}

// --- The listener ------------------------------------------------------------

/// Reads sshd's banner through the listener.
async fn banner_through(port: u16) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut buf = [0u8; 8];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .expect("a banner in time")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

#[async_test]
async fn hung_handshakes_do_not_hold_the_listeners_slots() {
    let f = Fixture::new().await;
    f.sim.stall_next("OpenTunnel", 20);
    let (mut run, port) = listener(f.command(), &["--connect-timeout", "8"]).await;
    let mut hung = Vec::new();
    for _ in 0..20 {
        hung.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    // Wait until the endpoint holds all 20 handshakes.
    eventually("the endpoint holding 20 handshakes", WAIT, || {
        f.attempts("OpenTunnel").len() >= 20
    })
    .await;
    // The 21st real connection is served while they hang.
    assert_eq!(banner_through(port).await, "SSH-2.0-");
    // And the hung ones end, each with the step named.
    for _ in 0..20 {
        run.line("timed out after 8 s waiting for the websocket upgrade at")
            .await;
    }
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
        let (mut run, port) = listener(cmd, &["--max-connections", "100"]).await;
        let mut held = Vec::new();
        for _ in 0..60 {
            if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                held.push(s);
            }
        }
        // Each of the 60 is accepted or fails to be: wait until the
        // listener said so for all of them, or until it ran out.
        let failed = tokio::time::timeout(WAIT, run.line("failed: Too many open files")).await;
        accept_failed += usize::from(failed.is_ok());
        drop(held);
        // Once descriptors are free again, it serves as before.
        let mut served = false;
        let deadline = Instant::now() + WAIT;
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
        assert!(
            run.child.try_wait().unwrap().is_none(),
            "the listener exited"
        );
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
        f.home.aws_config(),
        format!("[default]\ncredential_process = {}\n", script.display()),
    )
    .unwrap();
    let mut cmd = f.command();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let (_run, port) = listener(cmd, &[]).await;
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
}

/// ssh goes away while an upload is stalled (the endpoint stopped reading):
/// the proxy notices its reader gone and exits 0, as a proxy whose ssh
/// ended does, instead of waiting on the stalled tunnel for as long as TCP
/// retries.
#[async_test]
async fn proxy_exits_when_ssh_goes_away_during_a_stalled_upload() {
    let f = Fixture::new().await;
    let (mut child, mut stdin, stdout, _) = proxy_past_the_banner(&f, &["-v"]).await;
    let mut stderr = child.stderr.take().unwrap();
    f.sim.freeze_tunnels(true);
    // Far more than the pipe, the socket buffers and the websocket's hold:
    // the upload stalls on the frozen tunnel.
    let written = Arc::new(AtomicU64::new(0));
    let progress = written.clone();
    let writer = tokio::spawn(async move {
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..4096 {
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
            progress.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
    });
    // Stalled: nothing more goes in for a second, with 256 MiB to go.
    let mut last = u64::MAX;
    let mut still = 0;
    eventually("the upload stalling", WAIT, || {
        let now = written.load(Ordering::SeqCst);
        still = if now == last { still + 1 } else { 0 };
        last = now;
        still >= 50
    })
    .await;
    assert!(
        !writer.is_finished(),
        "the upload went through a frozen tunnel"
    );
    // ssh exits: both pipes close.
    writer.abort();
    let _ = writer.await;
    drop(stdout);
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the proxy exits once its reader is gone")
        .unwrap();
    f.sim.freeze_tunnels(false);
    let mut log = String::new();
    stderr.read_to_string(&mut log).await.unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("the reader of stdout went away while the tunnel was stalled: ending"),
        "{log}"
    );
}
