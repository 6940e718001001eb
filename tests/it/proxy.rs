//! HTTP proxies: the API calls and the tunnel through a real tinyproxy,
//! with and without basic auth, its refusals, and `NO_PROXY`; and the path
//! every user takes, a `CONNECT` to the endpoint's own DNS name, through a
//! proxy that records what it is asked for.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// A real tinyproxy on loopback, stopped on drop.
struct Tinyproxy {
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Tinyproxy {
    /// Start one; `auth` makes it demand those basic-auth credentials,
    /// `connect_port` limits CONNECT to that port (else any port).
    async fn start(auth: Option<(&str, &str)>, connect_port: Option<u16>) -> Tinyproxy {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        for _ in 0..10 {
            // tinyproxy cannot bind port 0: take a free port, release it
            // and hand it over; if it is taken in between, try another.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut text = format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nLogFile \"{}\"\nMaxClients 50\nDisableViaHeader Yes\n",
                log.display()
            );
            if let Some((user, password)) = auth {
                text.push_str(&format!("BasicAuth {user} {password}\n"));
            }
            if let Some(p) = connect_port {
                text.push_str(&format!("ConnectPort {p}\n"));
            }
            std::fs::write(&conf, text).unwrap();
            let _ = std::fs::remove_file(&log);
            let mut child = tokio::process::Command::new("tinyproxy")
                .arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("tinyproxy runs (apt-get install tinyproxy)");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // most likely the port was taken: another one
                }
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Accepting connections")
                    && tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_ok()
                {
                    return Tinyproxy {
                        port,
                        log,
                        _dir: dir,
                        _child: child,
                    };
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "tinyproxy did not start: {text}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        panic!("tinyproxy could not bind a port");
    }

    fn url(&self, userinfo: &str) -> String {
        format!("http://{userinfo}127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `CONNECT` requests it received, as `host:port`.
    fn connects(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| {
                l.split("CONNECT ")
                    .nth(2)
                    .or_else(|| l.split(": CONNECT ").nth(1))
            })
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }
}

/// An HTTP proxy that answers every `CONNECT` and records its target. It
/// reaches the simulator's endpoint names at the simulator's endpoint
/// listener, as a proxy resolves names for its clients, and every other
/// target (the API's `localhost:PORT`) as asked: a client that uses it
/// dials nothing but the proxy.
struct Recorder {
    url: String,
    connects: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start(f: &Fixture) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connects = Arc::new(Mutex::new(Vec::new()));
        let names = [
            f.sim.eice_dns(),
            f.sim.eice_fips_dns(),
            f.sim.eice_dualstack_dns(),
        ];
        let endpoint = f.sim.eice_addr();
        let seen = connects.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (seen, names) = (seen.clone(), names.clone());
                tokio::spawn(async move {
                    let _ = Recorder::serve(client, &seen, &names, endpoint).await;
                });
            }
        });
        Recorder { url, connects }
    }

    /// One client: its `CONNECT` recorded, answered, and carried.
    async fn serve(
        mut client: TcpStream,
        seen: &Mutex<Vec<String>>,
        names: &[String],
        endpoint: std::net::SocketAddr,
    ) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if client.read(&mut byte).await? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let target = head
            .strip_prefix("CONNECT ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        seen.lock().unwrap().push(target.clone());
        let (host, _) = target.rsplit_once(':').unwrap_or_default();
        let upstream = if names.iter().any(|n| n == host) {
            TcpStream::connect(endpoint).await
        } else {
            TcpStream::connect(target.as_str()).await
        };
        let Ok(mut upstream) = upstream else {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                .await?;
            return Ok(());
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        Ok(())
    }

    fn connects(&self) -> Vec<String> {
        self.connects.lock().unwrap().clone()
    }
}

fn api_authority(f: &Fixture) -> String {
    f.sim.api_url().trim_start_matches("https://").to_owned()
}

/// The path every user takes: no `EIC_SSH_CONNECT_TO`, so the tunnel's
/// `CONNECT` names the endpoint's DNS name and the proxy resolves it; TLS
/// inside is verified against that name as without a proxy.
#[async_test]
async fn the_tunnel_connects_to_the_endpoints_name_through_the_proxy() {
    let f = Fixture::new().await;
    let proxy = Recorder::start(&f).await;
    let dns = f.sim.eice_dns();
    let mut cmd = f.command();
    cmd.env_remove(eic_sim::CONNECT_TO_VAR)
        .env("HTTPS_PROXY", &proxy.url);
    f.run_cmd(cmd, &["-v", &f.target(), "--", "echo", "by name"], b"")
        .await
        .assert_success()
        .assert_stdout("by name\n")
        .assert_stderr_contains(format!(
            "tunnel to {dns}:443 through the proxy {}",
            proxy.url
        ));
    let connects = proxy.connects();
    assert!(connects.contains(&format!("{dns}:443")), "{connects:?}");
    assert!(connects.contains(&api_authority(&f)), "{connects:?}");
}

