//! The real OpenSSH client (ssh, scp, sftp) through `eic-ssh proxy` and
//! `eic-ssh tunnel`, to the simulator and a real sshd.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_eic-ssh");

/// A user key pair in the fixture's ~/.ssh, and an ssh_config that is the
/// `eic-ssh ssh-config` block plus test-only isolation settings.
pub(crate) async fn openssh_setup(f: &Fixture, proxy_extra: &str) -> PathBuf {
    let ssh_dir = f.home.path().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let key = ssh_dir.join("id_ed25519");
    if !key.exists() {
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "test-user-key", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let out = f.run(&["ssh-config", "--user", &f.user()], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let block = out.stdout_str();
    assert!(block.contains("Host i-*"), "{block}");
    assert!(
        block.contains(&format!(
            "ProxyCommand {} proxy --user '%r' '%h' '%p'",
            std::fs::canonicalize(BIN).unwrap().display()
        )),
        "{block}"
    );
    let block = block.replace(" proxy --user", &format!(" proxy {proxy_extra} --user"));
    let config = f.home.path().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "{block}\n# Test isolation, for every host (the listener tests reach localhost).\nHost *\n    UserKnownHostsFile {kh}\n    GlobalKnownHostsFile /dev/null\n    StrictHostKeyChecking accept-new\n    IdentityFile {key}\n    IdentitiesOnly yes\n    BatchMode yes\n    LogLevel ERROR\n",
            kh = f.known_hosts().display(),
            key = key.display()
        ),
    )
    .unwrap();
    config
}

/// An OpenSSH tool with the fixture's hermetic environment (which its
/// ProxyCommand inherits).
fn openssh(f: &Fixture, tool: &str) -> tokio::process::Command {
    f.program(tool)
}

