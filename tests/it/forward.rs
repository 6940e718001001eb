//! `-L`, `-R`, `-D`, `-N` and `-f` against the real sshd: bytes checked end
//! to end, a real SOCKS client, signals, and the background mode.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// The port after `prefix` in `line`, e.g. "127.0.0.1:" → 40123.
fn port_after(line: &str, prefix: &str) -> u16 {
    let i = line
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix} in {line}"))
        + prefix.len();
    line[i..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// A TCP service standing in for a database: echoes every byte back.
async fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

/// Send `n` random bytes to 127.0.0.1:`port` and check that the same come
/// back.
async fn echo_round_trip(port: u16, n: usize) {
    echo_round_trip_at(SocketAddr::from(([127, 0, 0, 1], port)), n).await;
}

/// Send `n` random bytes to `addr` and check that the same come back.
async fn echo_round_trip_at(addr: SocketAddr, n: usize) {
    let data = random_bytes(n);
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    tokio::time::timeout(WAIT, r.read_to_end(&mut back))
        .await
        .expect("echo in time")
        .unwrap();
    writer.await.unwrap();
    assert_eq!(back.len(), data.len());
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));
}

#[async_test]
async fn local_forward_carries_ten_concurrent_connections_and_sigint_ends_it() {
    let f = Fixture::new().await;
    let db = echo_server().await;
    let spec = format!("0:127.0.0.1:{db}");
    let mut run = f.spawn(&["-v", "-N", "-L", &spec, &f.target()]);
    let line = run.line("forwarding 127.0.0.1:").await;
    let port = port_after(&line, "127.0.0.1:");
    // On both loopback addresses, the same port.
    assert!(line.contains(&format!(" and [::1]:{port} to ")), "{line}");

    let clients: Vec<_> = (0..10)
        .map(|i| {
            let ip = if i % 2 == 0 { "127.0.0.1" } else { "::1" };
            let addr = SocketAddr::new(ip.parse().unwrap(), port);
            tokio::spawn(echo_round_trip_at(addr, 256 * 1024 + i * 4099))
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    // Each connection is logged with its bytes each way.
    let closed = run.line("bytes received").await;
    assert!(closed.contains("bytes sent"), "{closed}");

    run.signal("-INT");
    assert_eq!(run.status().await, Some(0), "{}", run.stderr_so_far());
}

/// `-L *:PORT:…` listens on every interface, IPv4 and IPv6 alike (after
/// its warning): a connection to either loopback address is forwarded.
#[async_test]
async fn local_forward_on_star_listens_on_both_families() {
    let f = Fixture::new().await;
    let db = echo_server().await;
    let spec = format!("*:0:127.0.0.1:{db}");
    let mut run = f.spawn(&["-N", "-L", &spec, &f.target()]);
    run.line("eic-ssh: warning: -L ").await;
    let line = run.line("forwarding [::]:").await;
    let port = port_after(&line, "[::]:");
    echo_round_trip_at(SocketAddr::from(([127, 0, 0, 1], port)), 10_000).await;
    echo_round_trip_at(
        "[::1]:0"
            .parse::<SocketAddr>()
            .map(|a| SocketAddr::new(a.ip(), port))
            .unwrap(),
        10_000,
    )
    .await;
    run.signal("-INT");
    assert_eq!(run.status().await, Some(0), "{}", run.stderr_so_far());
}

/// A service that floods whoever connects and sends "flood", and echoes
/// for everyone else; with the bytes flooded so far.
async fn flood_or_echo_server() -> (u16, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let flooded = Arc::new(AtomicU64::new(0));
    let counter = flooded.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let mut first = [0u8; 5];
                if r.read_exact(&mut first).await.is_err() {
                    return;
                }
                if &first == b"flood" {
                    let block = vec![b'x'; 1 << 16];
                    while w.write_all(&block).await.is_ok() {
                        counter.fetch_add(block.len() as u64, Ordering::SeqCst);
                    }
                } else {
                    let _ = w.write_all(&first).await;
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    (port, flooded)
}

/// A forwarded connection whose local client never reads, while the
/// instance floods it, does not stop the others for good: it holds at most
/// its buffer, is closed with a warning, and the echo beside it completes
/// with every byte.
#[async_test]
async fn a_stuck_forwarded_connection_does_not_stall_the_others() {
    let f = Fixture::new().await;
    let (svc, flooded) = flood_or_echo_server().await;
    let spec = format!("0:127.0.0.1:{svc}");
    let mut run = f.spawn(&["-N", "-L", &spec, &f.target()]);
    let line = run.line("forwarding 127.0.0.1:").await;
    let port = port_after(&line, "127.0.0.1:");

    // The stuck one: asks for the flood and never reads. Once the service
    // has sent more than the connection's 16 MiB buffer holds, the buffer
    // is full (or nearly: the rest sits in socket buffers on the way).
    let mut stuck = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stuck.write_all(b"flood").await.unwrap();
    eventually(
        "the flood filling the stuck connection's buffer",
        WAIT,
        || flooded.load(Ordering::SeqCst) > 16 << 20,
    )
    .await;

    // Another connection through the same session: 1 MB echoed intact.
    let echo = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        let data = random_bytes(1 << 20);
        let (mut r, mut w) = s.into_split();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        assert_eq!(&back[..5], b"hello");
        assert_eq!(Sha256::digest(&back[5..]), Sha256::digest(&data));
    };
    tokio::time::timeout(WAIT, echo)
        .await
        .expect("the echo finished beside the stuck connection");
    // The stuck connection was closed with a warning naming why.
    let warned = run.line("read nothing for 5 s").await;
    assert!(warned.contains("MiB from the instance waiting"), "{warned}");
    // The stuck client sees the end of its connection once it reads.
    let mut sink = vec![0u8; 1 << 16];
    let drained = tokio::time::timeout(WAIT, async {
        let mut total = 0usize;
        loop {
            match stuck.read(&mut sink).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .expect("the stuck connection was closed");
    assert!(drained >= 1 << 20, "{drained} bytes");

    // The session is still good for new connections.
    echo_round_trip_after_hello(port).await;
    run.signal("-INT");
    assert_eq!(run.status().await, Some(0), "{}", run.stderr_so_far());
}

/// One more echo through [`flood_or_echo_server`].
async fn echo_round_trip_after_hello(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"hello again").await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut back))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(back, b"hello again");
}

#[async_test]
async fn remote_forward_reaches_a_local_service() {
    let f = Fixture::new().await;
    let svc = echo_server().await;
    let spec = format!("0:127.0.0.1:{svc}");
    let mut run = f.spawn(&["-N", "-R", &spec, &f.target()]);
    let line = run.line("Allocated port").await;
    let port = port_after(&line, "Allocated port ");
    // The instance is this machine: its sshd listens on its loopback.
    echo_round_trip(port, 300 * 1024).await;
    echo_round_trip(port, 10).await;
    run.signal("-TERM");
    assert_eq!(run.status().await, Some(0));
}

#[async_test]
async fn a_refused_remote_forward_is_an_error_naming_the_port_unless_best_effort() {
    let f = Fixture::new().await;
    // Taken on the instance (this machine), so sshd cannot listen there,
    // on either loopback address.
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let _taken6 = TcpListener::bind(("::1", port)).await;
    let spec = format!("{port}:127.0.0.1:9");
    f.run(&["-N", "-R", &spec, &f.target()], b"")
        .await
        .assert_status(255)
        .assert_stderr_contains(format!(
            "the instance refused to listen on localhost:{port}"
        ));

    f.run(
        &[
            "--forward-best-effort",
            "-R",
            &spec,
            &f.target(),
            "echo",
            "on",
        ],
        b"",
    )
    .await
    .assert_success()
    .assert_stdout("on\n")
    .assert_stderr_contains(format!("localhost:{port}"));
}

/// A one-page HTTP server that answers every request with `body`.
async fn http_server(body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

#[async_test]
async fn dynamic_forward_serves_curl_by_name_resolved_on_the_instance() {
    let f = Fixture::new().await;
    let web = http_server("hello through the instance\n").await;
    let mut run = f.spawn(&["-N", "-D", "0", &f.target()]);
    let line = run.line("SOCKS proxy on 127.0.0.1:").await;
    let socks = port_after(&line, "127.0.0.1:");
    for proxy in [
        format!("socks5h://127.0.0.1:{socks}"),
        format!("socks4a://127.0.0.1:{socks}"),
    ] {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "--proxy", &proxy])
            .arg(format!("http://localhost:{web}/"))
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{proxy}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello through the instance\n"
        );
    }
    // As the issue asks: curl's own --socks5-hostname flag.
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--socks5-hostname"])
        .arg(format!("127.0.0.1:{socks}"))
        .arg(format!("http://localhost:{web}/"))
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello through the instance\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A port nothing listens on: a SOCKS error, which curl reports.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--socks5-hostname"])
        .arg(format!("127.0.0.1:{socks}"))
        .arg(format!("http://localhost:{dead_port}/"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    run.signal("-INT");
    assert_eq!(run.status().await, Some(0));
}

/// A raw SOCKS5 CONNECT for `name:port` on the proxy at `socks`: the
/// stream and the reply code.
async fn socks5_connect(socks: u16, name: &[u8], port: u16) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(("127.0.0.1", socks)).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut method = [0u8; 2];
    s.read_exact(&mut method).await.unwrap();
    assert_eq!(method, [5, 0]);
    let mut req = vec![5, 1, 0, 3, u8::try_from(name.len()).unwrap()];
    req.extend_from_slice(name);
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.unwrap();
    let mut reply = [0u8; 10];
    tokio::time::timeout(WAIT, s.read_exact(&mut reply))
        .await
        .expect("a SOCKS reply")
        .unwrap();
    assert_eq!(reply[0], 5);
    (s, reply[1])
}

/// Any local process can reach -D: a name holding NUL (which makes sshd
/// end the whole session) or another control character is answered "host
/// unreachable" here, and the session and its other forwards go on.
#[async_test]
async fn a_socks_request_for_no_host_name_is_refused_and_the_session_goes_on() {
    let f = Fixture::new().await;
    let echo = echo_server().await;
    let local = format!("0:127.0.0.1:{echo}");
    let mut run = f.spawn(&["-N", "-D", "0", "-L", &local, &f.target()]);
    let line = run.line("SOCKS proxy on 127.0.0.1:").await;
    let socks = port_after(&line, "127.0.0.1:");
    let line = run.line(&format!("to 127.0.0.1:{echo} ")).await;
    let forwarded = port_after(&line, "127.0.0.1:");

    for name in [&b"localhost\0evil"[..], b"localhost\nx", b"local host"] {
        let (_, code) = socks5_connect(socks, name, echo).await;
        assert_eq!(code, 4, "{name:?}");
    }
    // SOCKS4a, the same name: "rejected".
    let mut s = TcpStream::connect(("127.0.0.1", socks)).await.unwrap();
    let mut req = vec![4, 1];
    req.extend_from_slice(&echo.to_be_bytes());
    req.extend_from_slice(&[0, 0, 0, 1, 0]);
    req.extend_from_slice(b"localhost\x01evil\0");
    s.write_all(&req).await.unwrap();
    let mut reply = [0u8; 8];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[..2], [0, 0x5b]);
    run.line("-D: refused a request for \"localhost\\0evil\"")
        .await;

    // The same -D still serves a good name, and -L still forwards.
    let (mut s, code) = socks5_connect(socks, b"localhost", echo).await;
    assert_eq!(code, 0);
    s.write_all(b"still here").await.unwrap();
    let mut back = [0u8; 10];
    tokio::time::timeout(WAIT, s.read_exact(&mut back))
        .await
        .expect("echoed")
        .unwrap();
    assert_eq!(&back, b"still here");
    echo_round_trip(forwarded, 1000).await;
    run.signal("-INT");
    assert_eq!(run.status().await, Some(0), "{}", run.stderr_so_far());
}