/// `NO_PROXY` is matched against the endpoint's name, as it is against the
/// API's URL, never against where `EIC_SSH_CONNECT_TO` sends the
/// connection; and a whole name or suffix matches, never a substring.
#[async_test]
async fn no_proxy_is_matched_against_the_endpoints_name() {
    let f = Fixture::new().await;
    let proxy = Recorder::start(&f).await;
    let dialed = f.sim.eice_addr().to_string();
    for (no_proxy, direct) in [
        (".amazonaws.com", true),
        (
            "ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
            true,
        ),
        // A substring of the name, and the mapped address: neither matches.
        ("amazonaws, 127.0.0.1", false),
    ] {
        let before = proxy.connects().len();
        let out = f
            .run_env(
                &[("HTTPS_PROXY", &proxy.url), ("NO_PROXY", no_proxy)],
                &["-v", &f.target(), "--", "echo", "ok"],
            )
            .await;
        out.assert_stdout("ok\n");
        let tunnel = proxy.connects()[before..].contains(&dialed);
        if direct {
            out.assert_stderr_contains(format!("tunnel to {dialed}: direct, no proxy"));
            assert!(!tunnel, "{no_proxy}: {:?}", proxy.connects());
        } else {
            out.assert_stderr_contains(format!("tunnel to {dialed} through the proxy"));
            assert!(tunnel, "{no_proxy}: {:?}", proxy.connects());
        }
        // The API's host is not listed: its calls still go through.
        assert!(
            proxy.connects()[before..].contains(&api_authority(&f)),
            "{no_proxy}: {:?}",
            proxy.connects()
        );
    }
}

/// A proxy that never completes the TCP handshake, and one that takes the
/// connection but never answers `CONNECT`: both bounded by
/// `--connect-timeout`, named as the TCP connection to the endpoint.
#[async_test]
async fn a_proxy_that_never_answers_times_out_at_the_connect_timeout() {
    let f = Fixture::new().await;
    let hole = Blackhole::on("127.0.0.1".parse().unwrap());
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut args = vec!["--connect-timeout".to_owned(), "2".to_owned()];
    args.extend(f.tunnel_only());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for url in [format!("http://{}", hole.addr), silent_url] {
        f.run_env(&[("HTTPS_PROXY", &url)], &args)
            .await
            .assert_timed_out(
                2,
                &format!("the TCP connection to {}:443", f.sim.eice_dns()),
            );
    }
    f.assert_no_calls();
}

/// Only plain-HTTP proxies: an `https://` or `socks5://` one is refused,
/// saying so, before anything is sent to it.
#[async_test]
async fn https_and_socks5_proxies_are_refused() {
    let f = Fixture::new().await;
    let args = f.tunnel_only();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for scheme in ["https", "socks5"] {
        let url = format!("{scheme}://127.0.0.1:9");
        f.run_env(&[("HTTPS_PROXY", &url)], &args)
            .await
            .assert_status(255)
            .assert_stdout("")
            .assert_stderr_contains(format!(
                "eic-ssh talks to proxies in plain HTTP (http://...), not {scheme}://"
            ));
    }
    f.assert_no_calls();
}

#[async_test]
async fn api_calls_and_tunnel_go_through_the_proxy() {
    let f = Fixture::new().await;
    let proxy = Tinyproxy::start(None, None).await;
    let url = proxy.url("");
    let out = f
        .run_env(
            &[("HTTPS_PROXY", &url)],
            &["-v", &f.target(), "--", "echo", "via proxy"],
        )
        .await;
    // The tunnel: CONNECT to the address EIC_SSH_CONNECT_TO maps the
    // endpoint's name to (as curl's --connect-to does), TLS inside it.
    let dialed = f.sim.eice_addr().to_string();
    out.assert_success()
        .assert_stdout("via proxy\n")
        .assert_stderr_contains(format!("tunnel to {dialed} through the proxy {url}"))
        .assert_stderr_contains(format!(
            "API request to {} through the proxy",
            api_authority(&f)
        ));
    let connects = proxy.connects();
    assert!(connects.contains(&dialed), "{connects:?}\n{}", proxy.log());
    // The API calls: DescribeInstances, DescribeInstanceConnectEndpoints
    // and SendSSHPublicKey, each through a CONNECT to the API's host.
    assert!(
        connects.contains(&api_authority(&f)),
        "{connects:?}\n{}",
        proxy.log()
    );
}

