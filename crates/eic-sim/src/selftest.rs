//! Tests of the running simulator over its real sockets. Requests are signed
//! with `aws-sigv4` (the SDK's signer), which also cross-checks the
//! independent verifier in [`super::sigv4`].

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rustls::pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::{Credentials, Simulator, World};

const INSTANCE: &str = "i-0123456789abcdef0";

fn client_tls(sim: &Simulator) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(sim.ca_pem_path()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn signing_params<'a>(
    identity: &'a aws_smithy_runtime_api::client::identity::Identity,
    service: &'a str,
    settings: SigningSettings,
) -> aws_sigv4::http_request::SigningParams<'a> {
    v4::SigningParams::builder()
        .identity(identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into()
}

fn identity(c: &Credentials) -> aws_smithy_runtime_api::client::identity::Identity {
    aws_credential_types::Credentials::new(
        &c.access_key_id,
        &c.secret_access_key,
        c.session_token.clone(),
        None,
        "sim-test",
    )
    .into()
}

/// Sends one signed POST to the API listener; returns status and body.
async fn call(
    sim: &Simulator,
    creds: &Credentials,
    service: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (status, _, body) = call_with_head(sim, creds, service, headers, body).await;
    (status, body)
}

/// [`call`], with the answer's head (status line and headers) too.
async fn call_with_head(
    sim: &Simulator,
    creds: &Credentials,
    service: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let url = format!("{}/", sim.api_url());
    let id = identity(creds);
    let params = signing_params(&id, service, SigningSettings::default());
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .unwrap()
        .into_parts();
    let host = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let mut req = format!(
        "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    for (k, v) in instructions.headers() {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    raw_api_request(sim, req.as_bytes()).await
}

/// Writes `request` to the API listener as it is (a write the server cuts
/// short is not an error) and splits the answer into status, head and body.
async fn raw_api_request(sim: &Simulator, request: &[u8]) -> (u16, String, String) {
    let host = sim
        .api_url()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let tcp = TcpStream::connect(host.replace("localhost", "127.0.0.1"))
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_tls(sim));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let _ = tls.write_all(request).await;
    let mut resp = Vec::new();
    // The server may end TLS without close_notify after `connection: close`.
    let _ = tls.read_to_end(&mut resp).await;
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_string(), b.to_string()))
        .unwrap_or_default();
    (status, head, body)
}

const FORM: (&str, &str) = (
    "content-type",
    "application/x-www-form-urlencoded; charset=utf-8",
);

async fn ec2(sim: &Simulator, creds: &Credentials, body: &str) -> (u16, String) {
    call(sim, creds, "ec2", &[FORM], body).await
}

async fn send_key(sim: &Simulator, creds: &Credentials, body: &str) -> (u16, String) {
    call(
        sim,
        creds,
        "ec2-instance-connect",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            (
                "x-amz-target",
                "AWSEC2InstanceConnectService.SendSSHPublicKey",
            ),
        ],
        body,
    )
    .await
}

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test";

#[tokio::test]
async fn api_answers_sdk_signed_requests() {
    let sim = Simulator::start(World::demo()).await.unwrap();
    let creds = sim.credentials();

    let (status, body) = ec2(
        &sim,
        &creds,
        "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<privateIpAddress>10.0.1.10</privateIpAddress>"));

    let (status, body) = ec2(
        &sim,
        &creds,
        "Action=DescribeInstanceConnectEndpoints&Version=2016-11-15&Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("<dnsName>{}</dnsName>", sim.eice_dns())));

    let mut wrong = creds.clone();
    wrong.secret_access_key.push('x');
    let (status, body) = ec2(&sim, &wrong, "Action=DescribeInstances&Version=2016-11-15").await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{body}"
    );

    let key_req = serde_json::json!({
        "InstanceId": INSTANCE, "InstanceOSUser": "ec2-user", "SSHPublicKey": ED25519
    })
    .to_string();
    let session = sim.session_credentials();
    let (status, body) = send_key(&sim, &session, &key_req).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"Success\":true"));
    assert_eq!(sim.keys(INSTANCE, "ec2-user"), vec![ED25519.to_string()]);
    // The RequestId answered is the one logged, as CloudTrail would.
    let answered: serde_json::Value = serde_json::from_str(&body).unwrap();
    let logged = sim.request_log().last().cloned().unwrap();
    assert_eq!(logged.op, "SendSSHPublicKey");
    assert_eq!(
        logged.request_id.as_deref(),
        answered["RequestId"].as_str(),
        "{body}"
    );

    let mut no_token = session.clone();
    no_token.session_token = None;
    let (status, body) = send_key(&sim, &no_token, &key_req).await;
    assert_eq!(status, 400);
    assert!(body.contains("UnrecognizedClientException"), "{body}");

    sim.fail_next("SendSSHPublicKey", 400, "ThrottlingException", "slow down");
    let (status, body) = send_key(&sim, &creds, &key_req).await;
    assert_eq!(status, 400);
    assert!(body.contains("ThrottlingException"));

    let stopped = key_req.replace(INSTANCE, "i-0000000000000dead");
    let (_, body) = send_key(&sim, &creds, &stopped).await;
    assert!(body.contains("EC2InstanceStateInvalidException"), "{body}");

    let ops: Vec<String> = sim.request_log().into_iter().map(|e| e.op).collect();
    assert_eq!(ops[0], "DescribeInstances");
    assert_eq!(ops[1], "DescribeInstanceConnectEndpoints");
    assert_eq!(ops.len(), 7);
    // Each request's signature is kept, for tests that look for it where
    // it must not be.
    let sigs = sim.signatures_seen();
    assert_eq!(sigs.len(), 7, "{sigs:?}");
    assert!(
        sigs.iter()
            .all(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())),
        "{sigs:?}"
    );
}