#[async_test]
async fn a_local_port_in_use_fails_before_the_session_naming_the_address() {
    let f = Fixture::new().await;
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let spec = format!("{port}:db.internal:5432");
    f.run(&["-N", "-L", &spec, &f.target()], b"")
        .await
        .assert_status(255)
        .assert_stderr_contains(format!(
            "cannot listen on 127.0.0.1:{port}: Address already in use"
        ));
    // The session never started.
    f.assert_no_calls();
}

#[async_test]
async fn background_mode_returns_once_forwarding_and_keeps_forwarding() {
    let f = Fixture::new().await;
    let db = echo_server().await;
    let spec = format!("0:127.0.0.1:{db}");
    let log = f.home.tmp().join("stderr");
    let out = tokio::time::timeout(
        WAIT,
        f.command()
            .args(["-f", "-N", "-L", &spec, &f.target()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .status(),
    )
    .await
    .expect("the parent returns")
    .unwrap();
    assert_eq!(out.code(), Some(0));
    // Already forwarding when the parent returned: no waiting.
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("forwarding 127.0.0.1:"))
        .unwrap_or_else(|| panic!("{text}"));
    let port = port_after(line, "127.0.0.1:");
    echo_round_trip(port, 100 * 1024).await;
    echo_round_trip(port, 7).await;

    // The forward lives as long as the session: end the tunnel, and the
    // background process goes, taking its listener with it.
    f.sim.close_tunnels(1000, "");
    eventually("the background copy's listener closing", WAIT, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    })
    .await;
}