#[async_test]
async fn basic_auth_works_and_the_password_never_shows() {
    let f = Fixture::new().await;
    let proxy = Tinyproxy::start(Some(("alice", "s3cret-pw")), None).await;
    let url = proxy.url("alice:s3cret-pw@");
    // The password, and the Basic header's base64 of it, never show.
    f.run_env(
        &[("https_proxy", &url)],
        &["-vvv", &f.target(), "--", "echo", "authenticated"],
    )
    .await
    .assert_stdout("authenticated\n")
    .assert_stderr_lacks("s3cret-pw")
    .assert_stderr_lacks("YWxpY2U6czNjcmV0LXB3")
    .assert_stderr_contains(format!(
        "through the proxy http://alice:REDACTED@127.0.0.1:{}",
        proxy.port
    ));
    assert!(
        proxy.connects().contains(&f.sim.eice_addr().to_string()),
        "{}",
        proxy.log()
    );
}

#[async_test]
async fn missing_or_wrong_credentials_are_refusals_naming_the_proxy() {
    let f = Fixture::new().await;
    let proxy = Tinyproxy::start(Some(("alice", "s3cret-pw")), None).await;
    // No credentials: 407 Proxy Authentication Required.
    let url = proxy.url("");
    f.run_env(&[("HTTPS_PROXY", &url)], &[&f.target(), "--", "true"])
        .await
        .assert_status(255)
        .assert_stderr_contains(format!("the proxy {url} refused CONNECT to"))
        .assert_stderr_contains("HTTP 407 Proxy Authentication Required")
        .assert_stderr_contains("hint: the proxy wants other credentials");

    // Wrong credentials: tinyproxy answers those with a 401.
    let url = proxy.url("alice:wrong-pw@");
    let shown = format!("http://alice:REDACTED@127.0.0.1:{}", proxy.port);
    f.run_env(&[("HTTPS_PROXY", &url)], &[&f.target(), "--", "true"])
        .await
        .assert_status(255)
        .assert_stderr_contains(format!("the proxy {shown} refused CONNECT to"))
        .assert_stderr_contains("HTTP 401")
        .assert_stderr_contains("hint: the proxy wants other credentials")
        .assert_stderr_lacks("wrong-pw");

    // A refusal is final, never retried. The tunnel alone: one CONNECT.
    // An API call alone (host-keys by ID reads the console, and nothing
    // else): the AWS SDK's client tries once and keeps only "refused", so
    // eic-ssh asks the proxy once more, for its answer: two in all, where
    // a retry would make four or six.
    let tunnel = f.tunnel_only();
    let tunnel: Vec<&str> = tunnel.iter().map(String::as_str).collect();
    for (args, what, connects) in [
        (&tunnel[..], "the tunnel", 1),
        (&["host-keys", INSTANCE][..], "GetConsoleOutput", 2),
    ] {
        let before = proxy.connects().len();
        f.run_env(&[("HTTPS_PROXY", &url)], args)
            .await
            .assert_status(255)
            .assert_stderr_contains(format!("the proxy {shown} refused CONNECT to"));
        assert_eq!(
            proxy.connects().len() - before,
            connects,
            "{what}: {:?}\n{}",
            proxy.connects(),
            proxy.log()
        );
    }
    f.assert_no_calls();
}

#[async_test]
async fn a_proxy_that_forbids_the_port_is_a_403_and_an_absent_one_unreachable() {
    let f = Fixture::new().await;
    let proxy = Tinyproxy::start(None, Some(443)).await;
    let url = proxy.url("");
    f.run_env(&[("HTTPS_PROXY", &url)], &[&f.target(), "--", "true"])
        .await
        .assert_status(255)
        .assert_stderr_contains(format!("the proxy {url} refused CONNECT to"))
        .assert_stderr_contains("HTTP 403");

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://127.0.0.1:{}", dead.local_addr().unwrap().port());
    drop(dead);
    f.run_env(&[("ALL_PROXY", &dead_url)], &[&f.target(), "--", "true"])
        .await
        .assert_status(255)
        .assert_stderr_contains(format!("cannot reach the proxy {dead_url}"));
}

#[async_test]
async fn no_proxy_goes_direct() {
    let f = Fixture::new().await;
    let proxy = Tinyproxy::start(None, None).await;
    let url = proxy.url("");
    // `calhost` is a substring of `localhost` (the API's host) and must
    // not match; the `localhost` entry does, and `.amazonaws.com` for the
    // tunnel, whose endpoint name is under it.
    f.run_env(
        &[("HTTPS_PROXY", &url), ("NO_PROXY", "calhost")],
        &["-v", &f.target(), "--", "true"],
    )
    .await
    .assert_success();
    assert!(!proxy.connects().is_empty(), "{}", proxy.log());
    let before = proxy.connects().len();

    f.run_env(
        &[
            ("HTTPS_PROXY", &url),
            ("NO_PROXY", "example.test, localhost, .amazonaws.com"),
        ],
        &["-v", &f.target(), "--", "echo", "direct"],
    )
    .await
    .assert_stdout("direct\n")
    .assert_stderr_contains(format!("tunnel to {}: direct, no proxy", f.sim.eice_addr()));
    assert_eq!(proxy.connects().len(), before, "{}", proxy.log());
}