async fn output(mut cmd: tokio::process::Command) -> std::process::Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("finished within 60 s")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_through_the_proxy_with_a_key_file() {
    let f = Fixture::new().await;
    let pubkey = f.home.path().join(".ssh/id_ed25519.pub");
    let config = openssh_setup(&f, &format!("--public-key {}", pubkey.display())).await;
    let mut ssh = openssh(&f, "ssh");
    ssh.arg("-F")
        .arg(&config)
        .arg(f.target())
        .arg("echo ok; echo err >&2");
    let out = output(ssh).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        f.sshd.log()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    // The key OpenSSH authenticated with is the one that was pushed.
    let pushed = f.sim.keys(INSTANCE, &f.user());
    let ours = std::fs::read_to_string(&pubkey).unwrap();
    let ours_b64 = ours.split_whitespace().nth(1).unwrap();
    assert!(pushed.iter().any(|k| k.contains(ours_b64)), "{pushed:?}");
    // OpenSSH recorded the host key under the instance ID, as eic-ssh does.
    let known = std::fs::read_to_string(f.known_hosts()).unwrap();
    assert!(known.contains(INSTANCE), "{known}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_through_the_proxy_with_the_agents_key() {
    let f = Fixture::new().await;
    let config = openssh_setup(&f, "").await;
    // Only the agent holds the key: no .pub file for the fallback to find.
    let key = f.home.path().join(".ssh/id_ed25519");
    std::fs::remove_file(f.home.path().join(".ssh/id_ed25519.pub")).unwrap();
    let sock = f.home.tmp().join("agent.sock");
    let mut agent = tokio::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = std::process::Command::new("ssh-add")
        .arg("-q")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_file(&key).unwrap();

    let mut ssh = openssh(&f, "ssh");
    ssh.env("SSH_AUTH_SOCK", &sock)
        .arg("-F")
        .arg(&config)
        .args(["-o", "IdentitiesOnly=no", "-o", "IdentityFile=none"])
        .arg(f.target())
        .arg("echo from-agent");
    let out = output(ssh).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-agent\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = agent.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_to_push_is_a_clear_error() {
    let f = Fixture::new().await;
    let out = f.run(&["proxy", INSTANCE, "22"], b"").await;
    assert_eq!(out.status, Some(255));
    assert!(
        out.stderr
            .contains("no public key to push: looked at ssh-agent"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("id_ed25519.pub"), "{}", out.stderr);
    assert!(f.sim.request_log().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_and_sftp_move_twenty_megabytes_intact() {
    let f = Fixture::new().await;
    let config = openssh_setup(&f, "").await;
    let data: Vec<u8> = (0..20 * 1024 * 1024)
        .map(|_| rand::random::<u8>())
        .collect();
    let local = f.home.tmp().join("up.bin");
    std::fs::write(&local, &data).unwrap();
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("remote.bin");

    let mut scp = openssh(&f, "scp");
    scp.arg("-F")
        .arg(&config)
        .arg(&local)
        .arg(format!("{}:{}", f.target(), remote.display()));
    let out = output(scp).await;
    assert!(
        out.status.success(),
        "scp up: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        Sha256::digest(std::fs::read(&remote).unwrap()),
        Sha256::digest(&data)
    );

    let down = f.home.tmp().join("down.bin");
    let mut scp = openssh(&f, "scp");
    scp.arg("-F")
        .arg(&config)
        .arg(format!("{}:{}", f.target(), remote.display()))
        .arg(&down);
    let out = output(scp).await;
    assert!(
        out.status.success(),
        "scp down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        Sha256::digest(std::fs::read(&down).unwrap()),
        Sha256::digest(&data)
    );

    let via_sftp = f.home.tmp().join("sftp.bin");
    let batch = f.home.tmp().join("batch");
    std::fs::write(
        &batch,
        format!(
            "get {} {}\nput {} {}.2\n",
            remote.display(),
            via_sftp.display(),
            local.display(),
            remote.display()
        ),
    )
    .unwrap();
    let mut sftp = openssh(&f, "sftp");
    sftp.arg("-F")
        .arg(&config)
        .arg("-b")
        .arg(&batch)
        .arg(f.target());
    let out = output(sftp).await;
    assert!(
        out.status.success(),
        "sftp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        Sha256::digest(std::fs::read(&via_sftp).unwrap()),
        Sha256::digest(&data)
    );
    let put = std::fs::read(format!("{}.2", remote.display())).unwrap();
    assert_eq!(Sha256::digest(put), Sha256::digest(&data));
}

/// Start `eic-ssh proxy` by hand and read the sshd banner through it.
async fn proxy_with_banner(
    f: &Fixture,
) -> (
    tokio::process::Child,
    tokio::process::ChildStdin,
    tokio::process::ChildStdout,
) {
    let mut cmd = f.command();
    cmd.args(["proxy", "--no-push", INSTANCE, "22"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut banner = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(30), stdout.read_exact(&mut banner))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&banner, b"SSH-2.0-");
    (child, stdin, stdout)
}

async fn exits_within(
    child: &mut tokio::process::Child,
    limit: Duration,
) -> (Duration, std::process::ExitStatus) {
    let t = Instant::now();
    let st = tokio::time::timeout(limit, child.wait())
        .await
        .expect("the proxy lingered")
        .unwrap();
    (t.elapsed(), st)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_exits_promptly_when_either_side_closes() {
    let f = Fixture::new().await;

    // stdin EOF (ssh went away).
    let (mut child, stdin, _stdout) = proxy_with_banner(&f).await;
    drop(stdin);
    let (_, st) = exits_within(&mut child, Duration::from_secs(1)).await;
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    assert!(st.success(), "{st}: {err}");

    // The endpoint closes the tunnel: non-zero, with a one-line reason.
    let (mut child, _stdin, _stdout) = proxy_with_banner(&f).await;
    let mut stderr = child.stderr.take().unwrap();
    f.sim.close_tunnels(1011, "simulated endpoint failure");
    let (_, st) = exits_within(&mut child, Duration::from_secs(1)).await;
    assert_eq!(st.code(), Some(255));
    let mut err = String::new();
    stderr.read_to_string(&mut err).await.unwrap();
    assert!(
        err.contains("closed by the endpoint (code 1011): simulated endpoint failure"),
        "{err}"
    );

    // Its stdout reader goes away while data is flowing.
    let (mut child, mut stdin, stdout) = proxy_with_banner(&f).await;
    drop(stdout);
    stdin.write_all(b"SSH-2.0-test\r\n").await.unwrap(); // makes sshd send its KEXINIT
    let _ = exits_within(&mut child, Duration::from_secs(2)).await;
}

/// `eic-ssh tunnel` on a free port; returns the child and the port.
async fn listener(
    f: &Fixture,
    extra: &[&str],
) -> (
    tokio::process::Child,
    u16,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
) {
    let mut cmd = f.command();
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
    (child, port.trim().parse().expect("a port number"), stderr)
}

fn ssh_via_port(
    f: &Fixture,
    config: &PathBuf,
    port: u16,
    command: &str,
) -> tokio::process::Command {
    let mut ssh = openssh(f, "ssh");
    ssh.arg("-F")
        .arg(config)
        .args([
            "-o",
            "ProxyCommand=none",
            "-o",
            &format!("HostKeyAlias={INSTANCE}"),
            "-p",
            &port.to_string(),
        ])
        .arg(format!("{}@localhost", f.user()))
        .arg(command);
    ssh
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_serves_concurrent_sessions_and_enforces_its_limit() {
    let f = Fixture::new().await;
    let config = openssh_setup(&f, "").await;
    let pubkey = f.home.path().join(".ssh/id_ed25519.pub");
    let (mut child, port, mut log) = listener(
        &f,
        &[
            "--push-key",
            "--public-key",
            pubkey.to_str().unwrap(),
            "-l",
            &f.user(),
            "--max-connections",
            "2",
        ],
    )
    .await;

    let a = tokio::spawn(output(ssh_via_port(&f, &config, port, "sleep 2; echo one")));
    let b = tokio::spawn(output(ssh_via_port(&f, &config, port, "sleep 2; echo two")));
    // Wait until both are open, then a third is refused.
    let mut opened = 0;
    while opened < 2 {
        let line = tokio::time::timeout(Duration::from_secs(30), log.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if line.contains("opened") {
            opened += 1;
        }
    }
    let mut third = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the third connection was served");
    let refused = tokio::time::timeout(Duration::from_secs(5), log.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        refused.contains("refused") && refused.contains("--max-connections"),
        "{refused}"
    );

    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(
        String::from_utf8_lossy(&a.stdout),
        "one\n",
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&b.stdout),
        "two\n",
        "{}",
        String::from_utf8_lossy(&b.stderr)
    );
    let mut closed = 0;
    while closed < 2 {
        let line = tokio::time::timeout(Duration::from_secs(10), log.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if line.contains("closed") {
            assert!(
                line.contains("sent ") && line.contains("received "),
                "{line}"
            );
            closed += 1;
        }
    }
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdp_port_3389_is_relayed_and_other_ports_refused_up_front() {
    let f = Fixture::new().await;
    // A plain TCP echo service stands in for RDP.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    f.sim.set_world(|w| {
        for i in &mut w.instances {
            if i.id == INSTANCE {
                i.rdp = Some(echo_addr);
            }
        }
    });
    let (mut child, port, _log) = listener(&f, &["--remote-port", "3389"]).await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"hello rdp").await.unwrap();
    let mut buf = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"hello rdp");
    let _ = child.kill().await;

    let out = f
        .run(
            &[
                "tunnel",
                INSTANCE,
                "--local-port",
                "0",
                "--remote-port",
                "23",
            ],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(2));
    assert!(
        out.stderr.contains("port '23' is not allowed"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_accepting_and_lets_open_connections_finish() {
    let f = Fixture::new().await;
    let config = openssh_setup(&f, "").await;
    let pubkey = f.home.path().join(".ssh/id_ed25519.pub");
    let (mut child, port, mut log) = listener(
        &f,
        &[
            "--push-key",
            "--public-key",
            pubkey.to_str().unwrap(),
            "-l",
            &f.user(),
        ],
    )
    .await;
    let session = tokio::spawn(output(ssh_via_port(
        &f,
        &config,
        port,
        "sleep 2; echo finished",
    )));
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), log.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if line.contains("opened") {
            break;
        }
    }
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Other lines may come first (a slow session's own close, say); the
    // session's output below tells whether it really finished.
    let mut seen = Vec::new();
    let stopped = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(line)) = log.next_line().await {
            if line.contains("stopped accepting") {
                return true;
            }
            seen.push(line);
        }
        false
    })
    .await;
    assert_eq!(stopped.ok(), Some(true), "{seen:#?}");
    // New connections are refused at once...
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    // ...while the open one completes.
    let out = session.await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "finished\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(st.success());
}