/// The session ID of `pid` ("self" for this process), from /proc.
fn session_of(pid: &str) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name in parentheses: state, ppid, pgrp, session.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(3).unwrap().parse().unwrap()
}

/// `eic-ssh -f -N -L … | cat` ends: once ready, the background process
/// holds neither the caller's stdout nor its stderr (/dev/null instead,
/// stderr kept with -v) and has a session of its own, as `ssh -f` does;
/// the forward still works afterwards.
#[async_test]
async fn background_mode_lets_go_of_the_callers_pipes_and_session() {
    let f = Fixture::new().await;
    let db = echo_server().await;
    // The echo port makes each command line unique to this test.
    let quiet_spec = format!("0:127.0.0.1:{db}");
    let verbose_spec = format!("0:localhost:{db}");
    let pipeline = |flags: &str, spec: &str| {
        let mut cmd = f.program("sh");
        cmd.arg("-c")
            .arg(format!("\"$0\" {flags} -f -N -L \"$1\" \"$2\" 2>&1 | cat"))
            .args([env!("CARGO_BIN_EXE_eic-ssh"), spec, &f.target()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let mut sh = pipeline("", &quiet_spec).spawn().unwrap();
    let mut text = String::new();
    tokio::time::timeout(WAIT, sh.stdout.take().unwrap().read_to_string(&mut text))
        .await
        .expect("the pipe reaches EOF: nothing in the background holds it")
        .unwrap();
    assert!(sh.wait().await.unwrap().success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("forwarding 127.0.0.1:"))
        .unwrap_or_else(|| panic!("{text}"));
    let port = port_after(line, "127.0.0.1:");
    echo_round_trip(port, 10_000).await;

    let pids = pids_with(&quiet_spec);
    assert_eq!(pids.len(), 1, "{pids:?}");
    let pid = pids[0].to_string();
    assert_ne!(session_of(&pid), session_of("self"));
    assert_eq!(session_of(&pid), pids[0], "it leads its own session");
    for fd in [1, 2] {
        let to = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(to, std::path::Path::new("/dev/null"), "fd {fd}");
    }

    // With -v stderr stays where it was (here a file), stdout still goes.
    let log = f.home.tmp().join("verbose.log");
    let mut cmd = f.command();
    cmd.args(["-v", "-f", "-N", "-L", &verbose_spec, &f.target()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut parent = cmd.spawn().unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, parent.stdout.take().unwrap().read_to_end(&mut out))
        .await
        .expect("stdout reaches EOF")
        .unwrap();
    assert!(parent.wait().await.unwrap().success());
    let pids = pids_with(&verbose_spec);
    assert_eq!(pids.len(), 1, "{pids:?}");
    let fd = |n: u32| std::fs::read_link(format!("/proc/{}/fd/{n}", pids[0])).unwrap();
    assert_eq!(fd(1), std::path::Path::new("/dev/null"));
    assert_eq!(fd(2), log);

    // Both end with their sessions.
    f.sim.close_tunnels(1000, "");
    eventually("both background copies ending", WAIT, || {
        pids_with(&quiet_spec).is_empty() && pids_with(&verbose_spec).is_empty()
    })
    .await;
}

#[async_test]
async fn background_mode_reports_a_failure_and_needs_something_to_do() {
    let f = Fixture::new().await;
    f.run(&["-f", &f.target()], b"")
        .await
        .assert_status(2)
        .assert_stderr_contains("-f needs a command");
    // The background copy fails to log in: the parent exits with its status.
    f.run(&["-f", "-N", "-L", "0:127.0.0.1:9", STOPPED], b"")
        .await
        .assert_status(255)
        .assert_stderr_contains("not running");
}

#[async_test]
async fn forwards_end_with_the_session_and_say_why() {
    let f = Fixture::new().await;
    let db = echo_server().await;
    let spec = format!("0:127.0.0.1:{db}");
    let mut run = f.spawn(&["-N", "-L", &spec, &f.target()]);
    let line = run.line("forwarding 127.0.0.1:").await;
    let port = port_after(&line, "127.0.0.1:");
    echo_round_trip(port, 1000).await;
    f.sim.close_tunnels(1011, "simulated endpoint failure");
    assert_eq!(run.status().await, Some(255));
    let why = run.line("simulated endpoint failure").await;
    assert!(why.starts_with("eic-ssh: "), "{why}");
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

/// A target that reads a little and goes away while the local client is
/// still sending: the instance closes the channel, and the local connection
/// ends with it (as with OpenSSH) instead of taking bytes for nobody and
/// then hanging.
#[async_test]
async fn a_target_that_goes_away_mid_upload_ends_the_local_connection() {
    let f = Fixture::new().await;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
            });
        }
    });
    let db = echo_server().await;
    let (gone, echo) = (format!("0:127.0.0.1:{target}"), format!("0:127.0.0.1:{db}"));
    let mut run = f.spawn(&["-N", "-L", &gone, "-L", &echo, &f.target()]);
    let line = run.line(&format!("to 127.0.0.1:{target} ")).await;
    let port = port_after(&line, "127.0.0.1:");

    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![1u8; 64 * 1024];
        let mut sent = 0usize;
        // Far more than every window and buffer on the way.
        while sent < 256 << 20 {
            if w.write_all(&chunk).await.is_err() {
                return Err(sent);
            }
            sent += chunk.len();
        }
        Ok(sent)
    });
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, r.read(&mut buf))
        .await
        .expect("the local connection ends");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let wrote = tokio::time::timeout(WAIT, writer)
        .await
        .expect("the local sender is stopped, not left hanging")
        .unwrap();
    assert!(
        wrote.is_err(),
        "256 MiB taken for a target that left: {wrote:?}"
    );

    // The session still serves its other forward.
    let line = run.line(&format!("to 127.0.0.1:{db} ")).await;
    echo_round_trip(port_after(&line, "127.0.0.1:"), 100_000).await;
    run.signal("-INT");
    assert_eq!(run.status().await, Some(0), "{}", run.stderr_so_far());
}

