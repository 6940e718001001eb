//! `eic-ssh [user@]<instance> -- <command>`: the end-to-end flow and every
//! user-visible failure.

use rustls::pki_types::pem::PemObject;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::*;

#[async_test]
async fn runs_a_command_and_records_the_host_key() {
    let f = Fixture::new().await;
    let out = f
        .run(&[&f.target(), "--", "echo", "hello", "world"], b"")
        .await;
    out.assert_success()
        .assert_stdout("hello world\n")
        .assert_stderr_contains(format!(
            "permanently added '{INSTANCE}' (ssh-ed25519 SHA256:"
        ));
    let known = std::fs::read_to_string(f.known_hosts()).unwrap();
    let host_key = f.sshd.host_key_pubs[0]
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(known.contains(&format!("{INSTANCE} {host_key}")), "{known}");

    // The second time the key is known: no notice.
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_success()
        .assert_stderr_lacks("permanently added");
}

#[async_test]
async fn quoting_is_the_remote_shells() {
    let f = Fixture::new().await;
    let out = f
        .run(&[&f.target(), "--", "printf", "'%s|'", "a b", "c"], b"")
        .await;
    // Words are joined with spaces and re-split by the remote shell, as ssh does.
    out.assert_stdout("a|b|c|");
}

#[async_test]
async fn remote_exit_status_and_signal_become_ours() {
    let f = Fixture::new().await;
    f.run(&[&f.target(), "--", "exit 7"], b"")
        .await
        .assert_status(7);
    f.run(&[&f.target(), "--", "kill -TERM $$"], b"")
        .await
        .assert_status(128 + 15);
}

#[async_test]
async fn ten_megabytes_of_stdin_come_back_byte_identical() {
    let f = Fixture::new().await;
    let data = random_bytes(10 * 1024 * 1024);
    let out = f.run(&[&f.target(), "--", "cat"], &data).await;
    out.assert_success();
    assert_eq!(out.stdout.len(), data.len());
    assert_eq!(Sha256::digest(&out.stdout), Sha256::digest(&data));
}

#[async_test]
async fn stderr_stays_separate_from_stdout() {
    let f = Fixture::new().await;
    f.run(&[&f.target(), "--", "echo out; echo err >&2"], b"")
        .await
        .assert_stdout("out\n")
        .assert_stderr_contains("err\n");
}

#[async_test]
async fn stdin_eof_reaches_the_remote_side() {
    let f = Fixture::new().await;
    let args = [f.target(), "--".into(), "wc -c; echo done".into()];
    let out = f.run(&strs(&args), b"12345").await;
    out.assert_stdout("5\ndone\n");
}

#[async_test]
async fn a_malformed_instance_id_fails_before_any_network_call() {
    let f = Fixture::new().await;
    // Shaped like an ID (i- and hex digits) but too short; `i-nothex` would
    // be a Name tag, a valid target.
    f.run(&["i-0123abc", "--", "true"], b"")
        .await
        .assert_status(2)
        .assert_stderr_contains("'i-0123abc' is not an EC2 instance ID");
    f.run(&["-p", "23", INSTANCE], b"")
        .await
        .assert_status(2)
        .assert_stderr_contains("port '23' is not allowed")
        .assert_stderr_contains("22 (SSH) or 3389 (RDP)");
    f.assert_no_calls();
}

#[async_test]
async fn lookup_failures_say_what_to_do() {
    let f = Fixture::new().await;
    for (target, said, hint) in [
        (
            "i-0aaaaaaaaaaaaaaaa",
            "instance i-0aaaaaaaaaaaaaaaa was not found in region us-east-1".to_owned(),
            "--region",
        ),
        (
            STOPPED,
            format!("instance {STOPPED} is stopped, not running"),
            "aws ec2 start-instances",
        ),
        (
            NO_ENDPOINT,
            "no EC2 Instance Connect Endpoint is available in vpc-".to_owned(),
            "aws ec2 create-instance-connect-endpoint --subnet-id subnet-",
        ),
    ] {
        f.run(&[target, "--", "true"], b"")
            .await
            .assert_status(255)
            .assert_stderr_contains(said)
            .assert_stderr_contains(hint);
    }
}