fn presigned_url(creds: &Credentials, dns: &str, query: &str) -> String {
    let base = format!("wss://{dns}/openTunnel?{query}");
    // Sign the https form of the URL; only the host and query matter.
    let to_sign = base.replacen("wss://", "https://", 1);
    let id = identity(creds);
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = signing_params(&id, "ec2-instance-connect", settings);
    let signable = SignableRequest::new(
        "GET",
        &to_sign,
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .unwrap();
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .unwrap()
        .into_parts();
    let mut url = url::Url::parse(&base).unwrap();
    for (k, v) in instructions.params() {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open(sim: &Simulator, query: &str) -> Result<Client, tungstenite::Error> {
    let url = presigned_url(&sim.credentials(), &sim.eice_dns(), query);
    // The endpoint's name is the service's; its listener is on loopback.
    let tcp = TcpStream::connect(("127.0.0.1", sim.shared().eice_port))
        .await
        .map_err(tungstenite::Error::Io)?;
    let signature = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-Signature")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let opened = tokio_tungstenite::client_async_tls_with_config(
        url,
        tcp,
        None,
        Some(Connector::Rustls(client_tls(sim))),
    )
    .await
    .map(|(ws, _)| ws);
    // The simulator keeps the presigned URL's signature.
    if opened.is_ok() {
        assert!(sim.signatures_seen().contains(&signature));
    }
    opened
}

const GOOD: &str =
    "instanceConnectEndpointId=eice-0123456789abcdef0&remotePort=22&privateIpAddress=10.0.1.10";

/// An echo server standing in for the instance's sshd.
async fn echo_instance(sim: &Simulator) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    sim.set_world(|w| w.instances[0].ssh = Some(addr));
}

/// Reads binary messages until `n` bytes arrived.
async fn read_bytes(ws: &mut Client, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => {
                assert!(b.len() <= 65_000);
                got.extend_from_slice(&b);
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    got
}

async fn next_close(ws: &mut Client) -> (u16, String) {
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(Some(f)))) => return (f.code.into(), f.reason.to_string()),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn tunnel_relays_and_closes() {
    let sim = Simulator::start(World::demo()).await.unwrap();
    echo_instance(&sim).await;

    let mut ws = open(&sim, GOOD).await.unwrap();
    assert_eq!(sim.open_tunnels(), 1);
    ws.send(Message::binary(b"hello".to_vec())).await.unwrap();
    assert_eq!(read_bytes(&mut ws, 5).await, b"hello");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(read_bytes(&mut ws, big.len()).await, big);

    ws.send(Message::text("nope")).await.unwrap();
    assert_eq!(next_close(&mut ws).await.0, 1003);

    let mut ws = open(&sim, GOOD).await.unwrap();
    sim.close_tunnels(1001, "maintenance");
    assert_eq!(next_close(&mut ws).await, (1001, "maintenance".to_string()));

    let mut ws = open(&sim, &format!("{GOOD}&maxTunnelDuration=1"))
        .await
        .unwrap();
    let (code, reason) = next_close(&mut ws).await;
    assert_eq!(code, 1001);
    assert!(reason.contains("maximum tunnel duration"), "{reason}");
    // What the service sends at the cap is not documented: it is a setting.
    for (code, reason) in [(1000, ""), (1011, "Tunnel expired")] {
        sim.set_cap_close(code, reason);
        let mut ws = open(&sim, &format!("{GOOD}&maxTunnelDuration=1"))
            .await
            .unwrap();
        assert_eq!(next_close(&mut ws).await, (code, reason.to_string()));
    }

    let err = open(&sim, &GOOD.replace("remotePort=22", "remotePort=2222"))
        .await
        .err()
        .unwrap();
    match err {
        tungstenite::Error::Http(resp) => {
            assert_eq!(resp.status(), 400);
            let body = String::from_utf8(resp.body().clone().unwrap()).unwrap();
            assert!(body.contains("Specify either 22 or 3389"), "{body}");
            let answered = resp.headers().get("x-amzn-requestid").unwrap();
            let logged = sim.request_log().last().cloned().unwrap();
            assert_eq!(logged.request_id.as_deref(), answered.to_str().ok());
        }
        other => panic!("{other:?}"),
    }

    sim.fail_next("OpenTunnel", 503, "ServiceUnavailable", "busy");
    assert!(open(&sim, GOOD).await.is_err());

    sim.set_world(|w| w.instances[0].ssh = None);
    let mut ws = open(&sim, GOOD).await.unwrap();
    let (code, reason) = next_close(&mut ws).await;
    assert_eq!(code, 1011);
    assert!(
        reason.starts_with("Connection to the instance failed"),
        "{reason}"
    );

    let log = sim.request_log();
    assert!(log.iter().all(|e| e.op == "OpenTunnel"));
    assert_eq!(log.iter().filter(|e| e.status == 101).count(), 6);
}

#[tokio::test]
async fn latency_is_pipelined_and_freeze_holds_bytes() {
    let sim = Simulator::start(World::demo()).await.unwrap();
    echo_instance(&sim).await;
    let mut ws = open(&sim, GOOD).await.unwrap();

    let latency = Duration::from_millis(150);
    sim.set_frame_latency(latency);
    let t = Instant::now();
    for i in 0..10u8 {
        ws.send(Message::binary(vec![i; 10])).await.unwrap();
    }
    assert_eq!(read_bytes(&mut ws, 100).await.len(), 100);
    let took = t.elapsed();
    // Two delays (there and back), not twenty.
    assert!(took >= 2 * latency, "{took:?}");
    assert!(took < 6 * latency, "{took:?}");
    sim.set_frame_latency(Duration::ZERO);

    sim.freeze_tunnels(true);
    ws.send(Message::binary(b"held".to_vec())).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(
        early.is_err(),
        "data went through a frozen tunnel: {early:?}"
    );
    sim.freeze_tunnels(false);
    assert_eq!(read_bytes(&mut ws, 4).await, b"held");

    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.open_tunnels() != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.open_tunnels(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_sshd_runs_commands_for_pushed_keys() {
    if !std::path::Path::new("/usr/bin/ssh").is_file() {
        eprintln!("skipped: needs the ssh client");
        return;
    }
    let sim = Simulator::start(World::demo()).await.unwrap();
    let server = super::builtin_sshd::start_builtin_sshd(&sim, INSTANCE)
        .await
        .unwrap();
    assert!(server.host_key_pub.starts_with("ssh-ed25519 "));
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("id");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let ssh = |cmd: &str, stdin: &[u8]| {
        let mut child = super::sshd::openssh_command(&key, server.addr.port(), "ec2-user")
            .arg(cmd)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut input, stdin).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    };

    let out = tokio::task::block_in_place(|| ssh("true", b""));
    assert!(!out.status.success(), "login worked without a pushed key");

    let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    sim.shared()
        .keys
        .push(INSTANCE, "ec2-user", pubkey.trim(), Duration::from_secs(60))
        .unwrap();
    let out = tokio::task::block_in_place(|| ssh("cat; echo err >&2; exit 3", b"piped"));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"piped");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
}

/// The service's time in an answer's head, `None` without a `Date` header.
fn date_in(head: &str) -> Option<SystemTime> {
    head.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("date"))
        })
        .map(|(_, v)| httpdate::parse_http_date(v.trim()).unwrap())
}

