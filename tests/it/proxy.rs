//! HTTP proxies: the API calls and the tunnel through a real tinyproxy,
//! with and without basic auth, its refusals, and `NO_PROXY`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

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

fn api_authority(f: &Fixture) -> String {
    f.sim.api_url().trim_start_matches("https://").to_owned()
}

async fn run_with(f: &Fixture, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = f.command();
    cmd.envs(env.iter().copied());
    f.run_cmd(cmd, args, b"").await
}

#[async_test]
async fn api_calls_and_tunnel_go_through_the_proxy() {
    let f = Fixture::new().await;
    let proxy = Tinyproxy::start(None, None).await;
    let url = proxy.url("");
    let out = run_with(
        &f,
        &[("HTTPS_PROXY", &url)],
        &["-v", &f.target(), "--", "echo", "via proxy"],
    )
    .await;
    assert_eq!(out.stdout_str(), "via proxy\n", "{}", out.stderr);
    assert_eq!(out.status, Some(0));
    let connects = proxy.connects();
    // The tunnel: CONNECT to the address EIC_SSH_CONNECT_TO maps the
    // endpoint's name to (as curl's --connect-to does), TLS inside it.
    let dialed = f.sim.eice_addr().to_string();
    assert!(connects.contains(&dialed), "{connects:?}\n{}", proxy.log());
    // The API calls: DescribeInstances, DescribeInstanceConnectEndpoints
    // and SendSSHPublicKey, each through a CONNECT to the API's host.
    assert!(
        connects.contains(&api_authority(&f)),
        "{connects:?}\n{}",
        proxy.log()
    );
    assert!(
        out.stderr
            .contains(&format!("tunnel to {dialed} through the proxy {url}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "API request to {} through the proxy",
            api_authority(&f)
        )),
        "{}",
        out.stderr
    );
}

#[async_test]
async fn basic_auth_works_and_the_password_never_shows() {
    let f = Fixture::new().await;
    let proxy = Tinyproxy::start(Some(("alice", "s3cret-pw")), None).await;
    let url = proxy.url("alice:s3cret-pw@");
    let out = run_with(
        &f,
        &[("https_proxy", &url)],
        &["-vvv", &f.target(), "--", "echo", "authenticated"],
    )
    .await;
    assert_eq!(out.stdout_str(), "authenticated\n", "{}", out.stderr);
    assert!(
        proxy.connects().contains(&f.sim.eice_addr().to_string()),
        "{}",
        proxy.log()
    );
    assert!(!out.stderr.contains("s3cret-pw"), "{}", out.stderr);
    // The Basic header's base64 never shows either.
    assert!(
        !out.stderr.contains("YWxpY2U6czNjcmV0LXB3"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "through the proxy http://alice:REDACTED@127.0.0.1:{}",
            proxy.port
        )),
        "{}",
        out.stderr
    );
}

#[async_test]
async fn missing_or_wrong_credentials_are_refusals_naming_the_proxy() {
    let f = Fixture::new().await;
    let proxy = Tinyproxy::start(Some(("alice", "s3cret-pw")), None).await;
    // No credentials: 407 Proxy Authentication Required.
    let url = proxy.url("");
    let out = run_with(&f, &[("HTTPS_PROXY", &url)], &[&f.target(), "--", "true"]).await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("the proxy {url} refused CONNECT to")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("HTTP 407 Proxy Authentication Required"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: the proxy wants other credentials"),
        "{}",
        out.stderr
    );

    // Wrong credentials: tinyproxy answers those with a 401.
    let url = proxy.url("alice:wrong-pw@");
    let out = run_with(&f, &[("HTTPS_PROXY", &url)], &[&f.target(), "--", "true"]).await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    let shown = format!("http://alice:REDACTED@127.0.0.1:{}", proxy.port);
    assert!(
        out.stderr
            .contains(&format!("the proxy {shown} refused CONNECT to")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("hint: the proxy wants other credentials"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrong-pw"), "{}", out.stderr);
    // A refusal is final: not retried over and over. A cold connection
    // makes four API calls at once (DescribeInstances, the region's
    // endpoints, the key push, the console), each at most the SDK's three
    // attempts and one more to read the proxy's status.
    assert!(proxy.connects().len() <= 16, "{}", proxy.log());
}

#[async_test]
async fn a_proxy_that_forbids_the_port_is_a_403_and_an_absent_one_unreachable() {
    let f = Fixture::new().await;
    let proxy = Tinyproxy::start(None, Some(443)).await;
    let url = proxy.url("");
    let out = run_with(&f, &[("HTTPS_PROXY", &url)], &[&f.target(), "--", "true"]).await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("the proxy {url} refused CONNECT to")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("HTTP 403"), "{}", out.stderr);

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://127.0.0.1:{}", dead.local_addr().unwrap().port());
    drop(dead);
    let out = run_with(
        &f,
        &[("ALL_PROXY", &dead_url)],
        &[&f.target(), "--", "true"],
    )
    .await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot reach the proxy {dead_url}")),
        "{}",
        out.stderr
    );
}

#[async_test]
async fn no_proxy_goes_direct() {
    let f = Fixture::new().await;
    let proxy = Tinyproxy::start(None, None).await;
    let url = proxy.url("");
    // `calhost` is a substring of `localhost` (the API's host) and must
    // not match; the `localhost` entry does, and `127.0.0.1` for the
    // tunnel, which dials the address EIC_SSH_CONNECT_TO maps the
    // endpoint's name to.
    let out = run_with(
        &f,
        &[("HTTPS_PROXY", &url), ("NO_PROXY", "calhost")],
        &["-v", &f.target(), "--", "true"],
    )
    .await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(!proxy.connects().is_empty(), "{}", proxy.log());
    let before = proxy.connects().len();

    let out = run_with(
        &f,
        &[
            ("HTTPS_PROXY", &url),
            ("NO_PROXY", "example.test, localhost, 127.0.0.1"),
        ],
        &["-v", &f.target(), "--", "echo", "direct"],
    )
    .await;
    assert_eq!(out.stdout_str(), "direct\n", "{}", out.stderr);
    assert_eq!(proxy.connects().len(), before, "{}", proxy.log());
    assert!(
        out.stderr.contains(&format!(
            "tunnel to {}: direct, no proxy",
            f.sim.eice_addr()
        )),
        "{}",
        out.stderr
    );
}