#[async_test]
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
        f.run(&[&f.target(), "--", "true"], b"")
            .await
            .assert_status(255)
            .assert_stderr_contains(format!(
                "pushing the SSH key to {INSTANCE} failed: {code}: simulated failure"
            ))
            .assert_stderr_contains(advice);
    }
}

#[async_test]
async fn a_rejected_tunnel_shows_the_status_and_the_services_message() {
    let f = Fixture::new().await;
    f.sim.fail_next(
        "OpenTunnel",
        403,
        "AccessDenied",
        "User is not authorized to perform ec2-instance-connect:OpenTunnel",
    );
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_status(255)
        .assert_stderr_contains("the endpoint refused the tunnel: HTTP 403 AccessDenied: User is not authorized to perform ec2-instance-connect:OpenTunnel")
        .assert_stderr_contains("hint: check that your IAM policy allows ec2-instance-connect:OpenTunnel");
}

#[async_test]
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

#[async_test]
async fn a_wrong_secret_key_is_refused_by_the_api() {
    let f = Fixture::new().await;
    let out = f
        .run_env(
            &[("AWS_SECRET_ACCESS_KEY", "not-the-right-secret")],
            &[&f.target(), "--", "true"],
        )
        .await;
    out.assert_status(255)
        .assert_stderr_lacks("not-the-right-secret");
    assert!(
        out.stderr.contains("SignatureDoesNotMatch")
            || out.stderr.contains("InvalidSignatureException"),
        "{out}"
    );
}

#[async_test]
async fn the_tunnel_closing_is_reported_with_its_reason() {
    let f = Fixture::new().await;
    let out = f
        .run(
            &[&f.target(), "--max-tunnel-duration", "1", "--", "sleep 5"],
            b"",
        )
        .await;
    // The close came at the duration asked for, and the message says so.
    out.assert_status(255)
        .assert_stderr_contains(
            "the endpoint closed the tunnel at its maximum duration of 1 s (code 1001)",
        )
        .assert_stderr_contains("maximum tunnel duration");
}

#[async_test]
async fn missing_credentials_are_explained() {
    let f = Fixture::new().await;
    f.run_without(
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        &[&f.target(), "--", "true"],
    )
    .await
    .assert_status(255)
    .assert_stderr_contains("eic-ssh: unable to locate credentials\n")
    .assert_stderr_contains("hint: configure credentials");
}

#[async_test]
async fn tls_is_verified_against_the_ca_bundle() {
    let f = Fixture::new().await;
    // Without the simulator's CA, its certificate is refused: the API calls
    // fail in the TLS handshake, and nothing reaches the simulator. (The
    // two lookups run side by side: either may be the one reported.)
    let out = f
        .run_without(&["AWS_CA_BUNDLE"], &[&f.target(), "--", "true"])
        .await;
    out.assert_status(255)
        .assert_stdout("")
        .assert_stderr_contains("eic-ssh: Describe")
        .assert_stderr_contains("TLS handshake failed: invalid peer certificate");
    f.assert_no_calls();

    // The profile's ca_bundle works as AWS_CA_BUNDLE does.
    std::fs::write(
        f.home.aws_config(),
        format!("[default]\nca_bundle = {}\n", f.sim.ca_pem_path().display()),
    )
    .unwrap();
    f.run_without(&["AWS_CA_BUNDLE"], &[&f.target(), "--", "echo", "ok"])
        .await
        .assert_stdout("ok\n");
}