/// Ctrl-C while `-f` is still connecting stops the background copy too:
/// nothing goes on to log in and forward behind the user's back.
#[async_test]
async fn ctrl_c_before_the_background_copy_is_ready_stops_it() {
    let f = Fixture::new().await;
    // Every API answer waits, so the copy is still connecting when the
    // signal comes. The port of a listener held here (so no other test's)
    // marks the copy's command line; nothing ever connects to it.
    f.sim.set_api_latency(std::time::Duration::from_secs(20));
    let held = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let marker = format!("0:127.0.0.1:{}", held.local_addr().unwrap().port());
    let mut parent = f
        .command()
        .args(["-f", "-N", "-L", &marker, &f.target()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let parent_pid = parent.id().unwrap();
    // Both the parent and the background copy are up, and the parent
    // catches SIGINT (it passes the signal on from then).
    eventually(
        "the background copy, and the parent catching SIGINT",
        WAIT,
        || pids_with(&marker).len() == 2 && catches(parent_pid, 2),
    )
    .await;
    send_signal(parent_pid, "-INT");
    let status = tokio::time::timeout(WAIT, parent.wait())
        .await
        .expect("the parent ends")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    let mut stderr = String::new();
    parent
        .stderr
        .as_mut()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("background session"), "{stderr}");
    eventually("the background copy ending", WAIT, || {
        pids_with(&marker).is_empty()
    })
    .await;
}

/// Whether the process `pid` has a handler for signal number `signal`
/// (its `SigCgt` mask in /proc).
fn catches(pid: u32, signal: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}