/// `date` is the service's clock (the real one moved by `offset` seconds),
/// to within the second the header rounds to.
fn is_service_time(date: Option<SystemTime>, offset: i64) -> bool {
    let service = SystemTime::now()
        .checked_add(Duration::from_secs(offset.unsigned_abs()))
        .filter(|_| offset >= 0)
        .or_else(|| SystemTime::now().checked_sub(Duration::from_secs(offset.unsigned_abs())))
        .unwrap();
    date.is_some_and(|d| {
        let gap = d.duration_since(service).unwrap_or_else(|e| e.duration());
        gap <= Duration::from_secs(2)
    })
}

/// The signature window is SigV4's 5 minutes either way, refused in each
/// API's own words; every answer carries the service's `Date` (successes,
/// refusals, an oversized request's 413, and the endpoint's upgrade
/// refusals and 101) until the fault leaves it out.
#[tokio::test]
async fn signatures_are_good_for_five_minutes_and_every_answer_is_dated() {
    let sim = Simulator::start(World::demo()).await.unwrap();
    echo_instance(&sim).await;
    let creds = sim.credentials();
    let describe = "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0";
    let key_req = serde_json::json!({
        "InstanceId": INSTANCE, "InstanceOSUser": "ec2-user", "SSHPublicKey": ED25519
    })
    .to_string();
    let json = [
        ("content-type", "application/x-amz-json-1.1"),
        (
            "x-amz-target",
            "AWSEC2InstanceConnectService.SendSSHPublicKey",
        ),
    ];
    // The service's clock 4 min 50 s off either way: still inside.
    for offset in [290, -290] {
        sim.set_clock_offset(offset);
        let (status, head, body) = call_with_head(&sim, &creds, "ec2", &[FORM], describe).await;
        assert_eq!(status, 200, "{offset}: {body}");
        assert!(is_service_time(date_in(&head), offset), "{head}");
        let (status, head, body) =
            call_with_head(&sim, &creds, "ec2-instance-connect", &json, &key_req).await;
        assert_eq!(status, 200, "{offset}: {body}");
        assert!(is_service_time(date_in(&head), offset), "{head}");
    }
    // 5 min 10 s: refused, EC2 with RequestExpired, Instance Connect with
    // InvalidSignatureException saying which way.
    for (offset, words) in [
        (310, "Signature expired: "),
        (-310, "Signature not yet current: "),
    ] {
        sim.set_clock_offset(offset);
        let (status, head, body) = call_with_head(&sim, &creds, "ec2", &[FORM], describe).await;
        assert_eq!(status, 400, "{offset}: {body}");
        assert!(
            body.contains("<Code>RequestExpired</Code><Message>Request has expired.</Message>"),
            "{body}"
        );
        assert!(is_service_time(date_in(&head), offset), "{head}");
        let (status, head, body) =
            call_with_head(&sim, &creds, "ec2-instance-connect", &json, &key_req).await;
        assert_eq!(status, 400, "{offset}: {body}");
        assert!(body.contains("\"InvalidSignatureException\""), "{body}");
        assert!(body.contains(words), "{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("x-amzn-errortype: invalidsignatureexception"),
            "{head}"
        );
        assert!(is_service_time(date_in(&head), offset), "{head}");
        // The endpoint refuses the presigned URL, dated too.
        match open(&sim, GOOD).await.err() {
            Some(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 403);
                let date = resp
                    .headers()
                    .get("date")
                    .map(|d| httpdate::parse_http_date(d.to_str().unwrap()).unwrap());
                assert!(is_service_time(date, offset), "{resp:?}");
            }
            other => panic!("{offset}: {other:?}"),
        }
    }
    sim.set_clock_offset(0);

    // An oversized request is refused before it is read whole: dated.
    let big = format!(
        "POST / HTTP/1.1\r\nhost: localhost\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n{}",
        "x".repeat(2 << 20),
        n = 2 << 20
    );
    let (status, head, _) = raw_api_request(&sim, big.as_bytes()).await;
    assert_eq!(status, 413, "{head}");
    assert!(is_service_time(date_in(&head), 0), "{head}");

    // The endpoint: a 101 and a refusal that is not about time, both dated.
    let url = presigned_url(&creds, &sim.eice_dns(), GOOD);
    let tcp = TcpStream::connect(("127.0.0.1", sim.shared().eice_port))
        .await
        .unwrap();
    let (_ws, resp) = tokio_tungstenite::client_async_tls_with_config(
        url,
        tcp,
        None,
        Some(Connector::Rustls(client_tls(&sim))),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 101);
    assert!(resp.headers().contains_key("date"), "{resp:?}");
    let refused = |e: Option<tungstenite::Error>| match e {
        Some(tungstenite::Error::Http(resp)) => resp,
        other => panic!("{other:?}"),
    };
    let resp = refused(
        open(&sim, &GOOD.replace("remotePort=22", "remotePort=23"))
            .await
            .err(),
    );
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().contains_key("date"), "{resp:?}");

    // Without Date: nothing tells the service's time.
    sim.omit_date_header(true);
    let (status, head, _) = call_with_head(&sim, &creds, "ec2", &[FORM], describe).await;
    assert_eq!(status, 200);
    assert_eq!(date_in(&head), None, "{head}");
    sim.set_clock_offset(400);
    let (status, head, _) = call_with_head(&sim, &creds, "ec2", &[FORM], describe).await;
    assert_eq!(status, 400);
    assert_eq!(date_in(&head), None, "{head}");
    let resp = refused(open(&sim, GOOD).await.err());
    assert_eq!(resp.status(), 403);
    assert!(!resp.headers().contains_key("date"), "{resp:?}");
}