#[async_test]
async fn temporary_credentials_sign_with_their_session_token() {
    let f = Fixture::new().await;
    let creds = f.sim.session_credentials();
    let token = creds.session_token.clone().unwrap();
    f.run_env(
        &[
            ("AWS_ACCESS_KEY_ID", &creds.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key),
            ("AWS_SESSION_TOKEN", &token),
        ],
        &[&f.target(), "--", "echo", "ok"],
    )
    .await
    .assert_stdout("ok\n");
    // The tunnel's presigned URL carried the token too: the simulator
    // checked it there.
    assert!(f.attempts("OpenTunnel").contains(&101), "{:?}", f.ops());
}

#[async_test]
async fn a_changed_host_key_is_refused() {
    let mut f = Fixture::new().await;
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_success();
    f.sshd.replace_host_key().await.unwrap();
    f.run(&[&f.target(), "--", "echo", "should not run"], b"")
        .await
        .assert_status(255)
        .assert_stdout("")
        .assert_stderr_contains(format!(
            "the host key of {INSTANCE} has changed: {}:1 has ssh-ed25519 SHA256:",
            f.known_hosts().display()
        ))
        .assert_stderr_contains(format!("ssh-keygen -R {INSTANCE}"));
}

#[async_test]
async fn given_all_three_no_ec2_call_is_made() {
    let f = Fixture::new().await;
    let mut args = vec![f.target()];
    args.extend(f.route_flags());
    args.extend(["--", "echo", "ok"].map(str::to_owned));
    f.run(&strs(&args), b"").await.assert_stdout("ok\n");
    let ops = f.ops();
    assert!(!ops.iter().any(|op| op.starts_with("Describe")), "{ops:?}");
    assert!(
        ops.contains(&"SendSSHPublicKey".to_owned()) && ops.contains(&"OpenTunnel".to_owned()),
        "{ops:?}"
    );
}

#[async_test]
async fn the_key_push_runs_concurrently_with_the_lookups() {
    let f = Fixture::new().await;
    f.sim.set_api_latency(Duration::from_millis(200));
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_success();
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

#[async_test]
async fn no_private_key_is_left_on_disk_and_no_secret_is_logged() {
    let f = Fixture::new().await;
    let creds = f.sim.session_credentials();
    let token = creds.session_token.clone().unwrap();
    let out = f
        .run_env(
            &[
                ("AWS_ACCESS_KEY_ID", &creds.access_key_id),
                ("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key),
                ("AWS_SESSION_TOKEN", &token),
            ],
            &["-vvv", &f.target(), "--", "echo", "ok"],
        )
        .await;
    // -vvv shows the redacted URL.
    out.assert_stdout("ok\n")
        .assert_stderr_contains("openTunnel")
        .assert_stderr_lacks("PRIVATE KEY");
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
        !has_hex_signature(&out.stderr),
        "a request signature leaked"
    );
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

#[async_test]
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
    f.run(&[&f.target(), "--", "echo", "ok"], b"")
        .await
        .assert_stdout("ok\n");
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

#[async_test]
async fn an_iam_cap_on_the_duration_is_explained_with_the_flag() {
    let f = Fixture::new().await;
    f.sim.set_world(|w| w.max_tunnel_duration_cap = Some(900));
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_status(255)
        .assert_stderr_contains("HTTP 403")
        .assert_stderr_contains("ask for what it allows with --max-tunnel-duration SECONDS");
    f.run(
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
    .await
    .assert_stdout("ok\n");
}

/// A server that refuses a PTY (`PermitTTY no`) still runs the command, as
/// OpenSSH does: the refusal is said, not fatal.
#[async_test]
async fn a_refused_pty_is_said_and_the_command_still_runs() {
    let f = Fixture::with_sshd_config(eic_sim::World::demo(), "PermitTTY no\n").await;
    f.run(&["-t", &f.target(), "--", "echo", "no-tty"], b"")
        .await
        .assert_success()
        .assert_stdout("no-tty\n")
        .assert_stderr_contains("PTY allocation request failed");
}
