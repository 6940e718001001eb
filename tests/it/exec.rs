//! `eic-ssh [user@]<instance> -- <command>`: the end-to-end flow and every
//! user-visible failure.

use rustls::pki_types::pem::PemObject;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_command_and_records_the_host_key() {
    let f = Fixture::new().await;
    let out = f
        .run(&[&f.target(), "--", "echo", "hello", "world"], b"")
        .await;
    assert_eq!(
        out.stdout_str(),
        "hello world\n",
        "stderr: {}\nsshd: {}",
        out.stderr,
        f.sshd.log()
    );
    assert_eq!(out.status, Some(0));
    assert!(
        out.stderr.contains(&format!(
            "permanently added '{INSTANCE}' (ssh-ed25519 SHA256:"
        )),
        "{}",
        out.stderr
    );
    let known = std::fs::read_to_string(f.known_hosts()).unwrap();
    let host_key = f.sshd.host_key_pubs[0]
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(known.contains(&format!("{INSTANCE} {host_key}")), "{known}");

    // The second time the key is known: no notice.
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("permanently added"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quoting_is_the_remote_shells() {
    let f = Fixture::new().await;
    let out = f
        .run(&[&f.target(), "--", "printf", "'%s|'", "a b", "c"], b"")
        .await;
    // Words are joined with spaces and re-split by the remote shell, as ssh does.
    assert_eq!(out.stdout_str(), "a|b|c|", "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_exit_status_and_signal_become_ours() {
    let f = Fixture::new().await;
    let out = f.run(&[&f.target(), "--", "exit 7"], b"").await;
    assert_eq!(out.status, Some(7), "{}", out.stderr);
    let out = f.run(&[&f.target(), "--", "kill -TERM $$"], b"").await;
    assert_eq!(out.status, Some(128 + 15), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_of_stdin_come_back_byte_identical() {
    let f = Fixture::new().await;
    let data: Vec<u8> = (0..10 * 1024 * 1024)
        .map(|_| rand::random::<u8>())
        .collect();
    let out = f.run(&[&f.target(), "--", "cat"], &data).await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.len(), data.len());
    assert_eq!(Sha256::digest(&out.stdout), Sha256::digest(&data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_stays_separate_from_stdout() {
    let f = Fixture::new().await;
    let out = f
        .run(&[&f.target(), "--", "echo out; echo err >&2"], b"")
        .await;
    assert_eq!(out.stdout_str(), "out\n");
    assert!(out.stderr.contains("err\n"), "{}", out.stderr);
    assert!(!out.stdout_str().contains("err"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_eof_reaches_the_remote_side() {
    let f = Fixture::new().await;
    let out = f
        .run(&[&f.target(), "--", "wc -c; echo done"], b"12345")
        .await;
    assert_eq!(out.stdout_str(), "5\ndone\n", "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_instance_id_fails_before_any_network_call() {
    let f = Fixture::new().await;
    // Shaped like an ID (i- and hex digits) but too short; `i-nothex` would
    // be a Name tag, a valid target.
    let out = f.run(&["i-0123abc", "--", "true"], b"").await;
    assert_eq!(out.status, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("'i-0123abc' is not an EC2 instance ID"),
        "{}",
        out.stderr
    );
    let out = f.run(&["-p", "23", INSTANCE], b"").await;
    assert_eq!(out.status, Some(2));
    assert!(
        out.stderr.contains("port '23' is not allowed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("22 (SSH) or 3389 (RDP)"),
        "{}",
        out.stderr
    );
    assert!(
        f.sim.request_log().is_empty(),
        "{:?}",
        f.sim
            .request_log()
            .iter()
            .map(|e| &e.op)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_failures_say_what_to_do() {
    let f = Fixture::new().await;
    let out = f.run(&["i-0aaaaaaaaaaaaaaaa", "--", "true"], b"").await;
    assert_eq!(out.status, Some(255));
    assert!(
        out.stderr
            .contains("instance i-0aaaaaaaaaaaaaaaa was not found in region us-east-1"),
        "{}",
        out.stderr
    );

    let out = f.run(&[STOPPED, "--", "true"], b"").await;
    assert_eq!(out.status, Some(255));
    assert!(
        out.stderr
            .contains(&format!("instance {STOPPED} is stopped, not running")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("aws ec2 start-instances"),
        "{}",
        out.stderr
    );

    let out = f.run(&[NO_ENDPOINT, "--", "true"], b"").await;
    assert_eq!(out.status, Some(255));
    assert!(
        out.stderr
            .contains("no EC2 Instance Connect Endpoint is available in vpc-"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("aws ec2 create-instance-connect-endpoint --subnet-id subnet-"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_push_failures_carry_the_service_code_and_advice() {
    let f = Fixture::new().await;
    for (code, advice) in [
        ("AuthException", "ec2-instance-connect:SendSSHPublicKey"),
        ("ThrottlingException", "wait a few seconds"),
        ("EC2InstanceStateInvalidException", "must be running"),
    ] {
        // The SDK retries throttling (3 attempts in standard mode): fail them all.
        let attempts = if code == "ThrottlingException" { 3 } else { 1 };
        for _ in 0..attempts {
            f.sim
                .fail_next("SendSSHPublicKey", 400, code, "simulated failure");
        }
        let out = f.run(&[&f.target(), "--", "true"], b"").await;
        assert_eq!(out.status, Some(255), "{code}");
        assert!(
            out.stderr.contains(&format!(
                "pushing the SSH key to {INSTANCE} failed: {code}: simulated failure"
            )),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(advice), "{code}: {}", out.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_tunnel_shows_the_status_and_the_services_message() {
    let f = Fixture::new().await;
    f.sim.fail_next(
        "OpenTunnel",
        403,
        "AccessDenied",
        "User is not authorized to perform ec2-instance-connect:OpenTunnel",
    );
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(255));
    assert!(
        out.stderr.contains("the endpoint refused the tunnel: HTTP 403 AccessDenied: User is not authorized to perform ec2-instance-connect:OpenTunnel"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_signature_is_rejected_by_the_endpoint() {
    let f = Fixture::new().await;
    let creds = f.sim.credentials();
    let creds = aws_credential_types::Credentials::new(
        creds.access_key_id,
        creds.secret_access_key,
        None,
        None,
        "test",
    );
    let req = eic_ssh::tunnel::presign::TunnelRequest {
        endpoint_id: "eice-0123456789abcdef0".into(),
        host: f.sim.eice_dns(),
        private_ip: "10.0.1.10".parse().unwrap(),
        remote_port: 22,
        max_tunnel_duration: None,
    };
    let url =
        eic_ssh::tunnel::presign::presign(&req, &creds, "us-east-1", std::time::SystemTime::now())
            .unwrap();
    let tls = tls_with_sim_ca(&f);
    let dial = vec![("127.0.0.1".to_owned(), f.sim.eice_addr().port())];
    // The untouched URL works...
    assert!(
        eic_ssh::tunnel::Tunnel::open_via(
            &url,
            tls.clone(),
            dial.clone(),
            eic_ssh::net::DEFAULT_CONNECT_TIMEOUT,
        )
        .await
        .is_ok()
    );
    // ...and flipping one hex digit of the signature does not.
    let last = url.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &url[..url.len() - 1]);
    match eic_ssh::tunnel::Tunnel::open_via(
        &tampered,
        tls,
        dial,
        eic_ssh::net::DEFAULT_CONNECT_TIMEOUT,
    )
    .await
    {
        Err(eic_ssh::Error::TunnelRejected { status: 403, .. }) => {}
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a tampered URL was accepted"),
    }
}

fn tls_with_sim_ca(f: &Fixture) -> std::sync::Arc<rustls::ClientConfig> {
    let pem = std::fs::read(f.sim.ca_pem_path()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_key_is_refused_by_the_api() {
    let f = Fixture::new().await;
    let mut cmd = f.command();
    cmd.env("AWS_SECRET_ACCESS_KEY", "not-the-right-secret");
    let out = f.run_cmd(cmd, &[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(255));
    assert!(
        out.stderr.contains("SignatureDoesNotMatch")
            || out.stderr.contains("InvalidSignatureException"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("not-the-right-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnel_closing_is_reported_with_its_reason() {
    let f = Fixture::new().await;
    let out = f
        .run(
            &[&f.target(), "--max-tunnel-duration", "1", "--", "sleep 5"],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(255));
    // The close came at the duration asked for, and the message says so.
    assert!(
        out.stderr
            .contains("the endpoint closed the tunnel at its maximum duration of 1 s (code 1001)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("maximum tunnel duration"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_expired_before_authentication_is_pushed_again_once() {
    let f = Fixture::new().await;
    // The key lives 1 s (the service's 60 s, scaled down); the tunnel
    // handshake takes 2.5 s, so the first push has expired by the time SSH
    // authenticates. It is pushed again, once, and authentication retried.
    f.sim.set_key_lifetime(Duration::from_secs(1));
    f.sim.set_handshake_latency(Duration::from_millis(2500));
    // The first push has expired by authentication: the same ed25519 key is
    // pushed again (not a fallback to ECDSA, which is for a refused type).
    let out = f.run(&[&f.target(), "--", "echo", "in"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_str(), "in\n");
    assert!(out.stderr.contains("pushing it again"), "{}", out.stderr);
    let pushes: Vec<_> = f
        .sim
        .request_log()
        .into_iter()
        .filter(|e| e.op == "SendSSHPublicKey")
        .collect();
    assert_eq!(pushes.len(), 2);

    // Refused again after the second push: reported, with the hint. An
    // explicit key type: the default would fall back to a fresh ECDSA key on
    // the refusal (see keytypes.rs), and that one would be in time.
    f.sim.expire_next_keys(2);
    let out = f
        .run(&["--key-type", "ed25519", &f.target(), "--", "true"], b"")
        .await;
    assert_eq!(out.status, Some(255));
    assert!(
        out.stderr.contains(&format!(
            "the instance refused SSH authentication for user {}",
            f.user()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("valid for 60 seconds"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_are_explained() {
    let f = Fixture::new().await;
    let mut cmd = f.command();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let out = f.run_cmd(cmd, &[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(255));
    assert!(
        out.stderr
            .contains("eic-ssh: unable to locate credentials\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: configure credentials"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_against_the_ca_bundle() {
    let f = Fixture::new().await;
    let mut cmd = f.command();
    cmd.env_remove("AWS_CA_BUNDLE");
    let out = f.run_cmd(cmd, &[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(255));
    assert!(out.stdout.is_empty());
    assert!(
        f.sim.request_log().is_empty(),
        "an unverified TLS peer was sent a request"
    );

    // The profile's ca_bundle works as AWS_CA_BUNDLE does.
    std::fs::write(
        f.home.path().join("aws-config"),
        format!("[default]\nca_bundle = {}\n", f.sim.ca_pem_path().display()),
    )
    .unwrap();
    let mut cmd = f.command();
    cmd.env_remove("AWS_CA_BUNDLE");
    let out = f
        .run_cmd(cmd, &[&f.target(), "--", "echo", "ok"], b"")
        .await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_credentials_sign_with_their_session_token() {
    let f = Fixture::new().await;
    let creds = f.sim.session_credentials();
    let mut cmd = f.command();
    cmd.env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
        .env("AWS_SESSION_TOKEN", creds.session_token.clone().unwrap());
    let out = f
        .run_cmd(cmd, &[&f.target(), "--", "echo", "ok"], b"")
        .await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_is_refused() {
    let mut f = Fixture::new().await;
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    f.sshd.replace_host_key().await.unwrap();
    let out = f
        .run(&[&f.target(), "--", "echo", "should not run"], b"")
        .await;
    assert_eq!(out.status, Some(255));
    assert!(out.stdout.is_empty());
    let file = f.known_hosts();
    assert!(
        out.stderr.contains(&format!(
            "the host key of {INSTANCE} has changed: {}:1 has ssh-ed25519 SHA256:",
            file.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("ssh-keygen -R {INSTANCE}")),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_all_three_no_ec2_call_is_made() {
    let f = Fixture::new().await;
    let out = f
        .run(
            &[
                &f.target(),
                "--private-ip",
                "10.0.1.10",
                "--eice-id",
                "eice-0123456789abcdef0",
                "--eice-dns",
                &f.sim.eice_dns(),
                "--",
                "echo",
                "ok",
            ],
            b"",
        )
        .await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
    let ops: Vec<String> = f.sim.request_log().into_iter().map(|e| e.op).collect();
    assert!(!ops.iter().any(|op| op.starts_with("Describe")), "{ops:?}");
    assert!(
        ops.contains(&"SendSSHPublicKey".to_owned()) && ops.contains(&"OpenTunnel".to_owned()),
        "{ops:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_push_runs_concurrently_with_the_lookups() {
    let f = Fixture::new().await;
    f.sim.set_api_latency(Duration::from_millis(200));
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let log = f.sim.request_log();
    let find = |op: &str| {
        log.iter()
            .find(|e| e.op == op)
            .unwrap_or_else(|| panic!("no {op} in the log"))
    };
    let push = find("SendSSHPublicKey");
    let describe = find("DescribeInstances");
    // The push started before the instance lookup answered.
    assert!(
        push.started < describe.finished,
        "push started after DescribeInstances finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_private_key_is_left_on_disk_and_no_secret_is_logged() {
    let f = Fixture::new().await;
    let creds = f.sim.session_credentials();
    let token = creds.session_token.clone().unwrap();
    let mut cmd = f.command();
    cmd.env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
        .env("AWS_SESSION_TOKEN", &token);
    let out = f
        .run_cmd(cmd, &["-vvv", &f.target(), "--", "echo", "ok"], b"")
        .await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
    assert!(
        out.stderr.contains("openTunnel"),
        "-vvv should show the redacted URL: {}",
        out.stderr
    );
    for secret in [
        creds.secret_access_key.as_str(),
        token.as_str(),
        creds.access_key_id.as_str(),
    ] {
        assert!(
            !out.stderr.contains(secret),
            "a secret leaked into -vvv output"
        );
    }
    for param in [
        "X-Amz-Signature=",
        "X-Amz-Credential=",
        "X-Amz-Security-Token=",
    ] {
        for (i, _) in out.stderr.match_indices(param) {
            assert!(
                out.stderr[i + param.len()..].starts_with("REDACTED"),
                "{param} not redacted"
            );
        }
    }
    assert!(
        !out.stderr.contains("Signature=") || !has_hex_signature(&out.stderr),
        "a request signature leaked"
    );
    assert!(!out.stderr.contains("PRIVATE KEY"));
    for dir in [f.home.path(), f.home.tmp()] {
        for file in files_under(dir) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("PRIVATE KEY"),
                "{} holds a private key",
                file.display()
            );
        }
    }
}

fn has_hex_signature(s: &str) -> bool {
    s.match_indices("Signature=").any(|(i, m)| {
        let rest = &s[i + m.len()..];
        rest.len() >= 64 && rest[..64].bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_paged_and_the_instance_subnet_preferred() {
    use eic_sim::{Endpoint, World};
    let mut world = World::demo();
    let template = world.endpoints[0].clone();
    // The region's endpoints are read 50 to a page: 52 of them (other
    // subnets, other VPCs) take two pages, and the one in the instance's
    // own subnet comes last.
    world.endpoints = (0..51u32)
        .map(|i| Endpoint {
            id: format!("eice-0aaaaaaaaaaaa{i:04x}"),
            subnet_id: format!("subnet-other{i}"),
            vpc_id: if i % 2 == 0 {
                "vpc-1".into()
            } else {
                format!("vpc-x{i}")
            },
            ..template.clone()
        })
        .collect();
    world.endpoints.push(Endpoint {
        id: "eice-0aaaaaaaaaaaaaaa3".into(),
        ..template.clone()
    });
    let f = Fixture::with_world(world).await;
    let out = f.run(&[&f.target(), "--", "echo", "ok"], b"").await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
    let log = f.sim.request_log();
    let pages = log
        .iter()
        .filter(|e| e.op == "DescribeInstanceConnectEndpoints")
        .count();
    assert_eq!(pages, 2, "every page was read");
    let tunnel = log.iter().find(|e| e.op == "OpenTunnel").unwrap();
    assert!(
        tunnel.detail.contains("eice-0aaaaaaaaaaaaaaa3"),
        "{}",
        tunnel.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iam_cap_on_the_duration_is_explained_with_the_flag() {
    let f = Fixture::new().await;
    f.sim.set_world(|w| w.max_tunnel_duration_cap = Some(900));
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 403"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("ask for what it allows with --max-tunnel-duration SECONDS"),
        "{}",
        out.stderr
    );
    let out = f
        .run(
            &[
                "--max-tunnel-duration",
                "900",
                &f.target(),
                "--",
                "echo",
                "ok",
            ],
            b"",
        )
        .await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
}

/// A server that refuses a PTY (`PermitTTY no`) still runs the command, as
/// OpenSSH does: the refusal is said, not fatal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pty_is_said_and_the_command_still_runs() {
    let f = Fixture::with_sshd_config(eic_sim::World::demo(), "PermitTTY no\n").await;
    let out = f
        .run(&["-t", &f.target(), "--", "echo", "no-tty"], b"")
        .await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_str(), "no-tty\n", "{}", out.stderr);
    assert!(
        out.stderr.contains("PTY allocation request failed"),
        "{}",
        out.stderr
    );
}
